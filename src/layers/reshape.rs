//! `Reshape`: gives each sample a new shape with the same number of values.

use super::Layer;
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::tensor::{Dims, numel};

/// Reshapes each sample to `target_shape` (without the batch axis), as Keras's
/// `Reshape(target_shape)`; row-major order is kept. Has no weights.
#[derive(Clone, Debug)]
pub struct Reshape {
    name: String,
    target_shape: Vec<usize>,
    input_shape: Option<Vec<usize>>,
}

impl Reshape {
    /// Reshapes samples to `target_shape`, e.g. `&[28, 28, 1]`.
    pub fn new(target_shape: &[usize]) -> Self {
        Reshape {
            name: String::new(),
            target_shape: target_shape.to_vec(),
            input_shape: None,
        }
    }

    /// Declares the model's input shape on this first layer.
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }
}

impl Layer for Reshape {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if numel(input_shape) != numel(&self.target_shape) {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                expected: format!(
                    "{} values per sample to reshape to {}",
                    numel(&self.target_shape),
                    keras_shape(&self.target_shape)
                ),
                received: keras_shape(input_shape),
            });
        }
        Ok(self.target_shape.clone())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let mut shape = Dims::from_slice(&graph.shape(x)[..1]);
        shape.extend_from_slice(&self.target_shape);
        graph.reshape(x, &shape)
    }

    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({"name": self.name, "target_shape": self.target_shape})
    }
}
