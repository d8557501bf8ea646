//! One layer of a Keras archive's config, checked for what strata can import: the parsed form
//! that reading the archive (`keras.rs`) and its weights (`keras_weights.rs`) share.

use crate::layers::LAYER_NAMES;
use serde_json::{Value, json};

/// A layer of the archive: its Keras class and config.
pub(super) struct KerasLayer<'a> {
    /// The Keras class name, e.g. `Conv2D`.
    pub class: &'a str,
    /// Its `config` object.
    pub config: &'a Value,
    /// The HDF5 group of its weights in `model.weights.h5`, e.g. `layers/dense_1/vars`.
    pub group: &'a str,
}

impl<'a> KerasLayer<'a> {
    /// The layer's name in its config (weights in legacy `.h5` files are found by it).
    pub fn name(&self) -> &'a str {
        self.config.get("name").and_then(Value::as_str).unwrap_or("(unnamed)")
    }
}

/// Every layer, once each is known to be one strata imports with Keras's meaning; else one
/// error naming every layer that is not (a user fixing a file wants the whole list at once).
pub(super) fn check_layers<'a>(entries: &'a [Value], groups: &'a [String]) -> Result<Vec<KerasLayer<'a>>, String> {
    let mut layers = Vec::new();
    let mut problems = Vec::new();
    let mut missing = Vec::new();
    for (entry, group) in entries.iter().zip(groups) {
        match check_layer(entry, group) {
            Ok(layer) => layers.push(layer),
            Err((problem, what)) => {
                problems.push(problem);
                if !missing.contains(&what) {
                    missing.push(what);
                }
            }
        }
    }
    if problems.is_empty() {
        return Ok(layers);
    }
    let mut message = match problems.len() {
        1 => problems.remove(0),
        n => format!("{n} layers cannot be imported: {}", problems.join("; ")),
    };
    if missing.contains(&Missing::Class) {
        message.push_str(&format!("; supported layers: {}", LAYER_NAMES.join(", ")));
    }
    if missing.contains(&Missing::Operation) {
        message.push_str(
            "; operations strata runs as layers: a tensor plus, minus, times or divided by a number, two tensors \
             added, subtracted, multiplied, their maximum or minimum, activation functions, mean or max over a \
             sequence's steps or an image's positions, concatenate, and reshape, squeeze, expand_dims or transpose \
             keeping the batch",
        );
    }
    Err(message)
}

/// What a refused entry lacks, for the note said once after every refusal is listed.
#[derive(Clone, Copy, PartialEq)]
enum Missing {
    /// A layer class strata does not have.
    Class,
    /// A Keras 3 operation no layer of strata's computes.
    Operation,
    /// Anything else: the message says it.
    Other,
}

/// The layer, or what strata cannot import about it (and what that is).
fn check_layer<'a>(entry: &'a Value, group: &'a str) -> Result<KerasLayer<'a>, (String, Missing)> {
    let class = entry.get("class_name").and_then(Value::as_str).unwrap_or("(none)");
    let config = entry.get("config").unwrap_or(&Value::Null);
    let name = config.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
    if super::keras_ops::is_operation(entry) && !super::keras_ops_layers::runs_as_layer(entry) {
        let module = entry.get("module").and_then(Value::as_str).unwrap_or("keras.src.ops");
        return Err((
            format!("operation '{name}' ({module}.{class}) is not supported by strata"),
            Missing::Operation,
        ));
    }
    if super::keras_tf_ops::is_operation(entry) {
        let function = super::keras_tf_ops::function(entry);
        return Err((
            format!(
                "layer '{name}' ({class} of tf.{function}, TensorFlow code in a tf.keras 2 model) is not supported by \
                 strata (only a tensor plus, minus, times or divided by a number or one number per channel, two \
                 tensors added, subtracted or multiplied, and activation functions are)"
            ),
            Missing::Other,
        ));
    }
    if !LAYER_NAMES.contains(&class) {
        return Err((
            format!("layer '{name}' ({class}) is not supported by strata"),
            Missing::Class,
        ));
    }
    // Settings strata's layers do not have, which would change what the layer computes.
    let unlike = |key: &str, keras_default: Value| config.get(key).is_some_and(|v| *v != keras_default);
    let reason = if unlike("data_format", json!("channels_last")) {
        Some("data_format other than channels_last")
    } else if class != "GroupNormalization" && unlike("groups", json!(1)) {
        Some("grouped convolution (groups > 1)")
    } else if unlike("lora_rank", Value::Null) {
        Some("LoRA weights (lora_rank)")
    } else if quantized_policy(config.get("dtype")) {
        Some("Keras's quantized weights (an int8, int4 or float8 dtype policy, from model.quantize)")
    } else {
        None
    };
    match reason {
        Some(what) => Err((
            format!("layer '{name}' ({class}) uses {what}, which strata does not support"),
            Missing::Other,
        )),
        None => Ok(KerasLayer { class, config, group }),
    }
}

/// Activations whose meaning Keras 3 changed, with what they computed before: a file written by
/// Keras 2 that names one would otherwise import as Keras 3's function, silently another model.
const CHANGED_IN_KERAS3: &[(&str, &str)] = &[(
    "hard_sigmoid",
    "clip(0.2 * x + 0.5, 0, 1) in Keras 2 but relu6(x + 3) / 6 in Keras 3 and strata",
)];

/// The major version of the Keras that wrote a file, from its `keras_version` ("2.21.0").
pub(super) fn keras_major(version: &str) -> Option<u32> {
    version.split('.').next()?.trim().parse().ok()
}

/// For a file written by Keras 1 or 2: every layer (wrapped layers included) whose activation
/// changed its meaning in Keras 3, named at once; strata computes Keras 3's.
pub(super) fn check_keras2_meanings(entries: &[Value]) -> Result<(), String> {
    let mut problems = Vec::new();
    for entry in entries {
        let class = entry.get("class_name").and_then(Value::as_str).unwrap_or("(none)");
        let config = entry.get("config").unwrap_or(&Value::Null);
        let name = config.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
        let mut found = Vec::new();
        changed_activations(config, 0, &mut found);
        for (key, activation, meaning) in found {
            problems.push(format!(
                "layer '{name}' ({class}) has {key} '{activation}', which is {meaning}"
            ));
        }
    }
    match problems.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "written by Keras 2, whose meaning of an activation strata does not have: {}",
            problems.join("; ")
        )),
    }
}

/// The `(key, activation, meaning)` of every activation setting in `config` (searched through
/// wrapped layers' configs, to a bounded depth) that [`CHANGED_IN_KERAS3`] lists.
fn changed_activations(config: &Value, depth: usize, found: &mut Vec<(String, String, &'static str)>) {
    let Some(fields) = config.as_object().filter(|_| depth < 8) else {
        return;
    };
    for (key, value) in fields {
        match value.as_str() {
            Some(activation) if key.ends_with("activation") => {
                if let Some((_, meaning)) = CHANGED_IN_KERAS3.iter().find(|(a, _)| *a == activation) {
                    found.push((key.clone(), activation.to_string(), meaning));
                }
            }
            _ => changed_activations(value, depth + 1, found),
        }
    }
}

/// Whether a layer's `dtype` (a name, or Keras 3's `{"class_name": "DTypePolicy", "config":
/// {"name": ...}}`) is one of Keras's quantized policies (`int8_from_float32`,
/// `QuantizedDTypePolicy`), whose layers keep other weights (an int8 kernel and its scale).
fn quantized_policy(dtype: Option<&Value>) -> bool {
    let Some(dtype) = dtype else { return false };
    let class = dtype.get("class_name").and_then(Value::as_str).unwrap_or_default();
    let name = dtype
        .as_str()
        .or_else(|| dtype.get("config").and_then(|c| c.get("name")).and_then(Value::as_str))
        .unwrap_or_default();
    class.starts_with("Quantized") || ["int8", "int4", "float8"].iter().any(|q| name.starts_with(q))
}

/// Drops the keys a layer config holds that strata does not know, when their value leaves the
/// computation as it is: `null`, `false`, an empty list or table (a setting of a newer Keras,
/// left off). Returns a warning for each. Unknown keys with any other value stay, and building
/// the layer refuses them, naming the key and the keys the layer reads: they may change what
/// the layer computes.
pub(super) fn drop_inert_unknown_keys(entries: &mut [Value]) -> Vec<String> {
    let mut warnings = Vec::new();
    for entry in entries.iter_mut() {
        let class = entry
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let Some(config) = entry.get_mut("config") else {
            continue;
        };
        for key in crate::layers::unknown_config_keys(&class, config) {
            let inert = match &config[&key] {
                Value::Null | Value::Bool(false) => true,
                Value::Array(items) => items.is_empty(),
                Value::Object(fields) => fields.is_empty(),
                _ => false,
            };
            if !inert {
                continue;
            }
            let name = config.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
            warnings.push(format!(
                "layer '{name}' ({class}): ignoring \"{key}\" = {}, a setting strata does not know (from a newer \
                 Keras?) that is left off",
                config[&key]
            ));
            if let Some(fields) = config.as_object_mut() {
                fields.remove(&key);
            }
        }
    }
    warnings
}
