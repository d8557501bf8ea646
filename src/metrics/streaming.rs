//! Keras's metrics other than accuracy, kept as sums over the batches of a pass: the
//! regression errors (`mae`, `mse`, `root_mean_squared_error`, `mape`), top-k accuracy, and the
//! binary classifier's `Precision`, `Recall` and `AUC`. Each batch adds to a fixed-length state
//! of sums (so the states of data-parallel ranks add up too), and the epoch's value is computed
//! from the sums at the end, as Keras's stateful metrics do.

use crate::error::{Error, Result};
use crate::kernels::argmax;
use crate::tensor::Tensor;

/// Keras's `AUC(num_thresholds=200)`.
const AUC_THRESHOLDS: usize = 200;
/// Keras's `epsilon()` in `mean_absolute_percentage_error`.
const EPSILON: f32 = 1e-7;

/// A metric computed from sums over batches.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Metric {
    /// Mean of `|target − output|` over every value.
    MeanAbsoluteError,
    /// Mean of `(target − output)²`.
    MeanSquaredError,
    /// Square root of the mean squared error over the whole pass.
    RootMeanSquaredError,
    /// `100 × mean(|target − output| / max(|target|, 1e-7))`.
    MeanAbsolutePercentageError,
    /// Whether the target class (one-hot target) is among the `k` highest outputs.
    TopKCategorical {
        /// How many of the highest outputs count (Keras's default 5).
        k: usize,
    },
    /// Whether the target class (integer label) is among the `k` highest outputs.
    SparseTopKCategorical {
        /// How many of the highest outputs count (Keras's default 5).
        k: usize,
    },
    /// True positives over predicted positives, with outputs above 0.5 predicted positive.
    Precision,
    /// True positives over actual positives, with outputs above 0.5 predicted positive.
    Recall,
    /// Area under the ROC curve from 200 thresholds (Keras's `AUC()` defaults: interpolated
    /// Riemann sum, values flattened).
    Auc,
}

/// Names accepted by [`Metric::resolve`], as Keras accepts them (function aliases and class names).
pub const NAMES: &[&str] = &[
    "mae",
    "mean_absolute_error",
    "MeanAbsoluteError",
    "mse",
    "mean_squared_error",
    "MeanSquaredError",
    "root_mean_squared_error",
    "RootMeanSquaredError",
    "mape",
    "mean_absolute_percentage_error",
    "MeanAbsolutePercentageError",
    "top_k_categorical_accuracy",
    "TopKCategoricalAccuracy",
    "sparse_top_k_categorical_accuracy",
    "SparseTopKCategoricalAccuracy",
    "precision",
    "Precision",
    "recall",
    "Recall",
    "auc",
    "AUC",
];

impl Metric {
    /// The metric a name stands for, and the key Keras logs it under: a function alias logs
    /// under the name given (`"mae"`), a class under its default name (`"AUC"` → `"auc"`).
    pub fn resolve(name: &str) -> Option<(Metric, &'static str)> {
        let top_k = 5;
        Some(match name {
            "mae" => (Metric::MeanAbsoluteError, "mae"),
            "mean_absolute_error" | "MeanAbsoluteError" => (Metric::MeanAbsoluteError, "mean_absolute_error"),
            "mse" => (Metric::MeanSquaredError, "mse"),
            "mean_squared_error" | "MeanSquaredError" => (Metric::MeanSquaredError, "mean_squared_error"),
            "root_mean_squared_error" | "RootMeanSquaredError" => {
                (Metric::RootMeanSquaredError, "root_mean_squared_error")
            }
            "mape" => (Metric::MeanAbsolutePercentageError, "mape"),
            "mean_absolute_percentage_error" | "MeanAbsolutePercentageError" => {
                (Metric::MeanAbsolutePercentageError, "mean_absolute_percentage_error")
            }
            "top_k_categorical_accuracy" | "TopKCategoricalAccuracy" => {
                (Metric::TopKCategorical { k: top_k }, "top_k_categorical_accuracy")
            }
            "sparse_top_k_categorical_accuracy" | "SparseTopKCategoricalAccuracy" => (
                Metric::SparseTopKCategorical { k: top_k },
                "sparse_top_k_categorical_accuracy",
            ),
            "precision" | "Precision" => (Metric::Precision, "precision"),
            "recall" | "Recall" => (Metric::Recall, "recall"),
            "auc" | "AUC" => (Metric::Auc, "auc"),
            _ => return None,
        })
    }

    /// How many sums the metric keeps.
    pub fn state_len(&self) -> usize {
        match self {
            Metric::Auc => 2 * (AUC_THRESHOLDS + 1),
            _ => 2,
        }
    }

    /// Adds one batch's `output` against `target` to `state` (of [`Metric::state_len`] sums).
    pub fn update(&self, key: &str, output: &Tensor, target: &Tensor, state: &mut [f64]) -> Result<()> {
        let (values, targets) = (output.data(), target.data());
        match *self {
            Metric::SparseTopKCategorical { k } => {
                let width = output.row_len().max(1);
                check_sizes(key, output, target, values.len() / width == targets.len())?;
                for (row, &label) in values.chunks(width).zip(targets) {
                    state[0] += in_top_k(row, label as usize, k) as u8 as f64;
                }
                state[1] += targets.len() as f64;
            }
            Metric::TopKCategorical { k } => {
                check_sizes(key, output, target, values.len() == targets.len())?;
                let width = output.row_len().max(1);
                for (row, one_hot) in values.chunks(width).zip(targets.chunks(width)) {
                    state[0] += in_top_k(row, argmax(one_hot), k) as u8 as f64;
                }
                state[1] += (values.len() / width) as f64;
            }
            Metric::Auc => {
                check_sizes(key, output, target, values.len() == targets.len())?;
                let (positives, negatives) = state.split_at_mut(AUC_THRESHOLDS + 1);
                for (&value, &truth) in values.iter().zip(targets) {
                    let bucket = thresholds_below(value);
                    if truth != 0.0 {
                        positives[bucket] += 1.0;
                    } else {
                        negatives[bucket] += 1.0;
                    }
                }
            }
            _ => {
                check_sizes(key, output, target, values.len() == targets.len())?;
                let (sum, count) = self.pairwise_sums(values, targets);
                state[0] += sum;
                state[1] += count;
            }
        }
        Ok(())
    }

    /// The value of the metric from its sums (0 where nothing was counted, as Keras's
    /// `divide_no_nan`).
    pub fn result(&self, state: &[f64]) -> f32 {
        let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
        (match self {
            Metric::RootMeanSquaredError => ratio(state[0], state[1]).sqrt(),
            Metric::Auc => auc(state),
            _ => ratio(state[0], state[1]),
        }) as f32
    }

    /// The metric's sum and count over value pairs (element-wise metrics).
    fn pairwise_sums(&self, values: &[f32], targets: &[f32]) -> (f64, f64) {
        let pairs = values.iter().zip(targets).map(|(&p, &t)| (p, t));
        let sum = |f: &dyn Fn(f32, f32) -> f32| pairs.clone().map(|(p, t)| f(p, t) as f64).sum::<f64>();
        let count = values.len() as f64;
        match self {
            Metric::MeanAbsoluteError => (sum(&|p, t| (t - p).abs()), count),
            Metric::MeanSquaredError | Metric::RootMeanSquaredError => (sum(&|p, t| (t - p) * (t - p)), count),
            Metric::MeanAbsolutePercentageError => (sum(&|p, t| 100.0 * ((t - p) / t.abs().max(EPSILON)).abs()), count),
            Metric::Precision => {
                let true_positives = sum(&|p, t| (p > 0.5 && t != 0.0) as u8 as f32);
                (true_positives, sum(&|p, _| (p > 0.5) as u8 as f32))
            }
            Metric::Recall => {
                let true_positives = sum(&|p, t| (p > 0.5 && t != 0.0) as u8 as f32);
                (true_positives, sum(&|_, t| (t != 0.0) as u8 as f32))
            }
            Metric::TopKCategorical { .. } | Metric::SparseTopKCategorical { .. } | Metric::Auc => {
                unreachable!("counted per row or per bucket in update")
            }
        }
    }
}

/// The error for an output and target that the metric cannot pair up.
fn check_sizes(key: &str, output: &Tensor, target: &Tensor, fits: bool) -> Result<()> {
    if fits {
        return Ok(());
    }
    Err(Error::invalid(
        "metrics",
        key,
        format!(
            "it compares the output of shape {:?} with the target of shape {:?}, which do not pair up",
            output.shape(),
            target.shape()
        ),
    ))
}

/// Whether `row[label]` is among the `k` largest values of `row` (ties count in the target's favor).
fn in_top_k(row: &[f32], label: usize, k: usize) -> bool {
    let Some(&value) = row.get(label) else {
        return false;
    };
    row.iter().filter(|&&other| other > value).count() < k
}

/// Keras's AUC thresholds: `-ε, 1/199, 2/199, …, 198/199, 1 + ε`, as float32.
fn threshold(index: usize) -> f32 {
    match index {
        0 => -1e-7,
        i if i == AUC_THRESHOLDS - 1 => 1.0 + 1e-7,
        i => (i as f64 / (AUC_THRESHOLDS - 1) as f64) as f32,
    }
}

/// How many thresholds lie below `value` (it is predicted positive at exactly those), found by
/// bisection since the thresholds increase.
fn thresholds_below(value: f32) -> usize {
    let (mut low, mut high) = (0, AUC_THRESHOLDS);
    while low < high {
        let middle = (low + high) / 2;
        if value > threshold(middle) {
            low = middle + 1;
        } else {
            high = middle;
        }
    }
    low
}

/// The interpolated area under the ROC curve from per-bucket counts of positives and negatives
/// (bucket `b`: values above exactly `b` thresholds).
fn auc(state: &[f64]) -> f64 {
    let (positives, negatives) = state.split_at(AUC_THRESHOLDS + 1);
    // At threshold i, the values above it are those in buckets i+1 and up.
    let above = |counts: &[f64], i: usize| counts[i + 1..].iter().sum::<f64>();
    let (all_positive, all_negative): (f64, f64) = (positives.iter().sum(), negatives.iter().sum());
    let ratio = |a: f64, b: f64| if b == 0.0 { 0.0 } else { a / b };
    let points: Vec<(f64, f64)> = (0..AUC_THRESHOLDS)
        .map(|i| {
            let true_positive = above(positives, i);
            let false_positive = above(negatives, i);
            (ratio(false_positive, all_negative), ratio(true_positive, all_positive))
        })
        .collect();
    points
        .windows(2)
        .map(|pair| (pair[0].0 - pair[1].0) * (pair[0].1 + pair[1].1) / 2.0)
        .sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(metric: Metric, output: Tensor, target: Tensor) -> f32 {
        let mut state = vec![0.0; metric.state_len()];
        metric.update("m", &output, &target, &mut state).unwrap();
        metric.result(&state)
    }

    fn column(values: &[f32]) -> Tensor {
        Tensor::from_vec(vec![values.len(), 1], values.to_vec()).unwrap()
    }

    #[test]
    fn regression_errors_by_hand() {
        let (output, target) = (column(&[1.0, 2.0, 4.0]), column(&[2.0, 2.0, 1.0]));
        assert_eq!(
            run(Metric::MeanAbsoluteError, output.clone(), target.clone()),
            4.0 / 3.0
        );
        assert_eq!(
            run(Metric::MeanSquaredError, output.clone(), target.clone()),
            10.0 / 3.0
        );
        assert_eq!(
            run(Metric::RootMeanSquaredError, output.clone(), target.clone()),
            (10.0f32 / 3.0).sqrt()
        );
        // 100 × (1/2 + 0 + 3/1) / 3
        let mape = run(Metric::MeanAbsolutePercentageError, output, target);
        assert!((mape - 350.0 / 3.0).abs() < 1e-4, "{mape}");
    }

    #[test]
    fn classifier_counts_by_hand() {
        let (output, target) = (column(&[0.9, 0.6, 0.4, 0.2, 0.7]), column(&[1.0, 0.0, 1.0, 0.0, 1.0]));
        // Predicted positive: 0.9, 0.6, 0.7; of those, 0.9 and 0.7 are positive.
        assert_eq!(run(Metric::Precision, output.clone(), target.clone()), 2.0 / 3.0);
        assert_eq!(run(Metric::Recall, output.clone(), target.clone()), 2.0 / 3.0);
        // ROC AUC: of the 3 × 2 positive–negative pairs, the positive scores higher in 5.
        let auc = run(Metric::Auc, output, target);
        assert!((auc - 5.0 / 6.0).abs() < 1e-6, "{auc}");
    }

    #[test]
    fn top_k_by_hand() {
        let output = Tensor::from_vec(vec![2, 4], vec![0.1, 0.5, 0.3, 0.1, 0.7, 0.1, 0.1, 0.1]).unwrap();
        let labels = Tensor::from_slice(&[2.0, 3.0]);
        // Row 0: label 2 (0.3) is second highest; row 1: label 3 (0.1) ties for second.
        assert_eq!(
            run(Metric::SparseTopKCategorical { k: 1 }, output.clone(), labels.clone()),
            0.0
        );
        assert_eq!(run(Metric::SparseTopKCategorical { k: 2 }, output.clone(), labels), 1.0);
        let one_hot = Tensor::from_vec(vec![2, 4], vec![0., 0., 1., 0., 1., 0., 0., 0.]).unwrap();
        assert_eq!(run(Metric::TopKCategorical { k: 1 }, output, one_hot), 0.5);
    }

    #[test]
    fn states_add_up_over_batches() {
        let metric = Metric::Auc;
        let mut state = vec![0.0; metric.state_len()];
        metric
            .update("auc", &column(&[0.9, 0.6, 0.4]), &column(&[1.0, 0.0, 1.0]), &mut state)
            .unwrap();
        metric
            .update("auc", &column(&[0.2, 0.7]), &column(&[0.0, 1.0]), &mut state)
            .unwrap();
        assert!((metric.result(&state) - 5.0 / 6.0).abs() < 1e-6);
    }

    #[test]
    fn mismatched_sizes_name_the_metric_and_shapes() {
        let mut state = vec![0.0; 2];
        let error = Metric::MeanAbsoluteError
            .update("mae", &column(&[1.0, 2.0]), &column(&[1.0]), &mut state)
            .unwrap_err()
            .to_string();
        assert!(
            error.contains("mae") && error.contains("[2, 1]") && error.contains("[1, 1]"),
            "{error}"
        );
    }
}
