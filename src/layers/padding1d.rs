//! `ZeroPadding1D`: zero steps added at the start and end of a sequence (a causal convolution's
//! left padding, MobileBERT's shifted embeddings).

use super::{Layer, LayerArgs};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;
use serde_json::Value;

/// Keras's `ZeroPadding1D(padding=1)` on `(batch, steps, features)`: `padding.0` steps of zeros
/// before the sequence and `padding.1` after it.
///
/// ```
/// use strata::layers::ZeroPadding1D;
/// let causal = ZeroPadding1D::new(2, 0); // before a "valid" Conv1D of kernel 3
/// ```
#[derive(Clone, Debug)]
pub struct ZeroPadding1D {
    args: LayerArgs,
    padding: (usize, usize),
}

impl ZeroPadding1D {
    /// Adds `start` zero steps before the sequence and `end` after it.
    pub fn new(start: usize, end: usize) -> Self {
        ZeroPadding1D {
            args: LayerArgs::default(),
            padding: (start, end),
        }
    }

    /// The layer from Keras's `get_config()` keys (`padding`: a number for both ends, or a
    /// pair).
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let (start, end) = super::cropping1d::sequence_ends(config, "padding", "ZeroPadding1D")?;
        let mut layer = ZeroPadding1D::new(start, end);
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

layer_builders!(ZeroPadding1D, input_shape);

impl Layer for ZeroPadding1D {
    fn class_name(&self) -> &'static str {
        "ZeroPadding1D"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let (start, end) = self.padding;
        let grown = |steps: usize| steps.checked_add(start)?.checked_add(end);
        match input_shape {
            [steps, features] if grown(*steps).is_some() => Ok(vec![grown(*steps).unwrap_or(0), *features]),
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!("(None, steps, features), the steps plus {start} + {end} within range"),
                received: keras_shape(input_shape),
            }),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.shape(x).to_vec();
        let padded = self.output_shape(shape.get(1..).unwrap_or(&[]))?;
        // The sequence as images one column wide: its steps padded as rows.
        let image = graph.reshape(x, &[shape[0], shape[1], 1, shape[2]])?;
        let image = graph.zero_pad2d(image, (self.padding, (0, 0)))?;
        graph.reshape(image, &[shape[0], padded[0], padded[1]])
    }

    fn config(&self) -> Value {
        self.args
            .config(serde_json::json!({ "padding": [self.padding.0, self.padding.1] }))
    }
}
