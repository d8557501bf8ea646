//! Batch-32 and batch-1 inference of the README's MLP and the Keras MNIST CNN, f32 against
//! int8 (`model.quantize("int8")`: per row, per tensor, and calibrated on the timed batch), in
//! one run: the figures of docs/PERFORMANCE.md. With `STRATA_PROFILE` set, the time per
//! operation follows.
//!
//! ```text
//! cargo run --release --example int8_speed [ROUNDS] [SAVE_DIR]
//! ```
//!
//! With `SAVE_DIR`, the two f32 models are also saved there (`mlp.safetensors`,
//! `cnn.safetensors`) for the ONNX Runtime comparison (`tools/int8_onnx_bench.py`).

use std::time::Instant;
use strata::model::{ActivationScale, QuantizeOptions};
use strata::prelude::*;

fn mlp() -> Model {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[784]))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model
}

fn cnn() -> Model {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(32, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(64, 3).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model
}

/// Median milliseconds of one `predict` of `x` over `rounds` rounds (after two warm-ups).
fn time(model: &mut Model, x: &Tensor, rounds: usize) -> f64 {
    let batch = x.rows();
    for _ in 0..2 {
        model.predict(x, batch).unwrap();
    }
    let mut times: Vec<f64> = (0..rounds)
        .map(|_| {
            let start = Instant::now();
            model.predict(x, batch).unwrap();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[rounds / 2]
}

fn main() -> strata::Result<()> {
    let rounds: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(50);
    let save_dir = std::env::args().nth(2);
    // As the `strata` command does: this thread is the pool's worker 0, so a product's
    // parallel parts start without a hand-off to another thread.
    strata::kernels::join_pool(None);
    println!("threads: {}", strata::kernels::threads());
    for (name, make, shape) in [
        ("mlp", mlp as fn() -> Model, vec![784]),
        ("cnn", cnn as fn() -> Model, vec![28, 28, 1]),
    ] {
        // `INT8_SPEED_ONLY=mlp` times one model (for a profiler).
        if std::env::var("INT8_SPEED_ONLY").is_ok_and(|only| only != name) {
            continue;
        }
        let mut model = make();
        model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
        if let Some(dir) = &save_dir {
            model.save(format!("{dir}/{name}.safetensors"))?;
        }
        let mut per_row = make();
        per_row.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
        let mut per_tensor = make();
        per_tensor.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
        let mut calibrated = make();
        calibrated.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
        for copy in [&mut per_row, &mut per_tensor, &mut calibrated] {
            for id in model.params().ids() {
                *copy.params_mut().value_mut(id) = model.params().value(id).clone();
            }
        }
        per_row.quantize("int8")?;
        per_tensor.quantize_with("int8", ActivationScale::PerTensor)?;
        let input = |batch: usize| {
            let mut dims = vec![batch];
            dims.extend(&shape);
            let len: usize = dims.iter().product();
            Tensor::from_vec(dims, (0..len).map(|i| (i * 7919 % 256) as f32 / 255.0).collect())
        };
        let sample = input(32)?;
        let options = QuantizeOptions {
            calibration: Some(&sample),
            ..Default::default()
        };
        calibrated.quantize_with_options("int8", options)?;
        for batch in [32, 1] {
            let x = input(batch)?;
            let f32_ms = time(&mut model, &x, rounds);
            let row_ms = time(&mut per_row, &x, rounds);
            let tensor_ms = time(&mut per_tensor, &x, rounds);
            let calibrated_ms = time(&mut calibrated, &x, rounds);
            println!(
                "{name} batch {batch:>2}: f32 {f32_ms:.3} ms, int8 per row {row_ms:.3} ms ({:.2}×), int8 per tensor \
                 {tensor_ms:.3} ms ({:.2}×), int8 calibrated {calibrated_ms:.3} ms ({:.2}×)",
                f32_ms / row_ms,
                f32_ms / tensor_ms,
                f32_ms / calibrated_ms
            );
        }
    }
    strata::autograd::profile::report();
    Ok(())
}
