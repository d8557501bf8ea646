//! Keras 3 operations that strata runs as the layer computing the same values. Code written on
//! Keras tensors in a functional model (`x + shortcut`, `keras.ops.relu(x)`,
//! `keras.ops.mean(x, axis=1)`, `keras.ops.concatenate([a, b])`) is saved as nodes of
//! `keras.src.ops` classes, not layers. Each call records its arguments with their shapes, so
//! an operation strata has a layer for is rewritten as that layer:
//!
//! - a tensor and a number (`x + 3.0`, `x / 6.0`, `-x`): `Rescaling` (`x·scale + offset`);
//! - two tensors added, subtracted, multiplied, or their maximum or minimum: the merging layer of
//!   that name, with its broadcasting;
//! - activation functions (`relu`, `sigmoid`, `gelu`, `leaky_relu`, `softmax` over the last
//!   axis, ...): `Activation`, `LeakyReLU`, `ELU` or `Softmax`;
//! - `mean` or `max` over the steps of a sequence or the positions of an image:
//!   `GlobalAveragePooling1D/2D` or `GlobalMaxPooling1D/2D`, with `keepdims` (but the mean over
//!   steps);
//! - `concatenate`: `Concatenate`; `reshape` keeping the batch, `squeeze` and `expand_dims` of
//!   other axes: `Reshape`; `transpose` keeping the batch first: `Permute`.
//!
//! Any other operation stays as it is and is reported by name (`keras_layer.rs`). Operations are
//! not layers to Keras: a rewritten entry keeps its module, so it is still not counted when Keras
//! names the layers' weight groups. Keras's operations also drop a sequence mask, where these
//! layers pass it on (or, pooling, read it): each rewritten entry is marked
//! ([`FROM_OPERATION`]) so that the import can refuse one that reads a masked tensor
//! (`keras::assemble`) rather than compute something else.

use super::keras_ops::{history, is_operation, only_call_args};
use serde_json::{Value, json};

/// The key of an entry rewritten from an operation, holding the operation's class.
pub(super) const FROM_OPERATION: &str = "strata_from_operation";

/// Activation functions of `keras.ops` (by class) that are Keras activations of the same
/// meaning, taking only the tensor.
const ACTIVATIONS: &[(&str, &str)] = &[
    ("Relu", "relu"),
    ("Relu6", "relu6"),
    ("Sigmoid", "sigmoid"),
    ("Tanh", "tanh"),
    ("Silu", "silu"),
    ("Softplus", "softplus"),
    ("Softsign", "softsign"),
    ("Selu", "selu"),
    ("HardSigmoid", "hard_sigmoid"),
    ("HardSilu", "hard_silu"),
    ("Exp", "exponential"),
];

/// Operations of two tensors and the merging layer that computes each.
const MERGES: &[(&str, &str)] = &[
    ("Add", "Add"),
    ("Subtract", "Subtract"),
    ("Multiply", "Multiply"),
    ("Maximum", "Maximum"),
    ("Minimum", "Minimum"),
];

/// Rewrites each operation of `body` (a functional config in Keras 3's layout) that a layer
/// computes as that layer, marked with [`FROM_OPERATION`].
pub(super) fn as_layers(body: &mut Value) {
    let Some(entries) = body.get_mut("layers").and_then(Value::as_array_mut) else {
        return;
    };
    for entry in entries.iter_mut().filter(|e| is_operation(e)) {
        let Some((class, mut config)) = as_layer(entry) else {
            continue;
        };
        config["name"] = entry
            .get("config")
            .and_then(|c| c.get("name"))
            .cloned()
            .unwrap_or(Value::Null);
        entry[FROM_OPERATION] = entry.get("class_name").cloned().unwrap_or(Value::Null);
        entry["class_name"] = json!(class);
        entry["config"] = config;
    }
}

/// Whether an operation's entry was rewritten as a layer by [`as_layers`].
pub(super) fn runs_as_layer(entry: &Value) -> bool {
    entry.get(FROM_OPERATION).is_some()
}

/// The layer (class and config without its name) that computes an operation, if strata has one.
fn as_layer(entry: &Value) -> Option<(&'static str, Value)> {
    let class = entry.get("class_name")?.as_str()?;
    let config = entry.get("config").unwrap_or(&Value::Null);
    let args = only_call_args(entry)?;
    if let Some((scale, offset)) = rescaling(class, args) {
        return Some(("Rescaling", json!({"scale": scale, "offset": offset})));
    }
    match args {
        [a, b] if history(a).is_some() && history(b).is_some() => {
            let (_, layer) = MERGES.iter().find(|(op, _)| *op == class)?;
            Some((layer, json!({})))
        }
        [Value::Array(tensors)] if class == "Concatenate" && tensors.len() >= 2 => {
            tensors.iter().all(|t| history(t).is_some()).then_some(())?;
            Some(("Concatenate", json!({"axis": config.get("axis")?.as_i64()?})))
        }
        [x] if history(x).is_some() => one_tensor(class, config, &shape(x)?),
        _ => None,
    }
}

/// The `(scale, offset)` of an operation on one tensor and one number (or of `Negative`).
fn rescaling(class: &str, args: &[Value]) -> Option<(f64, f64)> {
    let is_tensor = |v: &Value| history(v).is_some();
    if let ("Negative", [x]) = (class, args)
        && is_tensor(x)
    {
        return Some((-1.0, 0.0));
    }
    let (tensor_first, number) = match args {
        [a, b] if is_tensor(a) => (true, b.as_f64()?),
        [a, b] if is_tensor(b) => (false, a.as_f64()?),
        _ => return None,
    };
    match (class, tensor_first) {
        ("Add", _) => Some((1.0, number)),
        ("Multiply", _) => Some((number, 0.0)),
        ("Subtract", true) => Some((1.0, -number)),
        ("Subtract", false) => Some((-1.0, number)),
        ("Divide" | "TrueDivide", true) if number != 0.0 => Some((1.0 / number, 0.0)),
        _ => None,
    }
}

/// The layer computing an operation of one tensor of shape `shape` (batch first, `None` where
/// Keras leaves a size open).
fn one_tensor(class: &str, config: &Value, shape: &[Option<usize>]) -> Option<(&'static str, Value)> {
    if let Some((_, activation)) = ACTIVATIONS.iter().find(|(op, _)| *op == class) {
        return Some(("Activation", json!({"activation": activation})));
    }
    let rank = shape.len();
    let last_axis = || axes(config.get("axis")?, rank).filter(|a| a == &[rank - 1]);
    match class {
        "Gelu" => {
            let approximate = config.get("approximate").and_then(Value::as_bool).unwrap_or(true);
            let activation = if approximate { "gelu_approximate" } else { "gelu" };
            Some(("Activation", json!({"activation": activation})))
        }
        "LeakyRelu" => Some((
            "LeakyReLU",
            json!({"negative_slope": config.get("negative_slope")?.as_f64()?}),
        )),
        "Elu" => Some(("ELU", json!({"alpha": config.get("alpha")?.as_f64()?}))),
        "Softmax" => last_axis().map(|_| ("Softmax", json!({"axis": -1}))),
        "LogSoftmax" => last_axis().map(|_| ("Activation", json!({"activation": "log_softmax"}))),
        "Mean" | "Max" => global_pooling(class, config, rank),
        "Reshape" => reshape(config.get("newshape").or_else(|| config.get("new_shape"))?, shape),
        "Squeeze" => squeeze(config.get("axis")?, shape),
        "ExpandDims" => expand_dims(config.get("axis")?, shape),
        "Transpose" => {
            let order = axes_in_order(config.get("axes")?, rank)?;
            let (first, dims) = order.split_first()?;
            (*first == 0).then(|| ("Permute", json!({ "dims": dims })))
        }
        _ => None,
    }
}

/// `mean` or `max` over a sequence's steps or an image's positions as global pooling.
fn global_pooling(class: &str, config: &Value, rank: usize) -> Option<(&'static str, Value)> {
    if config.get("initial").is_some_and(|v| !v.is_null()) {
        return None;
    }
    let over = axes(config.get("axis")?, rank)?;
    let layer = match (class, rank, over.as_slice()) {
        ("Mean", 3, [1]) => "GlobalAveragePooling1D",
        ("Mean", 4, [1, 2]) => "GlobalAveragePooling2D",
        ("Max", 3, [1]) => "GlobalMaxPooling1D",
        ("Max", 4, [1, 2]) => "GlobalMaxPooling2D",
        _ => return None,
    };
    let keepdims = config.get("keepdims").and_then(Value::as_bool).unwrap_or(false);
    if keepdims && layer == "GlobalAveragePooling1D" {
        return None; // strata's (a masked mean) has no `keepdims`
    }
    Some((layer, json!({"data_format": "channels_last", "keepdims": keepdims})))
}

/// `reshape(x, (-1, ...))` that keeps each sample's values as a sample: `Reshape`.
fn reshape(new_shape: &Value, shape: &[Option<usize>]) -> Option<(&'static str, Value)> {
    let sizes: Vec<i64> = new_shape.as_array()?.iter().map(Value::as_i64).collect::<Option<_>>()?;
    let (&batch, target) = sizes.split_first()?;
    if batch != -1 || target.iter().any(|&s| s == 0 || s < -1) {
        return None;
    }
    let per_sample = sample_size(shape)?;
    let known: usize = target
        .iter()
        .filter(|&&s| s > 0)
        .try_fold(1usize, |n, &s| n.checked_mul(usize::try_from(s).ok()?))?;
    let inferred = target.iter().filter(|&&s| s == -1).count();
    let fits = match inferred {
        0 => known == per_sample,
        1 => known > 0 && per_sample.is_multiple_of(known),
        _ => false,
    };
    fits.then(|| ("Reshape", json!({"target_shape": target})))
}

/// `squeeze` of size-1 axes other than the batch's: `Reshape` to the sizes left.
fn squeeze(axis: &Value, shape: &[Option<usize>]) -> Option<(&'static str, Value)> {
    let sizes = sample_sizes(shape)?;
    let dropped: Vec<usize> = match axis {
        Value::Null => (1..shape.len()).filter(|&a| sizes[a - 1] == 1).collect(),
        given => axes(given, shape.len())?,
    };
    if dropped.is_empty() || dropped.iter().any(|&a| a == 0 || sizes[a - 1] != 1) {
        return None;
    }
    let target: Vec<usize> = (1..shape.len())
        .filter(|a| !dropped.contains(a))
        .map(|a| sizes[a - 1])
        .collect();
    (!target.is_empty()).then(|| ("Reshape", json!({"target_shape": target})))
}

/// `expand_dims` at an axis after the batch's: `Reshape` with a size 1 there.
fn expand_dims(axis: &Value, shape: &[Option<usize>]) -> Option<(&'static str, Value)> {
    let mut target = sample_sizes(shape)?;
    let [axis] = axes(axis, shape.len() + 1)?[..] else {
        return None;
    };
    if axis == 0 {
        return None;
    }
    target.insert(axis - 1, 1);
    Some(("Reshape", json!({"target_shape": target})))
}

/// Axes given as one integer or a list (negative from the end) of a tensor of `rank`, sorted;
/// `None` if one is out of range or repeated.
fn axes(value: &Value, rank: usize) -> Option<Vec<usize>> {
    let given: Vec<i64> = match value {
        Value::Array(items) => items.iter().map(Value::as_i64).collect::<Option<_>>()?,
        one => vec![one.as_i64()?],
    };
    let rank = i64::try_from(rank).ok()?;
    let mut resolved: Vec<usize> = given
        .into_iter()
        .map(|a| if a < 0 { a + rank } else { a })
        .map(|a| (0..rank).contains(&a).then(|| usize::try_from(a).ok())?)
        .collect::<Option<_>>()?;
    resolved.sort_unstable();
    let count = resolved.len();
    resolved.dedup();
    (!resolved.is_empty() && resolved.len() == count).then_some(resolved)
}

/// A permutation of a tensor of `rank` axes as a list (negative from the end), kept in its order;
/// `None` unless each axis appears once.
fn axes_in_order(value: &Value, rank: usize) -> Option<Vec<usize>> {
    let order: Vec<i64> = value.as_array()?.iter().map(Value::as_i64).collect::<Option<_>>()?;
    let resolved = axes(value, rank)?;
    (order.len() == rank && resolved.len() == rank).then_some(())?;
    let rank = i64::try_from(rank).ok()?;
    order
        .into_iter()
        .map(|a| usize::try_from(if a < 0 { a + rank } else { a }).ok())
        .collect()
}

/// A Keras 3 tensor argument's shape, batch first (`None` where open).
fn shape(tensor: &Value) -> Option<Vec<Option<usize>>> {
    let sizes = tensor.get("config")?.get("shape")?.as_array()?;
    sizes
        .iter()
        .map(|size| match size {
            Value::Null => Some(None),
            known => known.as_u64().and_then(|s| usize::try_from(s).ok()).map(Some),
        })
        .collect()
}

/// The sizes of a sample (after the batch), when all are known.
fn sample_sizes(shape: &[Option<usize>]) -> Option<Vec<usize>> {
    shape.get(1..)?.iter().copied().collect()
}

/// How many values a sample holds, when every size is known.
fn sample_size(shape: &[Option<usize>]) -> Option<usize> {
    sample_sizes(shape)?
        .into_iter()
        .try_fold(1usize, |n, s| n.checked_mul(s))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tensor(layer: &str, shape: Value) -> Value {
        json!({"class_name": "__keras_tensor__", "config": {"shape": shape, "keras_history": [layer, 0, 0]}})
    }

    /// The entry `as_layers` makes of one operation called on `args`.
    fn rewritten(class: &str, config: Value, args: Value) -> Value {
        let mut config = config;
        config["name"] = json!("op");
        let mut body = json!({"layers": [{
            "module": "keras.src.ops.numpy", "class_name": class, "name": "op", "config": config,
            "inbound_nodes": [{"args": args, "kwargs": {}}],
        }]});
        as_layers(&mut body);
        body["layers"][0].clone()
    }

    fn layer_of(class: &str, config: Value, args: Value) -> Option<(String, Value)> {
        let entry = rewritten(class, config, args);
        runs_as_layer(&entry).then(|| {
            let mut config = entry["config"].clone();
            config.as_object_mut().unwrap().remove("name");
            (entry["class_name"].as_str().unwrap().to_string(), config)
        })
    }

    #[test]
    fn numbers_rescale_and_two_tensors_merge() {
        let x = tensor("x", json!([null, 4]));
        let y = tensor("y", json!([null, 4]));
        let layer = |class, args| layer_of(class, json!({}), args);
        assert_eq!(
            layer("Add", json!([x, 3.0])),
            Some(("Rescaling".into(), json!({"scale": 1.0, "offset": 3.0})))
        );
        assert_eq!(
            layer("Subtract", json!([2.0, x])),
            Some(("Rescaling".into(), json!({"scale": -1.0, "offset": 2.0})))
        );
        assert_eq!(
            layer("TrueDivide", json!([x, 4.0])),
            Some(("Rescaling".into(), json!({"scale": 0.25, "offset": 0.0})))
        );
        assert_eq!(
            layer("Negative", json!([x])),
            Some(("Rescaling".into(), json!({"scale": -1.0, "offset": 0.0})))
        );
        for (op, merge) in MERGES {
            assert_eq!(layer(op, json!([x, y])), Some((merge.to_string(), json!({}))), "{op}");
        }
        // Not computed by a layer: two tensors divided, a number divided by a tensor, by zero.
        for (op, args) in [
            ("TrueDivide", json!([x, y])),
            ("TrueDivide", json!([1.0, x])),
            ("TrueDivide", json!([x, 0.0])),
            ("Matmul", json!([x, y])),
        ] {
            assert_eq!(layer(op, args.clone()), None, "{op} {args}");
        }
        let entry = rewritten("Add", json!({}), json!([x, y]));
        assert_eq!(entry["module"], "keras.src.ops.numpy", "still not a layer to Keras");
        assert_eq!(entry[FROM_OPERATION], "Add");
    }

    #[test]
    fn activations_by_class_and_argument() {
        let x = json!([tensor("x", json!([null, 5, 6]))]);
        let layer = |class, config| layer_of(class, config, x.clone());
        assert_eq!(
            layer("Relu", json!({})),
            Some(("Activation".into(), json!({"activation": "relu"})))
        );
        assert_eq!(
            layer("Gelu", json!({"approximate": false})),
            Some(("Activation".into(), json!({"activation": "gelu"})))
        );
        assert_eq!(
            layer("Gelu", json!({"approximate": true})),
            Some(("Activation".into(), json!({"activation": "gelu_approximate"})))
        );
        assert_eq!(
            layer("LeakyRelu", json!({"negative_slope": 0.1})),
            Some(("LeakyReLU".into(), json!({"negative_slope": 0.1})))
        );
        assert_eq!(
            layer("Elu", json!({"alpha": 0.5})),
            Some(("ELU".into(), json!({"alpha": 0.5})))
        );
        for axis in [json!(-1), json!(2), json!([2])] {
            assert_eq!(
                layer("Softmax", json!({ "axis": axis })),
                Some(("Softmax".into(), json!({"axis": -1})))
            );
        }
        assert_eq!(layer("Softmax", json!({"axis": 1})), None);
        assert_eq!(
            layer("LogSoftmax", json!({"axis": -1})),
            Some(("Activation".into(), json!({"activation": "log_softmax"})))
        );
        assert_eq!(layer("Sqrt", json!({})), None);
    }

    #[test]
    fn reductions_over_steps_or_positions_are_global_pooling() {
        let sequence = json!([tensor("x", json!([null, 7, 5]))]);
        let image = json!([tensor("x", json!([null, 8, 8, 3]))]);
        let pooled = |class: &str, keepdims| {
            Some((
                class.to_string(),
                json!({"data_format": "channels_last", "keepdims": keepdims}),
            ))
        };
        let layer = |class, config, args: &Value| layer_of(class, config, args.clone());
        assert_eq!(
            layer("Mean", json!({"axis": 1, "keepdims": false}), &sequence),
            pooled("GlobalAveragePooling1D", false)
        );
        assert_eq!(
            layer(
                "Max",
                json!({"axis": [-2], "keepdims": true, "initial": null}),
                &sequence
            ),
            pooled("GlobalMaxPooling1D", true)
        );
        assert_eq!(
            layer("Mean", json!({"axis": [2, 1], "keepdims": false}), &image),
            pooled("GlobalAveragePooling2D", false)
        );
        assert_eq!(
            layer("Max", json!({"axis": [1, -2], "keepdims": false}), &image),
            pooled("GlobalMaxPooling2D", false)
        );
        for (class, config, args) in [
            ("Mean", json!({"axis": -1, "keepdims": false}), &sequence),
            ("Mean", json!({"axis": null, "keepdims": false}), &sequence),
            ("Mean", json!({"axis": [1, 1], "keepdims": false}), &sequence),
            ("Mean", json!({"axis": 1, "keepdims": true}), &sequence),
            ("Max", json!({"axis": 1, "keepdims": false, "initial": 0.0}), &sequence),
            ("Mean", json!({"axis": 1, "keepdims": false}), &image),
            ("Sum", json!({"axis": 1, "keepdims": false}), &sequence),
        ] {
            assert_eq!(layer(class, config.clone(), args), None, "{class} {config}");
        }
    }

    #[test]
    fn reshapes_that_keep_samples_are_reshape_layers() {
        let x = json!([tensor("x", json!([null, 4, 6]))]);
        let layer = |class, config| layer_of(class, config, x.clone());
        let reshape = |target: Value| Some(("Reshape".to_string(), json!({ "target_shape": target })));
        assert_eq!(layer("Reshape", json!({"newshape": [-1, 24]})), reshape(json!([24])));
        assert_eq!(
            layer("Reshape", json!({"newshape": [-1, 2, -1]})),
            reshape(json!([2, -1]))
        );
        assert_eq!(layer("ExpandDims", json!({"axis": -1})), reshape(json!([4, 6, 1])));
        assert_eq!(layer("ExpandDims", json!({"axis": 1})), reshape(json!([1, 4, 6])));
        // The batch folded into rows, a size that does not divide, the batch's own axis.
        for (class, config) in [
            ("Reshape", json!({"newshape": [-1, 4]})),
            ("Reshape", json!({"newshape": [-1, 5, -1]})),
            ("Reshape", json!({"newshape": [2, 24]})),
            ("ExpandDims", json!({"axis": 0})),
            ("Squeeze", json!({"axis": 1})),
        ] {
            assert_eq!(layer(class, config.clone()), None, "{class} {config}");
        }
        let ones = json!([tensor("x", json!([null, 1, 6, 1]))]);
        let squeezed = |axis| layer_of("Squeeze", json!({ "axis": axis }), ones.clone());
        assert_eq!(squeezed(json!(null)), reshape(json!([6])));
        assert_eq!(squeezed(json!(-1)), reshape(json!([1, 6])));
        assert_eq!(squeezed(json!([1, 3])), reshape(json!([6])));
        assert_eq!(squeezed(json!(0)), None);
        // Open sizes cannot be checked: left to report.
        let open = json!([tensor("x", json!([null, null, 6]))]);
        assert_eq!(layer_of("Reshape", json!({"newshape": [-1, 6]}), open), None);
    }

    #[test]
    fn transposes_keeping_the_batch_first_are_permute() {
        let x = json!([tensor("x", json!([null, 4, 6, 2]))]);
        let layer = |axes: Value| layer_of("Transpose", json!({ "axes": axes }), x.clone());
        assert_eq!(
            layer(json!([0, 3, 1, 2])),
            Some(("Permute".into(), json!({"dims": [3, 1, 2]})))
        );
        assert_eq!(
            layer(json!([0, -1, 2, 1])),
            Some(("Permute".into(), json!({"dims": [3, 2, 1]})))
        );
        for axes in [json!(null), json!([1, 0, 2, 3]), json!([0, 1, 1, 2]), json!([0, 1, 2])] {
            assert_eq!(layer(axes.clone()), None, "{axes}");
        }
    }

    #[test]
    fn concatenate_of_tensors() {
        let a = tensor("a", json!([null, 4]));
        let b = tensor("b", json!([null, 5]));
        assert_eq!(
            layer_of("Concatenate", json!({"axis": -1}), json!([[a, b]])),
            Some(("Concatenate".into(), json!({"axis": -1})))
        );
        assert_eq!(layer_of("Concatenate", json!({"axis": -1}), json!([[a, 1.0]])), None);
    }
}
