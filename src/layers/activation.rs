//! `Activation`: applies an activation function as a layer of its own.

use super::{Layer, args};
use crate::activations;
use crate::autograd::{Graph, ParamStore, Var};
use crate::error::Result;
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// Applies an activation function (Keras's `layers.Activation("relu")`). Has no weights.
#[derive(Clone, Debug)]
pub struct Activation {
    args: LayerArgs,
    activation: String,
    function: activations::Activation,
}

impl Activation {
    /// An activation layer for a Keras activation name; an unknown name is reported when the
    /// model is built.
    pub fn new(activation: &str) -> Self {
        Activation {
            args: LayerArgs::default(),
            activation: activation.to_string(),
            function: activations::Activation::Linear,
        }
    }
}

layer_builders!(Activation);

impl Activation {
    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Activation::new(&args::activation(config, "activation", "linear")?))
    }
}

impl Layer for Activation {
    fn class_name(&self) -> &'static str {
        "Activation"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        activations::Activation::from_name(&self.activation)?;
        Ok(input_shape.to_vec())
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], _: &mut ParamStore, _: &mut Rng) -> Result<()> {
        self.output_shapes(input_shapes)?;
        self.function = activations::Activation::from_name(&self.activation)?;
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let y = self.function.apply(graph, x);
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        (self.function == activations::Activation::Relu).then_some(crate::layers::InferenceRole::Relu)
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "activation": self.activation }))
    }
}
