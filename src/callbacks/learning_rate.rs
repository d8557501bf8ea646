//! Callbacks that change the learning rate: [`ReduceLROnPlateau`] and [`LearningRateScheduler`].

use super::{Best, Mode};
use crate::error::{Error, Result};
use crate::model::{Callback, Control, EpochLogs, Model};

/// Multiplies the learning rate by `factor` when a monitored metric has not improved for
/// `patience` epochs, as Keras's `ReduceLROnPlateau`. Defaults: `monitor="val_loss"`,
/// `factor=0.1`, `patience=10`, `verbose=0`, `mode="auto"`, `min_delta=1e-4`, `cooldown=0`,
/// `min_lr=0`. With `verbose(1)` it prints each new rate, as Keras does.
///
/// ```
/// use strata::callbacks::ReduceLROnPlateau;
/// let reduce = ReduceLROnPlateau::new("val_loss").factor(0.5).patience(2).min_lr(1e-5);
/// ```
#[derive(Clone, Debug)]
pub struct ReduceLROnPlateau {
    best: Best,
    factor: f32,
    patience: usize,
    cooldown: usize,
    min_lr: f32,
    verbose: u8,
    wait: usize,
    cooldown_left: usize,
}

impl ReduceLROnPlateau {
    /// Watches `monitor` (`"val_loss"`, `"loss"`, `"val_accuracy"`, ...).
    pub fn new(monitor: &str) -> Self {
        ReduceLROnPlateau {
            best: Best::new(monitor, Mode::Auto, 1e-4),
            factor: 0.1,
            patience: 10,
            cooldown: 0,
            min_lr: 0.0,
            verbose: 0,
            wait: 0,
            cooldown_left: 0,
        }
    }

    /// 1 prints each reduction; 0 is silent.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// What the learning rate is multiplied by, in `(0, 1)`.
    pub fn factor(mut self, factor: f32) -> Self {
        self.factor = factor;
        self
    }

    /// Epochs without improvement before reducing.
    pub fn patience(mut self, patience: usize) -> Self {
        self.patience = patience;
        self
    }

    /// Epochs to wait after a reduction before counting again.
    pub fn cooldown(mut self, cooldown: usize) -> Self {
        self.cooldown = cooldown;
        self
    }

    /// The learning rate never goes below this.
    pub fn min_lr(mut self, min_lr: f32) -> Self {
        self.min_lr = min_lr;
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
}

impl Callback for ReduceLROnPlateau {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        if !(self.factor > 0.0 && self.factor < 1.0) {
            return Err(Error::invalid(
                "factor",
                self.factor,
                "ReduceLROnPlateau multiplies the learning rate by factor, which must be in (0, 1)",
            ));
        }
        Ok(())
    }

    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        let improved = self.best.update(logs)?;
        if self.cooldown_left > 0 {
            self.cooldown_left -= 1;
            self.wait = 0;
        }
        if improved {
            self.wait = 0;
        } else if self.cooldown_left == 0 {
            self.wait += 1;
            if self.wait >= self.patience {
                if let Some(optimizer) = model.optimizer_mut() {
                    let lr = optimizer.learning_rate();
                    if lr > self.min_lr {
                        let new_lr = (lr * self.factor).max(self.min_lr);
                        optimizer.set_learning_rate(new_lr);
                        if self.verbose > 0 {
                            println!(
                                "\nEpoch {}: ReduceLROnPlateau reducing learning rate to {new_lr}.",
                                logs.epoch
                            );
                        }
                    }
                }
                self.cooldown_left = self.cooldown;
                self.wait = 0;
            }
        }
        Ok(Control::Continue)
    }
}

/// Sets the learning rate at the start of each epoch from a function of the epoch index
/// (0-based, as in Keras) and the current rate, as Keras's `LearningRateScheduler`.
///
/// ```
/// use strata::callbacks::LearningRateScheduler;
/// // Keep the rate for 5 epochs, then decay it by 10 % per epoch.
/// let scheduler = LearningRateScheduler::new(|epoch, lr| if epoch < 5 { lr } else { lr * 0.9 });
/// ```
pub struct LearningRateScheduler {
    schedule: Box<dyn FnMut(usize, f32) -> f32>,
}

impl LearningRateScheduler {
    /// Uses `schedule(epoch_index, current_lr)` as the rate of each epoch.
    pub fn new(schedule: impl FnMut(usize, f32) -> f32 + 'static) -> Self {
        LearningRateScheduler {
            schedule: Box::new(schedule),
        }
    }
}

impl Callback for LearningRateScheduler {
    fn on_epoch_begin(&mut self, model: &mut Model, epoch: usize) -> Result<()> {
        let Some(optimizer) = model.optimizer_mut() else {
            return Ok(());
        };
        let lr = (self.schedule)(epoch - 1, optimizer.learning_rate());
        if !(lr.is_finite() && lr >= 0.0) {
            return Err(Error::invalid(
                "learning_rate",
                lr,
                format!("the LearningRateScheduler's function gave it for epoch {}", epoch - 1),
            ));
        }
        optimizer.set_learning_rate(lr);
        Ok(())
    }
}
