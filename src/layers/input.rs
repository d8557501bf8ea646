//! `Input`: declares the per-sample shape a model takes.

use super::Layer;
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};

/// Declares the shape of one sample, without the batch axis: `Input::new(&[28, 28])` is
/// Keras's `keras.Input(shape=(28, 28))`.
#[derive(Clone, Debug)]
pub struct Input {
    shape: Vec<usize>,
    name: String,
}

impl Input {
    /// An input of one sample's `shape`.
    pub fn new(shape: &[usize]) -> Self {
        Input {
            shape: shape.to_vec(),
            name: String::new(),
        }
    }
}

impl Layer for Input {
    fn class_name(&self) -> &'static str {
        "InputLayer"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if input_shape != self.shape {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                expected: keras_shape(&self.shape),
                received: keras_shape(input_shape),
            });
        }
        Ok(self.shape.clone())
    }

    fn forward_one(&self, _: &mut Graph, x: Var) -> Result<Var> {
        Ok(x)
    }

    fn declared_input_shape(&self) -> Option<&[usize]> {
        Some(&self.shape)
    }

    fn is_input(&self) -> bool {
        true
    }

    fn config(&self) -> serde_json::Value {
        let mut batch_shape = vec![serde_json::Value::Null];
        batch_shape.extend(self.shape.iter().map(|&d| d.into()));
        serde_json::json!({ "name": self.name, "batch_shape": batch_shape })
    }
}
