//! Inference speed of Keras Applications built by strata (random weights): batch-1 latency
//! (p50, p99) and batch-32 throughput, printed as one JSON line per model. The strata half of
//! `bench/applications.sh`, which runs TF-Keras on the same models in the same run.
//!
//! ```sh
//! cargo run --release --example applications_speed -- [THREADS] [RUNS] [MODEL ...]
//! ```
//! Defaults: 2 threads, 30 batch-1 runs (and a tenth as many batch-32 runs, at least 3),
//! `mobilenet_v2 resnet50` at 224×224.

use std::time::Instant;
use strata::applications::{self, Options};
use strata::prelude::*;

/// The `q` quantile (0–1) of sorted `seconds`, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

fn main() -> strata::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30).max(1);
    let names: Vec<&str> = match args.get(2..) {
        Some(rest) if !rest.is_empty() => rest.iter().map(String::as_str).collect(),
        _ => vec!["mobilenet_v2", "resnet50"],
    };
    strata::kernels::join_pool(Some(threads));
    for name in names {
        let mut model = applications::application(name, &Options::default())?;
        let single = Tensor::from_vec(
            vec![1, 224, 224, 3],
            (0..224 * 224 * 3).map(|i| (i % 255) as f32 / 127.5 - 1.0).collect(),
        )?;
        for _ in 0..3 {
            model.predict(&single, 1)?;
        }
        let mut seconds: Vec<f64> = (0..runs)
            .map(|_| {
                let start = Instant::now();
                model.predict(&single, 1).map(|_| start.elapsed().as_secs_f64())
            })
            .collect::<strata::Result<_>>()?;
        seconds.sort_by(f64::total_cmp);
        let batch = Tensor::from_vec(
            vec![32, 224, 224, 3],
            (0..32 * 224 * 224 * 3)
                .map(|i| (i % 251) as f32 / 125.5 - 1.0)
                .collect(),
        )?;
        model.predict(&batch, 32)?;
        let batch_runs = (runs / 10).max(3);
        let start = Instant::now();
        for _ in 0..batch_runs {
            model.predict(&batch, 32)?;
        }
        let throughput = (32 * batch_runs) as f64 / start.elapsed().as_secs_f64();
        println!(
            "{}",
            serde_json::json!({
                "framework": "strata", "model": name, "threads": threads,
                "batch1_p50_ms": 1e3 * quantile(&seconds, 0.5),
                "batch1_p99_ms": 1e3 * quantile(&seconds, 0.99),
                "batch32_images_per_s": throughput,
            })
        );
    }
    // The time per operation kind, when STRATA_PROFILE is set.
    strata::autograd::profile::report();
    Ok(())
}
