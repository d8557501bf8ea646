//! `UpSampling1D`: repeats the steps of a sequence (a 1-D autoencoder's or U-Net's decoder).

use super::{Layer, LayerArgs};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;
use serde_json::{Value, json};

/// Keras's `UpSampling1D(size=2)`: each step of `(None, steps, features)` sequences repeated
/// `size` times, giving `(None, steps · size, features)`. No weights.
///
/// ```
/// use strata::layers::UpSampling1D;
/// let up = UpSampling1D::new(2);
/// ```
#[derive(Clone, Debug)]
pub struct UpSampling1D {
    args: LayerArgs,
    size: usize,
}

impl UpSampling1D {
    /// Repeats each step `size` times.
    pub fn new(size: usize) -> Self {
        UpSampling1D {
            args: LayerArgs::default(),
            size,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let size = match config.get("size") {
            None | Some(Value::Null) => 2,
            Some(value) => value.as_u64().map(|s| s as usize).ok_or_else(|| {
                Error::Data(format!(
                    "UpSampling1D's \"size\" must be a positive integer, got {value}"
                ))
            })?,
        };
        let mut layer = UpSampling1D::new(size);
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

layer_builders!(UpSampling1D, input_shape);

impl Layer for UpSampling1D {
    fn class_name(&self) -> &'static str {
        "UpSampling1D"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let name = &self.args.name;
        if self.size == 0 {
            return Err(Error::invalid(
                "size",
                self.size,
                format!("layer '{name}' (UpSampling1D) needs a size of 1 or more"),
            ));
        }
        let [steps, features] = <[usize; 2]>::try_from(input_shape).map_err(|_| Error::LayerShape {
            layer: name.clone(),
            expected: "(None, steps, features)".into(),
            received: keras_shape(input_shape),
        })?;
        let steps = steps.checked_mul(self.size).ok_or_else(|| {
            Error::invalid(
                "size",
                self.size,
                format!("layer '{name}' (UpSampling1D): the sequence's length overflows"),
            )
        })?;
        Ok(vec![steps, features])
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        // A sequence is an image one column wide: its rows repeated.
        let [batch, steps, features] = <[usize; 3]>::try_from(graph.shape(x)).map_err(|_| Error::LayerShape {
            layer: self.args.name.clone(),
            expected: "(None, steps, features)".into(),
            received: keras_shape(graph.shape(x).get(1..).unwrap_or(&[])),
        })?;
        let column = graph.reshape(x, &[batch, steps, 1, features])?;
        let repeated = graph.upsample2d(column, (self.size, 1))?;
        graph.reshape(repeated, &[batch, steps * self.size, features])
    }

    fn config(&self) -> Value {
        self.args.config(json!({ "size": self.size }))
    }
}
