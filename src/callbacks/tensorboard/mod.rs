//! [`TensorBoard`]: training curves, weight histograms and weight images as TensorBoard event
//! files, in Keras's layout, so a run can be watched live with `tensorboard --logdir`.
//!
//! The files are TFRecord files of `tensorflow.Event` protocol buffers; [`read_events`] reads
//! them back as TensorBoard does, up to the last whole record.

mod proto;
mod records;
mod summaries;
mod writer;

pub use proto::{Event, Histogram, Image, Kind, Summary, Value, What};

use crate::error::{Error, Result};
use crate::model::{Callback, Control, EpochLogs, Model};
use std::path::{Path, PathBuf};
use std::time::Instant;
use writer::{EventWriter, value_of};

/// How often batch-level scalars are written, as Keras's `update_freq`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UpdateFreq {
    /// `"epoch"`: epoch-level scalars only (Keras's default).
    Epoch,
    /// `"batch"` is `Batches(1)`; an integer `n` writes `batch_loss` every `n` training steps.
    Batches(usize),
}

impl std::str::FromStr for UpdateFreq {
    type Err = Error;

    /// Keras's spellings: `"epoch"`, `"batch"` or a number of batches (1 or more).
    fn from_str(text: &str) -> Result<Self> {
        match text {
            "epoch" => Ok(UpdateFreq::Epoch),
            "batch" => Ok(UpdateFreq::Batches(1)),
            _ => match text.parse::<usize>() {
                Ok(n) if n > 0 => Ok(UpdateFreq::Batches(n)),
                _ => Err(Error::invalid(
                    "update_freq",
                    text,
                    "must be \"epoch\", \"batch\" or a number of batches, 1 or more",
                )),
            },
        }
    }
}

/// Writes TensorBoard logs during training, as Keras's
/// `TensorBoard(log_dir="logs", histogram_freq=0, write_images=False, update_freq="epoch",
/// write_steps_per_second=False)`:
///
/// - `log_dir/train` gets `epoch_loss`, `epoch_accuracy` (every training metric),
///   `epoch_learning_rate` and, when asked, `epoch_steps_per_second`, at step `epoch - 1`;
///   `log_dir/validation` the validation metrics under the same tags, so TensorBoard draws the
///   two runs on one chart;
/// - with `update_freq` in batches, `batch_loss` (the epoch's mean loss so far, as Keras 3
///   logs it; and `batch_steps_per_second`) at the global training step, the optimizer's iteration count, so a resumed run continues its steps;
/// - every `histogram_freq` epochs, a histogram of each weight (`dense/kernel/histogram`) and,
///   with `write_images`, its picture (`dense/kernel/image`).
///
/// Each start writes new event files (never over old ones) and every epoch end flushes them,
/// so TensorBoard shows a run while it trains. In a data-parallel run only rank 0 should write:
/// give the other ranks [`TensorBoard::chief`]`(false)`.
///
/// ```no_run
/// use strata::callbacks::TensorBoard;
/// let mut tensorboard = TensorBoard::new("logs").histogram_freq(1);
/// // model.fit_with_callbacks(&x, &y, options, &mut [&mut tensorboard])?;
/// ```
#[derive(Debug)]
pub struct TensorBoard {
    log_dir: PathBuf,
    histogram_freq: usize,
    write_images: bool,
    update_freq: UpdateFreq,
    write_steps_per_second: bool,
    chief: bool,
    train: Option<EventWriter>,
    validation: Option<EventWriter>,
    /// The global training step: the optimizer's iterations after the last batch.
    step: u64,
    epoch_started: Option<Instant>,
    batch_started: Option<Instant>,
    epoch_batches: usize,
    /// The sum of this epoch's batch losses: `batch_loss` is their running mean, as Keras 3
    /// logs it (its loss is a mean metric over the epoch so far).
    epoch_loss_sum: f64,
    /// Whether a failed write stops logging (recorded in `failures`) rather than training.
    keep_going: bool,
    failures: Vec<String>,
}

impl TensorBoard {
    /// Logs to `log_dir` (created when missing), with Keras's defaults.
    pub fn new(log_dir: impl Into<PathBuf>) -> Self {
        TensorBoard {
            log_dir: log_dir.into(),
            histogram_freq: 0,
            write_images: false,
            update_freq: UpdateFreq::Epoch,
            write_steps_per_second: false,
            chief: true,
            train: None,
            validation: None,
            step: 0,
            epoch_started: None,
            batch_started: None,
            epoch_batches: 0,
            epoch_loss_sum: 0.0,
            keep_going: false,
            failures: Vec::new(),
        }
    }

    /// When a write fails (disk full, folder removed), stop logging and keep training instead
    /// of ending `fit` with the error as Keras does; the failure is kept in
    /// [`TensorBoard::failures`]. The command line uses this so a log never costs the model.
    pub fn keep_going(mut self, keep_going: bool) -> Self {
        self.keep_going = keep_going;
        self
    }

    /// The writes that failed under [`TensorBoard::keep_going`] (logging stopped at the first).
    pub fn failures(&self) -> &[String] {
        &self.failures
    }

    /// Passes `result` on, or under `keep_going` records its error and stops logging.
    fn guard(&mut self, result: Result<()>) -> Result<()> {
        match result {
            Err(error) if self.keep_going => {
                self.failures.push(error.to_string());
                self.train = None;
                self.validation = None;
                Ok(())
            }
            other => other,
        }
    }

    /// Epochs between weight histograms (and images); 0, the default, writes none.
    pub fn histogram_freq(mut self, epochs: usize) -> Self {
        self.histogram_freq = epochs;
        self
    }

    /// Also write each weight as a grayscale image when histograms are written.
    pub fn write_images(mut self, write: bool) -> Self {
        self.write_images = write;
        self
    }

    /// How often batch-level scalars are written. Defaults to [`UpdateFreq::Epoch`].
    pub fn update_freq(mut self, freq: UpdateFreq) -> Self {
        self.update_freq = freq;
        self
    }

    /// Also log training steps per second (per epoch, and per batch with batch updates).
    pub fn write_steps_per_second(mut self, write: bool) -> Self {
        self.write_steps_per_second = write;
        self
    }

    /// Whether this process writes: true (the default) alone or on rank 0 of a data-parallel
    /// run, false on the other ranks, whose logs would only repeat rank 0's.
    pub fn chief(mut self, chief: bool) -> Self {
        self.chief = chief;
        self
    }

    /// Where the logs go.
    pub fn log_dir(&self) -> &Path {
        &self.log_dir
    }

    /// The scalars of `logs` whose key does (`val_`) or does not start with `val_`, under
    /// Keras's tags: `epoch_` and the key without its `val_`.
    fn epoch_values(logs: &EpochLogs, validation: bool, steps_per_second: Option<f32>) -> Vec<Value> {
        let mut values: Vec<Value> = logs
            .keys()
            .iter()
            .filter(|key| key.starts_with("val_") == validation)
            .filter_map(|key| {
                let value = logs.get(key)?;
                let name = key.strip_prefix("val_").unwrap_or(key);
                Some(value_of(&format!("epoch_{name}"), Kind::SimpleValue(value)))
            })
            .collect();
        if let Some(rate) = steps_per_second.filter(|_| !validation) {
            values.push(value_of("epoch_steps_per_second", Kind::SimpleValue(rate)));
        }
        values
    }

    /// Each weight's histogram and, with `write_images`, its picture.
    fn weight_values(&self, model: &Model) -> Vec<Value> {
        let params = model.params();
        let mut values = Vec::new();
        for id in params.ids() {
            let (name, weight) = (params.name(id), params.value(id));
            let histogram = summaries::histogram(weight.data());
            values.push(value_of(&format!("{name}/histogram"), Kind::Histo(histogram)));
            if self.write_images
                && let Some(image) = summaries::weight_image(weight.shape(), weight.data())
            {
                values.push(value_of(&format!("{name}/image"), Kind::Image(image)));
            }
        }
        values
    }
}

impl Callback for TensorBoard {
    fn on_train_begin(&mut self, model: &mut Model) -> Result<()> {
        if !self.chief {
            return Ok(());
        }
        if self.update_freq == UpdateFreq::Batches(0) {
            return Err(Error::invalid("update_freq", 0, "must be 1 or more batches"));
        }
        self.train = Some(EventWriter::create(&self.log_dir.join("train"))?);
        self.validation = None;
        self.step = model.optimizer().map_or(0, |o| o.iterations());
        Ok(())
    }

    fn on_train_end(&mut self, _model: &mut Model, _history: &crate::model::History) -> Result<()> {
        let result = [self.train.take(), self.validation.take()]
            .iter_mut()
            .flatten()
            .try_for_each(EventWriter::flush);
        self.guard(result)
    }

    fn on_epoch_begin(&mut self, _model: &mut Model, _epoch: usize) -> Result<()> {
        self.epoch_started = Some(Instant::now());
        self.epoch_batches = 0;
        self.epoch_loss_sum = 0.0;
        Ok(())
    }

    fn on_batch_begin(&mut self, _model: &mut Model, _epoch: usize, _batch: usize) -> Result<()> {
        if self.write_steps_per_second && self.update_freq != UpdateFreq::Epoch {
            self.batch_started = Some(Instant::now());
        }
        Ok(())
    }

    fn on_batch_end(&mut self, model: &mut Model, _epoch: usize, _batch: usize, loss: f32) -> Result<Control> {
        self.epoch_batches += 1;
        self.epoch_loss_sum += f64::from(loss);
        self.step = model.optimizer().map_or(self.step + 1, |o| o.iterations());
        let result = self.log_batch();
        self.guard(result)?;
        Ok(Control::Continue)
    }

    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        let result = self.log_epoch(model, logs);
        self.guard(result)?;
        Ok(Control::Continue)
    }
}

impl TensorBoard {
    /// Writes the batch-level scalars when `update_freq` asks for them at this step.
    fn log_batch(&mut self) -> Result<()> {
        let loss = (self.epoch_loss_sum / self.epoch_batches.max(1) as f64) as f32;
        let (UpdateFreq::Batches(every), Some(train)) = (self.update_freq, self.train.as_mut()) else {
            return Ok(());
        };
        if self.step.is_multiple_of(every as u64) {
            let mut values = vec![value_of("batch_loss", Kind::SimpleValue(loss))];
            if let Some(started) = self.batch_started {
                let rate = 1.0 / started.elapsed().as_secs_f32().max(f32::MIN_POSITIVE);
                values.push(value_of("batch_steps_per_second", Kind::SimpleValue(rate)));
            }
            train.write(self.step, values)?;
        }
        Ok(())
    }

    /// Writes the epoch's scalars (and weights, every `histogram_freq` epochs), flushed.
    fn log_epoch(&mut self, model: &Model, logs: &EpochLogs) -> Result<()> {
        if self.train.is_none() {
            return Ok(());
        }
        let step = logs.epoch.saturating_sub(1) as u64;
        let steps_per_second = self
            .epoch_started
            .filter(|_| self.write_steps_per_second)
            .map(|started| self.epoch_batches as f32 / started.elapsed().as_secs_f32().max(f32::MIN_POSITIVE));
        let mut values = Self::epoch_values(logs, false, steps_per_second);
        if self.histogram_freq > 0 && (step as usize).is_multiple_of(self.histogram_freq) {
            values.extend(self.weight_values(model));
        }
        let train = self.train.as_mut().expect("checked above");
        train.write(step, values)?;
        train.flush()?;
        let validation = Self::epoch_values(logs, true, None);
        if !validation.is_empty() {
            if self.validation.is_none() {
                self.validation = Some(EventWriter::create(&self.log_dir.join("validation"))?);
            }
            let writer = self.validation.as_mut().expect("created above");
            writer.write(step, validation)?;
            writer.flush()?;
        }
        Ok(())
    }
}

/// The events of the event file at `path`, read as TensorBoard reads them: up to the last whole
/// record, so the file of a run killed mid-write reads as far as it was written.
pub fn read_events(path: impl AsRef<Path>) -> Result<Vec<Event>> {
    use prost::Message;
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read the event file ({e})")))?;
    records::unframe(&bytes)
        .into_iter()
        .map(|record| Event::decode(record).map_err(|e| Error::file(path, format!("not an event ({e})"))))
        .collect()
}

/// The folder a run logs to under `log_dir`: `log_dir/NAME` when named (an existing run of that
/// name gets new event files beside its old ones, as a resumed run should), else a new folder
/// named by the start time in UTC (`20250131-235959`, then `-2`, `-3` ... when taken), so
/// runs sit side by side and none is written over.
pub fn run_folder(log_dir: &Path, name: Option<&str>) -> Result<PathBuf> {
    if let Some(name) = name {
        let single = Path::new(name).components().count() == 1;
        if name.is_empty() || !single || name == ".." || name == "." {
            return Err(Error::invalid("run name", name, "must be a plain folder name"));
        }
        return Ok(log_dir.join(name));
    }
    let stamp = utc_stamp(
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    );
    let mut folder = log_dir.join(&stamp);
    for n in 2.. {
        if !folder.exists() {
            break;
        }
        folder = log_dir.join(format!("{stamp}-{n}"));
    }
    Ok(folder)
}

/// `seconds` since the Unix epoch as `YYYYMMDD-HHMMSS` in UTC (Howard Hinnant's days-to-date).
fn utc_stamp(seconds: u64) -> String {
    let (days, time) = ((seconds / 86_400) as i64, seconds % 86_400);
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z - era * 146_097;
    let year_of_era = (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let mp = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    let (h, m, s) = (time / 3600, time / 60 % 60, time % 60);
    format!("{year:04}{month:02}{day:02}-{h:02}{m:02}{s:02}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_folders_are_named_by_utc_time_and_never_reused() {
        assert_eq!(utc_stamp(0), "19700101-000000");
        assert_eq!(utc_stamp(951_825_599), "20000229-115959");
        assert_eq!(utc_stamp(1_767_225_599), "20251231-235959");
        let dir = std::env::temp_dir().join(format!("strata-tb-runs-{}", crate::fs::test_run_id()));
        let _ = std::fs::remove_dir_all(&dir);
        let first = run_folder(&dir, None).unwrap();
        std::fs::create_dir_all(&first).unwrap();
        let second = run_folder(&dir, None).unwrap();
        assert_ne!(first, second);
        assert_eq!(run_folder(&dir, Some("base")).unwrap(), dir.join("base"));
        for bad in ["", "..", "a/b", "/abs"] {
            let error = run_folder(&dir, Some(bad)).unwrap_err().to_string();
            assert!(error.contains("run name"), "{bad}: {error}");
        }
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn update_freq_takes_keras_spellings() {
        assert_eq!("epoch".parse::<UpdateFreq>().unwrap(), UpdateFreq::Epoch);
        assert_eq!("batch".parse::<UpdateFreq>().unwrap(), UpdateFreq::Batches(1));
        assert_eq!("100".parse::<UpdateFreq>().unwrap(), UpdateFreq::Batches(100));
        for bad in ["0", "-1", "batches"] {
            assert!(bad.parse::<UpdateFreq>().is_err(), "{bad}");
        }
    }
}
