//! Ready-made callbacks with Keras's names and arguments: [`EarlyStopping`],
//! [`ModelCheckpoint`], [`ReduceLROnPlateau`], [`LearningRateScheduler`], [`CSVLogger`],
//! [`TensorBoard`] and [`TerminateOnNaN`]. Write your own by implementing [`Callback`](crate::model::Callback).

mod checkpoint;
mod early_stopping;
mod learning_rate;
mod logging;
pub mod tensorboard;

pub use checkpoint::ModelCheckpoint;
pub use early_stopping::EarlyStopping;
pub use learning_rate::{LearningRateScheduler, ReduceLROnPlateau};
pub use logging::{CSVLogger, TerminateOnNaN};
pub use tensorboard::{TensorBoard, UpdateFreq};

use crate::error::{Error, Result};
use crate::model::EpochLogs;

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
/// `val_accuracy`), or an error listing the metrics the logs do have: a monitor that is never
/// there would silently never trigger.
fn monitored(logs: &EpochLogs, key: &str) -> Result<f32> {
    logs.get(key).ok_or_else(|| {
        let available = logs.keys();
        let hint = if key.starts_with("val_") {
            " (validation metrics need validation_data or validation_split)"
        } else {
            ""
        };
        Error::Usage(format!(
            "the monitored metric '{key}' is not in the training logs{hint}; available: {}",
            available.join(", ")
        ))
    })
}

/// Tracks the best value of a monitored metric.
#[derive(Clone, Debug)]
pub(crate) struct Best {
    pub(crate) monitor: String,
    higher_is_better: bool,
    pub(crate) min_delta: f32,
    value: Option<f32>,
}

impl Best {
    pub(crate) fn new(monitor: &str, mode: Mode, min_delta: f32) -> Self {
        let higher_is_better = match mode {
            Mode::Max => true,
            Mode::Min => false,
            // Keras 3's metrics whose direction is "up": the accuracies, AUC, precision, recall.
            Mode::Auto => {
                monitor.contains("acc")
                    || ["auc", "precision", "recall"]
                        .iter()
                        .any(|name| monitor.ends_with(name))
            }
        };
        Best {
            monitor: monitor.to_string(),
            higher_is_better,
            min_delta: min_delta.abs(),
            value: None,
        }
    }

    /// Records `logs`; true when the monitored value improved on the best by more than `min_delta`.
    pub(crate) fn update(&mut self, logs: &EpochLogs) -> Result<bool> {
        let current = monitored(logs, &self.monitor)?;
        let improved = self.value.is_none_or(|best| self.improves(current, best));
        if improved {
            self.value = Some(current);
        }
        Ok(improved)
    }

    /// Whether the monitored value of `logs` improves on `reference` by more than `min_delta`.
    pub(crate) fn beats(&self, logs: &EpochLogs, reference: f32) -> bool {
        monitored(logs, &self.monitor).is_ok_and(|current| self.improves(current, reference))
    }

    fn improves(&self, current: f32, reference: f32) -> bool {
        if self.higher_is_better {
            current - self.min_delta > reference
        } else {
            current + self.min_delta < reference
        }
    }

    /// The best value so far, if any epoch was monitored.
    pub(crate) fn value(&self) -> Option<f32> {
        self.value
    }

    /// Forgets the best value, for a callback reused by another `fit`.
    pub(crate) fn reset(&mut self) {
        self.value = None;
    }
}
