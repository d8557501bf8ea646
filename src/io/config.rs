//! Model description files: a model's layers, compile settings and training settings in
//! Keras's vocabulary, as TOML or JSON, so a model can be trained without writing Rust.
//!
//! ```toml
//! name = "mlp"
//! data = "mnist"            # "mnist", "linreg", or a CSV file's path
//!
//! [compile]
//! optimizer = "adam"        # or { class_name = "Adam", config = { learning_rate = 0.001 } }
//!                           # learning_rate may be a schedule: { class_name = "CosineDecay",
//!                           #   config = { initial_learning_rate = 0.001, decay_steps = 5000 } }
//! loss = "sparse_categorical_crossentropy"
//! metrics = ["accuracy"]
//!
//! [fit]
//! epochs = 10
//! batch_size = 32
//! validation = "test"       # optional: validate on the test set each epoch
//!
//! [[layers]]
//! class_name = "InputLayer"
//! config = { shape = [28, 28] }
//!
//! [[layers]]
//! class_name = "Dense"
//! config = { units = 128, activation = "relu" }
//! ```
//!
//! The JSON that Keras's `model.to_json()` writes (`{"class_name": "Sequential", "config":
//! {"layers": [...]}}`) loads too, for the layers strata has; its compile settings, which Keras
//! keeps elsewhere, default to `rmsprop` with a loss chosen from the last layer.

use super::graph_config::{graph_from_config, layers_from_entries};
use crate::error::{Error, Result};
use crate::losses::Loss;
use crate::model::Model;
use crate::optimizers::{self, Optimizer};
use serde_json::Value;
use std::path::Path;

/// The built-in named models: their description files, bundled into the binary.
pub const NAMED_MODELS: &[(&str, &str)] = &[
    ("mlp", include_str!("../../models/mlp.toml")),
    ("mlp2", include_str!("../../models/mlp2.toml")),
    ("linreg", include_str!("../../models/linreg.toml")),
    ("cnn", include_str!("../../models/cnn.toml")),
    ("resmlp", include_str!("../../models/resmlp.toml")),
    ("resnet", include_str!("../../models/resnet.toml")),
    ("rnn_mnist", include_str!("../../models/rnn_mnist.toml")),
    ("char_rnn", include_str!("../../models/char_rnn.toml")),
    ("cifar10_cnn", include_str!("../../models/cifar10_cnn.toml")),
    ("fashion_mlp", include_str!("../../models/fashion_mlp.toml")),
    ("imdb_lstm", include_str!("../../models/imdb_lstm.toml")),
    ("imdb_transformer", include_str!("../../models/imdb_transformer.toml")),
    ("char_transformer", include_str!("../../models/char_transformer.toml")),
];

/// A parsed model description.
pub struct ModelFile {
    /// The model's name.
    pub name: String,
    /// Which data it trains on: `mnist`, `linreg`, or a CSV path.
    pub data: Option<String>,
    /// The compiled-ready model (layers added, not built).
    pub model: Model,
    /// The optimizer from `[compile]`.
    pub optimizer: Box<dyn Optimizer>,
    /// The loss from `[compile]` (the first output's, with several outputs).
    pub loss: Loss,
    /// One loss per output (`loss = [...]` in `[compile]`, or the one loss for every output).
    pub losses: Vec<Loss>,
    /// `loss_weights` from `[compile]` (empty: every output weighs 1).
    pub loss_weights: Vec<f32>,
    /// Metric names from `[compile]`, for every output.
    pub metrics: Vec<String>,
    /// Metric names per output, when `[compile]` gives a list of lists.
    pub output_metrics: Option<Vec<Vec<String>>>,
    /// Training epochs from `[fit]` (default 1).
    pub epochs: usize,
    /// Batch size from `[fit]` (default 32).
    pub batch_size: usize,
    /// Whether to validate on the test set each epoch.
    pub validate_on_test: bool,
    /// The sizes the file leaves to the text it trains on (`units = "auto"` on a Dense,
    /// `input_dim = "auto"` on an Embedding), as "units of Dense 'output'"; empty when none. While
    /// any is open, `model` is built with a placeholder vocabulary of
    /// [`PLACEHOLDER_VOCABULARY`]: [`ModelFile::with_vocabulary`] sizes it.
    pub open_sizes: Vec<String>,
    /// The description as read, when sizes are open: rebuilt by `with_vocabulary`.
    description: Option<Value>,
    /// The file or named model, for error messages of the rebuilt description.
    origin: String,
}

/// The value of a size left to the text a model trains on: its tokenizer's vocabulary size
/// (padding id 0 included), e.g. `units = "auto"` on a character model's output Dense.
pub const VOCABULARY_SIZE: &str = "auto";

/// The layer keys that may be [`VOCABULARY_SIZE`]: a text model's output and its token table.
const OPEN_SIZE_KEYS: [(&str, &str); 2] = [("Dense", "units"), ("Embedding", "input_dim")];

/// The vocabulary a model with open sizes is built with until [`ModelFile::with_vocabulary`]
/// sizes it: the padding id and one token, the smallest that still builds.
pub const PLACEHOLDER_VOCABULARY: usize = 2;

/// What makes the model of a description that names a Keras application instead of layers
/// (`application = "mobilenet_v2"`): `strata::applications::from_description`, handed down by
/// the loaders above this module ([`crate::applications::load_description`]); the file
/// formats themselves know no architecture.
pub type ApplicationResolver = fn(&Value) -> Result<Model>;

/// A named model (`mlp`, `mlp2`, `linreg`) or a model file's path. A file naming an
/// application (`application = "mobilenet_v2"`) loads with
/// [`crate::applications::load_description`].
pub fn load_model_spec(name_or_path: &str) -> Result<ModelFile> {
    load_model_spec_with(name_or_path, None)
}

/// [`load_model_spec`], with what makes the model of a description naming an application.
pub fn load_model_spec_with(name_or_path: &str, applications: Option<ApplicationResolver>) -> Result<ModelFile> {
    if let Some((_, text)) = NAMED_MODELS.iter().find(|(name, _)| *name == name_or_path) {
        return parse(text, Format::Toml, name_or_path);
    }
    let path = Path::new(name_or_path);
    if !path.exists() {
        let names: Vec<&str> = NAMED_MODELS.iter().map(|(n, _)| *n).collect();
        return Err(Error::file(
            path,
            format!("no such file, and not a named model ({})", names.join(", ")),
        ));
    }
    let extension = path.extension().and_then(|e| e.to_str()).map(str::to_ascii_lowercase);
    if let Some(saved @ ("safetensors" | "keras" | "h5" | "hdf5" | "onnx")) = extension.as_deref() {
        return Err(Error::file(
            path,
            format!(
                "a saved model (.{saved}), not a model description (a .toml or .json file of layers): load it \
                 with strata::load_model (on the command line: train --base, evaluate, predict, or import first)"
            ),
        ));
    }
    let text = crate::fs::read_text(path)?;
    let format = if path.extension().is_some_and(|e| e == "toml") {
        Format::Toml
    } else {
        Format::Json
    };
    parse_with(&text, format, &path.display().to_string(), applications)
}

/// The syntax of a model file.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    /// TOML.
    Toml,
    /// JSON.
    Json,
}

/// Parses a model description; `origin` names it in error messages. A description naming an
/// application (`application = "mobilenet_v2"`) parses with
/// [`crate::applications::parse_description`].
pub fn parse(text: &str, format: Format, origin: &str) -> Result<ModelFile> {
    parse_with(text, format, origin, None)
}

/// [`parse`], with what makes the model of a description naming an application.
pub fn parse_with(
    text: &str,
    format: Format,
    origin: &str,
    applications: Option<ApplicationResolver>,
) -> Result<ModelFile> {
    let root: Value = match format {
        Format::Json => serde_json::from_str(text).map_err(|e| {
            Error::file(
                origin,
                format!("invalid JSON at line {}, column {}: {e}", e.line(), e.column()),
            )
        })?,
        Format::Toml => {
            let table: toml::Table = text
                .parse()
                .map_err(|e: toml::de::Error| Error::file(origin, format!("invalid TOML: {}", e.to_string().trim())))?;
            table
                .iter()
                .try_for_each(|(key, value)| check_finite(value, key))
                .map_err(|reason| Error::file(origin, reason))?;
            serde_json::to_value(table).map_err(|e| Error::file(origin, format!("invalid TOML: {e}")))?
        }
    };
    parse_value_with(&root, origin, applications)
}

/// Refuses `nan` and `inf` anywhere in a TOML description, naming the key: JSON, which every
/// reader after this works on, has no such numbers and would read them as `null`, i.e. as the
/// default (`momentum = nan` would become 0.99).
fn check_finite(value: &toml::Value, key: &str) -> std::result::Result<(), String> {
    match value {
        toml::Value::Float(f) if !f.is_finite() => Err(format!("{key} = {f}: numbers must be finite")),
        toml::Value::Table(table) => table
            .iter()
            .try_for_each(|(k, v)| check_finite(v, &format!("{key}.{k}"))),
        toml::Value::Array(items) => items
            .iter()
            .enumerate()
            .try_for_each(|(i, v)| check_finite(v, &format!("{key}[{i}]"))),
        _ => Ok(()),
    }
}

/// Reads a model description already parsed as JSON; `origin` names it in error messages.
pub(crate) fn parse_value(root: &Value, origin: &str) -> Result<ModelFile> {
    parse_value_with(root, origin, None)
}

/// [`parse_value`], with what makes the model of a description naming an application.
fn parse_value_with(root: &Value, origin: &str, applications: Option<ApplicationResolver>) -> Result<ModelFile> {
    let open_sizes = open_sizes(root);
    let parsed = if open_sizes.is_empty() {
        from_value(root, applications)
    } else {
        let mut placeholder = root.clone();
        set_open_sizes(&mut placeholder, PLACEHOLDER_VOCABULARY);
        from_value(&placeholder, applications).map(|file| ModelFile {
            open_sizes,
            description: Some(root.clone()),
            ..file
        })
    };
    parsed
        .map(|file| ModelFile {
            origin: origin.to_string(),
            ..file
        })
        .map_err(|e| match e {
            Error::File { .. } => e,
            other => Error::file(origin, other.reason()),
        })
}

/// A description whose layers include models used as layers (an entry of class `Functional`
/// or `Sequential` holding its own config, as the Python package describes
/// `Sequential([base, ...])` or `base(x)`): those models opened up as a Keras file's are, the
/// result functional, with the models recorded under `"nested_models"`. `None` without any.
fn with_nested_models_opened(root: &Value) -> Result<Option<Value>> {
    let in_config = root.get("config").is_some_and(|config| config.get("layers").is_some());
    let body = if in_config { &root["config"] } else { root };
    let holds_models = body
        .get("layers")
        .and_then(Value::as_array)
        .is_some_and(|entries| entries.iter().any(super::keras_nested::is_model));
    if !holds_models {
        return Ok(None);
    }
    let functional = matches!(
        root.get("class_name").and_then(Value::as_str),
        Some("Functional" | "Model")
    );
    let mut body = body.clone();
    let flat = super::keras_nested::flatten(&mut body, functional).map_err(Error::Data)?;
    body["nested_models"] = flat.nested.iter().map(crate::model::NestedModel::to_json).collect();
    let mut opened = match in_config {
        true => {
            let mut root = root.clone();
            root["config"] = body;
            root
        }
        false => body,
    };
    opened["class_name"] = Value::from("Functional");
    Ok(Some(opened))
}

/// The layer list of a description: under `config` in Keras's `to_json()`, else at the top.
fn layer_entries_mut(root: &mut Value) -> Option<&mut Vec<Value>> {
    if root.get("config").is_some_and(|config| config.get("layers").is_some()) {
        root["config"]["layers"].as_array_mut()
    } else {
        root.get_mut("layers").and_then(Value::as_array_mut)
    }
}

/// The entries' sizes set to [`VOCABULARY_SIZE`], as "units of Dense 'output'".
fn open_sizes(root: &Value) -> Vec<String> {
    let body = match root.get("config") {
        Some(config) if config.get("layers").is_some() => config,
        _ => root,
    };
    let entries = body.get("layers").and_then(Value::as_array);
    let mut open = Vec::new();
    for (i, entry) in entries.into_iter().flatten().enumerate() {
        let class = entry.get("class_name").and_then(Value::as_str).unwrap_or_default();
        for (open_class, key) in OPEN_SIZE_KEYS {
            if class == open_class && entry["config"].get(key).and_then(Value::as_str) == Some(VOCABULARY_SIZE) {
                let name = entry
                    .get("name")
                    .or_else(|| entry["config"].get("name"))
                    .and_then(Value::as_str)
                    .map_or_else(|| format!("layers[{i}] ({class})"), |name| format!("{class} '{name}'"));
                open.push(format!("{key} of {name}"));
            }
        }
    }
    open
}

/// Replaces every [`VOCABULARY_SIZE`] of the entries with `size`.
fn set_open_sizes(root: &mut Value, size: usize) {
    for entry in layer_entries_mut(root).into_iter().flatten() {
        let class = entry
            .get("class_name")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        for (open_class, key) in OPEN_SIZE_KEYS {
            if class == open_class && entry["config"].get(key).and_then(Value::as_str) == Some(VOCABULARY_SIZE) {
                entry["config"][key] = Value::from(size);
            }
        }
    }
}

impl ModelFile {
    /// The description with its open sizes ([`VOCABULARY_SIZE`]) set to `size`, a tokenizer's
    /// vocabulary size (padding id 0 included), and its model built anew; unchanged when no
    /// size is open.
    ///
    /// ```
    /// use strata::io::config::load_model_spec;
    /// # fn main() -> strata::Result<()> {
    /// // char_rnn's Embedding input_dim and output Dense units are "auto".
    /// let mut spec = load_model_spec("char_rnn")?.with_vocabulary(100)?;
    /// assert!(spec.open_sizes.is_empty());
    /// spec.model.compile("adam", "sparse_categorical_crossentropy", &[])?;
    /// assert_eq!(spec.model.output_shape(), Some(&[100][..]));
    /// # Ok(()) }
    /// ```
    pub fn with_vocabulary(self, size: usize) -> Result<ModelFile> {
        let Some(description) = &self.description else {
            return Ok(self);
        };
        let mut sized = description.clone();
        set_open_sizes(&mut sized, size);
        parse_value(&sized, &self.origin)
    }

    /// Compiles `model` with this file's losses, loss weights and metrics and `optimizer`.
    pub fn compile(&self, model: &mut Model, optimizer: Box<dyn Optimizer>) -> Result<()> {
        compile_with(model, optimizer, &self.losses, &self.loss_weights, &self.metric_lists())
    }

    /// The metric names of each output.
    pub fn metric_lists(&self) -> Vec<Vec<String>> {
        match &self.output_metrics {
            Some(lists) => lists.clone(),
            None => vec![self.metrics.clone(); self.losses.len()],
        }
    }
}

/// `model.compile_outputs` with owned metric names.
pub(crate) fn compile_with(
    model: &mut Model,
    optimizer: Box<dyn Optimizer>,
    losses: &[Loss],
    loss_weights: &[f32],
    metrics: &[Vec<String>],
) -> Result<()> {
    let borrowed: Vec<Vec<&str>> = metrics.iter().map(|m| m.iter().map(String::as_str).collect()).collect();
    let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
    model.compile_outputs(optimizer, losses, loss_weights, &slices)
}

fn from_value(root: &Value, applications: Option<ApplicationResolver>) -> Result<ModelFile> {
    if let Some(opened) = with_nested_models_opened(root)? {
        return from_value(&opened, applications);
    }
    // Keras's to_json nests the layers under "config"; strata's own files keep them at the top.
    let body = match root.get("config") {
        Some(config) if config.get("layers").is_some() => config,
        _ => root,
    };
    let mut name = body
        .get("name")
        .or_else(|| root.get("name"))
        .and_then(Value::as_str)
        .unwrap_or("model")
        .to_string();
    let application = root.get("application");
    let entries = match (body.get("layers").and_then(Value::as_array), application) {
        (Some(entries), _) => entries.as_slice(),
        (None, Some(_)) => &[],
        (None, None) => {
            return Err(Error::Data(
                "missing \"layers\" (a list of {class_name, config} entries) or \"application\" (e.g. \"mobilenet_v2\")"
                    .into(),
            ));
        }
    };
    let class = root.get("class_name").and_then(Value::as_str);
    let mut model = if let Some(application) = application {
        let resolve = applications.ok_or_else(|| {
            Error::Usage(
                "\"application\" names a Keras application: load this description with \
                 strata::applications::load_description or parse_description (the strata command line does)"
                    .into(),
            )
        })?;
        let model = resolve(application)?;
        name = body
            .get("name")
            .and_then(Value::as_str)
            .unwrap_or(model.name())
            .to_string();
        model
    } else if matches!(class, Some("Functional" | "Model")) {
        graph_from_config(entries, body.get("input_layers"), body.get("output_layers"))?
    } else {
        let mut model = Model::new();
        for layer in layers_from_entries(entries)? {
            model.add_boxed(layer);
        }
        model
    };
    model.set_name(&name);
    if let Some(nested) = body.get("nested_models") {
        model.set_nested_models(crate::model::NestedModel::list_from_json(nested)?);
    }
    let compile = root.get("compile").or_else(|| root.get("compile_config"));
    check_section_keys("compile", compile, COMPILE_KEYS)?;
    check_section_keys("fit", root.get("fit"), FIT_KEYS)?;
    let optimizer = match compile.and_then(|c| c.get("optimizer")) {
        Some(value) => {
            optimizers::from_config(value).map_err(|e| Error::Data(format!("compile.optimizer: {}", e.reason())))?
        }
        None => optimizers::from_name("rmsprop")?,
    };
    let outputs = model.output_names().len().max(1);
    let mut losses = match compile.and_then(|c| c.get("loss")) {
        Some(Value::String(name)) => {
            vec![Loss::from_name(name).map_err(|e| Error::Data(format!("compile.loss: {}", e.reason())))?; outputs]
        }
        Some(Value::Array(names)) => names
            .iter()
            .map(|name| match name.as_str() {
                Some(name) => Loss::from_name(name).map_err(|e| Error::Data(format!("compile.loss: {}", e.reason()))),
                None => Err(Error::Data(format!("compile.loss: {name} is not a name"))),
            })
            .collect::<Result<_>>()?,
        Some(other) => {
            return Err(Error::Data(format!(
                "compile.loss must be a name or a list of names (one per output), got {other}"
            )));
        }
        None if application.is_some() => vec![Loss::SparseCategoricalCrossentropy { from_logits: false }; outputs],
        None => vec![default_loss(entries); outputs],
    };
    if losses.is_empty() {
        return Err(Error::Data(
            "compile.loss is an empty list: name a loss, or one per output".into(),
        ));
    }
    match compile.and_then(|c| c.get("from_logits")) {
        Some(Value::Bool(true)) => losses.iter_mut().for_each(|l| *l = l.with_logits()),
        Some(Value::Array(flags)) => {
            for (loss, flag) in losses.iter_mut().zip(flags) {
                if flag.as_bool() == Some(true) {
                    *loss = loss.with_logits();
                }
            }
        }
        _ => {}
    }
    match compile.and_then(|c| c.get("label_smoothing")) {
        None | Some(Value::Null) => {}
        Some(Value::Array(values)) => {
            for (loss, value) in losses.iter_mut().zip(values) {
                *loss = smoothing(*loss, value)?;
            }
        }
        Some(value) => {
            for loss in &mut losses {
                *loss = smoothing(*loss, value)?;
            }
        }
    }
    let loss_weights = match compile.and_then(|c| c.get("loss_weights")) {
        // Keras's `to_json()` writes `"loss_weights": null` for a model compiled without them.
        None | Some(Value::Null) => Vec::new(),
        Some(value) => value
            .as_array()
            .and_then(|all| {
                all.iter()
                    .map(|w| w.as_f64().map(|w| w as f32).filter(|w| w.is_finite()))
                    .collect::<Option<Vec<_>>>()
            })
            .ok_or_else(|| {
                Error::Data(format!(
                    "compile.loss_weights must be a list of finite numbers, got {value}"
                ))
            })?,
    };
    let names = |items: &[Value]| -> Result<Vec<String>> {
        items
            .iter()
            .map(|m| {
                m.as_str()
                    .map(str::to_string)
                    .ok_or_else(|| Error::Data(format!("compile.metrics: {m} is not a name")))
            })
            .collect()
    };
    let (metrics, output_metrics) = match compile.and_then(|c| c.get("metrics")) {
        Some(Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_array) => {
            let per_output = items
                .iter()
                .map(|list| names(list.as_array().expect("checked above")))
                .collect::<Result<Vec<_>>>()?;
            (per_output[0].clone(), Some(per_output))
        }
        Some(Value::Array(items)) => (names(items)?, None),
        Some(other) => {
            return Err(Error::Data(format!(
                "compile.metrics must be a list of names, got {other}"
            )));
        }
        None => (vec!["accuracy".to_string()], None),
    };
    let fit = root.get("fit");
    let count = |key: &str, default: usize| -> Result<usize> {
        match fit.and_then(|f| f.get(key)) {
            None => Ok(default),
            Some(v) => v
                .as_u64()
                .map(|n| n as usize)
                .ok_or_else(|| Error::Data(format!("fit.{key} must be a non-negative integer, got {v}"))),
        }
    };
    Ok(ModelFile {
        name,
        data: root.get("data").and_then(Value::as_str).map(str::to_string),
        model,
        optimizer,
        loss: losses[0],
        losses,
        loss_weights,
        metrics,
        output_metrics,
        epochs: count("epochs", 1)?,
        batch_size: count("batch_size", 32)?,
        validate_on_test: fit.and_then(|f| f.get("validation")).and_then(Value::as_str) == Some("test"),
        open_sizes: Vec::new(),
        description: None,
        origin: String::new(),
    })
}

/// The keys of a description's `compile` section: those strata reads, then Keras's
/// `compile_config` keys that change nothing strata computes.
const COMPILE_KEYS: &[&str] = &[
    "optimizer",
    "loss",
    "from_logits",
    "label_smoothing",
    "loss_weights",
    "metrics",
    "weighted_metrics",
    "run_eagerly",
    "steps_per_execution",
    "jit_compile",
    "auto_scale_loss",
];

/// The keys of a description's `fit` section.
const FIT_KEYS: &[&str] = &["epochs", "batch_size", "validation"];

/// Refuses a key of a `compile` or `fit` section that strata does not know: a typo
/// (`optimzer`) would otherwise train with the default silently.
fn check_section_keys(section: &str, value: Option<&Value>, known: &[&str]) -> Result<()> {
    let Some(object) = value.and_then(Value::as_object) else {
        return Ok(());
    };
    match object.keys().find(|key| !known.contains(&key.as_str())) {
        Some(key) => Err(Error::Data(format!(
            "unknown key \"{section}.{key}\"; {section} takes: {}",
            known.join(", ")
        ))),
        None => Ok(()),
    }
}

/// `loss` with the `compile.label_smoothing` setting `value` (a number, or null for none).
fn smoothing(loss: Loss, value: &Value) -> Result<Loss> {
    match value {
        Value::Null => Ok(loss),
        Value::Number(n) => loss
            .with_label_smoothing(n.as_f64().unwrap_or(f64::NAN) as f32)
            .map_err(|e| Error::Data(format!("compile.label_smoothing: {}", e.reason()))),
        other => Err(Error::Data(format!(
            "compile.label_smoothing must be a number, got {other}"
        ))),
    }
}

/// A loss for a file without compile settings: cross-entropy after a softmax, else MSE.
fn default_loss(entries: &[Value]) -> Loss {
    let last_activation = entries
        .last()
        .and_then(|e| e.get("config"))
        .and_then(|c| c.get("activation"))
        .and_then(Value::as_str);
    match last_activation {
        Some("softmax") => Loss::SparseCategoricalCrossentropy { from_logits: false },
        Some("sigmoid") => Loss::BinaryCrossentropy {
            from_logits: false,
            label_smoothing: 0.0,
        },
        _ => Loss::MeanSquaredError,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn named_models_have_keras_parameter_counts() {
        // cifar10_cnn: Keras's summary of its CIFAR-10 example; imdb_lstm: 1,280,000 embedding
        // + 4·64·(128 + 64 + 1) LSTM + 65 dense.
        for (name, params) in [
            ("mlp", 101_770),
            ("mlp2", 109_386),
            ("linreg", 2),
            ("cnn", 93_322),
            ("cifar10_cnn", 1_250_858),
            ("fashion_mlp", 101_770),
            ("imdb_lstm", 1_329_473),
        ] {
            let mut spec = load_model_spec(name).unwrap();
            // summary() builds nothing: compile builds for the declared input shape.
            spec.model.compile("sgd", "mse", &[]).unwrap();
            assert_eq!(spec.model.count_params(), params, "{name}");
        }
    }

    #[test]
    fn keras_to_json_loads() {
        let json = r#"{"module": "keras", "class_name": "Sequential", "config": {"name": "sequential", "layers": [
            {"module": "keras.layers", "class_name": "InputLayer", "config": {"batch_shape": [null, 28, 28], "dtype": "float32", "name": "input_layer"}},
            {"module": "keras.layers", "class_name": "Flatten", "config": {"name": "flatten", "trainable": true, "data_format": "channels_last"}},
            {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense", "units": 128, "activation": "relu", "use_bias": true,
              "kernel_initializer": {"module": "keras.initializers", "class_name": "GlorotUniform", "config": {"seed": null}},
              "bias_initializer": {"module": "keras.initializers", "class_name": "Zeros", "config": {}}, "kernel_regularizer": null}},
            {"module": "keras.layers", "class_name": "Dense", "config": {"name": "dense_1", "units": 10, "activation": "softmax"}}]},
            "keras_version": "3.6.0", "backend": "tensorflow"}"#;
        let mut spec = parse(json, Format::Json, "keras.json").unwrap();
        // summary() builds nothing: compile builds for the declared input shape.
        spec.model.compile("sgd", "mse", &[]).unwrap();
        assert_eq!(spec.model.count_params(), 101_770);
        assert_eq!(spec.loss, Loss::SparseCategoricalCrossentropy { from_logits: false });
    }

    #[test]
    fn keras_to_json_with_its_compile_config_loads() {
        // Written by Keras 3 (tools/make_readme_keras.py): a compiled model's to_json() carries a
        // compile_config with `"loss_weights": null`, which means "none", not a bad value.
        let json = include_str!("../../examples/data/keras_model.json");
        assert!(json.contains(r#""loss_weights": null"#));
        let mut spec = parse(json, Format::Json, "keras_model.json").unwrap();
        spec.model.compile("sgd", "mse", &[]).unwrap();
        // Conv2D 3·3·1·4 + 4, then Dense 13·13·4·10 + 10, as Keras counts them.
        assert_eq!(spec.model.count_params(), 40 + 6_770);
    }

    #[test]
    fn malformed_files_say_where() {
        let err = parse("{\"layers\": [", Format::Json, "m.json")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("m.json") && err.contains("line 1"), "{err}");
        let err = parse(
            "layers = [{ class_name = \"Dense\", config = { units = \"x\" } }]",
            Format::Toml,
            "m.toml",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("layers[0] (Dense)") && err.contains("units"), "{err}");
        let err = parse("[[layers]]\nclass_name = \"Conv9D\"", Format::Toml, "m.toml")
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("Conv9D") && err.contains("Dense"), "{err}");
    }

    #[test]
    fn unknown_compile_fit_and_optimizer_keys_are_errors_naming_them() {
        let file = |compile: &str, fit: &str| {
            format!(
                "[compile]\n{compile}\nloss = \"mse\"\n[fit]\n{fit}\n[[layers]]\nclass_name = \"Dense\"\nconfig = {{ units = 1 }}\n"
            )
        };
        let message = |text: &str| parse(text, Format::Toml, "m.toml").err().map(|e| e.to_string());
        let cases = [
            (file("optimzer = \"sgd\"", "epochs = 2"), "compile.optimzer"),
            (file("optimizer = \"sgd\"", "epoch = 2"), "fit.epoch"),
            (
                file("optimizer = { class_name = \"SGD\", config = { momentun = 0.9 } }", ""),
                "\"momentun\"",
            ),
            (
                file("optimizer = { class_name = \"Adam\", config = { amsgrad = true } }", ""),
                "\"amsgrad\" = true is not supported",
            ),
        ];
        for (text, expected) in cases {
            let err = message(&text).unwrap_or_default();
            assert!(err.contains(expected), "{expected}: {err}");
        }
        // What Keras 3 writes for Adam, and Keras 2's SGD, load.
        let keras_adam = "optimizer = { class_name = \"Adam\", config = { name = \"adam\", learning_rate = 0.001, \
            weight_decay = \"null\", use_ema = false, ema_momentum = 0.99, beta_1 = 0.9, beta_2 = 0.999, \
            epsilon = 1e-7, amsgrad = false } }";
        let err = message(&file(keras_adam, "epochs = 1")).unwrap_or_default();
        assert!(err.contains("weight_decay"), "a string is not null: {err}");
        let keras_adam = keras_adam.replace("weight_decay = \"null\", ", "");
        assert_eq!(message(&file(&keras_adam, "epochs = 1")), None);
        let keras2_sgd = "optimizer = { class_name = \"SGD\", config = { lr = 0.01, decay = 0.0, momentum = 0.9, nesterov = false } }";
        assert_eq!(message(&file(keras2_sgd, "batch_size = 8")), None);
    }

    #[test]
    fn non_finite_numbers_are_errors_naming_the_key() {
        let file = |optimizer: &str| {
            format!(
                "[compile]\noptimizer = {optimizer}\nloss = \"mse\"\n[[layers]]\nclass_name = \"Dense\"\nconfig = {{ units = 1 }}\n"
            )
        };
        let err = parse(
            &file("{ class_name = \"SGD\", config = { momentum = nan } }"),
            Format::Toml,
            "m.toml",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(
            err.contains("m.toml") && err.contains("compile.optimizer.config.momentum"),
            "{err}"
        );
        let err = parse(
            "[[layers]]\nclass_name = \"Dropout\"\nconfig = { rate = 1e39 }\n",
            Format::Toml,
            "m.toml",
        )
        .err()
        .unwrap()
        .to_string();
        assert!(err.contains("\"rate\" must be a finite number"), "{err}");
        assert!(
            parse(
                &file("{ class_name = \"SGD\", config = { momentum = 0.9 } }"),
                Format::Toml,
                "m.toml"
            )
            .is_ok()
        );
        // JSON has no NaN, but a number past f32's range is as bad; so is a string.
        for (setting, key) in [
            (
                r#""optimizer": {"class_name": "SGD", "config": {"momentum": 1e39}}"#,
                "momentum",
            ),
            (
                r#""optimizer": {"class_name": "Adam", "config": {"beta_1": "0.5"}}"#,
                "beta_1",
            ),
            (r#""loss_weights": [1e39]"#, "loss_weights"),
        ] {
            let json = format!(
                r#"{{"compile": {{"loss": "mse", {setting}}}, "layers": [{{"class_name": "Dense", "config": {{"units": 1}}}}]}}"#
            );
            let err = parse(&json, Format::Json, "m.json").err().unwrap().to_string();
            assert!(err.contains(key) && err.contains("finite"), "{err}");
        }
        let json = r#"{"layers": [{"class_name": "Dense", "config": {"units": 1,
            "kernel_regularizer": {"class_name": "L2", "config": {"l2": 1e39}}}}]}"#;
        let err = parse(json, Format::Json, "m.json").err().unwrap().to_string();
        assert!(err.contains("l2") && err.contains("finite"), "{err}");
    }
}
