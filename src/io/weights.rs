//! Model files: the weights as safetensors tensors named by layer (`dense/kernel`,
//! `conv2d/bias`, in Keras's layouts), and in the header's metadata the architecture (Keras's
//! `to_json` vocabulary), the compile settings and the per-sample input shape. Any safetensors
//! reader (the Python `safetensors` package, PyTorch, numpy) can open the weights.
//!
//! ```no_run
//! # fn main() -> strata::Result<()> {
//! # let mut model = strata::model::Sequential::new();
//! model.save("mnist.safetensors")?;
//! let mut restored = strata::load_model("mnist.safetensors")?;
//! # Ok(()) }
//! ```

use super::config;
use crate::autograd::{ActivationScale, QuantizedKernel, ScaleAxis};
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::model::Model;
use crate::tensor::Tensor;
use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::path::Path;

/// Metadata key of the format marker.
const FORMAT_KEY: &str = "format";
/// Its value.
const FORMAT: &str = "strata";
/// Metadata keys of attachments (`Model::set_attachment`) start with this.
const ATTACHMENT_PREFIX: &str = "attachment/";
/// Names of optimizer-state tensors start with this (`optimizer/first/dense/kernel`).
const OPTIMIZER_PREFIX: &str = "optimizer/";
/// Metadata key of the class name of the optimizer whose state the file holds.
const OPTIMIZER_STATE_KEY: &str = "optimizer_state";
/// Metadata key of a quantized model's int8 weights: a JSON object from each int8 weight's
/// name to its scale axis (`columns`, `rows`) and activation scaling (`per_row`, `per_tensor`).
const QUANTIZATION_KEY: &str = "quantization";
/// An int8 weight's scales are stored beside it under its name plus this (Keras's
/// `kernel_scale`, `embeddings_scale`).
const SCALE_SUFFIX: &str = "_scale";
/// The largest epoch and batch counters a file may hold: far beyond any run, far below where
/// `counter + epochs` could wrap.
const MAX_COUNTER: u64 = u32::MAX as u64;
/// The largest step count: Adam's bias correction raises β to the power `iterations + 1` as
/// an `i32`.
const MAX_ITERATIONS: u64 = i32::MAX as u64 - 1;

impl Model {
    /// Saves architecture, compile settings and weights to one file, atomically: strata's
    /// safetensors file (which also keeps the optimizer's state, the epochs trained and
    /// attachments), or for a path ending in `.keras` the archive Keras 3 writes
    /// ([`Model::save_keras`]), for `.h5` / `.hdf5` Keras's legacy HDF5 file
    /// ([`Model::save_keras_h5`]); `keras.models.load_model` reads either. A path ending in
    /// `.onnx` gets the ONNX file [`Model::save_onnx`] writes.
    pub fn save(&self, path: impl AsRef<Path>) -> Result<()> {
        if path
            .as_ref()
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"))
        {
            return self.save_onnx(path);
        }
        match super::keras_save::KerasFormat::of(path.as_ref()) {
            Some(super::keras_save::KerasFormat::Archive) => return self.save_keras(path),
            Some(super::keras_save::KerasFormat::Legacy) => return self.save_keras_h5(path),
            None => {}
        }
        let shape = self.input_shape().ok_or_else(|| {
            Error::Usage(
                "the model has no weights yet: build it (compile with an Input, fit or predict) before saving".into(),
            )
        })?;
        let mut metadata = HashMap::new();
        metadata.insert(FORMAT_KEY.to_string(), FORMAT.to_string());
        metadata.insert("strata_version".to_string(), env!("CARGO_PKG_VERSION").to_string());
        metadata.insert("architecture".to_string(), self.config().to_string());
        metadata.insert("input_shape".to_string(), json!(shape).to_string());
        if self.input_count() > 1 {
            metadata.insert("input_shapes".to_string(), json!(self.input_shapes()).to_string());
        }
        if let Some(compile) = self.compile_config() {
            metadata.insert("compile".to_string(), compile.to_string());
        }
        // Training state, so `fit(.., initial_epoch)` after loading continues exactly.
        metadata.insert("epoch".to_string(), self.epochs_trained().to_string());
        metadata.insert("batches_into_epoch".to_string(), self.batches_into_epoch().to_string());
        metadata.insert("seed".to_string(), self.seed_value().to_string());
        for (key, value) in self.attachments() {
            metadata.insert(format!("{ATTACHMENT_PREFIX}{key}"), value.clone());
        }
        let slots = self.optimizer().map(|o| o.slots().clone()).unwrap_or_default();
        metadata.insert("optimizer_iterations".to_string(), slots.iterations().to_string());
        let mut extra = Vec::new();
        // A quantized model cannot be trained, so its optimizer state would only fill the file.
        if slots.first().len() == self.params().len() && !self.is_quantized() {
            // Which optimizer's slots these are, so a load under edited compile settings does
            // not feed them to another optimizer.
            if let Some(optimizer) = self.optimizer() {
                metadata.insert(OPTIMIZER_STATE_KEY.to_string(), optimizer.class_name().to_string());
            }
            // A frozen weight has no slots (and none is written), as Keras saves optimizer
            // variables for trainable weights only.
            for id in self.params().ids().filter(|&id| !slots.first()[id.index()].is_empty()) {
                let (name, shape) = (self.params().name(id), self.params().value(id).shape());
                extra.push((
                    format!("{OPTIMIZER_PREFIX}first/{name}"),
                    shape.to_vec(),
                    slots.first()[id.index()].clone(),
                ));
                extra.push((
                    format!("{OPTIMIZER_PREFIX}second/{name}"),
                    shape.to_vec(),
                    slots.second()[id.index()].clone(),
                ));
            }
        }
        write_atomic(path, &serialize(self, metadata, extra)?)
    }

    /// Saves only the weights (no architecture), atomically.
    pub fn save_weights(&self, path: impl AsRef<Path>) -> Result<()> {
        let mut metadata = HashMap::new();
        metadata.insert(FORMAT_KEY.to_string(), FORMAT.to_string());
        write_atomic(path, &serialize(self, metadata, Vec::new())?)
    }

    /// Loads weights saved by [`Model::save_weights`] or [`Model::save`] into this
    /// (built) model. Every weight must be present with the same shape; extra tensors are an
    /// error too, so a file of another model is never half-loaded.
    ///
    /// Keras's files load too, as Keras's `load_weights` reads them: Keras 3's
    /// `save_weights("x.weights.h5")` and `.keras` archives by position (the `k`-th layer of each class in Keras's
    /// layer order, whatever its name); a legacy HDF5 file (`save_weights("w.h5")`, the
    /// `weights="imagenet"` files under `~/.keras/models/`, or `model.save("m.h5")`) by name
    /// when every stored layer has a namesake here, else layers with weights in Keras's order.
    /// An error names the first weight that is missing or of another shape.
    pub fn load_weights(&mut self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let bytes = crate::fs::read_whole(path)?;
        if super::keras_h5::is_hdf5(&bytes) {
            return super::keras_h5_weights::load_into(self, &bytes, path);
        }
        if bytes.starts_with(b"PK\x03\x04") {
            return super::keras::load_archive_weights(self, bytes, path);
        }
        let file = SafeTensors::deserialize(&bytes)
            .map_err(|e| Error::file(path, format!("not a valid safetensors file ({e})")))?;
        let quantization = read_quantization(path, &bytes)?;
        let mut loaded = Vec::new();
        let mut scale_tensors = 0;
        for id in self.params().ids() {
            let name = self.params().name(id).to_string();
            let view = file.tensor(&name).map_err(|_| {
                Error::file(
                    path,
                    format!("has no weight '{name}'; it holds: {}", some_names(file.names())),
                )
            })?;
            let weight = if view.dtype() == Dtype::I8 {
                scale_tensors += 1;
                Loaded::Int8(to_quantized(path, &name, &view, &file, &quantization)?)
            } else {
                Loaded::Float(to_tensor(path, &name, &view)?)
            };
            let shape = match &weight {
                Loaded::Float(tensor) => tensor.shape(),
                Loaded::Int8(kernel) => kernel.shape(),
            };
            let expected = self.params().value(id).shape();
            if shape != expected {
                return Err(Error::file(
                    path,
                    format!("weight '{name}' has shape {shape:?}, the model expects {expected:?}"),
                ));
            }
            loaded.push((id, weight));
        }
        let weights_in_file = file
            .names()
            .into_iter()
            .filter(|n| !n.starts_with(OPTIMIZER_PREFIX))
            .count();
        if weights_in_file != loaded.len() + scale_tensors {
            let known: Vec<String> = self
                .params()
                .ids()
                .map(|id| self.params().name(id).to_string())
                .collect();
            let extra: Vec<&str> = file
                .names()
                .into_iter()
                .filter(|n| !n.starts_with(OPTIMIZER_PREFIX) && !known.iter().any(|k| k == n))
                .filter(|n| {
                    let weight = n.strip_suffix(SCALE_SUFFIX);
                    !weight.is_some_and(|w| quantization.contains_key(w) && known.iter().any(|k| k == w))
                })
                .collect();
            return Err(Error::file(
                path,
                format!("holds weights this model does not have: {}", some_names(extra)),
            ));
        }
        for (id, weight) in loaded {
            match weight {
                Loaded::Float(tensor) => {
                    *self.params_mut().value_mut(id) = tensor;
                    self.params_mut().clear_quantized(id);
                }
                Loaded::Int8(kernel) => self.params_mut().set_quantized(id, kernel),
            }
        }
        Ok(())
    }
}

/// Weight names for an error message, sorted: the first few and how many more (a file of a
/// large model holds hundreds, which would bury the message).
fn some_names<S: AsRef<str>>(names: Vec<S>) -> String {
    const SHOWN: usize = 12;
    let mut names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    names.sort_unstable();
    let more = names.len().saturating_sub(SHOWN);
    let listed = names[..names.len().min(SHOWN)].join(", ");
    match more {
        0 => listed,
        n => format!("{listed} and {n} more"),
    }
}

/// One weight read from a file: `f32`, or int8 with its scales.
enum Loaded {
    Float(Tensor),
    Int8(QuantizedKernel),
}

/// A quantized file's [`QUANTIZATION_KEY`] entries: weight name → (scale axis, activation
/// scaling). Empty for an `f32` file.
fn read_quantization(path: &Path, bytes: &[u8]) -> Result<HashMap<String, Int8Entry>> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file ({e})")))?;
    let Some(text) = header.metadata().as_ref().and_then(|m| m.get(QUANTIZATION_KEY)) else {
        return Ok(HashMap::new());
    };
    let bad = |why: String| Error::file(path, format!("metadata '{QUANTIZATION_KEY}' {why}"));
    let entries: HashMap<String, HashMap<String, String>> =
        serde_json::from_str(text).map_err(|e| bad(format!("is not an object of weights ({e})")))?;
    entries
        .into_iter()
        .map(|(name, entry)| {
            let axis = entry.get("axis").map(String::as_str);
            let axis = axis.and_then(ScaleAxis::from_name).ok_or_else(|| {
                bad(format!(
                    "gives '{name}' the scale axis {axis:?}; it is \"columns\", \"rows\" or \"depthwise\""
                ))
            })?;
            let activations = ActivationScale::from_name(entry.get("activations").map_or("", String::as_str))
                .map_err(|e| bad(format!("for '{name}': {e}")))?;
            // A calibrated layer's fixed scales, written as Rust prints an f32 (exactly).
            let scale = |key: &str| match entry.get(key) {
                None => Ok(None),
                Some(text) => text
                    .parse::<f32>()
                    .map(Some)
                    .map_err(|_| bad(format!("gives '{name}' the {key} {text:?}, which is not a number"))),
            };
            let (input_scale, output_scale) = (scale("input_scale")?, scale("output_scale")?);
            Ok((
                name,
                Int8Entry {
                    axis,
                    activations,
                    input_scale,
                    output_scale,
                },
            ))
        })
        .collect()
}

/// How one int8 weight of a file is quantized (its [`QUANTIZATION_KEY`] entry).
struct Int8Entry {
    axis: ScaleAxis,
    activations: ActivationScale,
    input_scale: Option<f32>,
    output_scale: Option<f32>,
}

/// The int8 weight `name` (dtype I8) with its `f32` scales from `name_scale`.
fn to_quantized(
    path: &Path,
    name: &str,
    view: &TensorView,
    file: &SafeTensors,
    quantization: &HashMap<String, Int8Entry>,
) -> Result<QuantizedKernel> {
    let entry = quantization.get(name).ok_or_else(|| {
        Error::file(
            path,
            format!("weight '{name}' is I8 but the metadata '{QUANTIZATION_KEY}' does not describe it"),
        )
    })?;
    let scale_name = format!("{name}{SCALE_SUFFIX}");
    let scales = file
        .tensor(&scale_name)
        .map_err(|_| Error::file(path, format!("int8 weight '{name}' has no scales '{scale_name}'")))?;
    let scales = to_tensor(path, &scale_name, &scales)?.into_vec();
    let values = view.data().iter().map(|&b| b as i8).collect();
    let kernel = QuantizedKernel::from_parts(values, view.shape().to_vec(), scales, entry.axis, entry.activations);
    let kernel = match (kernel, entry.input_scale) {
        (Ok(kernel), Some(scale)) => kernel.with_input_scale(scale),
        (kernel, _) => kernel,
    };
    let kernel = match (kernel, entry.output_scale) {
        (Ok(kernel), Some(scale)) => kernel.with_output_scale(scale),
        (kernel, _) => kernel,
    };
    kernel.map_err(|e| Error::file(path, format!("weight '{name}': {e}")))
}

/// Loads a model saved by [`Model::save`]: architecture, compile settings and weights. The
/// architecture is checked against the memory budget ([`crate::limits`]) before a weight is
/// made, so a small file describing a huge model is refused, not allocated.
///
/// Keras files load too, told apart by their first bytes: a `.keras` archive
/// ([`super::import_keras`]) and a legacy `.h5` model ([`super::import_keras_h5`]).
pub fn load_model(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let bytes = crate::fs::read_whole(path)?;
    if super::keras_h5::is_hdf5(&bytes) {
        return super::import_keras_h5_bytes(&bytes, path);
    }
    if bytes.starts_with(b"PK\x03\x04") {
        return super::import_keras_from(std::io::Cursor::new(bytes), path);
    }
    let (spec, input_shapes, metadata) = read_architecture(path, &bytes)?;
    let metrics = spec.metric_lists();
    let mut model = spec.model;
    let borrowed: Vec<&[usize]> = input_shapes.iter().map(Vec::as_slice).collect();
    // Every weight must be in the file: an architecture asking for more weights than the file
    // has bytes is refused before it is built (a 1 KB file could otherwise make gigabytes).
    let weights = model.planned_param_count(&borrowed)?;
    // An int8 weight takes one byte, an f32 weight four.
    let needed = match metadata.contains_key(QUANTIZATION_KEY) {
        true => Some(weights as u64),
        false => crate::limits::f32_bytes(weights),
    };
    if needed.is_none_or(|needed| needed > bytes.len() as u64) {
        return Err(Error::file(
            path,
            format!(
                "its architecture has {weights} weights ({}), but the file holds {} bytes: weights are missing",
                crate::limits::format_bytes(crate::limits::f32_bytes(weights)),
                bytes.len()
            ),
        ));
    }
    model.build_inputs(&borrowed)?;
    config::compile_with(&mut model, spec.optimizer, &spec.losses, &spec.loss_weights, &metrics)?;
    model.load_weights(path)?;
    restore_state(path, &bytes, &metadata, model)
}

/// The summary (Keras's `model.summary()`) of a model saved by [`Model::save`], from its
/// architecture alone: no weight is made or read, so it works for a model of any size.
pub fn saved_model_summary(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let bytes = crate::fs::read_whole(path)?;
    let (spec, input_shapes, metadata) = read_architecture(path, &bytes)?;
    // A quantized model's summary shows which layers are int8 and the new sizes, which only
    // the weights tell.
    if metadata.contains_key(QUANTIZATION_KEY) {
        return load_model(path)?.summary();
    }
    let borrowed: Vec<&[usize]> = input_shapes.iter().map(Vec::as_slice).collect();
    spec.model.summary_for(&borrowed)
}

/// A saved model's architecture and compile settings (not built), its per-sample input shapes
/// and the header's metadata.
type Architecture = (config::ModelFile, Vec<Vec<usize>>, HashMap<String, String>);

/// Reads a saved model's [`Architecture`] from the file's `bytes`.
fn read_architecture(path: &Path, bytes: &[u8]) -> Result<Architecture> {
    let (_, header) = SafeTensors::read_metadata(bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file ({e})")))?;
    let metadata = header.metadata().clone().unwrap_or_default();
    if metadata.get(FORMAT_KEY).map(String::as_str) != Some(FORMAT) || !metadata.contains_key("architecture") {
        return Err(Error::file(
            path,
            "has no strata model architecture in its metadata (was it saved with save_weights?)",
        ));
    }
    let field = |key: &str| -> Result<Value> {
        match metadata.get(key) {
            Some(text) => serde_json::from_str(text)
                .map_err(|e| Error::file(path, format!("metadata '{key}' is not valid JSON ({e})"))),
            None => Ok(Value::Null),
        }
    };
    let mut root = field("architecture")?;
    if let (Value::Object(map), compile @ Value::Object(_)) = (&mut root, field("compile")?) {
        map.insert("compile".into(), compile);
    }
    let spec = config::parse(&root.to_string(), config::Format::Json, &path.display().to_string())?;
    // One shape per input ("input_shapes"), or the single input's ("input_shape").
    let input_shapes: Vec<Vec<usize>> = match field("input_shapes")? {
        Value::Null => vec![
            serde_json::from_value(field("input_shape")?)
                .map_err(|e| Error::file(path, format!("metadata 'input_shape' is not a list of sizes ({e})")))?,
        ],
        shapes => serde_json::from_value(shapes)
            .map_err(|e| Error::file(path, format!("metadata 'input_shapes' is not a list of shapes ({e})")))?,
    };
    Ok((spec, input_shapes, metadata))
}

/// Restores what a saved run left besides the weights (resume point, attachments, seed,
/// optimizer state) into `model`, built and loaded from `bytes`.
fn restore_state(path: &Path, bytes: &[u8], metadata: &HashMap<String, String>, mut model: Model) -> Result<Model> {
    let number = |key: &str| -> Result<u64> {
        metadata.get(key).map_or(Ok(0), |v| {
            v.parse()
                .map_err(|_| Error::file(path, format!("metadata '{key}' is not a number: {v}")))
        })
    };
    let counter = |key: &str, max: u64| -> Result<u64> {
        let value = number(key)?;
        if value > max {
            return Err(Error::file(
                path,
                format!("metadata '{key}' is {value}, beyond any run (at most {max}): the file is damaged or edited"),
            ));
        }
        Ok(value)
    };
    model.set_resume_point(
        counter("epoch", MAX_COUNTER)? as usize,
        counter("batches_into_epoch", MAX_COUNTER)? as usize,
    );
    for (key, value) in metadata {
        if let Some(name) = key.strip_prefix(ATTACHMENT_PREFIX) {
            model.set_attachment(name, value.clone());
        }
    }
    let seed = number("seed")?;
    model.set_seed_for_resume(seed);
    let iterations = counter("optimizer_iterations", MAX_ITERATIONS)?;
    let file = SafeTensors::deserialize(bytes)
        .map_err(|e| Error::file(path, format!("not a valid safetensors file ({e})")))?;
    let slot = |kind: &str, name: &str| -> Result<Option<Vec<f32>>> {
        match file.tensor(&format!("{OPTIMIZER_PREFIX}{kind}/{name}")) {
            Ok(view) => Ok(Some(to_tensor(path, name, &view)?.into_vec())),
            Err(_) => Ok(None),
        }
    };
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for id in model.params().ids() {
        let name = model.params().name(id).to_string();
        let size = model.params().value(id).len();
        match (slot("first", &name)?, slot("second", &name)?) {
            (Some(a), Some(b)) if a.len() == size && b.len() == size => {
                first.push(a);
                second.push(b);
            }
            // A frozen weight has none; a file without any has no optimizer state.
            (None, None) if !model.params().is_trainable(id) => {
                first.push(Vec::new());
                second.push(Vec::new());
            }
            (None, None) => {}
            _ => {
                return Err(Error::file(
                    path,
                    format!("optimizer state for '{name}' is incomplete or has the wrong size"),
                ));
            }
        }
    }
    let complete = first.len() == model.params().len() && first.iter().any(|slot| !slot.is_empty());
    if complete && let Some(optimizer) = model.optimizer() {
        check_optimizer_state(
            path,
            metadata.get(OPTIMIZER_STATE_KEY),
            optimizer.class_name(),
            &first,
            &second,
        )?;
    }
    if let Some(optimizer) = model.optimizer_mut() {
        if complete {
            optimizer.slots_mut().restore(iterations, first, second);
        } else {
            optimizer.slots_mut().restore(iterations, Vec::new(), Vec::new());
        }
    }
    Ok(model)
}

/// Checks that saved optimizer state can belong to the model's optimizer `class_name`: saved
/// by that optimizer (when the file says which), finite, and with non-negative running sums of
/// squares (their square roots divide the updates). Otherwise the first step would turn the
/// weights into NaN and training would blame the data.
fn check_optimizer_state(
    path: &Path,
    saved_by: Option<&String>,
    class_name: &str,
    first: &[Vec<f32>],
    second: &[Vec<f32>],
) -> Result<()> {
    if let Some(saved_by) = saved_by
        && saved_by != class_name
    {
        return Err(Error::file(
            path,
            format!(
                "metadata '{OPTIMIZER_STATE_KEY}': the optimizer state was saved by {saved_by}, \
                 but the compile settings name {class_name}"
            ),
        ));
    }
    let squares = match class_name {
        "Adam" | "AdamW" => Some("second"),
        "RMSprop" | "Adagrad" => Some("first"),
        _ => None,
    };
    for (kind, slots) in [("first", first), ("second", second)] {
        let bad = |v: &f32| !v.is_finite() || (squares == Some(kind) && *v < 0.0);
        if let Some(value) = slots.iter().flatten().find(|v| bad(v)) {
            return Err(Error::file(
                path,
                format!("optimizer state '{OPTIMIZER_PREFIX}{kind}' holds {value}, which {class_name} never produces"),
            ));
        }
    }
    Ok(())
}

/// The weights, plus `extra` tensors (name, shape, values), as safetensors bytes.
fn serialize(
    model: &Model,
    metadata: HashMap<String, String>,
    extra: Vec<(String, Vec<usize>, Vec<f32>)>,
) -> Result<Vec<u8>> {
    let mut metadata = metadata;
    let params = model.params();
    let to_bytes = |values: &[f32]| -> Vec<u8> { values.iter().flat_map(|v| v.to_le_bytes()).collect() };
    let mut bytes: Vec<(String, Dtype, Vec<u8>, Vec<usize>)> = Vec::new();
    let mut quantization = serde_json::Map::new();
    for id in params.ids() {
        let name = params.name(id).to_string();
        match params.quantized(id) {
            // An int8 weight: its values as I8 and its scales as F32 beside it (Keras's names).
            Some(kernel) => {
                let values = kernel.values().iter().map(|&q| q as u8).collect();
                bytes.push((name.clone(), Dtype::I8, values, kernel.shape().to_vec()));
                let scales = kernel.scales();
                bytes.push((
                    format!("{name}{SCALE_SUFFIX}"),
                    Dtype::F32,
                    to_bytes(scales),
                    vec![scales.len()],
                ));
                let mut entry =
                    json!({"mode": "int8", "axis": kernel.axis().name(), "activations": kernel.activations().name()});
                // Strings, as every entry's values: Rust prints an f32 so it reads back exactly.
                if let Some(scale) = kernel.input_scale() {
                    entry["input_scale"] = json!(scale.to_string());
                }
                if let Some(scale) = kernel.output_scale() {
                    entry["output_scale"] = json!(scale.to_string());
                }
                quantization.insert(name, entry);
            }
            None => {
                let value = params.value(id);
                bytes.push((name, Dtype::F32, to_bytes(value.data()), value.shape().to_vec()));
            }
        }
    }
    if !quantization.is_empty() {
        metadata.insert(QUANTIZATION_KEY.to_string(), Value::Object(quantization).to_string());
    }
    bytes.extend(
        extra
            .into_iter()
            .map(|(name, shape, values)| (name, Dtype::F32, to_bytes(&values), shape)),
    );
    let views = bytes
        .iter()
        .map(|(name, dtype, data, shape)| {
            TensorView::new(*dtype, shape.clone(), data)
                .map(|view| (name.clone(), view))
                .map_err(|e| Error::Usage(format!("cannot store weight '{name}': {e}")))
        })
        .collect::<Result<Vec<_>>>()?;
    safetensors::serialize(views, Some(metadata))
        .map_err(|e| Error::Usage(format!("cannot serialize the weights: {e}")))
}

fn to_tensor(path: &Path, name: &str, view: &TensorView) -> Result<Tensor> {
    if view.dtype() != Dtype::F32 {
        return Err(Error::file(
            path,
            format!("weight '{name}' is {:?}; strata reads F32 weights", view.dtype()),
        ));
    }
    let values = view
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    Tensor::from_vec(view.shape().to_vec(), values)
}
