//! `Reshape`: gives each sample a new shape with the same number of values.

use super::{Layer, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::tensor::{Dims, budgeted_numel, checked_numel};

/// Reshapes each sample to `target_shape` (without the batch axis), as Keras's
/// `Reshape(target_shape)`; row-major order is kept. Has no weights.
#[derive(Clone, Debug)]
pub struct Reshape {
    args: LayerArgs,
    target_shape: Vec<usize>,
}

impl Reshape {
    /// Reshapes samples to `target_shape`, e.g. `&[28, 28, 1]`.
    pub fn new(target_shape: &[usize]) -> Self {
        Reshape {
            args: LayerArgs::default(),
            target_shape: target_shape.to_vec(),
        }
    }
}

impl Reshape {
    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let target = args::shape_list(config, "target_shape")?
            .ok_or_else(|| Error::Data("Reshape needs \"target_shape\"".into()))?;
        Ok(Reshape {
            args: LayerArgs::with_input_shape(config)?,
            ..Reshape::new(&target)
        })
    }
}

layer_builders!(Reshape, input_shape);

impl Layer for Reshape {
    fn class_name(&self) -> &'static str {
        "Reshape"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        // Checked: [2^63 + 392, 2] holds 784 values in wrapping arithmetic.
        let target = budgeted_numel(
            || {
                format!(
                    "layer '{}' (Reshape) to {}",
                    self.args.name,
                    keras_shape(&self.target_shape)
                )
            },
            &self.target_shape,
        )?;
        if checked_numel(input_shape) != Some(target) {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!(
                    "{target} values per sample to reshape to {}",
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

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({"target_shape": self.target_shape}))
    }
}
