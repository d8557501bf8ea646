//! `Engine`: one strata `Model` behind the Python `keras.Model`. The Python side describes the
//! model in Keras's config vocabulary and strata builds it through its own config reader and
//! layer registry, so every registered layer works with no code here.

use crate::arrays::{array_from, tensors_from};
use crate::callbacks::{Failure, InterruptWatch, PythonCallback, Slot, logs_dict, native};
use crate::errors::{guarded, lock, to_python};
use numpy::PyArrayDyn;
use pyo3::exceptions::{PyRuntimeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyList};
use std::sync::{Arc, Mutex};
use strata::io::config::{Format, parse};
use strata::model::{Callback, FitOptions, Model};

/// A strata model, reachable from Python. While `fit` runs, the model is out of the slot
/// (calls from other threads raise `RuntimeError`), except during a Python callback's hook.
#[pyclass(module = "strata._strata")]
pub struct Engine {
    slot: Slot,
}

/// `(x, y)`: one array per input, one per output.
type ArrayPair<'py> = (Vec<Bound<'py, PyAny>>, Vec<Bound<'py, PyAny>>);

/// The error of reaching a model that `fit` is training.
fn busy() -> PyErr {
    PyRuntimeError::new_err("the model is being trained by fit (use it from a callback's hooks)")
}

/// Parses a model description (strata's model-file JSON: `layers`, `compile`), naming it
/// `origin` in errors.
fn description(text: &str, origin: &str) -> PyResult<strata::io::config::ModelFile> {
    guarded("reading the model description", || {
        // A description is an argument, not a file: every error in it is a `ValueError`.
        parse(text, Format::Json, origin).map_err(|e| PyValueError::new_err(e.to_string()))
    })
}

impl Engine {
    /// An engine holding `model`.
    fn holding(model: Model) -> Self {
        Engine {
            slot: Arc::new(Mutex::new(Some(model))),
        }
    }

    /// Runs `work` on the model, a panic becoming `RuntimeError`.
    fn with<T>(&self, what: &str, work: impl FnOnce(&mut Model) -> PyResult<T>) -> PyResult<T> {
        let mut guard = lock(&self.slot);
        let model = guard.as_mut().ok_or_else(busy)?;
        guarded(what, || work(model))
    }

    /// The model, out of the slot (for a run with the GIL released); [`Engine::put`] returns it.
    fn take(&self) -> PyResult<Model> {
        lock(&self.slot).take().ok_or_else(busy)
    }

    fn put(&self, model: Model) {
        *lock(&self.slot) = Some(model);
    }

    /// The ids of the weights of layer `name` (of every layer, in order, without a name).
    fn weight_ids(model: &Model, name: Option<&str>) -> PyResult<Vec<strata::autograd::ParamId>> {
        Ok(match name {
            Some(name) => model.get_layer(name).map_err(to_python)?.params(),
            None => model.layers().iter().flat_map(|l| l.params()).collect(),
        })
    }
}

#[pymethods]
impl Engine {
    /// A model from a description in strata's model-file JSON (Keras's layer configs).
    #[staticmethod]
    fn from_description(text: &str) -> PyResult<Engine> {
        Ok(Engine::holding(description(text, "the model")?.model))
    }

    /// A Keras application, `arguments` as a description's `application` table holds them
    /// (`{"name": "MobileNetV2", "input_shape": [96, 96, 3], "weights": "w.h5", ...}`), named
    /// `model_name` (Keras's default name without one), built with its weights.
    #[staticmethod]
    #[pyo3(signature = (arguments, model_name=None))]
    fn application(py: Python<'_>, arguments: &str, model_name: Option<&str>) -> PyResult<Engine> {
        let arguments: serde_json::Value = serde_json::from_str(arguments)
            .map_err(|e| PyValueError::new_err(format!("application arguments: {e}")))?;
        let mut description = serde_json::json!({ "application": arguments });
        if let Some(name) = model_name {
            description["name"] = name.into();
        }
        let model = py.allow_threads(|| {
            guarded("keras.applications", || {
                let text = description.to_string();
                let file = strata::applications::parse_description(&text, Format::Json, "keras.applications")
                    .map_err(to_python)?;
                let mut model = file.model;
                if model.input_shapes().is_empty() {
                    // Built at once, as Keras's builders make the weights.
                    let shape = model
                        .layers()
                        .first()
                        .and_then(|l| l.declared_input_shape())
                        .map(<[usize]>::to_vec);
                    let shape = shape.ok_or_else(|| PyValueError::new_err("the application has no input shape"))?;
                    model.build(&shape).map_err(to_python)?;
                }
                Ok(model)
            })
        })?;
        Ok(Engine::holding(model))
    }

    /// A model saved by `save` (or a Keras `.keras` / `.h5` file).
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Engine> {
        let model = py.allow_threads(|| guarded("load_model", || strata::load_model(&path).map_err(to_python)))?;
        Ok(Engine::holding(model))
    }

    /// Sets the seed weights and shuffles are drawn from (before the model is built).
    fn seed(&self, seed: u64) -> PyResult<()> {
        self.with("seed", |model| {
            model.seed(seed);
            Ok(())
        })
    }

    /// Appends a layer (`{"class_name": ..., "config": {...}}`) to a stack of layers.
    fn add(&self, entry: &str) -> PyResult<()> {
        self.with("add", |model| {
            let entry: serde_json::Value =
                serde_json::from_str(entry).map_err(|e| PyValueError::new_err(format!("layer entry: {e}")))?;
            let class = entry.get("class_name").and_then(|c| c.as_str()).unwrap_or_default();
            let empty = serde_json::json!({});
            let config = entry.get("config").unwrap_or(&empty);
            let layer = strata::layers::from_config(class, config).map_err(to_python)?;
            model.add_boxed(layer);
            Ok(())
        })
    }

    /// Compiles with the `compile` section of a description (its layers are not read).
    fn compile(&self, text: &str) -> PyResult<()> {
        let file = description(text, "compile")?;
        self.with("compile", |model| {
            let metrics: Vec<Vec<String>> = file.metric_lists();
            let borrowed: Vec<Vec<&str>> = metrics.iter().map(|m| m.iter().map(String::as_str).collect()).collect();
            let slices: Vec<&[&str]> = borrowed.iter().map(Vec::as_slice).collect();
            let losses = match file.losses.len() {
                // One loss given: every output's, as Keras applies it.
                1 => vec![file.losses[0]; model.output_names().len().max(1)],
                _ => file.losses.clone(),
            };
            let metrics = match slices.len() {
                1 => vec![slices[0]; losses.len()],
                _ => slices,
            };
            model
                .compile_outputs(file.optimizer, &losses, &file.loss_weights, &metrics)
                .map_err(to_python)
        })
    }

    /// Builds the weights for per-sample input shapes (one per input).
    fn build(&self, shapes: Vec<Vec<usize>>) -> PyResult<()> {
        self.with("build", |model| {
            let borrowed: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
            model.build_inputs(&borrowed).map_err(to_python)
        })
    }

    /// Keras's summary table.
    fn summary(&self) -> PyResult<String> {
        self.with("summary", |model| model.summary().map_err(to_python))
    }

    /// The model's config (strata's file format, Keras's layer configs), as JSON.
    fn config(&self) -> PyResult<String> {
        self.with("config", |model| Ok(model.config().to_string()))
    }

    /// The compile settings, as JSON (`None` before `compile`).
    fn compile_config(&self) -> PyResult<Option<String>> {
        self.with("compile_config", |model| {
            Ok(model.compile_config().map(|c| c.to_string()))
        })
    }

    /// The layers' names and class names, in order (the input layer included).
    fn layers(&self) -> PyResult<Vec<(String, String)>> {
        self.with("layers", |model| {
            Ok(model
                .layers()
                .iter()
                .map(|l| (l.name().to_string(), l.class_name().to_string()))
                .collect())
        })
    }

    /// The weights of layer `name`, or of every layer in order, as arrays.
    #[pyo3(signature = (name=None))]
    fn get_weights<'py>(&self, py: Python<'py>, name: Option<&str>) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>> {
        self.with("get_weights", |model| {
            Engine::weight_ids(model, name)?
                .into_iter()
                .map(|id| array_from(py, model.params().value(id)))
                .collect()
        })
    }

    /// Sets the weights of layer `name` (of every layer without a name), each shape checked.
    #[pyo3(signature = (arrays, name=None))]
    fn set_weights(&self, arrays: Vec<Bound<'_, PyAny>>, name: Option<&str>) -> PyResult<()> {
        let tensors = tensors_from(&arrays, "weights")?;
        self.with("set_weights", |model| {
            let ids = Engine::weight_ids(model, name)?;
            let whose = name.map_or("the model".to_string(), |n| format!("layer '{n}'"));
            if ids.len() != tensors.len() {
                return Err(PyValueError::new_err(format!(
                    "{whose} expects {} weights, but the list has {}",
                    ids.len(),
                    tensors.len()
                )));
            }
            for (&id, tensor) in ids.iter().zip(&tensors) {
                let expected = model.params().value(id).shape();
                if expected != tensor.shape() {
                    return Err(PyValueError::new_err(format!(
                        "{whose}: weight '{}' has shape {expected:?}, but the provided array has shape {:?}",
                        model.params().name(id),
                        tensor.shape()
                    )));
                }
            }
            for (id, tensor) in ids.into_iter().zip(tensors) {
                *model.params_mut().value_mut(id) = tensor;
            }
            Ok(())
        })
    }

    /// Per weight of layer `name` (of every layer without one), in `get_weights`'s order:
    /// whether training changes it (Keras's `trainable_weights`): its layer is trainable and
    /// it is not a BatchNormalization moving statistic.
    #[pyo3(signature = (name=None))]
    fn weights_trainable(&self, name: Option<&str>) -> PyResult<Vec<bool>> {
        self.with("trainable_weights", |model| {
            let layers: Vec<&dyn strata::layers::Layer> = match name {
                Some(name) => vec![model.get_layer(name).map_err(to_python)?],
                None => model.layers().iter().map(|l| l.as_ref()).collect(),
            };
            Ok(layers
                .into_iter()
                .flat_map(|layer| {
                    let trainable = layer.is_trainable();
                    layer.params().into_iter().map(move |id| (trainable, id))
                })
                .map(|(trainable, id)| trainable && model.is_trainable_variable(id))
                .collect())
        })
    }

    /// Whether layer `name` is trainable.
    fn layer_trainable(&self, name: &str) -> PyResult<bool> {
        self.with("trainable", |model| {
            Ok(model.get_layer(name).map_err(to_python)?.is_trainable())
        })
    }

    /// Freezes or unfreezes layer `name` (effective at the next `compile`, as in Keras).
    fn set_layer_trainable(&self, name: &str, trainable: bool) -> PyResult<()> {
        self.with("trainable", |model| {
            model.get_layer_mut(name).map_err(to_python)?.set_trainable(trainable);
            Ok(())
        })
    }

    /// The number of weights (0 before the model is built).
    fn count_params(&self) -> PyResult<usize> {
        self.with("count_params", |model| Ok(model.count_params()))
    }

    /// The per-sample input shapes once built (empty before).
    fn input_shapes(&self) -> PyResult<Vec<Vec<usize>>> {
        self.with("input_shapes", |model| Ok(model.input_shapes().to_vec()))
    }

    /// The per-sample output shapes once built.
    fn output_shapes(&self) -> PyResult<Vec<Vec<usize>>> {
        self.with("output_shapes", |model| {
            Ok(model.output_shapes().into_iter().map(<[usize]>::to_vec).collect())
        })
    }

    /// The names of the output layers.
    fn output_names(&self) -> PyResult<Vec<String>> {
        self.with("output_names", |model| {
            Ok(model.output_names().into_iter().map(str::to_string).collect())
        })
    }

    /// The optimizer's learning rate now (`None` before `compile`).
    fn learning_rate(&self) -> PyResult<Option<f32>> {
        self.with("learning_rate", |model| {
            Ok(model.optimizer().map(|o| o.learning_rate()))
        })
    }

    /// Sets the optimizer's learning rate.
    fn set_learning_rate(&self, learning_rate: f32) -> PyResult<()> {
        self.with("learning_rate", |model| match model.optimizer_mut() {
            Some(optimizer) => {
                optimizer.set_learning_rate(learning_rate);
                Ok(())
            }
            None => Err(PyValueError::new_err("the model has no optimizer: compile it first")),
        })
    }

    /// Saves architecture, compile settings and weights to one file (strata's safetensors).
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<()> {
        let model = self.take()?;
        // Moved in and out: a shared `&Model` would need `Sync`, which optimizers are not.
        let (saved, model) = py.allow_threads(move || {
            let saved = guarded("save", || model.save(&path).map_err(to_python));
            (saved, model)
        });
        self.put(model);
        saved
    }

    /// Keras's `fit`, the GIL released for the whole run (taken only for Python hooks and a
    /// look at Ctrl-C every 100 ms). Returns each epoch's logs.
    #[pyo3(signature = (xs, ys, *, epochs, batch_size, verbose, validation_split, validation_data, shuffle,
        initial_epoch, callbacks, owner))]
    #[allow(clippy::too_many_arguments)]
    fn fit<'py>(
        &self,
        py: Python<'py>,
        xs: Vec<Bound<'py, PyAny>>,
        ys: Vec<Bound<'py, PyAny>>,
        epochs: usize,
        batch_size: usize,
        verbose: u8,
        validation_split: f32,
        validation_data: Option<ArrayPair<'py>>,
        shuffle: bool,
        initial_epoch: usize,
        callbacks: Vec<(String, Bound<'py, PyAny>, Vec<String>)>,
        owner: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyList>> {
        let (xs, ys) = (tensors_from(&xs, "x")?, tensors_from(&ys, "y")?);
        let validation = match &validation_data {
            Some((vx, vy)) => Some((tensors_from(vx, "validation x")?, tensors_from(vy, "validation y")?)),
            None => None,
        };
        let failure: Failure = Arc::new(Mutex::new(None));
        let mut hooks: Vec<Box<dyn Callback + Send>> = Vec::new();
        for (kind, payload, overridden) in callbacks {
            hooks.push(match kind.as_str() {
                "python" => Box::new(PythonCallback::new(
                    payload.unbind(),
                    owner.clone().unbind(),
                    overridden,
                    self.slot.clone(),
                    failure.clone(),
                )),
                _ => native(&kind, payload.downcast::<PyDict>()?)?,
            });
        }
        hooks.push(Box::new(InterruptWatch::new(failure.clone())));
        let mut model = self.take()?;
        let result = py.allow_threads(|| {
            guarded("fit", || {
                let mut options = FitOptions::default()
                    .epochs(epochs)
                    .batch_size(batch_size)
                    .verbose(verbose)
                    .validation_split(validation_split)
                    .shuffle(shuffle)
                    .initial_epoch(initial_epoch);
                let (x_refs, y_refs): (Vec<_>, Vec<_>) = (xs.iter().collect(), ys.iter().collect());
                let validation_refs = validation
                    .as_ref()
                    .map(|(vx, vy)| (vx.iter().collect::<Vec<_>>(), vy.iter().collect::<Vec<_>>()));
                if let Some((vx, vy)) = &validation_refs {
                    options = options.validation_data_multi(vx, vy);
                }
                let mut refs: Vec<&mut dyn Callback> =
                    hooks.iter_mut().map(|h| h.as_mut() as &mut dyn Callback).collect();
                model
                    .fit_multi_with_callbacks(&x_refs, &y_refs, options, &mut refs)
                    .map_err(to_python)
            })
        });
        self.put(model);
        if let Some(error) = lock(&failure).take() {
            return Err(error);
        }
        let history = result?;
        let epochs = PyList::empty(py);
        for logs in &history.epochs {
            epochs.append(logs_dict(py, logs)?)?;
        }
        Ok(epochs)
    }

    /// Keras's `evaluate`: the loss, the accuracy when compiled with it, the other metrics by
    /// key, and per output of a model with several outputs `(name, loss, accuracy, metrics)`.
    #[allow(clippy::type_complexity)]
    fn evaluate(
        &self,
        py: Python<'_>,
        xs: Vec<Bound<'_, PyAny>>,
        ys: Vec<Bound<'_, PyAny>>,
        batch_size: usize,
    ) -> PyResult<(
        f32,
        Option<f32>,
        Vec<(String, f32)>,
        Vec<(String, f32, Option<f32>, Vec<(String, f32)>)>,
    )> {
        let (xs, ys) = (tensors_from(&xs, "x")?, tensors_from(&ys, "y")?);
        let mut model = self.take()?;
        let scores = py.allow_threads(|| {
            guarded("evaluate", || {
                let (x_refs, y_refs): (Vec<_>, Vec<_>) = (xs.iter().collect(), ys.iter().collect());
                model.evaluate_multi(&x_refs, &y_refs, batch_size).map_err(to_python)
            })
        });
        self.put(model);
        let scores = scores?;
        let outputs = scores
            .outputs
            .iter()
            .map(|o| (o.name.clone(), o.loss, o.accuracy, o.metrics.clone()))
            .collect();
        Ok((scores.loss, scores.accuracy, scores.metrics, outputs))
    }

    /// Keras's `predict`: one array per output.
    fn predict<'py>(
        &self,
        py: Python<'py>,
        xs: Vec<Bound<'py, PyAny>>,
        batch_size: usize,
    ) -> PyResult<Vec<Bound<'py, PyArrayDyn<f32>>>> {
        let xs = tensors_from(&xs, "x")?;
        let mut model = self.take()?;
        let outputs = py.allow_threads(|| {
            guarded("predict", || {
                let refs: Vec<_> = xs.iter().collect();
                model.predict_multi(&refs, batch_size).map_err(to_python)
            })
        });
        self.put(model);
        outputs?.iter().map(|t| array_from(py, t)).collect()
    }
}
