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
use super::hdf5::{Dataset, Hdf5File};
use super::keras_layer::{KerasLayer, check_keras2_meanings, check_layers, drop_inert_unknown_keys, keras_major};
use super::keras_nested::{self, FlatLayers};
use super::keras_references::{OUTPUT_KEYS, to_inbound_references};
use super::keras_tf_ops;
use super::keras_weights;
use super::{keras_ops, keras_ops_layers};
use crate::error::{Error, Result};
use crate::initializers::to_snake_case;
use crate::model::{Model, NestedModel};
use serde_json::{Value, json};
use std::collections::HashMap;
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
    let root: Value =
        serde_json::from_slice(&config_bytes).map_err(|e| fail(format!("config.json is not valid JSON ({e})")))?;
    let described = describe(root, path)?;
    // Keras 2.13+ writes `.keras` archives too; which Keras did is in metadata.json.
    let metadata: Option<Value> = member(&mut archive, "metadata.json", MAX_CONFIG_BYTES)
        .ok()
        .and_then(|bytes| serde_json::from_slice(&bytes).ok());
    let version = metadata
        .as_ref()
        .and_then(|m| m.get("keras_version"))
        .and_then(Value::as_str);
    if version.and_then(keras_major).is_some_and(|major| major < 3) {
        check_keras2_meanings(&described.flat.entries).map_err(fail)?;
    }
    let layers = check_layers(&described.flat.entries, &described.flat.groups).map_err(fail)?;
    let spec = described.parse(path)?;

    let in_weights = |e: String| fail(format!("model.weights.h5: {e}"));
    let hdf5 = Hdf5File::parse(&weights).map_err(in_weights)?;
    let stored = keras_weights::read(&hdf5, &layers).map_err(in_weights)?;
    assemble(&described, &layers, spec, stored, path, "model.weights.h5")
}

/// Loads the weights of the `.keras` archive `bytes` (read from `path`) into the built `model`,
/// as Keras's `model.load_weights("m.keras")` does: its `model.weights.h5`, by position.
pub(super) fn load_archive_weights(model: &mut Model, bytes: Vec<u8>, path: &Path) -> Result<()> {
    let fail = |reason: String| Error::file(path, reason);
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes))
        .map_err(|e| fail(format!("not a .keras archive: not a valid zip file ({e})")))?;
    let weights = member(&mut archive, "model.weights.h5", u64::MAX).map_err(fail)?;
    let hdf5 = Hdf5File::parse(&weights).map_err(|e| fail(format!("model.weights.h5: {e}")))?;
    super::keras_weights_file::load_into(model, &hdf5, path)
}

/// The model of `described` with its `stored` weights (one list per non-input layer, in
/// Keras's order): each layer checked against its weights before it is built, then built,
/// filled and, when the file was compiled, compiled. `weights_file` names where the weights
/// came from in errors.
pub(super) fn assemble(
    described: &Described,
    layers: &[KerasLayer],
    spec: config::ModelFile,
    stored: Vec<Vec<Dataset>>,
    path: &Path,
    weights_file: &str,
) -> Result<Model> {
    let fail = |reason: String| Error::file(path, reason);
    let in_weights = |e: String| fail(format!("{weights_file}: {e}"));
    let shapes = stand_in_shapes(&spec.model, &described.shapes);
    keras_weights::check_shapes(layers, &spec.model, &shapes, &stored).map_err(in_weights)?;
    let metrics = spec.metric_lists();
    let mut model = spec.model;
    let borrowed: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
    model
        .build_inputs(&borrowed)
        .map_err(|e| fail(format!("the model does not build: {}", e.reason())))?;
    check_operation_masks(&model, &described.flat.entries).map_err(fail)?;
    keras_weights::assign(&mut model, stored).map_err(in_weights)?;
    if described.compile.is_some() {
        config::compile_with(&mut model, spec.optimizer, &spec.losses, &spec.loss_weights, &metrics)?;
    }
    Ok(model)
}

/// Refuses the layers rewritten from Keras operations (`keras_ops_layers.rs`, `Rescaling`
/// aside) that read a masked tensor: Keras's operations drop a mask, where those layers would
/// pass it on or (pooling) read it, and so compute something else.
fn check_operation_masks(model: &Model, entries: &[Value]) -> Result<(), String> {
    let from_operation: HashMap<&str, &str> = entries
        .iter()
        .filter_map(|entry| {
            let operation = entry.get(keras_ops_layers::FROM_OPERATION)?.as_str()?;
            let keeps_masks = entry.get("class_name")?.as_str()? != "Rescaling";
            keeps_masks.then_some((entry.get("name")?.as_str()?, operation))
        })
        .collect();
    if from_operation.is_empty() {
        return Ok(());
    }
    let masks = model.call_output_masks().map_err(|e| e.reason())?;
    let mut refused: Vec<String> = model
        .graph_calls()
        .iter()
        .filter_map(|call| {
            let layer = &model.layers()[call.layer];
            let operation = from_operation.get(layer.name())?;
            let masked = model.input_masks(call, &masks).iter().any(Option::is_some);
            masked.then(|| format!("'{}' ({operation})", layer.name()))
        })
        .collect();
    refused.dedup();
    match refused.is_empty() {
        true => Ok(()),
        false => Err(format!(
            "operations on masked sequences cannot be imported: {} (Keras's operations drop the mask, \
             strata's layers would keep it; apply them before the mask is made, or use Keras layers)",
            refused.join(", ")
        )),
    }
}

/// A size an input leaves open (Keras's `None`) in [`Described::shapes`].
const OPEN: usize = 0;
/// Sizes tried in turn for an open size when building an imported model: a short sequence,
/// an ImageNet image's side, a long sequence.
const OPEN_SIZE_STAND_INS: [usize; 3] = [64, 224, 1024];

/// `shapes` with their [`OPEN`] sizes set to the first stand-in `model`'s layers take (the
/// first one when none is: building then names what fails). Sizes a file leaves open
/// (`keras.Input(shape=(None,))`) do not change the weights, as Keras builds them without: the
/// model is built for a stand-in and planned again for the data's sizes when it meets them.
fn stand_in_shapes(model: &Model, shapes: &[Vec<usize>]) -> Vec<Vec<usize>> {
    if !shapes.iter().flatten().any(|&d| d == OPEN) {
        return shapes.to_vec();
    }
    let taken = |candidate: &Vec<Vec<usize>>| {
        let borrowed: Vec<&[usize]> = candidate.iter().map(Vec::as_slice).collect();
        model.plan(&borrowed).is_ok()
    };
    OPEN_SIZE_STAND_INS
        .iter()
        .map(|&size| with_open_sizes(shapes, size))
        .find(taken)
        .unwrap_or_else(|| with_open_sizes(shapes, OPEN_SIZE_STAND_INS[0]))
}

/// `shapes` with each [`OPEN`] size replaced by `stand_in`.
fn with_open_sizes(shapes: &[Vec<usize>], stand_in: usize) -> Vec<Vec<usize>> {
    shapes
        .iter()
        .map(|shape| shape.iter().map(|&d| if d == OPEN { stand_in } else { d }).collect())
        .collect()
}

/// The architecture a Keras `config.json` describes (what `.keras` archives hold, or
/// `keras.saving.serialize_keras_object(model)`), without weights and not built: for checking
/// that strata can import an architecture (its layers, shapes and parameter counts, which
/// `count_params` and `summary` give without making the weights) before any weights exist.
/// Nested models are opened up as [`import_keras`] opens them; an unsupported layer is an error
/// naming every one of them.
pub fn keras_model_from_config(config: &Value) -> Result<Model> {
    let origin = Path::new("config.json");
    let described = describe(config.clone(), origin)?;
    check_layers(&described.flat.entries, &described.flat.groups).map_err(|e| Error::file(origin, e))?;
    Ok(described.parse(origin)?.model)
}

/// What an archive's config.json describes, read for import.
pub(super) struct Described {
    /// The model's class, `Sequential` or `Functional` (a `Sequential` holding nested models
    /// becomes the functional model it is).
    pub class: String,
    /// Its config, in the layout strata's model files read.
    pub body: Value,
    /// Its layers, nested models opened up, and where their weights are.
    pub flat: FlatLayers,
    /// Each input's per-sample shape, [`OPEN`] where Keras's is `None`.
    pub shapes: Vec<Vec<usize>>,
    /// The compile settings, when the model was compiled with a loss.
    pub compile: Option<Value>,
}

impl Described {
    /// The model file this describes (its layers and graph; compile settings).
    pub(super) fn parse(&self, origin: &Path) -> Result<config::ModelFile> {
        let mut description = json!({"class_name": self.class, "config": self.body});
        if let Some(settings) = &self.compile {
            description["compile"] = settings.clone();
        }
        config::parse_value(
            &description,
            &format!("{} ({})", origin.display(), config_source(origin)),
        )
    }
}

/// Where a Keras file keeps its architecture, as errors name it: a `.keras` archive's
/// `config.json`, or a legacy HDF5 file's `model_config` attribute.
fn config_source(path: &Path) -> &'static str {
    match path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        Some("h5" | "hdf5") => "its model_config attribute",
        _ => "config.json",
    }
}

/// Reads config.json's model: its class, graph (in Keras 2's layout), layers (nested models
/// opened up), input shapes and compile settings.
pub(super) fn describe(mut root: Value, path: &Path) -> Result<Described> {
    let source = config_source(path);
    let fail = |reason: String| Error::file(path, reason);
    let fail_in = |reason: String| Error::file(path, format!("{source}: {reason}"));
    let mut class = root
        .get("class_name")
        .and_then(Value::as_str)
        .unwrap_or("(none)")
        .to_string();
    let functional = matches!(class.as_str(), "Functional" | "Model");
    if class != "Sequential" && !functional {
        return Err(fail(format!(
            "{source} describes a '{class}' model; strata imports Sequential and Functional models"
        )));
    }
    let mut body = root.get_mut("config").map(Value::take).unwrap_or_default();
    let mut warnings = Vec::new();
    if functional {
        keras_ops::without_mask_operations(&mut body);
        keras_ops_layers::as_layers(&mut body);
        warnings = to_inbound_references(&mut body).map_err(fail_in)?;
        keras_tf_ops::as_layers(&mut body);
    }
    if body.get("layers").and_then(Value::as_array).is_none() {
        return Err(fail(format!("{source} has no \"layers\" list")));
    }
    let mut flat = keras_nested::flatten(&mut body, functional).map_err(fail)?;
    let dropped = drop_inert_unknown_keys(&mut flat.entries);
    if !dropped.is_empty() {
        // The model is parsed from `body`, whose layers are the flat entries.
        body["layers"] = Value::Array(flat.entries.clone());
    }
    for warning in warnings.iter().chain(&flat.warnings).chain(&dropped) {
        eprintln!("warning: {}: {warning}", path.display());
    }
    if !flat.nested.is_empty() {
        // Kept with the model, so that the nested models can be found by their names.
        body["nested_models"] = flat.nested.iter().map(NestedModel::to_json).collect();
    }
    if body.get("input_layers").is_some() {
        class = "Functional".into();
    }
    // Outputs given to Keras as a dict are named by their keys in `compile`'s dicts, others by
    // their layers.
    let output_keys = body.as_object_mut().and_then(|fields| fields.remove(OUTPUT_KEYS));
    let output_names: Vec<String> = match (output_keys, body.get("output_layers").and_then(Value::as_array)) {
        (Some(Value::Array(keys)), _) => keys.iter().filter_map(|k| k.as_str().map(str::to_string)).collect(),
        (_, Some(refs)) => refs
            .iter()
            .filter_map(|r| r.get(0).and_then(Value::as_str).map(str::to_string))
            .collect(),
        _ => Vec::new(),
    };
    let compile = root
        .get("compile_config")
        .and_then(|c| compile_settings(c, &output_names));
    if let Some(settings) = root.get("compile_config").filter(|_| compile.is_some()) {
        for warning in compile_warnings(settings) {
            eprintln!("warning: {}: {warning}", path.display());
        }
    }
    let shapes = if class == "Functional" {
        functional_input_shapes(&body, &flat.entries).map_err(fail_in)?
    } else {
        vec![input_shape(&body, &flat.entries).ok_or_else(|| {
            fail(format!(
                "{source} gives no input shape (no InputLayer or build_input_shape)"
            ))
        })?]
    };
    Ok(Described {
        class,
        body,
        flat,
        shapes,
        compile,
    })
}

/// Each input's per-sample shape, in `input_layers`' order.
fn functional_input_shapes(body: &Value, entries: &[Value]) -> Result<Vec<Vec<usize>>, String> {
    let names: Vec<&str> = match body.get("input_layers").and_then(Value::as_array) {
        Some(refs) => refs.iter().filter_map(|r| r.get(0).and_then(Value::as_str)).collect(),
        None => Vec::new(),
    };
    if names.is_empty() {
        return Err("a functional model without input_layers".into());
    }
    names
        .iter()
        .map(|name| {
            let entry = entries
                .iter()
                .find(|e| e.get("name").and_then(Value::as_str) == Some(name))
                .ok_or_else(|| format!("input_layers names '{name}', which is not a layer"))?;
            input_shape(&Value::Null, std::slice::from_ref(entry))
                .ok_or_else(|| format!("the input layer '{name}' has no batch_shape"))
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
/// was not compiled with a loss. Loss objects become their name, `from_logits` and (where not 0)
/// `label_smoothing`; with several outputs, losses (a list, or a dict by output name) and metrics
/// become one entry per output.
fn compile_settings(compile: &Value, output_names: &[String]) -> Option<Value> {
    let losses: Vec<&Value> = match compile.get("loss")? {
        Value::Array(items) => items.iter().collect(),
        Value::Object(by_name) if !by_name.contains_key("class_name") => output_names
            .iter()
            .map(|name| by_name.get(name))
            .collect::<Option<_>>()?,
        one => vec![one],
    };
    let parsed: Vec<(String, bool, f64)> = losses.into_iter().map(loss_setting).collect::<Option<_>>()?;
    let mut settings = match parsed.as_slice() {
        [] => return None,
        [(name, from_logits, _)] if output_names.len() <= 1 => {
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
                "loss": many.iter().map(|(n, ..)| n.clone()).collect::<Vec<_>>(),
                "from_logits": many.iter().map(|(_, l, _)| *l).collect::<Vec<_>>(),
                "metrics": metrics,
            });
            if let Some(weights @ Value::Array(_)) = compile.get("loss_weights") {
                settings["loss_weights"] = weights.clone();
            }
            settings
        }
    };
    if parsed.iter().any(|&(_, _, smoothing)| smoothing != 0.0) {
        settings["label_smoothing"] = match parsed.as_slice() {
            [(_, _, one)] if output_names.len() <= 1 => json!(one),
            many => json!(many.iter().map(|&(_, _, s)| s).collect::<Vec<_>>()),
        };
    }
    if let Some(optimizer) = compile.get("optimizer").filter(|o| !o.is_null()) {
        settings["optimizer"] = loss_scale_inner(optimizer).unwrap_or(optimizer).clone();
    }
    Some(settings)
}

/// The optimizer a mixed-precision `LossScaleOptimizer` wraps (its `inner_optimizer`).
fn loss_scale_inner(optimizer: &Value) -> Option<&Value> {
    if optimizer.get("class_name").and_then(Value::as_str) != Some("LossScaleOptimizer") {
        return None;
    }
    optimizer.get("config")?.get("inner_optimizer")
}

/// What importing `compile` leaves out, said as a warning: loss scaling (strata computes in
/// float32, where it changes nothing).
fn compile_warnings(compile: &Value) -> Vec<String> {
    let mut warnings = Vec::new();
    if let Some(inner) = compile.get("optimizer").and_then(loss_scale_inner) {
        let class = inner.get("class_name").and_then(Value::as_str).unwrap_or("(unknown)");
        warnings.push(format!(
            "the optimizer is mixed precision's LossScaleOptimizer around {class}: strata trains with {class} \
             alone, since it computes in float32, where loss scaling changes nothing"
        ));
    }
    warnings
}

/// A loss given by name or as a loss object: its name, `from_logits` and `label_smoothing`.
fn loss_setting(loss: &Value) -> Option<(String, bool, f64)> {
    match loss {
        Value::String(name) => Some((name.clone(), false, 0.0)),
        Value::Object(object) => {
            let config = object.get("config");
            let setting = |key: &str| config.and_then(|c| c.get(key));
            Some((
                object.get("class_name")?.as_str()?.to_string(),
                setting("from_logits").and_then(Value::as_bool).unwrap_or(false),
                setting("label_smoothing").and_then(Value::as_f64).unwrap_or(0.0),
            ))
        }
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
        .map(|d| match d {
            Value::Null => Some(OPEN),
            d => d.as_u64().filter(|&d| d > 0).and_then(|d| usize::try_from(d).ok()),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_loss_scale_optimizer_is_unwrapped_with_a_warning() {
        let compile = json!({
            "loss": "mse",
            "optimizer": {"class_name": "LossScaleOptimizer", "config": {
                "inner_optimizer": {"class_name": "Adam", "config": {"learning_rate": 0.01}},
                "initial_scale": 32768.0}},
        });
        let settings = compile_settings(&compile, &[]).unwrap();
        assert_eq!(settings["optimizer"]["class_name"], "Adam", "{settings}");
        let warnings = compile_warnings(&compile);
        assert!(warnings[0].contains("LossScaleOptimizer around Adam"), "{warnings:?}");
    }

    #[test]
    fn label_smoothing_is_carried_over() {
        let loss = |smoothing: f64| {
            json!({"loss": {"class_name": "CategoricalCrossentropy",
                            "config": {"from_logits": false, "label_smoothing": smoothing}}})
        };
        let settings = compile_settings(&loss(0.2), &[]).unwrap();
        assert_eq!(settings["label_smoothing"], 0.2, "{settings}");
        assert!(compile_warnings(&loss(0.2)).is_empty());
        let plain = compile_settings(&loss(0.0), &[]).unwrap();
        assert!(plain.get("label_smoothing").is_none(), "{plain}");
    }
}
