//! `Conv2DTranspose` (issue #16): values against a plain loop written from JAX's formulation
//! (a stride-dilated, padded input correlated with the flipped kernel), finite-difference
//! gradients of the input, kernel and bias, Keras's output sizes, parity with Keras itself
//! (tests/fixtures/keras/conv_transpose.*, from tools/make_decoder_fixtures.py), configs,
//! saving and loading, and errors that name the layer and the argument.

mod common;

use common::{TOLERANCE, assert_close, boxed, layer_gradient_error, run_layers, uniform};
use serde_json::json;
use strata::Error;
use strata::autograd::ParamStore;
use strata::initializers::Initializer;
use strata::prelude::*;
use strata::rng::Rng;

/// One axis of a transposed convolution as Keras's JAX backend pads it
/// (`_convert_conv_transpose_padding_args_from_keras_to_jax`): the padding `(left, right)`
/// around the stride-dilated input.
fn jax_padding(k: usize, stride: usize, dilation: usize, same: bool, output_padding: Option<usize>) -> (usize, usize) {
    let k = (k - 1) * dilation + 1;
    if !same {
        let extra = output_padding.unwrap_or(k.max(stride) - k);
        return (k - 1, k - 1 + extra);
    }
    let total = match output_padding {
        None => stride + k - 2,
        Some(extra) => k + k % 2 - 2 + extra,
    };
    let left = (total / 2 + total % 2).min(k - 1);
    (left, total - left)
}

/// Settings of a reference transposed convolution: stride, dilation, "same", output_padding.
type Settings = (usize, usize, bool, Option<usize>);

/// A plain transposed convolution in f64: `x` `(N, H, W, C)`, `kernel` `(KH, KW, F, C)`.
fn reference(
    x: &Tensor,
    kernel: &Tensor,
    bias: &[f32],
    (stride, dilation, same, extra): Settings,
) -> (Vec<usize>, Vec<f32>) {
    let [n, h, w, c] = <[usize; 4]>::try_from(x.shape()).unwrap();
    let [kh, kw, f, _] = <[usize; 4]>::try_from(kernel.shape()).unwrap();
    let (top, bottom) = jax_padding(kh, stride, dilation, same, extra);
    let (left, right) = jax_padding(kw, stride, dilation, same, extra);
    // The padded, dilated input's size, and the output's (a "valid" correlation over it).
    let ph = (h - 1) * stride + 1 + top + bottom;
    let pw = (w - 1) * stride + 1 + left + right;
    let (oh, ow) = (ph + 1 - ((kh - 1) * dilation + 1), pw + 1 - ((kw - 1) * dilation + 1));
    // The input pixel at padded position (r, s), if any.
    let pixel = |r: usize, s: usize| {
        let (r, s) = (r.checked_sub(top)?, s.checked_sub(left)?);
        (r % stride == 0 && s % stride == 0 && r / stride < h && s / stride < w).then_some((r / stride, s / stride))
    };
    let mut out = Vec::new();
    for b in 0..n {
        for i in 0..oh {
            for j in 0..ow {
                for (o, &offset) in bias.iter().enumerate().take(f) {
                    let mut sum = f64::from(offset);
                    for di in 0..kh {
                        for dj in 0..kw {
                            let Some((r, s)) = pixel(i + di * dilation, j + dj * dilation) else {
                                continue;
                            };
                            // The flipped kernel.
                            let (fi, fj) = (kh - 1 - di, kw - 1 - dj);
                            for ch in 0..c {
                                let xv = x.data()[((b * h + r) * w + s) * c + ch];
                                let kv = kernel.data()[((fi * kw + fj) * f + o) * c + ch];
                                sum += f64::from(xv) * f64::from(kv);
                            }
                        }
                    }
                    out.push(sum as f32);
                }
            }
        }
    }
    (vec![n, oh, ow, f], out)
}

/// A layer with a random bias, so the bias is checked too.
fn transpose(filters: usize, kernel: impl strata::layers::IntoPair) -> Conv2DTranspose {
    Conv2DTranspose::new(filters, kernel).bias_initializer(Initializer::RandomUniform {
        minval: -0.5,
        maxval: 0.5,
    })
}

#[test]
fn a_one_pixel_input_stamps_the_kernel() {
    // By hand: a 1×1 input of value 2 under a stride-1 "valid" 2×2 window writes 2·kernel,
    // one output channel per filter, plus the bias.
    let x = Tensor::from_vec(vec![1, 1, 1, 1], vec![2.0]).unwrap();
    let layer = Conv2DTranspose::new(1, 2)
        .kernel_initializer(Initializer::Constant(1.5))
        .bias_initializer(Initializer::Constant(0.25));
    let (y, _) = run_layers(vec![boxed(layer)], &x, false);
    assert_eq!(y.shape(), &[1, 2, 2, 1]);
    assert_eq!(y.data(), &[3.25; 4]);
    // Two pixels 1 and 10 a stride of 2 apart with a 3-wide window of ones: the middle column
    // is where both windows land, and a fifth column exists ("valid": (2-1)·2 + 3).
    let x = Tensor::from_vec(vec![1, 1, 2, 1], vec![1.0, 10.0]).unwrap();
    let layer = Conv2DTranspose::new(1, (1, 3))
        .strides((1, 2))
        .kernel_initializer(Initializer::Constant(1.0));
    let (y, _) = run_layers(vec![boxed(layer)], &x, false);
    assert_eq!(y.data(), &[1.0, 1.0, 11.0, 10.0, 10.0]);
}

#[test]
fn transposed_convolution_matches_a_plain_loop_for_every_option() {
    let x = uniform(&[2, 4, 3, 3], -1.0, 1.0, 61);
    let cases: Vec<(Conv2DTranspose, Settings)> = vec![
        (transpose(2, 3), (1, 1, false, None)),
        (transpose(2, 3).padding("same"), (1, 1, true, None)),
        (transpose(4, 3).strides(2), (2, 1, false, None)),
        (transpose(2, 3).strides(2).padding("same"), (2, 1, true, None)),
        (transpose(2, 2).strides(3), (3, 1, false, None)),
        (transpose(2, 3).strides(2).output_padding(1), (2, 1, false, Some(1))),
        (
            transpose(2, 3).strides(2).padding("same").output_padding(1),
            (2, 1, true, Some(1)),
        ),
        // An even window with "same" and output_padding 0: TensorFlow refuses it, JAX and
        // strata run it.
        (
            transpose(3, 4).strides(2).padding("same").output_padding(0),
            (2, 1, true, Some(0)),
        ),
        (
            transpose(2, 3).strides(3).padding("same").output_padding(2),
            (3, 1, true, Some(2)),
        ),
        (transpose(2, 5).padding("same"), (1, 1, true, None)),
        (transpose(2, 3).dilation_rate(2), (1, 2, false, None)),
        (transpose(2, 2).dilation_rate(2).padding("same"), (1, 2, true, None)),
    ];
    for (layer, settings) in cases {
        let what = format!("{}", layer.config());
        let (y, weights) = run_layers(vec![boxed(layer)], &x, false);
        let (shape, expected) = reference(&x, &weights[0], weights[1].data(), settings);
        assert_eq!(y.shape(), shape.as_slice(), "{what}");
        assert_close(y.data(), &expected, 1e-5, &what);
    }
}

#[test]
fn output_sizes_are_keras_sizes() {
    // Keras 3's compute_output_shape for a (7, 5, 3) input, worked out by its formula.
    let shape = |layer: Conv2DTranspose| layer.output_shapes(&[vec![7, 5, 3]]).unwrap().remove(0);
    assert_eq!(shape(Conv2DTranspose::new(4, 3)), [9, 7, 4]);
    assert_eq!(shape(Conv2DTranspose::new(4, 3).strides(2)), [15, 11, 4]);
    assert_eq!(shape(Conv2DTranspose::new(4, 2).strides(3)), [21, 15, 4]);
    assert_eq!(
        shape(Conv2DTranspose::new(4, 3).strides(2).padding("same")),
        [14, 10, 4]
    );
    assert_eq!(
        shape(Conv2DTranspose::new(4, 3).strides(2).output_padding(1)),
        [16, 12, 4]
    );
    assert_eq!(
        shape(
            Conv2DTranspose::new(4, (3, 4))
                .strides(2)
                .padding("same")
                .output_padding((1, 0))
        ),
        [14, 8, 4]
    );
    assert_eq!(shape(Conv2DTranspose::new(4, 3).dilation_rate(2)), [11, 9, 4]);
}

#[test]
fn transposed_convolutions_have_the_right_gradient() {
    let x = uniform(&[2, 3, 4, 2], -1.0, 1.0, 62);
    let cases: Vec<(&str, Box<dyn Layer>)> = vec![
        ("valid", boxed(transpose(3, 3))),
        ("same, stride 2", boxed(transpose(2, 3).strides(2).padding("same"))),
        (
            "valid, stride 3 over a 2-wide window",
            boxed(transpose(2, 2).strides(3)),
        ),
        (
            "valid, output_padding",
            boxed(transpose(2, (3, 2)).strides(2).output_padding((1, 0))),
        ),
        (
            "same, even window, output_padding",
            boxed(transpose(2, 4).strides(2).padding("same").output_padding(1)),
        ),
        ("dilation 2", boxed(transpose(2, 2).dilation_rate(2).padding("same"))),
        (
            "no bias, tanh",
            boxed(transpose(2, 3).strides(2).use_bias(false).activation("tanh")),
        ),
    ];
    for (what, layer) in cases {
        let error = layer_gradient_error(vec![layer], x.clone(), |_| {});
        assert!(error < TOLERANCE, "Conv2DTranspose {what}: gradient error {error}");
    }
}

/// The fixture's input batch and Keras's outputs for it.
fn keras_io(name: &str) -> (Tensor, Tensor) {
    let path = format!("{}/tests/fixtures/keras/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let json: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let tensor = |key: &str| {
        let shape: Vec<usize> = serde_json::from_value(json[format!("{key}_shape")].clone()).unwrap();
        let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
        Tensor::from_vec(shape, values).unwrap()
    };
    (tensor("input"), tensor("output"))
}

#[test]
fn imported_keras_transposed_convolutions_match_keras() {
    // Eight Conv2DTranspose branches side by side: valid and same, strides 1 to 3, with and
    // without output_padding, an even window, dilation, no bias (Keras on TensorFlow).
    let path = format!(
        "{}/tests/fixtures/keras/conv_transpose.keras",
        env!("CARGO_MANIFEST_DIR")
    );
    let mut model = strata::io::import_keras(path).unwrap();
    let classes = model
        .layers()
        .iter()
        .filter(|l| l.class_name() == "Conv2DTranspose")
        .count();
    assert_eq!(classes, 8);
    let (x, expected) = keras_io("conv_transpose");
    let y = model.predict(&x, 32).unwrap();
    assert_eq!(y.shape(), expected.shape());
    for (i, (a, e)) in y.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-4, "output {i}: strata {a}, Keras {e}");
    }
    // Saved by strata and loaded back: the same predictions.
    let saved = std::env::temp_dir().join(format!("strata-convt-{}.safetensors", common::run_id()));
    model.save(&saved).unwrap();
    let mut restored = strata::load_model(&saved).unwrap();
    std::fs::remove_file(&saved).ok();
    assert_eq!(restored.predict(&x, 32).unwrap(), y);
}

#[test]
fn a_decoder_saves_loads_and_counts_its_weights() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4, 4, 3]))
        .add(
            Conv2DTranspose::new(5, 3)
                .strides(2)
                .padding("same")
                .activation("relu")
                .name("up"),
        )
        .add(Conv2DTranspose::new(2, (2, 3)).output_padding(0).strides(1).name("out"));
    model.compile("adam", "mse", &[]).unwrap();
    // (3·3·5·3 + 5) + (2·3·2·5 + 2) weights.
    assert_eq!(model.count_params(), 140 + 62);
    let names: Vec<_> = model.weights().keys().cloned().collect();
    assert!(names.contains(&"up/kernel".to_string()), "{names:?}");
    assert_eq!(model.weights()["up/kernel"].shape(), &[3, 3, 5, 3]);
    let x = uniform(&[2, 4, 4, 3], -1.0, 1.0, 63);
    let y = uniform(&[2, 9, 10, 2], -1.0, 1.0, 64);
    model
        .fit(&x, &y, FitOptions::default().epochs(1).batch_size(2).verbose(0))
        .unwrap();
    let path = std::env::temp_dir().join(format!("strata-decoder-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut restored = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(model.predict(&x, 2).unwrap(), restored.predict(&x, 2).unwrap());
    assert_eq!(model.summary().unwrap(), restored.summary().unwrap());
}

#[test]
fn keras_configs_read_and_write_and_bad_ones_are_named() {
    // Keras 3's Conv2DTranspose(4, 3, strides=2, padding="same", output_padding=1) config.
    let config = json!({
        "name": "up", "trainable": true, "dtype": {"module": "keras", "class_name": "DTypePolicy",
            "config": {"name": "float32"}, "registered_name": null},
        "filters": 4, "kernel_size": [3, 3], "strides": [2, 2], "padding": "same",
        "output_padding": [1, 1], "data_format": "channels_last", "dilation_rate": [1, 1],
        "activation": "relu", "use_bias": true,
        "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform",
            "config": {"seed": null}, "registered_name": null},
        "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {},
            "registered_name": null},
        "kernel_regularizer": null, "bias_regularizer": null, "activity_regularizer": null,
        "kernel_constraint": null, "bias_constraint": null
    });
    let layer = strata::layers::from_config("Conv2DTranspose", &config).unwrap();
    assert_eq!(layer.output_shapes(&[vec![5, 4, 2]]).unwrap(), vec![vec![10, 8, 4]]);
    let shapes: Vec<_> = layer
        .param_shapes(&[vec![5, 4, 2]])
        .unwrap()
        .into_iter()
        .map(|p| p.shape)
        .collect();
    assert_eq!(shapes, [vec![3, 3, 4, 2], vec![4]]);
    let written = layer.config();
    for key in [
        "filters",
        "kernel_size",
        "strides",
        "padding",
        "output_padding",
        "activation",
        "use_bias",
    ] {
        assert_eq!(written[key], config[key], "{key}");
    }
    let again = strata::layers::from_config("Conv2DTranspose", &written).unwrap();
    assert_eq!(again.config(), written);
    assert_eq!(
        Conv2DTranspose::new(2, 3).config()["output_padding"],
        serde_json::Value::Null
    );
    // Keys strata does not read, and settings it lacks, are refused by name.
    let refused = |extra: serde_json::Value| {
        let mut config = config.clone();
        config
            .as_object_mut()
            .unwrap()
            .extend(extra.as_object().unwrap().clone());
        strata::layers::from_config("Conv2DTranspose", &config)
            .err()
            .map(|e| e.to_string())
    };
    for (extra, key) in [
        (json!({"output_paddin": 1}), "output_paddin"),
        (json!({"data_format": "channels_first"}), "data_format"),
        (
            json!({"kernel_constraint": {"class_name": "NonNeg", "config": {}}}),
            "kernel_constraint",
        ),
        (json!({"output_padding": [1, -1]}), "output_padding"),
    ] {
        let message = refused(extra).unwrap_or_default();
        assert!(message.contains(key), "{key}: {message}");
    }
    // Arguments Keras refuses are refused when the model is built, naming the layer.
    let build = |layer: Conv2DTranspose, shape: &[usize]| {
        let mut layer = layer.name("culprit");
        layer.build_one(shape, &mut ParamStore::new(), &mut Rng::new(0))
    };
    for (layer, argument) in [
        (Conv2DTranspose::new(0, 3), "filters"),
        (Conv2DTranspose::new(2, 3).padding("full"), "padding"),
        (
            Conv2DTranspose::new(2, 3).strides(2).output_padding(2),
            "output_padding",
        ),
        (Conv2DTranspose::new(2, 3).output_padding((0, 1)), "output_padding"),
        (Conv2DTranspose::new(2, 3).strides(2).dilation_rate(2), "dilation_rate"),
        (Conv2DTranspose::new(2, 3).strides(usize::MAX), "strides"),
    ] {
        match build(layer, &[5, 5, 2]) {
            Err(Error::InvalidArgument { name, reason, .. }) => {
                assert_eq!(name, argument);
                assert!(reason.contains("culprit"), "{reason}");
            }
            other => panic!("{argument}: expected InvalidArgument, got {other:?}"),
        }
    }
    // A window that would need 40 GB of products per sample is refused before any is made.
    let huge = build(Conv2DTranspose::new(100, 100), &[100, 100, 1]);
    assert!(matches!(huge, Err(Error::OverBudget { .. })), "{huge:?}");
    match build(Conv2DTranspose::new(2, 3), &[5, 5]) {
        Err(Error::LayerShape { layer, received, .. }) => {
            assert_eq!((layer.as_str(), received.as_str()), ("culprit", "(None, 5, 5)"))
        }
        other => panic!("expected LayerShape, got {other:?}"),
    }
}
