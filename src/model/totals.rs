//! The sums a training or evaluation pass keeps: one batch's [`StepStats`], the running
//! [`Totals`] of an epoch, and the [`Scores`] they give. Both strategies (single process,
//! data-parallel) fill and reduce them, so they live below both.

use crate::metrics::{Accuracy, Metric};

/// The result of `evaluate`: mean loss and, if compiled with them, accuracy and other metrics.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Mean loss over the samples: with several outputs, `Σ loss_weight × output loss`, plus
    /// any regularization penalties (as Keras reports it).
    pub loss: f32,
    /// Accuracy (of the first output), when compiled with `"accuracy"`.
    pub accuracy: Option<f32>,
    /// The first output's other metrics by Keras's keys (`("mae", 0.31)`), in compile order.
    pub metrics: Vec<(String, f32)>,
    /// Each output's loss and metrics, in the model's output order.
    pub outputs: Vec<OutputScores>,
}

/// One output's share of [`Scores`].
#[derive(Clone, Debug, PartialEq)]
pub struct OutputScores {
    /// The output layer's name (Keras's key prefix: `dense_2_loss`).
    pub name: String,
    /// Mean loss of this output (before its loss weight).
    pub loss: f32,
    /// Accuracy of this output, when compiled with `"accuracy"` for it.
    pub accuracy: Option<f32>,
    /// This output's other metrics by Keras's keys, in compile order.
    pub metrics: Vec<(String, f32)>,
}

/// One output's loss, correct predictions and metric sums in one batch.
#[derive(Clone, Default)]
pub(super) struct StepStats {
    pub(super) loss: f32,
    pub(super) correct: usize,
    pub(super) predictions: usize,
    /// The sums of the output's [`Metric`]s, one after the other (kept between steps, so a
    /// step does not allocate).
    pub(super) metric_sums: Vec<f64>,
}

impl StepStats {
    /// Stats for a model whose outputs keep `metric_sums` metric sums each.
    pub(super) fn for_outputs(metric_sums: &[usize]) -> Vec<StepStats> {
        let output = |&sums: &usize| StepStats {
            metric_sums: vec![0.0; sums],
            ..StepStats::default()
        };
        metric_sums.iter().map(output).collect()
    }
}

/// One output's running sums.
#[derive(Clone, Default)]
pub(super) struct OutputTotals {
    pub(super) loss: f64,
    pub(super) correct: usize,
    pub(super) predictions: usize,
    pub(super) metric_sums: Vec<f64>,
}

/// Running sums of loss, correct predictions and metric sums over batches, overall and per
/// output.
#[derive(Default)]
pub(super) struct Totals {
    pub(super) loss: f64,
    pub(super) samples: usize,
    pub(super) outputs: Vec<OutputTotals>,
}

impl Totals {
    /// Empty sums for a model whose outputs keep `metric_sums[output]` metric sums each.
    pub(super) fn new(metric_sums: &[usize]) -> Self {
        let output = |&sums: &usize| OutputTotals {
            metric_sums: vec![0.0; sums],
            ..OutputTotals::default()
        };
        Totals {
            outputs: metric_sums.iter().map(output).collect(),
            ..Totals::default()
        }
    }

    /// Adds one batch of `rows` samples with mean loss `loss` and per-output `stats`.
    pub(super) fn add(&mut self, loss: f32, rows: usize, stats: &[StepStats]) {
        self.loss += loss as f64 * rows as f64;
        self.samples += rows;
        for (total, step) in self.outputs.iter_mut().zip(stats) {
            total.loss += step.loss as f64 * rows as f64;
            total.correct += step.correct;
            total.predictions += step.predictions;
            for (sum, step_sum) in total.metric_sums.iter_mut().zip(&step.metric_sums) {
                *sum += step_sum;
            }
        }
    }

    /// Mean loss per sample so far.
    pub(super) fn mean_loss(&self) -> f32 {
        (self.loss / self.samples.max(1) as f64) as f32
    }

    fn output_loss(&self, output: usize) -> f32 {
        (self.outputs[output].loss / self.samples.max(1) as f64) as f32
    }

    /// Accuracy of output `output` so far, if it is `tracked`.
    pub(super) fn accuracy(&self, output: usize, tracked: bool) -> Option<f32> {
        let totals = self.outputs.get(output)?;
        tracked.then(|| totals.correct as f32 / totals.predictions.max(1) as f32)
    }

    /// The values of output `output`'s `metrics` (with their keys) from its sums.
    fn metric_values(&self, output: usize, metrics: &[(Metric, &str)]) -> Vec<(String, f32)> {
        let mut sums = self.outputs[output].metric_sums.as_slice();
        let mut values = Vec::with_capacity(metrics.len());
        for (metric, key) in metrics {
            let (own, rest) = sums.split_at(metric.state_len());
            values.push((key.to_string(), metric.result(own)));
            sums = rest;
        }
        values
    }

    /// The scores of outputs `names`, with accuracies where `accuracies` has one and the
    /// values of each output's `metrics`.
    pub(super) fn scores(
        &self,
        names: &[&str],
        accuracies: &[Option<Accuracy>],
        metrics: &[Vec<(Metric, &'static str)>],
    ) -> Scores {
        let outputs: Vec<OutputScores> = names
            .iter()
            .enumerate()
            .map(|(i, name)| OutputScores {
                name: name.to_string(),
                loss: self.output_loss(i),
                accuracy: self.accuracy(i, accuracies[i].is_some()),
                metrics: self.metric_values(i, &metrics[i]),
            })
            .collect();
        Scores {
            loss: self.mean_loss(),
            accuracy: outputs.first().and_then(|o| o.accuracy),
            metrics: outputs.first().map(|o| o.metrics.clone()).unwrap_or_default(),
            outputs,
        }
    }
}
