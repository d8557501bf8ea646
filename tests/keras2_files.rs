//! Whole models saved by tf.keras 2 (issue #16): `model.save("m.h5")` and the `.keras` archive of
//! Keras 2.13+, with the `TFOpLambda` layers tf.keras 2 writes for arithmetic in a model's code
//! (MobileNetV3's hard_sigmoid, EfficientNet's ImageNet scaling). Fixtures:
//! `tools/make_keras2_fixtures.py` (tf_keras 2.21, random weights).

mod common;
use serde_json::{Value, json};
use strata::Tensor;
use strata::io::keras_model_from_config;
use strata::model::Model;

use common::{application_fixture as fixture, unpacked_application_fixture as unpacked};

/// The fixture's description: input batch, tf.keras 2's output, parameter count, nested models.
fn keras_io(name: &str) -> Value {
    serde_json::from_str(&std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap()).unwrap()
}

fn tensor(json: &Value, key: &str) -> Tensor {
    let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
    let shape: Vec<usize> = serde_json::from_value(json[format!("{key}_shape")].clone()).unwrap();
    Tensor::from_vec(shape, values).unwrap()
}

/// Imports NAME from both formats and checks each against tf.keras 2's outputs, within 1e-4
/// (relative to the value beyond 1: EfficientNet's pooled features are not probabilities).
fn import_both(name: &str) -> Vec<Model> {
    let json = keras_io(name);
    let (x, expected) = (tensor(&json, "input"), tensor(&json, "output"));
    let mut models = Vec::new();
    for path in [unpacked(&format!("{name}.h5")), fixture(&format!("{name}.keras"))] {
        let mut model = strata::load_model(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        assert_eq!(
            model.count_params() as u64,
            json["total_params"].as_u64().unwrap(),
            "{name}"
        );
        let y = model.predict(&x, 2).unwrap();
        assert_eq!(y.shape(), expected.shape(), "{}", path.display());
        for (i, (a, e)) in y.data().iter().zip(expected.data()).enumerate() {
            assert!(
                (a - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{} [{i}]: strata {a}, tf.keras 2 {e}",
                path.display()
            );
        }
        let spread = expected.data().iter().fold(f32::MIN, |m, &v| m.max(v))
            - expected.data().iter().fold(f32::MAX, |m, &v| m.min(v));
        assert!(spread > 1e-3, "{name}: the outputs barely vary ({spread})");
        models.push(model);
    }
    models
}

#[test]
fn each_form_of_tensorflow_arithmetic_imports_as_the_layer_it_computes() {
    // x + 3, relu6, * 1/6, 2 - x, / 4, - 0.5, times a per-channel constant, sigmoid, two
    // tensors multiplied and added, 1.5 + x, silu, tanh: no TFOpLambda is left.
    for model in import_both("k2_ops") {
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert!(!classes.contains(&"TFOpLambda"), "{classes:?}");
        for class in ["Rescaling", "Multiply", "Add", "Activation"] {
            assert!(classes.contains(&class), "{class} in {classes:?}");
        }
    }
}

#[test]
fn a_tf_keras2_mobilenetv3_nested_in_a_sequential_imports_and_keeps_its_name() {
    let json = keras_io("k2_nested_mobilenetv3small");
    let base = json["nested"][0].as_str().unwrap().to_string();
    for mut model in import_both("k2_nested_mobilenetv3small") {
        let nested = model.nested_model(&base).unwrap();
        assert_eq!(nested.class_name(), "Functional");
        assert!(nested.layer_names().iter().any(|n| n == "expanded_conv/depthwise"));
        // Keras's recipe: base.trainable = False, then only the head trains.
        model.set_nested_trainable(&base, false).unwrap();
        assert!(!model.is_nested_trainable(&base).unwrap());
        let summary = model.summary().unwrap();
        assert!(summary.contains(&format!("Nested model: {base} (Functional)")) && summary.contains("frozen"));
        let head = model.get_layer("dense").unwrap();
        assert!(head.is_trainable());
        let error = model.get_layer(&base).err().unwrap().to_string();
        assert!(
            error.contains("is a nested model") && error.contains("set_nested_trainable"),
            "{error}"
        );
    }
}

#[test]
fn a_tf_keras2_efficientnet_made_for_imagenet_weights_imports() {
    // Rescaling, Normalization (tf.keras 2 stores its count as int64) and the ImageNet models'
    // tf.math.multiply by one constant per channel.
    import_both("k2_efficientnet_tiny");
}

#[test]
fn operations_strata_does_not_compute_are_all_named_with_their_function() {
    let op = |name: &str, class: &str, function: &str, kwargs: Value| {
        json!({
            "class_name": class,
            "name": name,
            "config": {"name": name, "trainable": true, "dtype": "float32", "function": function},
            "inbound_nodes": [["inputs", 0, 0, kwargs]],
        })
    };
    let config = json!({"class_name": "Functional", "config": {
        "name": "ops",
        "layers": [
            {"class_name": "InputLayer", "name": "inputs",
             "config": {"name": "inputs", "batch_input_shape": [null, 4], "dtype": "float32"}, "inbound_nodes": []},
            op("tf.math.reduce_mean", "TFOpLambda", "math.reduce_mean", json!({"axis": -1, "name": null})),
            op("tf.__operators__.getitem", "SlicingOpLambda", "__operators__.getitem",
               json!({"slice_spec": {"start": 0, "stop": 2, "step": null}})),
            op("tf.math.add", "TFOpLambda", "math.add", json!({"y": 1.0, "name": null})),
        ],
        "input_layers": [["inputs", 0, 0]],
        "output_layers": [["tf.math.add", 0, 0]],
    }});
    let error = keras_model_from_config(&config).err().unwrap().to_string();
    assert!(error.contains("2 layers cannot be imported"), "{error}");
    for named in [
        "layer 'tf.math.reduce_mean' (TFOpLambda of tf.math.reduce_mean",
        "layer 'tf.__operators__.getitem' (SlicingOpLambda of tf.__operators__.getitem",
    ] {
        assert!(error.contains(named), "{named}: {error}");
    }
    // Not the list of every layer class: these are not layers strata could add.
    assert!(!error.contains("supported layers:"), "{error}");
}

/// VGG16 without its classifier, as Keras 3 serializes it (a config-only fixture).
fn vgg16_config() -> (Value, u64) {
    let mut text = String::new();
    let file = std::fs::File::open(fixture("vgg16_notop.json.gz")).unwrap();
    std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(file), &mut text).unwrap();
    let fixture: Value = serde_json::from_str(&text).unwrap();
    (fixture["config"].clone(), fixture["total_params"].as_u64().unwrap())
}

#[test]
fn the_bookkeeping_of_other_keras_versions_imports_and_quantized_layers_are_refused() {
    let (keras3, params) = vgg16_config();
    // Keras 2's spellings of the same model: dtypes as names, `batch_input_shape`, no module,
    // registered_name or build_config; and what other Keras 3 releases add beside a layer.
    let mut keras2 = keras3.clone();
    for (i, layer) in keras2["config"]["layers"]
        .as_array_mut()
        .unwrap()
        .iter_mut()
        .enumerate()
    {
        let entry = layer.as_object_mut().unwrap();
        for key in ["module", "registered_name", "build_config"] {
            entry.remove(key);
        }
        entry.insert("shared_object_id".into(), json!(1000 + i));
        let config = entry["config"].as_object_mut().unwrap();
        config.insert("dtype".into(), json!("float32"));
        if let Some(shape) = config.remove("batch_shape") {
            config.insert("batch_input_shape".into(), shape);
        }
    }
    for config in [&keras3, &keras2] {
        let model = keras_model_from_config(config).unwrap();
        assert_eq!(model.count_params() as u64, params);
    }
    // A layer of a quantized model (Keras's model.quantize("int8")) keeps an int8 kernel and
    // its scale: refused by name, whichever way its dtype policy is written.
    for policy in [
        json!({"module": "keras", "class_name": "QuantizedDTypePolicy",
               "config": {"name": "int8_from_float32", "source_name": "float32"}, "registered_name": null}),
        json!("int8_from_float32"),
    ] {
        let mut quantized = keras3.clone();
        quantized["config"]["layers"][1]["config"]["dtype"] = policy;
        let error = keras_model_from_config(&quantized).err().unwrap().to_string();
        assert!(
            error.contains("layer 'block1_conv1' (Conv2D) uses Keras's quantized weights"),
            "{error}"
        );
    }
}

/// `archive` with its `metadata.json`'s keras_version set to `version` and its `predictions`
/// layer's activation to `activation`, written to `path`.
fn rewritten_archive(archive: &std::path::Path, path: &std::path::Path, version: &str, activation: &str) {
    use std::io::{Read, Write};
    let mut source = zip::ZipArchive::new(std::fs::File::open(archive).unwrap()).unwrap();
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    for i in 0..source.len() {
        let mut member = source.by_index(i).unwrap();
        let name = member.name().unwrap().to_string();
        let mut bytes = Vec::new();
        member.read_to_end(&mut bytes).unwrap();
        let mut json: Option<Value> = None;
        if name == "metadata.json" {
            let mut metadata: Value = serde_json::from_slice(&bytes).unwrap();
            metadata["keras_version"] = json!(version);
            json = Some(metadata);
        } else if name == "config.json" {
            let mut config: Value = serde_json::from_slice(&bytes).unwrap();
            for layer in config["config"]["layers"].as_array_mut().unwrap() {
                if layer["config"]["name"] == "predictions" {
                    layer["config"]["activation"] = json!(activation);
                }
            }
            json = Some(config);
        }
        if let Some(json) = json {
            bytes = json.to_string().into_bytes();
        }
        zip.start_file(name, zip::write::SimpleFileOptions::default()).unwrap();
        zip.write_all(&bytes).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn keras2s_hard_sigmoid_is_refused_as_it_computes_otherwise_than_keras3s() {
    // tf.keras 2's hard_sigmoid is clip(0.2x + 0.5, 0, 1), Keras 3's (and strata's)
    // relu6(x + 3) / 6: a Keras 2 file naming it would import as another model.
    let dir = std::env::temp_dir().join(format!("strata-keras2-hard-sigmoid-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("m.keras");
    rewritten_archive(&fixture("k2_ops.keras"), &path, "2.21.0", "hard_sigmoid");
    let error = strata::load_model(&path).err().unwrap().to_string();
    assert!(
        error.contains("written by Keras 2")
            && error.contains("layer 'predictions' (Dense) has activation 'hard_sigmoid'")
            && error.contains("clip(0.2 * x + 0.5, 0, 1)"),
        "{error}"
    );
    // Written by Keras 3, or another activation: imported.
    rewritten_archive(&fixture("k2_ops.keras"), &path, "3.15.1", "hard_sigmoid");
    strata::load_model(&path).unwrap();
    rewritten_archive(&fixture("k2_ops.keras"), &path, "2.21.0", "sigmoid");
    strata::load_model(&path).unwrap();
    std::fs::remove_dir_all(&dir).ok();
}
