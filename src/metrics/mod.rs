//! Metrics reported during training (`"accuracy"` is resolved from the loss as Keras does; the
//! others are [`Metric`]s kept as sums over batches), and the confusion matrix with per-class
//! scores for evaluation.

mod confusion;
mod report;
mod streaming;

pub use confusion::{ClassScores, ConfusionMatrix};
pub use streaming::{Metric, NAMES as METRIC_NAMES};

use crate::error::{Error, Result};
use crate::kernels::argmax;
use crate::losses::Loss;
use crate::tensor::Tensor;

/// Which accuracy `"accuracy"` means for a model.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Accuracy {
    /// Output ≥ 0.5 (or logit ≥ 0) matches a 0/1 target.
    Binary,
    /// Argmax of the output matches argmax of a one-hot target.
    Categorical,
    /// Argmax of the output matches an integer label.
    SparseCategorical,
}

/// The names [`Accuracy::resolve`] accepts (`compile` also takes [`METRIC_NAMES`]).
pub const NAMES: &[&str] = &[
    "accuracy",
    "acc",
    "binary_accuracy",
    "categorical_accuracy",
    "sparse_categorical_accuracy",
];

impl Accuracy {
    /// Resolves a metric name for a model trained with `loss` whose output has `output_width`
    /// values per sample.
    pub fn resolve(name: &str, loss: Loss, output_width: usize) -> Result<Self> {
        Ok(match name {
            "accuracy" | "acc" => match loss {
                Loss::SparseCategoricalCrossentropy { .. } => Accuracy::SparseCategorical,
                Loss::BinaryCrossentropy { .. } => Accuracy::Binary,
                _ if output_width == 1 => Accuracy::Binary,
                _ => Accuracy::Categorical,
            },
            "binary_accuracy" => Accuracy::Binary,
            "categorical_accuracy" => Accuracy::Categorical,
            "sparse_categorical_accuracy" => Accuracy::SparseCategorical,
            _ => {
                let all: Vec<&str> = NAMES.iter().chain(METRIC_NAMES).copied().collect();
                return Err(Error::unknown("metric", name, &all));
            }
        })
    }

    /// Number of correct predictions in a batch. `threshold` is 0.5 for probabilities and 0 for
    /// logits (binary accuracy only).
    pub fn count_correct(&self, output: &Tensor, target: &Tensor, threshold: f32) -> usize {
        let width = output.row_len().max(1);
        match self {
            Accuracy::Binary => output
                .data()
                .iter()
                .zip(target.data())
                .filter(|&(&p, &t)| (p > threshold) == (t > 0.5))
                .count(),
            Accuracy::Categorical => output
                .data()
                .chunks(width)
                .zip(target.data().chunks(width))
                .filter(|(p, t)| argmax(p) == argmax(t))
                .count(),
            Accuracy::SparseCategorical => output
                .data()
                .chunks(width)
                .zip(target.data())
                .filter(|&(p, &t)| argmax(p) == t as usize)
                .count(),
        }
    }

    /// How many predictions one sample contributes (its outputs for binary, else one).
    pub fn per_sample(&self, output_width: usize) -> usize {
        if *self == Accuracy::Binary { output_width } else { 1 }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_hand_checked_cases() {
        let out = Tensor::from_vec(vec![3, 2], vec![0.9, 0.1, 0.2, 0.8, 0.6, 0.4]).unwrap();
        let labels = Tensor::from_slice(&[0.0, 0.0, 0.0]);
        assert_eq!(Accuracy::SparseCategorical.count_correct(&out, &labels, 0.5), 2);
        let onehot = Tensor::from_vec(vec![3, 2], vec![1., 0., 0., 1., 0., 1.]).unwrap();
        assert_eq!(Accuracy::Categorical.count_correct(&out, &onehot, 0.5), 2);
        let probs = Tensor::from_slice(&[0.7, 0.2, 0.5]);
        assert_eq!(
            Accuracy::Binary.count_correct(&probs, &Tensor::from_slice(&[1., 0., 1.]), 0.5),
            2
        );
        let sparse = Loss::SparseCategoricalCrossentropy { from_logits: false };
        assert_eq!(
            Accuracy::resolve("accuracy", sparse, 10).unwrap(),
            Accuracy::SparseCategorical
        );
        assert!(Accuracy::resolve("f1", sparse, 10).is_err());
    }
}
