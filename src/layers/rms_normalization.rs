//! `RMSNormalization`: each sample's last axis divided by its root mean square, then scaled
//! (Keras 3's layer; the normalization of T5, Llama and most recent language models).

use super::normalization::{last_axis_only, normalized_shape};
use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::Result;
use crate::layers::common::layer_builders;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Keras's `RMSNormalization(axis=-1, epsilon=1e-06)`: `x / √(mean(x²) + epsilon) · scale`
/// over the last axis, `scale` (one per feature) learned, starting at 1. No offset; the same in
/// training and inference.
///
/// ```
/// use strata::layers::RMSNormalization;
/// let norm = RMSNormalization::new().epsilon(1e-5); // Llama's epsilon
/// ```
#[derive(Clone, Debug)]
pub struct RMSNormalization {
    args: LayerArgs,
    /// Keras's `axis`: -1, or the last axis counted with the batch.
    axis: i64,
    epsilon: f32,
    scale: Option<ParamId>,
}

impl Default for RMSNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl RMSNormalization {
    /// RMS normalization with Keras's defaults.
    pub fn new() -> Self {
        RMSNormalization {
            args: LayerArgs::default(),
            axis: -1,
            epsilon: 1e-6,
            scale: None,
        }
    }

    /// Added to the mean square before its square root. Defaults to 1e-6.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(RMSNormalization {
            args: LayerArgs::with_input_shape(config)?,
            axis: last_axis_only("RMSNormalization", config)?,
            ..RMSNormalization::new().epsilon(args::number(config, "epsilon")?.unwrap_or(1e-6))
        })
    }
}

layer_builders!(RMSNormalization, input_shape);

impl Layer for RMSNormalization {
    fn class_name(&self) -> &'static str {
        "RMSNormalization"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        normalized_shape(&self.args.name, self.axis, self.epsilon, input_shape)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let features = input_shape[input_shape.len() - 1];
        Ok(vec![ParamShape::new(vec![features], self.args.trainable)])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let features = input_shape[input_shape.len() - 1];
        let name = format!("{}/scale", self.args.name);
        self.scale = Some(params.add(name, Tensor::ones(&[features]), self.args.trainable));
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.shape(x).to_vec();
        let features = *shape.last().unwrap_or(&1);
        let rows = shape.iter().product::<usize>() / features.max(1);
        let flat = graph.reshape(x, &[rows, features])?;
        // The mean square of each row as a product with a column of 1/features.
        let squares = graph.square(flat);
        let column = graph.constant_with(|t| {
            t.resize_for(&[features, 1]);
            t.data_mut().fill(1.0 / features as f32);
        });
        let mean_square = graph.matmul(squares, column)?;
        let shifted = graph.affine(mean_square, 1.0, self.epsilon);
        let root = graph.unary(crate::autograd::UnaryOp::Sqrt, shifted);
        let normalized = graph.div(flat, root)?;
        let y = match self.scale {
            Some(id) => {
                let scale = graph.param(id);
                graph.mul(normalized, scale)?
            }
            None => normalized,
        };
        // Keras's RMSNormalization does not support masking: the mask stops here.
        graph.reshape(y, &shape)
    }

    fn params(&self) -> Vec<ParamId> {
        self.scale.into_iter().collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({
            "axis": self.axis,
            "epsilon": self.epsilon,
        }))
    }
}
