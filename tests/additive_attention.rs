//! `AdditiveAttention` (Keras's Bahdanau layer): gradients against central differences, and
//! Keras 3's outputs and attention scores on the fixtures of
//! tools/make_keras_additive_attention.py (a learned scale, a key other than the value and a
//! padded value; no scale and a causal mask).

mod common;

use serde_json::Value;
use strata::Tensor;
use strata::autograd::gradcheck::max_gradient_error;
use strata::autograd::{Graph, ParamStore, Tape, Var};
use strata::layers::{AdditiveAttention, Layer, from_config};
use strata::rng::Rng;

/// A tensor stored as `{"shape": [...], "values": [...]}` (booleans as 0 and 1).
fn tensor(json: &Value) -> Tensor {
    let shape: Vec<usize> = serde_json::from_value(json["shape"].clone()).unwrap();
    let values: Vec<f32> = json["values"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap_or(if v.as_bool() == Some(true) { 1.0 } else { 0.0 }) as f32)
        .collect();
    Tensor::from_vec(shape, values).unwrap()
}

fn assert_matches_keras(name: &str) {
    let path = format!("{}/tests/fixtures/attention/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut config = fixture["config"].clone();
    config["return_attention_scores"] = Value::Bool(true);
    if name.ends_with("causal") {
        config["use_causal_mask"] = Value::Bool(true);
    }
    let mut layer = from_config("AdditiveAttention", &config).unwrap();
    let inputs: Vec<Tensor> = ["query", "value", "key"]
        .iter()
        .map(|r| tensor(&fixture["inputs"][*r]))
        .collect();
    let mut params = ParamStore::new();
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape()[1..].to_vec()).collect();
    layer.build(&shapes, &mut params, &mut Rng::new(0)).unwrap();
    let weights = fixture["weights"].as_array().unwrap();
    assert_eq!(layer.params().len(), weights.len(), "{name}");
    for (&id, weight) in layer.params().iter().zip(weights) {
        assert_eq!(params.name(id), "additive_attention/scale");
        *params.value_mut(id) = tensor(weight);
    }
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let vars: Vec<Var> = inputs.iter().map(|t| g.constant(t)).collect();
    if let Some(mask) = fixture["inputs"].get("value_mask") {
        let mask = g.constant(&tensor(mask));
        g.set_mask(vars[1], mask);
    }
    let mut outputs = Vec::new();
    layer.forward(&mut g, &vars, &mut outputs).unwrap();
    for (&output, key) in outputs.iter().zip(["output", "scores"]) {
        let expected = tensor(&fixture[key]);
        assert_eq!(g.value(output).shape(), expected.shape(), "{name} {key}");
        common::assert_close(g.value(output).data(), expected.data(), 1e-5, &format!("{name} {key}"));
    }
}

#[test]
fn additive_attention_with_a_scale_a_key_and_a_value_mask_matches_keras() {
    assert_matches_keras("additive_attention");
}

#[test]
fn causal_additive_attention_without_a_scale_matches_keras() {
    assert_matches_keras("additive_attention_causal");
}

#[test]
fn additive_attention_scale_and_inputs_have_the_right_gradient() {
    for causal in [false, true] {
        let mut layer = AdditiveAttention::new().use_causal_mask(causal).name("additive");
        let mut params = ParamStore::new();
        layer
            .build(&[vec![3, 4], vec![3, 2], vec![3, 4]], &mut params, &mut Rng::new(0))
            .unwrap();
        let q = params.add("q", common::uniform(&[2, 3, 4], -1.0, 1.0, 1), true);
        let v = params.add("v", common::uniform(&[2, 3, 2], -1.0, 1.0, 2), true);
        let k = params.add("k", common::uniform(&[2, 3, 4], -1.0, 1.0, 3), true);
        let error = max_gradient_error(&mut params, 1e-2, |g| {
            let inputs = [g.param(q), g.param(v), g.param(k)];
            let mut outputs = Vec::new();
            layer.forward(g, &inputs, &mut outputs)?;
            common::project(g, outputs[0], 6)
        })
        .unwrap();
        assert!(error < common::TOLERANCE, "causal {causal}: {error}");
    }
}

#[test]
fn mismatched_widths_and_dropout_out_of_range_name_the_layer_and_shapes() {
    let mut params = ParamStore::new();
    let error = AdditiveAttention::new()
        .name("additive")
        .build(&[vec![3, 4], vec![5, 3]], &mut params, &mut Rng::new(0))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("'additive'") && error.contains("(None, 3, 4), (None, 5, 3)"),
        "{error}"
    );
    let error = from_config("AdditiveAttention", &serde_json::json!({"dropout": 1.5}))
        .unwrap()
        .output_shapes(&[vec![3, 4], vec![5, 4]])
        .unwrap_err()
        .to_string();
    assert!(error.contains("dropout"), "{error}");
}
