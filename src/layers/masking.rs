//! `Masking`: marks the padded steps of a sequence of feature vectors, so recurrent layers and
//! pooling skip them (as `Embedding(mask_zero=True)` does for token ids).

use super::{Layer, LayerArgs, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;
use crate::tensor::Tensor;

/// Keras's `Masking(mask_value=0.0)`: over `(batch, steps, features)`, a step whose features
/// all equal `mask_value` is masked: its output is zeroed and the layers after it that read
/// masks (`LSTM`, `GRU`, `SimpleRNN`, `GlobalAveragePooling1D`, attention) skip it. Has no
/// weights.
///
/// ```
/// use strata::layers::Masking;
/// let masking = Masking::new(0.0);
/// ```
#[derive(Clone, Debug)]
pub struct Masking {
    args: LayerArgs,
    mask_value: f32,
}

impl Masking {
    /// Masks the steps equal to `mask_value` in every feature.
    pub fn new(mask_value: f32) -> Self {
        Masking {
            args: LayerArgs::default(),
            mask_value,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Masking {
            args: LayerArgs::with_input_shape(config)?,
            mask_value: args::number(config, "mask_value")?.unwrap_or(0.0),
        })
    }
}

layer_builders!(Masking, input_shape);

impl Layer for Masking {
    fn class_name(&self) -> &'static str {
        "Masking"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        match input_shape {
            [steps, features] if *steps > 0 && *features > 0 => Ok(input_shape.to_vec()),
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, steps, features)".into(),
                received: keras_shape(input_shape),
            }),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.dims(x);
        let (rows, steps, features) = (shape[0], shape[1], shape[2]);
        // The mask depends on the values only (no gradient flows through it).
        let kept: Vec<f32> = graph
            .value(x)
            .data()
            .chunks(features.max(1))
            .map(|step| f32::from(step.iter().any(|&v| v != self.mask_value)))
            .collect();
        let kept = Tensor::from_vec(vec![rows, steps, 1], kept)?;
        let kept = graph.constant(&kept);
        let y = graph.mul(x, kept)?;
        let mask = graph.reshape(kept, &[rows, steps])?;
        graph.set_mask(y, mask);
        Ok(y)
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "mask_value": self.mask_value }))
    }
}
