//! [`EarlyStopping`]: stop when a monitored metric stops improving.

use super::{Best, Mode};
use crate::error::Result;
use crate::model::{Callback, Control, EpochLogs, Model};
use crate::tensor::Tensor;

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

fn snapshot(model: &Model) -> Vec<Tensor> {
    model
        .params()
        .ids()
        .map(|id| model.params().value(id).clone())
        .collect()
}

impl Callback for EarlyStopping {
    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> Result<Control> {
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
