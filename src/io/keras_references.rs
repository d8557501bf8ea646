//! Keras 3's functional layout in Keras 2's, which strata's model files read: each call's
//! `{"args": [tensors], "kwargs": {}}` becomes the list of the `keras_history` references
//! `[layer, node, tensor]` of the tensors in its arguments.

use serde_json::{Value, json};

/// Rewrites a Keras 3 functional config in the layout strata's model files read (Keras 2's):
/// each `inbound_nodes` entry `{"args": [tensor or [tensors]], "kwargs": {}}` becomes the list
/// of the `keras_history` references `[layer, node, tensor]` found in its arguments, and
/// `input_layers` / `output_layers` of a single tensor become lists of one.
pub(super) fn to_inbound_references(body: &mut Value) -> Result<(), String> {
    for key in ["input_layers", "output_layers"] {
        if let Some(refs) = body.get_mut(key)
            && refs.get(0).is_some_and(Value::is_string)
        {
            *refs = json!([refs.take()]);
        }
    }
    let Some(entries) = body.get_mut("layers").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for entry in entries {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_string();
        let Some(nodes) = entry.get_mut("inbound_nodes").and_then(Value::as_array_mut) else {
            continue;
        };
        for node in nodes.iter_mut() {
            if node.is_array() {
                continue; // already Keras 2's layout
            }
            let mut refs = Vec::new();
            collect_history(node.get("args").unwrap_or(&Value::Null), &mut refs);
            if refs.is_empty() {
                return Err(format!(
                    "config.json: an inbound node of layer '{name}' names no input tensor"
                ));
            }
            *node = Value::Array(refs);
        }
    }
    Ok(())
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
