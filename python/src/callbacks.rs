//! Callbacks during `fit`, which runs with the GIL released: strata's own callbacks built from
//! the Python ones' arguments (they run in Rust, costing nothing per batch), Python `Callback`
//! subclasses (the GIL is taken only for the hooks a subclass overrides), and a watch that
//! turns Ctrl-C into `KeyboardInterrupt` after the batch.

use crate::errors::lock;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use strata::callbacks::{CSVLogger, EarlyStopping, Mode, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN};
use strata::model::{Callback, Control, EpochLogs, History, Model};

/// Where a model lives while Python may reach it: the engine's slot. `fit` takes the model
/// out for the run and puts it back during a Python hook, so the hook's `self.model` works.
pub type Slot = Arc<Mutex<Option<Model>>>;

/// The first Python exception raised during `fit` (by a hook, or Ctrl-C), raised again when
/// `fit` returns.
pub type Failure = Arc<Mutex<Option<PyErr>>>;

/// A Python `Callback` object and the hooks its class overrides.
pub struct PythonCallback {
    object: Py<PyAny>,
    /// The Python model, whose `stop_training` a hook may set.
    owner: Py<PyAny>,
    hooks: Vec<String>,
    slot: Slot,
    failure: Failure,
    last_logs: Option<EpochLogs>,
}

/// The arguments of one hook.
enum Hook<'a> {
    Train(Option<&'a EpochLogs>),
    Epoch(usize, Option<&'a EpochLogs>),
    Batch(usize, Option<f32>),
}

/// Keras's `logs` dict of one epoch.
pub fn logs_dict<'py>(py: Python<'py>, logs: &EpochLogs) -> PyResult<Bound<'py, PyDict>> {
    let dict = PyDict::new(py);
    for key in logs.keys() {
        if let Some(value) = logs.get(&key) {
            dict.set_item(key, value)?;
        }
    }
    Ok(dict)
}

impl PythonCallback {
    /// Wraps `object`, calling only the hooks named in `hooks`.
    pub fn new(object: Py<PyAny>, owner: Py<PyAny>, hooks: Vec<String>, slot: Slot, failure: Failure) -> Self {
        PythonCallback {
            object,
            owner,
            hooks,
            slot,
            failure,
            last_logs: None,
        }
    }

    /// Calls the hook `name` with the GIL held and the model reachable from Python; an
    /// exception is kept for `fit` to raise and stops training.
    fn call(&self, model: &mut Model, name: &str, hook: Hook) -> strata::Result<Control> {
        if !self.hooks.iter().any(|h| h == name) {
            return Ok(Control::Continue);
        }
        *lock(&self.slot) = Some(std::mem::take(model));
        let outcome = Python::with_gil(|py| -> PyResult<bool> {
            let args = match hook {
                Hook::Train(logs) => {
                    let logs = match logs {
                        Some(logs) => logs_dict(py, logs)?,
                        None => PyDict::new(py),
                    };
                    PyTuple::new(py, [logs.into_any()])?
                }
                Hook::Epoch(epoch, logs) => {
                    let logs = match logs {
                        Some(logs) => logs_dict(py, logs)?,
                        None => PyDict::new(py),
                    };
                    PyTuple::new(py, [(epoch - 1).into_pyobject(py)?.into_any(), logs.into_any()])?
                }
                Hook::Batch(batch, loss) => {
                    let logs = PyDict::new(py);
                    if let Some(loss) = loss {
                        logs.set_item("loss", loss)?;
                    }
                    PyTuple::new(py, [(batch - 1).into_pyobject(py)?.into_any(), logs.into_any()])?
                }
            };
            self.object.bind(py).call_method1(name, args)?;
            self.owner.bind(py).getattr("stop_training")?.is_truthy()
        });
        match lock(&self.slot).take() {
            Some(back) => *model = back,
            None => {
                return Err(strata::Error::Usage(
                    "the model was taken away during a callback".into(),
                ));
            }
        }
        match outcome {
            Ok(stop) => Ok(if stop { Control::Stop } else { Control::Continue }),
            Err(error) => {
                lock(&self.failure).get_or_insert(error);
                Err(strata::Error::Usage(format!(
                    "the callback's {name} raised an exception"
                )))
            }
        }
    }
}

impl Callback for PythonCallback {
    fn on_train_begin(&mut self, model: &mut Model) -> strata::Result<()> {
        self.call(model, "on_train_begin", Hook::Train(None)).map(drop)
    }

    fn on_train_end(&mut self, model: &mut Model, _history: &History) -> strata::Result<()> {
        let last = self.last_logs.take();
        self.call(model, "on_train_end", Hook::Train(last.as_ref())).map(drop)
    }

    fn on_epoch_begin(&mut self, model: &mut Model, epoch: usize) -> strata::Result<()> {
        self.call(model, "on_epoch_begin", Hook::Epoch(epoch, None)).map(drop)
    }

    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> strata::Result<Control> {
        self.last_logs = Some(logs.clone());
        self.call(model, "on_epoch_end", Hook::Epoch(logs.epoch, Some(logs)))
    }

    fn on_batch_begin(&mut self, model: &mut Model, _epoch: usize, batch: usize) -> strata::Result<()> {
        self.call(model, "on_train_batch_begin", Hook::Batch(batch, None))
            .map(drop)
    }

    fn on_batch_end(&mut self, model: &mut Model, _epoch: usize, batch: usize, loss: f32) -> strata::Result<Control> {
        self.call(model, "on_train_batch_end", Hook::Batch(batch, Some(loss)))
    }
}

/// Looks at Python's signal flag (Ctrl-C) every 100 ms of training, after a batch: a pending
/// `KeyboardInterrupt` stops training and is raised when `fit` returns.
pub struct InterruptWatch {
    last_check: Instant,
    failure: Failure,
}

impl InterruptWatch {
    /// A watch that keeps the interrupt in `failure`.
    pub fn new(failure: Failure) -> Self {
        InterruptWatch {
            last_check: Instant::now(),
            failure,
        }
    }

    fn check(&mut self) -> Control {
        if self.last_check.elapsed() < Duration::from_millis(100) {
            return Control::Continue;
        }
        self.last_check = Instant::now();
        match Python::with_gil(|py| py.check_signals()) {
            Ok(()) => Control::Continue,
            Err(interrupt) => {
                lock(&self.failure).get_or_insert(interrupt);
                Control::Stop
            }
        }
    }
}

impl Callback for InterruptWatch {
    fn on_batch_end(
        &mut self,
        _model: &mut Model,
        _epoch: usize,
        _batch: usize,
        _loss: f32,
    ) -> strata::Result<Control> {
        Ok(self.check())
    }

    fn on_epoch_end(&mut self, _model: &mut Model, _logs: &EpochLogs) -> strata::Result<Control> {
        Ok(self.check())
    }
}

/// One of strata's callbacks from the class name and arguments of its Python counterpart.
pub fn native(kind: &str, args: &Bound<'_, PyDict>) -> PyResult<Box<dyn Callback + Send>> {
    let get = |key: &str| -> PyResult<Option<Bound<'_, PyAny>>> { args.get_item(key) };
    let text = |key: &str, default: &str| -> PyResult<String> {
        Ok(match get(key)? {
            Some(value) if !value.is_none() => value.extract()?,
            _ => default.to_string(),
        })
    };
    let number = |key: &str, default: f32| -> PyResult<f32> {
        Ok(match get(key)? {
            Some(value) if !value.is_none() => value.extract()?,
            _ => default,
        })
    };
    let count = |key: &str, default: usize| -> PyResult<usize> {
        Ok(match get(key)? {
            Some(value) if !value.is_none() => value.extract()?,
            _ => default,
        })
    };
    let flag = |key: &str| -> PyResult<bool> {
        Ok(match get(key)? {
            Some(value) => value.is_truthy()?,
            None => false,
        })
    };
    let mode = |key: &str| -> PyResult<Mode> {
        match text(key, "auto")?.as_str() {
            "auto" => Ok(Mode::Auto),
            "min" => Ok(Mode::Min),
            "max" => Ok(Mode::Max),
            other => Err(pyo3::exceptions::PyValueError::new_err(format!(
                "{kind}: mode must be \"auto\", \"min\" or \"max\", got \"{other}\""
            ))),
        }
    };
    let verbose = count("verbose", 0)?.min(2) as u8;
    Ok(match kind {
        "EarlyStopping" => {
            let mut callback = EarlyStopping::new(&text("monitor", "val_loss")?)
                .min_delta(number("min_delta", 0.0)?)
                .patience(count("patience", 0)?)
                .mode(mode("mode")?)
                .restore_best_weights(flag("restore_best_weights")?)
                .start_from_epoch(count("start_from_epoch", 0)?)
                .verbose(verbose);
            if let Some(baseline) = get("baseline")?.filter(|b| !b.is_none()) {
                callback = callback.baseline(baseline.extract()?);
            }
            Box::new(callback)
        }
        "ModelCheckpoint" => Box::new(
            ModelCheckpoint::new(text("filepath", "")?)
                .monitor(&text("monitor", "val_loss")?)
                .save_best_only(flag("save_best_only")?)
                .verbose(verbose),
        ),
        "ReduceLROnPlateau" => Box::new(
            ReduceLROnPlateau::new(&text("monitor", "val_loss")?)
                .factor(number("factor", 0.1)?)
                .patience(count("patience", 10)?)
                .mode(mode("mode")?)
                .min_delta(number("min_delta", 1e-4)?)
                .cooldown(count("cooldown", 0)?)
                .min_lr(number("min_lr", 0.0)?)
                .verbose(verbose),
        ),
        "CSVLogger" => {
            let separator = text("separator", ",")?;
            let mut chars = separator.chars();
            let (Some(separator), None) = (chars.next(), chars.next()) else {
                return Err(pyo3::exceptions::PyValueError::new_err(format!(
                    "CSVLogger: separator must be one character, got {separator:?}"
                )));
            };
            Box::new(
                CSVLogger::new(text("filename", "")?)
                    .separator(separator)
                    .append(flag("append")?),
            )
        }
        "TerminateOnNaN" => Box::new(TerminateOnNaN::new()),
        other => {
            return Err(pyo3::exceptions::PyNotImplementedError::new_err(format!(
                "strata has no callback {other}"
            )));
        }
    })
}
