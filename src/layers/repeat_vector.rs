//! `RepeatVector`: a vector repeated as the steps of a sequence, as encoder-decoder models feed
//! an encoding to a recurrent decoder.

use super::{Layer, LayerArgs, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;

/// Keras's `RepeatVector(n)`: `(batch, features)` → `(batch, n, features)`, each step a copy of
/// the input. Has no weights.
///
/// ```
/// use strata::layers::RepeatVector;
/// let repeat = RepeatVector::new(10);
/// ```
#[derive(Clone, Debug)]
pub struct RepeatVector {
    args: LayerArgs,
    n: usize,
}

impl RepeatVector {
    /// `n` copies (at least 1).
    pub fn new(n: usize) -> Self {
        RepeatVector {
            args: LayerArgs::default(),
            n,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(RepeatVector {
            args: LayerArgs::with_input_shape(config)?,
            n: args::required_size(config, "n", "RepeatVector")?,
        })
    }
}

layer_builders!(RepeatVector, input_shape);

impl Layer for RepeatVector {
    fn class_name(&self) -> &'static str {
        "RepeatVector"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        match input_shape {
            [features] if self.n > 0 => {
                super::check_weight_count(&self.args.name, &[self.n, *features])?;
                Ok(vec![self.n, *features])
            }
            [_] => Err(Error::invalid(
                "n",
                self.n,
                format!("layer '{}' (RepeatVector) needs n of 1 or more", self.args.name),
            )),
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, features)".into(),
                received: keras_shape(input_shape),
            }),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.dims(x);
        let (rows, features) = (shape[0], shape[1]);
        let zeros = graph.constant_with(|t| {
            t.resize_for(&[rows, self.n, features]);
            t.data_mut().fill(0.0);
        });
        // Broadcasting adds the vector to every step; its gradient sums over the steps.
        let vector = graph.reshape(x, &[rows, 1, features])?;
        graph.add(zeros, vector)
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "n": self.n }))
    }
}
