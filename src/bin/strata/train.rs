//! `strata train`: flags translated into a run description, the run prepared by the library's
//! resolver (`strata::run`), trained with Ctrl-C checkpoints, then reported, charted and saved.

use crate::Ending;
use clap::Args;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;
use strata::data::labels::class_names;
use strata::distributed::Launched;
use strata::model::{Callback, Control, EpochLogs, History, Model};
use strata::optimizers::Clipping;
use strata::run::{
    PreparedRun, RunOptions, Saved, TOKENIZER, prepare_new, prepare_resume, rescue_folders, save_or_rescue,
};
use strata::{Error, Result};

#[derive(Args, Default)]
pub(crate) struct TrainArgs {
    /// A named model or a model file (.toml or .json).
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Passes over the training data [default: the model's, 10 for mlp]. With --resume: the
    /// total to train up to [default: the first run's].
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per gradient update [default: the model's, 32 for mlp; with --resume the first
    /// run's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimizer by name, with Keras's defaults: sgd, adam, adamw, rmsprop, adagrad.
    #[arg(long)]
    optimizer: Option<String>,
    /// Loss by Keras's name, instead of the model file's or --base's: sparse_categorical_crossentropy
    /// (integer class labels), categorical_crossentropy, binary_crossentropy, mse, mae; a class
    /// name may take from_logits, as Keras's: "SparseCategoricalCrossentropy(from_logits=True)"
    /// for a head without softmax. A resumed run keeps its own.
    #[arg(long)]
    loss: Option<String>,
    /// Learning rate (overrides the optimizer's).
    #[arg(long)]
    lr: Option<f32>,
    /// Seed for weights and shuffling; the same seed and thread count give the same weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads [default: one per core; more than the machine's CPUs are capped to
    /// them, with a warning].
    #[arg(long)]
    threads: Option<usize>,
    /// Training data: one of Keras's data sets by name (mnist, fashion_mnist, cifar10,
    /// cifar100[:label_mode=coarse], imdb[:num_words=N,maxlen=N,...], reuters[:...],
    /// boston_housing[:test_split=F,seed=N]), a directory of MNIST IDX .gz files, a directory with one sub-folder of
    /// PNG/JPEG images per class, a .txt text (for text models), or a CSV file (header row,
    /// numeric columns, label in the last column or --label). With --resume: [default: the
    /// data the model was trained on].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Test data for a CSV --data (same columns).
    #[arg(long)]
    test_data: Option<PathBuf>,
    /// Name of the CSV label column [default: the last column].
    #[arg(long)]
    label: Option<String>,
    /// Read NaN and infinite values in a CSV table as they are (by default they are an error
    /// naming the row and column).
    #[arg(long)]
    allow_nonfinite: bool,
    /// Fraction of the training data held out for validation (taken from its end). With
    /// --resume: [default: the first run's].
    #[arg(long)]
    validation_split: Option<f32>,
    /// 0 silent, 1 progress bar, 2 one line per epoch.
    #[arg(long, default_value_t = 1)]
    verbose: u8,
    /// End with one JSON line of results on stdout.
    #[arg(long)]
    json: bool,
    /// Save the trained model (architecture, compile settings, weights, optimizer state, where
    /// its data came from and how it was trained) to this safetensors file [default with
    /// --resume: the file resumed, replaced atomically]. Checked before training; if it still
    /// cannot be written at the end, the model goes to strata-rescued-<unix time>.safetensors
    /// in the current (or else the temporary) folder, and the run says where and exits 1.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Save a checkpoint (the model with its training state) to this file during training:
    /// every --checkpoint-every epochs, and when Ctrl-C interrupts. With --resume: [default:
    /// the first run's].
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Stop when the validation loss (or the loss, without validation data) has not improved
    /// for this many epochs, and keep the best epoch's weights. With --resume: [default: the
    /// first run's].
    #[arg(long, value_name = "PATIENCE", allow_negative_numbers = true)]
    early_stopping: Option<i64>,
    /// Epochs between checkpoints (1 or more) [default: 1; with --resume the first run's].
    #[arg(long)]
    checkpoint_every: Option<usize>,
    /// Add Dropout(RATE) after every hidden Dense layer and every pooling layer of the model
    /// (residual connections and merges kept).
    #[arg(long, value_name = "RATE")]
    dropout: Option<f32>,
    /// Add an L2 penalty FACTOR·Σw² on the kernel of every Dense and convolution layer.
    #[arg(long, value_name = "FACTOR")]
    l2: Option<f32>,
    /// A learning-rate schedule starting from the optimizer's rate, as NAME:KEY=VALUE,...:
    /// "exponential:decay_steps=1000,decay_rate=0.9", "cosine:decay_steps=9000,warmup_steps=500",
    /// "step:boundaries=2000;4000,values=0.01;0.005;0.001" (quote it in a shell).
    #[arg(long, value_name = "SPEC")]
    lr_schedule: Option<String>,
    /// Clip each gradient tensor to this L2 norm before every update (Keras's clipnorm).
    /// Any of the three clipping flags replaces the model file's clipping; set one at most.
    #[arg(long, value_name = "NORM", allow_negative_numbers = true)]
    clipnorm: Option<f32>,
    /// Clamp every gradient element to [-VALUE, VALUE] before every update (Keras's clipvalue).
    #[arg(long, value_name = "VALUE", allow_negative_numbers = true)]
    clipvalue: Option<f32>,
    /// Scale all gradients together so their global L2 norm is at most this before every update
    /// (Keras's global_clipnorm).
    #[arg(long, value_name = "NORM", allow_negative_numbers = true)]
    global_clipnorm: Option<f32>,
    /// Augment each training batch of images with random transforms: rotations up to 10°,
    /// shifts up to 10 % of the width and height, zoom in [0.9, 1.1] (no flips: digits are not
    /// symmetric): preprocessing layers after the input, saved with the model.
    #[arg(long)]
    augment: bool,
    /// Write a PNG chart of loss and accuracy per epoch (training and validation) to this file.
    #[arg(long, value_name = "FILE.png")]
    plot: Option<PathBuf>,
    /// Write the training history (Keras's history.history layout) to this JSON file.
    #[arg(long, value_name = "FILE")]
    history: Option<PathBuf>,
    /// Write TensorBoard logs (Keras's TensorBoard callback with histogram_freq=1,
    /// write_images=True, write_steps_per_second=True) to a new run folder under DIR, named by
    /// the start time (or --run-name); view with `tensorboard --logdir DIR`.
    #[arg(long, value_name = "DIR")]
    tensorboard: Option<PathBuf>,
    /// The --tensorboard run folder's name; a run of that name already there gets new event
    /// files beside its own (so a --resume continues its curves).
    #[arg(long, value_name = "NAME", requires = "tensorboard")]
    run_name: Option<String>,
    /// Continue training a model saved with --save or --checkpoint, with its seed, optimizer
    /// state, data, batch size, validation split, early stopping and checkpoints (flags given
    /// here override them, and the run says which; the result is saved back to this file
    /// unless --save names another; --dropout, --l2 and
    /// --augment shape a new model, a resumed one keeps its own; --optimizer must name the
    /// saved one, --lr-schedule cannot be given). A model saved mid-epoch continues after its
    /// last batch, or, with another --batch-size, restarts that epoch from its beginning.
    /// --model cannot be given: the saved model is the one that continues.
    #[arg(long, conflicts_with = "model")]
    resume: Option<PathBuf>,
    /// Start from this saved model (.safetensors, or a Keras .keras or legacy .h5 file), a
    /// pre-trained base, instead of --model: its weights, and
    /// its compile settings with a fresh optimizer state (--optimizer and --lr override them);
    /// training starts at epoch 0 [default: 10 epochs, batch size 32]. E.g. `--base
    /// base.safetensors --base-output features --freeze-base --head "Flatten,Dense(5,softmax)"`.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["resume", "model"])]
    base: Option<PathBuf>,
    /// The layer of --base whose output the head reads; the layers after it are dropped (Keras's
    /// Model(base.input, base.get_layer(LAYER).output)): how a base's own classifier comes off.
    #[arg(long, value_name = "LAYER")]
    base_output: Option<String>,
    /// Freeze every layer of --base (Keras's base.trainable = False): its weights stay as they
    /// are, no gradient is computed for them, and a frozen BatchNormalization normalizes with
    /// its moving statistics and leaves them unchanged.
    #[arg(long)]
    freeze_base: bool,
    /// Freeze these layers or nested models of --base, by their Keras names, separated by
    /// commas (Keras's model.get_layer(NAME).trainable = False): for a Keras file saved as
    /// Sequential([base, GlobalAveragePooling2D(), Dense(5)]), the base's name (e.g.
    /// mobilenetv2_1.00_224) freezes the whole base and leaves the head trainable.
    #[arg(long, value_name = "NAME", value_delimiter = ',')]
    freeze: Vec<String>,
    /// Layers added after --base, as Keras calls separated by commas:
    /// "GlobalAveragePooling2D,Dropout(0.2),Dense(5,softmax)" (unnamed arguments in Keras's
    /// order, others as KEY=VALUE; quote it in a shell).
    #[arg(long, value_name = "LAYERS")]
    head: Option<String>,
    /// Fine-tune: freeze the layers before LAYER and train LAYER and every layer after it
    /// (BatchNormalization layers stay frozen, in inference mode), with a fresh optimizer. LAYER
    /// may be inside a nested base (Keras's base.layers[-20:] unfrozen), or a nested model's
    /// name (the whole base, Keras's base.trainable = True). With
    /// --resume FILE (continuing a --base run up to --epochs) or with --base. Usually with a
    /// smaller --lr, e.g. 1e-5.
    #[arg(long, value_name = "LAYER")]
    fine_tune_from: Option<String>,
    /// Train data-parallel with the other processes of an MPI job, one process per rank:
    /// `mpirun -np 2 strata train --distributed ...` (needs strata built with `--features mpi`).
    /// --batch-size is per rank; rank 0 prints and writes the files.
    #[arg(long)]
    distributed: bool,
}

impl TrainArgs {
    /// What `strata` alone runs: `strata train` with every default.
    pub(crate) fn default_run() -> Self {
        TrainArgs {
            model: "mlp".into(),
            verbose: 1,
            ..TrainArgs::default()
        }
    }

    /// The run these flags describe, for the library's resolver.
    fn run_options(&self) -> RunOptions {
        RunOptions {
            model: self.model.clone(),
            data: self.data.clone(),
            test_data: self.test_data.clone(),
            label: self.label.clone(),
            epochs: self.epochs,
            batch_size: self.batch_size,
            seed: self.seed,
            optimizer: self.optimizer.clone(),
            loss: self.loss.clone(),
            lr: self.lr,
            lr_schedule: self.lr_schedule.clone(),
            clipping: Clipping {
                clipnorm: self.clipnorm,
                clipvalue: self.clipvalue,
                global_clipnorm: self.global_clipnorm,
            },
            dropout: self.dropout,
            l2: self.l2,
            augmentation: self.augment.then(|| {
                strata::data::ImageAugmentation::new()
                    .rotation_range(10.0)
                    .width_shift_range(0.1)
                    .height_shift_range(0.1)
                    .zoom_range(0.1)
            }),
            allow_nonfinite: self.allow_nonfinite,
            transfer: strata::run::Transfer {
                base: self.base.clone(),
                base_output: self.base_output.clone(),
                freeze_base: self.freeze_base,
                freeze: self.freeze.clone(),
                head: self.head.clone(),
                fine_tune_from: self.fine_tune_from.clone(),
            },
            callbacks: strata::run::RunCallbacks {
                validation_split: self.validation_split,
                // A negative patience is refused by `check_flag_values` before this is read.
                early_stopping: self.early_stopping.and_then(|p| usize::try_from(p).ok()),
                checkpoint: self.checkpoint.clone(),
                checkpoint_every: self.checkpoint_every,
            },
        }
    }

    /// Where the trained model goes: --save, or the file a resumed run came from.
    fn save_path(&self) -> Option<PathBuf> {
        self.save.clone().or_else(|| self.resume.clone())
    }
}

/// `strata train`, alone or as one rank of an MPI job.
pub(crate) fn run(args: TrainArgs) -> Result<Ending> {
    if !args.distributed {
        return train_in(args, None);
    }
    let world = strata::distributed::launch()?;
    match train_in(args, Some(&*world)) {
        Ok(ending) => Ok(ending),
        Err(error) => {
            // The other ranks may be waiting for this one: end them all rather than leave them.
            // One write, so the ranks' messages do not interleave.
            let message = format!("error: rank {} of {}: {error}\n", world.rank(), world.size());
            let _ = std::io::Write::write_all(&mut std::io::stderr(), message.as_bytes());
            world.abort(1)
        }
    }
}

/// `train`, as one rank of `world` when distributed: rank 0 alone prints and writes files.
fn train_in(args: TrainArgs, world: Option<&dyn Launched>) -> Result<Ending> {
    let chief = world.is_none_or(|w| w.is_chief());
    let interrupt = install_interrupt(world.is_none());
    crate::set_threads(args.threads)?;
    if args.verbose > 2 {
        return Err(Error::invalid("verbose", args.verbose, "must be 0, 1 or 2"));
    }
    check_flag_values(&args)?;
    check_output_paths(&args)?;
    let mut tensorboard = tensorboard(&args, chief)?;
    let mut run = match &args.resume {
        Some(path) => prepare_resume(path, &args.run_options())?,
        None => prepare_new(&args.run_options())?,
    };
    let classes = class_names(&run.model)?;
    if chief {
        for notice in &run.notices {
            eprintln!("note: {notice}");
        }
        // The label order, as the saved model keeps it (Keras leaves it to `class_names`).
        if let Some(names) = classes.as_ref().filter(|_| args.verbose > 0) {
            println!("{} classes, labelled in this order: {}", names.len(), names.join(", "));
        }
    }
    let mut checkpointer = Checkpointer {
        path: run.plan.callbacks.checkpoint.clone().filter(|_| chief),
        every: run.plan.callbacks.checkpoint_every.unwrap_or(1),
        interrupt,
        saved_on_interrupt: None,
        failures: Vec::new(),
    };
    let started = Instant::now();
    let history = fit(&args, &mut run, world, &mut checkpointer, tensorboard.as_mut())?;
    if let Some(path) = checkpointer.saved_on_interrupt {
        eprintln!(
            "\ninterrupted: checkpoint saved to {}\nresume with: strata train --resume {}",
            path.display(),
            path.display()
        );
        return Ok(Ending::Interrupted);
    }
    let train_seconds = started.elapsed().as_secs_f64();
    let printing = args.verbose > 0 || !args.json;
    // The model is saved first: nothing after training (evaluation, the history, the chart)
    // can lose it. Failures are reported at the end.
    let mut failures = std::mem::take(&mut checkpointer.failures);
    if let Some(tensorboard) = &tensorboard {
        let folder = tensorboard.log_dir().display();
        failures.extend(
            tensorboard
                .failures()
                .iter()
                .map(|e| format!("--tensorboard {folder}: {e}")),
        );
    }
    let saved = match (args.save_path(), chief) {
        (Some(path), true) => save_model(&run.model, &path, printing, &mut failures),
        _ => None,
    };
    if chief {
        if let Some(path) = &args.history
            && let Err(error) = history.save_json(path)
        {
            failures.push(format!("--history {}: {error}", path.display()));
        }
        if let Some(path) = &args.plot
            && let Err(error) = strata::plot::plot_history(&history, path)
        {
            failures.push(format!("--plot {}: {error}", path.display()));
        }
    }
    let mut report = json!({
        "model": run.name,
        "params": run.model.count_params(),
        "threads": strata::kernels::threads(),
        "epochs": history.epochs,
        "train_seconds": train_seconds,
    });
    if let Some(names) = classes {
        report["class_names"] = json!(names);
    }
    if let Some(world) = world {
        report_all_reduce(&mut report, world, chief && args.verbose > 0);
    }
    let text_model = run.model.attachment(TOKENIZER).is_some();
    if text_model {
        add_perplexity(&mut report, &history);
    }
    let test_scores = run
        .data
        .test
        .as_ref()
        .map(|(x, y)| match world {
            // Every rank evaluates its shard of the test data; rank 0 alone reports and saves.
            Some(world) => run.model.evaluate_distributed(x, y, run.plan.batch_size.max(1), world),
            None => run.model.evaluate(x, y, run.plan.batch_size.max(1)),
        })
        .transpose()?;
    if !chief {
        return Ok(Ending::Done);
    }
    if let Some(scores) = test_scores {
        report_test(&mut report, &mut run, scores, text_model, printing)?;
    }
    if let Some(path) = saved {
        report["saved"] = json!(path.display().to_string());
    }
    if args.json {
        println!("{report}");
    }
    if !failures.is_empty() {
        return Err(Error::Usage(format!(
            "training finished, but not every file could be written:\n  {}",
            failures.join("\n  ")
        )));
    }
    Ok(Ending::Done)
}

/// Saves the trained model to `path`, or to a fallback file when `path` cannot be written any
/// more (recorded in `failures`, with where the model went). Where it was saved, if anywhere.
fn save_model(model: &Model, path: &std::path::Path, printing: bool, failures: &mut Vec<String>) -> Option<PathBuf> {
    match save_or_rescue(model, path, &rescue_folders()) {
        Ok(Saved::Target) => {
            if printing {
                println!("saved to {}", path.display());
            }
            Some(path.to_path_buf())
        }
        Ok(Saved::Rescued { path: rescued, error }) => {
            eprintln!(
                "warning: --save {} could not be written ({error}); the model was saved to {} instead",
                path.display(),
                rescued.display()
            );
            failures.push(format!(
                "--save {}: {error}; the model was saved to {} instead",
                path.display(),
                rescued.display()
            ));
            Some(rescued)
        }
        Err(error) => {
            failures.push(format!("--save {}: {error}", path.display()));
            None
        }
    }
}

/// Fits the prepared run with the flags' validation, augmentation, early stopping, checkpoints
/// and (for text models) perplexity lines.
fn fit(
    args: &TrainArgs,
    run: &mut PreparedRun,
    world: Option<&dyn Launched>,
    checkpointer: &mut Checkpointer,
    tensorboard: Option<&mut strata::callbacks::TensorBoard>,
) -> Result<History> {
    let PreparedRun { model, data, plan, .. } = run;
    let mut options = plan.options(data).verbose(args.verbose);
    if let Some(world) = world {
        options = options.distributed(world);
    }
    let has_validation = options.validation_data.is_some() || options.validation_split > 0.0;
    let mut early = plan.callbacks.early_stopping.map(|patience| {
        strata::callbacks::EarlyStopping::new(if has_validation { "val_loss" } else { "loss" })
            .patience(patience)
            .restore_best_weights(true)
            .verbose(u8::from(args.verbose > 0))
    });
    let mut perplexity = PerplexityLogger { verbose: args.verbose };
    let mut callbacks: Vec<&mut dyn Callback> = vec![checkpointer];
    if let Some(early) = early.as_mut() {
        callbacks.push(early);
    }
    if model.attachment(TOKENIZER).is_some() {
        callbacks.push(&mut perplexity);
    }
    if let Some(tensorboard) = tensorboard {
        callbacks.push(tensorboard);
    }
    model.fit_with_callbacks(&data.x_train, &data.y_train, options, &mut callbacks)
}

/// A flag set by Ctrl-C. Installed first, so Ctrl-C while the data loads also ends in a
/// checkpoint after the first batch rather than killing the process. Not when distributed: one
/// rank stopping alone would leave the others waiting, so Ctrl-C ends the MPI job (resume from
/// the last epoch's checkpoint).
fn install_interrupt(enabled: bool) -> Arc<AtomicBool> {
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    if enabled {
        // Fails only if a handler is already installed.
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    }
    interrupt
}

/// Checks before training that every file the run will write can be written: an existing
/// folder where a file can be created, not a folder itself, and no two flags naming the same
/// file, so a long run does not end in an error and nothing is lost.
fn check_output_paths(args: &TrainArgs) -> Result<()> {
    let outputs = [
        ("--save", &args.save),
        ("--checkpoint", &args.checkpoint),
        ("--plot", &args.plot),
        ("--history", &args.history),
    ];
    let mut checked: Vec<(&str, PathBuf)> = Vec::new();
    for (flag, path) in outputs {
        let Some(path) = path else { continue };
        crate::check_writable_flag(flag, path)?;
        let same = crate::same_file_as(path);
        if let Some((other, _)) = checked.iter().find(|(_, p)| *p == same) {
            return Err(Error::invalid(
                flag,
                path.display(),
                format!("{other} writes the same file: give each its own"),
            ));
        }
        checked.push((flag, same));
    }
    Ok(())
}

/// The --tensorboard callback, logging to a new (or the --run-name) run folder, checked before
/// training; rank 0 alone writes.
fn tensorboard(args: &TrainArgs, chief: bool) -> Result<Option<strata::callbacks::TensorBoard>> {
    let Some(log_dir) = &args.tensorboard else {
        return Ok(None);
    };
    let reason = |error: Error| match error {
        Error::File { reason, .. } | Error::InvalidArgument { reason, .. } => reason,
        other => other.to_string(),
    };
    let folder = strata::callbacks::tensorboard::run_folder(log_dir, args.run_name.as_deref())
        .map_err(|e| Error::invalid("--run-name", args.run_name.as_deref().unwrap_or_default(), reason(e)))?;
    strata::fs::check_folder_writable(&folder)
        .map_err(|e| Error::invalid("--tensorboard", log_dir.display(), reason(e)))?;
    let callback = strata::callbacks::TensorBoard::new(folder)
        .histogram_freq(1)
        .write_images(true)
        .write_steps_per_second(true)
        .keep_going(true)
        .chief(chief);
    Ok(Some(callback))
}

/// Checks the numeric flags' ranges before anything loads: NaN, infinities and values no run
/// can use are usage errors naming the flag, never replaced by a default.
fn check_flag_values(args: &TrainArgs) -> Result<()> {
    let check = |flag: &str, value: Option<f32>, valid: fn(f32) -> bool, reason: &str| match value {
        Some(value) if !(value.is_finite() && valid(value)) => Err(Error::invalid(flag, value, reason)),
        _ => Ok(()),
    };
    check(
        "--lr",
        args.lr,
        |v| v > 0.0,
        "a learning rate must be a finite number > 0",
    )?;
    check(
        "--l2",
        args.l2,
        |v| v >= 0.0,
        "an L2 factor must be a finite number ≥ 0",
    )?;
    check(
        "--dropout",
        args.dropout,
        |v| (0.0..1.0).contains(&v),
        "a dropout rate must be in [0, 1)",
    )?;
    check(
        "--validation-split",
        args.validation_split,
        |v| (0.0..1.0).contains(&v),
        "the fraction held out must be in [0, 1)",
    )?;
    if args.checkpoint_every == Some(0) {
        return Err(Error::invalid("--checkpoint-every", 0, "must be 1 or more (epochs)"));
    }
    if let Some(p) = args.early_stopping.filter(|&p| p < 0) {
        return Err(Error::invalid(
            "early-stopping",
            p,
            "the patience is a number of epochs, 0 or more",
        ));
    }
    Ok(())
}

/// Adds test loss, accuracy (or perplexity) and, for a handful of samples, the predictions.
fn report_test(
    report: &mut Value,
    run: &mut PreparedRun,
    scores: strata::model::Scores,
    text_model: bool,
    printing: bool,
) -> Result<()> {
    report["test_loss"] = json!(scores.loss);
    if text_model {
        report["test_perplexity"] = json!(scores.loss.exp());
        if printing {
            println!("test perplexity: {:.3}", scores.loss.exp());
        }
    }
    if printing {
        print!("test loss: {:.4}", scores.loss);
    }
    if let Some(accuracy) = scores.accuracy {
        report["test_accuracy"] = json!(accuracy);
        if printing {
            print!(" - test accuracy: {accuracy:.4}");
        }
    }
    for (key, value) in &scores.metrics {
        report[format!("test_{key}")] = json!(value);
        if printing {
            print!(" - test {key}: {value:.4}");
        }
    }
    if printing {
        println!();
    }
    if let Some((x, _)) = &run.data.test
        && x.rows() <= 16
    {
        let predictions = run.model.predict(x, 32)?;
        if printing {
            println!("predictions: {:?}", predictions.data());
        }
        report["predictions"] = json!(predictions.data());
    }
    Ok(())
}

/// Adds the all-reduce statistics of a distributed run (and prints them when `print`).
fn report_all_reduce(report: &mut Value, world: &dyn Launched, print: bool) {
    let time = world.all_reduce_time();
    let ms_per_call = 1e3 * time.seconds / time.calls.max(1) as f64;
    report["ranks"] = json!(world.size());
    report["allreduce_calls"] = json!(time.calls);
    report["allreduce_ms_per_call"] = json!(ms_per_call);
    if print {
        println!(
            "{} ranks: {} all-reduces, {ms_per_call:.3} ms each on average ({} floats), waiting for the slowest rank included",
            world.size(),
            time.calls,
            time.floats / time.calls.max(1)
        );
    }
}

/// Perplexity, exp(loss), per epoch: the number of equally likely characters the loss amounts to.
fn add_perplexity(report: &mut Value, history: &History) {
    for (entry, logs) in report["epochs"]
        .as_array_mut()
        .into_iter()
        .flatten()
        .zip(&history.epochs)
    {
        entry["perplexity"] = json!(logs.loss.exp());
        if let Some(val) = logs.val_loss {
            entry["val_perplexity"] = json!(val.exp());
        }
    }
}

/// Saves checkpoints at epoch ends, and on Ctrl-C after the current batch, then stops. A
/// checkpoint that cannot be written does not end the run (its model is still wanted): it is
/// reported at once and again at the end.
struct Checkpointer {
    path: Option<PathBuf>,
    every: usize,
    interrupt: Arc<AtomicBool>,
    saved_on_interrupt: Option<PathBuf>,
    failures: Vec<String>,
}

impl Callback for Checkpointer {
    fn on_batch_end(&mut self, model: &mut Model, _epoch: usize, _batch: usize, _loss: f32) -> Result<Control> {
        if !self.interrupt.load(Ordering::Relaxed) {
            return Ok(Control::Continue);
        }
        let path = self
            .path
            .clone()
            .unwrap_or_else(|| PathBuf::from("strata-interrupted.safetensors"));
        let saved = match save_or_rescue(model, &path, &rescue_folders())? {
            Saved::Target => path,
            Saved::Rescued { path: rescued, error } => {
                eprintln!(
                    "\nwarning: the checkpoint could not be written to {} ({error}); saved to {} instead",
                    path.display(),
                    rescued.display()
                );
                rescued
            }
        };
        self.saved_on_interrupt = Some(saved);
        Ok(Control::Stop)
    }

    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        if let Some(path) = &self.path
            && logs.epoch.is_multiple_of(self.every.max(1))
            && let Err(error) = model.save(path)
        {
            eprintln!("warning: epoch {}'s checkpoint was not saved: {error}", logs.epoch);
            self.failures.push(format!(
                "--checkpoint {} (epoch {}): {error}",
                path.display(),
                logs.epoch
            ));
        }
        Ok(Control::Continue)
    }
}

/// Prints `perplexity` (and `val_perplexity`), `exp(loss)`, after each epoch's line.
struct PerplexityLogger {
    verbose: u8,
}

impl Callback for PerplexityLogger {
    fn on_epoch_end(&mut self, _model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        if self.verbose > 0 {
            let mut line = format!("perplexity: {:.3}", logs.loss.exp());
            if let Some(val) = logs.val_loss {
                line += &format!(" - val_perplexity: {:.3}", val.exp());
            }
            println!("{line}");
        }
        Ok(Control::Continue)
    }
}
