//! The arguments of one layer call in a functional config, bound to what strata's layers take.
//!
//! Keras records each call with its arguments: Keras 3 as `{"args": [...], "kwargs": {...}}`
//! with tensors as `__keras_tensor__` objects; tf.keras 2 as the references
//! `[layer, node, tensor, kwargs]` of the first argument's tensors, every other argument in
//! `kwargs` (a tensor there as `[layer, node, tensor]`). strata's layers take their tensors as
//! one list of inputs, and what Keras passes per call (`use_causal_mask`) as a setting of the
//! layer. Every argument is mapped onto those or refused by name; none is dropped:
//!
//! - `MultiHeadAttention(query, value, key=, attention_mask=, use_causal_mask=,
//!   return_attention_scores=)`: inputs `[query, value, (key,) (attention_mask)]`, the mask
//!   turning `attention_mask_input` on;
//! - `Attention` and `AdditiveAttention([query, value(, key)], use_causal_mask=,
//!   return_attention_scores=)`;
//! - `training=None` or `False`: predictions are the same (Keras predicts in inference mode);
//!   `False` on a layer that trains differently is accepted with a warning, since strata's `fit`
//!   runs such a layer in training mode. `training=True` (the layer in training mode in
//!   `predict` too, Monte Carlo dropout) is refused;
//! - `mask=` (and MultiHeadAttention's `query_mask=` ...): accepted when Keras computed it from
//!   masks strata carries itself (`keras_ops.rs`), refused when it is a tensor of the model's;
//! - `initial_state=` of the recurrent layers is refused: they start from zero states.

use serde_json::{Map, Value, json};

/// What one call gives strata's layer.
#[derive(Default)]
pub(super) struct Bound {
    /// The references of its inputs, in strata's order.
    pub inputs: Vec<Value>,
    /// The layer settings the call implies, by config key (the same for every call).
    pub settings: Vec<(&'static str, Value)>,
    /// Warnings about arguments accepted that change only how Keras would train.
    pub warnings: Vec<String>,
}

/// The layer a call is of, and the layers whose outputs are masks strata makes itself.
pub(super) struct Callee<'a> {
    pub name: &'a str,
    pub class: &'a str,
    pub config: &'a Value,
    /// Names read by `mask=` arguments that strata's mask propagation stands for: mask
    /// operations, and those `keras_ops::without_mask_operations` removed (not layers here).
    pub is_mask: &'a dyn Fn(&str) -> bool,
}

/// Layers that compute otherwise in training mode, for which `training=False` is noted.
const TRAINING_MODE_CLASSES: &[&str] = &[
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "BatchNormalization",
    "Functional",
    "Sequential",
    "Model",
];

/// The parameters of the calls strata maps argument by argument, in Keras's positional order.
fn signature(class: &str) -> Option<&'static [&'static str]> {
    Some(match class {
        "MultiHeadAttention" => &[
            "query",
            "value",
            "key",
            "query_mask",
            "value_mask",
            "key_mask",
            "attention_mask",
            "return_attention_scores",
            "training",
            "use_causal_mask",
        ],
        "Attention" | "AdditiveAttention" => &[
            "inputs",
            "mask",
            "training",
            "return_attention_scores",
            "use_causal_mask",
        ],
        "SimpleRNN" | "LSTM" | "GRU" | "Bidirectional" => &["sequences", "initial_state", "mask", "training"],
        _ => return None,
    })
}

/// The positional and keyword arguments of a call (`node`, in either Keras's layout), each
/// tensor as `{"__tensor__": reference}`.
pub(super) fn arguments(node: &Value) -> (Vec<Value>, Map<String, Value>) {
    match node {
        Value::Array(references) => {
            // tf.keras 2 writes four elements; three are Keras 3's node numbers in this layout.
            let four = references
                .first()
                .and_then(Value::as_array)
                .is_some_and(|r| r.len() == 4);
            let tensors: Vec<Value> = references.iter().map(|r| keras2_tensor(r, four)).collect();
            let args = match tensors.len() {
                1 => tensors,
                _ => vec![Value::Array(tensors)],
            };
            let kwargs = references
                .first()
                .and_then(|r| r.get(3))
                .and_then(Value::as_object)
                .map(|k| k.iter().map(|(key, v)| (key.clone(), keras2_value(v, four))).collect())
                .unwrap_or_default();
            (args, kwargs)
        }
        _ => {
            let args = match node.get("args").map(keras3_value) {
                Some(Value::Array(args)) => args,
                _ => Vec::new(),
            };
            let kwargs = match node.get("kwargs").map(keras3_value) {
                Some(Value::Object(kwargs)) => kwargs,
                _ => Map::new(),
            };
            (args, kwargs)
        }
    }
}

/// A Keras 3 argument with its `__keras_tensor__` objects as tensors.
fn keras3_value(value: &Value) -> Value {
    match value {
        Value::Array(items) => Value::Array(items.iter().map(keras3_value).collect()),
        Value::Object(object) if object.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
            let history = object.get("config").and_then(|c| c.get("keras_history"));
            json!({"__tensor__": history.cloned().unwrap_or(Value::Null)})
        }
        Value::Object(object) => Value::Object(object.iter().map(|(k, v)| (k.clone(), keras3_value(v))).collect()),
        other => other.clone(),
    }
}

/// A reference `[layer, node, tensor(, kwargs)]` as a tensor, with four elements (the last
/// `{}`) when `four`: `keras_nested.rs` numbers tf.keras 2's nodes by them.
fn keras2_tensor(reference: &Value, four: bool) -> Value {
    let mut reference = reference.as_array().cloned().unwrap_or_default();
    reference.truncate(3);
    if four {
        reference.push(json!({}));
    }
    json!({"__tensor__": reference})
}

/// A tf.keras 2 keyword argument, its references `[layer, node, tensor]` as tensors (with
/// four elements when `four`).
fn keras2_value(value: &Value, four: bool) -> Value {
    let Value::Array(items) = value else {
        return value.clone();
    };
    let is_reference = matches!(items.len(), 3 | 4)
        && items[0].is_string()
        && items[1].is_u64()
        && items[2].is_u64()
        && items.get(3).is_none_or(Value::is_object);
    match is_reference {
        true => keras2_tensor(value, four),
        false => Value::Array(items.iter().map(|item| keras2_value(item, four)).collect()),
    }
}

/// The reference of a tensor argument.
fn tensor(value: &Value) -> Option<&Value> {
    value.get("__tensor__")
}

/// The references of every tensor in `value`, in order.
fn tensors_in(value: &Value, into: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| tensors_in(item, into)),
        _ => into.extend(tensor(value).cloned()),
    }
}

/// The name of the layer a reference reads.
fn source(reference: &Value) -> &str {
    reference.get(0).and_then(Value::as_str).unwrap_or("(unknown)")
}

/// Binds one call of `callee`: its inputs and settings, or every argument strata cannot map.
pub(super) fn bind(callee: &Callee, node: &Value) -> Result<Bound, Vec<String>> {
    let (args, kwargs) = arguments(node);
    // strata's own files: the attention mask is the last positional input, the settings in
    // the layer's config.
    let strata_layout = callee.config.get("attention_mask_input") == Some(&Value::Bool(true));
    let mut binder = Binder {
        callee,
        bound: Bound::default(),
        problems: Vec::new(),
    };
    match signature(callee.class).filter(|_| !strata_layout) {
        Some(parameters) => {
            let named = binder.by_name(parameters, args, kwargs);
            binder.map(&named);
        }
        None => binder.generic(args, kwargs),
    }
    match binder.problems.is_empty() {
        true => Ok(binder.bound),
        false => Err(binder.problems),
    }
}

/// Binding one call.
struct Binder<'a> {
    callee: &'a Callee<'a>,
    bound: Bound,
    problems: Vec<String>,
}

impl Binder<'_> {
    /// Refuses an argument: `what` it is, and `why` strata cannot take it (when there is more
    /// to say than that it does not).
    fn refuse(&mut self, what: String) {
        self.refuse_because(what, "");
    }

    fn refuse_because(&mut self, what: String, why: &str) {
        let Callee { name, class, .. } = self.callee;
        let why = match why {
            "" => String::new(),
            why => format!(": {why}"),
        };
        self.problems.push(format!(
            "layer '{name}' ({class}) is called with {what}, which strata does not support{why}"
        ));
    }

    /// Each argument by its parameter's name (positional ones in `parameters`' order).
    fn by_name(&mut self, parameters: &[&str], args: Vec<Value>, kwargs: Map<String, Value>) -> Map<String, Value> {
        let mut named = Map::new();
        for (i, value) in args.into_iter().enumerate() {
            match parameters.get(i) {
                Some(parameter) => {
                    named.insert(parameter.to_string(), value);
                }
                None => self.refuse(format!(
                    "a positional argument #{} ({}) beyond Keras's",
                    i + 1,
                    shown(&value)
                )),
            }
        }
        for (key, value) in kwargs {
            if !parameters.contains(&key.as_str()) {
                self.refuse(format!("the argument {key}={}", shown(&value)));
            } else if named.insert(key.clone(), value).is_some() {
                self.refuse(format!("the argument {key} given twice"));
            }
        }
        named
    }

    /// Layers without arguments of their own: every tensor of the positional arguments is an
    /// input; `training` and `mask` are checked, any other argument refused.
    fn generic(&mut self, args: Vec<Value>, kwargs: Map<String, Value>) {
        for (i, value) in args.iter().enumerate() {
            let before = self.bound.inputs.len();
            tensors_in(value, &mut self.bound.inputs);
            if i > 0 && self.bound.inputs.len() == before && !value.is_null() {
                self.refuse(format!("a positional argument #{} ({})", i + 1, shown(value)));
            }
        }
        for (key, value) in &kwargs {
            match key.as_str() {
                "training" => self.training(value),
                "mask" => self.mask(key, value),
                _ if value.is_null() => {}
                _ => self.refuse(format!("the argument {key}={}", shown(value))),
            }
        }
    }

    /// The arguments of a call of a [`signature`] class.
    fn map(&mut self, named: &Map<String, Value>) {
        let get = |key: &str| named.get(key).filter(|v| !v.is_null());
        for key in ["mask", "query_mask", "value_mask", "key_mask"] {
            if let Some(value) = get(key) {
                self.mask(key, value);
            }
        }
        if let Some(value) = get("training") {
            self.training(value);
        }
        if let Some(state) = get("initial_state") {
            let mut states = Vec::new();
            tensors_in(state, &mut states);
            let from: Vec<&str> = states.iter().map(source).collect();
            let what = format!("initial_state (from {})", quoted(&from));
            self.refuse_because(what, "its recurrent layers start from zero states");
        }
        match self.callee.class {
            "MultiHeadAttention" => self.attention_inputs(&[get("query"), get("value"), get("key")]),
            "Attention" | "AdditiveAttention" => match get("inputs").and_then(Value::as_array) {
                Some(list) if (2..=3).contains(&list.len()) => {
                    let parts: Vec<Option<&Value>> = list.iter().map(Some).collect();
                    self.attention_inputs(&parts);
                }
                _ => self.refuse("inputs other than a list [query, value] or [query, value, key]".into()),
            },
            _ => match get("sequences").and_then(tensor) {
                Some(reference) => self.bound.inputs.push(reference.clone()),
                None => self.refuse("no sequence tensor as its first argument".into()),
            },
        }
        if self.callee.class == "MultiHeadAttention" {
            let mask = get("attention_mask");
            match mask.map(tensor) {
                Some(Some(reference)) => self.bound.inputs.push(reference.clone()),
                Some(None) => self.refuse(format!(
                    "attention_mask={} (not a tensor)",
                    shown(mask.unwrap_or(&Value::Null))
                )),
                None => {}
            }
            self.bound
                .settings
                .push(("attention_mask_input", Value::Bool(mask.is_some())));
        }
        if signature(self.callee.class).is_some_and(|p| p.contains(&"use_causal_mask")) {
            for key in ["use_causal_mask", "return_attention_scores"] {
                self.flag(key, get(key));
            }
        }
    }

    /// Query, value and optional key: each a tensor.
    fn attention_inputs(&mut self, parts: &[Option<&Value>]) {
        for (i, part) in parts.iter().enumerate() {
            match part.map(|v| tensor(v)) {
                Some(Some(reference)) => self.bound.inputs.push(reference.clone()),
                None if i == 2 => {}
                _ => {
                    let what = ["query", "value", "key"][i.min(2)];
                    self.refuse(format!("no {what} tensor"));
                }
            }
        }
    }

    /// A boolean call setting: given, else the layer's config's (strata's own files keep it
    /// there), else Keras's default `false`.
    fn flag(&mut self, key: &'static str, given: Option<&Value>) {
        let value = given
            .or_else(|| self.callee.config.get(key))
            .unwrap_or(&Value::Bool(false));
        match value {
            Value::Bool(_) => self.bound.settings.push((key, value.clone())),
            other => self.refuse(format!("{key}={other}, not true or false")),
        }
    }

    /// `training`: `None` and `False` leave predictions as they are; `True` does not.
    fn training(&mut self, value: &Value) {
        match value {
            Value::Null => {}
            Value::Bool(false) => {
                let Callee { name, class, .. } = self.callee;
                if TRAINING_MODE_CLASSES.contains(class) {
                    self.bound.warnings.push(format!(
                        "layer '{name}' ({class}) is called with training=False: strata predicts as Keras does, but \
                         its fit trains the layer in training mode (freeze it to keep it in inference mode)"
                    ));
                }
            }
            Value::Bool(true) => self.refuse_because(
                "training=True".into(),
                "Keras runs such a call in training mode in predict too (Monte Carlo dropout)",
            ),
            other => self.refuse(format!("training={other}")),
        }
    }

    /// A mask argument: fine when it is (a list of) masks strata computes itself.
    fn mask(&mut self, key: &str, value: &Value) {
        let mut tensors = Vec::new();
        tensors_in(value, &mut tensors);
        let is_mask = self.callee.is_mask;
        let given: Vec<&str> = tensors.iter().map(source).filter(|name| !is_mask(name)).collect();
        let nothing = |v: &Value| v.is_null() || v.as_array().is_some_and(|items| items.iter().all(Value::is_null));
        if !given.is_empty() {
            let what = format!("{key}= a tensor of the model (from {})", quoted(&given));
            self.refuse_because(
                what,
                "it makes masks only with Embedding(mask_zero=True) and Masking, and passes them on itself",
            );
        } else if tensors.is_empty() && !nothing(value) {
            self.refuse(format!("{key}={}", shown(value)));
        }
    }
}

/// An argument for a message: a tensor as the layer it comes from.
fn shown(value: &Value) -> String {
    match (tensor(value), value) {
        (Some(reference), _) => format!("a tensor from '{}'", source(reference)),
        (None, Value::Array(items)) => format!("[{}]", items.iter().map(shown).collect::<Vec<_>>().join(", ")),
        (None, other) => other.to_string(),
    }
}

/// `'a', 'b'`: each name once, sorted.
fn quoted(names: &[&str]) -> String {
    let unique: std::collections::BTreeSet<&str> = names.iter().copied().collect();
    let quoted: Vec<String> = unique.iter().map(|n| format!("'{n}'")).collect();
    quoted.join(", ")
}
