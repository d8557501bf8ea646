//! What the Keras Applications need beyond single layers' defaults (issue #16): the
//! `Normalization` layer, `GlobalAveragePooling2D(keepdims=True)`, and Keras's axes counted
//! with the batch (`Concatenate(axis=3)`, `BatchNormalization(axis=3)` on images).

mod common;

use common::{TOLERANCE, boxed, layer_gradient_error, run_layers, uniform};
use serde_json::json;
use strata::prelude::*;

fn from_keras(class: &str, config: serde_json::Value) -> Box<dyn Layer> {
    strata::layers::from_config(class, &config).unwrap()
}

#[test]
fn normalization_standardizes_each_channel_and_inverts() {
    // Two pixels of two channels; channel 0 has mean 1 and variance 4, channel 1 mean -1 and
    // variance 0 (divided by Keras's floor, 1e-7, not by zero).
    let x = Tensor::from_vec(vec![1, 1, 2, 2], vec![3.0, -1.0, -1.0, -0.5]).unwrap();
    let layer = Normalization::with_statistics(vec![1.0, -1.0], vec![4.0, 0.0]);
    let y = run_layers(vec![boxed(layer)], &x, false).0;
    let expected = [1.0, 0.0, -1.0, 0.5 / 1e-7];
    for (a, e) in y.data().iter().zip(expected) {
        assert!((a - e).abs() <= 1e-6 * e.abs().max(1.0), "{:?}", y.data());
    }
    let inverse = Normalization::with_statistics(vec![1.0, -1.0], vec![4.0, 0.0]).invert(true);
    let back = run_layers(vec![boxed(inverse)], &y, false).0;
    assert!((back.data()[0] - 3.0).abs() < 1e-5 && (back.data()[2] + 1.0).abs() < 1e-5);
}

#[test]
fn normalization_from_keras_keeps_its_statistics_as_weights_or_in_its_config() {
    // EfficientNet: statistics as weights (mean, variance, count), axis counted with the batch.
    let layer = from_keras(
        "Normalization",
        json!({"name": "norm", "axis": [3], "mean": null, "variance": null}),
    );
    let shapes = layer.param_shapes(&[vec![4, 4, 3]]).unwrap();
    let shapes: Vec<&[usize]> = shapes.iter().map(|p| p.shape.as_slice()).collect();
    assert_eq!(shapes, [&[3][..], &[3], &[]]);
    let (_, weights) = run_layers(vec![layer], &uniform(&[1, 4, 4, 3], 0.0, 1.0, 1), false);
    assert_eq!(weights.len(), 3);
    // EfficientNetV2: statistics in the config, no weights; written back as read.
    let layer = from_keras(
        "Normalization",
        json!({"name": "norm", "axis": -1, "mean": [0.485, 0.456, 0.406], "variance": [0.05, 0.05, 0.05], "invert": false}),
    );
    assert!(layer.param_shapes(&[vec![4, 4, 3]]).unwrap().is_empty());
    assert_eq!(layer.config()["mean"].as_array().unwrap().len(), 3);
    // The statistics must fit the channels, and the axis must be the last.
    let err = layer.output_shapes(&[vec![4, 4, 2]]).unwrap_err().to_string();
    assert!(err.contains("norm") && err.contains("(None, ..., 3)"), "{err}");
    let first_axis = from_keras("Normalization", json!({"name": "rows", "axis": 1}));
    let err = first_axis.output_shapes(&[vec![4, 4, 3]]).unwrap_err().to_string();
    assert!(err.contains("rows") && err.contains("axis 1"), "{err}");
}

#[test]
fn normalization_has_the_right_gradient() {
    let images = uniform(&[2, 3, 2, 3], -1.0, 1.0, 5);
    for invert in [false, true] {
        let layer = Normalization::with_statistics(vec![0.1, -0.2, 0.3], vec![0.5, 2.0, 1.5]).invert(invert);
        let error = layer_gradient_error(vec![boxed(layer)], images.clone(), |_| {});
        assert!(error < TOLERANCE, "invert {invert}: gradient error {error}");
    }
}

#[test]
fn global_pooling_can_keep_the_pooled_axes() {
    // MobileNet's head: GlobalAveragePooling2D(keepdims=True) then a 1×1 convolution.
    let layer = from_keras("GlobalAveragePooling2D", json!({"name": "gap", "keepdims": true}));
    assert_eq!(layer.output_shapes(&[vec![3, 4, 5]]).unwrap(), [vec![1, 1, 5]]);
    assert_eq!(layer.config()["keepdims"], true);
    let x = uniform(&[2, 3, 4, 5], -1.0, 1.0, 2);
    let y = run_layers(vec![layer], &x, false).0;
    assert_eq!(y.shape(), &[2, 1, 1, 5]);
    let flat = run_layers(vec![boxed(GlobalAveragePooling2D::new())], &x, false).0;
    assert_eq!(y.data(), flat.data());
}

#[test]
fn keras_axes_count_the_batch() {
    // Concatenate(axis=3) joins the channels of images (DenseNet, Inception); axis 0 is the
    // batch, which cannot be joined along; strata writes the axis back as Keras counts it.
    let concat = from_keras("Concatenate", json!({"name": "join", "axis": 3}));
    assert_eq!(
        concat.output_shapes(&[vec![2, 2, 3], vec![2, 2, 1]]).unwrap(),
        [vec![2, 2, 4]]
    );
    assert_eq!(concat.config()["axis"], 3);
    assert!(strata::layers::from_config("Concatenate", &json!({"axis": 0})).is_err());
    // BatchNormalization(axis=3) on images is the channels; axis 1 (rows) is refused by name.
    let bn = from_keras("BatchNormalization", json!({"name": "bn", "axis": 3}));
    assert_eq!(bn.output_shapes(&[vec![4, 4, 8]]).unwrap(), [vec![4, 4, 8]]);
    let rows = from_keras("BatchNormalization", json!({"name": "bn_rows", "axis": 1}));
    let err = rows.output_shapes(&[vec![4, 4, 8]]).unwrap_err().to_string();
    assert!(err.contains("bn_rows") && err.contains("axis 1"), "{err}");
}
