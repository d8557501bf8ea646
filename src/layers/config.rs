//! Layers from Keras-style configs: `{"class_name": "Dense", "config": {"units": 128, ...}}`,
//! as model files and Keras's `model.to_json()` write them.

use super::{
    Activation, Add, Average, AveragePooling2D, BatchNormalization, Concatenate, Conv1D, Conv2D, Dense, Dropout,
    Flatten, GaussianNoise, GlobalAveragePooling2D, GlobalMaxPooling2D, Input, Layer, LayerNormalization, MaxPooling1D,
    MaxPooling2D, Maximum, Multiply, Pooling, Reshape, SpatialDropout2D, Subtract,
};
use crate::error::{Error, Result};
use crate::initializers::{Initializer, to_snake_case};
use crate::regularizers::Regularizer;
use serde_json::Value;

/// The layer class names a model file may use.
pub const LAYER_NAMES: &[&str] = &[
    "InputLayer",
    "Dense",
    "Activation",
    "Flatten",
    "Reshape",
    "Conv2D",
    "Conv1D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalMaxPooling2D",
    "GlobalAveragePooling2D",
    "MaxPooling1D",
    "Dropout",
    "SpatialDropout2D",
    "GaussianNoise",
    "BatchNormalization",
    "LayerNormalization",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Concatenate",
    "Embedding",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "TimeDistributed",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomContrast",
    "RandomCrop",
];

/// Builds a layer from its Keras class name and config. Unknown keys that only matter to
/// Keras (`trainable`, `dtype`, regularizers left `null`, ...) are ignored.
pub fn from_config(class_name: &str, config: &Value) -> Result<Box<dyn Layer>> {
    let input_shape = input_shape(config)?;
    let name = config.get("name").and_then(Value::as_str).unwrap_or("").to_string();
    let mut layer: Box<dyn Layer> = match class_name {
        "InputLayer" | "Input" => {
            let shape =
                input_shape.ok_or_else(|| Error::Data("InputLayer needs \"shape\" or \"batch_shape\"".into()))?;
            Box::new(Input::new(&shape))
        }
        "Dense" => {
            let units = config
                .get("units")
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::Data("Dense needs a positive integer \"units\"".into()))?;
            let mut dense = Dense::new(units as usize)
                .activation(&activation_name(config)?)
                .use_bias(config.get("use_bias").and_then(Value::as_bool).unwrap_or(true));
            if let Some(init) = initializer(config, "kernel_initializer")? {
                dense = dense.kernel_initializer(init);
            }
            if let Some(init) = initializer(config, "bias_initializer")? {
                dense = dense.bias_initializer(init);
            }
            if let Some(r) = regularizer(config, "kernel_regularizer")? {
                dense = dense.kernel_regularizer(r);
            }
            if let Some(r) = regularizer(config, "bias_regularizer")? {
                dense = dense.bias_regularizer(r);
            }
            if let Some(shape) = &input_shape {
                dense = dense.input_shape(shape);
            }
            Box::new(dense)
        }
        "Activation" => Box::new(Activation::new(&activation_name(config)?)),
        "Conv2D" | "Conv1D" => {
            let filters = config
                .get("filters")
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::Data(format!("{class_name} needs a positive integer \"filters\"")))?;
            let kernel = pair(config, "kernel_size")?
                .ok_or_else(|| Error::Data(format!("{class_name} needs \"kernel_size\"")))?;
            let mut conv = if class_name == "Conv1D" {
                Conv1D::new(filters as usize, kernel.1)
            } else {
                Conv2D::new(filters as usize, kernel)
            };
            if let Some(strides) = pair(config, "strides")? {
                conv = conv.strides(strides);
            }
            if let Some(dilation) = pair(config, "dilation_rate")? {
                conv = conv.dilation_rate(dilation);
            }
            if let Some(padding) = config.get("padding").and_then(Value::as_str) {
                conv = conv.padding(padding);
            }
            conv = conv
                .activation(&activation_name(config)?)
                .use_bias(config.get("use_bias").and_then(Value::as_bool).unwrap_or(true));
            if let Some(init) = initializer(config, "kernel_initializer")? {
                conv = conv.kernel_initializer(init);
            }
            if let Some(init) = initializer(config, "bias_initializer")? {
                conv = conv.bias_initializer(init);
            }
            if let Some(r) = regularizer(config, "kernel_regularizer")? {
                conv = conv.kernel_regularizer(r);
            }
            if let Some(r) = regularizer(config, "bias_regularizer")? {
                conv = conv.bias_regularizer(r);
            }
            if let Some(shape) = &input_shape {
                conv = conv.input_shape(shape);
            }
            Box::new(conv)
        }
        "MaxPooling2D" | "AveragePooling2D" | "MaxPooling1D" => {
            let size = pair(config, "pool_size")?.unwrap_or((2, 2));
            let mut pool: Pooling = match class_name {
                "MaxPooling2D" => MaxPooling2D::new(size),
                "AveragePooling2D" => AveragePooling2D::new(size),
                _ => MaxPooling1D::new(size.1),
            };
            if let Some(strides) = pair(config, "strides")? {
                pool = pool.strides(strides);
            }
            if let Some(padding) = config.get("padding").and_then(Value::as_str) {
                pool = pool.padding(padding);
            }
            if let Some(shape) = &input_shape {
                pool = pool.input_shape(shape);
            }
            Box::new(pool)
        }
        "GlobalMaxPooling2D" | "GlobalAveragePooling2D" => {
            let pool = if class_name == "GlobalMaxPooling2D" {
                GlobalMaxPooling2D::new()
            } else {
                GlobalAveragePooling2D::new()
            };
            Box::new(match &input_shape {
                Some(shape) => pool.input_shape(shape),
                None => pool,
            })
        }
        "Reshape" => {
            let target = shape_list(config.get("target_shape"), "target_shape")?
                .ok_or_else(|| Error::Data("Reshape needs \"target_shape\"".into()))?;
            let reshape = Reshape::new(&target);
            Box::new(match &input_shape {
                Some(shape) => reshape.input_shape(shape),
                None => reshape,
            })
        }
        "Flatten" => {
            let flatten = Flatten::new();
            Box::new(match &input_shape {
                Some(shape) => flatten.input_shape(shape),
                None => flatten,
            })
        }
        "Dropout" | "SpatialDropout2D" | "GaussianNoise" => {
            let (key, value) = if class_name == "GaussianNoise" {
                ("stddev", number(config, "stddev")?)
            } else {
                ("rate", number(config, "rate")?)
            };
            let value = value.ok_or_else(|| Error::Data(format!("{class_name} needs a number \"{key}\"")))?;
            let mut layer = match class_name {
                "Dropout" => Dropout::new(value),
                "SpatialDropout2D" => SpatialDropout2D::new(value),
                _ => GaussianNoise::new(value),
            };
            if let Some(seed) = config.get("seed").and_then(Value::as_u64) {
                layer = layer.seed(seed);
            }
            Box::new(layer)
        }
        "BatchNormalization" | "LayerNormalization" => {
            last_axis_only(class_name, config)?;
            let flag = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(true);
            let epsilon = number(config, "epsilon")?.unwrap_or(1e-3);
            if class_name == "BatchNormalization" {
                let mut bn = BatchNormalization::new()
                    .momentum(number(config, "momentum")?.unwrap_or(0.99))
                    .epsilon(epsilon)
                    .center(flag("center"))
                    .scale(flag("scale"));
                if let Some(shape) = &input_shape {
                    bn = bn.input_shape(shape);
                }
                Box::new(bn)
            } else {
                let mut ln = LayerNormalization::new()
                    .epsilon(epsilon)
                    .center(flag("center"))
                    .scale(flag("scale"));
                if let Some(shape) = &input_shape {
                    ln = ln.input_shape(shape);
                }
                Box::new(ln)
            }
        }
        "Add" => Box::new(Add::new()),
        "Subtract" => Box::new(Subtract::new()),
        "Multiply" => Box::new(Multiply::new()),
        "Average" => Box::new(Average::new()),
        "Maximum" => Box::new(Maximum::new()),
        "Concatenate" => {
            let axis = match config.get("axis") {
                None | Some(Value::Null) => -1,
                Some(v) => v
                    .as_i64()
                    .ok_or_else(|| Error::Data(format!("Concatenate's \"axis\" must be an integer, got {v}")))?
                    as isize,
            };
            Box::new(Concatenate::new(axis))
        }
        "Embedding" => super::embedding::from_config(config)?,
        "SimpleRNN" | "LSTM" | "GRU" => super::recurrent::from_config(class_name, config)?,
        "Bidirectional" | "TimeDistributed" => super::wrappers::from_config(class_name, config)?,
        "RandomFlip" | "RandomRotation" | "RandomTranslation" | "RandomZoom" | "RandomContrast" | "RandomCrop" => {
            super::preprocessing::from_config(class_name, config)?
        }
        _ => return Err(Error::unknown("layer class", class_name, LAYER_NAMES)),
    };
    if !name.is_empty() {
        layer.set_name(name);
    }
    Ok(layer)
}

/// `input_shape: [784]`, `shape: [784]`, or Keras's `batch_shape` / `batch_input_shape:
/// [null, 784]`.
pub(super) fn input_shape(config: &Value) -> Result<Option<Vec<usize>>> {
    let (key, skip) = if let Some(v) = config.get("input_shape").or_else(|| config.get("shape")) {
        (v, 0)
    } else if let Some(v) = config.get("batch_shape").or_else(|| config.get("batch_input_shape")) {
        (v, 1)
    } else {
        return Ok(None);
    };
    let dims = key
        .as_array()
        .ok_or_else(|| Error::Data(format!("input shape must be a list, got {key}")))?;
    dims.iter()
        .skip(skip)
        .map(|d| d.as_u64().filter(|&d| d > 0).map(|d| d as usize))
        .collect::<Option<Vec<_>>>()
        .map(Some)
        .ok_or_else(|| Error::Data(format!("input shape must list positive sizes, got {key}")))
}

/// `3`, `[3]` or `[3, 3]` (Keras accepts each), as (rows, columns); `null` means absent.
fn pair(config: &Value, key: &str) -> Result<Option<(usize, usize)>> {
    let bad = || {
        Error::Data(format!(
            "\"{key}\" must be a positive integer or a list of one or two, got {}",
            config[key]
        ))
    };
    let positive = |v: &Value| v.as_u64().filter(|&n| n > 0).map(|n| n as usize);
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
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

/// A list of positive sizes.
fn shape_list(value: Option<&Value>, key: &str) -> Result<Option<Vec<usize>>> {
    let Some(value) = value else { return Ok(None) };
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

fn activation_name(config: &Value) -> Result<String> {
    match config.get("activation") {
        None | Some(Value::Null) => Ok("linear".into()),
        Some(Value::String(s)) => Ok(s.clone()),
        Some(other) => Err(Error::Data(format!("\"activation\" must be a name, got {other}"))),
    }
}

/// `"he_normal"`, or Keras's `{"class_name": "HeNormal", "config": {"seed": null}}`.
pub(super) fn initializer(config: &Value, key: &str) -> Result<Option<Initializer>> {
    let Some(value) = config.get(key) else {
        return Ok(None);
    };
    let (name, args) = match value {
        Value::Null => return Ok(None),
        Value::String(s) => (s.clone(), None),
        Value::Object(map) => match map.get("class_name").and_then(Value::as_str) {
            Some(class) => (class.to_string(), map.get("config")),
            None => return Err(Error::Data(format!("\"{key}\" needs a \"class_name\""))),
        },
        other => {
            return Err(Error::Data(format!("\"{key}\" must be a name, got {other}")));
        }
    };
    let arg = |k: &str, default: f32| {
        args.and_then(|a| a.get(k))
            .and_then(Value::as_f64)
            .map_or(default, |v| v as f32)
    };
    Ok(Some(match to_snake_case(&name).as_str() {
        "random_normal" => Initializer::RandomNormal {
            mean: arg("mean", 0.0),
            stddev: arg("stddev", 0.05),
        },
        "random_uniform" => Initializer::RandomUniform {
            minval: arg("minval", -0.05),
            maxval: arg("maxval", 0.05),
        },
        "constant" => Initializer::Constant(arg("value", 0.0)),
        "orthogonal" => Initializer::Orthogonal { gain: arg("gain", 1.0) },
        _ => Initializer::from_name(&name)?,
    }))
}

/// An optional number under `key`.
pub(super) fn number(config: &Value, key: &str) -> Result<Option<f32>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_f64()
            .map(|v| Some(v as f32))
            .ok_or_else(|| Error::Data(format!("\"{key}\" must be a number, got {v}"))),
    }
}

/// A regularizer under `key` (`null` or absent: none).
fn regularizer(config: &Value, key: &str) -> Result<Option<Regularizer>> {
    config.get(key).map_or(Ok(None), Regularizer::from_config)
}

/// Normalization layers here work on the last axis only: `axis` must be -1 (or `[-1]`).
fn last_axis_only(class_name: &str, config: &Value) -> Result<()> {
    let axis = match config.get("axis") {
        None | Some(Value::Null) => return Ok(()),
        Some(Value::Array(items)) if items.len() == 1 => &items[0],
        Some(other) => other,
    };
    if axis.as_i64() == Some(-1) {
        return Ok(());
    }
    Err(Error::Data(format!(
        "{class_name} with axis {axis} is not supported: strata normalizes the last axis only (axis=-1)"
    )))
}
