//! `GlobalAveragePooling1D`: the mean over the steps of a sequence, skipping padded steps.

use super::{Layer, LayerArgs};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;

/// Keras's `GlobalAveragePooling1D()`: `(batch, steps, features)` → `(batch, features)`, the
/// mean over the steps. Where the input carries a mask (from `Embedding(mask_zero=True)`,
/// passed on by the layers between), only the real steps are averaged, as in Keras.
///
/// ```
/// use strata::layers::GlobalAveragePooling1D;
/// let pool = GlobalAveragePooling1D::new();
/// ```
#[derive(Clone, Debug, Default)]
pub struct GlobalAveragePooling1D {
    args: LayerArgs,
}

impl GlobalAveragePooling1D {
    /// The layer.
    pub fn new() -> Self {
        Self::default()
    }

    /// The layer from Keras's `get_config()` keys (`data_format` channels-last and `keepdims`
    /// false only: the registry's key check refuses others).
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(GlobalAveragePooling1D {
            args: LayerArgs::with_input_shape(config)?,
        })
    }
}

layer_builders!(GlobalAveragePooling1D, input_shape);

impl Layer for GlobalAveragePooling1D {
    fn class_name(&self) -> &'static str {
        "GlobalAveragePooling1D"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        match input_shape {
            [steps, features] if *steps > 0 && *features > 0 => Ok(vec![*features]),
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, steps, features)".into(),
                received: keras_shape(input_shape),
            }),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let mask = graph.mask(x);
        graph.mean_steps(x, mask)
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({}))
    }
}
