//! Saving in Keras's formats: `model.save("m.keras")` writes the archive Keras 3 writes (and
//! `keras.models.load_model` reads), `model.save("m.h5")` the legacy HDF5 file.
//!
//! ```no_run
//! # fn main() -> strata::Result<()> {
//! # let mut model = strata::model::Sequential::new();
//! model.save("mnist.keras")?;
//! // In Python: keras.models.load_model("mnist.keras")
//! # Ok(()) }
//! ```
//!
//! A `.keras` archive is a zip of `metadata.json`, `config.json` (the model's `get_config()`
//! in Keras 3's serialization: each layer's class, config, `build_config`, and for a
//! functional model its calls; then `compile_config`) and `model.weights.h5`, where Keras finds
//! each layer's weights by position: `layers/<class in snake case>[_k]/vars/<i>`. Which group a
//! layer's weights go to is computed by the importer's own code (`keras_nested.rs`), and the
//! archive is checked against the importer's layer checks before anything is written, so what
//! strata writes is what strata reads.
//!
//! What Keras has no place for is not saved: the optimizer's state (Keras warns that it starts
//! the optimizer afresh), the epoch counters and attachments such as a text model's vocabulary.
//! strata's own `.safetensors` file keeps all of those.

use super::hdf5::writer::{Attribute, Group};
use super::keras_layer::check_layers;
use super::keras_nested;
use super::keras_save_nested;
use crate::error::{Error, Result};
use crate::fs::write_atomic;
use crate::model::{Model, Source};
use serde_json::{Value, json};
use std::io::Write;
use std::path::Path;

/// The Keras release whose file layout this writes (and which loads the files in the tests).
pub(crate) const KERAS_VERSION: &str = "3.15.1";

/// strata's layers that core Keras does not have (they are KerasHub's), with what to use.
const NOT_IN_KERAS: &[(&str, &str)] = &[
    ("PositionEmbedding", "keras_hub.layers.PositionEmbedding"),
    ("SinePositionEncoding", "keras_hub.layers.SinePositionEncoding"),
];

/// Recurrent layers: Keras keeps their weights in their cell's group (`layers/lstm/cell/vars`).
const RECURRENT: &[&str] = &["SimpleRNN", "LSTM", "GRU"];

/// MultiHeadAttention's projections, each a Dense sub-layer with its own group, in the order
/// strata declares their weights.
const ATTENTION_PROJECTIONS: [&str; 4] = ["query_dense", "key_dense", "value_dense", "output_dense"];

/// How a file is named for Keras: `m.keras` or `m.h5` / `m.hdf5`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum KerasFormat {
    /// A Keras 3 `.keras` archive.
    Archive,
    /// A legacy HDF5 model file.
    Legacy,
}

impl KerasFormat {
    /// The Keras format a path's extension names, if any (case-insensitive).
    pub(crate) fn of(path: &Path) -> Option<KerasFormat> {
        let extension = path.extension()?.to_str()?.to_ascii_lowercase();
        match extension.as_str() {
            "keras" => Some(KerasFormat::Archive),
            "h5" | "hdf5" => Some(KerasFormat::Legacy),
            _ => None,
        }
    }
}

impl Model {
    /// Saves the model as a Keras 3 `.keras` archive, atomically: what Keras's
    /// `model.save("m.keras")` writes and `keras.models.load_model` reads (architecture,
    /// weights and compile settings; not the optimizer's state). [`Model::save`] calls this for
    /// a path ending in `.keras`. A layer Keras does not have is an error naming every such
    /// layer, before anything is written.
    pub fn save_keras(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let saved = SavedModel::of(self)?;
        let bytes = saved.archive().map_err(|e| Error::file(path, e))?;
        write_atomic(path, &bytes)
    }

    /// Saves the model as a legacy Keras HDF5 file, atomically: what Keras's
    /// `model.save("m.h5")` writes (the root attributes `model_config` and `training_config`,
    /// the weights under `model_weights/<layer name>`), which `keras.models.load_model` reads.
    /// [`Model::save`] calls this for a path ending in `.h5` or `.hdf5`. A nested model
    /// ([`Model::nested_models`]) is one group holding its layers' weights, as Keras writes it.
    pub fn save_keras_h5(&self, path: impl AsRef<Path>) -> Result<()> {
        let path = path.as_ref();
        let saved = SavedModel::of(self)?;
        let bytes = saved.legacy_file().map_err(|e| Error::file(path, e))?;
        write_atomic(path, &bytes)
    }
}

/// Per non-input layer: its index and the place of each of its weights in a Keras 3 weights file.
pub(super) type WeightPaths = Vec<(usize, Vec<String>)>;

/// Where Keras 3 keeps each weight of the built `model` in a weights file
/// (`model.save_weights("x.weights.h5")`, or a `.keras` archive's `model.weights.h5`): per
/// non-input layer, its index and one dataset path per weight, in the layer's order. These are
/// the places [`Model::save_keras`] writes to, so a file strata writes is one it reads.
pub(super) fn keras_weight_paths(model: &Model) -> Result<WeightPaths> {
    Ok(SavedModel::of(model)?.weight_paths())
}

/// [`keras_weight_paths`] as strata wrote `.keras` files of models with nested models before
/// it kept the nesting: every layer at the top level (`layers/conv2d_3/vars/0`). `None` for a
/// model without nested models; loading tries these places when the file has them.
pub(super) fn flat_keras_weight_paths(model: &Model) -> Result<Option<WeightPaths>> {
    if model.nested_models().is_empty() {
        return Ok(None);
    }
    Ok(Some(SavedModel::build(model, false)?.weight_paths()))
}

/// A model in Keras's vocabulary, ready to be written in either format.
struct SavedModel<'a> {
    model: &'a Model,
    /// config.json: the model's class, config, build and compile configs.
    config: Value,
    /// Per non-input layer, in Keras's order: its index and the group of its weights in
    /// `model.weights.h5` (`layers/dense_1/vars`).
    groups: Vec<(usize, String)>,
}

impl<'a> SavedModel<'a> {
    /// The model's Keras description, its nested models nested as in Keras ([`SavedModel::build`]).
    fn of(model: &'a Model) -> Result<SavedModel<'a>> {
        Self::build(model, true)
    }

    /// The model's Keras description, once every layer is known to have a Keras counterpart;
    /// with `nesting`, the layers of each of its nested models ([`Model::nested_models`]) are
    /// written inside that model's entry, as Keras saves a model used as a layer (a model whose
    /// first layer is not an input, a `Sequential` built without `Input`, is written flat).
    fn build(model: &'a Model, nesting: bool) -> Result<SavedModel<'a>> {
        if model.input_shape().is_none() || model.graph_output_shapes().is_empty() {
            return Err(Error::Usage(
                "the model has no weights yet: build it (compile with an Input, fit or predict) before saving".into(),
            ));
        }
        if model.is_quantized() {
            return Err(Error::Usage(
                "a quantized (int8) model cannot be saved in Keras's formats, whose int8 layout differs; save it as \
                 .safetensors, or save the float model before quantizing"
                    .into(),
            ));
        }
        let mut problems = Vec::new();
        for layer in model.layers() {
            let (name, class) = (layer.name(), layer.class_name());
            if let Some((_, instead)) = NOT_IN_KERAS.iter().find(|(c, _)| *c == class) {
                problems.push(format!(
                    "'{name}' ({class}) is not a Keras layer (KerasHub has {instead})"
                ));
            }
        }
        if !problems.is_empty() {
            return Err(Error::Usage(format!(
                "cannot save in Keras's format: {}; save as .safetensors instead",
                problems.join("; ")
            )));
        }
        let starts_with_input = model.layers().first().is_some_and(|l| l.is_input());
        let nested = nesting && !model.nested_models().is_empty() && starts_with_input;
        // Keras has nested models as layers of a graph: a Sequential holding them is written
        // as the functional model it is.
        let functional = nested || model.config()["class_name"] == "Functional";
        let order = match functional {
            true => keras_layer_order(model),
            false => (0..model.layers().len()).collect(),
        };
        let mut config = keras_config(model, functional, &order);
        if nested {
            let names = model.layers().iter().map(|l| l.name().to_string()).collect();
            keras_save_nested::nest(&mut config["config"], model.nested_models(), &names);
        }
        // The weight groups as the importer finds them, and the importer's checks of each
        // layer: a file strata writes is one strata reads.
        let mut body = config["config"].clone();
        if functional {
            // Read as the importer reads config.json: calls in Keras 2's inbound layout.
            super::keras_references::to_inbound_references(&mut body)
                .map(drop)
                .map_err(|e| Error::Usage(format!("cannot save in Keras's format: {e}")))?;
        }
        let flat = keras_nested::flatten(&mut body, functional)
            .map_err(|e| Error::Usage(format!("cannot save in Keras's format: {e}")))?;
        check_layers(&flat.entries, &flat.groups)
            .map_err(|e| Error::Usage(format!("cannot save in Keras's format: {e}")))?;
        // A Sequential built without an Input gets Keras's InputLayer first in config.json; the
        // input layers of nested models are not the model's: each layer's group by its name.
        let added = flat.groups.len().saturating_sub(order.len());
        let by_name: std::collections::HashMap<String, String> = flat
            .entries
            .iter()
            .zip(flat.groups)
            .skip(added)
            .map(|(entry, group)| (keras_nested::entry_name(entry), group))
            .collect();
        let groups = order
            .iter()
            .filter(|&&index| !model.layers()[index].is_input())
            .map(|&index| {
                let name = model.layers()[index].name();
                let group = by_name.get(name).ok_or_else(|| {
                    Error::Usage(format!(
                        "cannot save in Keras's format: the layer '{name}' has no place in it"
                    ))
                })?;
                Ok((index, group.clone()))
            })
            .collect::<Result<_>>()?;
        Ok(SavedModel { model, config, groups })
    }

    /// The `.keras` archive's bytes.
    fn archive(&self) -> Result<Vec<u8>, String> {
        let weights = self.weights_file()?;
        let metadata = json!({"keras_version": KERAS_VERSION, "strata_version": env!("CARGO_PKG_VERSION")});
        let mut zip = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        let deflated = zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Deflated);
        // Keras stores its weights uncompressed; so does strata (float noise compresses badly).
        let stored = deflated.compression_method(zip::CompressionMethod::Stored);
        let members = [
            ("metadata.json", metadata.to_string().into_bytes(), deflated),
            ("config.json", self.config.to_string().into_bytes(), deflated),
            ("model.weights.h5", weights, stored),
        ];
        for (name, bytes, options) in members {
            let fail = |e: &dyn std::fmt::Display| format!("cannot write {name} into the archive ({e})");
            zip.start_file(name, options.large_file(bytes.len() as u64 >= u32::MAX as u64))
                .map_err(|e| fail(&e))?;
            zip.write_all(&bytes).map_err(|e| fail(&e))?;
        }
        let cursor = zip.finish().map_err(|e| format!("cannot finish the archive ({e})"))?;
        Ok(cursor.into_inner())
    }

    /// `model.weights.h5`: each layer's weights in Keras's groups, in Keras's order.
    fn weights_file(&self) -> Result<Vec<u8>, String> {
        let mut root = Group::new();
        root.group("vars")?;
        for (index, group) in &self.groups {
            // Keras makes every layer's group, weights or not, named after the layer.
            let name = self.model.layers()[*index].name().to_string();
            root.group(group)?.set_attribute("name", Attribute::Text(name));
        }
        for (index, paths) in self.weight_paths() {
            for (id, path) in self.model.layers()[index].params().into_iter().zip(paths) {
                let value = self.model.params().value(id);
                root.add_array(&path, value.shape(), value.data())?;
            }
        }
        root.to_bytes()
    }

    /// Per non-input layer, in Keras's order: its index and the dataset of each of its weights
    /// in `model.weights.h5` (`layers/conv2d_1/vars/0`), in the order the layer declares them.
    fn weight_paths(&self) -> Vec<(usize, Vec<String>)> {
        self.groups
            .iter()
            .map(|(index, group)| {
                let layer = &self.model.layers()[*index];
                let class = layer.class_name();
                let count = layer.params().len();
                let paths = if let Some(inner) = layer.wrapped_class() {
                    wrapped_weight_paths(group, class, inner, count)
                } else if RECURRENT.contains(&class) {
                    let cell = group.replace("/vars", "/cell/vars");
                    (0..count).map(|i| format!("{cell}/{i}")).collect()
                } else if class == "MultiHeadAttention" {
                    // Kernel (and bias) of each projection, in the order of ATTENTION_PROJECTIONS.
                    let per = (count / ATTENTION_PROJECTIONS.len()).max(1);
                    (0..count)
                        .map(|i| {
                            let part = ATTENTION_PROJECTIONS[(i / per).min(3)];
                            format!("{}/{}", group.replace("/vars", &format!("/{part}/vars")), i % per)
                        })
                        .collect()
                } else {
                    (0..count).map(|i| format!("{group}/{i}")).collect()
                };
                (*index, paths)
            })
            .collect()
    }

    /// The legacy `.h5` file's bytes: Keras 3's `legacy_h5_format` layout.
    fn legacy_file(&self) -> Result<Vec<u8>, String> {
        let mut root = Group::new();
        let mut config = self.config.clone();
        let compile = config.as_object_mut().and_then(|c| c.remove("compile_config"));
        for key in ["module", "registered_name", "build_config"] {
            if let Some(object) = config.as_object_mut() {
                object.remove(key);
            }
        }
        root.set_attribute("model_config", Attribute::Text(config.to_string()));
        if let Some(compile) = compile {
            let training = json!({
                "loss": compile["loss"],
                "metrics": compile["metrics"],
                "loss_weights": compile["loss_weights"],
                "optimizer_config": compile["optimizer"],
            });
            root.set_attribute("training_config", Attribute::Text(training.to_string()));
        }
        root.set_attribute("keras_version", Attribute::Text(KERAS_VERSION.into()));
        root.set_attribute("backend", Attribute::Text("tensorflow".into()));
        let weights = root.group("model_weights")?;
        let mut layer_names = Vec::new();
        // Keras gives each listed layer with weights the next stored group with weights: the
        // list is in Keras's layer order, a nested model one entry holding its layers' weights.
        let entries = self.config["config"]["layers"].as_array().cloned().unwrap_or_default();
        for entry in &entries {
            let name = keras_nested::entry_name(entry);
            let group = weights.group(&name)?;
            let mut weight_names = Vec::new();
            // Keras's order within a nested model: its trainable weights, then the others.
            let mut members = Vec::new();
            self.layers_of(entry, &mut members);
            let (trainable, frozen): (Vec<_>, Vec<_>) = members
                .iter()
                .flat_map(|&i| self.model.layers()[i].params().into_iter().map(move |id| (i, id)))
                .partition(|&(i, id)| {
                    keras_nested::is_model(entry)
                        && self.model.layers()[i].is_trainable()
                        && self.model.is_trainable_variable(id)
                });
            for (index, id) in trainable.into_iter().chain(frozen) {
                let layer = self.model.layers()[index].name();
                let value = self.model.params().value(id);
                // `dense/kernel`, as tf.keras names weights (less its `:0`); under a nested
                // model, `base/dense/kernel`.
                let full = self.model.params().name(id);
                let own = full.strip_prefix(&format!("{layer}/")).unwrap_or(full);
                let path = match keras_nested::is_model(entry) {
                    true => format!("{name}/{layer}/{own}"),
                    false => format!("{layer}/{own}"),
                };
                group.add_array(&path, value.shape(), value.data())?;
                weight_names.push(path);
            }
            group.set_attribute("weight_names", Attribute::Texts(weight_names));
            layer_names.push(name);
        }
        weights.set_attribute("layer_names", Attribute::Texts(layer_names));
        weights.set_attribute("keras_version", Attribute::Text(KERAS_VERSION.into()));
        weights.set_attribute("backend", Attribute::Text("tensorflow".into()));
        root.to_bytes()
    }
}

impl SavedModel<'_> {
    /// The model's layers (indices) that `entry` of config.json stands for, in Keras's order: a
    /// layer itself, or a nested model's layers, nested models inside it opened in place.
    fn layers_of(&self, entry: &Value, layers: &mut Vec<usize>) {
        if keras_nested::is_model(entry) {
            for inner in entry["config"]["layers"].as_array().into_iter().flatten() {
                self.layers_of(inner, layers);
            }
            return;
        }
        let name = keras_nested::entry_name(entry);
        if let Some(index) = self.model.layers().iter().position(|l| l.name() == name) {
            layers.push(index);
        }
    }
}

/// Where Keras keeps the `count` weights of a wrapper of class `class` around a layer of class
/// `inner` whose own weights would be in `group` (`layers/bidirectional/vars`): a
/// Bidirectional's forward layer's then its backward layer's, each in its cell's group
/// (`layers/bidirectional/forward_layer/cell/vars/0`); a TimeDistributed's in its layer's
/// group (`layers/time_distributed/layer/vars/0`, or `layer/cell/vars` for a recurrent one).
fn wrapped_weight_paths(group: &str, class: &str, inner: &str, count: usize) -> Vec<String> {
    let cell = if RECURRENT.contains(&inner) { "/cell" } else { "" };
    let at = |part: &str| group.replace("/vars", &format!("/{part}{cell}/vars"));
    if class == "Bidirectional" {
        let half = count / 2;
        let (forward, backward) = (at("forward_layer"), at("backward_layer"));
        (0..count)
            .map(|i| match i < half {
                true => format!("{forward}/{i}"),
                false => format!("{backward}/{}", i - half),
            })
            .collect()
    } else {
        let layer = at("layer");
        (0..count).map(|i| format!("{layer}/{i}")).collect()
    }
}

/// The order Keras gives a functional model's layers (`Functional.layers`, from Keras's
/// `map_graph`): by depth, the number of calls between a call and the outputs, deepest first
/// (a shared layer at its deepest call), ties in the order a depth-first walk from the outputs
/// first meets them. Keras numbers the weight groups of layers of one class in this order
/// (`dense`, `dense_1`, ...) whatever order config.json lists them in, so config.json lists
/// them in it too, as Keras does.
pub(super) fn keras_layer_order(model: &Model) -> Vec<usize> {
    let calls = model.graph_calls();
    let layer_count = model.layers().len();
    let parents = |call: usize| -> Vec<usize> {
        calls[call]
            .inputs
            .iter()
            .filter_map(|source| match *source {
                Source::Output(output) => Some(model.output_origin(output).0),
                Source::ModelInput(_) => None,
            })
            .collect()
    };
    // The walk, without recursion (a deep model must not exhaust the stack): a call is met when
    // first pushed, finished when all its inputs are.
    let mut met: Vec<Option<usize>> = vec![None; layer_count];
    let mut met_count = 0;
    let mut finished = vec![false; calls.len()];
    let mut finish_order = Vec::with_capacity(calls.len());
    for &output in model.graph_outputs() {
        let mut stack = vec![(model.output_origin(output).0, 0usize)];
        while let Some((call, next)) = stack.pop() {
            if next == 0 {
                if finished[call] {
                    continue;
                }
                let layer = calls[call].layer;
                if met[layer].is_none() {
                    met[layer] = Some(met_count);
                    met_count += 1;
                }
            }
            let inputs = parents(call);
            match inputs.get(next) {
                Some(&parent) => {
                    stack.push((call, next + 1));
                    if !finished[parent] {
                        stack.push((parent, 0));
                    }
                }
                None => {
                    finished[call] = true;
                    finish_order.push(call);
                }
            }
        }
    }
    let mut call_depth: Vec<Option<usize>> = vec![None; calls.len()];
    let mut layer_depth: Vec<Option<usize>> = vec![None; layer_count];
    for &call in finish_order.iter().rev() {
        let layer = calls[call].layer;
        let depth = call_depth[call].unwrap_or(0).max(layer_depth[layer].unwrap_or(0));
        layer_depth[layer] = Some(depth);
        call_depth[call] = Some(depth);
        for parent in parents(call) {
            call_depth[parent] = Some(call_depth[parent].unwrap_or(0).max(depth + 1));
        }
    }
    let mut order: Vec<usize> = (0..layer_count).collect();
    // Layers no output reaches (none in a model strata built) go last, in their own order.
    order.sort_by_key(|&l| (std::cmp::Reverse(layer_depth[l]), met[l].unwrap_or(usize::MAX), l));
    order
}

/// config.json: the model's `get_config()` in Keras 3's serialization, its layers in `order`,
/// with `compile_config` when compiled.
fn keras_config(model: &Model, functional: bool, order: &[usize]) -> Value {
    let shapes = model.graph_output_shapes();
    let input_shapes = model.input_shapes();
    let batch = |shape: &[usize]| -> Value {
        let mut dims = vec![Value::Null];
        dims.extend(shape.iter().map(|&d| json!(d)));
        Value::Array(dims)
    };
    let source_shape = |source: &Source| -> Value {
        match *source {
            Source::ModelInput(i) => batch(&input_shapes[i]),
            Source::Output(o) => batch(&shapes[o]),
        }
    };
    let calls = model.graph_calls();
    let mut entries = Vec::new();
    for &index in order {
        let layer = &model.layers()[index];
        let class = layer.class_name();
        let (config, call_settings) = split_call_settings(class, layer_config(class, layer.config()));
        let mut entry = json!({
            "module": "keras.layers",
            "class_name": class,
            "config": config,
            "registered_name": null,
        });
        let own_calls: Vec<_> = calls.iter().enumerate().filter(|(_, c)| c.layer == index).collect();
        if !layer.is_input()
            && let Some((_, first)) = own_calls.first()
        {
            entry["build_config"] = match first.inputs.as_slice() {
                // MultiHeadAttention builds from (query_shape, value_shape, key_shape), which
                // Keras saves by name; its mask input is no part of it.
                [query, value, rest @ ..] if class == "MultiHeadAttention" => {
                    let mut shapes = json!({"query_shape": source_shape(query), "value_shape": source_shape(value)});
                    let key = rest.len() > call_settings.contains_key("attention_mask_input") as usize;
                    if key {
                        shapes["key_shape"] = source_shape(&rest[0]);
                    }
                    json!({ "shapes_dict": shapes })
                }
                [one] => json!({ "input_shape": source_shape(one) }),
                many => json!({ "input_shape": Value::Array(many.iter().map(source_shape).collect()) }),
            };
        }
        if functional {
            entry["name"] = json!(layer.name());
            let nodes: Vec<Value> = match layer.is_input() {
                true => Vec::new(),
                false => own_calls
                    .iter()
                    .map(|(_, call)| {
                        let mut tensors: Vec<Value> = call.inputs.iter().map(|s| keras_tensor(model, s)).collect();
                        let mut kwargs = call_settings.clone();
                        // MultiHeadAttention's mask input is its `attention_mask` argument.
                        if kwargs.remove("attention_mask_input").is_some()
                            && let Some(mask) = tensors.pop()
                        {
                            kwargs.insert("attention_mask".into(), mask);
                        }
                        let args = match tensors.len() {
                            1 => Value::Array(tensors),
                            // MultiHeadAttention takes (query, value, key) as arguments; merge
                            // and attention layers take one list.
                            _ if class == "MultiHeadAttention" => Value::Array(tensors),
                            _ => json!([tensors]),
                        };
                        json!({"args": args, "kwargs": kwargs})
                    })
                    .collect(),
            };
            entry["inbound_nodes"] = Value::Array(nodes);
        }
        entries.push(entry);
    }
    let mut config = if functional {
        let reference = |output: usize| {
            let (call, tensor) = model.output_origin(output);
            let (name, node) = model.call_reference(call);
            json!([name, node, tensor])
        };
        let inputs: Vec<Value> = (0..model.input_count())
            .filter_map(|i| calls.iter().find(|c| c.inputs == [Source::ModelInput(i)]))
            .map(|c| reference(c.first_output))
            .collect();
        let outputs: Vec<Value> = model.graph_outputs().iter().map(|&o| reference(o)).collect();
        // One input or output is written bare, as Keras writes it (the model then takes and
        // returns a tensor, not a list of one).
        let bare = |mut list: Vec<Value>| match list.len() {
            1 => list.remove(0),
            _ => Value::Array(list),
        };
        json!({
            "module": "keras.src.models.functional",
            "class_name": "Functional",
            "config": {
                "name": model.name(),
                "trainable": true,
                "layers": entries,
                "input_layers": bare(inputs),
                "output_layers": bare(outputs),
            },
            "registered_name": "Functional",
            "build_config": {"input_shape": null},
        })
    } else {
        let input = batch(model.input_shape().unwrap_or(&[]));
        if !model.layers().first().is_some_and(|l| l.is_input()) {
            let input_layer = json!({
                "module": "keras.layers",
                "class_name": "InputLayer",
                "config": {"batch_shape": input, "dtype": "float32", "name": "input_layer"},
                "registered_name": null,
            });
            entries.insert(0, input_layer);
        }
        json!({
            "module": "keras",
            "class_name": "Sequential",
            "config": {
                "name": model.name(),
                "trainable": true,
                "dtype": "float32",
                "layers": entries,
                "build_input_shape": input,
            },
            "registered_name": null,
            "build_config": {"input_shape": input},
        })
    };
    if let Some(compile) = compile_config(model) {
        config["compile_config"] = compile;
    }
    config
}

/// A call input as Keras 3 serializes a tensor: its shape and `keras_history`, the layer call
/// and output that made it.
fn keras_tensor(model: &Model, source: &Source) -> Value {
    let (shape, history) = match *source {
        Source::Output(output) => {
            let (call, tensor) = model.output_origin(output);
            let (name, node) = model.call_reference(call);
            (model.graph_output_shapes()[output].clone(), json!([name, node, tensor]))
        }
        // Only input layers read the model's inputs directly; kept total all the same.
        Source::ModelInput(i) => (model.input_shapes()[i].clone(), Value::Null),
    };
    let mut dims = vec![Value::Null];
    dims.extend(shape.iter().map(|&d| json!(d)));
    json!({"class_name": "__keras_tensor__", "config": {
        "shape": dims,
        "dtype": "float32",
        "keras_history": history,
    }})
}

/// A layer's config as Keras's constructor takes it: strata's config uses Keras's names; the
/// input layer takes no `trainable` and states its dtype.
fn layer_config(class: &str, mut config: Value) -> Value {
    if let Some(object) = config.as_object_mut() {
        if class == "InputLayer" {
            object.remove("trainable");
            object.insert("dtype".into(), json!("float32"));
        }
        object.entry("dtype").or_insert(json!("float32"));
    }
    config
}

/// The settings strata keeps on an attention layer that Keras takes as arguments of each call
/// (its constructor refuses them).
const CALL_SETTINGS: [&str; 3] = ["use_causal_mask", "return_attention_scores", "attention_mask_input"];

/// `config` without the [`CALL_SETTINGS`] of an attention layer, and those set to true, as the
/// keyword arguments of its calls.
fn split_call_settings(class: &str, mut config: Value) -> (Value, serde_json::Map<String, Value>) {
    let mut kwargs = serde_json::Map::new();
    if !matches!(class, "MultiHeadAttention" | "Attention" | "AdditiveAttention") {
        return (config, kwargs);
    }
    if let Some(object) = config.as_object_mut() {
        for key in CALL_SETTINGS {
            if let Some(value) = object.remove(key)
                && value == json!(true)
            {
                kwargs.insert(key.into(), value);
            }
        }
    }
    (config, kwargs)
}

/// `compile`'s settings as Keras 3's `compile_config`: Keras objects carry their module, a
/// loss on logits is a loss object, and nothing Keras's `compile` does not take is left.
fn compile_config(model: &Model) -> Option<Value> {
    let strata = model.compile_config()?;
    let mut optimizer = strata["optimizer"].clone();
    if let Some(rate) = optimizer["config"].get_mut("learning_rate")
        && rate.get("class_name").is_some()
    {
        rate["module"] = json!("keras.optimizers.schedules");
        rate["registered_name"] = Value::Null;
    }
    optimizer["module"] = json!("keras.optimizers");
    optimizer["registered_name"] = Value::Null;
    let losses = model.losses().unwrap_or(&[]);
    // A loss object where a setting differs from Keras's defaults, else its name.
    let loss_value = |loss: &crate::losses::Loss| match (loss.from_logits(), loss.label_smoothing()) {
        (false, 0.0) => json!(loss.name()),
        (from_logits, smoothing) => {
            let mut config = json!({"from_logits": from_logits});
            if smoothing != 0.0 {
                config["label_smoothing"] = json!(smoothing);
            }
            json!({
                "module": "keras.losses",
                "class_name": camel_case(loss.name()),
                "config": config,
                "registered_name": null,
            })
        }
    };
    let (loss, loss_weights) = match losses {
        [one] => (loss_value(one), Value::Null),
        many => (
            Value::Array(many.iter().map(loss_value).collect()),
            strata["loss_weights"].clone(),
        ),
    };
    Some(json!({
        "optimizer": optimizer,
        "loss": loss,
        "loss_weights": loss_weights,
        "metrics": strata["metrics"],
        "weighted_metrics": null,
    }))
}

/// `sparse_categorical_crossentropy` → `SparseCategoricalCrossentropy`, a loss's class name.
fn camel_case(snake: &str) -> String {
    snake
        .split('_')
        .map(|word| {
            let mut chars = word.chars();
            chars
                .next()
                .map(|first| first.to_ascii_uppercase().to_string() + chars.as_str())
                .unwrap_or_default()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loss_class_names_are_keras_s() {
        assert_eq!(
            camel_case("sparse_categorical_crossentropy"),
            "SparseCategoricalCrossentropy"
        );
        assert_eq!(camel_case("binary_crossentropy"), "BinaryCrossentropy");
    }

    #[test]
    fn extensions_name_the_format() {
        assert_eq!(KerasFormat::of(Path::new("m.keras")), Some(KerasFormat::Archive));
        assert_eq!(KerasFormat::of(Path::new("dir/M.H5")), Some(KerasFormat::Legacy));
        assert_eq!(KerasFormat::of(Path::new("m.hdf5")), Some(KerasFormat::Legacy));
        assert_eq!(KerasFormat::of(Path::new("m.safetensors")), None);
        assert_eq!(KerasFormat::of(Path::new("keras")), None);
    }
}
