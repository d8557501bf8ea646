//! Inference speed of ONNX image classifiers imported into strata: batch-1 latency (p50, p99)
//! and batch-32 throughput, one JSON line per model. The strata half of
//! `bench/onnx_inference.sh`, which times ONNX Runtime and PyTorch on the same files in the
//! same run.
//!
//! ```sh
//! cargo run --release --example onnx_speed -- THREADS RUNS MODEL.onnx [MODEL.onnx ...]
//! ```
//! Each file takes `(N, 3, H, W)` images (strata: `(N, H, W, 3)`); RUNS batch-1 calls are
//! timed after 3 to warm up, then a tenth as many batch-32 calls (at least 3).

use std::path::Path;
use std::time::Instant;
use strata::prelude::*;

/// The `q` quantile (0–1) of sorted `seconds`, nearest rank.
fn quantile(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// `n` images of the model's input shape with values in [-1, 1).
fn images(n: usize, shape: &[usize]) -> strata::Result<Tensor> {
    let per_image: usize = shape.iter().product();
    let values = (0..n * per_image).map(|i| (i % 251) as f32 / 125.5 - 1.0).collect();
    Tensor::from_vec([&[n][..], shape].concat(), values)
}

fn main() -> strata::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let threads: usize = args.first().and_then(|a| a.parse().ok()).unwrap_or(2);
    let runs: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(30).max(1);
    strata::kernels::join_pool(Some(threads));
    for path in args.get(2..).unwrap_or_default() {
        let mut model = strata::io::load_onnx(path)?;
        let name = Path::new(path)
            .file_stem()
            .map_or_else(|| path.clone(), |s| s.to_string_lossy().into_owned());
        let shape = model.input_shape().map(<[usize]>::to_vec).unwrap_or_default();
        let single = images(1, &shape)?;
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
        let batch = images(32, &shape)?;
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
