//! An application named in a model description file instead of a list of layers:
//!
//! ```toml
//! data = "flowers/"
//! application = "mobilenet_v2"          # or Keras's "MobileNetV2"
//! # or with Keras's arguments (any left out take Keras's defaults):
//! # application = { name = "mobilenet_v2", alpha = 0.35, input_shape = [96, 96, 3],
//! #                 include_top = true, classes = 5, weights = "base.h5" }
//! # (also pooling, classifier_activation, and the families' own depth_multiplier, dropout,
//! # minimalistic, include_preprocessing; weights = "imagenet" reads Keras's cached file)
//!
//! [compile]
//! optimizer = "adam"
//! loss = "sparse_categorical_crossentropy"
//! ```

use super::catalog::{application, architecture};
use super::options::{Options, Pooling};
use crate::error::{Error, Result};
use crate::io::config::{Format, ModelFile, load_model_spec_with, parse_with};
use crate::model::Model;
use serde_json::Value;

/// A named model or a model description file, as [`crate::io::config::load_model_spec`]
/// reads it, where the description may name an application instead of layers
/// (`application = "mobilenet_v2"`). The `strata` command line loads `--model` this way.
pub fn load_description(name_or_path: &str) -> Result<ModelFile> {
    load_model_spec_with(name_or_path, Some(from_description))
}

/// A model description's text, as [`crate::io::config::parse`] reads it, where the
/// description may name an application instead of layers; `origin` names it in errors.
pub fn parse_description(text: &str, format: Format, origin: &str) -> Result<ModelFile> {
    parse_with(text, format, origin, Some(from_description))
}

/// The keys an `application` table may hold: its `name` and Keras's arguments (the model's
/// own name is the description's top-level `name`, else Keras's).
const KEYS: &[&str] = &[
    "name",
    "input_shape",
    "include_top",
    "weights",
    "pooling",
    "classes",
    "classifier_activation",
    "alpha",
    "depth_multiplier",
    "dropout",
    "minimalistic",
    "include_preprocessing",
];

/// The model `value` (a description's `application`: a name, or a table of the name and
/// Keras's arguments) describes: not built, unless it names `weights`, which are then loaded.
/// Errors name the key and what it holds.
pub fn from_description(value: &Value) -> Result<Model> {
    let bad = |key: &str, expected: &str, got: &Value| {
        Error::Data(format!("application.{key} must be {expected}, got {got}"))
    };
    let (name, table) = match value {
        Value::String(name) => (name.as_str(), None),
        Value::Object(table) => {
            let name = table
                .get("name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Data("application needs a \"name\" (e.g. \"mobilenet_v2\")".into()))?;
            if let Some(unknown) = table.keys().find(|k| !KEYS.contains(&k.as_str())) {
                return Err(Error::unknown("application key", unknown, KEYS));
            }
            (name, Some(table))
        }
        other => return Err(bad("", "a name or a table", other)),
    };
    let mut options = Options::default();
    let get = |key: &str| table.and_then(|t| t.get(key));
    if let Some(v) = get("input_shape") {
        let dims: Option<Vec<usize>> = v.as_array().and_then(|a| {
            a.iter()
                .map(|d| d.as_u64().and_then(|d| usize::try_from(d).ok()))
                .collect()
        });
        match dims.as_deref() {
            Some(&[h, w, c]) => options.input_shape = Some([h, w, c]),
            _ => return Err(bad("input_shape", "[height, width, channels]", v)),
        }
    }
    if let Some(v) = get("include_top") {
        options.include_top = v.as_bool().ok_or_else(|| bad("include_top", "true or false", v))?;
    }
    if let Some(v) = get("weights") {
        let path = v.as_str().ok_or_else(|| bad("weights", "a file path", v))?;
        options.weights = Some(path.into());
    }
    if let Some(v) = get("pooling") {
        let pooling = v.as_str().ok_or_else(|| bad("pooling", "\"avg\" or \"max\"", v))?;
        options.pooling = Some(Pooling::from_name(pooling)?);
    }
    if let Some(v) = get("classes") {
        let classes = v.as_u64().and_then(|c| usize::try_from(c).ok());
        options.classes = classes.ok_or_else(|| bad("classes", "a positive integer", v))?;
    }
    if let Some(v) = get("classifier_activation") {
        options.classifier_activation = match v {
            Value::Null => None,
            Value::String(s) => Some(s.clone()),
            other => return Err(bad("classifier_activation", "a name", other)),
        };
    }
    if let Some(v) = get("alpha") {
        let alpha = v.as_f64().map(|a| a as f32).filter(|a| a.is_finite() && *a > 0.0);
        options.alpha = alpha.ok_or_else(|| bad("alpha", "a positive number", v))?;
    }
    if let Some(v) = get("depth_multiplier") {
        let multiplier = v.as_u64().and_then(|m| usize::try_from(m).ok()).filter(|m| *m > 0);
        options.depth_multiplier = multiplier.ok_or_else(|| bad("depth_multiplier", "a positive integer", v))?;
    }
    if let Some(v) = get("dropout") {
        let rate = v.as_f64().map(|r| r as f32).filter(|r| (0.0..1.0).contains(r));
        options.dropout = Some(rate.ok_or_else(|| bad("dropout", "a rate in [0, 1)", v))?);
    }
    if let Some(v) = get("minimalistic") {
        options.minimalistic = v.as_bool().ok_or_else(|| bad("minimalistic", "true or false", v))?;
    }
    if let Some(v) = get("include_preprocessing") {
        options.include_preprocessing = v
            .as_bool()
            .ok_or_else(|| bad("include_preprocessing", "true or false", v))?;
    }
    match options.weights {
        Some(_) => application(name, &options),
        None => architecture(name, &options),
    }
}
