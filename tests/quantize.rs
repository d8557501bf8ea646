//! Int8 quantization (`model.quantize("int8")`, Keras 3's semantics): the products against a
//! hand-written Keras formula, accuracy of quantized MNIST models against their f32 selves,
//! the file format's round trip and size, and the errors.
mod common;

use std::sync::OnceLock;
use strata::data::{mnist, scale};
use strata::model::{ActivationScale, QuantizeOptions};
use strata::prelude::*;

/// MNIST with pixels in [0, 1], loaded once.
fn mnist_scaled() -> &'static ((Tensor, Tensor), (Tensor, Tensor)) {
    static DATA: OnceLock<((Tensor, Tensor), (Tensor, Tensor))> = OnceLock::new();
    DATA.get_or_init(|| {
        let ((x_train, y_train), (x_test, y_test)) = mnist::load_data().unwrap();
        (
            (scale(&x_train, 1.0 / 255.0), y_train),
            (scale(&x_test, 1.0 / 255.0), y_test),
        )
    })
}

/// Samples `0..n` of the training (`train`) or test split, as `(n, 28, 28, 1)` images.
fn images(n: usize, train: bool) -> (Tensor, Tensor) {
    let ((x_train, y_train), (x_test, y_test)) = mnist_scaled();
    let (x, y) = if train { (x_train, y_train) } else { (x_test, y_test) };
    (x.slice_rows(0, n).reshape(&[n, 28, 28, 1]).unwrap(), y.slice_rows(0, n))
}

fn quiet(epochs: usize) -> FitOptions<'static> {
    FitOptions::default().epochs(epochs).batch_size(64).verbose(0)
}

/// Keras's `abs_max_quantize` written out plainly: scale, round half to even, clip.
fn keras_quantize(values: &[f32]) -> (Vec<f32>, f32) {
    let max = values.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let scale = 127.0f32 / (max + 1e-7);
    let q = values
        .iter()
        .map(|v| (v * scale).round_ties_even().clamp(-127.0, 127.0))
        .collect();
    (q, scale)
}

/// A quantized Dense gives exactly Keras's `_int8_call`: per-row input scales, per-unit kernel
/// scales, the integer product divided by their product, then the bias (and a ReLU, fused into
/// the same pass, for `activation="relu"`).
#[test]
fn int8_dense_computes_keras_formula_exactly() {
    for activation in ["linear", "relu"] {
        int8_dense_matches_keras(activation);
    }
}

fn int8_dense_matches_keras(activation: &str) {
    let (inputs, units) = (37, 5);
    let mut model = Sequential::new();
    model
        .add(Input::new(&[inputs]))
        .add(Dense::new(units).activation(activation));
    model.compile("sgd", "mse", &[]).unwrap();
    let kernel: Vec<f32> = (0..inputs * units)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) / 77.0)
        .collect();
    let bias: Vec<f32> = (0..units).map(|i| i as f32 * 0.25 - 0.5).collect();
    let ids: Vec<_> = model.params().ids().collect();
    model.params_mut().value_mut(ids[0]).data_mut().copy_from_slice(&kernel);
    model.params_mut().value_mut(ids[1]).data_mut().copy_from_slice(&bias);
    let rows = 6;
    let x: Vec<f32> = (0..rows * inputs)
        .map(|i| ((i * 13 % 29) as f32 - 14.0) * 0.37)
        .collect();
    let x = Tensor::from_vec(vec![rows, inputs], x).unwrap();
    model.quantize("int8").unwrap();
    let got = model.predict(&x, 32).unwrap();

    let mut kernel_q = vec![0.0f32; inputs * units];
    let mut kernel_scales = vec![0.0f32; units];
    for n in 0..units {
        let column: Vec<f32> = (0..inputs).map(|k| kernel[k * units + n]).collect();
        let (q, s) = keras_quantize(&column);
        kernel_scales[n] = s;
        for k in 0..inputs {
            kernel_q[k * units + n] = q[k];
        }
    }
    for r in 0..rows {
        let (xq, xs) = keras_quantize(&x.data()[r * inputs..(r + 1) * inputs]);
        for n in 0..units {
            let sum: i32 = (0..inputs).map(|k| xq[k] as i32 * kernel_q[k * units + n] as i32).sum();
            let mut want = sum as f32 / (xs * kernel_scales[n]) + bias[n];
            if activation == "relu" {
                want = want.max(0.0);
            }
            assert_eq!(
                got.data()[r * units + n].to_bits(),
                want.to_bits(),
                "{activation}: row {r}, unit {n}"
            );
        }
    }
}

/// A quantized Embedding looks up `q / scale` per row, as Keras's int8 `Embedding`.
#[test]
fn int8_embedding_dequantizes_each_row() {
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Embedding::new(4, 6));
    model.compile("sgd", "mse", &[]).unwrap();
    let id = model.params().ids().next().unwrap();
    let table: Vec<f32> = model.params().value(id).data().to_vec();
    model.quantize("int8").unwrap();
    let ids = Tensor::from_vec(vec![1, 3], vec![3.0, 0.0, 2.0]).unwrap();
    let got = model.predict(&ids, 1).unwrap();
    for (slot, &token) in [3usize, 0, 2].iter().enumerate() {
        let (q, s) = keras_quantize(&table[token * 6..(token + 1) * 6]);
        for (d, q) in q.iter().enumerate() {
            assert_eq!(got.data()[slot * 6 + d], q / s);
        }
    }
}

/// Conv2D and Conv1D in int8 stay close to their f32 outputs (one scale per image and per
/// filter: the error is a fraction of the output's range), with "same" padding and strides.
#[test]
fn int8_convolutions_stay_close_to_f32() {
    for one_dimensional in [false, true] {
        let mut model = Sequential::new();
        if one_dimensional {
            model
                .add(Input::new(&[20, 3]))
                .add(Conv1D::new(7, 3).padding("same").strides(2));
        } else {
            model
                .add(Input::new(&[9, 8, 3]))
                .add(Conv2D::new(7, 3).padding("same").strides(2));
        }
        model.compile("sgd", "mse", &[]).unwrap();
        let shape: Vec<usize> = std::iter::once(4)
            .chain(model.input_shape().unwrap().iter().copied())
            .collect();
        let len: usize = shape.iter().product();
        let x = Tensor::from_vec(
            shape,
            (0..len).map(|i| ((i * 7919 % 211) as f32 / 105.0) - 1.0).collect(),
        )
        .unwrap();
        let want = model.predict(&x, 4).unwrap();
        model.quantize("int8").unwrap();
        let got = model.predict(&x, 4).unwrap();
        let range = want.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let worst = want
            .data()
            .iter()
            .zip(got.data())
            .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            worst < 0.02 * range,
            "conv1d {one_dimensional}: error {worst} of range {range}"
        );
    }
}

/// The README's MLP trained briefly, then quantized: test accuracy within the 0.5
/// points, per row (Keras's) and per tensor; saved and loaded, its outputs are bit-identical
/// and its file about four times smaller.
#[test]
fn quantized_mlp_keeps_its_accuracy_and_round_trips() {
    let (x_train, y_train) = images(12000, true);
    let (x_test, y_test) = images(5000, false);
    let flat = |x: Tensor| {
        let rows = x.rows();
        x.reshape(&[rows, 784]).unwrap()
    };
    let (x_train, x_test) = (flat(x_train), flat(x_test));
    let mut model = Sequential::new();
    model
        .add(Input::new(&[784]))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model.fit(&x_train, &y_train, quiet(2)).unwrap();
    let dir = std::env::temp_dir().join(format!("strata-quantize-mlp-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (f32_path, int8_path) = (dir.join("mlp.safetensors"), dir.join("mlp-int8.safetensors"));
    model.save(&f32_path).unwrap();
    let f32_accuracy = model.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();

    let mut per_tensor = strata::load_model(&f32_path).unwrap();
    per_tensor.quantize_with("int8", ActivationScale::PerTensor).unwrap();
    let per_tensor_accuracy = per_tensor.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();

    model.quantize("int8").unwrap();
    let int8_accuracy = model.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();
    eprintln!(
        "mlp test accuracy: f32 {f32_accuracy:.4}, int8 per row {int8_accuracy:.4}, per tensor {per_tensor_accuracy:.4}"
    );
    assert!(f32_accuracy > 0.88, "f32 accuracy {f32_accuracy}");
    assert!(
        (int8_accuracy - f32_accuracy).abs() <= 0.005,
        "int8 {int8_accuracy} vs f32 {f32_accuracy}"
    );
    assert!(
        (per_tensor_accuracy - f32_accuracy).abs() <= 0.005,
        "per tensor {per_tensor_accuracy}"
    );

    model.save(&int8_path).unwrap();
    let mut loaded = strata::load_model(&int8_path).unwrap();
    assert!(loaded.is_quantized());
    let before = model.predict(&x_test.slice_rows(0, 64), 32).unwrap();
    let after = loaded.predict(&x_test.slice_rows(0, 64), 32).unwrap();
    assert!(
        before
            .data()
            .iter()
            .zip(after.data())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    let size = |p: &std::path::Path| std::fs::metadata(p).unwrap().len() as f64;
    // Saved after training, the f32 file also holds Adam's two slots per weight; compare the
    // weights alone: the int8 file against 4 bytes per weight.
    let ratio = (4 * model.count_params()) as f64 / size(&int8_path);
    eprintln!(
        "mlp file: f32 weights {} bytes, int8 file {} bytes ({ratio:.2}× smaller)",
        4 * model.count_params(),
        size(&int8_path)
    );
    assert!(ratio > 3.5, "int8 file only {ratio:.2}× smaller");
    // The int8 file names its tensors' dtypes: a plain f32 reader of `dense/kernel` meets I8.
    let bytes = std::fs::read(&int8_path).unwrap();
    assert!(String::from_utf8_lossy(&bytes[..2000.min(bytes.len())]).contains("\"I8\""));
    // Training it is refused, with Keras's advice.
    let error = loaded
        .fit(&x_train.slice_rows(0, 64), &y_train.slice_rows(0, 64), quiet(1))
        .unwrap_err();
    assert!(
        error.to_string().contains("train it in float32 and quantize after"),
        "{error}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// The Keras MNIST CNN trained briefly, then quantized (convolutions and Dense in int8):
/// test accuracy within the 0.2 points, dynamically (per image, per batch) and
/// calibrated on 500 training images (fixed input scales). Calibrated, the two convolutions
/// stay int8 between them (through the pooling), with the same bits as an `f32` round trip.
#[test]
fn quantized_cnn_keeps_its_accuracy() {
    let (x_train, y_train) = images(8000, true);
    let (x_test, y_test) = images(5000, false);
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(32, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dense::new(10).activation("softmax"));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model.fit(&x_train, &y_train, quiet(1)).unwrap();
    let f32_accuracy = model.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();
    let path = std::env::temp_dir().join(format!("strata-quantize-cnn-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut per_tensor = strata::load_model(&path).unwrap();
    let mut calibrated = strata::load_model(&path).unwrap();
    let mut round_trip = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let sample = x_train.slice_rows(0, 500);
    let options = QuantizeOptions {
        calibration: Some(&sample),
        ..Default::default()
    };
    calibrated.quantize_with_options("int8", options).unwrap();
    let calibrated_accuracy = calibrated.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();
    let first = calibrated.params().ids().next().unwrap();
    assert!(calibrated.params().quantized(first).unwrap().output_scale().is_some());
    let options = QuantizeOptions {
        f32_between_layers: true,
        ..options
    };
    round_trip.quantize_with_options("int8", options).unwrap();
    assert!(round_trip.params().quantized(first).unwrap().output_scale().is_none());
    let some = x_test.slice_rows(0, 300);
    let (linked, unlinked) = (
        calibrated.predict(&some, 128).unwrap(),
        round_trip.predict(&some, 128).unwrap(),
    );
    assert!(
        linked
            .data()
            .iter()
            .zip(unlinked.data())
            .all(|(a, b)| a.to_bits() == b.to_bits()),
        "int8 between the convolutions differs from the f32 round trip"
    );
    model.quantize("int8").unwrap();
    let int8_accuracy = model.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();
    per_tensor.quantize_with("int8", ActivationScale::PerTensor).unwrap();
    let per_tensor_accuracy = per_tensor.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();
    eprintln!(
        "cnn test accuracy: f32 {f32_accuracy:.4}, int8 per image {int8_accuracy:.4}, per tensor \
         {per_tensor_accuracy:.4}, calibrated {calibrated_accuracy:.4}"
    );
    assert!(f32_accuracy > 0.85, "f32 accuracy {f32_accuracy}");
    assert!(
        (int8_accuracy - f32_accuracy).abs() <= 0.002,
        "int8 {int8_accuracy} vs f32 {f32_accuracy}"
    );
    assert!(
        (per_tensor_accuracy - f32_accuracy).abs() <= 0.005,
        "per tensor {per_tensor_accuracy}"
    );
    assert!(
        (calibrated_accuracy - f32_accuracy).abs() <= 0.002,
        "calibrated {calibrated_accuracy} vs f32 {f32_accuracy}"
    );
}

/// A calibrated model with a DepthwiseConv2D: every kernel int8 (the depthwise one per output
/// channel), outputs close to f32, input scales found on the sample; saved and loaded, the
/// outputs are bit-identical (the fixed scales are in the file).
#[test]
fn calibrated_depthwise_model_round_trips() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[10, 9, 3]))
        .add(
            DepthwiseConv2D::new(3)
                .depth_multiplier(2)
                .padding("same")
                .activation("relu"),
        )
        .add(Conv2D::new(5, 3).strides(2).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(4));
    model.compile("sgd", "mse", &[]).unwrap();
    let len = 6 * 10 * 9 * 3;
    let x = Tensor::from_vec(
        vec![6, 10, 9, 3],
        (0..len).map(|i| ((i * 7919 % 211) as f32 / 105.0) - 1.0).collect(),
    )
    .unwrap();
    let want = model.predict(&x, 6).unwrap();
    let options = QuantizeOptions {
        calibration: Some(&x),
        ..Default::default()
    };
    let report = model.quantize_with_options("int8", options).unwrap();
    assert!(report.iter().all(|layer| layer.int8), "{report:?}");
    let got = model.predict(&x, 3).unwrap();
    let range = want.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    let worst = want
        .data()
        .iter()
        .zip(got.data())
        .fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
    assert!(worst < 0.03 * range, "error {worst} of range {range}");
    let kernel = model.params().ids().next().unwrap();
    let quantized = model.params().quantized(kernel).unwrap();
    assert_eq!(quantized.scales().len(), 6, "one scale per depthwise output channel");
    // The first layer sees the sample itself: its scale is 127 over the sample's largest value.
    let max = x.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
    assert_eq!(quantized.input_scale(), Some(127.0 / (max + 1e-7)));

    let path = std::env::temp_dir().join(format!("strata-calibrated-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let again = loaded.predict(&x, 3).unwrap();
    assert!(
        got.data()
            .iter()
            .zip(again.data())
            .all(|(a, b)| a.to_bits() == b.to_bits())
    );
    // A calibration sample of the wrong shape is refused before anything changes.
    let mut other = Sequential::new();
    other.add(Input::new(&[4])).add(Dense::new(2));
    other.compile("sgd", "mse", &[]).unwrap();
    let wrong = Tensor::zeros(&[2, 5]);
    let options = QuantizeOptions {
        calibration: Some(&wrong),
        ..Default::default()
    };
    assert!(other.quantize_with_options("int8", options).is_err());
    assert!(!other.is_quantized());
}

/// The summary marks each layer with weights int8 or f32 and gives the new sizes; other
/// modes and a second quantization are errors.
#[test]
fn summary_and_errors() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[8]))
        .add(Dense::new(16).activation("relu"))
        .add(LayerNormalization::new())
        .add(Dense::new(2));
    model.compile("sgd", "mse", &[]).unwrap();
    let error = model.quantize("int4").unwrap_err().to_string();
    assert!(error.contains("\"int8\" only"), "{error}");
    let error = model.quantize("int9").unwrap_err().to_string();
    assert!(error.contains("float8"), "{error}");
    let report = model.quantize("int8").unwrap();
    let kept: Vec<&str> = report
        .iter()
        .filter(|l| !l.int8)
        .map(|l| l.class_name.as_str())
        .collect();
    assert_eq!(kept, ["LayerNormalization"]);
    let summary = model.summary().unwrap();
    assert!(summary.contains("dense (Dense, int8)"), "{summary}");
    assert!(summary.contains("(LayerNormalization, f32)"), "{summary}");
    assert!(
        summary.contains("Quantized (int8): 160 weights in int8, 18 scales"),
        "{summary}"
    );
    assert!(
        model
            .quantize("int8")
            .unwrap_err()
            .to_string()
            .contains("already quantized")
    );
}

/// A file whose int8 weight the metadata does not describe, or whose scales are bad, is
/// refused with the weight, its dtype or the bad value named; nothing panics.
#[test]
fn damaged_int8_files_are_refused_by_name() {
    use safetensors::tensor::{Dtype, TensorView};
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Dense::new(2));
    model.compile("sgd", "mse", &[]).unwrap();
    let path = std::env::temp_dir().join(format!("strata-int8-damaged-{}.safetensors", common::run_id()));
    let kernel = [1u8, 2, 3, 4, 5, 0x80];
    let bias = [0u8; 8];
    let scales = [0u8, 0, 128, 63, 0, 0, 192, 127]; // 1.0 and NaN
    let write = |metadata: Option<std::collections::HashMap<String, String>>| {
        let views = vec![
            ("dense/kernel", TensorView::new(Dtype::I8, vec![3, 2], &kernel).unwrap()),
            (
                "dense/kernel_scale",
                TensorView::new(Dtype::F32, vec![2], &scales).unwrap(),
            ),
            ("dense/bias", TensorView::new(Dtype::F32, vec![2], &bias).unwrap()),
        ];
        std::fs::write(&path, safetensors::serialize(views, metadata).unwrap()).unwrap();
    };
    write(None);
    let error = model.load_weights(&path).unwrap_err().to_string();
    assert!(error.contains("'dense/kernel' is I8"), "{error}");
    let described = serde_json::json!({"dense/kernel": {"mode": "int8", "axis": "columns", "activations": "per_row"}});
    write(Some([("quantization".to_string(), described.to_string())].into()));
    let error = model.load_weights(&path).unwrap_err().to_string();
    assert!(error.contains("NaN") || error.contains("-128"), "{error}");
    std::fs::remove_file(&path).ok();
}

/// `predict` folds a max pooling into the int8 ReLU convolution before it (and reads images
/// with whole groups of four channels in place, padded for "same"): the outputs are the bits
/// of the unfused layers, per row, per tensor and calibrated, on a batch and on one image.
#[test]
fn folded_int8_pooling_gives_the_unfused_bits() {
    let make = || {
        let mut model = Sequential::new();
        model
            .add(Input::new(&[12, 11, 3]))
            .add(Conv2D::new(8, 3).padding("same").activation("relu"))
            .add(MaxPooling2D::new(2))
            .add(Conv2D::new(16, 3).activation("relu"))
            .add(MaxPooling2D::new((1, 2)))
            .add(Conv2D::new(36, 2).strides(2).padding("same").activation("relu"))
            .add(MaxPooling2D::new((2, 1)))
            .add(Flatten::new())
            .add(Dense::new(5));
        model.compile("sgd", "mse", &[]).unwrap();
        model
    };
    let x = Tensor::from_vec(
        vec![5, 12, 11, 3],
        (0..5 * 12 * 11 * 3)
            .map(|i| ((i * 7919 % 211) as f32 / 105.0) - 0.7)
            .collect(),
    )
    .unwrap();
    let reference = make();
    for mode in 0..3 {
        let mut model = make();
        for id in reference.params().ids() {
            *model.params_mut().value_mut(id) = reference.params().value(id).clone();
        }
        match mode {
            0 => model.quantize("int8").map(drop).unwrap(),
            1 => model
                .quantize_with("int8", ActivationScale::PerTensor)
                .map(drop)
                .unwrap(),
            _ => {
                let options = QuantizeOptions {
                    calibration: Some(&x),
                    ..Default::default()
                };
                model.quantize_with_options("int8", options).map(drop).unwrap();
            }
        }
        for rows in [5, 1] {
            let x = x.slice_rows(0, rows);
            let fused = model.predict(&x, rows).unwrap();
            model.set_inference_fusion(false);
            let plain = model.predict(&x, rows).unwrap();
            model.set_inference_fusion(true);
            let bits = |t: &Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&fused), bits(&plain), "mode {mode}, {rows} rows");
            assert!(fused.data().iter().any(|v| *v != 0.0));
        }
    }
}

/// MNIST digits 0–4 as `tools/make_keras_quantize_fixture.py` gives them to Keras's MobileNet:
/// the first `count` of the training or test split, each at the centre of a 32×32 image with
/// three equal channels, pixels `v / 127.5 − 1` (the border −1).
fn digits_for_mobilenet(count: usize, train: bool) -> (Tensor, Tensor) {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data().unwrap();
    let (x, y) = if train { (x_train, y_train) } else { (x_test, y_test) };
    let (mut images, mut labels) = (Vec::new(), Vec::new());
    for (row, &label) in y.data().iter().enumerate() {
        if label >= 5.0 {
            continue;
        }
        let mut image = vec![-1.0f32; 32 * 32 * 3];
        for (at, &pixel) in x.data()[row * 784..][..784].iter().enumerate() {
            let (py, px) = (at / 28 + 2, at % 28 + 2);
            image[(py * 32 + px) * 3..][..3].fill(pixel / 127.5 - 1.0);
        }
        images.extend(image);
        labels.push(label);
        if labels.len() == count {
            break;
        }
    }
    let n = labels.len();
    (
        Tensor::from_vec(vec![n, 32, 32, 3], images).unwrap(),
        Tensor::from_vec(vec![n], labels).unwrap(),
    )
}

/// Issue #23's imported Keras Applications model: Keras's MobileNet (alpha 0.25, 32×32×3, 5
/// classes) trained in Keras on MNIST digits 0–4 (tools/make_keras_quantize_fixture.py; no
/// pre-trained weights can be downloaded here). Imported, it predicts as Keras did and scores
/// Keras's test accuracy; quantized to int8 per row (Keras's), per tensor and calibrated, its
/// test accuracy stays within the 0.5 points of f32.
#[test]
fn an_imported_keras_application_keeps_its_accuracy_in_int8() {
    let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras");
    let keras: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixtures.join("mobilenet_digits.json")).unwrap()).unwrap();
    let test_images = keras["test_images"].as_u64().unwrap() as usize;
    let (x_test, y_test) = digits_for_mobilenet(test_images, false);
    let import = || strata::io::import_keras(fixtures.join("mobilenet_digits.keras")).unwrap();
    let mut model = import();
    assert!(model.layers().iter().any(|l| l.class_name() == "DepthwiseConv2D"));
    let outputs: Vec<Vec<f32>> = serde_json::from_value(keras["outputs"].clone()).unwrap();
    let first = model.predict(&x_test.slice_rows(0, outputs.len()), 8).unwrap();
    for (got, want) in first.data().chunks(5).zip(&outputs) {
        for (a, b) in got.iter().zip(want) {
            assert!((a - b).abs() < 1e-4, "strata {got:?}, Keras {want:?}");
        }
    }
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    let f32_accuracy = model.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();
    let keras_accuracy = keras["test_accuracy"].as_f64().unwrap() as f32;
    assert!(
        (f32_accuracy - keras_accuracy).abs() <= 0.001,
        "strata {f32_accuracy}, Keras {keras_accuracy}"
    );
    let (sample, _) = digits_for_mobilenet(300, true);
    let mut accuracies = Vec::new();
    for mode in ["per row", "per tensor", "calibrated"] {
        let mut quantized = import();
        quantized
            .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
            .unwrap();
        match mode {
            "per row" => quantized.quantize("int8").map(drop).unwrap(),
            "per tensor" => quantized
                .quantize_with("int8", ActivationScale::PerTensor)
                .map(drop)
                .unwrap(),
            _ => {
                let options = QuantizeOptions {
                    calibration: Some(&sample),
                    ..Default::default()
                };
                quantized.quantize_with_options("int8", options).map(drop).unwrap()
            }
        }
        let accuracy = quantized.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap();
        accuracies.push((mode, accuracy));
    }
    eprintln!(
        "imported MobileNet test accuracy: f32 {f32_accuracy:.4} (Keras {keras_accuracy:.4}), int8 {accuracies:?}"
    );
    for (mode, accuracy) in accuracies {
        assert!(
            (accuracy - f32_accuracy).abs() <= 0.005,
            "int8 {mode}: {accuracy} against f32 {f32_accuracy}"
        );
    }
}
