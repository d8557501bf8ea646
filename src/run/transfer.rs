//! Transfer learning in a run: a saved model as the base of a new one (`--base`), cut after a
//! layer (`--base-output`), frozen whole (`--freeze-base`) or by the names of layers or nested
//! models (`--freeze`: the base of a Keras file saved as `Sequential([base, ...])`), under new
//! layers (`--head`), and fine-tuning from a layer (`--fine-tune-from`, a layer inside a nested
//! base too), of a new run or of a resumed one. The same steps as Keras's recipe, through the
//! library's [`Model::truncate_after`], [`Model::set_trainable`],
//! [`Model::set_layer_trainable`], `add` and [`Model::fine_tune_from`].

use super::{
    DataSource, FitPlan, PreparedRun, RunOptions, check_label_applies, check_tokenizer, configured_optimizer,
    with_record,
};
use crate::applications::ImageInput;
use crate::error::{Error, Result};
use crate::losses::Loss;
use crate::model::Model;
use crate::optimizers::{self, Optimizer};
use std::path::{Path, PathBuf};

/// Epochs of a run on a base when neither the flags nor a model file say.
pub const DEFAULT_EPOCHS: usize = 10;
/// Samples per update of a run on a base when the flags do not say.
pub const DEFAULT_BATCH_SIZE: usize = 32;

/// What a run does with a pre-trained model (the command line's transfer flags).
#[derive(Clone, Debug, Default)]
pub struct Transfer {
    /// A saved model to start from instead of a named model or model file: a strata model file,
    /// or a Keras `.keras` or legacy `.h5` file ([`crate::io::load_model`] reads all three).
    pub base: Option<PathBuf>,
    /// The base layer whose output the head reads; the layers after it are dropped (Keras's
    /// `Model(base.input, base.get_layer(name).output)`). `None`: the base's output.
    pub base_output: Option<String>,
    /// Freezes every layer of the base (Keras's `base.trainable = False`).
    pub freeze_base: bool,
    /// Layers or nested models of the base to freeze, by their Keras names (Keras's
    /// `model.get_layer(name).trainable = False`, e.g. on `mobilenetv2_1.00_224`).
    pub freeze: Vec<String>,
    /// Layers added after the base, as `GlobalAveragePooling2D,Dropout(0.2),Dense(5,softmax)`
    /// ([`super::parse_head`]).
    pub head: Option<String>,
    /// Freezes the layers before this one and trains it and those after it
    /// ([`Model::fine_tune_from`]), with a fresh optimizer.
    pub fine_tune_from: Option<String>,
}

impl Transfer {
    /// Whether any transfer flag asks to change the model (so a base or a resumed model is
    /// needed).
    fn shapes_the_model(&self) -> bool {
        self.base_output.is_some()
            || self.freeze_base
            || !self.freeze.is_empty()
            || self.head.is_some()
            || self.fine_tune_from.is_some()
    }

    /// Cuts, freezes, extends and unfreezes `base` as asked. Names of unknown layers are errors
    /// listing the layers there are.
    fn apply(&self, base: &mut Model) -> Result<()> {
        if let Some(layer) = &self.base_output {
            base.truncate_after(layer).map_err(|e| flag_error("--base-output", e))?;
        }
        if self.freeze_base {
            base.set_trainable(false);
        }
        for name in &self.freeze {
            base.set_layer_trainable(name, false)
                .map_err(|e| flag_error("--freeze", e))?;
        }
        if let Some(spec) = &self.head {
            for layer in super::parse_head(spec)? {
                base.add_boxed(layer);
            }
        }
        if let Some(layer) = &self.fine_tune_from {
            base.fine_tune_from(layer)
                .map_err(|e| flag_error("--fine-tune-from", e))?;
        }
        Ok(())
    }

    /// Refuses transfer flags that have nothing to act on: all but `--fine-tune-from` need
    /// `--base`, and `--fine-tune-from` needs `--base` or `--resume`.
    pub(super) fn check_without_base(&self) -> Result<()> {
        if self.base.is_none() && self.shapes_the_model() {
            return Err(Error::Usage(
                "--base-output, --freeze-base, --freeze, --head and --fine-tune-from act on a pre-trained model: give \
                 it with --base FILE (or resume one with --resume FILE --fine-tune-from LAYER)"
                    .into(),
            ));
        }
        Ok(())
    }
}

/// A usage error about a flag's layer name, naming the flag.
fn flag_error(flag: &str, error: Error) -> Error {
    match error {
        Error::Usage(why) => Error::Usage(format!("{flag}: {why}")),
        other => other,
    }
}

impl RunOptions {
    /// A new run on the saved model `path`: loaded, changed as `self.transfer` asks, compiled
    /// with the base's optimizer settings (fresh state), loss and metrics unless the options say
    /// otherwise, and its data loaded. Its run starts at epoch 0.
    pub(super) fn prepare_on_base(&self, path: &Path) -> Result<PreparedRun> {
        if self.dropout.is_some() || self.l2.is_some() || self.augmentation.is_some() {
            return Err(Error::Usage(
                "--dropout, --l2 and --augment rewrite a new model's graph and do not apply with --base: put \
                 Dropout(RATE) in --head instead"
                    .into(),
            ));
        }
        let mut model = crate::io::load_model(path)?;
        // A Keras application's file (`.keras`, `.h5`) records no image preparation: its
        // family's, known from Keras's name for the model, as `strata import` records it.
        if ImageInput::of(&model)?.is_none()
            && let Some(record) = ImageInput::of_keras_application(&model)
        {
            record.attach_to(&mut model);
        }
        let (optimizer, loss, metrics) = fresh_compile_settings(&model)?;
        let loss = super::loss_flag(self.loss.as_deref())?.unwrap_or(loss);
        model.seed(self.seed);
        model.set_resume_point(0, 0);
        self.transfer.apply(&mut model)?;
        // The base's classes are not the new run's: its data names them.
        model.remove_attachment(crate::data::labels::CLASS_NAMES);
        let source = DataSource::from_flag(self.data.as_deref(), None, self.label.as_deref(), self.seed)?
            .with_test_table(self.test_data.as_deref())?;
        check_label_applies(&source, self)?;
        let dataset = source.load_for(&mut model, loss)?;
        if source.is_text() {
            check_tokenizer(&model)?;
        }
        let metric_names: Vec<&str> = metrics.iter().map(String::as_str).collect();
        model.compile(configured_optimizer(optimizer, self)?, loss, &metric_names)?;
        let plan = FitPlan {
            epochs: self.epochs.unwrap_or(DEFAULT_EPOCHS),
            batch_size: self.batch_size.unwrap_or(DEFAULT_BATCH_SIZE),
            validate_on_test: dataset.test.is_some(),
            initial_epoch: 0,
            initial_batch: 0,
            seed: self.seed,
            callbacks: self.callbacks.clone(),
        };
        let name = path
            .file_stem()
            .map_or("model".into(), |s| s.to_string_lossy().into_owned());
        Ok(with_record(name, model, dataset, source, plan))
    }

    /// `--fine-tune-from` on a resumed model: the layers' flags changed and the model compiled
    /// again, with a fresh optimizer of its own kind and settings (the options' learning rate and
    /// clipping applied), as Keras's recipe compiles again before fine-tuning. Other transfer
    /// flags shape a new model and are refused here.
    pub(super) fn fine_tune_resumed(&self, model: &mut Model) -> Result<()> {
        let transfer = &self.transfer;
        if transfer.base.is_some()
            || transfer.base_output.is_some()
            || transfer.freeze_base
            || !transfer.freeze.is_empty()
            || transfer.head.is_some()
        {
            return Err(Error::Usage(
                "--base, --base-output, --freeze-base, --freeze and --head start a new run: leave out --resume, or \
                 give only --fine-tune-from"
                    .into(),
            ));
        }
        let Some(layer) = &transfer.fine_tune_from else {
            return Ok(());
        };
        model
            .fine_tune_from(layer)
            .map_err(|e| flag_error("--fine-tune-from", e))?;
        let (optimizer, loss, metrics) = fresh_compile_settings(model)?;
        let metric_names: Vec<&str> = metrics.iter().map(String::as_str).collect();
        model.compile(configured_optimizer(optimizer, self)?, loss, &metric_names)
    }
}

/// A fresh optimizer with the model's optimizer settings (Adam without any), its loss (sparse
/// categorical cross-entropy without any, as for Keras's integer image-folder labels) and its
/// metrics (accuracy without any).
fn fresh_compile_settings(model: &Model) -> Result<(Box<dyn Optimizer>, Loss, Vec<String>)> {
    let config = model.compile_config();
    let optimizer = match config.as_ref().and_then(|c| c.get("optimizer")) {
        Some(optimizer) => optimizers::from_config(optimizer)?,
        None => optimizers::from_name("adam")?,
    };
    let loss = match model.loss() {
        Some(loss) => loss,
        None => Loss::from_name("sparse_categorical_crossentropy")?,
    };
    let metrics = match config
        .as_ref()
        .and_then(|c| c.get("metrics"))
        .and_then(|m| m.as_array())
    {
        Some(names) => names.iter().filter_map(|n| n.as_str().map(str::to_string)).collect(),
        None => vec!["accuracy".to_string()],
    };
    Ok((optimizer, loss, metrics))
}
