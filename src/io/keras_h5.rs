//! Importing legacy HDF5 Keras models: what `model.save("m.h5")` writes in tf.keras 2.x (most
//! pre-trained Keras models in the wild) and in Keras 3.
//!
//! ```no_run
//! # fn main() -> strata::Result<()> {
//! let mut model = strata::io::import_keras_h5("model.h5")?;
//! model.save("model.safetensors")?;
//! # Ok(()) }
//! ```
//!
//! The architecture is the root attribute `model_config` (the JSON of `model.to_json()`), read
//! by the same code as a `.keras` archive's config.json (Keras 2 and 3 layer configs, nested
//! models opened up, every unsupported layer named at once); the compile settings are the
//! attribute `training_config`; the weights are under `model_weights`, found by the layer and
//! weight names Keras lists in attributes (`keras_h5_weights.rs`).

use super::hdf5::Hdf5File;
use super::keras::{assemble, describe};
use super::keras_h5_weights;
use super::keras_layer::{check_keras2_meanings, check_layers, keras_major};
use crate::error::{Error, Result};
use crate::model::Model;
use serde_json::{Value, json};
use std::path::Path;

/// Whether `bytes` start like an HDF5 file (Keras's `.h5` files have no user block).
pub fn is_hdf5(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89HDF\r\n\x1a\n")
}

/// Reads a legacy Keras `.h5` model (`model.save("m.h5")`, tf.keras 2.x or Keras 3) of a
/// `Sequential` or functional model: its layers, weights and, when it was compiled, its
/// optimizer, loss and metrics. A weights-only file (`save_weights("w.h5")`) is an error saying
/// to load it with [`Model::load_weights`] into a model of the same architecture.
pub fn import_keras_h5(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let bytes = crate::fs::read_whole(path)?;
    import_keras_h5_bytes(&bytes, path)
}

/// [`import_keras_h5`] from the file's bytes; `origin` names the file in error messages.
pub fn import_keras_h5_bytes(bytes: &[u8], origin: impl AsRef<Path>) -> Result<Model> {
    let path = origin.as_ref();
    let fail = |reason: String| Error::file(path, reason);
    let hdf5 = Hdf5File::parse(bytes).map_err(|e| fail(format!("not a Keras .h5 file: {e}")))?;
    let root = hdf5.root();
    let Some(config) = one_string(&hdf5, root, "model_config").map_err(&fail)? else {
        return Err(fail(
            "holds no model_config: it holds weights only (save_weights); build the model and load them with \
             Model::load_weights"
                .into(),
        ));
    };
    let mut description: Value =
        serde_json::from_str(&config).map_err(|e| fail(format!("model_config is not valid JSON ({e})")))?;
    if let Some(training) = one_string(&hdf5, root, "training_config").map_err(&fail)? {
        let training: Value =
            serde_json::from_str(&training).map_err(|e| fail(format!("training_config is not valid JSON ({e})")))?;
        let Some(fields) = description.as_object_mut() else {
            return Err(fail("model_config is not a JSON object".into()));
        };
        fields.insert("compile_config".into(), compile_config(&training));
    }
    let described = describe(description, path)?;
    let version = one_string(&hdf5, root, "keras_version").map_err(&fail)?;
    if version.as_deref().and_then(keras_major).is_some_and(|major| major < 3) {
        check_keras2_meanings(&described.flat.entries).map_err(&fail)?;
    }
    let layers = check_layers(&described.flat.entries, &described.flat.groups).map_err(&fail)?;
    let spec = described.parse(path)?;
    let in_weights = |e: String| fail(format!("model_weights: {e}"));
    let group = hdf5
        .lookup("model_weights")
        .map_err(in_weights)?
        .ok_or_else(|| fail("has a model_config but no model_weights group".into()))?;
    let stored = keras_h5_weights::read(&hdf5, group).map_err(in_weights)?;
    let names: Vec<&str> = layers.iter().map(|l| l.name()).collect();
    let mut by_layer = keras_h5_weights::by_layer(stored, &names).map_err(in_weights)?;
    let per_layer = layers
        .iter()
        .filter(|l| l.class != "InputLayer")
        .map(|l| by_layer.remove(l.name()).unwrap_or_default())
        .collect();
    assemble(&described, &layers, spec, per_layer, path, "model_weights")
}

/// Imports a Keras file of either kind, told apart by its first bytes: a legacy `.h5` model
/// ([`import_keras_h5`]) or a `.keras` archive ([`super::import_keras`]).
pub fn import_keras_file(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let mut start = [0u8; 8];
    let read = std::fs::File::open(path).and_then(|mut f| std::io::Read::read(&mut f, &mut start));
    read.map_err(|e| Error::file(path, format!("cannot read ({e})")))?;
    match is_hdf5(&start) {
        true => import_keras_h5(path),
        false => super::import_keras(path),
    }
}

/// Metrics with tf.keras 2's metric objects (`{"class_name": "MeanMetricWrapper", "config":
/// {"name": "accuracy"}}`) given by their names, as a `.keras` archive lists them.
fn metric_names(metrics: &Value) -> Value {
    match metrics {
        Value::Array(items) => Value::Array(items.iter().map(metric_names).collect()),
        Value::Object(object) if object.get("class_name").and_then(Value::as_str) == Some("MeanMetricWrapper") => {
            object
                .get("config")
                .and_then(|c| c.get("name"))
                .cloned()
                .unwrap_or(Value::Null)
        }
        other => other.clone(),
    }
}

/// A string attribute holding one string (Keras's JSON attributes), or `None` without it.
fn one_string(hdf5: &Hdf5File, object: u64, name: &str) -> Result<Option<String>, String> {
    match hdf5.attribute_strings(object, name)? {
        None => Ok(None),
        Some(mut strings) if strings.len() == 1 => Ok(strings.pop()),
        Some(strings) => Err(format!(
            "the attribute '{name}' holds {} strings, not one",
            strings.len()
        )),
    }
}

/// A legacy file's `training_config` (`loss`, `metrics`, `loss_weights`, `optimizer_config`)
/// in the layout of a `.keras` archive's `compile_config`. tf.keras 2.11+ names its optimizers
/// `Custom>Adam`; the prefix is dropped.
fn compile_config(training: &Value) -> Value {
    let mut optimizer = training.get("optimizer_config").cloned().unwrap_or(Value::Null);
    if let Some(class) = optimizer.get("class_name").and_then(Value::as_str) {
        let class = class.strip_prefix("Custom>").unwrap_or(class).to_string();
        optimizer["class_name"] = json!(class);
    }
    let field = |key: &str| training.get(key).cloned().unwrap_or(Value::Null);
    json!({
        "optimizer": optimizer,
        "loss": field("loss"),
        "metrics": metric_names(&field("metrics")),
        "loss_weights": field("loss_weights"),
    })
}
