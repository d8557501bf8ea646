//! [`ConfusionMatrix`]: how often each true class was predicted as each class, with the
//! per-class precision, recall and F1 of scikit-learn's `classification_report`.

use crate::error::{Error, Result};
use crate::tensor::Tensor;
use serde::Serialize;

/// Counts of (true class, predicted class) pairs over a set of samples.
///
/// `counts()[t][p]` is the number of samples whose true class is `t` and whose predicted class
/// is `p`, as scikit-learn's `confusion_matrix(y_true, y_pred)`. Serializes to JSON with the
/// counts and every derived score (see [`ConfusionMatrix::per_class`]).
#[derive(Clone, Debug, PartialEq)]
pub struct ConfusionMatrix {
    class_names: Vec<String>,
    counts: Vec<Vec<usize>>,
}

/// Precision, recall, F1 and support of one class, or their average over classes.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct ClassScores {
    /// Of the samples predicted as the class, the fraction that truly are (0 when none were
    /// predicted, as scikit-learn's `zero_division=0`).
    pub precision: f64,
    /// Of the samples truly in the class, the fraction predicted as it (0 when there are none).
    pub recall: f64,
    /// Harmonic mean of precision and recall (0 when both are 0).
    pub f1_score: f64,
    /// Number of samples truly in the class (for an average: all samples).
    pub support: usize,
}

impl ConfusionMatrix {
    /// Builds the matrix from true and predicted class indices, each below `num_classes`.
    pub fn from_indices(y_true: &[usize], y_pred: &[usize], num_classes: usize) -> Result<Self> {
        if num_classes == 0 {
            return Err(Error::invalid(
                "num_classes",
                0,
                "a confusion matrix needs at least one class",
            ));
        }
        if y_true.len() != y_pred.len() {
            return Err(Error::Data(format!(
                "{} true labels but {} predictions; a confusion matrix needs one of each per sample",
                y_true.len(),
                y_pred.len()
            )));
        }
        if y_true.is_empty() {
            return Err(Error::Data("a confusion matrix needs at least one sample".into()));
        }
        let mut counts = vec![vec![0; num_classes]; num_classes];
        for (index, (&actual, &predicted)) in y_true.iter().zip(y_pred).enumerate() {
            for (what, class) in [("true label", actual), ("predicted class", predicted)] {
                if class >= num_classes {
                    return Err(Error::Data(format!(
                        "{what} {class} at index {index} is not below num_classes={num_classes}"
                    )));
                }
            }
            counts[actual][predicted] += 1;
        }
        Ok(ConfusionMatrix {
            class_names: (0..num_classes).map(|class| class.to_string()).collect(),
            counts,
        })
    }

    /// Builds the matrix from model outputs `(N, classes)` and targets, predicting the argmax
    /// of each output row. Targets are integer labels `(N)` / `(N, 1)` or one-hot rows
    /// `(N, classes)`. A single-output model `(N)` / `(N, 1)` is a binary classifier with
    /// classes 0 and 1, predicting 1 for outputs above 0.5; for logits use
    /// [`ConfusionMatrix::from_outputs_with_threshold`] with 0.
    pub fn from_outputs(outputs: &Tensor, targets: &Tensor) -> Result<Self> {
        Self::from_outputs_with_threshold(outputs, targets, 0.5)
    }

    /// As [`ConfusionMatrix::from_outputs`], with the threshold a single-output model's value
    /// must exceed to predict class 1 (0.5 for probabilities, 0 for logits). Multi-class
    /// outputs ignore it.
    pub fn from_outputs_with_threshold(outputs: &Tensor, targets: &Tensor, threshold: f32) -> Result<Self> {
        let samples = outputs.rows();
        if outputs.rank() == 0 || targets.rank() == 0 {
            return Err(Error::Data(
                "outputs and targets need one row per sample, not a single value".into(),
            ));
        }
        if targets.rows() != samples {
            return Err(Error::Data(format!(
                "{samples} output rows but {} target rows; a confusion matrix needs one of each per sample",
                targets.rows()
            )));
        }
        let width = outputs.row_len();
        let (num_classes, y_pred): (usize, Vec<usize>) = if width == 1 {
            (2, outputs.data().iter().map(|&v| usize::from(v > threshold)).collect())
        } else {
            (width, outputs.argmax_rows())
        };
        let y_true = match targets.row_len() {
            1 => class_indices(targets.data(), num_classes)?,
            w if w == width && width > 1 => targets.argmax_rows(),
            w => {
                return Err(Error::Data(format!(
                    "targets have {w} values per sample; expected 1 (class indices) or {width} (one-hot rows)"
                )));
            }
        };
        Self::from_indices(&y_true, &y_pred, num_classes)
    }

    /// Names the classes (in class-index order) for the report and charts; by default they are
    /// `0`, `1`, ...
    pub fn with_class_names<S: AsRef<str>>(mut self, names: &[S]) -> Result<Self> {
        if names.len() != self.num_classes() {
            return Err(Error::invalid(
                "class_names",
                format!("{} names", names.len()),
                format!("the matrix has {} classes", self.num_classes()),
            ));
        }
        self.class_names = names.iter().map(|n| n.as_ref().to_string()).collect();
        Ok(self)
    }

    /// Number of classes (rows and columns).
    pub fn num_classes(&self) -> usize {
        self.counts.len()
    }

    /// The class names, in class-index order.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// `counts()[true_class][predicted_class]`.
    pub fn counts(&self) -> &[Vec<usize>] {
        &self.counts
    }

    /// Number of samples counted.
    pub fn total(&self) -> usize {
        self.counts.iter().flatten().sum()
    }

    /// Fraction of samples whose predicted class is the true class.
    pub fn accuracy(&self) -> f64 {
        let correct: usize = (0..self.num_classes()).map(|c| self.counts[c][c]).sum();
        ratio(correct, self.total())
    }

    /// Precision, recall, F1 and support of each class, in class-index order.
    pub fn per_class(&self) -> Vec<ClassScores> {
        (0..self.num_classes())
            .map(|class| {
                let correct = self.counts[class][class];
                let support: usize = self.counts[class].iter().sum();
                let predicted: usize = self.counts.iter().map(|row| row[class]).sum();
                let (precision, recall) = (ratio(correct, predicted), ratio(correct, support));
                ClassScores {
                    precision,
                    recall,
                    f1_score: f1(precision, recall),
                    support,
                }
            })
            .collect()
    }

    /// The unweighted mean of each score over classes (scikit-learn's "macro avg"). Every class
    /// of the model counts, also one absent from both labels and predictions.
    pub fn macro_average(&self) -> ClassScores {
        self.average(|_| 1.0)
    }

    /// The mean of each score weighted by class support (scikit-learn's "weighted avg").
    pub fn weighted_average(&self) -> ClassScores {
        self.average(|scores| scores.support as f64)
    }

    fn average(&self, weight: impl Fn(&ClassScores) -> f64) -> ClassScores {
        let per_class = self.per_class();
        let total_weight: f64 = per_class.iter().map(&weight).sum();
        let mean = |score: fn(&ClassScores) -> f64| {
            if total_weight == 0.0 {
                return 0.0;
            }
            per_class.iter().map(|s| weight(s) * score(s)).sum::<f64>() / total_weight
        };
        ClassScores {
            precision: mean(|s| s.precision),
            recall: mean(|s| s.recall),
            f1_score: mean(|s| s.f1_score),
            support: self.total(),
        }
    }
}

/// Reads labels stored as floats as class indices, refusing fractions and values out of range.
fn class_indices(labels: &[f32], num_classes: usize) -> Result<Vec<usize>> {
    labels
        .iter()
        .enumerate()
        .map(|(index, &label)| {
            if label >= 0.0 && label.fract() == 0.0 && (label as usize) < num_classes {
                Ok(label as usize)
            } else {
                Err(Error::Data(format!(
                    "label {label} at index {index} is not a class index below num_classes={num_classes}"
                )))
            }
        })
        .collect()
}

/// `part / whole`, or 0 when `whole` is 0 (scikit-learn's `zero_division=0`).
fn ratio(part: usize, whole: usize) -> f64 {
    if whole == 0 { 0.0 } else { part as f64 / whole as f64 }
}

fn f1(precision: f64, recall: f64) -> f64 {
    if precision + recall == 0.0 {
        0.0
    } else {
        2.0 * precision * recall / (precision + recall)
    }
}

/// The JSON form: the counts plus the scores a reader would otherwise recompute.
#[derive(Serialize)]
struct Json<'a> {
    classes: &'a [String],
    counts: &'a [Vec<usize>],
    samples: usize,
    accuracy: f64,
    per_class: Vec<NamedScores<'a>>,
    macro_avg: ClassScores,
    weighted_avg: ClassScores,
}

#[derive(Serialize)]
struct NamedScores<'a> {
    class: &'a str,
    #[serde(flatten)]
    scores: ClassScores,
}

impl Serialize for ConfusionMatrix {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        Json {
            classes: &self.class_names,
            counts: &self.counts,
            samples: self.total(),
            accuracy: self.accuracy(),
            per_class: self
                .class_names
                .iter()
                .zip(self.per_class())
                .map(|(class, scores)| NamedScores { class, scores })
                .collect(),
            macro_avg: self.macro_average(),
            weighted_avg: self.weighted_average(),
        }
        .serialize(serializer)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 8 samples, 3 classes. By hand: counts [[1,1,0],[0,2,0],[1,1,2]]; column sums 2, 4, 2;
    /// 5 correct.
    fn example() -> ConfusionMatrix {
        ConfusionMatrix::from_indices(&[0, 0, 1, 1, 2, 2, 2, 2], &[0, 1, 1, 1, 2, 0, 2, 1], 3).unwrap()
    }

    fn close(a: f64, b: f64) -> bool {
        (a - b).abs() < 1e-12
    }

    #[test]
    fn counts_and_scores_match_hand_computed_values() {
        let matrix = example();
        assert_eq!(matrix.counts(), &[vec![1, 1, 0], vec![0, 2, 0], vec![1, 1, 2]]);
        assert_eq!(matrix.total(), 8);
        assert!(close(matrix.accuracy(), 5.0 / 8.0));
        let scores = matrix.per_class();
        let expected = [(0.5, 0.5, 0.5, 2), (0.5, 1.0, 2.0 / 3.0, 2), (1.0, 0.5, 2.0 / 3.0, 4)];
        for (got, (precision, recall, f1, support)) in scores.iter().zip(expected) {
            assert!(close(got.precision, precision), "{got:?}");
            assert!(close(got.recall, recall), "{got:?}");
            assert!(close(got.f1_score, f1), "{got:?}");
            assert_eq!(got.support, support);
        }
        let macro_avg = matrix.macro_average();
        assert!(close(macro_avg.precision, 2.0 / 3.0) && close(macro_avg.recall, 2.0 / 3.0));
        assert!(close(macro_avg.f1_score, (0.5 + 4.0 / 3.0) / 3.0));
        let weighted = matrix.weighted_average();
        assert!(close(weighted.precision, 0.75) && close(weighted.recall, 0.625) && close(weighted.f1_score, 0.625));
        assert_eq!(weighted.support, 8);
    }

    #[test]
    fn a_class_never_predicted_scores_zero_not_nan() {
        let matrix = ConfusionMatrix::from_indices(&[0, 1], &[0, 0], 3).unwrap();
        let scores = matrix.per_class();
        assert_eq!(
            (scores[1].precision, scores[1].recall, scores[1].f1_score),
            (0.0, 0.0, 0.0)
        );
        assert_eq!((scores[2].precision, scores[2].support), (0.0, 0));
        assert!(close(scores[0].precision, 0.5) && close(scores[0].recall, 1.0));
    }

    #[test]
    fn builds_from_model_outputs_with_integer_or_one_hot_targets() {
        let outputs = Tensor::from_vec(
            vec![4, 3],
            vec![0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.3, 0.3, 0.4, 0.5, 0.4, 0.1],
        )
        .unwrap();
        let labels = Tensor::from_slice(&[0.0, 1.0, 1.0, 2.0]);
        let matrix = ConfusionMatrix::from_outputs(&outputs, &labels).unwrap();
        assert_eq!(matrix.counts(), &[vec![1, 0, 0], vec![0, 1, 1], vec![1, 0, 0]]);
        let column = labels.clone().reshape(&[4, 1]).unwrap();
        assert_eq!(ConfusionMatrix::from_outputs(&outputs, &column).unwrap(), matrix);
        let one_hot = crate::data::to_categorical(&labels, 3).unwrap();
        assert_eq!(ConfusionMatrix::from_outputs(&outputs, &one_hot).unwrap(), matrix);
    }

    #[test]
    fn a_single_output_is_a_binary_classifier() {
        let probabilities = Tensor::from_vec(vec![4, 1], vec![0.2, 0.7, 0.9, 0.4]).unwrap();
        let labels = Tensor::from_slice(&[0.0, 1.0, 0.0, 1.0]);
        let matrix = ConfusionMatrix::from_outputs(&probabilities, &labels).unwrap();
        assert_eq!(matrix.counts(), &[vec![1, 1], vec![1, 1]]);
        let logits = Tensor::from_slice(&[-1.0, 2.0, 0.5, -0.3]);
        assert_eq!(
            ConfusionMatrix::from_outputs_with_threshold(&logits, &labels, 0.0).unwrap(),
            matrix
        );
    }

    #[test]
    fn refuses_inconsistent_input() {
        let data = |result: Result<ConfusionMatrix>| matches!(result, Err(Error::Data(_)));
        assert!(data(ConfusionMatrix::from_indices(&[0, 1], &[0], 2)));
        assert!(data(ConfusionMatrix::from_indices(&[0, 2], &[0, 1], 2)));
        assert!(data(ConfusionMatrix::from_indices(&[0, 1], &[0, 5], 2)));
        assert!(data(ConfusionMatrix::from_indices(&[], &[], 2)));
        assert!(matches!(
            ConfusionMatrix::from_indices(&[], &[], 0),
            Err(Error::InvalidArgument { .. })
        ));
        let outputs = Tensor::from_vec(vec![2, 3], vec![0.1, 0.2, 0.7, 0.6, 0.3, 0.1]).unwrap();
        assert!(data(ConfusionMatrix::from_outputs(
            &outputs,
            &Tensor::from_slice(&[0.0, 3.0])
        )));
        assert!(data(ConfusionMatrix::from_outputs(
            &outputs,
            &Tensor::from_slice(&[0.0, 0.5])
        )));
        assert!(data(ConfusionMatrix::from_outputs(
            &outputs,
            &Tensor::from_slice(&[-1.0, 0.0])
        )));
        assert!(data(ConfusionMatrix::from_outputs(
            &outputs,
            &Tensor::from_slice(&[0.0])
        )));
        let two_wide = Tensor::from_vec(vec![2, 2], vec![1.0, 0.0, 0.0, 1.0]).unwrap();
        assert!(data(ConfusionMatrix::from_outputs(&outputs, &two_wide)));
        assert!(data(ConfusionMatrix::from_outputs(
            &Tensor::scalar(0.3),
            &Tensor::scalar(1.0)
        )));
        assert!(matches!(
            example().with_class_names(&["a", "b"]),
            Err(Error::InvalidArgument { .. })
        ));
    }

    #[test]
    fn serializes_counts_and_scores_to_json() {
        let matrix = example().with_class_names(&["cat", "dog", "bird"]).unwrap();
        let json = serde_json::to_value(&matrix).unwrap();
        assert_eq!(json["classes"], serde_json::json!(["cat", "dog", "bird"]));
        assert_eq!(json["counts"], serde_json::json!([[1, 1, 0], [0, 2, 0], [1, 1, 2]]));
        assert_eq!(json["samples"], 8);
        assert_eq!(json["accuracy"], 0.625);
        assert_eq!(json["per_class"][1]["class"], "dog");
        assert_eq!(json["per_class"][1]["recall"], 1.0);
        assert_eq!(json["per_class"][2]["support"], 4);
        assert_eq!(json["weighted_avg"]["precision"], 0.75);
    }
}
