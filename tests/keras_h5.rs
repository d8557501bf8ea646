//! Importing legacy HDF5 Keras models (`model.save("m.h5")`) and weights
//! (`save_weights("w.h5")`). The fixtures under tests/fixtures/keras/h5/ were written by
//! tools/make_keras_h5.py: `k3_*` by Keras 3's legacy writer, `k2_*` by tf.keras 2 (the tf_keras
//! package); each NAME.h5 has random weights, and NAME.json a fixed input batch and what Keras's
//! `predict` returned for it.

use serde_json::Value;
use strata::io::{import_keras_h5, import_keras_h5_bytes};
use strata::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/h5/{name}"))
}

/// The fixture's input batch and Keras's outputs for it.
fn keras_io(name: &str) -> (Tensor, Tensor) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let tensor = |key: &str| {
        let shape: Vec<usize> = serde_json::from_value(json[format!("{key}_shape")].clone()).unwrap();
        let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
        Tensor::from_vec(shape, values).unwrap()
    };
    (tensor("input"), tensor("output"))
}

fn assert_close(actual: &Tensor, expected: &Tensor, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}");
    for (i, (a, e)) in actual.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-4, "{what}[{i}]: strata {a}, Keras {e}");
    }
}

/// Imports `file` and checks its predictions against Keras's for the fixture `name`.
fn assert_matches_keras(file: &str, name: &str) -> Model {
    let mut model = import_keras_h5(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (x, expected) = keras_io(name);
    let y = model.predict(&x, 32).unwrap();
    assert_close(&y, &expected, file);
    model
}

#[test]
fn every_fixture_predicts_as_keras_from_both_writers() {
    for writer in ["k2", "k3"] {
        for model in ["mlp", "cnn", "merge", "nested"] {
            let name = format!("{writer}_{model}");
            assert_matches_keras(&format!("{name}.h5"), &name);
        }
    }
}

#[test]
fn compile_settings_come_from_training_config() {
    for file in ["k2_mlp.h5", "k3_mlp.h5"] {
        let model = import_keras_h5(fixture(file)).unwrap();
        assert_eq!(
            model.loss(),
            Some(Loss::SparseCategoricalCrossentropy { from_logits: false }),
            "{file}"
        );
        let optimizer = model.optimizer().unwrap();
        assert!((optimizer.learning_rate() - 0.01).abs() < 1e-7, "{file}");
        let compile = model.compile_config().unwrap();
        assert_eq!(compile["optimizer"]["class_name"], "Adam", "{file}: {compile}");
        assert_eq!(compile["metrics"], serde_json::json!(["accuracy"]), "{file}: {compile}");
    }
    // Not compiled in Keras: not compiled here.
    assert!(import_keras_h5(fixture("k3_merge.h5")).unwrap().optimizer().is_none());
}

#[test]
fn fixed_length_strings_and_split_layer_names_load() {
    // k2_mlp.h5 rewritten as h5py 2.x wrote strings, with layer_names split in two as Keras
    // splits lists too long for one HDF5 object header.
    assert_matches_keras("k2_mlp_fixed.h5", "k2_mlp");
}

#[test]
fn load_model_and_load_weights_read_h5_files() {
    let mut model = strata::load_model(fixture("k2_cnn.h5")).unwrap();
    let (x, expected) = keras_io("k2_cnn");
    assert_close(&model.predict(&x, 32).unwrap(), &expected, "load_model");
    // save_weights("w.h5") of the same model: loaded over a model of the same architecture
    // whose weights were changed, the outputs are Keras's again.
    for id in model.params().ids().collect::<Vec<_>>() {
        model.params_mut().value_mut(id).data_mut().fill(0.5);
    }
    model.load_weights(fixture("k2_cnn_weights.h5")).unwrap();
    assert_close(&model.predict(&x, 32).unwrap(), &expected, "load_weights");
    // The weights of a whole-model .h5 load too (its model_weights group).
    model.load_weights(fixture("k2_cnn.h5")).unwrap();
    // And a .keras archive through load_model.
    let keras = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/mlp.keras");
    assert_eq!(strata::load_model(keras).unwrap().count_params(), 70);
}

#[test]
fn load_weights_matches_layers_in_order_when_names_differ() {
    // The same architecture built in Rust, with strata's own layer names, gets the file's
    // weights in layer order, as Keras's load_weights does.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[6]))
        .add(Dense::new(5).activation("relu").name("first"))
        .add(Dense::new(4).activation("tanh").use_bias(false).name("second"))
        .add(Dense::new(3).activation("softmax").name("third"));
    model.build(&[6]).unwrap();
    model.load_weights(fixture("k2_mlp.h5")).unwrap();
    let (x, expected) = keras_io("k2_mlp");
    assert_close(&model.predict(&x, 32).unwrap(), &expected, "by order");
}

#[test]
fn mismatched_weights_name_the_layer_and_both_shapes() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[6]))
        .add(Dense::new(5).activation("relu").name("dense"))
        .add(Dense::new(7).use_bias(false).name("dense_1"))
        .add(Dense::new(3).name("dense_2"));
    model.build(&[6]).unwrap();
    let before = model.weights();
    let err = model.load_weights(fixture("k2_mlp.h5")).unwrap_err().to_string();
    assert!(
        err.contains("'dense_1'") && err.contains("[5, 4]") && err.contains("[5, 7]"),
        "{err}"
    );
    // Checked before anything is copied.
    assert_eq!(model.weights(), before);
    let mut small = Sequential::new();
    small.add(Input::new(&[6])).add(Dense::new(3).name("other"));
    small.build(&[6]).unwrap();
    let err = small.load_weights(fixture("k2_mlp.h5")).unwrap_err().to_string();
    assert!(err.contains("3 layers") && err.contains("other"), "{err}");
}

#[test]
fn weights_only_files_are_not_models_and_unsupported_layers_are_named() {
    let err = import_keras_h5(fixture("k2_cnn_weights.h5")).unwrap_err().to_string();
    assert!(err.contains("load_weights"), "{err}");
    // The architecture is read before any weight: an unknown class is named.
    let mut bytes = std::fs::read(fixture("k2_mlp.h5")).unwrap();
    let at = bytes.windows(7).position(|w| w == b"\"Dense\"").unwrap();
    bytes[at..at + 7].copy_from_slice(b"\"Dunse\"");
    let err = import_keras_h5_bytes(&bytes, "m.h5").unwrap_err().to_string();
    assert!(err.contains("(Dunse) is not supported"), "{err}");
    // Errors about the architecture name where an HDF5 file keeps it, not a `.keras` member.
    let mut bytes = std::fs::read(fixture("k2_mlp.h5")).unwrap();
    let at = bytes.windows(12).position(|w| w == b"\"Sequential\"").unwrap();
    bytes[at..at + 12].copy_from_slice(b"\"Sequentiel\"");
    let err = import_keras_h5_bytes(&bytes, "m.h5").unwrap_err().to_string();
    assert!(
        err.contains("m.h5") && err.contains("model_config attribute describes a 'Sequentiel' model"),
        "{err}"
    );
    assert!(!err.contains("config.json"), "{err}");
}

/// A legacy file whose model_config is JSON but not an object (`[]`, `1`), with a
/// training_config: an error saying so, where writing the compile settings into it panicked.
#[test]
fn a_model_config_that_is_not_an_object_is_an_error() {
    let bytes = std::fs::read(fixture("k3_mlp.h5")).unwrap();
    let start = bytes.windows(13).position(|w| w == b"{\"class_name\"").unwrap();
    let mut stream = serde_json::Deserializer::from_slice(&bytes[start..]).into_iter::<Value>();
    stream.next().unwrap().unwrap();
    let end = start + stream.byte_offset();
    assert!(
        bytes.windows(7).any(|w| w == b"{\"loss\""),
        "the fixture has a training_config"
    );
    for replacement in ["[]", "1"] {
        let mut hostile = bytes.clone();
        hostile[start..end].fill(b' ');
        hostile[start..start + replacement.len()].copy_from_slice(replacement.as_bytes());
        let err = import_keras_h5_bytes(&hostile, "m.h5").unwrap_err().to_string();
        assert!(
            err.contains("m.h5") && err.contains("model_config is not a JSON object"),
            "{replacement}: {err}"
        );
    }
}

mod common;

/// `strata import` and `strata summary` read `.h5` files, and `--base` takes a `.h5` or a
/// `.keras` file directly: frozen, under a new head, trained on a CSV table.
#[cfg(feature = "cli")]
#[test]
fn the_command_line_reads_h5_and_keras_files() {
    let dir = std::env::temp_dir().join(format!("strata-keras-h5-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let h5 = fixture("k2_mlp.h5").display().to_string();
    let out = dir.join("mlp.safetensors").display().to_string();
    let (code, stdout, stderr) = common::strata(&["import", &h5, "-o", &out]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    let mut imported = strata::load_model(&out).unwrap();
    let (x, expected) = keras_io("k2_mlp");
    assert_close(&imported.predict(&x, 32).unwrap(), &expected, "imported");

    let nested = fixture("k3_nested.h5").display().to_string();
    let (code, stdout, stderr) = common::strata(&["summary", "--model", &nested]);
    assert_eq!(code, 0, "{stdout}{stderr}");
    // inner_dense 24 + inner_norm 16 + side 24 + head 10.
    assert!(
        stdout.contains("inner_norm") && stdout.contains("Total params: 74"),
        "{stdout}"
    );

    // Six features and a label in {0, 1, 2}.
    let mut rows = String::from("a,b,c,d,e,f,label\n");
    let mut rng = strata::rng::Rng::new(5);
    for i in 0..60 {
        let features: Vec<String> = (0..6).map(|_| rng.uniform(-1.0, 1.0).to_string()).collect();
        rows += &format!("{},{}\n", features.join(","), i % 3);
    }
    let table = dir.join("table.csv");
    std::fs::write(&table, rows).unwrap();
    let keras = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/mlp.keras");
    for base in [h5, keras.display().to_string()] {
        let saved = dir.join("tuned.safetensors").display().to_string();
        let args = [
            "train",
            "--base",
            &base,
            "--base-output",
            "dense_1",
            "--freeze-base",
            "--head",
            "Dense(3,softmax)",
            "--data",
            &table.display().to_string(),
            "--label",
            "label",
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--save",
            &saved,
        ];
        let (code, stdout, stderr) = common::strata(&args);
        assert_eq!(code, 0, "{base}: {stdout}{stderr}");
        // The frozen base kept the Keras weights.
        let tuned = strata::load_model(&saved).unwrap().weights();
        let base_model = strata::load_model(&base).unwrap().weights();
        assert_eq!(tuned["dense/kernel"], base_model["dense/kernel"], "{base}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

/// The fixture's input batches and Keras's output, for one input or several.
fn keras_inputs_and_output(name: &str) -> (Vec<Tensor>, Tensor) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let Some(inputs) = json["inputs"].as_array() else {
        let (x, y) = keras_io(name);
        return (vec![x], y);
    };
    let tensor = |t: &Value| {
        let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
        let values: Vec<f32> = serde_json::from_value(t["values"].clone()).unwrap();
        Tensor::from_vec(shape, values).unwrap()
    };
    (inputs.iter().map(tensor).collect(), tensor(&json["outputs"][0]))
}

#[test]
fn nested_models_called_several_times_predict_as_keras_from_both_writers() {
    // tf.keras 2 numbers a nested model's calls from 1 (its own graph is node 0), Keras 3
    // from 0: `encoder` on two inputs, `block` on its own output three times, and an encoder
    // that calls a nested block twice itself, on two inputs.
    for writer in ["k2", "k3"] {
        for (model, params) in [
            ("siamese", 30 + 24 + 5),
            ("nested_thrice", 2 * 42 + 21),
            ("siamese_nested", 30 + 24 + 5),
        ] {
            let name = format!("{writer}_{model}");
            let mut imported = import_keras_h5(fixture(&format!("{name}.h5"))).unwrap();
            assert_eq!(imported.count_params(), params, "{name}");
            let (inputs, expected) = keras_inputs_and_output(&name);
            let inputs: Vec<&Tensor> = inputs.iter().collect();
            let outputs = imported.predict_multi(&inputs, 32).unwrap();
            assert_close(&outputs[0], &expected, &name);
        }
    }
}
