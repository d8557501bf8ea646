//! Model transformations that keep the graph: regularization and preprocessing layers added to
//! any model, Sequential or functional, by rewriting its Keras config and building it again
//! (before training: weights are drawn anew, the seed and compile settings are not kept).

use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::model::Model;
use serde_json::{Value, json};
use std::collections::HashSet;

/// The config keys that declare a layer's input shape, moved onto an `InputLayer` when the first
/// layer of a stack declares it.
const INPUT_SHAPE_KEYS: [&str; 4] = ["input_shape", "batch_shape", "batch_input_shape", "shape"];

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
    // Checked here, before the factor goes through JSON: NaN and infinities have no JSON form
    // (they become null), and a null factor would read back as Keras's default 0.01.
    if let Some(factor) = l2 {
        crate::regularizers::l2(factor).validate()?;
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

/// `model` with `layers` inserted right after its input, in order: what `--augment` does with
/// [`ImageAugmentation::layers`](crate::data::ImageAugmentation::layers). A stack whose first
/// layer declares the input shape gets an `InputLayer` of that shape first. A functional model
/// must have one input (with several, call the layers on the inputs that need them).
///
/// ```
/// use strata::io::with_preprocessing;
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let mut model = Sequential::new();
/// model.add(Input::new(&[28, 28, 1])).add(Flatten::new()).add(Dense::new(10));
/// let flip: Box<dyn Layer> = Box::new(RandomFlip::new("horizontal"));
/// let model = with_preprocessing(model, vec![flip])?;
/// assert_eq!(model.layers()[1].class_name(), "RandomFlip");
/// # Ok(()) }
/// ```
pub fn with_preprocessing(model: Model, layers: Vec<Box<dyn Layer>>) -> Result<Model> {
    if layers.is_empty() {
        return Ok(model);
    }
    let mut config = model.config();
    let functional = config["class_name"] != "Sequential";
    let entries = config["config"]["layers"]
        .as_array_mut()
        .ok_or_else(|| Error::Data("the model's config has no layer list".into()))?;
    if entries.is_empty() {
        return Err(Error::Usage(format!("model '{}' has no layers", model.name())));
    }
    let inserted: Vec<Value> = layers
        .iter()
        .map(|layer| json!({"class_name": layer.class_name(), "config": layer.config(), "name": layer.name()}))
        .collect();
    if functional {
        insert_after_graph_input(entries, inserted, model.name())?;
    } else {
        insert_after_stack_input(entries, inserted, &model)?;
    }
    let mut rebuilt = super::config::parse_value(&config, model.name())?.model;
    rebuilt.set_name(model.name());
    Ok(rebuilt)
}

/// A stack: the entries after its `InputLayer`, which is made from the first layer's declared
/// input shape when the stack has none.
fn insert_after_stack_input(entries: &mut Vec<Value>, inserted: Vec<Value>, model: &Model) -> Result<()> {
    if entries[0]["class_name"] != "InputLayer" {
        let shape = model.layers()[0].declared_input_shape().ok_or_else(|| {
            Error::Usage(format!(
                "model '{}' declares no input shape, so there is no input to insert preprocessing layers after",
                model.name()
            ))
        })?;
        if let Value::Object(first) = &mut entries[0]["config"] {
            INPUT_SHAPE_KEYS.iter().for_each(|key| {
                first.remove(*key);
            });
        }
        let input = crate::layers::Input::new(shape);
        entries.insert(0, json!({"class_name": "InputLayer", "config": input.config()}));
    }
    entries.splice(1..1, inserted);
    Ok(())
}

/// A graph with one input: the entries chained after the `InputLayer`, and every reference to
/// the input moved to the last of them.
fn insert_after_graph_input(entries: &mut Vec<Value>, mut inserted: Vec<Value>, model: &str) -> Result<()> {
    let inputs: Vec<String> = entries
        .iter()
        .filter(|e| e["class_name"] == "InputLayer")
        .map(layer_name)
        .collect();
    let [input] = inputs.as_slice() else {
        return Err(Error::Usage(format!(
            "model '{model}' has {} inputs: call the preprocessing layers on the inputs that need them",
            inputs.len()
        )));
    };
    let mut names = taken_names(entries);
    let mut previous = input.clone();
    for entry in &mut inserted {
        let base = entry["name"].as_str().unwrap_or("preprocessing").to_string();
        let name = if names.contains(&base) {
            fresh_name(&base, &mut names)
        } else {
            base
        };
        names.insert(name.clone());
        entry["name"] = json!(name);
        entry["config"]["name"] = json!(name);
        entry["inbound_nodes"] = json!([[[previous, 0, 0, {}]]]);
        previous = name;
    }
    let renamed = [(input.clone(), previous)];
    let own: HashSet<String> = inserted.iter().map(layer_name).collect();
    for entry in entries.iter_mut().filter(|e| !own.contains(&layer_name(e))) {
        let name = layer_name(entry);
        if let Some(nodes) = entry.get_mut("inbound_nodes") {
            redirect(nodes, &renamed, &name);
        }
    }
    let position = entries
        .iter()
        .position(|e| layer_name(e) == *input)
        .map_or(0, |i| i + 1);
    entries.splice(position..position, inserted);
    Ok(())
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
