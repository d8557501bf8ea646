//! [`History`]: what `fit` returns, one [`EpochLogs`] per epoch.

use serde::Serialize;

/// The metrics of one epoch.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct EpochLogs {
    /// 1-based epoch number.
    pub epoch: usize,
    /// Mean training loss over the epoch's batches.
    pub loss: f32,
    /// Training accuracy, when compiled with `"accuracy"`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub accuracy: Option<f32>,
    /// Validation loss, when there is validation data.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_loss: Option<f32>,
    /// Validation accuracy.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub val_accuracy: Option<f32>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
}

/// Per-epoch logs of a `fit` call, as Keras's `History`.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct History {
    /// One entry per epoch run.
    pub epochs: Vec<EpochLogs>,
}

impl History {
    /// One metric over the epochs, as Keras's `history.history["loss"]`. Missing values are
    /// left out; unknown keys give an empty list.
    pub fn get(&self, key: &str) -> Vec<f32> {
        self.epochs
            .iter()
            .filter_map(|e| match key {
                "loss" => Some(e.loss),
                "accuracy" => e.accuracy,
                "val_loss" => e.val_loss,
                "val_accuracy" => e.val_accuracy,
                _ => None,
            })
            .collect()
    }

    /// The last epoch's logs.
    pub fn last(&self) -> Option<&EpochLogs> {
        self.epochs.last()
    }
}
