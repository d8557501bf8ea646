//! `Softmax`: the softmax activation as a layer, as TensorFlow's tutorials append it to a model
//! that outputs logits (`Sequential([model, Softmax()])`).

use super::normalization::{check_last_axis, last_axis_only};
use super::{Layer, LayerArgs};
use crate::autograd::{Graph, Var};
use crate::error::Result;
use crate::layers::common::layer_builders;

/// Keras's `Softmax(axis=-1)`: each row of the last axis scaled to probabilities that sum to 1.
/// strata normalizes the last axis only (`axis` -1, or the last axis counted with the batch).
/// Has no weights.
///
/// ```
/// use strata::layers::Softmax;
/// let probabilities = Softmax::new();
/// ```
#[derive(Clone, Debug)]
pub struct Softmax {
    args: LayerArgs,
    axis: i64,
}

impl Softmax {
    /// Softmax over the last axis.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        Softmax {
            args: LayerArgs::default(),
            axis: -1,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Softmax {
            args: LayerArgs::with_input_shape(config)?,
            axis: last_axis_only("Softmax", config)?,
        })
    }
}

layer_builders!(Softmax, input_shape);

impl Layer for Softmax {
    fn class_name(&self) -> &'static str {
        "Softmax"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        check_last_axis(&self.args.name, self.axis, input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let y = graph.softmax(x);
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "axis": self.axis }))
    }
}
