//! The `strata` command line: train, evaluate and inspect models without writing Rust.
//!
//! `strata` alone trains the default model (`mlp`) on the bundled MNIST, as
//! `strata train` does.

use crate::data::csv::{LabelColumn, load_csv};
use crate::data::{mnist, to_categorical};
use crate::error::{Error, Result};
use crate::io::config::{ModelFile, load_model_spec};
use crate::losses::Loss;
use crate::metrics::ConfusionMatrix;
use crate::model::{Callback, Control, FitOptions, Model};
use crate::optimizers::{self, Clipping, LearningRate, Optimizer};
use crate::tensor::{Tensor, numel};
use clap::{Args, Parser, Subcommand};
use serde_json::json;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

mod text;

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Train, evaluate and inspect Keras-style models from the command line."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
}

// Parsed once at start-up, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train a model (default: the MNIST MLP) and report its test accuracy.
    Train(TrainArgs),
    /// Print a model's layers, output shapes and parameter counts, as Keras's model.summary().
    Summary(SummaryArgs),
    /// Evaluate a saved model on test data: loss and accuracy.
    Evaluate(EvaluateArgs),
    /// Classify PNG/JPEG images with a saved model: the top 3 classes and their probabilities.
    Predict(PredictArgs),
    /// Time training steps of a model on random data of its input shape.
    Bench(BenchArgs),
    /// Continue a prompt with a text model (trained with `strata train --model char_rnn --save FILE`).
    Generate {
        /// The model file, saved by `strata train --save` from a text model.
        #[arg(long)]
        model: PathBuf,
        /// The text to continue (its characters must be in the model's vocabulary).
        #[arg(long)]
        prompt: String,
        /// Characters to add.
        #[arg(long, default_value_t = 200)]
        length: usize,
        /// Sampling temperature: below 1 safer, above 1 more varied, 0 always the likeliest.
        #[arg(long, default_value_t = 0.8)]
        temperature: f32,
        /// Seed of the sampling.
        #[arg(long, default_value_t = 0)]
        seed: u64,
    },
    /// Convert a Keras 3 `.keras` archive (a Sequential model) to a strata model file.
    Import {
        /// The `.keras` file, as Keras's `model.save("model.keras")` writes it.
        file: PathBuf,
        /// The strata model file to write (safetensors).
        #[arg(short, long)]
        output: PathBuf,
    },
}

#[derive(Args)]
struct BenchArgs {
    /// A named model (mlp, mlp2, cnn, linreg, resmlp), a model file, or `all` for the classic
    /// mlp, mlp2 and cnn one after the other.
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Training steps to time (after two warm-up steps).
    #[arg(long, default_value_t = 100)]
    steps: usize,
    /// Samples per step [default: the model's].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Single-sample `predict` calls to time for the latency percentiles (after ten warm-up calls).
    #[arg(long, default_value_t = 200)]
    predictions: usize,
    /// Print one JSON object per model (one per line) instead of text.
    #[arg(long)]
    json: bool,
}

/// The models `strata bench --model all` times.
const CLASSIC_MODELS: [&str; 3] = ["mlp", "mlp2", "cnn"];

#[derive(Args, Default)]
struct TrainArgs {
    /// A named model (mlp, mlp2, cnn, linreg, resmlp) or a model file (.toml or .json).
    #[arg(long, default_value = "mlp")]
    model: String,
    /// Passes over the training data [default: the model's, 10 for mlp].
    #[arg(long)]
    epochs: Option<usize>,
    /// Samples per gradient update [default: the model's, 32 for mlp].
    #[arg(long)]
    batch_size: Option<usize>,
    /// Optimizer by name, with Keras's defaults: sgd, adam, adamw, rmsprop, adagrad.
    #[arg(long)]
    optimizer: Option<String>,
    /// Learning rate (overrides the optimizer's).
    #[arg(long)]
    lr: Option<f32>,
    /// Seed for weights and shuffling; the same seed and thread count give the same weights.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Worker threads [default: one per core].
    #[arg(long)]
    threads: Option<usize>,
    /// Training data: a directory of MNIST IDX .gz files, a directory with one sub-folder of
    /// PNG/JPEG images per class, or a CSV file (header row, numeric columns, label in the
    /// last column or --label).
    #[arg(long)]
    data: Option<PathBuf>,
    /// Test data for a CSV --data (same columns).
    #[arg(long)]
    test_data: Option<PathBuf>,
    /// Name of the CSV label column [default: the last column].
    #[arg(long)]
    label: Option<String>,
    /// Fraction of the training data held out for validation (taken from its end).
    #[arg(long)]
    validation_split: Option<f32>,
    /// 0 silent, 1 progress bar, 2 one line per epoch.
    #[arg(long, default_value_t = 1)]
    verbose: u8,
    /// End with one JSON line of results on stdout.
    #[arg(long)]
    json: bool,
    /// Save the trained model (architecture, compile settings, weights, optimizer state) to this
    /// safetensors file.
    #[arg(long)]
    save: Option<PathBuf>,
    /// Save a checkpoint (the model with its training state) to this file during training:
    /// every --checkpoint-every epochs, and when Ctrl-C interrupts.
    #[arg(long)]
    checkpoint: Option<PathBuf>,
    /// Stop when the validation loss (or the loss, without validation data) has not improved
    /// for this many epochs, and keep the best epoch's weights.
    #[arg(long, value_name = "PATIENCE", allow_negative_numbers = true)]
    early_stopping: Option<i64>,
    /// Epochs between checkpoints.
    #[arg(long, default_value_t = 1)]
    checkpoint_every: usize,
    /// Add Dropout(RATE) after every hidden Dense layer and every pooling layer of the model.
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
    /// Continue training a model saved with --save, up to --epochs (the total), with its seed
    /// and optimizer state; pass the same --batch-size [default 32] and data.
    #[arg(long)]
    resume: Option<PathBuf>,
    /// Train data-parallel with the other processes of an MPI job, one process per rank:
    /// `mpirun -np 2 strata train --distributed ...` (needs strata built with `--features mpi`).
    /// --batch-size is per rank; rank 0 prints and writes the files.
    #[arg(long)]
    distributed: bool,
}

#[derive(Args)]
struct EvaluateArgs {
    /// A model file saved by `strata train --save` (or `model.save`).
    #[arg(long)]
    model: PathBuf,
    /// Test data: a directory of MNIST IDX .gz files (its t10k files are used) or a CSV file
    /// [default: the bundled MNIST test set].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Name of the CSV label column [default: the last column].
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Also write the confusion matrix as a PNG heat map to this file.
    #[arg(long, value_name = "FILE.png")]
    confusion_matrix: Option<PathBuf>,
}

#[derive(Args)]
struct PredictArgs {
    /// A model file saved by `strata train --save`.
    #[arg(long)]
    model: PathBuf,
    /// Images to classify (PNG or JPEG), converted to the model's channels and resized to its
    /// input; pixels are scaled to [0, 1] as in training (MNIST digits are white on black).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Print one JSON array instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Args)]
struct SummaryArgs {
    /// A named model (mlp, mlp2, cnn, linreg, resmlp) or a model file (.toml or .json).
    #[arg(long, default_value = "mlp")]
    model: String,
}

/// Runs the command line; returns the process exit status.
pub fn main() -> i32 {
    let cli = Cli::parse();
    let result = match cli.command {
        None => train(TrainArgs {
            model: "mlp".into(),
            verbose: 1,
            ..TrainArgs::default()
        }),
        Some(Command::Train(args)) => train(args),
        Some(Command::Summary(args)) => summary(&args).map(|_| Interrupted::No),
        Some(Command::Bench(args)) => bench(&args).map(|_| Interrupted::No),
        Some(Command::Evaluate(args)) => evaluate(&args).map(|_| Interrupted::No),
        Some(Command::Predict(args)) => predict(&args).map(|_| Interrupted::No),
        Some(Command::Import { file, output }) => import(&file, &output).map(|_| Interrupted::No),
        Some(Command::Generate {
            model,
            prompt,
            length,
            temperature,
            seed,
        }) => text::generate(&model, &prompt, length, temperature, seed).map(|_| Interrupted::No),
    };
    match result {
        Ok(Interrupted::Yes) => 130,
        Ok(Interrupted::No) => 0,
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    }
}

/// Training and test data as the model will see them.
struct Dataset {
    x_train: Tensor,
    y_train: Tensor,
    test: Option<(Tensor, Tensor)>,
}

fn summary(args: &SummaryArgs) -> Result<()> {
    if args.model.ends_with(".safetensors") {
        print!("{}", crate::io::load_model(&args.model)?.summary()?);
        return Ok(());
    }
    let mut spec = load_model_spec(&args.model)?;
    if spec.model.input_shape().is_none()
        && spec
            .model
            .layers()
            .first()
            .and_then(|l| l.declared_input_shape())
            .is_none()
    {
        return Err(Error::Usage(format!(
            "model '{}' declares no input shape: add an InputLayer (or input_shape on its first layer)",
            spec.name
        )));
    }
    print!("{}", spec.model.summary()?);
    Ok(())
}

/// Whether Ctrl-C stopped training (the process then exits with status 130).
enum Interrupted {
    No,
    Yes,
}

/// Saves checkpoints at epoch ends, and on Ctrl-C after the current batch, then stops.
struct Checkpointer {
    path: Option<PathBuf>,
    every: usize,
    interrupt: Arc<AtomicBool>,
    saved_on_interrupt: Option<PathBuf>,
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
        model.save(&path)?;
        self.saved_on_interrupt = Some(path);
        Ok(Control::Stop)
    }

    fn on_epoch_end(&mut self, model: &mut Model, logs: &crate::model::EpochLogs) -> Result<Control> {
        if let Some(path) = &self.path
            && logs.epoch.is_multiple_of(self.every.max(1))
        {
            model.save(path)?;
        }
        Ok(Control::Continue)
    }
}

/// A compiled model with its data and fit settings, ready to train.
struct Prepared {
    name: String,
    model: Model,
    data: Dataset,
    epochs: usize,
    batch_size: usize,
    validate_on_test: bool,
    initial_epoch: usize,
    seed: u64,
}

/// A new model from a name or description file.
fn prepare_new(args: &TrainArgs) -> Result<Prepared> {
    let spec = load_model_spec(&args.model)?;
    let (data, tokenizer) = match text::text_source(&spec, args.data.as_deref()) {
        Some(path) => {
            let (data, tokenizer) = text::text_dataset(&spec, path.as_deref())?;
            (data, Some(tokenizer))
        }
        None => (load_dataset(args, &spec)?, None),
    };
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
    let mut model = with_regularization(model, args.dropout, args.l2)?;
    if args.augment {
        let augmentation = crate::data::ImageAugmentation::new()
            .rotation_range(10.0)
            .width_shift_range(0.1)
            .height_shift_range(0.1)
            .zoom_range(0.1);
        model = crate::data::augment::with_preprocessing(model, augmentation.layers()?)?;
    }
    model.seed(args.seed);
    let data = fit_data_to_model(&mut model, data, raw_targets(loss))?;
    if let Some(tokenizer) = tokenizer {
        text::check_vocabulary(&model, &tokenizer)?;
        model.set_attachment(text::TOKENIZER, tokenizer.to_json());
    }
    let mut optimizer = match &args.optimizer {
        Some(name) => optimizers::from_name(name)?,
        None => optimizer,
    };
    if let Some(lr) = args.lr {
        optimizer.set_learning_rate(lr);
    }
    if let Some(spec) = &args.lr_schedule {
        optimizer.set_learning_rate_schedule(LearningRate::parse_schedule(spec, optimizer.learning_rate())?);
    }
    set_clipping(args, optimizer.as_mut());
    let metric_names: Vec<&str> = metrics.iter().map(String::as_str).collect();
    model.compile(optimizer, loss, &metric_names)?;
    Ok(Prepared {
        name,
        model,
        data,
        epochs: args.epochs.unwrap_or(epochs),
        batch_size: args.batch_size.unwrap_or(batch_size),
        validate_on_test,
        initial_epoch: 0,
        seed: args.seed,
    })
}

/// Replaces the optimizer's gradient clipping with the one the flags give, when any is given
/// (`compile` or the caller validates it).
fn set_clipping(args: &TrainArgs, optimizer: &mut dyn Optimizer) {
    if args.clipnorm.is_some() || args.clipvalue.is_some() || args.global_clipnorm.is_some() {
        *optimizer.clipping_mut() = Clipping {
            clipnorm: args.clipnorm,
            clipvalue: args.clipvalue,
            global_clipnorm: args.global_clipnorm,
        };
    }
}

/// A saved model, continuing after the epochs it has trained, with its seed and optimizer
/// state, so the result equals one uninterrupted run (given the same data and batch size).
fn prepare_resume(args: &TrainArgs, path: &std::path::Path) -> Result<Prepared> {
    let mut model = crate::io::load_model(path)?;
    let epochs = args.epochs.ok_or_else(|| {
        Error::Usage(format!(
            "--resume needs --epochs: the epoch to train up to (the file has trained {})",
            model.epochs_trained()
        ))
    })?;
    let loss = model
        .loss()
        .ok_or_else(|| Error::Usage("the saved model has no compile settings".into()))?;
    let data = match &args.data {
        Some(dir) if dir.is_dir() => mnist_dataset(dir)?,
        Some(csv) => csv_dataset(args, csv)?,
        None => mnist_dataset(&mnist::default_dir())?,
    };
    let data = fit_data_to_model(&mut model, data, raw_targets(loss))?;
    if let (Some(lr), Some(optimizer)) = (args.lr, model.optimizer_mut()) {
        optimizer.set_learning_rate(lr);
    }
    if let Some(optimizer) = model.optimizer_mut() {
        set_clipping(args, optimizer);
        optimizer.validate()?;
    }
    let name = path
        .file_stem()
        .map_or("model".into(), |s| s.to_string_lossy().into_owned());
    let (initial_epoch, seed) = (model.epochs_trained(), model.seed_value());
    Ok(Prepared {
        name,
        model,
        data,
        epochs,
        batch_size: args.batch_size.unwrap_or(32),
        validate_on_test: false,
        initial_epoch,
        seed,
    })
}

/// The model with `Dropout(rate)` inserted after every hidden Dense and pooling layer and an L2
/// kernel penalty on every Dense and convolution layer, rebuilt from its config.
fn with_regularization(model: Model, dropout: Option<f32>, l2: Option<f32>) -> Result<Model> {
    if dropout.is_none() && l2.is_none() {
        return Ok(model);
    }
    let config = model.config();
    let entries = config["config"]["layers"].as_array().cloned().unwrap_or_default();
    let mut rebuilt = Model::new();
    rebuilt.set_name(model.name());
    for (i, mut entry) in entries.iter().cloned().enumerate() {
        let class = entry["class_name"].as_str().unwrap_or_default().to_string();
        if let Some(factor) = l2
            && matches!(class.as_str(), "Dense" | "Conv2D" | "Conv1D")
        {
            entry["config"]["kernel_regularizer"] = crate::regularizers::l2(factor).config();
        }
        rebuilt.add_boxed(crate::layers::from_config(&class, &entry["config"])?);
        let hidden = i + 1 < entries.len();
        if let Some(rate) = dropout
            && hidden
            && matches!(
                class.as_str(),
                "Dense" | "MaxPooling2D" | "AveragePooling2D" | "MaxPooling1D"
            )
        {
            rebuilt.add(crate::layers::Dropout::new(rate));
        }
    }
    Ok(rebuilt)
}

/// Whether a loss takes labels as they are (sparse cross-entropy, regression) rather than one-hot.
fn raw_targets(loss: crate::losses::Loss) -> bool {
    !loss.name().contains("categorical_crossentropy") || loss.sparse_targets()
}

fn set_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        return Err(Error::invalid("threads", 0, "must be at least 1"));
    }
    // This thread joins the pool as its worker 0: the training loop then runs on a worker, so
    // each parallel region is a cheap `join` whose first half stays on this thread.
    crate::kernels::join_pool(threads);
    Ok(())
}

fn bench(args: &BenchArgs) -> Result<()> {
    set_threads(args.threads)?;
    if args.model != "all" {
        return bench_model(&args.model, args);
    }
    for model in CLASSIC_MODELS {
        reset_peak_rss();
        bench_model(model, args)?;
    }
    Ok(())
}

/// Times training steps and single-sample predictions of one model (see `strata bench`).
fn bench_model(spec: &str, args: &BenchArgs) -> Result<()> {
    let ModelFile {
        name,
        mut model,
        optimizer,
        loss,
        batch_size,
        ..
    } = load_model_spec(spec)?;
    let batch_size = args.batch_size.unwrap_or(batch_size).max(1);
    let input = model
        .layers()
        .first()
        .and_then(|l| l.declared_input_shape())
        .map(<[usize]>::to_vec)
        .ok_or_else(|| {
            Error::Usage(format!(
                "model '{name}' declares no input shape: add an InputLayer to time it"
            ))
        })?;
    model.build(&input)?;
    model.compile(optimizer, loss, &["accuracy"])?;
    let classes = model.output_shape().map_or(1, numel);
    // A few distinct batches, cycled as epochs, so peak memory measures training and not a
    // random dataset that grows with --steps: as many as divide the step count, up to 64.
    let steps = args.steps.max(1);
    let batches = (1..=steps.min(64))
        .rev()
        .find(|b| steps.is_multiple_of(*b))
        .unwrap_or(1);
    let samples = batch_size * (batches + 2);
    let mut rng = crate::rng::Rng::new(0);
    let mut shape = vec![samples];
    shape.extend(&input);
    let x = Tensor::from_vec(
        shape,
        (0..samples * numel(&input)).map(|_| rng.uniform(0.0, 1.0)).collect(),
    )?;
    let labels = Tensor::from_vec(vec![samples], (0..samples).map(|_| rng.below(classes) as f32).collect())?;
    let y = if loss.sparse_targets() || classes == 1 {
        labels
    } else {
        to_categorical(&labels, classes)?
    };
    let options = FitOptions::default().batch_size(batch_size).shuffle(false).verbose(0);
    let warm = 2 * batch_size;
    model.fit(&x.slice_rows(0, warm), &y.slice_rows(0, warm), options.clone())?;
    let (x, y) = (x.slice_rows(warm, samples), y.slice_rows(warm, samples));
    let started = Instant::now();
    model.fit(&x, &y, options.epochs(steps / batches))?;
    let seconds = started.elapsed().as_secs_f64();
    let ms_per_step = 1e3 * seconds / steps as f64;
    let samples_per_second = (steps * batch_size) as f64 / seconds;
    let threads = crate::kernels::threads();

    // Inference: one sample per call, as a service answering single requests would.
    let one = x.slice_rows(0, 1);
    for _ in 0..10 {
        model.predict(&one, 1)?;
    }
    let mut latencies_ms = Vec::with_capacity(args.predictions);
    for _ in 0..args.predictions {
        let started = Instant::now();
        model.predict(&one, 1)?;
        latencies_ms.push(1e3 * started.elapsed().as_secs_f64());
    }
    latencies_ms.sort_by(f64::total_cmp);
    let (p50, p99) = (percentile(&latencies_ms, 50.0), percentile(&latencies_ms, 99.0));
    let peak_rss_mb = peak_rss_mb();

    if args.json {
        println!(
            "{}",
            json!({"model": name, "batch_size": batch_size, "steps": args.steps, "threads": threads,
                   "ms_per_step": ms_per_step, "samples_per_second": samples_per_second,
                   "predict_p50_ms": p50, "predict_p99_ms": p99, "predictions": args.predictions,
                   "peak_rss_mb": peak_rss_mb})
        );
    } else {
        println!(
            "{name}: {ms_per_step:.3} ms/step, {samples_per_second:.0} samples/s (batch {batch_size}, {} steps, {threads} threads)",
            args.steps
        );
        if let (Some(p50), Some(p99)) = (p50, p99) {
            println!(
                "{name}: predict 1 sample: p50 {p50:.3} ms, p99 {p99:.3} ms ({} calls)",
                args.predictions
            );
        }
        if let Some(mb) = peak_rss_mb {
            println!("{name}: peak memory (RSS) {mb:.0} MB");
        }
    }
    Ok(())
}

/// The nearest-rank `p`-th percentile of ascending `sorted` values (`None` when empty).
fn percentile(sorted: &[f64], p: f64) -> Option<f64> {
    let rank = (p / 100.0 * sorted.len() as f64).ceil() as usize;
    sorted.get(rank.clamp(1, sorted.len().max(1)) - 1).copied()
}

/// Restarts the count of peak resident memory (Linux's `clear_refs` value 5, which resets
/// `VmHWM`), so each model of `strata bench --model all` reports its own peak. Best effort:
/// elsewhere the peak stays the process's.
fn reset_peak_rss() {
    let _ = std::fs::write("/proc/self/clear_refs", "5");
}

/// The process's peak resident memory so far, in MB (Linux's `VmHWM`; `None` elsewhere).
fn peak_rss_mb() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

fn train(args: TrainArgs) -> Result<Interrupted> {
    if !args.distributed {
        return train_in(args, None);
    }
    let world = crate::distributed::launch()?;
    match train_in(args, Some(&*world)) {
        Ok(interrupted) => Ok(interrupted),
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
fn train_in(args: TrainArgs, world: Option<&dyn crate::distributed::Launched>) -> Result<Interrupted> {
    let chief = world.is_none_or(|w| w.is_chief());
    // Installed first, so Ctrl-C while the data loads also ends in a checkpoint after the first
    // batch rather than killing the process. Fails only if a handler is already installed.
    // Not when distributed: one rank stopping alone would leave the others waiting, so Ctrl-C
    // ends the MPI job (resume from the last epoch's checkpoint).
    let interrupt = Arc::new(AtomicBool::new(false));
    let flag = interrupt.clone();
    if world.is_none() {
        let _ = ctrlc::set_handler(move || flag.store(true, Ordering::Relaxed));
    }
    set_threads(args.threads)?;
    if args.verbose > 2 {
        return Err(Error::invalid("verbose", args.verbose, "must be 0, 1 or 2"));
    }
    let Prepared {
        name,
        mut model,
        data,
        epochs,
        batch_size,
        validate_on_test,
        initial_epoch,
        seed,
    } = match &args.resume {
        Some(path) => prepare_resume(&args, path)?,
        None => prepare_new(&args)?,
    };

    let mut options = FitOptions::default()
        .epochs(epochs)
        .batch_size(batch_size)
        .verbose(args.verbose)
        .seed(seed)
        .initial_epoch(initial_epoch);
    if let Some(split) = args.validation_split {
        options = options.validation_split(split);
    } else if validate_on_test && let Some((x, y)) = &data.test {
        options = options.validation_data(x, y);
    }
    if let Some(batch) = args.resume.as_ref().map(|_| model.batches_into_epoch()) {
        options = options.initial_batch(batch);
    }
    if let Some(world) = world {
        options = options.distributed(world);
    }
    let mut checkpointer = Checkpointer {
        path: args.checkpoint.clone().filter(|_| chief),
        every: args.checkpoint_every,
        interrupt,
        saved_on_interrupt: None,
    };
    let started = Instant::now();
    let has_validation = options.validation_data.is_some() || options.validation_split > 0.0;
    let patience = args
        .early_stopping
        .map(|p| {
            usize::try_from(p)
                .map_err(|_| Error::invalid("early-stopping", p, "the patience is a number of epochs, 0 or more"))
        })
        .transpose()?;
    let mut early = patience.map(|patience| {
        crate::callbacks::EarlyStopping::new(if has_validation { "val_loss" } else { "loss" })
            .patience(patience)
            .restore_best_weights(true)
    });
    let text_model = model.attachment(text::TOKENIZER).is_some();
    let mut perplexity = text::PerplexityLogger { verbose: args.verbose };
    let mut callbacks: Vec<&mut dyn Callback> = vec![&mut checkpointer];
    if let Some(early) = early.as_mut() {
        callbacks.push(early);
    }
    if text_model {
        callbacks.push(&mut perplexity);
    }
    let history = model.fit_with_callbacks(&data.x_train, &data.y_train, options, &mut callbacks)?;
    drop(callbacks);
    if let Some(path) = checkpointer.saved_on_interrupt {
        eprintln!(
            "\ninterrupted: checkpoint saved to {}\nresume with: strata train --resume {} --epochs {} --batch-size {batch_size}",
            path.display(),
            path.display(),
            epochs
        );
        return Ok(Interrupted::Yes);
    }
    let train_seconds = started.elapsed().as_secs_f64();
    if let Some(path) = args.history.as_ref().filter(|_| chief) {
        history.save_json(path)?;
    }
    if let Some(path) = args.plot.as_ref().filter(|_| chief) {
        crate::plot::plot_history(&history, path)?;
    }
    let mut report = json!({
        "model": name,
        "params": model.count_params(),
        "threads": crate::kernels::threads(),
        "epochs": history.epochs,
        "train_seconds": train_seconds,
    });
    if let Some(world) = world {
        let time = world.all_reduce_time();
        let ms_per_call = 1e3 * time.seconds / time.calls.max(1) as f64;
        report["ranks"] = json!(world.size());
        report["allreduce_calls"] = json!(time.calls);
        report["allreduce_ms_per_call"] = json!(ms_per_call);
        if chief && args.verbose > 0 {
            println!(
                "{} ranks: {} all-reduces, {ms_per_call:.3} ms each on average ({} floats), waiting for the slowest rank included",
                world.size(),
                time.calls,
                time.floats / time.calls.max(1)
            );
        }
    }
    if text_model {
        // Perplexity, exp(loss): the number of equally likely characters the loss amounts to.
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
    // Every rank evaluates its shard of the test data; rank 0 alone reports and saves.
    let test_scores = data
        .test
        .as_ref()
        .map(|(x, y)| match world {
            Some(world) => model.evaluate_distributed(x, y, batch_size.max(1), world),
            None => model.evaluate(x, y, batch_size.max(1)),
        })
        .transpose()?;
    if !chief {
        return Ok(Interrupted::No);
    }
    if let (Some((x, _)), Some(scores)) = (&data.test, test_scores) {
        report["test_loss"] = json!(scores.loss);
        if text_model {
            report["test_perplexity"] = json!(scores.loss.exp());
            if args.verbose > 0 || !args.json {
                println!("test perplexity: {:.3}", scores.loss.exp());
            }
        }
        if args.verbose > 0 || !args.json {
            print!("test loss: {:.4}", scores.loss);
        }
        if let Some(accuracy) = scores.accuracy {
            report["test_accuracy"] = json!(accuracy);
            if args.verbose > 0 || !args.json {
                print!(" - test accuracy: {accuracy:.4}");
            }
        }
        if args.verbose > 0 || !args.json {
            println!();
        }
        if x.rows() <= 16 {
            let predictions = model.predict(x, 32)?;
            if args.verbose > 0 || !args.json {
                println!("predictions: {:?}", predictions.data());
            }
            report["predictions"] = json!(predictions.data());
        }
    }
    if let Some(path) = &args.save {
        model.save(path)?;
        report["saved"] = json!(path.display().to_string());
        if args.verbose > 0 || !args.json {
            println!("saved to {}", path.display());
        }
    }
    if args.json {
        println!("{report}");
    }
    Ok(Interrupted::No)
}

fn import(file: &std::path::Path, output: &std::path::Path) -> Result<()> {
    let model = crate::io::import_keras(file)?;
    model.save(output)?;
    println!(
        "imported {} ({} layers, {} parameters) to {}",
        file.display(),
        model.layers().iter().filter(|l| !l.is_input()).count(),
        model.count_params(),
        output.display()
    );
    Ok(())
}

fn predict(args: &PredictArgs) -> Result<()> {
    let mut model = crate::io::load_model(&args.model)?;
    let input = model.input_shape().map(<[usize]>::to_vec).unwrap_or_default();
    let (height, width, channels) = crate::data::images::image_geometry(&input)?;
    let mut results = Vec::new();
    for path in &args.images {
        let image = crate::data::images::load_image(path, height, width, channels)?;
        let mut shape = vec![1];
        shape.extend(&input);
        let output = model.predict(&image.reshape(&shape)?, 1)?;
        let mut ranked: Vec<(usize, f32)> = output.data().iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(3);
        if !args.json {
            let top: Vec<String> = ranked.iter().map(|(class, p)| format!("{class} ({p:.4})")).collect();
            println!("{}: {}", path.display(), top.join(", "));
        }
        let top: Vec<_> = ranked
            .iter()
            .map(|(class, p)| json!({"class": class, "probability": p}))
            .collect();
        results.push(json!({"image": path.display().to_string(), "top": top}));
    }
    if args.json {
        println!("{}", serde_json::Value::Array(results));
    }
    Ok(())
}

fn evaluate(args: &EvaluateArgs) -> Result<()> {
    let mut model = crate::io::load_model(&args.model)?;
    let data = match &args.data {
        Some(path) if !path.is_dir() => {
            let label = args.label.clone().map_or(LabelColumn::Last, LabelColumn::Name);
            let (x, y) = load_csv(path, label)?;
            Dataset {
                x_train: Tensor::default(),
                y_train: Tensor::default(),
                test: Some((x, y)),
            }
        }
        Some(dir) => mnist_dataset(dir)?,
        None => mnist_dataset(&mnist::default_dir())?,
    };
    let loss = model
        .loss()
        .ok_or_else(|| Error::Usage("the saved model has no compile settings".into()))?;
    let (x, y) = data.test.ok_or_else(|| Error::Usage("no test data".into()))?;
    let x = shape_samples(x, model.input_shape())?;
    let y = encode_targets(y, raw_targets(loss), model.output_shape().map_or(1, numel))?;
    let scores = model.evaluate(&x, &y, 256)?;
    // A confusion matrix only means something for classifiers.
    let classifier = matches!(
        loss,
        Loss::SparseCategoricalCrossentropy { .. }
            | Loss::CategoricalCrossentropy { .. }
            | Loss::BinaryCrossentropy { .. }
    );
    let matrix = if classifier {
        let outputs = model.predict(&x, 256)?;
        let threshold = if loss.from_logits() { 0.0 } else { 0.5 };
        Some(ConfusionMatrix::from_outputs_with_threshold(&outputs, &y, threshold)?)
    } else {
        None
    };
    if let (Some(path), Some(matrix)) = (&args.confusion_matrix, &matrix) {
        crate::plot::plot_confusion_matrix(matrix, path)?;
    }
    if args.json {
        let mut report = json!({
            "model": args.model.display().to_string(),
            "test_loss": scores.loss,
            "test_accuracy": scores.accuracy,
            "samples": x.rows(),
        });
        if let Some(matrix) = &matrix {
            report["confusion_matrix"] = json!(matrix);
        }
        println!("{report}");
    } else {
        print!("test loss: {:.4}", scores.loss);
        if let Some(accuracy) = scores.accuracy {
            print!(" - test accuracy: {accuracy:.4}");
        }
        println!(" ({} samples)", x.rows());
        if let Some(matrix) = &matrix {
            println!("\n{}", matrix.report(4));
        }
    }
    Ok(())
}

/// Loads the data the model file names, or `--data`.
fn load_dataset(args: &TrainArgs, spec: &ModelFile) -> Result<Dataset> {
    if let Some(path) = &args.data {
        if path.is_dir() && path.join("train-images-idx3-ubyte.gz").exists() {
            return mnist_dataset(path);
        }
        if path.is_dir() {
            return image_folder_dataset(path, spec, args.seed);
        }
        return csv_dataset(args, path);
    }
    match spec.data.as_deref() {
        Some("mnist") | None => mnist_dataset(&mnist::default_dir()),
        Some("linreg") => {
            let x = Tensor::from_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 4.0])?;
            Ok(Dataset {
                x_train: x.clone(),
                y_train: x.clone(),
                test: Some((x.clone(), x)),
            })
        }
        Some(path) => {
            let (x_train, y_train) = load_csv(path, args.label.clone().map_or(LabelColumn::Last, LabelColumn::Name))?;
            Ok(Dataset {
                x_train,
                y_train,
                test: None,
            })
        }
    }
}

/// A CSV table to train on (`--label` or the last column), with `--test-data` as its test set.
fn csv_dataset(args: &TrainArgs, path: &std::path::Path) -> Result<Dataset> {
    let label = args.label.clone().map_or(LabelColumn::Last, LabelColumn::Name);
    let (x_train, y_train) = load_csv(path, label.clone())?;
    let test = args.test_data.as_ref().map(|p| load_csv(p, label)).transpose()?;
    Ok(Dataset { x_train, y_train, test })
}

/// Images in one sub-folder per class, resized to the model's input and scaled to [0, 1]. They
/// all train; `--validation-split` holds some out.
fn image_folder_dataset(dir: &std::path::Path, spec: &ModelFile, seed: u64) -> Result<Dataset> {
    let declared = spec
        .model
        .layers()
        .first()
        .and_then(|l| l.declared_input_shape())
        .ok_or_else(|| {
            Error::Usage(format!(
                "model '{}' declares no input shape, so images cannot be sized for it",
                spec.name
            ))
        })?;
    let (height, width, channels) = crate::data::images::image_geometry(declared)?;
    let options = crate::data::images::ImageDatasetOptions {
        image_size: (height, width),
        color_mode: if channels == 1 { "grayscale" } else { "rgb" }.into(),
        seed,
        ..Default::default()
    };
    let (mut x_train, y_train, _) = crate::data::images::image_dataset_from_directory(dir, &options)?;
    x_train.map_in_place(|v| v / 255.0);
    Ok(Dataset {
        x_train,
        y_train,
        test: None,
    })
}

/// MNIST scaled to [0, 1], as the classic programs prepare it.
fn mnist_dataset(dir: &std::path::Path) -> Result<Dataset> {
    let ((mut x_train, y_train), (mut x_test, y_test)) = mnist::load_data_from(dir)?;
    // In place: a scaled copy of the training images would double peak memory (188 MB each).
    x_train.map_in_place(|v| v / 255.0);
    x_test.map_in_place(|v| v / 255.0);
    Ok(Dataset {
        x_train,
        y_train,
        test: Some((x_test, y_test)),
    })
}

/// `x` with each sample reshaped to `shape` when the sizes agree but the shapes differ (MNIST's
/// 28×28 images for a (28, 28, 1) or (784) input); otherwise unchanged.
fn shape_samples(x: Tensor, shape: Option<&[usize]>) -> Result<Tensor> {
    match shape {
        Some(shape) if numel(shape) == x.row_len() && x.shape()[1..] != *shape => {
            let mut full = vec![x.rows()];
            full.extend(shape);
            x.reshape(&full)
        }
        _ => Ok(x),
    }
}

/// Labels one-hot encoded for `classes` outputs, unless the loss takes them as they are.
fn encode_targets(y: Tensor, raw_targets: bool, classes: usize) -> Result<Tensor> {
    if raw_targets || y.row_len() == classes || classes == 1 {
        Ok(y)
    } else {
        to_categorical(&y, classes)
    }
}

/// Reshapes samples to the model's declared input shape (e.g. 28×28 images for a 784-wide
/// input) and one-hot encodes labels when the loss wants arrays.
fn fit_data_to_model(model: &mut Model, data: Dataset, raw_targets: bool) -> Result<Dataset> {
    let declared = model
        .layers()
        .first()
        .and_then(|l| l.declared_input_shape())
        .map(<[usize]>::to_vec);
    let reshape = |x: Tensor| shape_samples(x, declared.as_deref());
    let x_train = reshape(data.x_train)?;
    model.build(&x_train.shape()[1..])?;
    let classes = model.output_shape().map_or(1, numel);
    let encode = |y: Tensor| encode_targets(y, raw_targets, classes);
    let test = match data.test {
        Some((x, y)) => Some((reshape(x)?, encode(y)?)),
        None => None,
    };
    Ok(Dataset {
        x_train,
        y_train: encode(data.y_train)?,
        test,
    })
}
