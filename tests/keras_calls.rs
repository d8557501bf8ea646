//! Keras's call arguments besides a layer's inputs (`use_causal_mask=True`, `key=`,
//! `attention_mask=`, `initial_state=`, `training=`): mapped onto strata's layers, or refused
//! by name. The fixtures under tests/fixtures/keras/calls/ were written by
//! tools/make_keras_calls.py: calls_k3.keras by Keras 3, calls_k2.h5 by tf.keras 2 (its keyword
//! arguments inside each inbound reference), each with Keras's predictions for a fixed batch.

mod common;

use serde_json::{Value, json};
use strata::io::{import_keras_file, keras_model_from_config};
use strata::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/calls/{name}"))
}

/// The fixture's input batches and Keras's outputs.
fn keras_io(name: &str) -> (Vec<Tensor>, Vec<Tensor>) {
    common::keras_io(&fixture(name))
}

/// Causal self-attention, an all-keyword call with a key and an attention mask (a model input)
/// and a causal `Attention`: as Keras predicts, from Keras 3's archive and tf.keras 2's `.h5`.
#[test]
fn call_arguments_are_mapped_and_predict_as_keras() {
    for (file, io) in [("calls_k3.keras", "calls_k3.json"), ("calls_k2.h5", "calls_k2.json")] {
        let mut model = import_keras_file(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
        let causal = model.get_layer("causal").unwrap().config();
        assert_eq!(causal["use_causal_mask"], true, "{file}");
        let keyword = model.get_layer("keyword").unwrap().config();
        assert_eq!(keyword["attention_mask_input"], true, "{file}");
        assert_eq!(model.get_layer("dot_causal").unwrap().config()["use_causal_mask"], true);
        let (inputs, expected) = keras_io(io);
        let inputs: Vec<&Tensor> = inputs.iter().collect();
        let outputs = model.predict_multi(&inputs, 32).unwrap();
        assert_eq!(outputs[0].shape(), expected[0].shape(), "{file}");
        for (i, (a, e)) in outputs[0].data().iter().zip(expected[0].data()).enumerate() {
            assert!((a - e).abs() <= 1e-5, "{file}[{i}]: strata {a}, Keras {e}");
        }
    }
}

/// A Keras 3 tensor argument read from `layer`'s first output.
fn tensor(layer: &str) -> Value {
    json!({"class_name": "__keras_tensor__", "config": {"shape": [null, 5, 4], "dtype": "float32",
           "keras_history": [layer, 0, 0]}})
}

/// A functional config of `layers` (`(class, name, config, inbound_nodes)`) after an input `x`
/// of shape (5, 4) and an input `h` of shape (3,), the last layer the output.
fn functional(layers: &[(&str, &str, Value, Value)]) -> Value {
    let mut entries = vec![
        json!({"class_name": "InputLayer", "name": "x", "config": {"name": "x", "batch_shape": [null, 5, 4]}, "inbound_nodes": []}),
        json!({"class_name": "InputLayer", "name": "h", "config": {"name": "h", "batch_shape": [null, 3]}, "inbound_nodes": []}),
    ];
    for (class, name, config, nodes) in layers {
        let mut config = config.clone();
        config["name"] = json!(name);
        entries.push(json!({"class_name": class, "name": name, "config": config, "inbound_nodes": nodes}));
    }
    let last = layers.last().unwrap().1;
    json!({"class_name": "Functional", "config": {"name": "m", "layers": entries,
           "input_layers": [["x", 0, 0], ["h", 0, 0]], "output_layers": [[last, 0, 0]]}})
}

#[test]
fn call_arguments_strata_cannot_map_are_all_refused_by_name() {
    let config = functional(&[
        (
            "LSTM",
            "lstm",
            json!({"units": 3}),
            json!([{"args": [tensor("x")],
            "kwargs": {"initial_state": [tensor("h"), tensor("h")]}}]),
        ),
        (
            "Dense",
            "dense",
            json!({"units": 2}),
            json!([{"args": [tensor("x")], "kwargs": {"mask": tensor("x")}}]),
        ),
        (
            "Dropout",
            "dropout",
            json!({"rate": 0.5}),
            json!([{"args": [tensor("dense")], "kwargs": {"training": true}}]),
        ),
        (
            "Dense",
            "last",
            json!({"units": 2}),
            json!([{"args": [tensor("dropout")], "kwargs": {"scale": 2.0}}]),
        ),
    ]);
    let Err(error) = keras_model_from_config(&config) else {
        panic!("not refused")
    };
    let error = error.to_string();
    assert!(error.contains("4 layer calls cannot be imported"), "{error}");
    for part in [
        "layer 'lstm' (LSTM) is called with initial_state (from 'h')",
        "layer 'dense' (Dense) is called with mask= a tensor of the model (from 'x')",
        "layer 'dropout' (Dropout) is called with training=True",
        "layer 'last' (Dense) is called with the argument scale=2.0",
    ] {
        assert!(error.contains(part), "{part}: {error}");
    }
}

#[test]
fn tf_keras2_keyword_arguments_are_read_too() {
    // tf.keras 2 writes the arguments after the first inside each reference.
    let config = functional(&[(
        "GRU",
        "gru",
        json!({"units": 3, "reset_after": true}),
        json!([[["x", 0, 0, {"initial_state": ["h", 0, 0]}]]]),
    )]);
    let Err(error) = keras_model_from_config(&config) else {
        panic!("not refused")
    };
    let error = error.to_string();
    assert!(
        error.contains("layer 'gru' (GRU) is called with initial_state (from 'h')"),
        "{error}"
    );
}

#[test]
fn a_shared_layer_called_with_different_settings_is_refused() {
    let node = |causal: bool| json!({"args": [tensor("x"), tensor("x")], "kwargs": {"use_causal_mask": causal}});
    let config = functional(&[(
        "MultiHeadAttention",
        "mha",
        json!({"num_heads": 1, "key_dim": 2}),
        json!([node(true), node(false)]),
    )]);
    let Err(error) = keras_model_from_config(&config) else {
        panic!("not refused")
    };
    let error = error.to_string();
    assert!(
        error.contains("layer 'mha' (MultiHeadAttention) is called with different settings"),
        "{error}"
    );
}

#[test]
fn training_false_and_masks_strata_carries_are_accepted() {
    // `training=False` predicts the same; arguments left at Keras's defaults are no change.
    let config = functional(&[
        (
            "Dropout",
            "dropout",
            json!({"rate": 0.5}),
            json!([{"args": [tensor("x")], "kwargs": {"training": false}}]),
        ),
        (
            "LSTM",
            "lstm",
            json!({"units": 3}),
            json!([{"args": [tensor("dropout")],
            "kwargs": {"training": null, "mask": null, "initial_state": null}}]),
        ),
        (
            "Dense",
            "state",
            json!({"units": 3}),
            json!([{"args": [tensor("h")], "kwargs": {}}]),
        ),
        (
            "Concatenate",
            "both",
            json!({"axis": -1}),
            json!([{"args": [[tensor("lstm"), tensor("state")]], "kwargs": {}}]),
        ),
    ]);
    let mut model = keras_model_from_config(&config).unwrap();
    assert_eq!(model.layers().len(), 6);
    model.build_inputs(&[&[5, 4], &[3]]).unwrap();
}
