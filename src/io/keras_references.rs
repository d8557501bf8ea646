//! Keras 3's functional layout in Keras 2's, which strata's model files read: each call's
//! `{"args": [...], "kwargs": {...}}` becomes the list of the `keras_history` references
//! `[layer, node, tensor]` of the layer's inputs, and what the call passes besides tensors
//! (`use_causal_mask=True`) becomes the layer's setting (`keras_calls.rs`). tf.keras 2's calls,
//! already lists of references, have their keyword arguments bound the same way.

use super::keras_calls::{self, Bound, Callee};
use super::keras_ops;
use serde_json::{Value, json};
use std::collections::HashMap;

/// Rewrites a functional config (Keras 3's layout or tf.keras 2's) in the layout strata's model
/// files read: each `inbound_nodes` entry becomes the list of the references `[layer, node,
/// tensor]` of the call's inputs in strata's order, its other arguments become settings in
/// the layer's config, and `input_layers` / `output_layers` of a single tensor become lists of
/// one, of a dict the list of its values by key (the output keys kept under [`OUTPUT_KEYS`]). Returns warnings about arguments that change only Keras's training; an argument strata
/// cannot map is an error naming every such argument of the model.
/// Where [`to_inbound_references`] leaves the keys of outputs Keras was given as a dict, in
/// the outputs' order.
pub(super) const OUTPUT_KEYS: &str = "strata_output_keys";

pub(super) fn to_inbound_references(body: &mut Value) -> Result<Vec<String>, String> {
    for key in ["input_layers", "output_layers"] {
        let Some(refs) = body.get_mut(key) else { continue };
        if refs.get(0).is_some_and(Value::is_string) {
            *refs = json!([refs.take()]);
        } else if let Some(named) = refs.as_object() {
            // Keras 3's inputs or outputs given as a dict: Keras orders them by key
            // (`keras.tree.flatten`), in `model.inputs`, `model.outputs` and `predict`'s lists.
            let mut keys: Vec<String> = named.keys().cloned().collect();
            keys.sort();
            *refs = Value::Array(keys.iter().map(|key| named[key].clone()).collect());
            if key == "output_layers" {
                // What `compile`'s dicts of losses and metrics name the outputs by.
                body[OUTPUT_KEYS] = json!(keys);
            }
        }
    }
    let Some(entries) = body.get_mut("layers").and_then(Value::as_array_mut) else {
        return Ok(Vec::new());
    };
    let classes: HashMap<String, String> = entries
        .iter()
        .map(|e| {
            (
                name_of(e),
                e.get("class_name").and_then(Value::as_str).unwrap_or("").to_string(),
            )
        })
        .collect();
    // A mask read by `mask=` that strata carries itself: a mask operation, or one removed as
    // such (`keras_ops::without_mask_operations`), which is no entry here.
    let is_mask = |name: &str| {
        classes
            .get(name)
            .is_none_or(|class| keras_ops::is_mask_operation(class))
    };
    let (mut warnings, mut problems) = (Vec::new(), Vec::new());
    for entry in entries.iter_mut() {
        match rewrite_calls(entry, &is_mask) {
            Ok(mut notes) => warnings.append(&mut notes),
            Err(mut refused) => problems.append(&mut refused),
        }
    }
    match problems.len() {
        0 => Ok(warnings),
        1 => Err(problems[0].clone()),
        n => Err(format!("{n} layer calls cannot be imported: {}", problems.join("; "))),
    }
}

/// An entry's name, beside its config or in it.
fn name_of(entry: &Value) -> String {
    entry
        .get("name")
        .or_else(|| entry.get("config").and_then(|c| c.get("name")))
        .and_then(Value::as_str)
        .unwrap_or("(unnamed)")
        .to_string()
}

/// Rewrites the inbound nodes of one entry and puts the settings its calls imply into its
/// config: the warnings, or every argument refused.
fn rewrite_calls(entry: &mut Value, is_mask: &dyn Fn(&str) -> bool) -> Result<Vec<String>, Vec<String>> {
    let name = name_of(entry);
    let class = entry
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_string();
    let Some(nodes) = entry.get("inbound_nodes").and_then(Value::as_array).cloned() else {
        return Ok(Vec::new());
    };
    if super::keras_tf_ops::is_operation(entry) {
        return Ok(Vec::new()); // tf.keras 2's operations: keras_tf_ops.rs reads their calls
    }
    if keras_ops::is_operation(entry) {
        // Keras 3's operations take numbers too; those not run as layers are refused by name.
        let calls = nodes.iter().map(operation_inputs).collect::<Result<Vec<_>, _>>();
        entry["inbound_nodes"] = Value::Array(calls.map_err(|e| vec![format!("{e} (operation '{name}')")])?);
        return Ok(Vec::new());
    }
    let config = entry.get("config").cloned().unwrap_or(Value::Null);
    let callee = Callee {
        name: &name,
        class: &class,
        config: &config,
        is_mask,
    };
    let mut problems = Vec::new();
    let mut calls: Vec<Bound> = Vec::new();
    for node in &nodes {
        match keras_calls::bind(&callee, node) {
            Ok(bound) if bound.inputs.is_empty() => {
                problems.push(format!("layer '{name}' ({class}) is called on no input tensor"));
            }
            Ok(bound) => calls.push(bound),
            Err(mut refused) => problems.append(&mut refused),
        }
    }
    if let Some(first) = calls.first()
        && calls.iter().any(|c| c.settings != first.settings)
    {
        let each: Vec<String> = calls.iter().map(|c| settings_text(&c.settings)).collect();
        problems.push(format!(
            "layer '{name}' ({class}) is called with different settings in its calls ({}), which strata keeps \
             once per layer",
            each.join(" / ")
        ));
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    let mut warnings = Vec::new();
    if let Some(first) = calls.first()
        && let Some(config) = entry.get_mut("config").and_then(Value::as_object_mut)
    {
        for (key, value) in &first.settings {
            config.insert(key.to_string(), value.clone());
        }
    }
    let rewritten = calls.into_iter().map(|mut call| {
        warnings.append(&mut call.warnings);
        Value::Array(call.inputs)
    });
    entry["inbound_nodes"] = Value::Array(rewritten.collect());
    Ok(warnings)
}

/// `use_causal_mask=true, ...` for an error message.
fn settings_text(settings: &[(&str, Value)]) -> String {
    let parts: Vec<String> = settings.iter().map(|(k, v)| format!("{k}={v}")).collect();
    parts.join(", ")
}

/// A Keras 3 operation's call: the references of the tensors in its positional arguments.
fn operation_inputs(node: &Value) -> Result<Value, String> {
    if node.is_array() {
        return Ok(node.clone()); // already Keras 2's layout
    }
    let mut refs = Vec::new();
    collect_history(node.get("args").unwrap_or(&Value::Null), &mut refs);
    match refs.is_empty() {
        true => Err("an inbound node names no input tensor".into()),
        false => Ok(Value::Array(refs)),
    }
}

/// The `keras_history` references of the tensors in a call's arguments, in order.
fn collect_history(value: &Value, into: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect_history(item, into)),
        Value::Object(object) if object.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
            if let Some(history) = object.get("config").and_then(|c| c.get("keras_history")) {
                into.push(history.clone());
            }
        }
        _ => {}
    }
}
