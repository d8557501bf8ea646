//! Readers for the values of Keras-style layer configs (`{"units": 128, "activation": "relu"}`),
//! shared by every layer's `from_config`. A leaf: it knows config values, not layers.
//!
//! Absent and `null` mean the same (Keras writes `null` for "use the default"); a value of the
//! wrong kind is an error naming its key.

use crate::error::{Error, Result};
use crate::initializers::{Distribution, FanMode, Initializer, to_snake_case};
use crate::regularizers::Regularizer;
use serde_json::Value;

/// The value under `key`, with `null` read as absent.
fn present<'a>(config: &'a Value, key: &str) -> Option<&'a Value> {
    config.get(key).filter(|value| !value.is_null())
}

/// `input_shape: [784]`, `shape: [784]`, or Keras's `batch_shape` / `batch_input_shape:
/// [null, 784]`.
pub(crate) fn input_shape(config: &Value) -> Result<Option<Vec<usize>>> {
    let Some(dims) = input_dims(config)? else {
        return Ok(None);
    };
    dims.into_iter().collect::<Option<Vec<_>>>().map(Some).ok_or_else(|| {
        let key = shape_key(config).map_or(Value::Null, |(key, _)| key.clone());
        Error::Data(format!("input shape must list positive sizes, got {key}"))
    })
}

/// [`input_shape`] with Keras's `null` for a size the data decides (`keras.Input(shape=(None,))`,
/// a sequence of any length): `None` there.
pub(crate) fn input_dims(config: &Value) -> Result<Option<Vec<Option<usize>>>> {
    let Some((key, skip)) = shape_key(config) else {
        return Ok(None);
    };
    let dims = key
        .as_array()
        .ok_or_else(|| Error::Data(format!("input shape must be a list, got {key}")))?;
    dims.iter()
        .skip(skip)
        .map(|d| match d {
            Value::Null => Some(None),
            d => d.as_u64().filter(|&d| d > 0).map(|d| Some(d as usize)),
        })
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| Error::Data(format!("input shape must list positive sizes or null, got {key}")))
}

/// The value holding an input shape and how many leading (batch) entries it has.
fn shape_key(config: &Value) -> Option<(&Value, usize)> {
    if let Some(v) = config.get("input_shape").or_else(|| config.get("shape")) {
        Some((v, 0))
    } else {
        config
            .get("batch_shape")
            .or_else(|| config.get("batch_input_shape"))
            .map(|v| (v, 1))
    }
}

/// `3`, `[3]` or `[3, 3]` (Keras accepts each), as (rows, columns); `[3]` is `(1, 3)`, the
/// window of a one-dimensional layer.
pub(crate) fn pair(config: &Value, key: &str) -> Result<Option<(usize, usize)>> {
    let bad = || {
        Error::Data(format!(
            "\"{key}\" must be a positive integer or a list of one or two, got {}",
            config[key]
        ))
    };
    let positive = |v: &Value| v.as_u64().filter(|&n| n > 0).map(|n| n as usize);
    match present(config, key) {
        None => Ok(None),
        Some(Value::Array(items)) => match items.as_slice() {
            [one] => positive(one).map(|n| Some((1, n))).ok_or_else(bad),
            [a, b] => match (positive(a), positive(b)) {
                (Some(a), Some(b)) => Ok(Some((a, b))),
                _ => Err(bad()),
            },
            _ => Err(bad()),
        },
        Some(v) => positive(v).map(|n| Some((n, n))).ok_or_else(bad),
    }
}

/// A list of positive sizes under `key`.
pub(crate) fn shape_list(config: &Value, key: &str) -> Result<Option<Vec<usize>>> {
    let Some(value) = present(config, key) else {
        return Ok(None);
    };
    let items = value
        .as_array()
        .ok_or_else(|| Error::Data(format!("\"{key}\" must be a list, got {value}")))?;
    items
        .iter()
        .map(|d| d.as_u64().filter(|&d| d > 0).map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| Error::Data(format!("\"{key}\" must list positive sizes, got {value}")))
}

/// The positive integer a layer cannot do without (`units`, `filters`, ...).
pub(crate) fn required_size(config: &Value, key: &str, class_name: &str) -> Result<usize> {
    config
        .get(key)
        .and_then(Value::as_u64)
        .map(|n| n as usize)
        .ok_or_else(|| match config.get(key) {
            // "auto" is resolved from the text's vocabulary before layers are made, and only
            // where crate::io::config allows it.
            Some(Value::String(text)) if text == "auto" => Error::Data(format!(
                "{class_name} \"{key}\" = \"auto\": only a text model's Dense units and Embedding input_dim \
                 may be left to the text's vocabulary; give a positive integer"
            )),
            Some(other) => Error::Data(format!("{class_name} needs a positive integer \"{key}\", got {other}")),
            None => Error::Data(format!("{class_name} needs a positive integer \"{key}\"")),
        })
}

/// An activation name under `key`, or `default`.
pub(crate) fn activation(config: &Value, key: &str, default: &str) -> Result<String> {
    match present(config, key) {
        None => Ok(default.into()),
        Some(Value::String(s)) => {
            // Checked here, so a file's every unknown activation is listed with its layer at once.
            crate::activations::Activation::from_name(s)?;
            Ok(s.clone())
        }
        Some(other) => Err(Error::Data(format!("\"{key}\" must be a name, got {other}"))),
    }
}

/// `"he_normal"`, or Keras's `{"class_name": "HeNormal", "config": {"seed": null}}`.
pub(crate) fn initializer(config: &Value, key: &str) -> Result<Option<Initializer>> {
    let (name, args) = match present(config, key) {
        None => return Ok(None),
        Some(Value::String(s)) => (s.clone(), None),
        Some(Value::Object(map)) => match map.get("class_name").and_then(Value::as_str) {
            Some(class) => (class.to_string(), map.get("config")),
            None => return Err(Error::Data(format!("\"{key}\" needs a \"class_name\""))),
        },
        Some(other) => return Err(Error::Data(format!("\"{key}\" must be a name, got {other}"))),
    };
    let arg = |k: &str, default: f32| -> Result<f32> {
        Ok(args.map(|a| number(a, k)).transpose()?.flatten().unwrap_or(default))
    };
    Ok(Some(match to_snake_case(&name).as_str() {
        "random_normal" => Initializer::RandomNormal {
            mean: arg("mean", 0.0)?,
            stddev: arg("stddev", 0.05)?,
        },
        "random_uniform" => Initializer::RandomUniform {
            minval: arg("minval", -0.05)?,
            maxval: arg("maxval", 0.05)?,
        },
        "constant" => Initializer::Constant(arg("value", 0.0)?),
        "orthogonal" => Initializer::Orthogonal {
            gain: arg("gain", 1.0)?,
        },
        "variance_scaling" => {
            let word = |k: &str, default: &'static str| {
                args.and_then(|a| a.get(k))
                    .and_then(Value::as_str)
                    .unwrap_or(default)
                    .to_string()
            };
            Initializer::VarianceScaling {
                scale: arg("scale", 1.0)?,
                mode: FanMode::from_name(&word("mode", "fan_in"))?,
                distribution: Distribution::from_name(&word("distribution", "truncated_normal"))?,
            }
        }
        _ => Initializer::from_name(&name)?,
    }))
}

/// A regularizer under `key` (`null` or absent: none).
pub(crate) fn regularizer(config: &Value, key: &str) -> Result<Option<Regularizer>> {
    config.get(key).map_or(Ok(None), Regularizer::from_config)
}

/// An optional number under `key`.
pub(crate) fn number(config: &Value, key: &str) -> Result<Option<f32>> {
    match present(config, key) {
        None => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|v| v as f32)
            .filter(|v| v.is_finite())
            .map(Some)
            .ok_or_else(|| Error::Data(format!("\"{key}\" must be a finite number, got {v}"))),
    }
}

/// A flag under `key`, or `default`. Anything but `true`/`false` is an error: `"use_bias":
/// "false"` must not read as the default, true.
pub(crate) fn flag(config: &Value, key: &str, default: bool) -> Result<bool> {
    match present(config, key) {
        None => Ok(default),
        Some(Value::Bool(value)) => Ok(*value),
        Some(other) => Err(Error::Data(format!("\"{key}\" must be true or false, got {other}"))),
    }
}

/// A string under `key`, or `default`.
pub(crate) fn string(config: &Value, key: &str, default: &str) -> Result<String> {
    match present(config, key) {
        None => Ok(default.to_string()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Error::Data(format!("\"{key}\" must be a string, got {other}"))),
    }
}

/// The optional integer `seed`.
pub(crate) fn seed(config: &Value) -> Result<Option<u64>> {
    match present(config, "seed") {
        None => Ok(None),
        Some(value) => value
            .as_u64()
            .map(Some)
            .ok_or_else(|| Error::Data(format!("\"seed\" must be a non-negative integer, got {value}"))),
    }
}
