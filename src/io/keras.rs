//! Importing Keras 3 `.keras` archives: a zip of `config.json` (the model's `get_config()`,
//! plus `compile_config`), `metadata.json` and `model.weights.h5` (the weights, in HDF5).
//!
//! ```no_run
//! # fn main() -> strata::Result<()> {
//! let mut model = strata::io::import_keras("model.keras")?;
//! model.save("model.safetensors")?;
//! # Ok(()) }
//! ```
//!
//! How the weights map onto strata's layers: see `keras_weights.rs` and docs/FORMAT.md.

use super::config;
use super::hdf5::Hdf5File;
use super::keras_weights;
use crate::error::{Error, Result};
use crate::initializers::to_snake_case;
use crate::layers::LAYER_NAMES;
use crate::model::Sequential;
use serde_json::{Value, json};
use std::io::{Read, Seek};
use std::path::Path;

/// Largest `config.json` read: a model's description, never near this.
const MAX_CONFIG_BYTES: u64 = 64 << 20;
/// An archive member may expand to this size whatever its compressed size...
const MAX_SMALL_MEMBER_BYTES: u64 = 256 << 20;
/// ...and beyond it to at most this many times its compressed size (Keras's own zip-bomb rule).
const MAX_EXPANSION: u64 = 100;
/// Metric names strata computes; others in the archive's compile config are dropped.
const KNOWN_METRICS: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
];

/// Reads a Keras 3 `.keras` archive of a `Sequential` model: its layers, its weights and, when
/// the model was compiled, its optimizer, loss and metrics. A layer strata does not support is
/// an error naming it; so is any corrupt or unexpected content of the archive.
pub fn import_keras(path: impl AsRef<Path>) -> Result<Sequential> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot read ({e})")))?;
    import_keras_from(std::io::BufReader::new(file), path)
}

/// [`import_keras`] from any seekable reader, such as bytes in memory; `origin` names the
/// archive in error messages.
pub fn import_keras_from<R: Read + Seek>(reader: R, origin: impl AsRef<Path>) -> Result<Sequential> {
    let path = origin.as_ref();
    let fail = |reason: String| Error::file(path, reason);
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| fail(format!("not a .keras archive: not a valid zip file ({e})")))?;
    // Both members first: a damaged archive fails its checksums before any parsing.
    let config_bytes = member(&mut archive, "config.json", MAX_CONFIG_BYTES).map_err(fail)?;
    let weights = member(&mut archive, "model.weights.h5", u64::MAX).map_err(fail)?;
    let mut root: Value =
        serde_json::from_slice(&config_bytes).map_err(|e| fail(format!("config.json is not valid JSON ({e})")))?;
    let class = root.get("class_name").and_then(Value::as_str).unwrap_or("(none)");
    if class != "Sequential" {
        return Err(fail(format!(
            "config.json describes a '{class}' model; strata imports Sequential models"
        )));
    }
    let compile = root.get("compile_config").and_then(compile_settings);
    let body = root.get_mut("config").map(Value::take).unwrap_or_default();
    let entries = body
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("config.json has no \"layers\" list".into()))?;
    let mut layers = Vec::new();
    for entry in entries {
        layers.push(check_layer(entry).map_err(fail)?);
    }
    let shape = input_shape(&body, entries)
        .ok_or_else(|| fail("config.json gives no input shape (no InputLayer or build_input_shape)".into()))?;

    let in_weights = |e: String| fail(format!("model.weights.h5: {e}"));
    let hdf5 = Hdf5File::parse(&weights).map_err(in_weights)?;
    let stored = keras_weights::read(&hdf5, &layers).map_err(in_weights)?;
    keras_weights::check_shapes(&layers, &shape, &stored).map_err(in_weights)?;

    let mut description = json!({"class_name": "Sequential", "config": body});
    if let Some(settings) = &compile {
        description["compile"] = settings.clone();
    }
    let spec = config::parse_value(&description, &format!("{} (config.json)", path.display()))?;
    let mut model = spec.model;
    model
        .build(&shape)
        .map_err(|e| fail(format!("the model does not build: {e}")))?;
    keras_weights::assign(&mut model, stored).map_err(in_weights)?;
    if compile.is_some() {
        let metrics: Vec<&str> = spec.metrics.iter().map(String::as_str).collect();
        model.compile(spec.optimizer, spec.loss, &metrics)?;
    }
    Ok(model)
}

/// A layer of the archive: its Keras class and config.
pub(super) struct KerasLayer<'a> {
    /// The Keras class name, e.g. `Conv2D`.
    pub class: &'a str,
    /// Its `config` object.
    pub config: &'a Value,
}

/// An archive member's bytes. Its size comes from the archive, so it is checked before reading
/// and the read stops at that size, whatever the compressed stream holds.
fn member<R: Read + Seek>(archive: &mut zip::ZipArchive<R>, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let entry = archive
        .by_name(name)
        .map_err(|e| format!("not a .keras archive: no {name} ({e})"))?;
    let size = entry.size();
    let bound = MAX_SMALL_MEMBER_BYTES.max(entry.compressed_size().saturating_mul(MAX_EXPANSION));
    if size > limit.min(bound) {
        return Err(format!(
            "{name} claims {size} bytes from {} compressed; refusing it as corrupt or a zip bomb",
            entry.compressed_size()
        ));
    }
    let mut bytes = Vec::new();
    entry
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name} ({e})"))?;
    if bytes.len() as u64 != size {
        return Err(format!("{name} is truncated: {} of {size} bytes", bytes.len()));
    }
    Ok(bytes)
}

/// The layer, once it is known to be one strata imports with Keras's meaning.
fn check_layer(entry: &Value) -> Result<KerasLayer<'_>, String> {
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

/// Keras's `compile_config` in the vocabulary of strata's model files, or `None` when the model
/// was not compiled with a loss. Loss objects become their name and `from_logits`.
fn compile_settings(compile: &Value) -> Option<Value> {
    let mut loss = compile.get("loss")?;
    if let Value::Array(items) = loss {
        loss = items.first()?;
    }
    let (name, from_logits) = match loss {
        Value::String(name) => (name.clone(), false),
        Value::Object(object) => (
            object.get("class_name")?.as_str()?.to_string(),
            object
                .get("config")
                .and_then(|c| c.get("from_logits"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        ),
        _ => return None,
    };
    let mut metrics = Vec::new();
    collect_metrics(compile.get("metrics").unwrap_or(&Value::Null), &mut metrics);
    let mut settings = json!({"loss": name, "from_logits": from_logits, "metrics": metrics});
    if let Some(optimizer) = compile.get("optimizer").filter(|o| !o.is_null()) {
        settings["optimizer"] = optimizer.clone();
    }
    Some(settings)
}

/// Metric names strata knows, from names, metric objects and (nested) lists of them.
fn collect_metrics(value: &Value, into: &mut Vec<String>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect_metrics(item, into)),
        Value::String(name) => into.push(name.clone()),
        Value::Object(object) => {
            if let Some(class) = object.get("class_name").and_then(Value::as_str) {
                into.push(to_snake_case(class));
            }
        }
        _ => {}
    }
    into.retain(|m| KNOWN_METRICS.contains(&m.as_str()));
}

/// The per-sample input shape: the InputLayer's, else the model's `build_input_shape`.
fn input_shape(body: &Value, entries: &[Value]) -> Option<Vec<usize>> {
    let first = entries.first()?.get("config")?;
    let batch_shape = first
        .get("batch_shape")
        .or_else(|| first.get("batch_input_shape"))
        .or_else(|| body.get("build_input_shape"))?
        .as_array()?;
    batch_shape
        .get(1..)?
        .iter()
        .map(|d| d.as_u64().filter(|&d| d > 0).and_then(|d| usize::try_from(d).ok()))
        .collect()
}
