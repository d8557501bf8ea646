//! [`EarlyStopping`]: stop when a monitored metric stops improving.

use super::{Best, Mode};
use crate::error::Result;
use crate::model::{Callback, Control, EpochLogs, History, Model};
use crate::tensor::Tensor;

/// Stops training when a monitored metric has stopped improving, as Keras's `EarlyStopping`.
/// Defaults: `monitor="val_loss"`, `min_delta=0`, `patience=0`, `verbose=0`, `mode="auto"`,
/// `baseline=None`, `restore_best_weights=false`, `start_from_epoch=0`.
///
/// As in Keras 3, `restore_best_weights` puts back the best epoch's weights when training ends,
/// whether it stopped early or ran all its epochs; with `verbose(1)` it says so, and says
/// `Epoch N: early stopping` when it stopped training.
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
    baseline: Option<f32>,
    start_from_epoch: usize,
    verbose: u8,
    wait: usize,
    best_weights: Option<Vec<Tensor>>,
    /// The epoch training stopped at (0 if it did not stop early).
    pub stopped_epoch: usize,
    /// The epoch whose weights were the best (0 before the first monitored epoch).
    pub best_epoch: usize,
}

impl EarlyStopping {
    /// Watches `monitor` (`"val_loss"`, `"val_accuracy"`, `"loss"`, `"accuracy"`).
    pub fn new(monitor: &str) -> Self {
        EarlyStopping {
            best: Best::new(monitor, Mode::Auto, 0.0),
            patience: 0,
            restore_best_weights: false,
            baseline: None,
            start_from_epoch: 0,
            verbose: 0,
            wait: 0,
            best_weights: None,
            stopped_epoch: 0,
            best_epoch: 0,
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

    /// When training ends, put back the weights of the best epoch.
    pub fn restore_best_weights(mut self, restore: bool) -> Self {
        self.restore_best_weights = restore;
        self
    }

    /// A value the metric must beat: epochs that improve on the best so far but not on the
    /// baseline still count towards `patience`.
    pub fn baseline(mut self, baseline: f32) -> Self {
        self.baseline = Some(baseline);
        self
    }

    /// Epochs of warm-up (counted from 0, as Keras counts them) before monitoring starts.
    pub fn start_from_epoch(mut self, epochs: usize) -> Self {
        self.start_from_epoch = epochs;
        self
    }

    /// 1 prints when training stopped and which epoch's weights were restored; 0 is silent.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
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
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        self.wait = 0;
        self.stopped_epoch = 0;
        self.best_epoch = 0;
        self.best_weights = None;
        self.best.reset();
        Ok(())
    }

    /// Keras's rule: `wait` counts every epoch and restarts only when the metric improves on
    /// the best and on the baseline; training stops once `wait` reaches `patience`, never after
    /// the first epoch.
    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        if logs.epoch <= self.start_from_epoch {
            return Ok(Control::Continue);
        }
        if self.restore_best_weights && self.best_weights.is_none() {
            self.best_weights = Some(snapshot(model));
            self.best_epoch = logs.epoch;
        }
        self.wait += 1;
        if self.best.update(logs)? {
            self.best_epoch = logs.epoch;
            if self.restore_best_weights {
                self.best_weights = Some(snapshot(model));
            }
            if self.baseline.is_none_or(|baseline| self.best.beats(logs, baseline)) {
                self.wait = 0;
            }
            return Ok(Control::Continue);
        }
        if self.wait >= self.patience && logs.epoch > 1 {
            self.stopped_epoch = logs.epoch;
            return Ok(Control::Stop);
        }
        Ok(Control::Continue)
    }

    fn on_train_end(&mut self, model: &mut Model, _history: &History) -> Result<()> {
        if self.stopped_epoch > 0 && self.verbose > 0 {
            println!("Epoch {}: early stopping", self.stopped_epoch);
        }
        if let Some(weights) = self.best_weights.take() {
            if self.verbose > 0 {
                println!(
                    "Restoring model weights from the end of the best epoch: {}.",
                    self.best_epoch
                );
            }
            let ids: Vec<_> = model.params().ids().collect();
            for (id, value) in ids.into_iter().zip(weights) {
                *model.params_mut().value_mut(id) = value;
            }
        }
        Ok(())
    }
}
