//! `Flatten`: one sample's values as a vector, in row-major (channels-last) order.

use super::Layer;
use crate::autograd::{Graph, ParamStore, Var};
use crate::error::Result;
use crate::rng::Rng;
use crate::tensor::numel;

/// Flattens each sample to one axis: `(N, 28, 28)` → `(N, 784)`. Has no weights.
#[derive(Clone, Debug, Default)]
pub struct Flatten {
    name: String,
    input_shape: Option<Vec<usize>>,
    width: usize,
}

impl Flatten {
    /// A Flatten layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// Declares the model's input shape on this first layer (Keras's `input_shape=`).
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }
}

impl Layer for Flatten {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(vec![numel(input_shape)])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], _: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.name, "Flatten", input_shapes)?;
        self.width = numel(input_shape);
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let rows = graph.shape(x).first().copied().unwrap_or(0);
        if graph.shape(x).len() == 2 {
            return Ok(x);
        }
        graph.reshape(x, &[rows, self.width])
    }

    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({ "name": self.name, "data_format": "channels_last" })
    }
}
