//! The run resolver: one way from a description of a run (a model: named, a model file or a
//! saved model; its data; options) to a compiled model with its data and fit settings. The
//! `strata` command line translates its flags into a [`RunOptions`] and calls
//! [`prepare_new`], [`prepare_resume`] or [`evaluation_data`]; a program can do the same.
//!
//! A prepared model records how its data was found and prepared ([`RunRecord`], kept as a model
//! attachment and saved with it), so resuming and evaluating a saved model need the same flags
//! as the first run, or none.
//!
//! ```no_run
//! use strata::run::{RunOptions, prepare_new};
//! # fn main() -> strata::Result<()> {
//! let options = RunOptions { model: "mlp".into(), epochs: Some(1), ..RunOptions::default() };
//! let mut run = prepare_new(&options)?;
//! run.model.fit(&run.data.x_train, &run.data.y_train, run.plan.options(&run.data))?;
//! # Ok(()) }
//! ```

mod data;
mod head;
mod rescue;
mod transfer;

pub use data::{DataSource, Dataset, TOKENIZER, encode_targets, raw_targets, shape_samples};
pub use head::{head_layer_names, parse_head};
pub use rescue::{Saved, rescue_folders, save_or_rescue};
pub use transfer::Transfer;

use crate::applications::load_description;
use crate::data::text::{Tokenizer, check_vocabulary};
use crate::error::{Error, Result};
use crate::io::config::ModelFile;
use crate::losses::Loss;
use crate::model::{FitOptions, Model};
use crate::optimizers::{self, Clipping, LearningRate, Optimizer};
use serde::{Deserialize, Serialize};
use std::path::{Path, PathBuf};

/// The attachment key of a model's [`RunRecord`].
pub const RUN_RECORD: &str = "run";

/// A run, described with plain values (what the command line's flags say). `None` means the
/// model file's setting, or the recorded one when resuming.
#[derive(Clone, Debug, Default)]
pub struct RunOptions {
    /// A named model (`mlp`, `cnn`, ...) or a model file (`.toml` or `.json`).
    pub model: String,
    /// The data: a folder of MNIST IDX files, a folder of class folders, a `.txt` text or a CSV
    /// table (`None`: what the model file or the saved model names).
    pub data: Option<PathBuf>,
    /// A CSV test table for a CSV `data`.
    pub test_data: Option<PathBuf>,
    /// The CSV label column's name (`None`: the last column).
    pub label: Option<String>,
    /// Passes over the training data (when resuming: the total to train up to).
    pub epochs: Option<usize>,
    /// Samples per gradient update.
    pub batch_size: Option<usize>,
    /// Seed of weights and shuffling (a resumed run keeps its own).
    pub seed: u64,
    /// An optimizer by name, with Keras's defaults, instead of the model file's.
    pub optimizer: Option<String>,
    /// A loss by Keras's name (`sparse_categorical_crossentropy`, `mse`, or a class with
    /// `from_logits`: `SparseCategoricalCrossentropy(from_logits=True)`) instead of the model
    /// file's or the base's ([`loss_flag`]).
    pub loss: Option<String>,
    /// A learning rate overriding the optimizer's.
    pub lr: Option<f32>,
    /// A learning-rate schedule, `NAME:KEY=VALUE,...` ([`LearningRate::parse_schedule`]).
    pub lr_schedule: Option<String>,
    /// Gradient clipping replacing the model file's, when any of its fields is set.
    pub clipping: Clipping,
    /// `Dropout(rate)` after every hidden Dense and pooling output ([`crate::io::regularized`]).
    pub dropout: Option<f32>,
    /// An L2 penalty `factor·Σw²` on every kernel.
    pub l2: Option<f32>,
    /// Random image transforms, as preprocessing layers after the model's input (saved with
    /// the model, so a resumed run keeps them).
    pub augmentation: Option<crate::data::ImageAugmentation>,
    /// Read NaN and infinite values of a CSV table as they are instead of refusing them.
    pub allow_nonfinite: bool,
    /// A pre-trained model to start from, and how to freeze, extend and fine-tune it.
    pub transfer: Transfer,
    /// Validation split, early stopping and checkpoints (a resumed run keeps the recorded ones
    /// unless these set them).
    pub callbacks: RunCallbacks,
}

/// The validation and callbacks of a run, recorded with the model so a resumed run keeps them.
/// `None`: not used (or, in [`RunOptions`], not given).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunCallbacks {
    /// Fraction of the training data held out for validation (from its end).
    pub validation_split: Option<f32>,
    /// `EarlyStopping`'s patience in epochs (best weights restored).
    pub early_stopping: Option<usize>,
    /// Where checkpoints are saved during training.
    pub checkpoint: Option<PathBuf>,
    /// Epochs between checkpoints (`None`: every epoch).
    pub checkpoint_every: Option<usize>,
}

impl RunCallbacks {
    /// `self` (the flags) over `recorded`, field by field, with a description of each flag
    /// that replaced a different recorded value.
    fn over(&self, recorded: &RunCallbacks, overridden: &mut Vec<String>) -> RunCallbacks {
        RunCallbacks {
            validation_split: pick(
                "validation split",
                self.validation_split,
                recorded.validation_split,
                overridden,
            ),
            early_stopping: pick(
                "early-stopping patience",
                self.early_stopping,
                recorded.early_stopping,
                overridden,
            ),
            checkpoint: pick_path("checkpoint", &self.checkpoint, &recorded.checkpoint, overridden),
            checkpoint_every: pick(
                "checkpoint-every",
                self.checkpoint_every,
                recorded.checkpoint_every,
                overridden,
            ),
        }
    }
}

/// The flag's value when given, else the recorded one; a flag replacing a different recorded
/// value is described in `overridden` ("batch size 16 (was 64)").
fn pick<T: PartialEq + std::fmt::Display>(
    what: &str,
    flag: Option<T>,
    recorded: Option<T>,
    overridden: &mut Vec<String>,
) -> Option<T> {
    match (flag, recorded) {
        (Some(flag), Some(recorded)) if flag != recorded => {
            overridden.push(format!("{what} {flag} (was {recorded})"));
            Some(flag)
        }
        (Some(flag), _) => Some(flag),
        (None, recorded) => recorded,
    }
}

/// [`pick`] for a file (paths have no `Display`).
fn pick_path(
    what: &str,
    flag: &Option<PathBuf>,
    recorded: &Option<PathBuf>,
    overridden: &mut Vec<String>,
) -> Option<PathBuf> {
    let shown = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    pick(what, shown(flag), shown(recorded), overridden).map(PathBuf::from)
}

/// How a model's data was found and prepared, and the fit settings of its run: saved with the
/// model (attachment [`RUN_RECORD`]) so a resumed run or an evaluation finds the same data.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// Where the data came from.
    pub data: DataSource,
    /// The epochs the run was asked for (a resumed run trains up to this total by default).
    pub epochs: usize,
    /// Samples per gradient update.
    pub batch_size: usize,
    /// Whether the run validated on the test set after every epoch.
    pub validate_on_test: bool,
    /// Its validation split, early stopping and checkpoints (absent in older files: none).
    #[serde(default)]
    pub callbacks: RunCallbacks,
}

impl RunRecord {
    /// The record a model carries, if any (models saved before records existed have none).
    pub fn of(model: &Model) -> Result<Option<RunRecord>> {
        model
            .attachment(RUN_RECORD)
            .map(|json| {
                serde_json::from_str(json)
                    .map_err(|e| Error::Data(format!("the model's run record is unreadable ({e})")))
            })
            .transpose()
    }

    fn attach_to(&self, model: &mut Model) {
        let json = serde_json::to_string(self).expect("a run record always serializes");
        model.set_attachment(RUN_RECORD, json);
    }
}

/// A compiled model with its data and fit settings, ready to train.
#[derive(Debug)]
pub struct PreparedRun {
    /// The model's name (a saved model's file stem).
    pub name: String,
    /// The compiled model, built for the data.
    pub model: Model,
    /// Its data, shaped and encoded as it takes them.
    pub data: Dataset,
    /// Where the data came from.
    pub source: DataSource,
    /// Epochs, batch size, seed and where to start.
    pub plan: FitPlan,
    /// What the resolver changed that the person running it should be told (an interrupted
    /// epoch restarted from its beginning, ...), one sentence each.
    pub notices: Vec<String>,
}

/// The fit settings of a run.
#[derive(Clone, Debug, PartialEq)]
pub struct FitPlan {
    /// The epoch to train up to.
    pub epochs: usize,
    /// Samples per gradient update.
    pub batch_size: usize,
    /// Whether to validate on the test set after every epoch.
    pub validate_on_test: bool,
    /// Epochs already trained (a resumed model's).
    pub initial_epoch: usize,
    /// Batches of the next epoch already trained (a model interrupted mid-epoch).
    pub initial_batch: usize,
    /// The seed of weights and shuffling: the model's own (`Model::seed_value`).
    pub seed: u64,
    /// Validation split, early stopping and checkpoints.
    pub callbacks: RunCallbacks,
}

impl FitPlan {
    /// `fit`'s options for this plan: epochs, batch size, where to start, and validation on
    /// `data`'s test set when the plan asks for it. The shuffling seed is left to `fit`'s
    /// default (drawn from the model's seed, which is the plan's), so a program calling
    /// `fit` with `FitOptions::default()` on the same model and data gets the same weights.
    pub fn options<'a>(&self, data: &'a Dataset) -> FitOptions<'a> {
        let mut options = FitOptions::default()
            .epochs(self.epochs)
            .batch_size(self.batch_size)
            .initial_epoch(self.initial_epoch)
            .initial_batch(self.initial_batch);
        if let Some(split) = self.callbacks.validation_split {
            options = options.validation_split(split);
        } else if self.validate_on_test
            && let Some((x, y)) = &data.test
        {
            options = options.validation_data(x, y);
        }
        options
    }
}

/// A new model from a name or model file, regularized as the options ask, compiled, with its
/// data loaded and its [`RunRecord`] attached; or, with `options.transfer.base`, from a saved
/// model frozen and extended as [`Transfer`] says.
pub fn prepare_new(options: &RunOptions) -> Result<PreparedRun> {
    if let Some(base) = &options.transfer.base {
        return options.prepare_on_base(base);
    }
    options.transfer.check_without_base()?;
    let spec = load_description(&options.model)?;
    let source = DataSource::from_flag(
        options.data.as_deref(),
        spec.data.as_deref(),
        options.label.as_deref(),
        options.seed,
    )?
    .with_test_table(options.test_data.as_deref())?
    .allowing_nonfinite(options.allow_nonfinite);
    check_label_applies(&source, options)?;
    let (spec, tokenizer) = sized_for_data(spec, &source)?;
    let ModelFile {
        name,
        model,
        optimizer,
        loss,
        metrics,
        epochs,
        batch_size,
        validate_on_test,
        ..
    } = spec;
    let mut model = crate::io::regularized(model, options.dropout, options.l2)?;
    if let Some(augmentation) = &options.augmentation {
        model = crate::io::with_preprocessing(model, augmentation.layers()?)?;
    }
    if let Some(tokenizer) = tokenizer {
        // The tokenizer the sizes came from, so the data is encoded with the same ids.
        model.set_attachment(TOKENIZER, tokenizer.to_json());
    }
    model.seed(options.seed);
    let loss = loss_flag(options.loss.as_deref())?.unwrap_or(loss);
    let dataset = source.load_for(&mut model, loss)?;
    if source.is_text() {
        check_tokenizer(&model)?;
    }
    let optimizer = configured_optimizer(optimizer, options)?;
    let metric_names: Vec<&str> = metrics.iter().map(String::as_str).collect();
    model.compile(optimizer, loss, &metric_names)?;
    let plan = FitPlan {
        epochs: options.epochs.unwrap_or(epochs),
        batch_size: options.batch_size.unwrap_or(batch_size),
        validate_on_test,
        initial_epoch: 0,
        initial_batch: 0,
        seed: options.seed,
        callbacks: options.callbacks.clone(),
    };
    Ok(with_record(name, model, dataset, source, plan))
}

/// `spec` with its open sizes (`units = "auto"`, `input_dim = "auto"`) set to the vocabulary
/// of `source`'s text, padding id included, and the tokenizer fitted on it; `spec` as it is,
/// and no tokenizer, when it leaves no size open. Open sizes with data that is not a text are
/// an error naming them.
///
/// ```no_run
/// use strata::io::config::load_model_spec;
/// use strata::run::{DataSource, sized_for_data};
/// # fn main() -> strata::Result<()> {
/// let source = DataSource::Text { path: Some("notes.txt".into()) };
/// let (spec, tokenizer) = sized_for_data(load_model_spec("char_rnn")?, &source)?;
/// println!("{} characters", tokenizer.map_or(0, |t| t.vocabulary_size() - 1));
/// # Ok(()) }
/// ```
pub fn sized_for_data(spec: ModelFile, source: &DataSource) -> Result<(ModelFile, Option<Tokenizer>)> {
    if spec.open_sizes.is_empty() {
        return Ok((spec, None));
    }
    match source.text_tokenizer()? {
        Some(tokenizer) => Ok((spec.with_vocabulary(tokenizer.vocabulary_size())?, Some(tokenizer))),
        None => Err(Error::Usage(format!(
            "model '{}' leaves {} to its text's vocabulary (\"auto\"), but the data here is {}: \
             give a .txt file with --data, or set the sizes in the model file",
            spec.name,
            spec.open_sizes.join(" and "),
            source.describe()
        ))),
    }
}

/// A saved model, continuing after the epochs (and batches) it has trained with its seed and
/// optimizer state, so the result equals one uninterrupted run. Data and fit settings default
/// to the model's [`RunRecord`]; `options.data` (and `epochs`, `batch_size`, `lr`, clipping)
/// override them. A model without a record needs `epochs` and trains on MNIST unless `data`
/// says otherwise.
pub fn prepare_resume(path: &Path, options: &RunOptions) -> Result<PreparedRun> {
    let mut model = crate::io::load_model(path)?;
    check_compile_options_match(&model, options)?;
    options.fine_tune_resumed(&mut model)?;
    let recorded = RunRecord::of(&model)?;
    let mut overridden = Vec::new();
    if let (Some(data), Some(record)) = (&options.data, &recorded) {
        overridden.push(format!("data {} (was {})", data.display(), record.data.describe()));
    }
    if let (Some(lr), Some(optimizer)) = (options.lr, model.optimizer()) {
        overridden.push(format!("learning rate {lr} (was {})", optimizer.learning_rate()));
    }
    let epochs = options.epochs.or(recorded.as_ref().map(|r| r.epochs)).ok_or_else(|| {
        Error::Usage(format!(
            "--resume needs --epochs: the epoch to train up to (the file has trained {})",
            model.epochs_trained()
        ))
    })?;
    let loss = model
        .loss()
        .ok_or_else(|| Error::Usage("the saved model has no compile settings".into()))?;
    let source = match (&options.data, &recorded) {
        (None, Some(record)) => record.data.clone(),
        _ => DataSource::from_flag(
            options.data.as_deref(),
            None,
            options.label.as_deref(),
            model.seed_value(),
        )?
        .with_test_table(options.test_data.as_deref())?,
    }
    .allowing_nonfinite(options.allow_nonfinite);
    check_label_applies(&source, options)?;
    let dataset = source
        .load_for(&mut model, loss)
        .map_err(|e| resume_error(e, path, &source))?;
    if source.is_text() {
        check_tokenizer(&model)?;
    }
    if let Some(optimizer) = model.optimizer_mut() {
        if let Some(lr) = options.lr {
            optimizer.set_learning_rate(lr);
        }
        set_clipping(optimizer, &options.clipping);
        optimizer.validate()?;
    }
    let name = path
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let recorded_batch_size = recorded.as_ref().map(|r| r.batch_size);
    let batch_size = pick("batch size", options.batch_size, recorded_batch_size, &mut overridden).unwrap_or(32);
    let recorded_callbacks = recorded.as_ref().map(|r| r.callbacks.clone()).unwrap_or_default();
    let callbacks = options.callbacks.over(&recorded_callbacks, &mut overridden);
    let (initial_batch, mut notices) = resume_point_in_epoch(&model, recorded_batch_size, batch_size);
    if !overridden.is_empty() {
        notices.insert(
            0,
            format!("flags replace the saved run's settings: {}", overridden.join(", ")),
        );
    }
    let plan = FitPlan {
        epochs,
        batch_size,
        validate_on_test: recorded.as_ref().is_some_and(|r| r.validate_on_test),
        initial_epoch: model.epochs_trained(),
        initial_batch,
        seed: model.seed_value(),
        callbacks,
    };
    let mut run = with_record(name, model, dataset, source, plan);
    run.notices = notices;
    Ok(run)
}

/// The batch of the interrupted epoch to continue after. Batches are counted in the saved
/// run's batch size: with another one (or an unknown one) the count means nothing, so the
/// epoch restarts from its beginning, and a notice says so.
fn resume_point_in_epoch(model: &Model, recorded: Option<usize>, batch_size: usize) -> (usize, Vec<String>) {
    let batches = model.batches_into_epoch();
    if batches == 0 || recorded == Some(batch_size) {
        return (batches, Vec::new());
    }
    let was = recorded.map_or("an unrecorded batch size".into(), |b| format!("batch size {b}"));
    let notice = format!(
        "the model was saved {batches} batches into epoch {} with {was}; with batch size {batch_size} \
         that epoch restarts from its beginning",
        model.epochs_trained() + 1
    );
    (0, vec![notice])
}

/// Compile options given for a resumed run must match the saved model's: its optimizer state
/// belongs to its optimizer, and a schedule is part of the optimizer. Never silently ignored.
fn check_compile_options_match(model: &Model, options: &RunOptions) -> Result<()> {
    let saved = model.optimizer().map(|o| o.class_name());
    if let Some(name) = &options.optimizer {
        let same = saved.is_some_and(|saved| saved.eq_ignore_ascii_case(name));
        if !same {
            return Err(Error::Usage(format!(
                "--optimizer {name} does not apply to a resumed run: the saved model continues with its own \
                 optimizer ({}) and its state; leave --optimizer out, or train a new model",
                saved.unwrap_or("none")
            )));
        }
    }
    if let Some(loss) = loss_flag(options.loss.as_deref())?
        && Some(loss) != model.loss()
    {
        return Err(Error::Usage(format!(
            "--loss {} does not apply to a resumed run: the saved model continues with its own loss ({}); leave \
             --loss out, or train a new model",
            loss.name(),
            model.loss().map_or("none", |l| l.name())
        )));
    }
    if options.lr_schedule.is_some() {
        return Err(Error::Usage(
            "--lr-schedule does not apply to a resumed run: the saved model continues with its own learning \
             rate (schedule included); leave --lr-schedule out (--lr sets a constant rate)"
                .into(),
        ));
    }
    Ok(())
}

/// `--label` names a CSV column: an error with any other data, rather than ignored.
fn check_label_applies(source: &DataSource, options: &RunOptions) -> Result<()> {
    match (&options.label, source) {
        (Some(_), DataSource::Csv { .. }) | (None, _) => Ok(()),
        (Some(label), other) => Err(Error::Usage(format!(
            "--label {label} names a CSV column, but the data here is {}",
            other.describe()
        ))),
    }
}

/// The test samples and targets to score a saved model on, as it takes them: `data` when
/// given (MNIST's t10k files, a CSV table, an image folder, a text), otherwise the test part of
/// the data its [`RunRecord`] names, otherwise the bundled MNIST test set.
pub fn evaluation_data(
    model: &mut Model,
    data: Option<&Path>,
    label: Option<&str>,
) -> Result<(crate::Tensor, crate::Tensor)> {
    let loss = model
        .loss()
        .ok_or_else(|| Error::Usage("the saved model has no compile settings".into()))?;
    let recorded = RunRecord::of(model)?;
    let source = match (data, recorded) {
        (None, Some(record)) => record.data,
        (data, _) => DataSource::from_flag(data, None, label, model.seed_value())?,
    };
    source.load_test_for(model, loss)
}

/// The prepared run, with its record attached to the model.
fn with_record(name: String, mut model: Model, data: Dataset, source: DataSource, plan: FitPlan) -> PreparedRun {
    RunRecord {
        data: source.clone(),
        epochs: plan.epochs,
        batch_size: plan.batch_size,
        validate_on_test: plan.validate_on_test,
        callbacks: plan.callbacks.clone(),
    }
    .attach_to(&mut model);
    PreparedRun {
        name,
        model,
        data,
        source,
        plan,
        notices: Vec::new(),
    }
}

/// The loss `--loss` names: a Keras name (`mse`, `sparse_categorical_crossentropy`) or class
/// name, optionally called with `from_logits` and `label_smoothing` as in Keras
/// (`SparseCategoricalCrossentropy(from_logits=True)`,
/// `CategoricalCrossentropy(label_smoothing=0.1)`).
///
/// ```
/// use strata::losses::Loss;
/// let loss = strata::run::loss_flag(Some("SparseCategoricalCrossentropy(from_logits=True)")).unwrap();
/// assert_eq!(loss, Some(Loss::SparseCategoricalCrossentropy { from_logits: true }));
/// let smoothed = strata::run::loss_flag(Some("CategoricalCrossentropy(label_smoothing=0.1)")).unwrap();
/// assert_eq!(smoothed.map(|l| l.label_smoothing()), Some(0.1));
/// ```
pub fn loss_flag(text: Option<&str>) -> Result<Option<Loss>> {
    let Some(text) = text else { return Ok(None) };
    let fail = |why: String| Error::Usage(format!("--loss {text}: {why}"));
    let (name, arguments) = match text.split_once('(') {
        Some((name, rest)) => {
            let inside = rest
                .trim()
                .strip_suffix(')')
                .ok_or_else(|| fail("a call ends with ')'".into()))?;
            (name.trim(), inside.trim())
        }
        None => (text.trim(), ""),
    };
    let mut loss = Loss::from_name(name).map_err(|e| fail(e.to_string()))?;
    for argument in arguments.split(',').map(str::trim).filter(|a| !a.is_empty()) {
        let (key, value) = argument
            .split_once('=')
            .map(|(k, v)| (k.trim(), v.trim()))
            .unwrap_or((argument, ""));
        loss = match key {
            "from_logits" => {
                let flag = match value.to_ascii_lowercase().as_str() {
                    "true" => true,
                    "false" => false,
                    _ => return Err(fail(format!("from_logits takes True or False, not '{value}'"))),
                };
                loss.with_from_logits(flag)
                    .ok_or_else(|| fail(format!("{} has no from_logits", loss.name())))?
            }
            "label_smoothing" => {
                let epsilon = value
                    .parse::<f32>()
                    .map_err(|_| fail(format!("label_smoothing takes a number, not '{value}'")))?;
                loss.with_label_smoothing(epsilon).map_err(|e| fail(e.to_string()))?
            }
            _ => {
                return Err(fail(format!(
                    "takes from_logits=True/False and label_smoothing=NUMBER, not '{argument}'"
                )));
            }
        };
    }
    Ok(Some(loss))
}

/// The model file's optimizer, or the one the options name, with the options' learning rate,
/// schedule and clipping.
fn configured_optimizer(from_file: Box<dyn Optimizer>, options: &RunOptions) -> Result<Box<dyn Optimizer>> {
    let mut optimizer = match &options.optimizer {
        Some(name) => optimizers::from_name(name)?,
        None => from_file,
    };
    if let Some(lr) = options.lr {
        optimizer.set_learning_rate(lr);
    }
    if let Some(spec) = &options.lr_schedule {
        optimizer.set_learning_rate_schedule(LearningRate::parse_schedule(spec, optimizer.learning_rate())?);
    }
    set_clipping(optimizer.as_mut(), &options.clipping);
    Ok(optimizer)
}

/// Replaces the optimizer's gradient clipping with `clipping` when it sets anything (`compile`
/// or the caller validates it).
fn set_clipping(optimizer: &mut dyn Optimizer, clipping: &Clipping) {
    if clipping.clipnorm.is_some() || clipping.clipvalue.is_some() || clipping.global_clipnorm.is_some() {
        *optimizer.clipping_mut() = *clipping;
    }
}

/// Checks that a text model's output covers its tokenizer's vocabulary.
fn check_tokenizer(model: &Model) -> Result<()> {
    let json = model
        .attachment(TOKENIZER)
        .ok_or_else(|| Error::Usage("a text model needs its tokenizer".into()))?;
    check_vocabulary(model, &Tokenizer::from_json(json)?)
}

/// A data error while resuming, naming the saved model and the data it was given.
fn resume_error(error: Error, path: &Path, source: &DataSource) -> Error {
    match error {
        Error::Data(message) | Error::Usage(message) => Error::Usage(format!(
            "cannot resume {} on {}: {message}",
            path.display(),
            source.describe()
        )),
        Error::LayerShape { .. } => Error::Usage(format!(
            "cannot resume {} on {}: {error}",
            path.display(),
            source.describe()
        )),
        other => other,
    }
}
