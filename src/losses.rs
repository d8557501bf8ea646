//! Losses with Keras's names, each averaged over the batch (`"sum_over_batch_size"`).
//!
//! Cross-entropies on probabilities are computed from the logits when the model's last
//! operation is the matching softmax or sigmoid, as Keras's TensorFlow backend does: the result
//! is the same loss without the overflow and clipping of `log(softmax(x))`.
//!
//! `label_smoothing` (ε) moves the targets of the binary and categorical cross-entropies toward
//! uniform before the loss is taken, as Keras does: `y·(1 − ε) + ε/K` for `K` classes, and
//! `y·(1 − ε) + ε/2` for binary targets. Keras's sparse categorical cross-entropy has no such
//! setting, and neither has strata's.

use crate::autograd::{Graph, Op, UnaryOp, Var};
use crate::error::{Error, Result, keras_shape};

/// A training objective.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Loss {
    /// Mean of `(y − ŷ)²`.
    MeanSquaredError,
    /// Mean of `|y − ŷ|`.
    MeanAbsoluteError,
    /// Binary cross-entropy on probabilities, or on logits when `from_logits`.
    BinaryCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
        /// ε in `[0, 1]`: targets become `y·(1 − ε) + ε/2` (Keras's default 0: unchanged).
        label_smoothing: f32,
    },
    /// Cross-entropy against one-hot targets.
    CategoricalCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
        /// ε in `[0, 1]`: targets become `y·(1 − ε) + ε/K` for `K` classes (Keras's default
        /// 0: unchanged).
        label_smoothing: f32,
    },
    /// Cross-entropy against integer class labels.
    SparseCategoricalCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
    },
}

/// The names [`Loss::from_name`] accepts.
pub const NAMES: &[&str] = &[
    "mse",
    "mean_squared_error",
    "mae",
    "mean_absolute_error",
    "binary_crossentropy",
    "categorical_crossentropy",
    "sparse_categorical_crossentropy",
];

impl Loss {
    /// Looks a loss up by its Keras name (on probabilities: `from_logits = false`).
    pub fn from_name(name: &str) -> Result<Self> {
        let snake = crate::initializers::to_snake_case(name);
        Ok(match snake.as_str() {
            "mse" | "mean_squared_error" => Loss::MeanSquaredError,
            "mae" | "mean_absolute_error" => Loss::MeanAbsoluteError,
            "binary_crossentropy" => Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "categorical_crossentropy" => Loss::CategoricalCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            "sparse_categorical_crossentropy" => Loss::SparseCategoricalCrossentropy { from_logits: false },
            _ => return Err(Error::unknown("loss", name, NAMES)),
        })
    }

    /// The Keras name.
    pub fn name(&self) -> &'static str {
        match self {
            Loss::MeanSquaredError => "mean_squared_error",
            Loss::MeanAbsoluteError => "mean_absolute_error",
            Loss::BinaryCrossentropy { .. } => "binary_crossentropy",
            Loss::CategoricalCrossentropy { .. } => "categorical_crossentropy",
            Loss::SparseCategoricalCrossentropy { .. } => "sparse_categorical_crossentropy",
        }
    }

    /// The same loss on logits (`true`) or probabilities; `None` for a loss without the choice
    /// (mean squared and absolute errors).
    pub fn with_from_logits(self, from_logits: bool) -> Option<Self> {
        match self {
            Loss::BinaryCrossentropy { label_smoothing, .. } => Some(Loss::BinaryCrossentropy {
                from_logits,
                label_smoothing,
            }),
            Loss::CategoricalCrossentropy { label_smoothing, .. } => Some(Loss::CategoricalCrossentropy {
                from_logits,
                label_smoothing,
            }),
            Loss::SparseCategoricalCrossentropy { .. } => Some(Loss::SparseCategoricalCrossentropy { from_logits }),
            Loss::MeanSquaredError | Loss::MeanAbsoluteError => None,
        }
    }

    /// Whether predictions are logits.
    pub fn from_logits(&self) -> bool {
        match *self {
            Loss::BinaryCrossentropy { from_logits, .. }
            | Loss::CategoricalCrossentropy { from_logits, .. }
            | Loss::SparseCategoricalCrossentropy { from_logits } => from_logits,
            _ => false,
        }
    }

    /// The label smoothing ε (0 for the losses without it).
    pub fn label_smoothing(&self) -> f32 {
        match *self {
            Loss::BinaryCrossentropy { label_smoothing, .. }
            | Loss::CategoricalCrossentropy { label_smoothing, .. } => label_smoothing,
            _ => 0.0,
        }
    }

    /// The same loss with label smoothing `epsilon` (Keras's `label_smoothing`): an error for a
    /// loss without the setting (0 is accepted by all) or a value outside `[0, 1]`.
    pub fn with_label_smoothing(self, epsilon: f32) -> Result<Self> {
        if !(0.0..=1.0).contains(&epsilon) {
            return Err(Error::invalid("label_smoothing", epsilon, "must be between 0 and 1"));
        }
        match self {
            Loss::BinaryCrossentropy { from_logits, .. } => Ok(Loss::BinaryCrossentropy {
                from_logits,
                label_smoothing: epsilon,
            }),
            Loss::CategoricalCrossentropy { from_logits, .. } => Ok(Loss::CategoricalCrossentropy {
                from_logits,
                label_smoothing: epsilon,
            }),
            other if epsilon == 0.0 => Ok(other),
            other => Err(Error::invalid(
                "label_smoothing",
                epsilon,
                format!(
                    "{} has no label smoothing (Keras has it for binary_crossentropy and categorical_crossentropy)",
                    other.name()
                ),
            )),
        }
    }

    /// The same loss on logits (`from_logits = true`), for the cross-entropies.
    pub fn with_logits(self) -> Self {
        self.with_from_logits(true).unwrap_or(self)
    }

    /// True when targets are class indices (one per sample) rather than arrays like the output.
    pub fn sparse_targets(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }

    /// Records the scalar loss between the model's `output` and `target` on the graph.
    pub fn compute(&self, graph: &mut Graph, output: Var, target: Var) -> Result<Var> {
        let error = match self.record(graph, output, target) {
            Err(error @ Error::ShapeMismatch { .. }) => error,
            result => return result,
        };
        // A classifier's Dense layers on images without a Flatten map every pixel, as Keras's
        // do, and the output keeps the image's axes (sparse targets hold class ids: one axis
        // fewer than the output).
        let (output_shape, target_shape) = (graph.shape(output), graph.shape(target));
        let class_axis = usize::from(self.sparse_targets());
        if output_shape.len() <= target_shape.len() + class_axis {
            return Err(error);
        }
        Err(Error::Data(format!(
            "the model's output {} has more axes than its targets {}: a classifier needs a Flatten (or \
             GlobalAveragePooling2D) layer before its Dense layers, which otherwise act on each position",
            keras_shape(&output_shape[1..]),
            keras_shape(&target_shape[1..]),
        )))
    }

    fn record(&self, graph: &mut Graph, output: Var, target: Var) -> Result<Var> {
        match *self {
            Loss::MeanSquaredError => {
                let diff = graph.sub(output, target)?;
                let squared = graph.square(diff);
                Ok(graph.mean(squared))
            }
            Loss::MeanAbsoluteError => {
                let diff = graph.sub(output, target)?;
                let absolute = graph.abs(diff);
                Ok(graph.mean(absolute))
            }
            Loss::BinaryCrossentropy {
                from_logits,
                label_smoothing,
            } => {
                let target = smoothed(graph, target, label_smoothing, 0.5);
                binary_cross_entropy(graph, output, target, from_logits)
            }
            Loss::CategoricalCrossentropy {
                from_logits,
                label_smoothing,
            } => {
                let classes = graph.shape(target).last().copied().unwrap_or(1).max(1);
                let target = smoothed(graph, target, label_smoothing, 1.0 / classes as f32);
                categorical_cross_entropy(graph, output, target, from_logits, false)
            }
            Loss::SparseCategoricalCrossentropy { from_logits } => {
                categorical_cross_entropy(graph, output, target, from_logits, true)
            }
        }
    }
}

/// `target·(1 − ε) + ε·share`: targets moved toward `share` by `epsilon` (none when 0).
fn smoothed(graph: &mut Graph, target: Var, epsilon: f32, share: f32) -> Var {
    if epsilon == 0.0 {
        return target;
    }
    graph.affine(target, 1.0 - epsilon, epsilon * share)
}

/// Binary cross-entropy, on the logits when `from_logits` or when the output is a sigmoid's.
fn binary_cross_entropy(graph: &mut Graph, output: Var, target: Var, from_logits: bool) -> Result<Var> {
    match (from_logits, graph.op(output)) {
        (true, _) => graph.sigmoid_cross_entropy(output, target),
        (false, Op::Unary(UnaryOp::Sigmoid, logits)) => graph.sigmoid_cross_entropy(logits, target),
        (false, _) => graph.binary_cross_entropy(output, target),
    }
}

/// Categorical cross-entropy against class probabilities or (`sparse`) class indices, on the
/// logits when `from_logits` or when the output is a softmax's.
fn categorical_cross_entropy(
    graph: &mut Graph,
    output: Var,
    target: Var,
    from_logits: bool,
    sparse: bool,
) -> Result<Var> {
    match (from_logits, graph.op(output)) {
        (true, _) => graph.softmax_cross_entropy(output, target, sparse),
        (false, Op::Softmax(logits)) => graph.softmax_cross_entropy(logits, target, sparse),
        (false, _) => graph.cross_entropy(output, target, sparse),
    }
}

impl TryFrom<&str> for Loss {
    type Error = Error;
    fn try_from(name: &str) -> Result<Self> {
        Loss::from_name(name)
    }
}
