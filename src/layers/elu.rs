//! `ELU`: the exponential linear unit as a layer of its own.

use super::{Layer, LayerArgs, args};
use crate::autograd::{Graph, UnaryOp, Var};
use crate::error::{Error, Result};
use crate::layers::common::layer_builders;

/// Keras's `ELU(alpha=1.0)`: `x` for x > 0, `alpha·(eˣ − 1)` below. Has no weights.
#[derive(Clone, Debug)]
pub struct ELU {
    args: LayerArgs,
    alpha: f32,
}

impl ELU {
    /// The curve's depth below zero (Keras's default is 1).
    pub fn new(alpha: f32) -> Self {
        ELU {
            args: LayerArgs::default(),
            alpha,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(ELU {
            args: LayerArgs::with_input_shape(config)?,
            alpha: args::number(config, "alpha")?.unwrap_or(1.0),
        })
    }
}

layer_builders!(ELU, input_shape);

impl Layer for ELU {
    fn class_name(&self) -> &'static str {
        "ELU"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if !self.alpha.is_finite() {
            return Err(Error::invalid(
                "alpha",
                self.alpha,
                format!("layer '{}' (ELU) needs a finite alpha", self.args.name),
            ));
        }
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let y = graph.unary(UnaryOp::Elu(self.alpha), x);
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "alpha": self.alpha }))
    }
}
