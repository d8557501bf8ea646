//! The sums a training or evaluation pass keeps: one batch's [`StepStats`], the running
//! [`Totals`] of an epoch, and the [`Scores`] they give. Both strategies (single process,
//! data-parallel) fill and reduce them, so they live below both.

use crate::metrics::Accuracy;

/// The result of `evaluate`: mean loss and, if compiled with it, accuracy.
#[derive(Clone, Debug, PartialEq)]
pub struct Scores {
    /// Mean loss over the samples: with several outputs, `Σ loss_weight × output loss`, plus
    /// any regularization penalties (as Keras reports it).
    pub loss: f32,
    /// Accuracy (of the first output), when compiled with `"accuracy"`.
    pub accuracy: Option<f32>,
    /// Each output's loss and accuracy, in the model's output order.
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
}

/// One output's loss and correct predictions in one batch.
#[derive(Clone, Copy, Default)]
pub(super) struct StepStats {
    pub(super) loss: f32,
    pub(super) correct: usize,
    pub(super) predictions: usize,
}

/// Running sums of loss and correct predictions over batches, overall and per output.
#[derive(Default)]
pub(super) struct Totals {
    pub(super) loss: f64,
    pub(super) samples: usize,
    /// Per output: loss sum, correct predictions, predictions.
    pub(super) outputs: Vec<(f64, usize, usize)>,
}

impl Totals {
    /// Empty sums for a model with `outputs` outputs.
    pub(super) fn new(outputs: usize) -> Self {
        Totals {
            outputs: vec![(0.0, 0, 0); outputs],
            ..Totals::default()
        }
    }

    /// Adds one batch of `rows` samples with mean loss `loss` and per-output `stats`.
    pub(super) fn add(&mut self, loss: f32, rows: usize, stats: &[StepStats]) {
        self.loss += loss as f64 * rows as f64;
        self.samples += rows;
        for (total, step) in self.outputs.iter_mut().zip(stats) {
            total.0 += step.loss as f64 * rows as f64;
            total.1 += step.correct;
            total.2 += step.predictions;
        }
    }

    /// Mean loss per sample so far.
    pub(super) fn mean_loss(&self) -> f32 {
        (self.loss / self.samples.max(1) as f64) as f32
    }

    fn output_loss(&self, output: usize) -> f32 {
        (self.outputs[output].0 / self.samples.max(1) as f64) as f32
    }

    /// Accuracy of output `output` so far, if it is `tracked`.
    pub(super) fn accuracy(&self, output: usize, tracked: bool) -> Option<f32> {
        let (_, correct, predictions) = self.outputs.get(output)?;
        tracked.then(|| *correct as f32 / (*predictions).max(1) as f32)
    }

    /// The scores of outputs `names`, with accuracies where `accuracies` has one.
    pub(super) fn scores(&self, names: &[&str], accuracies: &[Option<Accuracy>]) -> Scores {
        let outputs: Vec<OutputScores> = names
            .iter()
            .enumerate()
            .map(|(i, name)| OutputScores {
                name: name.to_string(),
                loss: self.output_loss(i),
                accuracy: self.accuracy(i, accuracies[i].is_some()),
            })
            .collect();
        Scores {
            loss: self.mean_loss(),
            accuracy: outputs.first().and_then(|o| o.accuracy),
            outputs,
        }
    }
}
