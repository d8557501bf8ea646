//! The layers the Keras Applications architectures add to a CNN (issue #16): `ReLU` with its
//! ceiling, slope and threshold, `ZeroPadding2D`, `Cropping2D`, `UpSampling2D`, `Rescaling`:
//! hand-computed values, finite-difference gradients, Keras configs, saving and loading, and
//! errors that name the layer and the argument.

mod common;

use common::{TOLERANCE, assert_close, boxed, layer_gradient_error, run_layers, uniform};
use serde_json::json;
use strata::Error;
use strata::autograd::ParamStore;
use strata::initializers::Initializer;
use strata::prelude::*;
use strata::rng::Rng;

/// One 2×3 single-channel image holding 1..=6, row by row.
fn small_image() -> Tensor {
    Tensor::from_vec(vec![1, 2, 3, 1], (1..=6).map(|v| v as f32).collect()).unwrap()
}

/// The output of one layer on `x`, at inference.
fn run(layer: impl Layer + 'static, x: &Tensor) -> Tensor {
    run_layers(vec![boxed(layer)], x, false).0
}

#[test]
fn zero_padding_puts_zeros_on_each_side_as_asked() {
    // One row on top, none below; none on the left, two on the right.
    let y = run(ZeroPadding2D::new(((1, 0), (0, 2))), &small_image());
    assert_eq!(y.shape(), &[1, 3, 5, 1]);
    #[rustfmt::skip]
    let expected = [
        0.0, 0.0, 0.0, 0.0, 0.0,
        1.0, 2.0, 3.0, 0.0, 0.0,
        4.0, 5.0, 6.0, 0.0, 0.0,
    ];
    assert_eq!(y.data(), &expected);
    // An integer pads every side, a pair pads (top and bottom, left and right).
    assert_eq!(run(ZeroPadding2D::new(1), &small_image()).shape(), &[1, 4, 5, 1]);
    assert_eq!(run(ZeroPadding2D::new((0, 1)), &small_image()).shape(), &[1, 2, 5, 1]);
}

#[test]
fn cropping_keeps_the_inner_window() {
    // Drop the first row and the last column.
    let y = run(Cropping2D::new(((1, 0), (0, 1))), &small_image());
    assert_eq!(y.shape(), &[1, 1, 2, 1]);
    assert_eq!(y.data(), &[4.0, 5.0]);
    let y = run(Cropping2D::new((0, 1)), &small_image());
    assert_eq!(y.data(), &[2.0, 5.0]);
}

#[test]
fn nearest_upsampling_repeats_every_pixel_in_a_block() {
    let y = run(UpSampling2D::new((2, 1)), &small_image());
    assert_eq!(y.shape(), &[1, 4, 3, 1]);
    assert_eq!(y.data(), &[1.0, 2.0, 3.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 4.0, 5.0, 6.0]);
    // Channels travel together: a 1×1 image of two channels becomes a 2×2 block of pairs.
    let pixel = Tensor::from_vec(vec![1, 1, 1, 2], vec![7.0, -1.0]).unwrap();
    assert_eq!(run(UpSampling2D::new(2), &pixel).data(), &[7.0, -1.0].repeat(4));
}

#[test]
fn relu_layer_follows_keras_formula() {
    let x = Tensor::from_slice(&[-10.0, -5.0, 0.0, 5.0, 10.0])
        .reshape(&[1, 5])
        .unwrap();
    // Keras's docstring example: ReLU(max_value=10, negative_slope=0.5).
    let y = run(ReLU::new().max_value(10.0).negative_slope(0.5), &x);
    assert_eq!(y.data(), &[-5.0, -2.5, 0.0, 5.0, 10.0]);
    assert_eq!(run(ReLU::new(), &x).data(), &[0.0, 0.0, 0.0, 5.0, 10.0]);
    assert_eq!(run(ReLU::new().max_value(6.0), &x).data(), &[0.0, 0.0, 0.0, 5.0, 6.0]);
    assert_eq!(run(ReLU::new().threshold(5.0), &x).data(), &[0.0, 0.0, 0.0, 0.0, 10.0]);
    // A ceiling of −0 (which Keras accepts) clips to +0 on every path: vector lanes and the tail.
    let positive = Tensor::from_vec(vec![1, 37], (1..=37).map(|v| v as f32).collect()).unwrap();
    let y = run(ReLU::new().max_value(-0.0), &positive);
    assert!(y.data().iter().all(|v| v.to_bits() == 0), "{:?}", y.data());
}

#[test]
fn rescaling_scales_then_offsets_by_number_or_channel() {
    let x = Tensor::from_vec(vec![2, 1, 1, 3], vec![0.0, 127.5, 255.0, 10.0, 20.0, 30.0]).unwrap();
    let y = run(Rescaling::new(1.0 / 127.5).offset(-1.0), &x);
    assert_close(
        y.data(),
        &[
            -1.0,
            0.0,
            1.0,
            10.0 / 127.5 - 1.0,
            20.0 / 127.5 - 1.0,
            30.0 / 127.5 - 1.0,
        ],
        1e-6,
        "MobileNet's scaling",
    );
    let y = run(Rescaling::new(vec![1.0, 2.0, 3.0]).offset(vec![0.0, 1.0, 2.0]), &x);
    assert_eq!(y.data(), &[0.0, 256.0, 767.0, 10.0, 41.0, 92.0]);
}

#[test]
fn image_layers_have_the_right_gradient() {
    let images = uniform(&[2, 4, 5, 3], -1.0, 1.0, 3);
    let cases: Vec<(&str, Box<dyn Layer>)> = vec![
        ("ZeroPadding2D", boxed(ZeroPadding2D::new(((1, 2), (0, 1))))),
        ("Cropping2D", boxed(Cropping2D::new(((1, 0), (2, 1))))),
        ("UpSampling2D", boxed(UpSampling2D::new((2, 3)))),
        ("Rescaling", boxed(Rescaling::new(0.5).offset(-0.25))),
        (
            "Rescaling per channel",
            boxed(Rescaling::new(vec![1.0, -2.0, 0.5]).offset(vec![0.1, 0.2, 0.3])),
        ),
    ];
    for (what, layer) in cases {
        let error = layer_gradient_error(vec![layer], images.clone(), |_| {});
        assert!(error < TOLERANCE, "{what}: gradient error {error}");
    }
    // ReLU on inputs clear of its kinks (threshold 0.5, ceiling 2): each piece is checked.
    let data = [-1.3, -0.4, 0.2, 0.7, 1.1, 1.6, 2.4, 3.0];
    let x = Tensor::from_vec(vec![2, 4], data.to_vec()).unwrap();
    let relu = ReLU::new().max_value(2.0).negative_slope(0.3).threshold(0.5);
    let error = layer_gradient_error(vec![boxed(relu)], x, |_| {});
    assert!(error < TOLERANCE, "ReLU: gradient error {error}");
}

#[test]
fn keras_configs_in_every_form_are_read_and_written_back() {
    let layer = |class: &str, config: serde_json::Value| strata::layers::from_config(class, &config).unwrap();
    let shape = |layer: &dyn Layer| layer.output_shapes(&[vec![6, 7, 2]]).unwrap().remove(0);
    // Keras writes ZeroPadding2D(1) as ((1, 1), (1, 1)); an integer and a pair are accepted too.
    for (padding, expected) in [
        (json!(1), vec![8, 9, 2]),
        (json!([1, 2]), vec![8, 11, 2]),
        (json!([[1, 0], [2, 1]]), vec![7, 10, 2]),
    ] {
        let pad = layer(
            "ZeroPadding2D",
            json!({"padding": padding, "data_format": "channels_last"}),
        );
        assert_eq!(shape(pad.as_ref()), expected, "padding {padding}");
    }
    let crop = layer("Cropping2D", json!({"name": "crop", "cropping": [[1, 0], [2, 1]]}));
    assert_eq!(shape(crop.as_ref()), vec![5, 4, 2]);
    assert_eq!(crop.config()["cropping"], json!([[1, 0], [2, 1]]));
    assert_eq!(crop.config()["name"], "crop");
    let up = layer("UpSampling2D", json!({"size": [2, 3], "interpolation": "nearest"}));
    assert_eq!(shape(up.as_ref()), vec![12, 21, 2]);
    // Keras's ReLU(6.0) config, and None for no ceiling.
    let relu6 = layer(
        "ReLU",
        json!({"max_value": 6.0, "negative_slope": 0.0, "threshold": 0.0}),
    );
    assert_eq!(relu6.config()["max_value"], 6.0);
    assert_eq!(
        layer("ReLU", json!({"max_value": null})).config()["max_value"],
        serde_json::Value::Null
    );
    // Rescaling: numbers, lists, and a NumPy array as Keras serializes one.
    let scaling = layer("Rescaling", json!({"scale": 0.00784313725490196, "offset": -1}));
    assert_eq!(scaling.config()["offset"], -1.0);
    let numpy = json!({"class_name": "__numpy__", "config": {"value": [1.0, 2.0], "dtype": "float32"}});
    let per_channel = layer("Rescaling", json!({"scale": numpy, "offset": [0.5, 0.5]}));
    assert_eq!(per_channel.config()["scale"], json!([1.0, 2.0]));
    assert_eq!(shape(per_channel.as_ref()), vec![6, 7, 2]);
    // Each config builds the same layer again.
    for built in [crop, up, relu6, scaling, per_channel] {
        let again = layer(built.class_name(), built.config());
        assert_eq!(again.config(), built.config());
    }
}

#[test]
fn a_model_with_the_image_layers_trains_saves_and_loads() {
    let mut model = Sequential::new();
    model
        .seed(2)
        .add(Input::new(&[6, 5, 3]))
        .add(Rescaling::new(1.0 / 127.5).offset(-1.0))
        .add(ZeroPadding2D::new(((0, 1), (0, 1))))
        .add(Conv2D::new(4, 3).strides(2))
        .add(ReLU::new().max_value(6.0))
        .add(DepthwiseConv2D::new(3).padding("same").activation("hard_silu"))
        .add(SeparableConv2D::new(3, 2).padding("same").depth_multiplier(2))
        .add(UpSampling2D::new(2))
        .add(Cropping2D::new(1))
        .add(Flatten::new())
        .add(Dense::new(2).activation("softmax"));
    model
        .compile(Adam::new(0.01), "sparse_categorical_crossentropy", &[])
        .unwrap();
    let x = uniform(&[16, 6, 5, 3], 0.0, 255.0, 4);
    let y = Tensor::from_vec(vec![16], (0..16).map(|i| (i % 2) as f32).collect()).unwrap();
    let history = model
        .fit(&x, &y, FitOptions::default().epochs(5).batch_size(4).verbose(0))
        .unwrap();
    let losses = history.get("loss");
    assert!(losses.last() < losses.first(), "loss did not fall: {losses:?}");
    let path = std::env::temp_dir().join(format!("strata-image-layers-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    assert_eq!(loaded.config(), model.config());
    assert_eq!(loaded.predict(&x, 4).unwrap(), model.predict(&x, 4).unwrap());
}

#[test]
fn bad_arguments_name_the_layer_and_the_argument() {
    let build = |mut layer: Box<dyn Layer>, shape: &[usize]| {
        layer.set_name("culprit".into());
        layer.build_one(shape, &mut ParamStore::new(), &mut Rng::new(0))
    };
    let refused = |layer: Box<dyn Layer>, argument: &str| match build(layer, &[4, 4, 3]) {
        Err(Error::InvalidArgument { name, reason, .. }) => {
            assert_eq!(name, argument);
            assert!(reason.contains("culprit"), "{reason}");
        }
        other => panic!("{argument}: expected InvalidArgument, got {other:?}"),
    };
    refused(boxed(ReLU::new().max_value(-1.0)), "max_value");
    refused(boxed(ReLU::new().negative_slope(-0.1)), "negative_slope");
    refused(boxed(ReLU::new().threshold(f32::NAN)), "threshold");
    refused(boxed(UpSampling2D::new(2).interpolation("bicubic")), "interpolation");
    refused(boxed(UpSampling2D::new((0, 2))), "size");
    refused(boxed(ZeroPadding2D::new((usize::MAX, 0))), "padding");

    // Shapes: the error names the layer and the shape it got.
    let shape_error = |layer: Box<dyn Layer>, shape: &[usize]| match build(layer, shape) {
        Err(Error::LayerShape { layer, received, .. }) => {
            assert_eq!(layer, "culprit");
            received
        }
        other => panic!("expected LayerShape, got {other:?}"),
    };
    assert_eq!(
        shape_error(boxed(Cropping2D::new(((2, 2), (0, 0)))), &[4, 4, 3]),
        "(None, 4, 4, 3)"
    );
    assert_eq!(shape_error(boxed(ZeroPadding2D::new(1)), &[10]), "(None, 10)");
    assert_eq!(shape_error(boxed(UpSampling2D::new(2)), &[4, 4]), "(None, 4, 4)");
    assert_eq!(
        shape_error(boxed(Rescaling::new(vec![1.0, 2.0])), &[4, 4, 3]),
        "(None, 4, 4, 3)"
    );

    // Configs Keras would refuse, or strata cannot run.
    let from_config = |class: &str, config: serde_json::Value| strata::layers::from_config(class, &config);
    assert!(from_config("ZeroPadding2D", json!({"padding": 1, "data_format": "channels_first"})).is_err());
    assert!(from_config("ZeroPadding2D", json!({"padding": [1, 2, 3]})).is_err());
    assert!(from_config("Cropping2D", json!({"cropping": [[1], [2, 3]]})).is_err());
    assert!(from_config("Rescaling", json!({"scale": "half"})).is_err());
    assert!(from_config("ReLU", json!({"max_value": "six"})).is_err());
}

/// The output of a two-input layer on `(a, b)` and the worst gradient error of both inputs.
fn merge_two(layer: &mut dyn Layer, a: Tensor, b: Tensor) -> (Tensor, f32) {
    let mut params = ParamStore::new();
    layer.set_name("merge".into());
    let shapes = [a.shape()[1..].to_vec(), b.shape()[1..].to_vec()];
    layer.build(&shapes, &mut params, &mut Rng::new(0)).unwrap();
    let (a, b) = (params.add("a", a, true), params.add("b", b, true));
    let forward = |g: &mut strata::autograd::Graph| {
        let mut outputs = Vec::new();
        let inputs = [g.param(a), g.param(b)];
        layer.forward(g, &inputs, &mut outputs)?;
        Ok(outputs[0])
    };
    let mut tape = strata::autograd::Tape::new();
    let value = {
        let mut g = strata::autograd::Graph::new(&mut tape, &params, false);
        let y = forward(&mut g).unwrap();
        g.value(y).clone()
    };
    let error = strata::autograd::gradcheck::max_gradient_error(&mut params, common::EPS, |g| {
        let y = forward(g)?;
        common::project(g, y, 11)
    })
    .unwrap();
    (value, error)
}

#[test]
fn merge_layers_broadcast_squeeze_and_excitation_as_keras() {
    // (N, 1, 1, C) gates × (N, H, W, C) features, either order, and the other elementwise merges.
    let gates = uniform(&[2, 1, 1, 3], 0.1, 1.0, 21);
    let features = uniform(&[2, 2, 4, 3], -1.0, 1.0, 22);
    let layers: [fn() -> Box<dyn Layer>; 6] = [
        || boxed(Multiply::new()),
        || boxed(Add::new()),
        || boxed(Subtract::new()),
        || boxed(Average::new()),
        || boxed(Maximum::new()),
        || boxed(Minimum::new()),
    ];
    for make in layers {
        let mut layer = make();
        let class = layer.class_name();
        assert_eq!(
            layer.output_shapes(&[vec![1, 1, 3], vec![2, 4, 3]]).unwrap(),
            vec![vec![2, 4, 3]]
        );
        let (y, error) = merge_two(layer.as_mut(), gates.clone(), features.clone());
        assert!(error < TOLERANCE, "{class}: gradient error {error}");
        assert_eq!(y.shape(), &[2, 2, 4, 3], "{class}");
        // Element (n, h, w, c) combines gate (n, c) with feature (n, h, w, c).
        for (i, &out) in y.data().iter().enumerate() {
            let (n, c) = (i / 24, i % 3);
            let (g, f) = (gates.data()[n * 3 + c], features.data()[i]);
            let expected = match class {
                "Multiply" => g * f,
                "Add" => g + f,
                "Subtract" => g - f,
                "Average" => (g + f) / 2.0,
                "Minimum" => g.min(f),
                _ => g.max(f),
            };
            assert!(
                (out - expected).abs() < 1e-6,
                "{class} element {i}: {out} vs {expected}"
            );
        }
    }
    let (y, _) = merge_two(&mut Multiply::new(), features.clone(), gates.clone());
    assert_eq!(y.shape(), &[2, 2, 4, 3]);
}

#[test]
fn merge_layers_refuse_shapes_that_do_not_broadcast() {
    for shapes in [
        vec![vec![2, 2, 3], vec![3, 3, 3]],
        vec![vec![3], vec![2, 2, 3]],
        vec![vec![1, 1, 3], vec![2, 2, 4]],
    ] {
        match Multiply::new().name("gate").output_shapes(&shapes) {
            Err(Error::LayerShape { layer, received, .. }) => {
                assert_eq!(layer, "gate");
                assert!(received.contains("(None, "), "{received}");
            }
            other => panic!("{shapes:?}: expected LayerShape, got {other:?}"),
        }
    }
}

/// A plain reference depthwise convolution in f64: `x` `(N, H, W, C)`, `kernel` `(KH, KW, C,
/// M)`, TensorFlow's "same" split (extra padding at the bottom and right).
fn reference_depthwise(
    x: &Tensor,
    kernel: &Tensor,
    bias: &[f32],
    stride: usize,
    dilation: usize,
    same: bool,
) -> Vec<f32> {
    let [n, h, w, c] = <[usize; 4]>::try_from(x.shape()).unwrap();
    let [kh, kw, _, m] = <[usize; 4]>::try_from(kernel.shape()).unwrap();
    let out_size = |size: usize, k: usize| {
        let span = (k - 1) * dilation + 1;
        if same {
            let out = size.div_ceil(stride);
            (out, ((out - 1) * stride + span).saturating_sub(size) / 2)
        } else {
            ((size - span) / stride + 1, 0)
        }
    };
    let ((oh, pad_top), (ow, pad_left)) = (out_size(h, kh), out_size(w, kw));
    let mut out = Vec::new();
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for ch in 0..c {
                    for q in 0..m {
                        let mut sum = f64::from(bias[ch * m + q]);
                        for di in 0..kh {
                            for dj in 0..kw {
                                let (r, s) = (i * stride + di * dilation, j * stride + dj * dilation);
                                if r < pad_top || s < pad_left || r - pad_top >= h || s - pad_left >= w {
                                    continue;
                                }
                                let xv = x.data()[((b * h + r - pad_top) * w + s - pad_left) * c + ch];
                                let kv = kernel.data()[((di * kw + dj) * c + ch) * m + q];
                                sum += f64::from(xv) * f64::from(kv);
                            }
                        }
                        out.push(sum as f32);
                    }
                }
            }
        }
    }
    out
}

#[test]
fn depthwise_convolution_filters_each_channel_on_its_own() {
    // By hand: a 2×2 window of ones over a 2×3 image whose two channels hold 1..=6 and
    // 10·(1..=6): each output is its window's sum, channel by channel.
    let x = Tensor::from_vec(
        vec![1, 2, 3, 2],
        (1..=6).flat_map(|v| [v as f32, 10.0 * v as f32]).collect(),
    )
    .unwrap();
    let ones = DepthwiseConv2D::new(2).depthwise_initializer(Initializer::Constant(1.0));
    let (y, _) = run_layers(vec![boxed(ones)], &x, false);
    // Window sums: columns 0-1 hold 1+2+4+5 = 12, columns 1-2 hold 2+3+5+6 = 16.
    assert_eq!(y.shape(), &[1, 1, 2, 2]);
    assert_eq!(y.data(), &[12.0, 120.0, 16.0, 160.0]);
}

/// A depthwise layer with a random bias, so the bias is checked too.
fn depthwise(kernel: usize) -> DepthwiseConv2D {
    DepthwiseConv2D::new(kernel).bias_initializer(Initializer::RandomUniform {
        minval: -0.5,
        maxval: 0.5,
    })
}

#[test]
fn depthwise_convolution_matches_a_plain_loop_for_every_option() {
    let x = uniform(&[2, 7, 6, 3], -1.0, 1.0, 31);
    // (layer, stride, dilation, same padding)
    let cases = [
        (depthwise(3), 1, 1, false),
        (depthwise(3).padding("same"), 1, 1, true),
        (depthwise(3).padding("same").strides(2), 2, 1, true),
        (depthwise(2).padding("same").strides(2).depth_multiplier(2), 2, 1, true),
        (depthwise(3).dilation_rate(2).depth_multiplier(3), 1, 2, false),
    ];
    for (layer, stride, dilation, same) in cases {
        let what = format!("{:?}", layer.config());
        let (y, weights) = run_layers(vec![boxed(layer)], &x, false);
        let expected = reference_depthwise(&x, &weights[0], weights[1].data(), stride, dilation, same);
        assert_close(y.data(), &expected, 1e-5, &what);
    }
}

#[test]
fn depthwise_and_separable_convolutions_have_the_right_gradient() {
    let x = uniform(&[2, 5, 6, 3], -1.0, 1.0, 32);
    let cases: Vec<(&str, Box<dyn Layer>)> = vec![
        ("valid", boxed(depthwise(3))),
        ("same, stride 2", boxed(depthwise(3).padding("same").strides(2))),
        (
            "multiplier 2, dilation 2",
            boxed(depthwise(2).depth_multiplier(2).dilation_rate(2)),
        ),
        ("no bias, tanh", boxed(depthwise(3).use_bias(false).activation("tanh"))),
        (
            "separable",
            boxed(SeparableConv2D::new(4, 3).padding("same").depth_multiplier(2)),
        ),
    ];
    for (what, layer) in cases {
        let error = layer_gradient_error(vec![layer], x.clone(), |_| {});
        assert!(error < TOLERANCE, "DepthwiseConv2D {what}: gradient error {error}");
    }
}

#[test]
fn separable_convolution_is_depthwise_then_pointwise_with_keras_weights() {
    let x = uniform(&[1, 4, 4, 2], -1.0, 1.0, 33);
    let mut params = ParamStore::new();
    let mut layer = SeparableConv2D::new(3, 3).depth_multiplier(2).name("sep");
    assert_eq!(
        layer.build_one(&[4, 4, 2], &mut params, &mut Rng::new(1)).unwrap(),
        vec![2, 2, 3]
    );
    let names: Vec<_> = layer.params().iter().map(|&id| params.name(id).to_string()).collect();
    assert_eq!(names, ["sep/depthwise_kernel", "sep/pointwise_kernel", "sep/bias"]);
    let shapes: Vec<_> = layer
        .params()
        .iter()
        .map(|&id| params.value(id).shape().to_vec())
        .collect();
    assert_eq!(shapes, [vec![3, 3, 2, 2], vec![1, 1, 4, 3], vec![3]]);
    // Output = Σ_k depthwise[.., k] · pointwise[k, f] + bias[f], from the reference loop.
    let (y, weights) = run_layers(vec![boxed(SeparableConv2D::new(3, 3).depth_multiplier(2))], &x, false);
    let depthwise = reference_depthwise(&x, &weights[0], &[0.0; 4], 1, 1, false);
    let expected: Vec<f32> = depthwise
        .chunks(4)
        .flat_map(|d| {
            let (pointwise, bias) = (weights[1].data(), weights[2].data());
            (0..3).map(move |f| (0..4).map(|k| d[k] * pointwise[k * 3 + f]).sum::<f32>() + bias[f])
        })
        .collect();
    assert_close(y.data(), &expected, 1e-5, "SeparableConv2D");
}

#[test]
fn depthwise_layers_read_and_write_keras_configs() {
    // Keras 3's DepthwiseConv2D(3, depth_multiplier=2, strides=2, padding="same") config.
    let config = json!({
        "name": "dw", "trainable": true, "depth_multiplier": 2, "kernel_size": [3, 3],
        "strides": [2, 2], "padding": "same", "data_format": "channels_last",
        "dilation_rate": [1, 1], "activation": "relu6", "use_bias": false,
        "depthwise_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
            "config": {"seed": null}, "registered_name": null},
        "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {},
            "registered_name": null},
        "depthwise_regularizer": null, "bias_regularizer": null, "activity_regularizer": null,
        "depthwise_constraint": null, "bias_constraint": null
    });
    let layer = strata::layers::from_config("DepthwiseConv2D", &config).unwrap();
    assert_eq!(layer.output_shapes(&[vec![7, 6, 3]]).unwrap(), vec![vec![4, 3, 6]]);
    let written = layer.config();
    for key in [
        "depth_multiplier",
        "kernel_size",
        "strides",
        "padding",
        "activation",
        "use_bias",
    ] {
        assert_eq!(written[key], config[key], "{key}");
    }
    let again = strata::layers::from_config("DepthwiseConv2D", &written).unwrap();
    assert_eq!(again.config(), written);
    let separable = strata::layers::from_config(
        "SeparableConv2D",
        &json!({"filters": 8, "kernel_size": [3, 3], "pointwise_initializer": "he_normal"}),
    )
    .unwrap();
    assert_eq!(separable.class_name(), "SeparableConv2D");
    assert_eq!(separable.output_shapes(&[vec![5, 5, 2]]).unwrap(), vec![vec![3, 3, 8]]);
    let written = separable.config();
    assert_eq!(
        (written["filters"].as_u64(), written["pointwise_initializer"].as_str()),
        (Some(8), Some("he_normal"))
    );
    assert_eq!(
        strata::layers::from_config("SeparableConv2D", &written)
            .unwrap()
            .config(),
        written
    );
    // Errors name the layer and the argument.
    let build = |layer: DepthwiseConv2D, shape: &[usize]| {
        let mut layer = layer.name("culprit");
        layer.build_one(shape, &mut ParamStore::new(), &mut Rng::new(0))
    };
    for (layer, argument) in [
        (DepthwiseConv2D::new(3).depth_multiplier(0), "depth_multiplier"),
        (DepthwiseConv2D::new(3).padding("full"), "padding"),
        (SeparableConv2D::new(0, 3), "filters"),
    ] {
        match build(layer, &[5, 5, 2]) {
            Err(Error::InvalidArgument { name, reason, .. }) => {
                assert_eq!(name, argument);
                assert!(reason.contains("culprit"), "{reason}");
            }
            other => panic!("{argument}: expected InvalidArgument, got {other:?}"),
        }
    }
    match build(DepthwiseConv2D::new(5), &[3, 3, 2]) {
        Err(Error::LayerShape { layer, received, .. }) => {
            assert_eq!((layer.as_str(), received.as_str()), ("culprit", "(None, 3, 3, 2)"))
        }
        other => panic!("expected LayerShape, got {other:?}"),
    }
    assert!(
        strata::layers::from_config(
            "DepthwiseConv2D",
            &json!({"kernel_size": 3, "data_format": "channels_first"})
        )
        .is_err()
    );
    assert!(strata::layers::from_config("SeparableConv2D", &json!({"kernel_size": 3})).is_err());
}
