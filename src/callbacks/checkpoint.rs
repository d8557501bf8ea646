//! [`ModelCheckpoint`]: save the model as training goes.

use super::{Best, Mode};
use crate::error::Result;
use crate::model::{Callback, Control, EpochLogs, Model};
use std::path::PathBuf;

/// Saves the model (atomically) after each epoch, or only when the monitored metric improves,
/// as Keras's `ModelCheckpoint`. Defaults: `monitor="val_loss"`, `save_best_only=false`.
#[derive(Clone, Debug)]
pub struct ModelCheckpoint {
    path: PathBuf,
    best: Best,
    save_best_only: bool,
}

impl ModelCheckpoint {
    /// Saves to `path` (a safetensors model file, see `Model::save`).
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
    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        let improved = self.best.update(logs)?;
        if improved || !self.save_best_only {
            model.save(&self.path)?;
        }
        Ok(Control::Continue)
    }
}
