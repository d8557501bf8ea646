//! tf.keras 2's operation layers in a functional config. Arithmetic written in a model's code
//! with TensorFlow functions or operators on Keras tensors, such as MobileNetV3's `hard_sigmoid`
//! (`ReLU(6.0)(x + 3.0) * (1.0 / 6.0)`) or EfficientNet's `tf.math.multiply(x, stddev)` of the
//! `weights="imagenet"` models, is saved by tf.keras 2 (`model.save("m.h5")`, and the `.keras`
//! archives of Keras 2.13+) as `TFOpLambda` layers: `{"function": "__operators__.add"}` in the
//! config, and in the call (`inbound_nodes`) the first argument as a reference, the others as
//! keyword arguments, where a number stays a number, a constant tensor becomes a nested list
//! and another tensor becomes a reference `[layer, node, tensor]`:
//!
//! ```text
//! [["re_lu", 0, 0, {"y": 3.0, "name": null}]]                 x + 3.0
//! [["_CONSTANT_VALUE", -1, 2.0, {"y": ["conv", 0, 0], ...}]]  2.0 - x (the constant first)
//! ```
//!
//! strata runs the ones it computes the same as the layers it has: a tensor and a number (or
//! one number per channel) as a `Rescaling` (`x·scale + offset`), two tensors as `Add`,
//! `Subtract` or `Multiply` (Keras's broadcasting), an activation function as `Activation`.
//! Any other operation is left as it is and reported by name (`keras_layer.rs`). The Keras 3
//! counterpart, operations of `keras.src.ops`, is `keras_ops.rs`.

use serde_json::{Map, Value, json};

/// The classes tf.keras 2 saves TensorFlow operations as (`SlicingOpLambda` is `x[...]`).
pub(super) const OPERATION_CLASSES: [&str; 2] = ["TFOpLambda", "SlicingOpLambda"];

/// What tf.keras 2 writes in place of a reference when a call's first argument is a constant.
const CONSTANT: &str = "_CONSTANT_VALUE";

/// TensorFlow's activation functions (by their symbol's last part) that are Keras activations
/// of the same meaning, taking only the tensor (and a `name`).
const ACTIVATIONS: &[(&str, &str)] = &[
    ("relu", "relu"),
    ("relu6", "relu6"),
    ("sigmoid", "sigmoid"),
    ("tanh", "tanh"),
    ("silu", "silu"),
    ("swish", "silu"),
    ("softplus", "softplus"),
    ("softsign", "softsign"),
    ("elu", "elu"),
    ("selu", "selu"),
    ("exp", "exponential"),
];

/// Whether a config entry is one of tf.keras 2's operation layers.
pub(super) fn is_operation(entry: &Value) -> bool {
    entry
        .get("class_name")
        .and_then(Value::as_str)
        .is_some_and(|c| OPERATION_CLASSES.contains(&c))
}

/// The TensorFlow function an operation layer calls, as tf.keras 2 names it
/// (`__operators__.add`, `math.multiply`).
pub(super) fn function(entry: &Value) -> &str {
    entry
        .get("config")
        .and_then(|c| c.get("function"))
        .and_then(Value::as_str)
        .unwrap_or("(unknown function)")
}

/// Rewrites each operation layer of `body` (a functional config in Keras 2's layout) that
/// strata computes as the layer it is; the others stay, for the import to report them.
pub(super) fn as_layers(body: &mut Value) {
    let Some(entries) = body.get_mut("layers").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in entries.iter_mut().filter(|e| is_operation(e)) {
        if let Some((class, config, reads)) = as_layer(entry) {
            let name = entry
                .get("config")
                .and_then(|c| c.get("name"))
                .or_else(|| entry.get("name"))
                .cloned()
                .unwrap_or(Value::Null);
            let mut config = config;
            config["name"] = name;
            entry["class_name"] = json!(class);
            entry["config"] = config;
            entry["inbound_nodes"] = json!([reads]);
            if let Some(fields) = entry.as_object_mut() {
                // A `.keras` archive of Keras 2.13+ names the class's module; it is no longer
                // that class.
                fields.remove("module");
                fields.remove("registered_name");
            }
        }
    }
}

/// One argument of a call: a reference to a layer's output, or a constant.
enum Argument {
    Tensor(Value),
    Constant(Constant),
}

/// A constant operand: one number, or one per channel (a tensor of shape `(1, ..., 1, C)`).
#[derive(Clone)]
enum Constant {
    All(f64),
    PerChannel(Vec<f64>),
}

impl Constant {
    /// Reads a number, or a nested list whose dimensions are all 1 but the last.
    fn read(value: &Value) -> Option<Constant> {
        if let Some(number) = value.as_f64() {
            return Some(Constant::All(number));
        }
        let mut items = value.as_array()?;
        while let [only] = items.as_slice()
            && let Some(inner) = only.as_array()
        {
            items = inner;
        }
        let values: Option<Vec<f64>> = items.iter().map(Value::as_f64).collect();
        match values?.as_slice() {
            [] => None,
            [one] => Some(Constant::All(*one)),
            many => Some(Constant::PerChannel(many.to_vec())),
        }
    }

    fn map(&self, f: impl Fn(f64) -> f64) -> Constant {
        match self {
            Constant::All(v) => Constant::All(f(*v)),
            Constant::PerChannel(values) => Constant::PerChannel(values.iter().map(|&v| f(v)).collect()),
        }
    }

    fn any_zero(&self) -> bool {
        match self {
            Constant::All(v) => *v == 0.0,
            Constant::PerChannel(values) => values.contains(&0.0),
        }
    }

    fn json(&self) -> Value {
        match self {
            Constant::All(v) => json!(v),
            Constant::PerChannel(values) => json!(values),
        }
    }
}

/// The layer an operation layer is (class, config without its name, and the references its
/// one call reads), when strata has it.
fn as_layer(entry: &Value) -> Option<(&'static str, Value, Vec<Value>)> {
    let [node] = entry.get("inbound_nodes")?.as_array()?.as_slice() else {
        return None;
    };
    // tf.keras 2 keeps an operation's call as the first argument's reference itself (its
    // layers' `_preserve_input_structure_in_config`), not in a list of references.
    let node = node.as_array()?;
    let first = match node.as_slice() {
        [only] if only.is_array() => only.as_array()?,
        _ => node,
    };
    let mut kwargs = first.get(3).and_then(Value::as_object).cloned().unwrap_or_default();
    kwargs.remove("name");
    let x = match first.first()?.as_str()? {
        CONSTANT => Argument::Constant(Constant::read(first.get(2)?)?),
        _ => Argument::Tensor(reference(first)?),
    };
    let op = function(entry).rsplit('.').next().unwrap_or_default();
    if let Some((_, activation)) = ACTIVATIONS.iter().find(|(f, _)| *f == op) {
        // `tf.nn.silu(x, beta=1.0)` is Keras's silu; other keyword arguments change it.
        let beta_one = kwargs.remove("beta").is_none_or(|b| b.as_f64() == Some(1.0));
        let Argument::Tensor(x) = x else { return None };
        return (kwargs.is_empty() && beta_one).then(|| ("Activation", json!({"activation": activation}), vec![x]));
    }
    let y = argument(kwargs.remove("y")?)?;
    if !kwargs.is_empty() {
        return None;
    }
    binary(op, x, y)
}

/// An elementwise operation of two arguments as a layer: `Rescaling` for a tensor and a
/// constant, a merging layer for two tensors.
fn binary(op: &str, x: Argument, y: Argument) -> Option<(&'static str, Value, Vec<Value>)> {
    let rescaling = |scale: Constant, offset: Constant, tensor: Value| {
        Some((
            "Rescaling",
            json!({"scale": scale.json(), "offset": offset.json()}),
            vec![tensor],
        ))
    };
    let (one, zero) = (Constant::All(1.0), Constant::All(0.0));
    match (op, x, y) {
        ("add" | "add_v2", Argument::Tensor(x), Argument::Constant(c))
        | ("add" | "add_v2", Argument::Constant(c), Argument::Tensor(x)) => rescaling(one, c, x),
        ("multiply" | "mul", Argument::Tensor(x), Argument::Constant(c))
        | ("multiply" | "mul", Argument::Constant(c), Argument::Tensor(x)) => rescaling(c, zero, x),
        ("subtract" | "sub", Argument::Tensor(x), Argument::Constant(c)) => rescaling(one, c.map(|v| -v), x),
        ("subtract" | "sub", Argument::Constant(c), Argument::Tensor(x)) => rescaling(Constant::All(-1.0), c, x),
        ("truediv" | "divide" | "div", Argument::Tensor(x), Argument::Constant(c)) if !c.any_zero() => {
            rescaling(c.map(|v| 1.0 / v), zero, x)
        }
        (op, Argument::Tensor(x), Argument::Tensor(y)) => {
            let class = match op {
                "add" | "add_v2" => "Add",
                "subtract" | "sub" => "Subtract",
                "multiply" | "mul" => "Multiply",
                _ => return None,
            };
            Some((class, Value::Object(Map::new()), vec![x, y]))
        }
        _ => None,
    }
}

/// A keyword argument: a reference `[layer, node, tensor]` or a constant.
fn argument(value: Value) -> Option<Argument> {
    match value.as_array() {
        Some(items) if items.first().is_some_and(Value::is_string) => reference(items).map(Argument::Tensor),
        _ => Constant::read(&value).map(Argument::Constant),
    }
}

/// `[layer, node, tensor, {}]` from tf.keras 2's `[layer, node, tensor(, kwargs)]`.
fn reference(items: &[Value]) -> Option<Value> {
    let name = items.first()?.as_str()?;
    let node = items.get(1)?.as_u64()?;
    let tensor = items.get(2)?.as_u64()?;
    Some(json!([name, node, tensor, {}]))
}

#[cfg(test)]
mod tests {
    use super::as_layers;
    use serde_json::{Value, json};

    fn rewritten(function: &str, node: Value) -> Value {
        let mut body = json!({"layers": [{
            "class_name": "TFOpLambda",
            "name": "tf.op",
            "config": {"name": "tf.op", "trainable": true, "dtype": "float32", "function": function},
            "inbound_nodes": [node],
        }]});
        as_layers(&mut body);
        body["layers"][0].clone()
    }

    #[test]
    fn a_tensor_and_a_number_is_a_rescaling() {
        // As tf.keras 2 writes it, and wrapped in a list as other layers' calls are.
        let entry = rewritten("__operators__.add", json!(["re_lu", 0, 0, {"y": 3.0, "name": null}]));
        assert_eq!(
            entry,
            rewritten("__operators__.add", json!([["re_lu", 0, 0, {"y": 3.0}]]))
        );
        assert_eq!(entry["class_name"], "Rescaling");
        assert_eq!(entry["config"], json!({"name": "tf.op", "scale": 1.0, "offset": 3.0}));
        assert_eq!(entry["inbound_nodes"], json!([[["re_lu", 0, 0, {}]]]));
        let entry = rewritten("math.subtract", json!(["_CONSTANT_VALUE", -1, 2.0, {"y": ["x", 0, 0]}]));
        assert_eq!(entry["config"], json!({"name": "tf.op", "scale": -1.0, "offset": 2.0}));
        assert_eq!(entry["inbound_nodes"], json!([[["x", 0, 0, {}]]]));
        let entry = rewritten("math.truediv", json!([["x", 0, 0, {"y": 4.0, "name": null}]]));
        assert_eq!(entry["config"]["scale"], 0.25);
    }

    #[test]
    fn a_constant_of_one_value_per_channel_is_a_per_channel_rescaling() {
        let y = json!([[[[0.5, 2.0, 4.0]]]]);
        let entry = rewritten("math.multiply", json!([["x", 0, 0, {"y": y, "name": null}]]));
        assert_eq!(entry["config"]["scale"], json!([0.5, 2.0, 4.0]));
        // Not one value per channel: left for the import to report.
        let entry = rewritten("math.multiply", json!([["x", 0, 0, {"y": [[1.0, 2.0], [3.0, 4.0]]}]]));
        assert_eq!(entry["class_name"], "TFOpLambda");
    }

    #[test]
    fn two_tensors_merge_and_activations_are_activation_layers() {
        let entry = rewritten("math.multiply", json!([["a", 0, 0, {"y": ["b", 0, 1], "name": null}]]));
        assert_eq!(entry["class_name"], "Multiply");
        assert_eq!(entry["inbound_nodes"], json!([[["a", 0, 0, {}], ["b", 0, 1, {}]]]));
        let entry = rewritten("nn.relu6", json!([["a", 0, 0, {"name": null}]]));
        assert_eq!(entry["config"], json!({"name": "tf.op", "activation": "relu6"}));
        for (function, node) in [
            ("math.reduce_mean", json!([["a", 0, 0, {"axis": 1}]])),
            (
                "math.truediv",
                json!([["_CONSTANT_VALUE", -1, 1.0, {"y": ["a", 0, 0]}]]),
            ),
            ("math.truediv", json!([["a", 0, 0, {"y": 0.0}]])),
            ("nn.silu", json!([["a", 0, 0, {"beta": 2.0}]])),
        ] {
            assert_eq!(rewritten(function, node)["class_name"], "TFOpLambda", "{function}");
        }
    }
}
