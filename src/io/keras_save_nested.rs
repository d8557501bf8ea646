//! Saving nested models as Keras does: strata runs one flat graph, but a model imported from
//! `Sequential([base, GlobalAveragePooling2D(), Dense(5)])` remembers which layers were `base`
//! ([`crate::model::Model::nested_models`]), and its `.keras` and `.h5` files give them back to Keras as one layer of
//! class `Functional` (or `Sequential`) holding them, so that Keras's
//! `model.get_layer("mobilenetv2_1.00_224")` finds the base again and the weights lie where
//! Keras keeps a nested model's (`layers/functional/layers/conv2d/vars/0`).
//!
//! The nesting is done on config.json's flat functional description: the layers of a nested
//! model are taken out of the list and replaced, where the first of them stood, by the nested
//! model's entry; what they read from outside becomes the nested model's inputs (an
//! `InputLayer` each), what outside reads from them its outputs. The layers keep Keras's order
//! (the outer model's, restricted to them), which is the order Keras numbers their weight groups
//! in; the importer's own reading of the result (`keras_nested.rs`) gives the groups written.

use super::keras_nested::entry_name;
use crate::model::NestedModel;
use serde_json::{Value, json};
use std::collections::HashSet;

/// Rewrites a functional model's `config` body (`layers` in Keras's order, `output_layers`)
/// with the layers of each of `records` (outermost first) grouped into a nested model entry.
/// `taken` holds every layer name of the model: the nested models' new input layers get names
/// outside it.
pub(super) fn nest(body: &mut Value, records: &[NestedModel], taken: &HashSet<String>) {
    let entries = body
        .get_mut("layers")
        .and_then(Value::as_array_mut)
        .map(std::mem::take)
        .unwrap_or_default();
    let mut outputs = references(body.get("output_layers"));
    let mut taken = taken.clone();
    let records: Vec<&NestedModel> = records.iter().collect();
    let entries = nest_level(entries, &mut outputs, &records, &mut taken);
    body["layers"] = Value::Array(entries);
    body["output_layers"] = bare(outputs);
}

/// Groups, among `entries` (one model's layers), the layers of each record not inside another
/// of `records`; `outputs` are the references the model around them reads (renamed when they
/// point into a nested model).
fn nest_level(
    mut entries: Vec<Value>,
    outputs: &mut [Value],
    records: &[&NestedModel],
    taken: &mut HashSet<String>,
) -> Vec<Value> {
    let outermost: Vec<usize> = (0..records.len())
        .filter(|&i| !(0..records.len()).any(|j| contains(records, j, i)))
        .collect();
    for index in outermost {
        let record = records[index];
        let holds = |entry: &Value| record.layer_names().iter().any(|n| *n == entry_name(entry));
        let Some(first) = entries.iter().position(holds) else {
            continue;
        };
        let (members, rest): (Vec<Value>, Vec<Value>) = entries.into_iter().partition(holds);
        entries = rest;
        let member_names: HashSet<String> = members.iter().map(entry_name).collect();
        // What outside reads from the members: the nested model's outputs, renamed outside.
        let mut inner_outputs: Vec<Value> = Vec::new();
        let mut to_outputs = |history: &mut Value| {
            if !member_names.contains(&history_name(history)) {
                return;
            }
            let position = inner_outputs.iter().position(|o| o == history).unwrap_or_else(|| {
                inner_outputs.push(history.clone());
                inner_outputs.len() - 1
            });
            *history = json!([record.name(), 0, position]);
        };
        for output in outputs.iter_mut() {
            to_outputs(output);
        }
        for entry in &mut entries {
            each_tensor(entry, &mut |tensor| to_outputs(&mut tensor["config"]["keras_history"]));
        }
        // What the members read from outside: the nested model's inputs.
        let mut reads: Vec<Value> = Vec::new();
        let mut input_names: Vec<String> = Vec::new();
        let mut members = members;
        for member in &mut members {
            each_tensor(member, &mut |tensor| {
                let history = &tensor["config"]["keras_history"];
                if member_names.contains(&history_name(history)) {
                    return;
                }
                let position = reads
                    .iter()
                    .position(|r| r["config"]["keras_history"] == *history)
                    .unwrap_or_else(|| {
                        reads.push(tensor.clone());
                        input_names.push(fresh_name(&format!("{}_input", record.name()), taken));
                        reads.len() - 1
                    });
                tensor["config"]["keras_history"] = json!([input_names[position], 0, 0]);
            });
        }
        let within: Vec<&NestedModel> = (0..records.len())
            .filter(|&j| contains(records, index, j))
            .map(|j| records[j])
            .collect();
        let members = nest_level(members, &mut inner_outputs, &within, taken);
        let entry = nested_entry(record, members, &reads, &input_names, inner_outputs);
        entries.insert(first.min(entries.len()), entry);
    }
    entries
}

/// The entry of the nested model `record` in the model around it: its class, its config (its
/// input layers, then `members`), and its one call, on `reads`.
fn nested_entry(
    record: &NestedModel,
    members: Vec<Value>,
    reads: &[Value],
    input_names: &[String],
    outputs: Vec<Value>,
) -> Value {
    let shape_of = |tensor: &Value| tensor["config"]["shape"].clone();
    let trainable = members.iter().any(|m| m["config"]["trainable"] != json!(false));
    let args = match reads {
        [one] => json!([one]),
        many => json!([many]),
    };
    let call = json!([{"args": args, "kwargs": {}}]);
    let chain = record.class_name() == "Sequential" && reads.len() == 1 && outputs.len() == 1 && is_chain(&members);
    if chain {
        // Keras's Sequential: its layers in order, each reading the one before.
        let shape = shape_of(&reads[0]);
        let mut layers = vec![input_layer(&input_names[0], &shape)];
        layers.extend(members);
        for layer in &mut layers {
            if let Some(object) = layer.as_object_mut() {
                object.remove("name");
                object.remove("inbound_nodes");
            }
        }
        return json!({
            "module": "keras",
            "class_name": "Sequential",
            "config": {
                "name": record.name(),
                "trainable": trainable,
                "dtype": "float32",
                "layers": layers,
                "build_input_shape": shape,
            },
            "registered_name": null,
            "build_config": {"input_shape": shape},
            "name": record.name(),
            "inbound_nodes": call,
        });
    }
    let mut layers: Vec<Value> = reads
        .iter()
        .zip(input_names)
        .map(|(read, name)| {
            let mut layer = input_layer(name, &shape_of(read));
            layer["name"] = json!(name);
            layer["inbound_nodes"] = json!([]);
            layer
        })
        .collect();
    layers.extend(members);
    let inputs: Vec<Value> = input_names.iter().map(|n| json!([n, 0, 0])).collect();
    json!({
        "module": "keras.src.models.functional",
        "class_name": "Functional",
        "config": {
            "name": record.name(),
            "trainable": trainable,
            "layers": layers,
            "input_layers": bare(inputs),
            "output_layers": bare(outputs),
        },
        "registered_name": "Functional",
        "build_config": {"input_shape": null},
        "name": record.name(),
        "inbound_nodes": call,
    })
}

/// A Keras 3 `InputLayer` entry named `name` taking `batch_shape`.
fn input_layer(name: &str, batch_shape: &Value) -> Value {
    json!({
        "module": "keras.layers",
        "class_name": "InputLayer",
        "config": {"batch_shape": batch_shape, "dtype": "float32", "sparse": false, "name": name},
        "registered_name": null,
    })
}

/// Whether each of `members` (functional entries) reads exactly the one before it, the first
/// one input from outside: a nested model that Keras's `Sequential` can hold.
fn is_chain(members: &[Value]) -> bool {
    let mut previous: Option<String> = None;
    for member in members {
        let mut histories = Vec::new();
        let mut member = member.clone();
        each_tensor(&mut member, &mut |tensor| {
            histories.push(tensor["config"]["keras_history"].clone())
        });
        let calls = member["inbound_nodes"].as_array().map_or(0, Vec::len);
        if calls != 1 || histories.len() != 1 {
            return false;
        }
        if let Some(previous) = &previous
            && histories[0] != json!([previous, 0, 0])
        {
            return false;
        }
        previous = Some(entry_name(&member));
    }
    true
}

/// Whether the record `outer` holds the record `inner`: all its layers, and more or the same
/// ones when listed first (records are outermost first: a `Sequential` of one nested model).
fn contains(records: &[&NestedModel], outer: usize, inner: usize) -> bool {
    let (o, i) = (records[outer].layer_names(), records[inner].layer_names());
    outer != inner && i.iter().all(|n| o.contains(n)) && (o.len() > i.len() || outer < inner)
}

/// Calls `f` on every serialized tensor (`__keras_tensor__`) in `value`.
fn each_tensor(value: &mut Value, f: &mut dyn FnMut(&mut Value)) {
    match value {
        Value::Object(object) if object.get("class_name") == Some(&json!("__keras_tensor__")) => f(value),
        Value::Object(object) => object.values_mut().for_each(|v| each_tensor(v, f)),
        Value::Array(items) => items.iter_mut().for_each(|v| each_tensor(v, f)),
        _ => {}
    }
}

/// `base`, or `base_1`, `base_2`, ...: the first not in `taken`, which then holds it.
fn fresh_name(base: &str, taken: &mut HashSet<String>) -> String {
    let name = (0..)
        .map(|k| match k {
            0 => base.to_string(),
            k => format!("{base}_{k}"),
        })
        .find(|n| !taken.contains(n))
        .unwrap_or_default();
    taken.insert(name.clone());
    name
}

/// The list of `[name, node, tensor]` references, written bare (one) or as a list.
fn references(value: Option<&Value>) -> Vec<Value> {
    match value {
        Some(Value::Array(items)) if items.first().is_some_and(Value::is_string) => vec![Value::Array(items.clone())],
        Some(Value::Array(items)) => items.clone(),
        _ => Vec::new(),
    }
}

/// One reference bare, as Keras writes a model of one input or output; several as a list.
fn bare(mut list: Vec<Value>) -> Value {
    match list.len() {
        1 => list.remove(0),
        _ => Value::Array(list),
    }
}

fn history_name(history: &Value) -> String {
    history.get(0).and_then(Value::as_str).unwrap_or_default().to_string()
}
