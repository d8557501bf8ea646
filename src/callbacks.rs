//! Ready-made callbacks with Keras's names and arguments: [`EarlyStopping`] and
//! [`ModelCheckpoint`]. Write your own by implementing [`Callback`].

use crate::error::{Error, Result};
use crate::model::{Callback, Control, EpochLogs, Sequential};
use crate::tensor::Tensor;
use std::path::PathBuf;

/// Whether a monitored value improves by going down (losses) or up (accuracies).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `"min"`.
    Min,
    /// `"max"`.
    Max,
    /// `"auto"`: max for names containing `acc`, min otherwise (Keras's rule).
    Auto,
}

/// One metric of an epoch's logs by Keras's key (`loss`, `accuracy`, `val_loss`,
/// `val_accuracy`).
fn monitored(logs: &EpochLogs, key: &str) -> Result<Option<f32>> {
    Ok(match key {
        "loss" => Some(logs.loss),
        "accuracy" => logs.accuracy,
        "val_loss" => logs.val_loss,
        "val_accuracy" => logs.val_accuracy,
        _ => {
            return Err(Error::unknown(
                "monitored metric",
                key,
                &["loss", "accuracy", "val_loss", "val_accuracy"],
            ));
        }
    })
}

/// Tracks the best value of a monitored metric.
#[derive(Clone, Debug)]
struct Best {
    monitor: String,
    higher_is_better: bool,
    min_delta: f32,
    value: Option<f32>,
}

impl Best {
    fn new(monitor: &str, mode: Mode, min_delta: f32) -> Self {
        let higher_is_better = match mode {
            Mode::Max => true,
            Mode::Min => false,
            Mode::Auto => monitor.contains("acc"),
        };
        Best {
            monitor: monitor.to_string(),
            higher_is_better,
            min_delta: min_delta.abs(),
            value: None,
        }
    }

    /// Records `logs`; true when the monitored value improved on the best by more than `min_delta`.
    fn update(&mut self, logs: &EpochLogs) -> Result<bool> {
        let Some(current) = monitored(logs, &self.monitor)? else {
            return Ok(false);
        };
        let improved = match self.value {
            None => true,
            Some(best) if self.higher_is_better => current - self.min_delta > best,
            Some(best) => current + self.min_delta < best,
        };
        if improved {
            self.value = Some(current);
        }
        Ok(improved)
    }
}

/// Stops training when a monitored metric has stopped improving, as Keras's `EarlyStopping`.
/// Defaults: `monitor="val_loss"`, `min_delta=0`, `patience=0`, `mode="auto"`,
/// `restore_best_weights=false`.
///
/// ```
/// use strata::callbacks::EarlyStopping;
/// let early = EarlyStopping::new("val_loss").patience(3).restore_best_weights(true);
/// ```
#[derive(Clone, Debug)]
pub struct EarlyStopping {
    best: Best,
    patience: usize,
    restore_best_weights: bool,
    wait: usize,
    best_weights: Option<Vec<Tensor>>,
    /// The epoch training stopped at (0 if it did not stop early).
    pub stopped_epoch: usize,
}

impl EarlyStopping {
    /// Watches `monitor` (`"val_loss"`, `"val_accuracy"`, `"loss"`, `"accuracy"`).
    pub fn new(monitor: &str) -> Self {
        EarlyStopping {
            best: Best::new(monitor, Mode::Auto, 0.0),
            patience: 0,
            restore_best_weights: false,
            wait: 0,
            best_weights: None,
            stopped_epoch: 0,
        }
    }

    /// Epochs without improvement to wait before stopping.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// The smallest change that counts as an improvement.
    pub fn min_delta(mut self, min_delta: f32) -> Self {
        self.best.min_delta = min_delta.abs();
        self
    }

    /// Whether lower (`Min`) or higher (`Max`) is better; `Auto` guesses from the name.
    pub fn mode(mut self, mode: Mode) -> Self {
        self.best = Best::new(&self.best.monitor, mode, self.best.min_delta);
        self
    }

    /// When stopping, put back the weights of the best epoch.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }
}

fn snapshot(model: &Sequential) -> Vec<Tensor> {
    model
        .params()
        .ids()
        .map(|id| model.params().value(id).clone())
        .collect()
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, model: &mut Sequential, logs: &EpochLogs) -> Result<Control> {
        if self.best.update(logs)? {
            self.wait = 0;
            if self.restore_best_weights {
                self.best_weights = Some(snapshot(model));
            }
            return Ok(Control::Continue);
        }
        // Keras stops once `patience` epochs in a row have not improved.
        self.wait += 1;
        if self.wait < self.patience.max(1) {
            return Ok(Control::Continue);
        }
        self.stopped_epoch = logs.epoch;
        if let Some(weights) = self.best_weights.take() {
            let ids: Vec<_> = model.params().ids().collect();
            for (id, value) in ids.into_iter().zip(weights) {
                *model.params_mut().value_mut(id) = value;
            }
        }
        Ok(Control::Stop)
    }
}

/// Saves the model (atomically) after each epoch, or only when the monitored metric improves,
/// as Keras's `ModelCheckpoint`. Defaults: `monitor="val_loss"`, `save_best_only=false`.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    path: PathBuf,
    best: Best,
    save_best_only: bool,
}

impl ModelCheckpoint {
    /// Saves to `path` (a safetensors model file, see `Sequential::save`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            best: Best::new("val_loss", Mode::Auto, 0.0),
            save_best_only: false,
        }
    }

    /// The metric that decides "best".
    pub fn monitor(mut self, monitor: &str) -> Self {
        self.best = Best::new(monitor, Mode::Auto, 0.0);
        self
    }

    /// Save only when the monitored metric improves.
    pub fn save_best_only(mut self, save_best_only: bool) -> Self {
        self.save_best_only = save_best_only;
        self
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, model: &mut Sequential, logs: &EpochLogs) -> Result<Control> {
        let improved = self.best.update(logs)?;
        if improved || !self.save_best_only {
            model.save(&self.path)?;
        }
        Ok(Control::Continue)
    }
}
