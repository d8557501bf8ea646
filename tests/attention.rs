//! Attention: the fused operation's gradients against central differences, and
//! `MultiHeadAttention` against Keras 3 on the fixtures written by
//! tools/make_keras_attention.py (self-attention, cross-attention with a key that is not the
//! value, a causal mask, an explicit mask).

mod common;

use serde_json::Value;
use strata::Tensor;
use strata::autograd::gradcheck::max_gradient_error;
use strata::autograd::{AttentionOptions, Graph, ParamStore, Tape, Var};
use strata::layers::{Layer, MultiHeadAttention, from_config};
use strata::rng::Rng;

fn options(heads: usize, causal: bool, dropout: f32) -> AttentionOptions {
    AttentionOptions {
        heads,
        scale: 0.7,
        causal,
        dropout,
        seed: 5,
    }
}

#[test]
fn attention_op_has_the_right_gradient_with_masks_causality_and_dropout() {
    // Batch 2, 3 queries over 4 keys, 2 heads of key width 3 and value width 2.
    let mask = common::uniform(&[2, 3, 4], 0.0, 1.0, 9).map(|v| if v > 0.3 { 1.0 } else { 0.0 });
    for (causal, dropout, masked) in [
        (false, 0.0, false),
        (true, 0.0, false),
        (false, 0.0, true),
        (true, 0.4, true),
    ] {
        let mut params = ParamStore::new();
        let q = params.add("q", common::uniform(&[2, 3, 6], -1.0, 1.0, 1), true);
        let k = params.add("k", common::uniform(&[2, 4, 6], -1.0, 1.0, 2), true);
        let v = params.add("v", common::uniform(&[2, 4, 4], -1.0, 1.0, 3), true);
        let error = max_gradient_error(&mut params, 1e-2, |g| {
            let (q, k, v) = (g.param(q), g.param(k), g.param(v));
            let m = masked.then(|| g.constant(&mask));
            let y = g.attention(q, k, v, m, options(2, causal, dropout))?;
            common::project(g, y, 3)
        })
        .unwrap();
        assert!(
            error < common::TOLERANCE,
            "causal {causal}, dropout {dropout}, mask {masked}: {error}"
        );
    }
}

#[test]
fn attention_with_the_key_as_value_gets_both_gradients() {
    // Keras's Attention layers use one tensor as key and value: both parts must add up.
    let mut params = ParamStore::new();
    let q = params.add("q", common::uniform(&[1, 2, 4], -1.0, 1.0, 4), true);
    let kv = params.add("kv", common::uniform(&[1, 3, 4], -1.0, 1.0, 5), true);
    let error = max_gradient_error(&mut params, 1e-2, |g| {
        let (q, kv) = (g.param(q), g.param(kv));
        let y = g.attention(q, kv, kv, None, options(1, false, 0.0))?;
        common::project(g, y, 8)
    })
    .unwrap();
    assert!(error < common::TOLERANCE, "{error}");
}

#[test]
fn a_mask_of_the_wrong_shape_names_both_shapes() {
    let (mut tape, params) = (Tape::new(), ParamStore::new());
    let mut g = Graph::new(&mut tape, &params, false);
    let q = g.constant(&Tensor::zeros(&[2, 3, 4]));
    let k = g.constant(&Tensor::zeros(&[2, 5, 4]));
    let mask = g.constant(&Tensor::zeros(&[2, 5, 3]));
    let err = g
        .attention(q, k, k, Some(mask), options(2, false, 0.0))
        .unwrap_err()
        .to_string();
    assert!(err.contains("[2, 3, 5]") && err.contains("[2, 5, 3]"), "{err}");
}

/// Builds `layer` for per-sample `shapes`, then returns its outputs on `inputs`.
fn run(layer: &mut dyn Layer, params: &mut ParamStore, inputs: &[Tensor]) -> Vec<Tensor> {
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape()[1..].to_vec()).collect();
    if layer.params().is_empty() {
        layer.build(&shapes, params, &mut Rng::new(0)).unwrap();
    }
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, params, false);
    let vars: Vec<Var> = inputs.iter().map(|t| g.constant(t)).collect();
    let mut outputs = Vec::new();
    layer.forward(&mut g, &vars, &mut outputs).unwrap();
    outputs.iter().map(|&y| g.value(y).clone()).collect()
}

#[test]
fn multi_head_attention_weights_have_the_right_gradient() {
    let mut layer = MultiHeadAttention::new(2, 3).value_dim(2).output_shape(4).name("mha");
    let mut params = ParamStore::new();
    let shapes = [vec![3, 5], vec![4, 6], vec![4, 7]];
    layer.build(&shapes, &mut params, &mut Rng::new(1)).unwrap();
    let (query, value, key) = (
        common::uniform(&[2, 3, 5], -1.0, 1.0, 6),
        common::uniform(&[2, 4, 6], -1.0, 1.0, 7),
        common::uniform(&[2, 4, 7], -1.0, 1.0, 8),
    );
    let error = max_gradient_error(&mut params, 1e-2, |g| {
        let inputs = [g.constant(&query), g.constant(&value), g.constant(&key)];
        let mut outputs = Vec::new();
        layer.forward(g, &inputs, &mut outputs)?;
        common::project(g, outputs[0], 4)
    })
    .unwrap();
    assert!(error < common::TOLERANCE, "{error}");
}

/// A tensor stored as `{"shape": [...], "values": [...]}`.
fn tensor(json: &Value) -> Tensor {
    let shape: Vec<usize> = serde_json::from_value(json["shape"].clone()).unwrap();
    let values: Vec<f32> = serde_json::from_value(json["values"].clone()).unwrap();
    Tensor::from_vec(shape, values).unwrap()
}

/// Loads a fixture's config and weights into strata's layer and compares its output and
/// attention scores with Keras's.
fn assert_matches_keras(name: &str) {
    let path = format!("{}/tests/fixtures/attention/{name}.json", env!("CARGO_MANIFEST_DIR"));
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut config = fixture["config"].clone();
    config["use_causal_mask"] = fixture["use_causal_mask"].clone();
    config["return_attention_scores"] = Value::Bool(true);
    let roles = fixture["inputs"].as_object().unwrap();
    config["attention_mask_input"] = Value::Bool(roles.contains_key("attention_mask"));
    let mut layer = from_config("MultiHeadAttention", &config).unwrap();
    let inputs: Vec<Tensor> = ["query", "value", "key", "attention_mask"]
        .iter()
        .filter_map(|role| roles.get(*role).map(tensor))
        .collect();
    let mut params = ParamStore::new();
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape()[1..].to_vec()).collect();
    layer.build(&shapes, &mut params, &mut Rng::new(0)).unwrap();
    let weights = fixture["weights"].as_array().unwrap();
    assert_eq!(layer.params().len(), weights.len(), "{name}: weight count");
    for (id, weight) in layer.params().into_iter().zip(weights) {
        assert_eq!(params.name(id), weight["name"].as_str().unwrap(), "{name}");
        let value = tensor(weight);
        assert_eq!(params.value(id).shape(), value.shape(), "{name}: {}", params.name(id));
        *params.value_mut(id) = value;
    }
    let outputs = run(layer.as_mut(), &mut params, &inputs);
    for (output, key) in outputs.iter().zip(["output", "scores"]) {
        let expected = tensor(&fixture[key]);
        assert_eq!(output.shape(), expected.shape(), "{name} {key}");
        common::assert_close(output.data(), expected.data(), 1e-5, &format!("{name} {key}"));
    }
}

#[test]
fn self_attention_matches_keras() {
    assert_matches_keras("self_attention");
}

#[test]
fn cross_attention_with_a_separate_key_matches_keras() {
    assert_matches_keras("cross_attention");
}

#[test]
fn causal_self_attention_without_biases_matches_keras() {
    assert_matches_keras("causal");
}

#[test]
fn an_explicit_attention_mask_matches_keras() {
    assert_matches_keras("explicit_mask");
}

#[test]
fn unsupported_settings_and_bad_inputs_are_clear_errors() {
    let config = |extra: Value| {
        let mut c = serde_json::json!({"name": "mha", "num_heads": 2, "key_dim": 4});
        c.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        from_config("MultiHeadAttention", &c)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    assert_eq!(config(serde_json::json!({"attention_axes": [1]})), "");
    assert!(config(serde_json::json!({"attention_axes": [2]})).contains("attention_axes"));
    assert!(config(serde_json::json!({"use_gate": true})).contains("use_gate"));
    assert!(config(serde_json::json!({"value_dimm": 3})).contains("value_dimm"));
    let layer = MultiHeadAttention::new(2, 4).name("mha");
    let err = layer.output_shapes(&[vec![3, 5]]).unwrap_err().to_string();
    assert!(err.contains("'mha'") && err.contains("(None, 3, 5)"), "{err}");
    let err = layer
        .output_shapes(&[vec![3, 5], vec![4, 6, 2]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("(None, 4, 6, 2)"), "{err}");
    let masked = MultiHeadAttention::new(2, 4).attention_mask_input(true).name("mha");
    let err = masked
        .output_shapes(&[vec![3, 5], vec![4, 5], vec![4, 3]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("(None, 3, 4)") && err.contains("(None, 4, 3)"), "{err}");
    let err = MultiHeadAttention::new(0, 4)
        .output_shapes(&[vec![3, 5], vec![3, 5]])
        .unwrap_err();
    assert!(err.to_string().contains("num_heads"), "{err}");
}

#[test]
fn dot_product_attention_with_a_learned_scale_and_a_value_mask_matches_keras() {
    let path = format!(
        "{}/tests/fixtures/attention/dot_attention.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let fixture: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let mut config = fixture["config"].clone();
    config["return_attention_scores"] = Value::Bool(true);
    let mut layer = from_config("Attention", &config).unwrap();
    let inputs: Vec<Tensor> = ["query", "value", "key"]
        .iter()
        .map(|r| tensor(&fixture["inputs"][*r]))
        .collect();
    let value_mask = tensor(&fixture["inputs"]["value_mask"]).map(|v| v as u8 as f32);
    let mut params = ParamStore::new();
    let shapes: Vec<Vec<usize>> = inputs.iter().map(|t| t.shape()[1..].to_vec()).collect();
    layer.build(&shapes, &mut params, &mut Rng::new(0)).unwrap();
    let scale = layer.params()[0];
    assert_eq!(params.name(scale), "attention/scale");
    params.value_mut(scale).data_mut()[0] = 0.7;
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let vars: Vec<Var> = inputs.iter().map(|t| g.constant(t)).collect();
    let mask = g.constant(&value_mask);
    g.set_mask(vars[1], mask);
    let mut outputs = Vec::new();
    layer.forward(&mut g, &vars, &mut outputs).unwrap();
    for (&output, key) in outputs.iter().zip(["output", "scores"]) {
        let expected = tensor(&fixture[key]);
        assert_eq!(g.value(output).shape(), expected.shape(), "{key}");
        common::assert_close(g.value(output).data(), expected.data(), 1e-5, key);
    }
}

#[test]
fn dot_product_attention_scale_and_inputs_have_the_right_gradient() {
    let mut layer = strata::layers::Attention::new()
        .use_scale(true)
        .use_causal_mask(true)
        .name("attention");
    let mut params = ParamStore::new();
    layer
        .build(&[vec![3, 4], vec![3, 4]], &mut params, &mut Rng::new(0))
        .unwrap();
    let q = params.add("q", common::uniform(&[2, 3, 4], -1.0, 1.0, 1), true);
    let v = params.add("v", common::uniform(&[2, 3, 4], -1.0, 1.0, 2), true);
    let error = max_gradient_error(&mut params, 1e-2, |g| {
        let inputs = [g.param(q), g.param(v)];
        let mut outputs = Vec::new();
        layer.forward(g, &inputs, &mut outputs)?;
        common::project(g, outputs[0], 6)
    })
    .unwrap();
    assert!(error < common::TOLERANCE, "{error}");
    let err = from_config("Attention", &serde_json::json!({"score_mode": "concat"}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("score_mode"), "{err}");
}

#[test]
fn multi_head_dot_product_attention_computes_each_head_by_hand() {
    // Two heads of width 2 over 3 key steps: head h reads features 2h..2h+2 of each input.
    let layer = from_config(
        "DotProductAttention",
        &serde_json::json!({"num_heads": 2, "scale": 0.5, "name": "heads"}),
    )
    .unwrap();
    let (tq, tk, width) = (2, 3, 4);
    let q = common::uniform(&[1, tq, width], -1.0, 1.0, 3);
    let k = common::uniform(&[1, tk, width], -1.0, 1.0, 4);
    let v = common::uniform(&[1, tk, width], -1.0, 1.0, 5);
    let params = ParamStore::new();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let vars = [g.constant(&q), g.constant(&v), g.constant(&k)];
    let mut outputs = Vec::new();
    layer.forward(&mut g, &vars, &mut outputs).unwrap();
    let y = g.value(outputs[0]).data().to_vec();
    let (q, k, v) = (q.data(), k.data(), v.data());
    let mut expected = vec![0.0f32; tq * width];
    for h in 0..2 {
        for i in 0..tq {
            let scores: Vec<f32> = (0..tk)
                .map(|j| {
                    (0..2)
                        .map(|d| q[i * width + 2 * h + d] * k[j * width + 2 * h + d])
                        .sum::<f32>()
                        * 0.5
                })
                .collect();
            let top = scores.iter().copied().fold(f32::MIN, f32::max);
            let total: f32 = scores.iter().map(|s| (s - top).exp()).sum();
            for d in 0..2 {
                expected[i * width + 2 * h + d] = (0..tk)
                    .map(|j| (scores[j] - top).exp() / total * v[j * width + 2 * h + d])
                    .sum();
            }
        }
    }
    common::assert_close(&y, &expected, 1e-6, "two heads");
    let err = from_config("DotProductAttention", &serde_json::json!({"num_heads": 3}))
        .unwrap()
        .output_shapes(&[vec![2, 4], vec![3, 4]])
        .unwrap_err();
    assert!(err.to_string().contains("3·dim"), "{err}");
}

/// Runs `layer` on constant inputs (no weights).
fn run_constant(layer: &dyn Layer, inputs: &[&Tensor]) -> strata::Result<Tensor> {
    let params = ParamStore::new();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let vars: Vec<Var> = inputs.iter().map(|t| g.constant(t)).collect();
    let mut outputs = Vec::new();
    layer.forward(&mut g, &vars, &mut outputs)?;
    Ok(g.value(outputs[0]).clone())
}

#[test]
fn dot_product_attention_with_a_key_mask_leaves_those_keys_out() {
    // A key mask (N, Tk) leaves out keys the same for every query: the result is the attention
    // over the kept keys alone, per sample; (N, Tq, Tk) masks per query.
    let config = |mask: bool| serde_json::json!({"num_heads": 2, "use_causal_mask": false, "mask_input": mask});
    let masked = from_config("DotProductAttention", &config(true)).unwrap();
    let plain = from_config("DotProductAttention", &config(false)).unwrap();
    let (tq, tk, width) = (2, 4, 4);
    let q = common::uniform(&[2, tq, width], -1.0, 1.0, 6);
    let k = common::uniform(&[2, tk, width], -1.0, 1.0, 7);
    let v = common::uniform(&[2, tk, width], -1.0, 1.0, 8);
    // Sample 0 keeps keys 0, 1 and 3; sample 1 keeps all four.
    let mask = Tensor::from_vec(vec![2, tk], vec![1., 1., 0., 1., 1., 1., 1., 1.]).unwrap();
    let y = run_constant(masked.as_ref(), &[&q, &v, &k, &mask]).unwrap();
    let sample = |t: &Tensor, n: usize, steps: &[usize]| {
        let row = t.shape()[2];
        let data: Vec<f32> = steps
            .iter()
            .flat_map(|&s| t.data()[(n * t.shape()[1] + s) * row..][..row].to_vec())
            .collect();
        Tensor::from_vec(vec![1, steps.len(), row], data).unwrap()
    };
    let kept = [0, 1, 3];
    let first = run_constant(
        plain.as_ref(),
        &[&sample(&q, 0, &[0, 1]), &sample(&v, 0, &kept), &sample(&k, 0, &kept)],
    );
    let all = [0, 1, 2, 3];
    let second = run_constant(
        plain.as_ref(),
        &[&sample(&q, 1, &[0, 1]), &sample(&v, 1, &all), &sample(&k, 1, &all)],
    );
    let expected: Vec<f32> = first
        .unwrap()
        .data()
        .iter()
        .chain(second.unwrap().data())
        .copied()
        .collect();
    common::assert_close(y.data(), &expected, 1e-6, "key mask");
    // The same mask given per query.
    let keys = mask.data();
    let per_query: Vec<f32> = (0..2)
        .flat_map(|n| (0..tq).flat_map(move |_| (0..tk).map(move |j| keys[n * tk + j])))
        .collect();
    let per_query = Tensor::from_vec(vec![2, tq, tk], per_query).unwrap();
    let z = run_constant(masked.as_ref(), &[&q, &v, &k, &per_query]).unwrap();
    common::assert_close(z.data(), y.data(), 1e-7, "per-query mask");
    // The setting round-trips, and a mask of the wrong length names both shapes.
    let again = from_config("DotProductAttention", &masked.config()).unwrap();
    assert_eq!(again.config()["mask_input"], true);
    let err = masked
        .output_shapes(&[vec![tq, width], vec![tk, width], vec![tk, width], vec![3]])
        .unwrap_err();
    assert!(
        err.to_string().contains("then a mask") && err.to_string().contains("(None, 3)"),
        "{err}"
    );
}
