//! `Activation`: applies an activation function as a layer of its own.

use super::Layer;
use crate::activations;
use crate::autograd::{Graph, ParamStore, Var};
use crate::error::Result;
use crate::rng::Rng;

/// Applies an activation function (Keras's `layers.Activation("relu")`). Has no weights.
#[derive(Clone, Debug)]
pub struct Activation {
    name: String,
    activation: String,
    function: activations::Activation,
}

impl Activation {
    /// An activation layer for a Keras activation name; an unknown name is reported when the
    /// model is built.
    pub fn new(activation: &str) -> Self {
        Activation {
            name: String::new(),
            activation: activation.to_string(),
            function: activations::Activation::Linear,
        }
    }
}

impl Layer for Activation {
    fn class_name(&self) -> &'static str {
        "Activation"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
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
        Ok(self.function.apply(graph, x))
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name, "activation": self.activation })
    }
}
