//! Keras 3 operations in a functional config: code written on Keras tensors (`x + shortcut`,
//! `keras.ops.mean(x, axis=1)`) is saved as nodes of `keras.src.ops` classes, not layers. Those a
//! layer of strata's computes are rewritten as that layer (`keras_ops_layers.rs`); any other
//! stays as it is and is reported as unsupported, by name.
//!
//! Keras 3 also records how it computed a mask passed to a layer as `mask=` (`not_equal(ids, 0)`
//! for `Embedding(mask_zero=True)`, `logical_or` where a merge combines masks, `any` of a
//! `concatenate` of them where a `Concatenate` layer does, `convert_to_tensor` where an attention
//! layer passes its query's mask on). strata carries
//! masks along with the tensors instead (Embedding, merges, Dense, LayerNormalization and
//! attention pass them on; pooling reads them), so operations used only to make masks are left
//! out ([`without_mask_operations`]). A `Masking` layer's mask is written as
//! `any(not_equal(x, mask_value), axis=-1)`; it is left out only where a `Masking` layer of that
//! value reads that same `x`, so strata's own mask is the one Keras computed.
//!
//! Operations are not layers to Keras: they hold no weights and are not counted when Keras
//! names the layers' weight groups (`keras_nested.rs`).

use serde_json::Value;
use std::collections::HashSet;

/// Operations Keras writes to compute masks (`ConvertToTensor` where an attention layer hands
/// its query's mask on; `ExpandDims`, `ZerosLike` and `OnesLike` where a `Concatenate` layer
/// joins its inputs' masks).
const MASK_OPERATIONS: [&str; 7] = [
    "NotEqual",
    "LogicalOr",
    "LogicalAnd",
    "ConvertToTensor",
    "ExpandDims",
    "ZerosLike",
    "OnesLike",
];

/// Whether an operation class is one Keras writes to compute masks.
pub(super) fn is_mask_operation(class: &str) -> bool {
    MASK_OPERATIONS.contains(&class)
}

/// Whether a config entry is an operation rather than a layer.
pub(super) fn is_operation(entry: &Value) -> bool {
    match entry.get("module").and_then(Value::as_str) {
        Some(module) => module.starts_with("keras.src.ops"),
        // Keras 3's legacy `.h5` files leave the module out; these classes no layer shares.
        None => entry
            .get("class_name")
            .and_then(Value::as_str)
            .is_some_and(|class| is_mask_operation(class) || class == "Any"),
    }
}

/// Removes from `body` (a functional config in Keras 3's layout, before its references are
/// rewritten) the mask operations whose results only ever reach other mask operations or a
/// call's `mask=` argument, which strata's own mask propagation replaces. One whose result a
/// call takes as a tensor argument stays, and is reported as unsupported.
pub(super) fn without_mask_operations(body: &mut Value) {
    let Some(entries) = body.get("layers").and_then(Value::as_array) else {
        return;
    };
    let name = |entry: &Value| entry.get("name").and_then(Value::as_str).map(str::to_string);
    let mut masks: HashSet<String> = entries
        .iter()
        .filter(|e| {
            is_operation(e)
                && e.get("class_name").and_then(Value::as_str).is_some_and(|c| match c {
                    "Any" => is_masking_mask(e, entries) || is_concatenated_mask(e, entries),
                    // The operation (not the layer) that joins masks in a Concatenate's.
                    "Concatenate" => true,
                    _ => MASK_OPERATIONS.contains(&c),
                })
        })
        .filter_map(name)
        .collect();
    // A mask operation read as a tensor (not as `mask=`) by anything that stays, or by the
    // model's outputs, stays too; repeated until nothing changes.
    loop {
        let mut read = HashSet::new();
        for entry in entries.iter().filter(|e| name(e).is_none_or(|n| !masks.contains(&n))) {
            for node in entry
                .get("inbound_nodes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                referenced(node.get("args").unwrap_or(node), &mut read);
                if let Some(kwargs) = node.get("kwargs").and_then(Value::as_object) {
                    kwargs
                        .iter()
                        .filter(|(k, _)| *k != "mask")
                        .for_each(|(_, v)| referenced(v, &mut read));
                }
            }
        }
        referenced(body.get("output_layers").unwrap_or(&Value::Null), &mut read);
        let kept: Vec<String> = masks.intersection(&read).cloned().collect();
        if kept.is_empty() {
            break;
        }
        kept.iter().for_each(|n| {
            masks.remove(n);
        });
    }
    if let Some(entries) = body.get_mut("layers").and_then(Value::as_array_mut) {
        entries.retain(|e| name(e).is_none_or(|n| !masks.contains(&n)));
    }
}

/// Whether `any` (an `Any` operation) is the mask of a `Masking` layer in `entries`, as Keras 3
/// writes it: `any(not_equal(x, v), axis=-1)` where `Masking(mask_value=v)` reads the same `x`.
fn is_masking_mask(any: &Value, entries: &[Value]) -> bool {
    let config = any.get("config").unwrap_or(&Value::Null);
    let last_axis = config.get("axis").and_then(Value::as_i64) == Some(-1);
    if !last_axis || config.get("keepdims").and_then(Value::as_bool).unwrap_or(false) {
        return false;
    }
    let by_name = |name: &str| {
        entries
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    };
    let Some([compared]) = only_call_args(any) else {
        return false;
    };
    let Some(not_equal) = history(compared).and_then(|h| by_name(h.first()?.as_str()?)) else {
        return false;
    };
    if !is_operation(not_equal) || not_equal.get("class_name").and_then(Value::as_str) != Some("NotEqual") {
        return false;
    }
    let Some((x, value)) = (match only_call_args(not_equal) {
        Some([a, b]) if history(a).is_some() => b.as_f64().map(|v| (history(a), v)),
        Some([a, b]) if history(b).is_some() => a.as_f64().map(|v| (history(b), v)),
        _ => None,
    }) else {
        return false;
    };
    entries.iter().any(|masking| {
        masking.get("class_name").and_then(Value::as_str) == Some("Masking")
            && masking
                .get("config")
                .and_then(|c| c.get("mask_value"))
                .and_then(Value::as_f64)
                == Some(value)
            && only_call_args(masking).is_some_and(|args| matches!(args, [input] if history(input) == x))
    })
}

/// Whether `any` (an `Any` operation) is a `Concatenate` layer's mask as Keras 3 writes it:
/// `any(concatenate(masks, axis), axis=-1)` of its inputs' masks (ones for an unmasked one),
/// which strata's `Concatenate` computes itself.
fn is_concatenated_mask(any: &Value, entries: &[Value]) -> bool {
    let config = any.get("config").unwrap_or(&Value::Null);
    let last_axis = config.get("axis").and_then(Value::as_i64) == Some(-1);
    if !last_axis || config.get("keepdims").and_then(Value::as_bool).unwrap_or(false) {
        return false;
    }
    let Some([joined]) = only_call_args(any) else {
        return false;
    };
    let made_by = history(joined).and_then(|h| h.first()?.as_str()).and_then(|name| {
        entries
            .iter()
            .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
    });
    made_by.is_some_and(|e| is_operation(e) && e.get("class_name").and_then(Value::as_str) == Some("Concatenate"))
}

/// The positional arguments of an entry called once, without keyword arguments.
pub(super) fn only_call_args(entry: &Value) -> Option<&[Value]> {
    let [node] = entry.get("inbound_nodes")?.as_array()?.as_slice() else {
        return None;
    };
    let no_kwargs = node
        .get("kwargs")
        .and_then(Value::as_object)
        .is_none_or(|k| k.is_empty());
    no_kwargs.then(|| node.get("args")?.as_array().map(Vec::as_slice))?
}

/// The `keras_history` (`[layer, node, tensor]`) of a Keras 3 tensor argument.
pub(super) fn history(value: &Value) -> Option<&Vec<Value>> {
    value.get("config")?.get("keras_history")?.as_array()
}

/// The layer names a call's arguments read: `keras_history` of Keras 3's tensors, and the
/// first item of `[name, node, tensor]` lists (output references).
fn referenced(value: &Value, into: &mut HashSet<String>) {
    match value {
        Value::Object(object) => match object.get("config").and_then(|c| c.get("keras_history")) {
            Some(history) => {
                if let Some(name) = history.get(0).and_then(Value::as_str) {
                    into.insert(name.to_string());
                }
            }
            None => object.values().for_each(|v| referenced(v, into)),
        },
        Value::Array(items) => {
            if let Some(name) = items.first().and_then(Value::as_str) {
                into.insert(name.to_string());
            }
            items.iter().for_each(|item| referenced(item, into));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    /// A functional config as Keras 3.15 writes `Masking(0.0)` before an `LSTM`: the mask as
    /// `not_equal` and `any` operations handed to the LSTM's call as `mask=`. `compared` and
    /// `masked` are the value `not_equal` compares with and the layer `Masking` reads.
    fn masking_config(compared: f64, masked: &str) -> Value {
        let tensor =
            |layer: &str| json!({"class_name": "__keras_tensor__", "config": {"keras_history": [layer, 0, 0]}});
        let op = |class: &str, name: &str, args: Value, config: Value| {
            json!({"module": "keras.src.ops.numpy", "class_name": class, "name": name, "config": config,
                   "inbound_nodes": [{"args": args, "kwargs": {}}]})
        };
        json!({"layers": [
            {"class_name": "InputLayer", "name": "input_layer", "config": {}, "inbound_nodes": []},
            {"class_name": "InputLayer", "name": "other", "config": {}, "inbound_nodes": []},
            op("NotEqual", "not_equal", json!([tensor("input_layer"), compared]), json!({"name": "not_equal"})),
            {"class_name": "Masking", "name": "masking", "config": {"mask_value": 0.0},
             "inbound_nodes": [{"args": [tensor(masked)], "kwargs": {}}]},
            op("Any", "any", json!([tensor("not_equal")]), json!({"name": "any", "axis": -1, "keepdims": false})),
            {"class_name": "LSTM", "name": "lstm", "config": {},
             "inbound_nodes": [{"args": [tensor("masking")], "kwargs": {"mask": tensor("any")}}]},
        ]})
    }

    fn names(body: &Value) -> Vec<&str> {
        body["layers"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["name"].as_str().unwrap())
            .collect()
    }

    #[test]
    fn a_masking_layers_mask_is_left_to_strata() {
        let mut body = masking_config(0.0, "input_layer");
        without_mask_operations(&mut body);
        assert_eq!(names(&body), ["input_layer", "other", "masking", "lstm"]);
    }

    /// A mask that is not the one a `Masking` layer gives (another value, or another tensor)
    /// stays, so the call is refused rather than given strata's mask.
    #[test]
    fn another_mask_stays() {
        for (compared, masked) in [(1.0, "input_layer"), (0.0, "other")] {
            let mut body = masking_config(compared, masked);
            without_mask_operations(&mut body);
            assert!(
                names(&body).contains(&"any"),
                "{compared} on {masked}: {:?}",
                names(&body)
            );
        }
    }
}
