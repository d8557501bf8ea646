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
use super::keras_layer::check_layer;
use super::keras_weights;
use crate::error::{Error, Result};
use crate::initializers::to_snake_case;
use crate::model::Model;
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

/// Reads a Keras 3 `.keras` archive of a `Sequential` or functional model: its layers (and
/// for a functional model, its graph: merges, shared layers, several inputs and outputs), its
/// weights and, when the model was compiled, its optimizer, losses and metrics. A layer strata
/// does not support is an error naming it; so is any corrupt or unexpected content.
pub fn import_keras(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot read ({e})")))?;
    import_keras_from(std::io::BufReader::new(file), path)
}

/// [`import_keras`] from any seekable reader, such as bytes in memory; `origin` names the
/// archive in error messages.
pub fn import_keras_from<R: Read + Seek>(reader: R, origin: impl AsRef<Path>) -> Result<Model> {
    let path = origin.as_ref();
    let fail = |reason: String| Error::file(path, reason);
    let mut archive =
        zip::ZipArchive::new(reader).map_err(|e| fail(format!("not a .keras archive: not a valid zip file ({e})")))?;
    // Both members first: a damaged archive fails its checksums before any parsing.
    let config_bytes = member(&mut archive, "config.json", MAX_CONFIG_BYTES).map_err(fail)?;
    let weights = member(&mut archive, "model.weights.h5", u64::MAX).map_err(fail)?;
    let mut root: Value =
        serde_json::from_slice(&config_bytes).map_err(|e| fail(format!("config.json is not valid JSON ({e})")))?;
    let class = root
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .to_string();
    let functional = matches!(class.as_str(), "Functional" | "Model");
    if class != "Sequential" && !functional {
        return Err(fail(format!(
            "config.json describes a '{class}' model; strata imports Model and Functional models"
        )));
    }
    let mut body = root.get_mut("config").map(Value::take).unwrap_or_default();
    if functional {
        to_inbound_references(&mut body).map_err(fail)?;
    }
    let output_names: Vec<String> = match body.get("output_layers").and_then(Value::as_array) {
        Some(refs) => refs
            .iter()
            .filter_map(|r| r.get(0).and_then(Value::as_str).map(str::to_string))
            .collect(),
        None => Vec::new(),
    };
    let compile = root
        .get("compile_config")
        .and_then(|c| compile_settings(c, &output_names));
    let entries = body
        .get("layers")
        .and_then(Value::as_array)
        .ok_or_else(|| fail("config.json has no \"layers\" list".into()))?;
    let mut layers = Vec::new();
    for entry in entries {
        layers.push(check_layer(entry).map_err(fail)?);
    }
    let shapes = if functional {
        functional_input_shapes(&body, entries).map_err(fail)?
    } else {
        vec![
            input_shape(&body, entries)
                .ok_or_else(|| fail("config.json gives no input shape (no InputLayer or build_input_shape)".into()))?,
        ]
    };

    let mut description = json!({"class_name": class, "config": body});
    if let Some(settings) = &compile {
        description["compile"] = settings.clone();
    }
    let spec = config::parse_value(&description, &format!("{} (config.json)", path.display()))?;

    let in_weights = |e: String| fail(format!("model.weights.h5: {e}"));
    let hdf5 = Hdf5File::parse(&weights).map_err(in_weights)?;
    let stored = keras_weights::read(&hdf5, &layers).map_err(in_weights)?;
    keras_weights::check_shapes(&layers, &spec.model, &shapes, &stored).map_err(in_weights)?;

    let metrics = spec.metric_lists();
    let mut model = spec.model;
    let borrowed: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    model
        .build_inputs(&borrowed)
        .map_err(|e| fail(format!("the model does not build: {e}")))?;
    keras_weights::assign(&mut model, stored).map_err(in_weights)?;
    if compile.is_some() {
        config::compile_with(&mut model, spec.optimizer, &spec.losses, &spec.loss_weights, &metrics)?;
    }
    Ok(model)
}

/// Rewrites a Keras 3 functional config in the layout strata's model files read (Keras 2's):
/// each `inbound_nodes` entry `{"args": [tensor or [tensors]], "kwargs": {}}` becomes the list
/// of the `keras_history` references `[layer, node, tensor]` found in its arguments, and
/// `input_layers` / `output_layers` of a single tensor become lists of one.
fn to_inbound_references(body: &mut Value) -> Result<(), String> {
    for key in ["input_layers", "output_layers"] {
        if let Some(refs) = body.get_mut(key)
            && refs.get(0).is_some_and(Value::is_string)
        {
            *refs = json!([refs.take()]);
        }
    }
    let Some(entries) = body.get_mut("layers").and_then(Value::as_array_mut) else {
        return Ok(());
    };
    for entry in entries {
        let name = entry
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or("(unnamed)")
            .to_string();
        let Some(nodes) = entry.get_mut("inbound_nodes").and_then(Value::as_array_mut) else {
            continue;
        };
        for node in nodes.iter_mut() {
            if node.is_array() {
                continue; // already Keras 2's layout
            }
            let mut refs = Vec::new();
            collect_history(node.get("args").unwrap_or(&Value::Null), &mut refs);
            if refs.is_empty() {
                return Err(format!(
                    "config.json: an inbound node of layer '{name}' names no input tensor"
                ));
            }
            *node = Value::Array(refs);
        }
    }
    Ok(())
}

/// The `keras_history` references of the tensors in a call's arguments, in order.
fn collect_history(value: &Value, into: &mut Vec<Value>) {
    match value {
        Value::Array(items) => items.iter().for_each(|item| collect_history(item, into)),
        Value::Object(object) if object.get("class_name").and_then(Value::as_str) == Some("__keras_tensor__") => {
            if let Some(history) = object.get("config").and_then(|c| c.get("keras_history")) {
                into.push(history.clone());
            }
        }
        _ => {}
    }
}

/// Each input's per-sample shape, in `input_layers`' order.
fn functional_input_shapes(body: &Value, entries: &[Value]) -> Result<Vec<Vec<usize>>, String> {
    let names: Vec<&str> = match body.get("input_layers").and_then(Value::as_array) {
        Some(refs) => refs.iter().filter_map(|r| r.get(0).and_then(Value::as_str)).collect(),
        None => Vec::new(),
    };
    if names.is_empty() {
        return Err("config.json: a functional model without input_layers".into());
    }
    names
        .iter()
        .map(|name| {
            let entry = entries
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| format!("config.json: input_layers names '{name}', which is not a layer"))?;
            input_shape(&Value::Null, std::slice::from_ref(entry))
                .ok_or_else(|| format!("config.json: the input layer '{name}' has no batch_shape"))
        })
        .collect()
}

/// An archive member's bytes. Its size comes from the archive, so it is checked before reading
/// and the read stops at that size, whatever the compressed stream holds.
fn member<R: Read + Seek>(archive: &mut zip::ZipArchive<R>, name: &str, limit: u64) -> Result<Vec<u8>, String> {
    let mut entry = archive
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
    (&mut entry)
        .take(size)
        .read_to_end(&mut bytes)
        .map_err(|e| format!("cannot read {name} ({e})"))?;
    if bytes.len() as u64 != size {
        return Err(format!("{name} is truncated: {} of {size} bytes", bytes.len()));
    }
    // One read past the declared size reaches the member's end, where the zip reader compares
    // its CRC-32: without it a damaged member would be read as changed weights.
    match entry.read(&mut [0u8; 1]) {
        Ok(0) => Ok(bytes),
        Ok(_) => Err(format!("{name} holds more than the {size} bytes the archive declares")),
        Err(e) => Err(format!(
            "{name} is corrupt ({e}): its CRC-32 does not match its contents"
        )),
    }
}

/// Keras's `compile_config` in the vocabulary of strata's model files, or `None` when the model
/// was not compiled with a loss. Loss objects become their name and `from_logits`; with several
/// outputs, losses (a list, or a dict by output name) and metrics become one entry per output.
fn compile_settings(compile: &Value, output_names: &[String]) -> Option<Value> {
    let losses: Vec<&Value> = match compile.get("loss")? {
        Value::Array(items) => items.iter().collect(),
        Value::Object(by_name) if !by_name.contains_key("class_name") => output_names
            .iter()
            .map(|name| by_name.get(name))
            .collect::<Option<_>>()?,
        one => vec![one],
    };
    let parsed: Vec<(String, bool)> = losses.into_iter().map(loss_setting).collect::<Option<_>>()?;
    let mut settings = match parsed.as_slice() {
        [] => return None,
        [(name, from_logits)] if output_names.len() <= 1 => {
            let mut metrics = Vec::new();
            collect_metrics(compile.get("metrics").unwrap_or(&Value::Null), &mut metrics);
            json!({"loss": name, "from_logits": from_logits, "metrics": metrics})
        }
        many => {
            let metrics: Vec<Vec<String>> = match compile.get("metrics") {
                Some(Value::Array(lists)) if lists.len() == many.len() && lists.iter().all(Value::is_array) => lists
                    .iter()
                    .map(|list| {
                        let mut names = Vec::new();
                        collect_metrics(list, &mut names);
                        names
                    })
                    .collect(),
                other => {
                    let mut names = Vec::new();
                    collect_metrics(other.unwrap_or(&Value::Null), &mut names);
                    vec![names; many.len()]
                }
            };
            let mut settings = json!({
                "loss": many.iter().map(|(n, _)| n.clone()).collect::<Vec<_>>(),
                "from_logits": many.iter().map(|(_, l)| *l).collect::<Vec<_>>(),
                "metrics": metrics,
            });
            if let Some(weights @ Value::Array(_)) = compile.get("loss_weights") {
                settings["loss_weights"] = weights.clone();
            }
            settings
        }
    };
    if let Some(optimizer) = compile.get("optimizer").filter(|o| !o.is_null()) {
        settings["optimizer"] = optimizer.clone();
    }
    Some(settings)
}

/// A loss given by name or as a loss object: its name and `from_logits`.
fn loss_setting(loss: &Value) -> Option<(String, bool)> {
    match loss {
        Value::String(name) => Some((name.clone(), false)),
        Value::Object(object) => Some((
            object.get("class_name")?.as_str()?.to_string(),
            object
                .get("config")
                .and_then(|c| c.get("from_logits"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        )),
        _ => None,
    }
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
