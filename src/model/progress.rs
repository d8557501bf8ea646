//! Keras-like progress output for `fit`: a bar per epoch (verbose 1), a line per epoch
//! (verbose 2), or nothing (verbose 0).

use super::EpochLogs;
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use std::time::{Duration, Instant};

/// Redraw the running metrics at most this often, so formatting stays off the hot path.
const REFRESH: Duration = Duration::from_millis(100);

/// Progress of one epoch.
pub(crate) struct EpochProgress {
    bar: Option<ProgressBar>,
    verbose: u8,
    steps: usize,
    started: Instant,
    last_refresh: Instant,
}

impl EpochProgress {
    /// Starts an epoch of `steps` batches; prints Keras's `Epoch 1/10` header.
    pub(crate) fn start(verbose: u8, epoch: usize, epochs: usize, steps: usize) -> Self {
        if verbose > 0 {
            println!("Epoch {epoch}/{epochs}");
        }
        let bar = (verbose == 1).then(|| {
            let width = steps.to_string().len();
            let style = ProgressStyle::with_template(&format!("{{pos:>{width}}}/{{len}} {{bar:20.green/dim}} {{msg}}"))
                .expect("the template is valid")
                .progress_chars("━━━");
            ProgressBar::with_draw_target(Some(steps as u64), ProgressDrawTarget::stdout()).with_style(style)
        });
        let now = Instant::now();
        EpochProgress {
            bar,
            verbose,
            steps,
            started: now,
            last_refresh: now,
        }
    }

    /// Records that `done` batches have run, with the running mean loss and accuracy.
    pub(crate) fn step(&mut self, done: usize, loss: f32, accuracy: Option<f32>) {
        let Some(bar) = &self.bar else { return };
        let now = Instant::now();
        if done < self.steps && now.duration_since(self.last_refresh) < REFRESH {
            return;
        }
        self.last_refresh = now;
        let elapsed = now.duration_since(self.started).as_secs_f64();
        let eta = elapsed / done.max(1) as f64 * (self.steps - done) as f64;
        bar.set_position(done as u64);
        bar.set_message(format!(
            "ETA: {}{}",
            format_seconds(eta),
            metrics_text(loss, accuracy, None, None)
        ));
    }

    /// Ends the epoch: the bar's final state (or Keras's verbose-2 line) with all metrics.
    pub(crate) fn finish(self, logs: &EpochLogs) {
        if self.verbose == 0 {
            return;
        }
        let elapsed = self.started.elapsed().as_secs_f64();
        let per_step = format_per_step(elapsed / self.steps.max(1) as f64);
        let mut metrics = metrics_text(logs.loss, logs.accuracy, logs.val_loss, logs.val_accuracy);
        for (key, value) in &logs.outputs {
            metrics.push_str(&format!(" - {key}: {value:.4}"));
        }
        match (&self.bar, self.verbose) {
            (Some(bar), _) if !bar.is_hidden() => {
                bar.set_position(self.steps as u64);
                bar.finish_with_message(format!("{} {per_step}{metrics}", format_seconds(elapsed)));
                // indicatif leaves the cursor at the end of the finished bar.
                println!();
            }
            _ => println!(
                "{}/{} - {} - {per_step}{metrics}",
                self.steps,
                self.steps,
                format_seconds(elapsed)
            ),
        }
    }
}

/// ` - accuracy: 0.9312 - loss: 0.2345 - val_accuracy: ... - val_loss: ...` (Keras 3's order).
fn metrics_text(loss: f32, accuracy: Option<f32>, val_loss: Option<f32>, val_accuracy: Option<f32>) -> String {
    let mut text = String::new();
    if let Some(a) = accuracy {
        text.push_str(&format!(" - accuracy: {a:.4}"));
    }
    text.push_str(&format!(" - loss: {loss:.4}"));
    if let Some(a) = val_accuracy {
        text.push_str(&format!(" - val_accuracy: {a:.4}"));
    }
    if let Some(l) = val_loss {
        text.push_str(&format!(" - val_loss: {l:.4}"));
    }
    text
}

fn format_seconds(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("{:.0}ms", seconds * 1e3)
    } else {
        format!("{seconds:.0}s")
    }
}

fn format_per_step(seconds: f64) -> String {
    if seconds >= 1.0 {
        format!("{seconds:.0}s/step")
    } else if seconds >= 1e-3 {
        format!("{:.0}ms/step", seconds * 1e3)
    } else {
        format!("{:.0}us/step", seconds * 1e6)
    }
}
