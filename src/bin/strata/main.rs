//! The `strata` command line: train, evaluate and inspect models without writing Rust. An
//! application of the library's public API, one module per command; `strata` alone trains the
//! default model (`mlp`) on the bundled MNIST, as `strata train` does.

mod bench;
mod evaluate;
mod export;
mod generate;
mod import;
mod predict;
mod quantize;
mod summary;
mod train;

use clap::{CommandFactory, FromArgMatches, Parser, Subcommand};
use strata::{Error, Result};

#[derive(Parser)]
#[command(
    name = "strata",
    version,
    about = "Train, evaluate and inspect Keras-style models from the command line."
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// The most memory a model's weights and activations may need (bytes, or with a K, M, G or
    /// T suffix): a larger model is refused before anything is allocated [env:
    /// STRATA_MAX_MEMORY; default: 16G].
    #[arg(long, global = true, value_name = "SIZE")]
    max_memory: Option<String>,
    /// Mixed precision, as Keras's `mixed_precision.set_global_policy`: `bf16` (Keras's
    /// `mixed_bfloat16`: Dense and Conv products in bfloat16, weights, optimizer and loss in
    /// f32) or `off` (`float32`, the default). Applies to the models this command builds or
    /// loads.
    #[arg(long, global = true, value_name = "POLICY")]
    mixed_precision: Option<String>,
}

// Parsed once at start-up, so the size difference between variants costs nothing.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Train a model (default: the MNIST MLP) and report its test accuracy.
    Train(train::TrainArgs),
    /// Print a model's layers, output shapes and parameter counts, as Keras's model.summary().
    Summary(summary::SummaryArgs),
    /// Evaluate a saved model on test data: loss and accuracy.
    Evaluate(evaluate::EvaluateArgs),
    /// Classify PNG/JPEG images with a saved model: the most probable classes (3, or --top K),
    /// by name when the model or --labels names them.
    Predict(predict::PredictArgs),
    /// Time training steps of a model on random data of its input shape.
    Bench(bench::BenchArgs),
    /// Continue a prompt with a text model (trained with `strata train --model char_rnn --save FILE`).
    Generate(generate::GenerateArgs),
    /// Convert a Keras model (a `.keras` archive or a legacy `.h5` file; Sequential or
    /// functional) to a strata model file.
    Import(import::ImportArgs),
    /// Quantize a saved model's Dense, Conv1D/Conv2D/DepthwiseConv2D and Embedding kernels to
    /// int8, as Keras's model.quantize("int8"), and save it (about four times smaller);
    /// --calibrate N fixes the activation scales from N training samples.
    Quantize(quantize::QuantizeArgs),
    /// Write a saved model as an ONNX file (opset 17, channels-last input, dynamic batch) for
    /// ONNX Runtime and other ONNX runtimes, or as a Keras file (.keras, or a legacy .h5) for
    /// keras.models.load_model.
    Export(export::ExportArgs),
}

/// How a command ended: normally, or stopped by Ctrl-C (exit status 130).
enum Ending {
    Done,
    Interrupted,
}

fn main() {
    let cli = parse_with_registry_help();
    let setup =
        set_max_memory(cli.max_memory.as_deref()).and_then(|()| set_mixed_precision(cli.mixed_precision.as_deref()));
    if let Err(error) = setup {
        eprintln!("error: {error}");
        std::process::exit(1);
    }
    let result = match cli.command {
        None => train::run(train::TrainArgs::default_run()),
        Some(Command::Train(args)) => train::run(args),
        Some(Command::Summary(args)) => summary::run(&args).map(|()| Ending::Done),
        Some(Command::Bench(args)) => bench::run(&args).map(|()| Ending::Done),
        Some(Command::Evaluate(args)) => evaluate::run(&args).map(|()| Ending::Done),
        Some(Command::Predict(args)) => predict::run(&args).map(|()| Ending::Done),
        Some(Command::Import(args)) => import::run(&args).map(|()| Ending::Done),
        Some(Command::Export(args)) => export::run(&args).map(|()| Ending::Done),
        Some(Command::Quantize(args)) => quantize::run(&args).map(|()| Ending::Done),
        Some(Command::Generate(args)) => generate::run(&args).map(|()| Ending::Done),
    };
    std::process::exit(match result {
        Ok(Ending::Done) => 0,
        Ok(Ending::Interrupted) => 130,
        Err(error) => {
            eprintln!("error: {error}");
            1
        }
    });
}

/// Parses the arguments with help texts that list the named models and the layers strata
/// reads, taken from the library's registries so they cannot drift.
fn parse_with_registry_help() -> Cli {
    let names: Vec<&str> = strata::io::config::NAMED_MODELS.iter().map(|(name, _)| *name).collect();
    let model_help = format!(
        "A named model ({}) or a model file (.toml or .json, Keras's layer vocabulary)",
        names.join(", ")
    );
    let layers_help = format!(
        "Training, evaluation and inspection of Keras-style models. Model files may use these layers: {}.",
        strata::layers::LAYER_NAMES.join(", ")
    );
    let schedules_help = format!(
        "A learning-rate schedule starting from the optimizer's rate, as NAME:KEY=VALUE,... with NAME one of {}: \
         \"exponential:decay_steps=1000,decay_rate=0.9\", \"cosine:decay_steps=9000,warmup_steps=500\", \
         \"step:boundaries=2000;4000,values=0.01;0.005;0.001\" (quote it in a shell)",
        strata::optimizers::SCHEDULE_SPEC_NAMES.join(", ")
    );
    let command = Cli::command()
        .after_long_help(layers_help)
        .mut_subcommand("train", |c| {
            c.mut_arg("model", |a| a.help(model_help.clone()))
                .mut_arg("lr_schedule", |a| a.help(schedules_help))
        })
        .mut_subcommand("summary", |c| {
            c.mut_arg("model", |a| {
                a.help(format!("{model_help}, or a saved model (.safetensors, .keras)"))
            })
        })
        .mut_subcommand("bench", |c| {
            c.mut_arg("model", |a| {
                a.help(format!(
                    "{model_help}, or `all` for {} one after the other",
                    bench::CLASSIC_MODELS.join(", ")
                ))
            })
        });
    let matches = command.get_matches();
    Cli::from_arg_matches(&matches).unwrap_or_else(|error| error.exit())
}

/// A model saved by `strata train --save`, or an error that says how to get one when `path` is
/// not a file but the name of a named model (`strata evaluate --model cnn`).
pub(crate) fn load_saved_model(path: &std::path::Path) -> Result<strata::model::Model> {
    let name = path.to_string_lossy();
    let is_named = strata::io::config::NAMED_MODELS.iter().any(|(named, _)| *named == name);
    if is_named && !path.exists() {
        return Err(Error::Usage(format!(
            "'{name}' is a named model, not a saved one: this command needs a trained model file; \
             train one first with `strata train --model {name} --save {name}.safetensors`, then pass \
             --model {name}.safetensors"
        )));
    }
    strata::load_model(path)
}

/// `path` with its (existing) folder resolved, so two spellings of one file compare equal.
pub(crate) fn same_file_as(path: &std::path::Path) -> std::path::PathBuf {
    let folder = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => std::path::Path::new("."),
    };
    let folder = folder.canonicalize().unwrap_or_else(|_| folder.to_path_buf());
    folder.join(path.file_name().unwrap_or_default())
}

/// Checks before any work that `output` (given by `flag`) can be written and is not the file
/// the command reads (`input`): writing over it would lose the model it came from.
pub(crate) fn check_output(flag: &str, output: &std::path::Path, input: &std::path::Path) -> Result<()> {
    check_writable_flag(flag, output)?;
    if same_file_as(output) == same_file_as(input) {
        return Err(Error::invalid(
            flag,
            output.display(),
            format!("is the file this command reads ({}): name another", input.display()),
        ));
    }
    Ok(())
}

/// [`strata::fs::check_writable`] for the file a flag names: the error names the flag.
pub(crate) fn check_writable_flag(flag: &str, path: &std::path::Path) -> Result<()> {
    strata::fs::check_writable(path).map_err(|error| {
        let reason = match error {
            Error::File { reason, .. } => reason,
            other => other.to_string(),
        };
        Error::invalid(flag, path.display(), reason)
    })
}

/// Sets up the thread pool: `threads` workers (`None`: one per core), this thread as worker 0.
/// More workers than CPUs only wait for each other, so a larger count is capped, with a
/// warning.
fn set_threads(threads: Option<usize>) -> Result<()> {
    if threads == Some(0) {
        return Err(Error::invalid("--threads", 0, "must be at least 1"));
    }
    let cpus = std::thread::available_parallelism().map_or(1, |n| n.get());
    let threads = threads.map(|asked| {
        if asked > cpus {
            eprintln!("warning: --threads {asked} is more than the {cpus} CPUs here; using {cpus}");
        }
        asked.min(cpus)
    });
    // The training loop then runs on a worker, so each parallel region is a cheap `join` whose
    // first half stays on this thread.
    strata::kernels::join_pool(threads);
    Ok(())
}

/// Applies `--mixed-precision`: `bf16` or `off`, or a Keras policy name (`mixed_bfloat16`,
/// `float32`).
fn set_mixed_precision(policy: Option<&str>) -> Result<()> {
    let Some(text) = policy else { return Ok(()) };
    let name = match text.trim() {
        "bf16" | "bfloat16" => "mixed_bfloat16",
        "off" | "f32" | "fp32" => "float32",
        other => other,
    };
    strata::mixed_precision::set_global_policy(name).map_err(|_| {
        Error::invalid(
            "--mixed-precision",
            text,
            "must be bf16 (Keras's mixed_bfloat16) or off (float32)",
        )
    })
}

/// Applies `--max-memory` (none: `STRATA_MAX_MEMORY` or the default apply).
fn set_max_memory(size: Option<&str>) -> Result<()> {
    if let Some(text) = size {
        let bytes = strata::limits::parse_size(text).map_err(|error| match error {
            Error::InvalidArgument { reason, .. } => Error::invalid("--max-memory", text, reason),
            other => other,
        })?;
        strata::limits::set_memory_budget(bytes);
    }
    Ok(())
}
