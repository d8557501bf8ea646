//! Model transformations that keep the graph: regularization added to any model, Sequential or
//! functional, by rewriting its Keras config and building it again (before training: weights are
//! drawn anew).

use crate::error::{Error, Result};
use crate::model::Model;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Layers that get a `Dropout` after their output.
const DROPOUT_AFTER: [&str; 7] = [
    "Dense",
    "MaxPooling2D",
    "AveragePooling2D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
];
/// Layers whose kernel gets the L2 penalty.
const KERNEL_LAYERS: [&str; 3] = ["Dense", "Conv2D", "Conv1D"];

/// `model` with `Dropout(rate)` after every hidden Dense and pooling output (not after the
/// model's outputs) and an L2 penalty `factor·Σw²` on the kernel of every Dense and convolution
/// layer; residual `Add`s, merges and shared layers stay as they are. The model unchanged when
/// both are `None`.
///
/// ```
/// use strata::prelude::*;
/// let mut model = Sequential::new();
/// model.add(Input::new(&[4])).add(Dense::new(8)).add(Dense::new(1));
/// let model = strata::io::regularized(model, Some(0.5), None).unwrap();
/// let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
/// assert_eq!(classes, ["InputLayer", "Dense", "Dropout", "Dense"]);
/// ```
pub fn regularized(model: Model, dropout: Option<f32>, l2: Option<f32>) -> Result<Model> {
    if dropout.is_none() && l2.is_none() {
        return Ok(model);
    }
    if let Some(rate) = dropout
        && !(0.0..1.0).contains(&rate)
    {
        return Err(Error::invalid("rate", rate, "a Dropout rate must be in [0, 1)"));
    }
    let mut config = model.config();
    let functional = config["class_name"] != "Sequential";
    let layers = config["config"]["layers"]
        .as_array_mut()
        .ok_or_else(|| Error::Data("the model's config has no layer list".into()))?;
    if let Some(factor) = l2 {
        add_kernel_penalty(layers, factor);
    }
    if let Some(rate) = dropout {
        if functional {
            let outputs = output_layer_names(&config["config"]);
            let layers = config["config"]["layers"].as_array_mut().expect("checked above");
            add_dropout_in_graph(layers, rate, &outputs);
        } else {
            add_dropout_in_stack(layers, rate);
        }
    }
    let mut rebuilt = super::config::parse_value(&config, model.name())?.model;
    rebuilt.set_name(model.name());
    Ok(rebuilt)
}

/// Sets `kernel_regularizer` on every Dense and convolution entry.
fn add_kernel_penalty(layers: &mut [Value], factor: f32) {
    for entry in layers.iter_mut() {
        if KERNEL_LAYERS.contains(&entry["class_name"].as_str().unwrap_or_default()) {
            entry["config"]["kernel_regularizer"] = crate::regularizers::l2(factor).config();
        }
    }
}

/// A stack: a Dropout entry after every Dense and pooling entry but the last.
fn add_dropout_in_stack(layers: &mut Vec<Value>, rate: f32) {
    let mut names = taken_names(layers);
    let mut with_dropout = Vec::with_capacity(layers.len() * 2);
    let count = layers.len();
    for (i, entry) in layers.drain(..).enumerate() {
        let class = entry["class_name"].as_str().unwrap_or_default().to_string();
        with_dropout.push(entry);
        if i + 1 < count && DROPOUT_AFTER.contains(&class.as_str()) {
            let name = fresh_name("dropout", &mut names);
            with_dropout.push(json!({"class_name": "Dropout", "config": {"name": name, "rate": rate}}));
        }
    }
    *layers = with_dropout;
}

/// A graph: after every Dense and pooling layer that is not a model output, a Dropout called
/// once per call of the layer, and every reference to that layer's calls moved to the Dropout's.
fn add_dropout_in_graph(layers: &mut Vec<Value>, rate: f32, outputs: &HashSet<String>) {
    let mut names = taken_names(layers);
    let mut renamed: Vec<(String, String)> = Vec::new();
    let mut with_dropout = Vec::with_capacity(layers.len() * 2);
    for entry in layers.drain(..) {
        let class = entry["class_name"].as_str().unwrap_or_default();
        let name = layer_name(&entry);
        let calls = entry["inbound_nodes"].as_array().map_or(0, Vec::len);
        let hidden = !outputs.contains(&name) && calls > 0;
        let add = DROPOUT_AFTER.contains(&class) && hidden;
        with_dropout.push(entry);
        if add {
            let dropout = fresh_name("dropout", &mut names);
            let inbound: Vec<Value> = (0..calls).map(|node| json!([[name, node, 0, {}]])).collect();
            with_dropout.push(json!({
                "class_name": "Dropout",
                "name": dropout,
                "config": {"name": dropout, "rate": rate},
                "inbound_nodes": inbound,
            }));
            renamed.push((name, dropout));
        }
    }
    for entry in &mut with_dropout {
        let own = layer_name(entry);
        if let Some(nodes) = entry.get_mut("inbound_nodes") {
            redirect(nodes, &renamed, &own);
        }
    }
    *layers = with_dropout;
}

/// Replaces the layer names `from` with `to` in the `[name, node, tensor, {}]` references of
/// `nodes`, except in the Dropout entries themselves (whose input is the original layer).
fn redirect(nodes: &mut Value, renamed: &[(String, String)], own: &str) {
    let Some(calls) = nodes.as_array_mut() else { return };
    for reference in calls
        .iter_mut()
        .flat_map(|call| call.as_array_mut().into_iter().flatten())
    {
        let Some(name) = reference.get(0).and_then(Value::as_str).map(str::to_string) else {
            continue;
        };
        if let Some((_, to)) = renamed.iter().find(|(from, to)| *from == name && to != own) {
            reference[0] = json!(to);
        }
    }
}

/// The names of the layers whose calls are the model's outputs.
fn output_layer_names(config: &Value) -> HashSet<String> {
    let mut names = HashSet::new();
    if let Some(outputs) = config["output_layers"].as_array() {
        for output in outputs {
            // `["name", node, tensor]`, or a single such reference.
            match output.get(0) {
                Some(Value::String(name)) => names.insert(name.clone()),
                Some(Value::Array(inner)) => inner
                    .first()
                    .and_then(Value::as_str)
                    .is_some_and(|n| names.insert(n.into())),
                _ => false,
            };
        }
        if let Some(Value::String(name)) = outputs.first() {
            names.insert(name.clone());
        }
    }
    if names.is_empty()
        && let Some(last) = config["layers"].as_array().and_then(|l| l.last())
    {
        names.insert(layer_name(last));
    }
    names
}

/// A layer entry's name (`name` beside `class_name`, or inside `config`).
fn layer_name(entry: &Value) -> String {
    entry
        .get("name")
        .or_else(|| entry["config"].get("name"))
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn taken_names(layers: &[Value]) -> HashSet<String> {
    layers.iter().map(layer_name).collect()
}

/// Keras's naming: `base`, then `base_1`, `base_2`, ... skipping names already taken.
fn fresh_name(base: &str, taken: &mut HashSet<String>) -> String {
    let name = std::iter::once(base.to_string())
        .chain((1..).map(|i| format!("{base}_{i}")))
        .find(|name| !taken.contains(name))
        .expect("an unbounded sequence has a free name");
    taken.insert(name.clone());
    name
}
