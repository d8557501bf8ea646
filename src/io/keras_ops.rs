//! Keras 3 operations in a functional config. Arithmetic written in a model's code, such as
//! MobileNetV3's `hard_sigmoid` (`ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`), is saved as nodes of
//! `keras.src.ops` classes (`Add`, `Multiply`), not layers: their arguments are a tensor and a
//! plain number. Such a node is a `Rescaling` (`x·scale + offset`), which strata runs; any
//! other operation stays as it is and is reported as unsupported, by name.
//!
//! Operations are not layers to Keras: they hold no weights and are not counted when Keras
//! names the layers' weight groups (`keras_nested.rs`).

use serde_json::{Value, json};

/// Whether a config entry is an operation rather than a layer.
pub(super) fn is_operation(entry: &Value) -> bool {
    entry
        .get("module")
        .and_then(Value::as_str)
        .is_some_and(|m| m.starts_with("keras.src.ops"))
}

/// Rewrites each operation of a tensor and a number in `body` (a functional config in Keras
/// 3's layout) as the `Rescaling` it computes.
pub(super) fn as_layers(body: &mut Value) {
    let Some(entries) = body.get_mut("layers").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in entries.iter_mut().filter(|e| is_operation(e)) {
        if let Some((scale, offset)) = rescaling(entry) {
            let name = entry
                .get("config")
                .and_then(|c| c.get("name"))
                .cloned()
                .unwrap_or(Value::Null);
            entry["class_name"] = json!("Rescaling");
            entry["config"] = json!({"name": name, "scale": scale, "offset": offset});
        }
    }
}

/// The `(scale, offset)` of an operation on one tensor and one number, if it is one.
fn rescaling(entry: &Value) -> Option<(f64, f64)> {
    let [node] = entry.get("inbound_nodes")?.as_array()?.as_slice() else {
        return None;
    };
    if node
        .get("kwargs")
        .and_then(Value::as_object)
        .is_some_and(|k| !k.is_empty())
    {
        return None;
    }
    let is_tensor = |v: &Value| v.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__");
    let (tensor_first, number) = match node.get("args")?.as_array()?.as_slice() {
        [a, b] if is_tensor(a) => (true, b.as_f64()?),
        [a, b] if is_tensor(b) => (false, a.as_f64()?),
        _ => return None,
    };
    match (entry.get("class_name")?.as_str()?, tensor_first) {
        ("Add", _) => Some((1.0, number)),
        ("Multiply", _) => Some((number, 0.0)),
        ("Subtract", true) => Some((1.0, -number)),
        ("Subtract", false) => Some((-1.0, number)),
        ("Divide" | "TrueDivide", true) if number != 0.0 => Some((1.0 / number, 0.0)),
        _ => None,
    }
}
