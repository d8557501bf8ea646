//! Importing the Keras Applications (issue #16). The fixtures under
//! tests/fixtures/keras/applications/ were written by tools/make_keras_applications.py with
//! Keras 3.15, random weights:
//!
//! - NAME_top.json.gz / NAME_notop.json.gz, for every architecture: what a `.keras` archive's
//!   config.json holds (no weights: the full models are hundreds of MB), with Keras's
//!   per-layer `count_params()` and output shapes. `_top` is the classifier (default input
//!   size, 10 classes), `_notop` the feature extractor at a small input.
//! - NAME.keras and NAME.json for small variants: the archive, a fixed input batch and what
//!   Keras's `predict` returned for it. ResNet, ResNetV2, Inception and Xception, whose full
//!   models hold 20-60 million weights, are narrow models of their own Keras blocks.
mod common;

use serde_json::Value;
use std::io::Read;
use strata::io::{import_keras, keras_model_from_config};
use strata::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/applications/{name}"))
}

/// Every architecture of the issue; each has a `_top` and a `_notop` fixture.
const ARCHITECTURES: &[&str] = &[
    "vgg16",
    "vgg19",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50v2",
    "resnet101v2",
    "resnet152v2",
    "mobilenet",
    "mobilenetv2",
    "mobilenetv3small",
    "mobilenetv3large",
    "densenet121",
    "densenet169",
    "densenet201",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "efficientnetb3",
    "efficientnetb4",
    "efficientnetb5",
    "efficientnetb6",
    "efficientnetb7",
    "efficientnetv2b0",
    "efficientnetv2b1",
    "efficientnetv2b2",
    "efficientnetv2b3",
    "inceptionv3",
    "xception",
    "nasnetmobile",
];

/// A config-only fixture: `{"config", "input_shape", "output_shape", "total_params", "layers"}`.
fn config_fixture(name: &str) -> Value {
    let file = std::fs::File::open(fixture(&format!("{name}.json.gz"))).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

fn shape(value: &Value) -> Vec<usize> {
    serde_json::from_value(value.clone()).unwrap()
}

/// Builds the architecture from its config as the importer does and compares every layer's
/// weight count and output shape with Keras's.
fn assert_architecture_matches_keras(name: &str) {
    let fixture = config_fixture(name);
    let model = keras_model_from_config(&fixture["config"]).unwrap_or_else(|e| panic!("{name}: {e}"));
    let input = shape(&fixture["input_shape"]);
    let planned = model
        .planned_layers(&[&input])
        .unwrap_or_else(|e| panic!("{name}: {e}"));
    let keras_layers = fixture["layers"].as_array().unwrap();
    // Keras's operations (MobileNetV3's `x + 3.0`) are not layers to Keras; strata runs each as
    // a Rescaling layer without weights.
    let operations: Vec<&str> = fixture["config"]["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|l| l["module"].as_str().is_some_and(|m| m.starts_with("keras.src.ops")))
        .map(|l| l["config"]["name"].as_str().unwrap())
        .collect();
    let (layers, ops): (Vec<_>, Vec<_>) = planned.iter().partition(|l| !operations.contains(&l.name.as_str()));
    assert!(
        ops.iter().all(|op| op.class_name == "Rescaling" && op.params == 0),
        "{name}: {ops:?}"
    );
    assert_eq!(ops.len(), operations.len(), "{name}: operations");
    assert_eq!(layers.len(), keras_layers.len(), "{name}: layer count");
    for (ours, keras) in layers.iter().zip(keras_layers) {
        let what = format!("{name}: layer '{}' ({})", ours.name, ours.class_name);
        assert_eq!(
            ours.name,
            keras["name"].as_str().unwrap(),
            "{what}: names in Keras's order"
        );
        assert_eq!(
            ours.params as u64,
            keras["params"].as_u64().unwrap(),
            "{what}: count_params"
        );
        assert_eq!(
            ours.output_shapes,
            [shape(&keras["output_shape"])],
            "{what}: output shape"
        );
    }
    let total = fixture["total_params"].as_u64().unwrap() as usize;
    assert_eq!(model.count_params(), total, "{name}: total count_params");
}

#[test]
fn every_architecture_with_its_classifier_has_keras_counts_and_shapes() {
    for name in ARCHITECTURES {
        assert_architecture_matches_keras(&format!("{name}_top"));
    }
}

#[test]
fn every_architecture_without_its_classifier_at_a_small_input_has_keras_counts_and_shapes() {
    for name in ARCHITECTURES {
        assert_architecture_matches_keras(&format!("{name}_notop"));
    }
}

#[test]
fn every_unsupported_layer_is_named_at_once() {
    // EfficientNetB0 with two of its classes renamed to ones strata lacks: the error names
    // every layer of both, not only the first one met.
    let fixture = config_fixture("efficientnetb0_notop");
    let text = fixture["config"]
        .to_string()
        .replace("\"Normalization\"", "\"Unheard\"")
        .replace("\"DepthwiseConv2D\"", "\"AlsoUnheard\"");
    let config: Value = serde_json::from_str(&text).unwrap();
    let err = keras_model_from_config(&config).err().unwrap().to_string();
    let renamed: Vec<(&str, &str)> = fixture["layers"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| match l["class_name"].as_str().unwrap() {
            "Normalization" => Some((l["name"].as_str().unwrap(), "Unheard")),
            "DepthwiseConv2D" => Some((l["name"].as_str().unwrap(), "AlsoUnheard")),
            _ => None,
        })
        .collect();
    assert!(renamed.len() > 10, "{renamed:?}");
    for (layer, class) in renamed {
        assert!(
            err.contains(&format!("'{layer}' ({class}) is not supported")),
            "{layer}: {err}"
        );
    }
    assert!(err.contains("supported layers: ") && err.contains("Conv2D"), "{err}");
}

/// The fixture's input batch and Keras's outputs for it.
fn keras_io(name: &str) -> (Tensor, Tensor, usize) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let tensor = |key: &str| {
        let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
        Tensor::from_vec(shape(&json[format!("{key}_shape")]), values).unwrap()
    };
    let params = json["total_params"].as_u64().unwrap() as usize;
    (tensor("input"), tensor("output"), params)
}

/// Imports NAME.keras and checks its parameter count and predictions against Keras's, within
/// 1e-4 (absolute; the outputs are softmax probabilities).
fn assert_predicts_as_keras(name: &str) -> Model {
    let mut model = import_keras(fixture(&format!("{name}.keras"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (x, expected, params) = keras_io(name);
    assert_eq!(model.count_params(), params, "{name}: count_params");
    let y = model.predict(&x, 32).unwrap();
    assert_eq!(y.shape(), expected.shape(), "{name}");
    for (i, (a, e)) in y.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-4, "{name}[{i}]: strata {a}, Keras {e}");
    }
    // Random weights still give an output that is not flat: the comparison can fail.
    let spread =
        expected.data().iter().fold(0.0f32, |m, &v| m.max(v)) - expected.data().iter().fold(1.0f32, |m, &v| m.min(v));
    assert!(spread > 1e-3, "{name}: Keras's outputs barely vary ({spread})");
    model
}

#[test]
fn mobilenetv3small_predicts_as_keras() {
    assert_predicts_as_keras("mobilenetv3small_a035");
}

#[test]
fn a_narrow_efficientnet_predicts_as_keras() {
    assert_predicts_as_keras("efficientnet_tiny");
}

#[test]
fn a_short_densenet_predicts_as_keras() {
    assert_predicts_as_keras("densenet_tiny");
}

#[test]
fn a_nested_application_predicts_as_keras() {
    // Sequential([Input, MobileNetV2(alpha=0.35, include_top=False), GlobalAveragePooling2D,
    // Dense(5, softmax)]): the base model's layers are opened up into one graph.
    let mut model = assert_predicts_as_keras("nested_mobilenetv2");
    assert!(model.layers().iter().any(|l| l.class_name() == "DepthwiseConv2D"));
    // The base keeps its Keras name, to be frozen by it (Keras's base.trainable = False).
    let base = "mobilenetv2_0.35_48";
    let nested = model.nested_model(base).unwrap().clone();
    assert_eq!(nested.class_name(), "Functional");
    assert_eq!(nested.layer_names().first().map(String::as_str), Some("Conv1"));
    assert!(!nested.layer_names().iter().any(|n| n == "dense"));
    model.set_nested_trainable(base, false).unwrap();
    model.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
    let summary = model.summary().unwrap();
    assert!(
        summary.contains(&format!("Nested model: {base} (Functional)")),
        "{summary}"
    );
    // Only the head trains: Dense(5) on the base's 1280 features.
    assert!(summary.contains(" Trainable params: 6,405 "), "{summary}");
    // Saved and loaded, in strata's file and in Keras's (the base written back as a nested
    // Functional, as Keras wrote it), the model still knows its base.
    let keras_path = std::env::temp_dir().join(format!("strata-nested-{}.keras", common::run_id()));
    model.save(&keras_path).unwrap();
    let from_keras = strata::load_model(&keras_path).unwrap();
    std::fs::remove_file(&keras_path).ok();
    assert_eq!(from_keras.nested_models(), model.nested_models());
    assert!(!from_keras.is_nested_trainable(base).unwrap());
    assert_eq!(from_keras.weights(), model.weights());
    let path = std::env::temp_dir().join(format!("strata-nested-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(loaded.nested_models(), model.nested_models());
    assert!(!loaded.is_nested_trainable(base).unwrap());
    loaded.set_nested_trainable(base, true).unwrap();
    assert!(loaded.is_nested_trainable(base).unwrap());
    let error = loaded
        .set_nested_trainable("mobilenetv2", false)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("its nested models are: mobilenetv2_0.35_48"), "{error}");
}

#[test]
fn a_narrow_resnet_predicts_as_keras() {
    // Keras's ResNet builder and residual_block_v1 with 4 and 8 filters: ZeroPadding2D stem,
    // convolution and identity shortcuts, Add then ReLU.
    assert_predicts_as_keras("resnet_narrow");
}

#[test]
fn a_narrow_resnet_v2_predicts_as_keras() {
    // Pre-activation blocks, the strided 1×1 MaxPooling2D shortcut, post_bn.
    assert_predicts_as_keras("resnetv2_narrow");
}

#[test]
fn a_narrow_inception_predicts_as_keras() {
    // InceptionV3's conv2d_bn (BatchNormalization without scale) in mixed0, mixed3, mixed4 and
    // mixed9's blocks: 1×7 / 7×1 kernels, same-padded average pooling, concatenations.
    assert_predicts_as_keras("inception_narrow");
}

#[test]
fn a_narrow_xception_predicts_as_keras() {
    // Xception's entry, middle and exit blocks: SeparableConv2D, strided same-padded max
    // pooling added to 1×1 convolution shortcuts, identity shortcuts.
    assert_predicts_as_keras("xception_narrow");
}

#[test]
fn nasnet_cells_predict_as_keras() {
    // NASNet's reduction and normal cells (nasnet.py's own functions) at a small width: both
    // adjustments of the previous path (strided, with ZeroPadding2D + Cropping2D; the 1×1
    // projection), SeparableConv2D with 7×7, 5×5 and 3×3 kernels, strided and same-padded
    // poolings.
    let model = assert_predicts_as_keras("nasnet_cells");
    assert!(model.layers().iter().any(|l| l.class_name() == "Cropping2D"));
}

#[test]
fn unknown_config_keys_from_a_newer_keras_are_ignored_when_off_and_refused_otherwise() {
    // VGG16's convolutions with a setting this Keras does not write: left off (null, false,
    // empty), it is dropped with a warning and the model is Keras's; set, it may change the
    // computation, and the import refuses it, naming the layer, the key and the keys it reads.
    let fixture = config_fixture("vgg16_notop");
    let with_key = |value: Value| {
        let mut config = fixture["config"].clone();
        for layer in config["config"]["layers"].as_array_mut().unwrap() {
            if layer["class_name"] == "Conv2D" {
                layer["config"]["future_setting"] = value.clone();
            }
        }
        config
    };
    for off in [Value::Null, Value::Bool(false), serde_json::json!({})] {
        let model = keras_model_from_config(&with_key(off.clone())).unwrap_or_else(|e| panic!("{off}: {e}"));
        assert_eq!(model.count_params() as u64, fixture["total_params"].as_u64().unwrap());
    }
    let error = keras_model_from_config(&with_key(serde_json::json!(2)))
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("layer 'block1_conv1' (Conv2D)")
            && error.contains("\"future_setting\"")
            && error.contains("filters"),
        "{error}"
    );
}

/// `archive` (a `.keras` file) with `edit` applied to its config.json, written to `path`.
fn rewrite_archive(archive: &std::path::Path, path: &std::path::Path, edit: impl Fn(&mut Value)) {
    use std::io::Write;
    let mut source = zip::ZipArchive::new(std::fs::File::open(archive).unwrap()).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..source.len() {
        let mut member = source.by_index(i).unwrap();
        let name = member.name().unwrap().to_string();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).unwrap();
        if name == "config.json" {
            let mut config: Value = serde_json::from_slice(&bytes).unwrap();
            edit(&mut config);
            bytes = config.to_string().into_bytes();
        }
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn strata_import_warns_of_the_newer_keras_keys_it_ignores() {
    let dir = std::env::temp_dir().join(format!("strata-newer-keras-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let (archive, model) = (dir.join("newer.keras"), dir.join("newer.safetensors"));
    let import = |value: Value| {
        rewrite_archive(&fixture("resnet_narrow.keras"), &archive, |config| {
            for layer in config["config"]["layers"].as_array_mut().unwrap() {
                if layer["class_name"] == "Conv2D" {
                    layer["config"]["future_setting"] = value.clone();
                }
            }
        });
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["import", archive.to_str().unwrap(), "-o", model.to_str().unwrap()])
            .output()
            .unwrap();
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stderr).into_owned(),
        )
    };
    let (imported, stderr) = import(Value::Null);
    assert!(imported, "{stderr}");
    assert!(
        stderr.contains("warning:")
            && stderr.contains("layer 'conv1_conv' (Conv2D): ignoring \"future_setting\" = null"),
        "{stderr}"
    );
    let (imported, stderr) = import(serde_json::json!("on"));
    assert!(!imported && stderr.contains("\"future_setting\""), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
