//! [`CSVLogger`] (epoch results to a CSV file) and [`TerminateOnNaN`].

use crate::error::{Error, Result};
use crate::model::{Callback, Control, EpochLogs, Model};
use std::io::Write;
use std::path::PathBuf;

/// Streams each epoch's logs to a CSV file, as Keras's `CSVLogger(filename, separator=",",
/// append=False)`: a header row, then one row per epoch with `epoch` counted from 0 as Keras
/// does. Each row is flushed at once, so a crash keeps the epochs already written.
#[derive(Debug)]
pub struct CSVLogger {
    path: PathBuf,
    separator: char,
    append: bool,
    file: Option<std::fs::File>,
    header_needed: bool,
    keys: Vec<String>,
}

impl CSVLogger {
    /// Logs to `path`.
    pub fn new(path: impl Into<PathBuf>) -> Self {
        CSVLogger {
            path: path.into(),
            separator: ',',
            append: false,
            file: None,
            header_needed: true,
            keys: Vec::new(),
        }
    }

    /// The column separator. Defaults to `,`.
    pub fn separator(mut self, separator: char) -> Self {
        self.separator = separator;
        self
    }

    /// Add to an existing file (continuing a resumed run) instead of overwriting it.
    pub fn append(mut self, append: bool) -> Self {
        self.append = append;
        self
    }
}

impl Callback for CSVLogger {
    fn on_train_begin(&mut self, _model: &mut Model) -> Result<()> {
        // With append, a non-empty file already has its header.
        let has_header = self.append && std::fs::metadata(&self.path).is_ok_and(|m| m.len() > 0);
        let file = std::fs::OpenOptions::new()
            .create(true)
            .write(true)
            .append(self.append)
            .truncate(!self.append)
            .open(&self.path)
            .map_err(|e| Error::file(&self.path, format!("cannot open the CSV log: {e}")))?;
        self.file = Some(file);
        self.header_needed = !has_header;
        self.keys.clear();
        Ok(())
    }

    fn on_epoch_end(&mut self, _model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        let Some(file) = self.file.as_mut() else {
            return Ok(Control::Continue);
        };
        let separator = self.separator.to_string();
        let mut text = String::new();
        if self.keys.is_empty() {
            // Keras's columns: epoch, then the metrics in alphabetical order.
            self.keys = logs.keys();
            self.keys.sort_unstable();
        }
        if self.header_needed {
            text += &format!("epoch{separator}{}\n", self.keys.join(&separator));
            self.header_needed = false;
        }
        let values: Vec<String> = self
            .keys
            .iter()
            .map(|k| logs.get(k).map_or(String::new(), |v| v.to_string()))
            .collect();
        text += &format!("{}{separator}{}\n", logs.epoch - 1, values.join(&separator));
        file.write_all(text.as_bytes())
            .and_then(|_| file.flush())
            .map_err(|e| Error::file(&self.path, format!("cannot write the CSV log: {e}")))?;
        Ok(Control::Continue)
    }
}

/// Stops training at the first batch whose loss is NaN or infinite, as Keras's
/// `TerminateOnNaN`, instead of `fit` returning a `NonFiniteLoss` error.
#[derive(Clone, Debug, Default)]
pub struct TerminateOnNaN {
    /// The `(epoch, batch)` training stopped at, if it did.
    pub stopped_at: Option<(usize, usize)>,
}

impl TerminateOnNaN {
    /// The callback.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Callback for TerminateOnNaN {
    fn on_batch_end(&mut self, _model: &mut Model, epoch: usize, batch: usize, loss: f32) -> Result<Control> {
        if loss.is_finite() {
            return Ok(Control::Continue);
        }
        eprintln!("Epoch {epoch}, batch {batch}: invalid loss {loss}, terminating training");
        self.stopped_at = Some((epoch, batch));
        Ok(Control::Stop)
    }
}
