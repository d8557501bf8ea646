//! `predict` latency of strata's named models, as a library user's program sees it: one sample
//! per call (a service answering single requests) and 32 per call, p50 and p99 over many calls,
//! from the program's main thread. `bench/inference.sh` runs it beside TF-Keras, Keras on JAX,
//! PyTorch and ONNX Runtime.
//!
//! Run with `cargo run --release --example predict_latency -- [--calls N] [--batch N] [--save DIR] [mlp cnn ...]`.
//! One JSON object per model and batch size is printed per line; `--save DIR` also writes each
//! model (random weights, as measured) to `DIR/NAME.safetensors`, for `strata export` to turn
//! into the ONNX file ONNX Runtime is timed on.

use std::path::PathBuf;
use std::time::Instant;
use strata::io::config::load_model_spec;
use strata::rng::Rng;
use strata::tensor::{Tensor, numel};

/// Batch sizes timed by default: one sample, and Keras's default batch.
const BATCHES: [usize; 2] = [1, 32];
/// Untimed calls before the timed ones: buffers sized, caches and the pool warm.
const WARM_UP: usize = 20;

fn main() -> strata::Result<()> {
    let mut calls = 500;
    let mut save: Option<PathBuf> = None;
    let mut batches = BATCHES.to_vec();
    let mut models = Vec::new();
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--calls" => calls = args.next().and_then(|n| n.parse().ok()).unwrap_or(calls),
            "--save" => save = args.next().map(PathBuf::from),
            // One batch size only (for a profile of it).
            "--batch" => batches = args.next().and_then(|n| n.parse().ok()).into_iter().collect(),
            _ => models.push(arg),
        }
    }
    if models.is_empty() {
        models = vec!["mlp".into(), "cnn".into()];
    }
    for name in &models {
        let spec = load_model_spec(name)?;
        let mut model = spec.model;
        let input = model.layers()[0]
            .declared_input_shape()
            .map(<[usize]>::to_vec)
            .unwrap_or_default();
        model.build(&input)?;
        if let Some(dir) = &save {
            model.save(dir.join(format!("{name}.safetensors")))?;
        }
        let mut rng = Rng::new(0);
        for &batch in &batches {
            let mut shape = vec![batch];
            shape.extend(&input);
            let values = (0..batch * numel(&input)).map(|_| rng.uniform(0.0, 1.0)).collect();
            let x = Tensor::from_vec(shape, values)?;
            for _ in 0..WARM_UP {
                model.predict(&x, batch)?;
            }
            let mut milliseconds: Vec<f64> = (0..calls.max(1))
                .map(|_| {
                    let started = Instant::now();
                    model.predict(&x, batch).map(|_| 1e3 * started.elapsed().as_secs_f64())
                })
                .collect::<strata::Result<_>>()?;
            milliseconds.sort_by(f64::total_cmp);
            let percentile =
                |p: f64| milliseconds[((p / 100.0 * milliseconds.len() as f64).ceil() as usize).max(1) - 1];
            println!(
                "{{\"framework\": \"strata\", \"model\": \"{name}\", \"batch\": {batch}, \"calls\": {}, \
                 \"p50_ms\": {:.4}, \"p99_ms\": {:.4}, \"threads\": {}}}",
                milliseconds.len(),
                percentile(50.0),
                percentile(99.0),
                strata::kernels::threads()
            );
        }
    }
    Ok(())
}
