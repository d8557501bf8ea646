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
    /// The optimizer's learning rate at the end of the epoch.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub learning_rate: Option<f32>,
    /// Wall-clock seconds of the epoch (training and validation).
    pub seconds: f64,
    /// The other metrics by Keras's keys, in the order Keras logs them: those besides accuracy
    /// (`mae`, `val_auc`), and with several outputs each output's (`dense_2_loss`,
    /// `val_dense_2_accuracy`, `dense_2_mae`, ...).
    #[serde(flatten, serialize_with = "as_map")]
    pub outputs: Vec<(String, f32)>,
}

/// Serializes `[(key, value), ...]` as a map, in order.
fn as_map<S: serde::Serializer>(entries: &[(String, f32)], serializer: S) -> Result<S::Ok, S::Error> {
    serializer.collect_map(entries.iter().map(|(k, v)| (k, v)))
}

impl EpochLogs {
    /// The metrics these logs can hold, by Keras's keys.
    pub const KEYS: [&'static str; 5] = ["loss", "accuracy", "val_loss", "val_accuracy", "learning_rate"];

    /// One metric by Keras's key (`"val_loss"`), if this epoch has it.
    pub fn get(&self, key: &str) -> Option<f32> {
        match key {
            "loss" => Some(self.loss),
            "accuracy" => self.accuracy,
            "val_loss" => self.val_loss,
            "val_accuracy" => self.val_accuracy,
            "learning_rate" => self.learning_rate,
            _ => self.outputs.iter().find(|(k, _)| k == key).map(|&(_, v)| v),
        }
    }

    /// The keys of the metrics this epoch has, in Keras's order.
    pub fn keys(&self) -> Vec<String> {
        let fixed = Self::KEYS
            .into_iter()
            .filter(|k| self.get(k).is_some())
            .map(str::to_string);
        fixed.chain(self.outputs.iter().map(|(k, _)| k.clone())).collect()
    }

    /// Adds the metrics besides loss and accuracy under `prefix` (`""` or `"val_"`); with
    /// several outputs, each output's loss, accuracy and metrics (Keras logs per-output
    /// metrics only then).
    pub(crate) fn add_outputs(&mut self, prefix: &str, scores: &super::Scores) {
        if scores.outputs.len() < 2 {
            for (key, value) in &scores.metrics {
                self.outputs.push((format!("{prefix}{key}"), *value));
            }
            return;
        }
        for output in &scores.outputs {
            let name = &output.name;
            self.outputs.push((format!("{prefix}{name}_loss"), output.loss));
            if let Some(accuracy) = output.accuracy {
                self.outputs.push((format!("{prefix}{name}_accuracy"), accuracy));
            }
            for (key, value) in &output.metrics {
                self.outputs.push((format!("{prefix}{name}_{key}"), *value));
            }
        }
    }
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
        self.epochs.iter().filter_map(|e| e.get(key)).collect()
    }

    /// Keras's `history.history` layout: one list per metric, plus the epoch numbers.
    ///
    /// ```
    /// use strata::model::{EpochLogs, History};
    /// let history = History { epochs: vec![EpochLogs { epoch: 1, loss: 0.5, ..Default::default() }] };
    /// assert_eq!(history.to_json()["loss"][0], 0.5);
    /// ```
    pub fn to_json(&self) -> serde_json::Value {
        let mut map = serde_json::Map::new();
        let epochs: Vec<usize> = self.epochs.iter().map(|e| e.epoch).collect();
        map.insert("epoch".into(), epochs.into());
        let mut keys: Vec<String> = EpochLogs::KEYS.iter().map(|k| k.to_string()).collect();
        for epoch in &self.epochs {
            for (key, _) in &epoch.outputs {
                if !keys.contains(key) {
                    keys.push(key.clone());
                }
            }
        }
        for key in &keys {
            // Through f32's shortest decimal, so 0.9131333 does not become 0.9131333231925964.
            let values: Vec<serde_json::Value> = self
                .get(key)
                .iter()
                .map(|v| v.to_string().parse::<f64>().map_or(serde_json::Value::Null, Into::into))
                .collect();
            if !values.is_empty() {
                map.insert(key.into(), values.into());
            }
        }
        map.into()
    }

    /// Writes [`History::to_json`] to `path`, atomically.
    pub fn save_json(&self, path: impl AsRef<std::path::Path>) -> crate::Result<()> {
        let text = serde_json::to_string_pretty(&self.to_json()).expect("numbers and strings serialize");
        crate::fs::write_atomic(path, text.as_bytes())
    }

    /// The last epoch's logs.
    pub fn last(&self) -> Option<&EpochLogs> {
        self.epochs.last()
    }
}
