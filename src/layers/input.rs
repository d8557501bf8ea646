//! `Input`: declares the per-sample shape a model takes.

use super::{Layer, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;

/// Declares the shape of one sample, without the batch axis: `Input::new(&[28, 28])` is
/// Keras's `keras.Input(shape=(28, 28))`.
#[derive(Clone, Debug)]
pub struct Input {
    shape: Vec<usize>,
    args: LayerArgs,
}

impl Input {
    /// An input of one sample's `shape`.
    pub fn new(shape: &[usize]) -> Self {
        Input {
            shape: shape.to_vec(),
            args: LayerArgs::default(),
        }
    }
}

impl Input {
    /// The layer from Keras's `get_config()` keys (`shape`, or `batch_shape` with the batch axis).
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let shape = args::input_shape(config)?
            .ok_or_else(|| Error::Data("InputLayer needs \"shape\" or \"batch_shape\"".into()))?;
        Ok(Input::new(&shape))
    }
}

impl Layer for Input {
    fn class_name(&self) -> &'static str {
        "InputLayer"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if input_shape != self.shape {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
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
        self.args.config(serde_json::json!({ "batch_shape": batch_shape }))
    }
}
