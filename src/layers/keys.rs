//! Which keys a layer config may hold. A key strata does not read is never ignored silently when
//! it could change what the layer computes: a typo (`"activaton"`) or a flipped byte would
//! otherwise load a ReLU layer as linear.
//!
//! A key is accepted when the layer reads it (it is among the keys its `config()` writes), when
//! it only matters to Keras (`dtype`, `build_config`, ...), or when it is a Keras setting strata
//! does not implement left at Keras's default (`kernel_constraint: null`); anything else is an
//! error naming the layer, the key and the keys the layer knows.

use crate::error::{Error, Result};
use crate::initializers::to_snake_case;
use serde_json::{Value, json};

/// Older spellings a layer reads besides the key it writes: (class, old key).
const OLD_SPELLINGS: &[(&str, &str)] = &[("LeakyReLU", "alpha")];

/// Keys that do not change what a layer computes: bookkeeping Keras writes (names, dtypes,
/// serialization details) and the declared input shape, which the model's building checks.
const HARMLESS: &[&str] = &[
    "name",
    "trainable",
    "dtype",
    "dtype_policy",
    "autocast",
    "module",
    "registered_name",
    "build_config",
    "input_shape",
    "shape",
    "batch_shape",
    "batch_input_shape",
    "batch_size",
    "input_dtype",
    "input_length",
    "sparse",
    "ragged",
    "optional",
    "seed",
    "synchronized",
    "renorm_momentum",
    "use_cudnn",
    "zero_output_for_mask",
    // tf.keras 2's MultiHeadAttention records the shapes it was built on.
    "query_shape",
    "key_shape",
    "value_shape",
    // Bidirectional checks that it is its layer reversed.
    "backward_layer",
    // Some Keras 3 versions write these on every image augmentation layer (RandomContrast
    // reads its value_range); they concern boxes and pixel ranges, not strata's transforms.
    "value_range",
    "bounding_box_format",
];

/// Keras settings strata does not implement, with the value that means "not used": any other
/// value would change the computation, so it is an error.
fn unimplemented_default(key: &str) -> Option<Value> {
    Some(match key {
        "data_format" => json!("channels_last"),
        "keepdims" | "stateful" | "unroll" | "renorm" | "rms_scaling" => json!(false),
        "groups" => json!(1),
        "reset_after" => json!(true),
        "moving_mean_initializer" | "beta_initializer" => json!("zeros"),
        "moving_variance_initializer" | "gamma_initializer" => json!("ones"),
        "lora_rank" | "lora_alpha" | "quantization_config" | "noise_shape" | "renorm_clipping" => Value::Null,
        key if key.ends_with("_constraint") || key.ends_with("_regularizer") => Value::Null,
        _ => return None,
    })
}

/// Whether a config value means the same as `default`: numbers compared as numbers, an
/// initializer by its name (`{"class_name": "Zeros", ...}` is `"zeros"`).
fn means(value: &Value, default: &Value) -> bool {
    match (value, default) {
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (Value::Object(object), Value::String(name)) => object
            .get("class_name")
            .and_then(Value::as_str)
            .is_some_and(|class| to_snake_case(class) == *name),
        (Value::String(a), Value::String(b)) => to_snake_case(a) == *b || a == b,
        _ => value == default,
    }
}

/// Checks every key of `config` against what the layer just built from it reads: `written`,
/// the config that layer writes.
pub(crate) fn check_keys(class_name: &str, config: &Value, written: &Value) -> Result<()> {
    let Some(given) = config.as_object() else {
        return Ok(());
    };
    let layer = match given.get("name").and_then(Value::as_str) {
        Some(name) => format!("layer '{name}' ({class_name})"),
        None => class_name.to_string(),
    };
    for (key, value) in given {
        let own = written.get(key);
        match unimplemented_default(key) {
            // The layer reads the key (its config holds something other than "not used").
            Some(default) if own.is_some_and(|own| !means(own, &default)) => {}
            Some(default) if !means(value, &default) => {
                return Err(Error::Data(format!(
                    "{layer}: \"{key}\" = {value} is not supported by strata (only {default})"
                )));
            }
            Some(_) => {}
            None if own.is_some() || HARMLESS.contains(&key.as_str()) => {}
            None if OLD_SPELLINGS.contains(&(class_name, key.as_str())) => {}
            None => return Err(unknown_key(&layer, class_name, key, written)),
        }
    }
    Ok(())
}

/// The keys of `config` that [`check_keys`] refuses as unknown to the layer whose own config is
/// `written`: neither read by it, nor Keras bookkeeping, nor a Keras setting strata lacks.
pub(crate) fn unknown_keys(config: &Value, written: &Value) -> Vec<String> {
    let Some(given) = config.as_object() else {
        return Vec::new();
    };
    given
        .keys()
        .filter(|key| {
            unimplemented_default(key).is_none()
                && written.get(key.as_str()).is_none()
                && !HARMLESS.contains(&key.as_str())
        })
        .cloned()
        .collect()
}

/// The error for a key the layer does not know, listing the ones it does.
fn unknown_key(layer: &str, class_name: &str, key: &str, written: &Value) -> Error {
    let mut known: Vec<&str> = written
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    known.retain(|k| !HARMLESS.contains(k));
    known.sort_unstable();
    Error::Data(format!(
        "{layer}: unknown key \"{key}\"; the keys {class_name} reads are: {} (and Keras's \
         bookkeeping keys such as name, trainable, dtype)",
        known.join(", ")
    ))
}

#[cfg(test)]
mod tests {
    use super::super::from_config;
    use serde_json::json;

    fn message(class: &str, config: serde_json::Value) -> String {
        from_config(class, &config)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    }

    #[test]
    fn a_typo_in_a_key_that_changes_the_computation_is_an_error() {
        let err = message(
            "Conv2D",
            json!({"name": "conv", "filters": 2, "kernel_size": 3, "activaton": "relu"}),
        );
        assert!(
            err.contains("layer 'conv' (Conv2D)") && err.contains("\"activaton\"") && err.contains("activation, "),
            "{err}"
        );
    }

    #[test]
    fn keras_settings_strata_lacks_are_errors_unless_left_at_their_default() {
        let dense = |extra: serde_json::Value| {
            let mut config = json!({"units": 2, "kernel_constraint": null, "data_format": "channels_last",
                "dtype": {"class_name": "DTypePolicy", "config": {"name": "float32"}}, "build_config": {}});
            config
                .as_object_mut()
                .unwrap()
                .extend(extra.as_object().unwrap().clone());
            message("Dense", config)
        };
        assert_eq!(dense(json!({})), "");
        let err = dense(json!({"kernel_constraint": {"class_name": "NonNeg", "config": {}}}));
        assert!(err.contains("\"kernel_constraint\"") && err.contains("NonNeg"), "{err}");
        let err = message("Flatten", json!({"data_format": "channels_first"}));
        assert!(err.contains("\"data_format\""), "{err}");
        let err = message(
            "BatchNormalization",
            json!({"gamma_initializer": {"class_name": "Zeros", "config": {}}}),
        );
        assert!(err.contains("\"gamma_initializer\""), "{err}");
        assert_eq!(
            message(
                "BatchNormalization",
                json!({"gamma_initializer": {"class_name": "Ones", "config": {}}})
            ),
            ""
        );
        // A regularizer a layer implements is read, not refused.
        assert_eq!(
            message(
                "Dense",
                json!({"units": 2, "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}})
            ),
            ""
        );
        let err = message(
            "LSTM",
            json!({"units": 2, "kernel_regularizer": {"class_name": "L2", "config": {"l2": 0.01}}}),
        );
        assert!(err.contains("\"kernel_regularizer\""), "{err}");
        // A flag that is not a boolean is not read as its default.
        let err = message("Dense", json!({"units": 2, "use_bias": "false"}));
        assert!(err.contains("\"use_bias\" must be true or false"), "{err}");
    }
}
