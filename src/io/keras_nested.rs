//! Models used as layers (`Sequential([base, GlobalAveragePooling2D(), Dense(5)])`, where `base`
//! is a Keras Application): their layers are opened up into the outer model's graph, so strata
//! runs one flat graph with the same computation.
//!
//! Why flatten instead of a "model" layer: every layer then keeps its own weights, shapes and
//! errors, and a nested model costs nothing at run time. What changes is only the layer list:
//! the nested model's `InputLayer`s disappear (its layers read what the nested model was called
//! on) and whatever read the nested model's outputs reads its output layers instead.
//!
//! Each layer also gets the group holding its weights in `model.weights.h5`: Keras saves a
//! container's layers under `layers/<class in snake case>[_k]` (counted per class in layer
//! order), a nested model's under its own group, e.g. `layers/functional/layers/conv2d/vars`.

use crate::initializers::to_snake_case;
use crate::model::NestedModel;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Keras's classes of models that appear as layers.
const MODEL_CLASSES: &[&str] = &["Functional", "Model", "Sequential"];

/// The layers of a config, nested models opened up, with their weight groups.
pub(super) struct FlatLayers {
    /// The entries (`{"class_name", "config", "inbound_nodes"}` in Keras 2's layout when the
    /// model is functional).
    pub entries: Vec<Value>,
    /// For each entry, the HDF5 group of its weights (`layers/dense/vars`).
    pub groups: Vec<String>,
    /// The nested models opened up, outermost first, with the names of their layers.
    pub nested: Vec<NestedModel>,
    /// Warnings about the calls of the nested models' layers (`keras_calls.rs`).
    pub warnings: Vec<String>,
    /// The bytes of JSON copied so far while opening nested models up ([`MAX_COPIED_BYTES`]).
    copied: usize,
}

/// The most layer calls a model may open up into: a nested model called twice inside one
/// called twice, and so on, multiplies its layers' calls at each level, so a small hostile
/// file could otherwise ask for billions.
const MAX_OPENED_CALLS: usize = 1 << 18;

/// The most bytes of JSON (as text) opening nested models up may copy: each call of a nested
/// model copies its layers' entries, so a large entry (a junk key of megabytes) deep inside
/// models called many times would otherwise be copied hundreds of thousands of times.
const MAX_COPIED_BYTES: usize = 256 << 20;

/// A copy of `value`, its size counted in `copied` against [`MAX_COPIED_BYTES`].
fn copy(value: &Value, copied: &mut usize) -> Result<Value, String> {
    *copied = copied.saturating_add(json_size(value));
    if *copied > MAX_COPIED_BYTES {
        return Err(format!(
            "its nested models, opened up call by call, copy more than {} MB of JSON",
            MAX_COPIED_BYTES >> 20
        ));
    }
    Ok(value.clone())
}

/// About how many bytes `value` takes as JSON text (serde_json's parser nests at most 128
/// deep, so the recursion is bounded).
fn json_size(value: &Value) -> usize {
    match value {
        Value::String(text) => text.len().saturating_add(2),
        Value::Array(items) => items.iter().map(json_size).fold(2, usize::saturating_add),
        Value::Object(fields) => fields
            .iter()
            .map(|(key, value)| key.len().saturating_add(4).saturating_add(json_size(value)))
            .fold(2, usize::saturating_add),
        _ => 8,
    }
}

/// Whether a layer entry is a model used as a layer.
pub(super) fn is_model(entry: &Value) -> bool {
    entry
        .get("class_name")
        .and_then(Value::as_str)
        .is_some_and(|c| MODEL_CLASSES.contains(&c))
}

/// The layers of `body` (a model's `config`; functional models already in Keras 2's inbound
/// layout), nested models opened up. When a nested model is found in a `Sequential`, `body` is
/// first rewritten as the functional model it is (the caller then reads it as one).
pub(super) fn flatten(body: &mut Value, functional: bool) -> Result<FlatLayers, String> {
    let entries = body
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    if !entries.iter().any(is_model) {
        let groups = weight_groups(&entries, "").into_iter().map(|g| g + "/vars").collect();
        return Ok(FlatLayers {
            entries,
            groups,
            nested: Vec::new(),
            warnings: Vec::new(),
            copied: 0,
        });
    }
    if !functional {
        sequential_to_functional(body, false)?;
    }
    let entries = body
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let mut flat = FlatLayers {
        entries: Vec::new(),
        groups: Vec::new(),
        nested: Vec::new(),
        warnings: Vec::new(),
        copied: 0,
    };
    if opened_calls(&entries) > MAX_OPENED_CALLS {
        return Err(format!(
            "its nested models, opened up call by call, make more than {MAX_OPENED_CALLS} layer calls"
        ));
    }
    let mut aliases = HashMap::new();
    open_up(&entries, "", &mut aliases, &mut flat, 0)?;
    if let Some(outputs) = body.get_mut("output_layers") {
        rename_references(outputs, &aliases);
    }
    body["layers"] = Value::Array(flat.entries.clone());
    Ok(flat)
}

/// How many layer entries [`open_up`] makes of `entries` (those it merges into shared layers
/// included), counted without opening anything: each call of a nested model opens its layers
/// again. Saturates rather than overflows.
fn opened_calls(entries: &[Value]) -> usize {
    entries
        .iter()
        .map(|entry| {
            if !is_model(entry) {
                return 1;
            }
            let calls = entry
                .get("inbound_nodes")
                .and_then(Value::as_array)
                .map_or(1, |nodes| nodes.len().max(1));
            let inner = entry.pointer("/config/layers").and_then(Value::as_array);
            calls.saturating_mul(inner.map_or(0, |layers| opened_calls(layers)))
        })
        .fold(0, usize::saturating_add)
}

/// Each layer's group under `prefix`: `layers/<snake class>[_k]` (its weights are in `vars`).
fn weight_groups(entries: &[Value], prefix: &str) -> Vec<String> {
    let mut used: HashMap<String, usize> = HashMap::new();
    entries
        .iter()
        .map(|entry| {
            if super::keras_ops::is_operation(entry) {
                // Not a layer to Keras: no weights, not counted.
                return format!("{prefix}(operation)");
            }
            let class = entry.get("class_name").and_then(Value::as_str).unwrap_or("");
            let base = to_snake_case(class);
            let count = used.entry(base.clone()).and_modify(|n| *n += 1).or_insert(0);
            match *count {
                0 => format!("{prefix}layers/{base}"),
                n => format!("{prefix}layers/{base}_{n}"),
            }
        })
        .collect()
}

/// What a reference to a nested model's output `(name, node, tensor)` stands for.
type Aliases = HashMap<String, Alias>;

/// A nested model's output references, per call and then by tensor index.
#[derive(Default)]
struct Alias {
    calls: Vec<Vec<Value>>,
    /// tf.keras 2 counts a model built on `Input`s as called once already (its own graph is
    /// node 0) and numbers its calls from 1 in its references (`[name, node, tensor, kwargs]`).
    own_first_node: bool,
}

impl Alias {
    /// Stands for one reference.
    fn one(reference: Value) -> Self {
        Alias {
            calls: vec![vec![reference]],
            own_first_node: false,
        }
    }

    /// The reference for `node`'s `tensor`, `keras2` when the reference has tf.keras 2's
    /// four elements.
    fn output(&self, node: usize, tensor: usize, keras2: bool) -> Option<&Value> {
        let call = match keras2 && self.own_first_node {
            true => node.saturating_sub(1),
            false => node,
        };
        self.calls.get(call)?.get(tensor)
    }
}

/// Appends the layers of `entries` to `flat`, opening up nested models; `aliases` maps each
/// nested model's name to its outputs and each dropped inner `InputLayer` to what it stands for.
/// `call` numbers the call of the model holding `entries` (0 at the top): a nested model
/// called `c` times in it numbers its calls from `call · c`, as its layers' nodes are numbered
/// once every call is merged.
fn open_up(
    entries: &[Value],
    prefix: &str,
    aliases: &mut Aliases,
    flat: &mut FlatLayers,
    call: usize,
) -> Result<(), String> {
    let groups = weight_groups(entries, prefix);
    for (entry, group) in entries.iter().zip(groups) {
        if !is_model(entry) {
            let mut entry = copy(entry, &mut flat.copied)?;
            if let Some(nodes) = entry.get_mut("inbound_nodes") {
                rename_references(nodes, aliases);
            }
            flat.entries.push(entry);
            flat.groups.push(format!("{group}/vars"));
            continue;
        }
        // A nested model's entry is not copied whole: its calls and its config are.
        let name = entry_name(entry);
        let class = entry
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or("")
            .to_string();
        let mut calls = copy(entry.get("inbound_nodes").unwrap_or(&Value::Null), &mut flat.copied)?;
        rename_references(&mut calls, aliases);
        let calls = match calls {
            Value::Array(calls) => calls,
            _ => Vec::new(),
        };
        let mut inner = copy(entry.get("config").unwrap_or(&Value::Null), &mut flat.copied)?;
        let own_first_node = inner
            .pointer("/layers/0/class_name")
            .is_some_and(|class| class == "InputLayer");
        if class == "Sequential" {
            sequential_to_functional(&mut inner, true)?;
        } else {
            super::keras_ops_layers::as_layers(&mut inner);
            let warnings = super::keras_references::to_inbound_references(&mut inner)?;
            flat.warnings.extend(warnings);
            super::keras_tf_ops::as_layers(&mut inner);
        }
        let inner_inputs = reference_names(inner.get("input_layers"));
        let inner_entries: Vec<Value> = match inner.get_mut("layers").map(Value::take) {
            Some(Value::Array(layers)) => layers,
            _ => Vec::new(),
        }
        .into_iter()
        .filter(|e| !inner_inputs.contains(&entry_name(e)))
        .collect();
        if calls.is_empty() {
            return Err(format!("the nested model '{name}' ({class}) is never called"));
        }
        let (first_entry, record) = (flat.entries.len(), flat.nested.len());
        flat.nested
            .push(NestedModel::new(name.clone(), class.clone(), Vec::new()));
        // This model's calls in earlier calls of the model holding it come first.
        let first_call = call.checked_mul(calls.len()).ok_or("too many calls of nested models")?;
        let mut earlier = match first_call {
            0 => Vec::new(),
            _ => aliases.remove(&name).map(|alias| alias.calls).unwrap_or_default(),
        };
        earlier.truncate(first_call);
        let alias = Alias {
            calls: earlier,
            own_first_node,
        };
        aliases.insert(name.clone(), alias);
        for (k, reads) in calls.iter().enumerate() {
            let numbered = first_call + k;
            // A later call may read an earlier one's outputs (`inner(inner(x))`).
            let mut reads = copy(reads, &mut flat.copied)?;
            rename_references(&mut reads, aliases);
            let reads = reads.as_array().cloned().unwrap_or_default();
            if inner_inputs.len() != reads.len() {
                return Err(format!(
                    "the nested model '{name}' ({class}) takes {} inputs but is called on {}",
                    inner_inputs.len(),
                    reads.len()
                ));
            }
            // The nested model's inputs stand for what this call reads.
            for (input, read) in inner_inputs.iter().zip(&reads) {
                aliases.insert(input.clone(), Alias::one(read.clone()));
            }
            let call_start = flat.entries.len();
            let prefix = format!("{group}/");
            let entries = call_of(&inner_entries, numbered, &mut flat.copied)?;
            open_up(&entries, &prefix, aliases, flat, numbered)?;
            if k > 0 {
                // The same layers called again (shared weights, as Keras calls a model twice):
                // their first entries take this call's inbound nodes after their own.
                let again: Vec<Value> = flat.entries.drain(call_start..).collect();
                flat.groups.truncate(call_start);
                for (index, entry) in again.into_iter().enumerate() {
                    let nodes = entry.get("inbound_nodes").and_then(Value::as_array).cloned();
                    let first = &mut flat.entries[first_entry + index];
                    if let (Some(nodes), Some(Value::Array(existing))) = (nodes, first.get_mut("inbound_nodes")) {
                        existing.extend(nodes);
                    }
                }
            }
            let mut outputs = inner.get("output_layers").cloned().unwrap_or_else(|| json!([]));
            shift_nodes(&mut outputs, &node_counts(&inner_entries), numbered);
            rename_references(&mut outputs, aliases);
            let outputs = outputs.as_array().cloned().unwrap_or_default();
            if let Some(alias) = aliases.get_mut(&name) {
                alias.calls.push(outputs);
            }
        }
        let members = flat.entries[first_entry..].iter().map(entry_name).collect();
        flat.nested[record] = NestedModel::new(name.clone(), class, members);
        if calls.len() > 1 {
            // Shared, its layers have several nodes: strata keeps them as shared layers of the
            // outer model (saved flat), not as a nested model called once.
            flat.nested.truncate(record);
        }
    }
    Ok(())
}

/// A `Sequential` config rewritten as a functional one: each layer reads the one before it.
/// A `nested` one may leave its input shape unsaid (Keras's `Sequential([RandomFlip(), ...])`
/// called on a tensor): its input stands for what it is called on, and is dropped.
fn sequential_to_functional(body: &mut Value, nested: bool) -> Result<(), String> {
    if !body.is_object() {
        return Err(format!(
            "a Sequential model's config is not a JSON object: {}",
            short(body)
        ));
    }
    let name = body
        .get("name")
        .and_then(Value::as_str)
        .unwrap_or("sequential")
        .to_string();
    let mut entries = body
        .get("layers")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    let starts_with_input = entries
        .first()
        .and_then(|e| e.get("class_name"))
        .and_then(Value::as_str)
        == Some("InputLayer");
    // Errors number the layers as the config does, before an input is put in front.
    let given = usize::from(!starts_with_input);
    if !starts_with_input {
        let shape = match body.get("build_input_shape") {
            Some(shape) => shape.clone(),
            None if nested => Value::Null,
            None => return Err(format!("the Sequential model '{name}' gives no input shape")),
        };
        let input =
            json!({"class_name": "InputLayer", "config": {"name": format!("{name}_input"), "batch_shape": shape}});
        entries.insert(0, input);
    }
    let mut previous = String::new();
    for (index, entry) in entries.iter_mut().enumerate() {
        let this = entry_name(entry);
        let Some(fields) = entry.as_object_mut() else {
            return Err(format!(
                "layers[{}] of the Sequential model '{name}' is not a JSON object: {}",
                index - given,
                short(entry)
            ));
        };
        // Functional entries carry their name beside their config.
        fields.insert("name".into(), json!(this));
        if !previous.is_empty() {
            fields.insert("inbound_nodes".into(), json!([[[previous, 0, 0, {}]]]));
        }
        previous = this;
    }
    let input = entry_name(&entries[0]);
    body["input_layers"] = json!([[input, 0, 0]]);
    body["output_layers"] = json!([[previous, 0, 0]]);
    body["layers"] = Value::Array(entries);
    Ok(())
}

/// At most 60 characters of `value`'s JSON, for an error message.
fn short(value: &Value) -> String {
    let text = value.to_string();
    match text.char_indices().nth(60) {
        Some((end, _)) => format!("{}…", &text[..end]),
        None => text,
    }
}

/// A layer entry's name: its config's, or the functional entry's beside it.
pub(super) fn entry_name(entry: &Value) -> String {
    entry
        .get("config")
        .and_then(|c| c.get("name"))
        .or_else(|| entry.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string()
}

/// The layer names of `[[name, node, tensor], ...]`.
fn reference_names(references: Option<&Value>) -> Vec<String> {
    let Some(Value::Array(references)) = references else {
        return Vec::new();
    };
    references
        .iter()
        .filter_map(|r| r.get(0).and_then(Value::as_str).map(str::to_string))
        .collect()
}

/// Replaces, anywhere in `value`, each reference `[name, node, tensor, ...]` to an aliased
/// name by the reference it stands for.
fn rename_references(value: &mut Value, aliases: &Aliases) {
    let Value::Array(items) = value else { return };
    let target = match (
        items.first().and_then(Value::as_str),
        items.get(1).and_then(Value::as_u64),
        items.get(2).and_then(Value::as_u64),
    ) {
        (Some(name), node, tensor) => aliases.get(name).and_then(|alias| {
            let keras2 = items.len() == 4;
            alias.output(node.unwrap_or(0) as usize, tensor.unwrap_or(0) as usize, keras2)
        }),
        _ => None,
    };
    match target {
        Some(target) => {
            // Keep Keras 2's trailing kwargs object when there is one.
            let mut replaced = target.as_array().cloned().unwrap_or_default();
            replaced.truncate(3);
            replaced.extend(items.iter().skip(3).cloned());
            *items = replaced;
        }
        None => items.iter_mut().for_each(|item| rename_references(item, aliases)),
    }
}

/// How many times each of `entries` is called (its inbound nodes; at least 1).
fn node_counts(entries: &[Value]) -> HashMap<String, u64> {
    entries
        .iter()
        .map(|entry| {
            let calls = entry.get("inbound_nodes").and_then(Value::as_array).map_or(0, Vec::len);
            (entry_name(entry), calls.max(1) as u64)
        })
        .collect()
}

/// Call `k` of a nested model's layers: each reference `[name, node, ...]` to one of them
/// names node `k · calls + node`, since the layers' nodes of earlier calls come first.
fn call_of(entries: &[Value], k: usize, copied: &mut usize) -> Result<Vec<Value>, String> {
    let counts = node_counts(entries);
    let mut entries: Vec<Value> = entries.iter().map(|e| copy(e, copied)).collect::<Result<_, _>>()?;
    for entry in &mut entries {
        if let Some(nodes) = entry.get_mut("inbound_nodes") {
            shift_nodes(nodes, &counts, k);
        }
    }
    Ok(entries)
}

/// Shifts, anywhere in `value`, the node of each reference to a layer of `counts` to call `k`.
fn shift_nodes(value: &mut Value, counts: &HashMap<String, u64>, k: usize) {
    let Value::Array(items) = value else { return };
    let calls = items.first().and_then(Value::as_str).and_then(|name| counts.get(name));
    match (calls, items.get(1).and_then(Value::as_u64)) {
        (Some(calls), Some(node)) => items[1] = json!(k as u64 * calls + node),
        _ => items.iter_mut().for_each(|item| shift_nodes(item, counts, k)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A functional config (Keras 3's node numbers): `model_0` a Dense on its input; `model_k`
    /// calls `model_{k-1}` on its input and then on that call's output.
    fn nested_twice_per_level(levels: usize) -> Value {
        let mut body = json!({
            "name": "model_0",
            "layers": [
                {"class_name": "InputLayer", "name": "in_0", "config": {"name": "in_0", "batch_shape": [null, 2]}, "inbound_nodes": []},
                {"class_name": "Dense", "name": "dense", "config": {"name": "dense", "units": 2}, "inbound_nodes": [[["in_0", 0, 0]]]},
            ],
            "input_layers": [["in_0", 0, 0]],
            "output_layers": [["dense", 0, 0]],
        });
        for level in 1..=levels {
            let (input, inner) = (format!("in_{level}"), format!("model_{}", level - 1));
            body = json!({
                "name": format!("model_{level}"),
                "layers": [
                    {"class_name": "InputLayer", "name": input, "config": {"name": input, "batch_shape": [null, 2]}, "inbound_nodes": []},
                    {"class_name": "Functional", "name": inner, "config": body,
                     "inbound_nodes": [[[input, 0, 0]], [[inner, 0, 0]]]},
                ],
                "input_layers": [[input, 0, 0]],
                "output_layers": [[inner, 1, 0]],
            });
        }
        body
    }

    #[test]
    fn nested_calls_open_up_as_one_shared_layer_called_for_each() {
        let mut body = nested_twice_per_level(3);
        let flat = flatten(&mut body, true).unwrap();
        // One Dense, called 2³ times in a chain (each call reads the one before), the last call
        // the model's output.
        let names: Vec<String> = flat.entries.iter().map(entry_name).collect();
        assert_eq!(names, ["in_3", "dense"]);
        let expected: Vec<Value> = std::iter::once(json!([["in_3", 0, 0]]))
            .chain((0..7).map(|node| json!([["dense", node, 0]])))
            .collect();
        assert_eq!(flat.entries[1]["inbound_nodes"], json!(expected));
        assert_eq!(body["output_layers"], json!([["dense", 7, 0]]));
    }

    #[test]
    fn calls_multiplied_past_the_limit_are_refused_quickly() {
        // 2³⁰ calls of the Dense: refused once the limit is passed, not after opening them all.
        let mut body = nested_twice_per_level(30);
        let error = flatten(&mut body, true).err().expect("refused");
        assert!(error.contains("more than 262144 layer calls"), "{error}");
    }

    #[test]
    fn a_large_entry_copied_for_every_call_is_refused_quickly() {
        // 2¹⁶ calls (within the limit) of a Dense whose config holds 1 MB of junk: 64 GB of
        // copies, refused once the copies pass their limit.
        let mut body = nested_twice_per_level(16);
        let mut innermost = &mut body;
        for _ in 0..16 {
            innermost = &mut innermost["layers"][1]["config"];
        }
        innermost["layers"][1]["config"]["junk"] = json!("x".repeat(1 << 20));
        let error = flatten(&mut body, true).err().expect("refused");
        assert!(error.contains("copy more than 256 MB of JSON"), "{error}");
    }
}
