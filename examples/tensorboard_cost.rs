//! What TensorBoard logging costs an mlp epoch on MNIST (docs/PERFORMANCE.md):
//! `cargo run --release --example tensorboard_cost [ROUNDS]`. Each round trains one epoch with
//! Keras's defaults (epoch scalars only), one with `strata train --tensorboard`'s settings
//! (update_freq "epoch", histograms and images every epoch) and one with update_freq "batch".
//! The time spent in the callback's hooks is clocked directly (a whole-epoch difference would
//! drown in a shared machine's noise) and set against the median epoch.

use std::time::{Duration, Instant};
use strata::callbacks::{TensorBoard, UpdateFreq};
use strata::model::{Callback, Control, EpochLogs, History, Model};
use strata::run::{RunOptions, prepare_new};

/// A callback with a clock on every hook.
struct Timed(TensorBoard, Duration);

impl Timed {
    fn time<T>(&mut self, hook: impl FnOnce(&mut TensorBoard) -> T) -> T {
        let started = Instant::now();
        let result = hook(&mut self.0);
        self.1 += started.elapsed();
        result
    }
}

impl Callback for Timed {
    fn on_train_begin(&mut self, model: &mut Model) -> strata::Result<()> {
        self.time(|c| c.on_train_begin(model))
    }
    fn on_train_end(&mut self, model: &mut Model, history: &History) -> strata::Result<()> {
        self.time(|c| c.on_train_end(model, history))
    }
    fn on_epoch_begin(&mut self, model: &mut Model, epoch: usize) -> strata::Result<()> {
        self.time(|c| c.on_epoch_begin(model, epoch))
    }
    fn on_epoch_end(&mut self, model: &mut Model, logs: &EpochLogs) -> strata::Result<Control> {
        self.time(|c| c.on_epoch_end(model, logs))
    }
    fn on_batch_begin(&mut self, model: &mut Model, epoch: usize, batch: usize) -> strata::Result<()> {
        self.time(|c| c.on_batch_begin(model, epoch, batch))
    }
    fn on_batch_end(&mut self, model: &mut Model, epoch: usize, batch: usize, loss: f32) -> strata::Result<Control> {
        self.time(|c| c.on_batch_end(model, epoch, batch, loss))
    }
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

fn main() -> strata::Result<()> {
    let rounds: usize = std::env::args().nth(1).and_then(|r| r.parse().ok()).unwrap_or(5);
    let mut run = prepare_new(&RunOptions {
        model: "mlp".into(),
        ..RunOptions::default()
    })?;
    let log_dir = std::env::temp_dir().join(format!("strata-tensorboard-cost-{}", std::process::id()));
    let names = ["scalars", "epoch", "batch"];
    let (mut epochs, mut logging) = (Vec::new(), vec![Vec::new(); names.len()]);
    for round in 0..rounds {
        for (which, name) in names.iter().enumerate() {
            let callback = TensorBoard::new(log_dir.join(format!("{name}-{round}")));
            let callback = match *name {
                "scalars" => callback,
                "epoch" => callback
                    .histogram_freq(1)
                    .write_images(true)
                    .write_steps_per_second(true),
                _ => callback
                    .update_freq(UpdateFreq::Batches(1))
                    .write_steps_per_second(true),
            };
            let mut timed = Timed(callback, Duration::ZERO);
            let options = run.plan.options(&run.data).epochs(1).verbose(0);
            let history =
                run.model
                    .fit_with_callbacks(&run.data.x_train, &run.data.y_train, options, &mut [&mut timed])?;
            epochs.push(history.epochs[0].seconds);
            logging[which].push(timed.1.as_secs_f64());
        }
    }
    let _ = std::fs::remove_dir_all(&log_dir);
    let epoch = median(epochs);
    println!("mlp epoch (median of {}): {:.1} ms", rounds * names.len(), 1e3 * epoch);
    for (name, seconds) in names.iter().zip(logging) {
        let cost = median(seconds);
        println!(
            "{name:>7}: {:.3} ms per epoch in the callback, {:.3} % of the epoch",
            1e3 * cost,
            100.0 * cost / epoch
        );
    }
    Ok(())
}
