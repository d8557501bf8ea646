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
}

/// The layer, once it is known to be one strata imports with Keras's meaning.
pub(super) fn check_layer(entry: &Value) -> Result<KerasLayer<'_>, String> {
    let class = entry.get("class_name").and_then(Value::as_str).unwrap_or("(none)");
    let config = entry.get("config").unwrap_or(&Value::Null);
    let name = config.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
    if !LAYER_NAMES.contains(&class) {
        return Err(format!(
            "layer '{name}' ({class}) is not supported by strata; supported layers: {}",
            LAYER_NAMES.join(", ")
        ));
    }
    // Settings strata's layers do not have, which would change what the layer computes.
    let unlike = |key: &str, keras_default: Value| config.get(key).is_some_and(|v| *v != keras_default);
    let reason = if unlike("data_format", json!("channels_last")) {
        Some("data_format other than channels_last")
    } else if unlike("groups", json!(1)) {
        Some("grouped convolution (groups > 1)")
    } else if unlike("lora_rank", Value::Null) {
        Some("LoRA weights (lora_rank)")
    } else {
        None
    };
    match reason {
        Some(what) => Err(format!(
            "layer '{name}' ({class}) uses {what}, which strata does not support"
        )),
        None => Ok(KerasLayer { class, config }),
    }
}
