//! [`ModelCheckpoint`]: save the model as training goes.

use super::{Best, Mode};
use crate::error::Result;
use crate::model::{Callback, Control, EpochLogs, Model};
use std::path::PathBuf;

/// Saves the model (atomically) after each epoch, or only when the monitored metric improves,
/// as Keras's `ModelCheckpoint`. Defaults: `monitor="val_loss"`, `verbose=0`,
/// `save_best_only=false`. With `verbose(1)` each epoch says what it saved, in Keras's words.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    path: PathBuf,
    best: Best,
    save_best_only: bool,
    verbose: u8,
}

impl ModelCheckpoint {
    /// Saves to `path` (a safetensors model file, see `Model::save`).
    pub fn new(path: impl Into<PathBuf>) -> Self {
        ModelCheckpoint {
            path: path.into(),
            best: Best::new("val_loss", Mode::Auto, 0.0),
            save_best_only: false,
            verbose: 0,
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

    /// 1 prints a line for each save (and each epoch that did not improve); 0 is silent.
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }
}

impl Callback for ModelCheckpoint {
    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        let path = self.path.display();
        if !self.save_best_only {
            if self.verbose > 0 {
                println!("\nEpoch {}: saving model to {path}", logs.epoch);
            }
            model.save(&self.path)?;
            return Ok(Control::Continue);
        }
        let previous = self
            .best
            .value()
            .map_or("None".to_string(), |best| format!("{best:.5}"));
        if self.best.update(logs)? {
            if self.verbose > 0 {
                let current = self.best.value().unwrap_or(f32::NAN);
                println!(
                    "\nEpoch {}: {} improved from {previous} to {current:.5}, saving model to {path}",
                    logs.epoch, self.best.monitor
                );
            }
            model.save(&self.path)?;
        } else if self.verbose > 0 {
            println!(
                "\nEpoch {}: {} did not improve from {previous}",
                logs.epoch, self.best.monitor
            );
        }
        Ok(Control::Continue)
    }
}
