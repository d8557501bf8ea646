//! Losses with Keras's names, each averaged over the batch (`"sum_over_batch_size"`).
//!
//! Cross-entropies on probabilities are computed from the logits when the model's last
//! operation is the matching softmax or sigmoid, as Keras's TensorFlow backend does: the result
//! is the same loss without the overflow and clipping of `log(softmax(x))`.

use crate::autograd::{Graph, Op, UnaryOp, Var};
use crate::error::{Error, Result};

/// A training objective.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Loss {
    /// Mean of `(y − ŷ)²`.
    MeanSquaredError,
    /// Mean of `|y − ŷ|`.
    MeanAbsoluteError,
    /// Binary cross-entropy on probabilities, or on logits when `from_logits`.
    BinaryCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
    },
    /// Cross-entropy against one-hot targets.
    CategoricalCrossentropy {
        /// Whether predictions are logits rather than probabilities.
        from_logits: bool,
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
            "binary_crossentropy" => Loss::BinaryCrossentropy { from_logits: false },
            "categorical_crossentropy" => Loss::CategoricalCrossentropy { from_logits: false },
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
            Loss::BinaryCrossentropy { .. } => Some(Loss::BinaryCrossentropy { from_logits }),
            Loss::CategoricalCrossentropy { .. } => Some(Loss::CategoricalCrossentropy { from_logits }),
            Loss::SparseCategoricalCrossentropy { .. } => Some(Loss::SparseCategoricalCrossentropy { from_logits }),
            Loss::MeanSquaredError | Loss::MeanAbsoluteError => None,
        }
    }

    /// Whether predictions are logits.
    pub fn from_logits(&self) -> bool {
        match *self {
            Loss::BinaryCrossentropy { from_logits }
            | Loss::CategoricalCrossentropy { from_logits }
            | Loss::SparseCategoricalCrossentropy { from_logits } => from_logits,
            _ => false,
        }
    }

    /// The same loss on logits (`from_logits = true`), for the cross-entropies.
    pub fn with_logits(self) -> Self {
        match self {
            Loss::BinaryCrossentropy { .. } => Loss::BinaryCrossentropy { from_logits: true },
            Loss::CategoricalCrossentropy { .. } => Loss::CategoricalCrossentropy { from_logits: true },
            Loss::SparseCategoricalCrossentropy { .. } => Loss::SparseCategoricalCrossentropy { from_logits: true },
            other => other,
        }
    }

    /// True when targets are class indices (one per sample) rather than arrays like the output.
    pub fn sparse_targets(&self) -> bool {
        matches!(self, Loss::SparseCategoricalCrossentropy { .. })
    }

    /// Records the scalar loss between the model's `output` and `target` on the graph.
    pub fn compute(&self, graph: &mut Graph, output: Var, target: Var) -> Result<Var> {
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
            Loss::BinaryCrossentropy { from_logits } => match (from_logits, graph.op(output)) {
                (true, _) => graph.sigmoid_cross_entropy(output, target),
                (false, Op::Unary(UnaryOp::Sigmoid, logits)) => graph.sigmoid_cross_entropy(logits, target),
                (false, _) => graph.binary_cross_entropy(output, target),
            },
            Loss::CategoricalCrossentropy { from_logits } | Loss::SparseCategoricalCrossentropy { from_logits } => {
                let sparse = self.sparse_targets();
                match (from_logits, graph.op(output)) {
                    (true, _) => graph.softmax_cross_entropy(output, target, sparse),
                    (false, Op::Softmax(logits)) => graph.softmax_cross_entropy(logits, target, sparse),
                    (false, _) => graph.cross_entropy(output, target, sparse),
                }
            }
        }
    }
}

impl TryFrom<&str> for Loss {
    type Error = Error;
    fn try_from(name: &str) -> Result<Self> {
        Loss::from_name(name)
    }
}
