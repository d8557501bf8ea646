//! `strata bench`: training step time, single-sample prediction latency and peak memory of a
//! model on random data of its input shape.

use clap::Args;
use serde_json::json;
use std::time::Instant;
use strata::applications::load_description;
use strata::data::to_categorical;
use strata::io::config::ModelFile;
use strata::model::FitOptions;
use strata::tensor::{Tensor, numel};
use strata::{Error, Result};

#[derive(Args)]
pub(crate) struct BenchArgs {
    /// A named model, a model file, or `all`.
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
pub(crate) const CLASSIC_MODELS: [&str; 3] = ["mlp", "mlp2", "cnn"];

pub(crate) fn run(args: &BenchArgs) -> Result<()> {
    crate::set_threads(args.threads)?;
    if args.batch_size == Some(0) {
        return Err(Error::invalid("--batch-size", 0, "must be at least 1"));
    }
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
    } = load_description(spec)?;
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
    let samples = batch_size.checked_mul(batches + 2);
    let values = samples.and_then(|n| n.checked_mul(numel(&input)));
    let what = || format!("the random data to time model '{name}' ({batches} + 2 batches of {batch_size})");
    strata::limits::check_memory(what, values.and_then(strata::limits::f32_bytes))?;
    let (samples, values) = (samples.unwrap_or_default(), values.unwrap_or_default());
    let mut rng = strata::rng::Rng::new(0);
    let mut shape = vec![samples];
    shape.extend(&input);
    let x = match token_vocabulary(&model) {
        Some(vocabulary) => (0..values).map(|_| rng.below(vocabulary) as f32).collect(),
        None => (0..values).map(|_| rng.uniform(0.0, 1.0)).collect(),
    };
    let x = Tensor::from_vec(shape, x)?;
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
    let threads = strata::kernels::threads();

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

/// The vocabulary size when the model's first layer is an `Embedding`, whose inputs are token
/// ids (drawn below it); `None` for other models (inputs drawn in [0, 1)).
fn token_vocabulary(model: &strata::model::Model) -> Option<usize> {
    let first = model.layers().iter().find(|layer| !layer.is_input())?;
    if first.class_name() != "Embedding" {
        return None;
    }
    first.config().get("input_dim")?.as_u64()?.try_into().ok()
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
