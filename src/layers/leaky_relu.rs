//! `LeakyReLU`: a rectifier with a fixed slope below zero, as a layer of its own (GANs and
//! older Keras programs use it between a layer and its activation).

use super::{Layer, LayerArgs, args};
use crate::autograd::{Graph, UnaryOp, Var};
use crate::error::{Error, Result};
use crate::layers::common::layer_builders;

/// Keras 3's `LeakyReLU(negative_slope=0.3)`: `x` for x ≥ 0, `negative_slope·x` below. Keras 2's
/// spelling of the slope, `alpha`, is read too. Has no weights.
///
/// ```
/// use strata::layers::LeakyReLU;
/// let leaky = LeakyReLU::new(0.2);
/// ```
#[derive(Clone, Debug)]
pub struct LeakyReLU {
    args: LayerArgs,
    negative_slope: f32,
}

impl LeakyReLU {
    /// The slope below zero (Keras's default is 0.3; the `leaky_relu` activation's is 0.2).
    pub fn new(negative_slope: f32) -> Self {
        LeakyReLU {
            args: LayerArgs::default(),
            negative_slope,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let slope = match args::number(config, "negative_slope")? {
            Some(slope) => slope,
            None => args::number(config, "alpha")?.unwrap_or(0.3),
        };
        Ok(LeakyReLU {
            args: LayerArgs::with_input_shape(config)?,
            negative_slope: slope,
        })
    }
}

layer_builders!(LeakyReLU, input_shape);

impl Layer for LeakyReLU {
    fn class_name(&self) -> &'static str {
        "LeakyReLU"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        // NaN is refused too.
        if self.negative_slope.is_nan() || self.negative_slope < 0.0 {
            return Err(Error::invalid(
                "negative_slope",
                self.negative_slope,
                format!(
                    "layer '{}' (LeakyReLU) needs a negative_slope of 0 or more",
                    self.args.name
                ),
            ));
        }
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let y = graph.unary(UnaryOp::LeakyRelu(self.negative_slope), x);
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn config(&self) -> serde_json::Value {
        self.args
            .config(serde_json::json!({ "negative_slope": self.negative_slope }))
    }
}
