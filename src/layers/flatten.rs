//! `Flatten`: one sample's values as a vector, in row-major (channels-last) order.

use super::Layer;
use crate::autograd::{Graph, ParamStore, Var};
use crate::error::{Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;
use crate::tensor::budgeted_numel;

/// Flattens each sample to one axis: `(N, 28, 28)` → `(N, 784)`. Has no weights.
#[derive(Clone, Debug, Default)]
pub struct Flatten {
    args: LayerArgs,
    width: usize,
}

impl Flatten {
    /// A Flatten layer.
    pub fn new() -> Self {
        Self::default()
    }
}

impl Flatten {
    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Flatten {
            args: LayerArgs::with_input_shape(config)?,
            ..Flatten::new()
        })
    }
}

layer_builders!(Flatten, input_shape);

impl Layer for Flatten {
    fn class_name(&self) -> &'static str {
        "Flatten"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let what = || format!("layer '{}' (Flatten) of {}", self.args.name, keras_shape(input_shape));
        Ok(vec![budgeted_numel(what, input_shape)?])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], _: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, "Flatten", input_shapes)?;
        self.width = self.output_shape(input_shape)?[0];
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let rows = graph.shape(x).first().copied().unwrap_or(0);
        if graph.shape(x).len() == 2 {
            return Ok(x);
        }
        graph.reshape(x, &[rows, self.width])
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({ "data_format": "channels_last" }))
    }
}
