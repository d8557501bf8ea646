//! The depthwise convolution's 3×3 vector path and `predict`'s fused MobileNet runs
//! (`ZeroPadding2D` folded into a depthwise convolution, BatchNormalization folded into the
//! weights, ReLU or ReLU6 applied as a depthwise or 1×1 convolution writes its outputs): the kernel against a plain f64 loop for every stride, padding,
//! dilation and vector width, the fused model against the layers run one by one (bit for bit
//! without a normalization, within 1e-5 with one), and one thread against two bit for bit.

use strata::Tensor;
use strata::prelude::*;
use strata::rng::Rng;

fn random(shape: &[usize], seed: u64, low: f32, high: f32) -> Tensor {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), (0..n).map(|_| rng.uniform(low, high)).collect()).unwrap()
}

/// The depthwise convolution of `x` `(N, H, W, C)` with `kernel` `(3, 3, C, 1)` and `bias`, in
/// f64, with TensorFlow's "same" padding split (extra row and column at the bottom and right).
fn reference(
    x: &Tensor,
    kernel: &[f32],
    bias: &[f32],
    stride: (usize, usize),
    dilation: usize,
    same: bool,
) -> Vec<f32> {
    let [n, h, w, c] = x.shape().try_into().unwrap();
    let span = 2 * dilation + 1;
    let size = |input: usize, stride: usize| {
        if same {
            let out = input.div_ceil(stride);
            (out, ((out - 1) * stride + span).saturating_sub(input) / 2)
        } else {
            ((input - span) / stride + 1, 0)
        }
    };
    let ((oh, top), (ow, left)) = (size(h, stride.0), size(w, stride.1));
    let mut out = vec![0.0; n * oh * ow * c];
    for b in 0..n {
        for y in 0..oh {
            for xo in 0..ow {
                for ch in 0..c {
                    let mut sum = bias[ch] as f64;
                    for ky in 0..3 {
                        for kx in 0..3 {
                            let iy = (y * stride.0 + ky * dilation) as isize - top as isize;
                            let ix = (xo * stride.1 + kx * dilation) as isize - left as isize;
                            if iy < 0 || ix < 0 || iy >= h as isize || ix >= w as isize {
                                continue;
                            }
                            let value = x.data()[((b * h + iy as usize) * w + ix as usize) * c + ch];
                            sum += value as f64 * kernel[(ky * 3 + kx) * c + ch] as f64;
                        }
                    }
                    out[((b * oh + y) * ow + xo) * c + ch] = sum as f32;
                }
            }
        }
    }
    out
}

/// The named weight (`kernel`, `bias`, …) of `model`'s only layer with weights.
fn weight(model: &Model, suffix: &str) -> Vec<f32> {
    let id = model
        .params()
        .ids()
        .find(|&id| model.params().name(id).ends_with(suffix));
    model.params().value(id.unwrap()).data().to_vec()
}

#[test]
fn the_3x3_path_matches_a_plain_loop_for_every_option() {
    // 8 channels (the AVX2-wide path), 16 (AVX-512), 24 (AVX2 on an AVX-512 CPU: not a
    // multiple of 16); maps with interior columns, with none, and with an odd size; rows whose
    // interior takes every group size of the kernel (8, 4 and 1 columns at stride 1, 4 and 1
    // at stride 2).
    let shapes = [(8, 9, 10), (16, 7, 13), (24, 4, 3), (16, 2, 2), (8, 5, 31), (16, 6, 22)];
    for (channels, height, width) in shapes {
        let x = random(&[2, height, width, channels], channels as u64, -1.0, 1.0);
        // (stride, dilation, same padding)
        let cases = [
            ((1, 1), 1, true),
            ((2, 2), 1, true),
            ((1, 1), 1, false),
            ((2, 2), 1, false),
            ((1, 2), 1, true),
            ((1, 1), 2, true),
        ];
        for (stride, dilation, same) in cases {
            if !same && (height < 2 * dilation + 1 || width < 2 * dilation + 1) {
                continue;
            }
            let layer = DepthwiseConv2D::new(3)
                .strides(stride)
                .dilation_rate(dilation)
                .padding(if same { "same" } else { "valid" })
                .bias_initializer(strata::initializers::Initializer::RandomUniform {
                    minval: -0.5,
                    maxval: 0.5,
                });
            let mut model = Sequential::new();
            model.seed(channels as u64);
            model.add(Input::new(&[height, width, channels])).add(layer);
            model.build(&[height, width, channels]).unwrap();
            let y = model.predict(&x, 2).unwrap();
            let expected = reference(
                &x,
                &weight(&model, "kernel"),
                &weight(&model, "bias"),
                stride,
                dilation,
                same,
            );
            let what = format!("{channels} channels, {height}×{width}, {stride:?}, {dilation}, same {same}");
            assert_eq!(y.len(), expected.len(), "{what}");
            for (i, (a, b)) in y.data().iter().zip(&expected).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{what}: output {i}: {a} against {b}"
                );
            }
        }
    }
}

/// MobileNetV2's runs as Keras builds them (zero padding, a valid stride-2 depthwise
/// convolution without bias, BatchNormalization, ReLU6; a 1×1 convolution, BatchNormalization,
/// ReLU6) and as ONNX imports them (the
/// normalization already in the bias), plus the shapes that take the plain loop (multiplier 2,
/// 12 channels, a 5×5 window) and a padding read twice (not folded).
fn mobilenet_like(seed: u64, normalized: bool) -> Model {
    let input = Input::node(&[17, 18, 16]);
    let mut x = ZeroPadding2D::new(((0, 1), (0, 1))).call(&input).unwrap();
    x = DepthwiseConv2D::new(3)
        .strides(2)
        .use_bias(!normalized)
        .call(&x)
        .unwrap();
    if normalized {
        x = BatchNormalization::new().call(&x).unwrap();
    }
    x = ReLU::new().max_value(6.0).call(&x).unwrap();
    x = Conv2D::new(24, 1).use_bias(!normalized).call(&x).unwrap();
    if normalized {
        x = BatchNormalization::new().call(&x).unwrap();
    }
    x = ReLU::new().max_value(6.0).call(&x).unwrap();
    x = ZeroPadding2D::new(1).call(&x).unwrap();
    x = DepthwiseConv2D::new(3).strides(2).call(&x).unwrap();
    x = ReLU::new().max_value(0.5).call(&x).unwrap();
    x = DepthwiseConv2D::new(3)
        .padding("same")
        .dilation_rate(2)
        .call(&x)
        .unwrap();
    x = ReLU::new().call(&x).unwrap();
    x = DepthwiseConv2D::new(3)
        .padding("same")
        .depth_multiplier(2)
        .call(&x)
        .unwrap();
    if normalized {
        x = BatchNormalization::new().call(&x).unwrap();
    }
    x = Activation::new("relu").call(&x).unwrap();
    x = Conv2D::new(12, 1).call(&x).unwrap();
    x = DepthwiseConv2D::new(3).padding("same").call(&x).unwrap();
    x = ReLU::new().max_value(6.0).call(&x).unwrap();
    x = DepthwiseConv2D::new(5).padding("same").call(&x).unwrap();
    let padded = ZeroPadding2D::new(1).call(&x).unwrap();
    let convolved = DepthwiseConv2D::new(3).call(&padded).unwrap();
    let a = GlobalAveragePooling2D::new().call(&padded).unwrap();
    let b = GlobalAveragePooling2D::new().call(&convolved).unwrap();
    let x = Concatenate::new(-1).call_many(&[&a, &b]).unwrap();
    let output = Dense::new(5).call(&x).unwrap();
    let mut model = Model::functional(&input, &output).unwrap();
    // Biases and normalizations that do something.
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        let name = model.params().name(id).to_string();
        let shape = model.params().value(id).shape().to_vec();
        let (low, high) = match name.rsplit('/').next().unwrap_or("") {
            "moving_variance" | "gamma" => (0.5, 1.5),
            "moving_mean" | "beta" | "bias" => (-0.5, 0.5),
            _ => continue,
        };
        *model.params_mut().value_mut(id) = random(&shape, seed * 100 + k as u64, low, high);
    }
    model
}

#[test]
fn fused_depthwise_runs_give_the_layers_outputs() {
    let x = random(&[3, 17, 18, 16], 5, -2.0, 2.0);
    for normalized in [false, true] {
        let mut model = mobilenet_like(11, normalized);
        for batch in [1, 3] {
            let fused = model.predict(&x, batch).unwrap();
            model.set_inference_fusion(false);
            let plain = model.predict(&x, batch).unwrap();
            model.set_inference_fusion(true);
            let what = format!("normalized {normalized}, batches of {batch}");
            if !normalized {
                // Padding skipped and activations applied in place change no bit.
                assert_eq!(fused.data(), plain.data(), "{what}");
            }
            for (i, (a, b)) in fused.data().iter().zip(plain.data()).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-5 * b.abs().max(1.0),
                    "{what}: output {i}: {a} against {b}"
                );
            }
        }
    }
}

#[test]
fn fused_depthwise_runs_give_the_same_bits_on_one_and_two_threads() {
    let x = random(&[3, 17, 18, 16], 6, -2.0, 2.0);
    let run = |threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap()
            .install(|| {
                let mut model = mobilenet_like(12, true);
                (model.predict(&x, 1).unwrap(), model.predict(&x, 3).unwrap())
            })
    };
    let (one, two) = (run(1), run(2));
    assert_eq!(one.0.data(), two.0.data(), "batch 1");
    assert_eq!(one.1.data(), two.1.data(), "batch 3");
}
