//! `Identity`: a layer that passes its input through, as Keras 3's `layers.Identity` (a
//! placeholder where an architecture makes a layer optional).

use super::{Layer, LayerArgs};
use crate::autograd::{Graph, Var};
use crate::error::Result;
use crate::layers::common::layer_builders;

/// Keras's `Identity()`: the output is the input (its mask too). Has no weights.
#[derive(Clone, Debug, Default)]
pub struct Identity {
    args: LayerArgs,
}

impl Identity {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Identity {
            args: LayerArgs::with_input_shape(config)?,
        })
    }
}

layer_builders!(Identity, input_shape);

impl Layer for Identity {
    fn class_name(&self) -> &'static str {
        "Identity"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, _: &mut Graph, x: Var) -> Result<Var> {
        Ok(x)
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({}))
    }
}
