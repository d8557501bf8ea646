//! Keras's weights-only files loaded into models built in Rust (issue #16): Keras 3's
//! `save_weights("x.weights.h5")`, found by position, and tf.keras 2's `save_weights("w.h5")`
//! (the layout of the `weights="imagenet"` files), found by name or in Keras's layer order.
//! Fixtures: `tools/make_keras_weights_files.py`.

mod common;
use strata::Tensor;
use strata::applications::{self, Options, Pooling};
use strata::model::Model;
use strata::prelude::*;

use common::{application_fixture as fixture, unpacked_application_fixture as unpacked};

/// The fixture's input batch and Keras 3's output for it.
fn keras_io() -> (Tensor, Tensor) {
    let text = std::fs::read_to_string(fixture("mobilenetv3small_min.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensor = |key: &str| {
        let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
        let shape: Vec<usize> = serde_json::from_value(json[format!("{key}_shape")].clone()).unwrap();
        Tensor::from_vec(shape, values).unwrap()
    };
    (tensor("input"), tensor("output"))
}

/// keras.applications.MobileNetV3Small(input_shape=(32, 32, 3), alpha=0.35, minimalistic=True,
/// include_top=False, pooling="avg"), as the fixtures were made.
fn options(weights: Option<std::path::PathBuf>) -> Options {
    Options {
        input_shape: Some([32, 32, 3]),
        alpha: 0.35,
        minimalistic: true,
        include_top: false,
        pooling: Some(Pooling::Avg),
        weights,
        ..Options::default()
    }
}

fn assert_predicts_as_keras(model: &mut Model, what: &str) {
    let (x, expected) = keras_io();
    let y = model.predict(&x, 2).unwrap();
    assert_eq!(y.shape(), expected.shape(), "{what}");
    for (i, (a, e)) in y.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-4, "{what} [{i}]: strata {a}, Keras {e}");
    }
}

#[test]
fn keras3_weights_file_loads_into_the_rust_built_application() {
    // weights = "x.weights.h5" in the builder, as Keras's weights= argument takes it.
    let file = unpacked("mobilenetv3small_min.weights.h5");
    let mut model = applications::mobilenet_v3_small(&options(Some(file.clone()))).unwrap();
    assert_predicts_as_keras(&mut model, "builder");
    // And Model::load_weights on a model built with random weights, as Keras's load_weights.
    let mut model = applications::mobilenet_v3_small(&options(None)).unwrap();
    model.build(&[32, 32, 3]).unwrap();
    model.load_weights(&file).unwrap();
    assert_predicts_as_keras(&mut model, "load_weights");
}

#[test]
fn tf_keras2_weights_file_with_other_layer_names_loads_in_keras_order() {
    // tf.keras 2 names the layers `Conv`, `Conv/BatchNorm`, ...; Keras 3 and strata `conv`,
    // `conv_bn`: matched in layer order, as Keras 3 loads the ImageNet files.
    let file = unpacked("mobilenetv3small_min_tf_keras2.h5");
    let mut model = applications::mobilenet_v3_small(&options(Some(file))).unwrap();
    assert_predicts_as_keras(&mut model, "tf.keras 2 file");
}

#[test]
fn the_application_saved_as_a_legacy_h5_model_imports_and_predicts_as_keras() {
    // Keras 3's model.save("m.h5") of the same model: architecture and weights.
    let mut model = strata::load_model(unpacked("mobilenetv3small_min.h5")).unwrap();
    assert_predicts_as_keras(&mut model, "legacy .h5 model");
}

#[test]
fn a_keras3_weights_file_of_another_model_names_the_first_mismatch() {
    let file = unpacked("mobilenetv3small_min.weights.h5");
    let load = |options: &Options, truncate: Option<&str>| {
        let mut model = applications::mobilenet_v3_small(options).unwrap();
        if let Some(layer) = truncate {
            model.truncate_after(layer).unwrap();
        }
        model.build(&[32, 32, 3]).unwrap();
        let before = model.weights();
        let error = model.load_weights(&file).unwrap_err().to_string();
        assert_eq!(model.weights(), before, "a refused file changes nothing");
        error
    };
    // Another width: the stem is 16 filters at any width, the first block's projection is not.
    let error = load(
        &Options {
            alpha: 0.75,
            ..options(None)
        },
        None,
    );
    assert!(
        error.contains("mobilenetv3small_min.weights.h5: holds 'layers/conv2d_1/vars/0' of shape [1, 1, 16, 8]")
            && error.contains(
                "weight 'expanded_conv_project/kernel' of layer 'expanded_conv_project' (the 2nd Conv2D in Keras's \
                 layer order), which has shape [1, 1, 16, 16]"
            ),
        "{error}"
    );
    // With the classifier the model has weights the file lacks.
    let error = load(
        &Options {
            include_top: true,
            pooling: None,
            classes: 5,
            ..options(None)
        },
        None,
    );
    assert!(
        error.contains("has no 'layers/conv2d_") && error.contains("another architecture"),
        "{error}"
    );
    // A model with fewer layers: the file holds weights no layer takes.
    let error = load(&options(None), Some("expanded_conv_project_bn"));
    assert!(
        error.contains("holds 'layers/") && error.contains("a weight no layer of model"),
        "{error}"
    );
}

/// An Inception-style block: a 1x1 branch and a deeper 1x1 → 3x3 branch, concatenated. Built
/// in this order, the shallow branch first; Keras lists the deeper branch's first layer first.
fn two_branches(prefix: &str) -> Model {
    let inputs = Input::node(&[6, 6, 2]);
    let one = Conv2D::new(4, 1).name(&format!("{prefix}_1x1")).call(&inputs).unwrap();
    let deep = Conv2D::new(3, 1)
        .name(&format!("{prefix}_3x3_reduce"))
        .call(&inputs)
        .unwrap();
    let deep = Conv2D::new(5, 3)
        .padding("same")
        .name(&format!("{prefix}_3x3"))
        .call(&deep)
        .unwrap();
    let x = Concatenate::new(-1).call_many(&[&one, &deep]).unwrap();
    let x = GlobalAveragePooling2D::new().call(&x).unwrap();
    let outputs = Dense::new(2).name(&format!("{prefix}_dense")).call(&x).unwrap();
    let mut model = Model::functional(&inputs, &outputs).unwrap();
    model.build(&[6, 6, 2]).unwrap();
    model
}

#[test]
fn a_legacy_file_with_other_names_fills_layers_in_keras_order_not_build_order() {
    let source = two_branches("keras");
    let path = std::env::temp_dir().join(format!("strata-weights-files-{}.h5", common::run_id()));
    source.save(&path).unwrap();
    let mut target = two_branches("mine");
    target.load_weights(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let x = strata::Tensor::from_vec(vec![1, 6, 6, 2], (0..72).map(|i| (i % 5) as f32 / 5.0 - 0.4).collect()).unwrap();
    let mut source = source;
    assert_eq!(
        source.predict(&x, 1).unwrap().data(),
        target.predict(&x, 1).unwrap().data()
    );
}

#[test]
fn a_keras_archive_loads_by_position_as_keras_load_weights_does() {
    // keras.applications.MobileNetV3Small(alpha=0.35, input_shape=(64, 64, 3), classes=10),
    // saved by Keras (tests/keras_applications.rs imports it whole): its model.weights.h5 into
    // the Rust-built model, classifier and all.
    let mut model = applications::mobilenet_v3_small(&Options {
        alpha: 0.35,
        input_shape: Some([64, 64, 3]),
        classes: 10,
        ..Options::default()
    })
    .unwrap();
    model.build(&[64, 64, 3]).unwrap();
    model.load_weights(fixture("mobilenetv3small_a035.keras")).unwrap();
    let text = std::fs::read_to_string(fixture("mobilenetv3small_a035.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let values = |key: &str| -> Vec<f32> { serde_json::from_value(json[key].clone()).unwrap() };
    let x = Tensor::from_vec(vec![2, 64, 64, 3], values("input")).unwrap();
    let y = model.predict(&x, 2).unwrap();
    for (i, (a, e)) in y.data().iter().zip(values("output")).enumerate() {
        assert!((a - e).abs() <= 1e-4, "[{i}]: strata {a}, Keras {e}");
    }
}

#[test]
fn a_keras3_weights_file_of_a_nested_model_loads_into_the_same_nesting_built_in_rust() {
    // Keras: Sequential([Input((48, 48, 3)), MobileNetV2(alpha=0.35, include_top=False),
    // GlobalAveragePooling2D(), Dense(5, softmax)]).save_weights("x.weights.h5"), which keeps
    // the base's weights under its own group (layers/functional/layers/conv2d/vars/0).
    let options = Options {
        input_shape: Some([48, 48, 3]),
        alpha: 0.35,
        include_top: false,
        ..Options::default()
    };
    let mut model = applications::mobilenet_v2(&options).unwrap();
    let base: Vec<String> = model
        .layers()
        .iter()
        .filter(|l| !l.is_input())
        .map(|l| l.name().to_string())
        .collect();
    model
        .add(GlobalAveragePooling2D::new())
        .add(Dense::new(5).activation("softmax"));
    model.set_nested_models(vec![strata::model::NestedModel::new(
        model.name().to_string(),
        "Functional",
        base,
    )]);
    model.build(&[48, 48, 3]).unwrap();
    model.load_weights(unpacked("nested_mobilenetv2.weights.h5")).unwrap();
    let text = std::fs::read_to_string(fixture("nested_mobilenetv2.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let values = |key: &str| -> Vec<f32> { serde_json::from_value(json[key].clone()).unwrap() };
    let x = Tensor::from_vec(vec![2, 48, 48, 3], values("input")).unwrap();
    let y = model.predict(&x, 2).unwrap();
    for (i, (a, e)) in y.data().iter().zip(values("output")).enumerate() {
        assert!((a - e).abs() <= 1e-4, "[{i}]: strata {a}, Keras {e}");
    }
    // Without the nesting recorded, the file is of another architecture, as in Keras.
    model.set_nested_models(Vec::new());
    let error = model
        .load_weights(unpacked("nested_mobilenetv2.weights.h5"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("another architecture"), "{error}");
}
