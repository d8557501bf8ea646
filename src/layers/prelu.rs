//! `PReLU`: a rectifier whose slope below zero is learned, per value or shared along axes.

use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// Keras's `PReLU(alpha_initializer="zeros", shared_axes=None)`: `x` for x ≥ 0, `alpha·x`
/// below, with `alpha` a weight shaped like one sample, of size 1 along `shared_axes` (axes
/// counted with the batch, as Keras counts: `shared_axes=[1, 2]` shares one slope per channel
/// of an image).
///
/// ```
/// use strata::layers::PReLU;
/// let per_channel = PReLU::new().shared_axes(&[1, 2]);
/// ```
#[derive(Clone, Debug)]
pub struct PReLU {
    args: LayerArgs,
    alpha_initializer: Initializer,
    shared_axes: Vec<usize>,
    alpha: Option<ParamId>,
}

impl PReLU {
    /// Slopes starting at zero, one per value of a sample.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        PReLU {
            args: LayerArgs::default(),
            alpha_initializer: Initializer::Zeros,
            shared_axes: Vec::new(),
            alpha: None,
        }
    }

    /// Axes (1 is the first after the batch) along which one slope is shared.
    pub fn shared_axes(mut self, axes: &[usize]) -> Self {
        self.shared_axes = axes.to_vec();
        self
    }

    /// How the slopes start. Defaults to zeros (a ReLU).
    pub fn alpha_initializer(mut self, initializer: Initializer) -> Self {
        self.alpha_initializer = initializer;
        self
    }

    /// The layer from Keras's `get_config()` keys (`shared_axes` an axis or a list of them).
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let shared_axes = match config.get("shared_axes") {
            None | Some(serde_json::Value::Null) => Vec::new(),
            Some(axis) if axis.is_u64() => vec![axis.as_u64().unwrap_or(0) as usize],
            Some(_) => args::shape_list(config, "shared_axes")?.unwrap_or_default(),
        };
        Ok(PReLU {
            args: LayerArgs::with_input_shape(config)?,
            alpha_initializer: args::initializer(config, "alpha_initializer")?.unwrap_or(Initializer::Zeros),
            shared_axes,
            alpha: None,
        })
    }

    /// The slopes' shape for a sample of `input_shape`, or the error naming the layer.
    fn alpha_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let mut shape = input_shape.to_vec();
        for &axis in &self.shared_axes {
            if axis == 0 || axis > shape.len() {
                return Err(Error::LayerShape {
                    layer: self.args.name.clone(),
                    expected: format!("an input with axis {axis} (shared_axes counts from 1, after the batch)"),
                    received: keras_shape(input_shape),
                });
            }
            shape[axis - 1] = 1;
        }
        super::check_weight_count(&self.args.name, &shape)?;
        Ok(shape)
    }
}

layer_builders!(PReLU, input_shape);

impl Layer for PReLU {
    fn class_name(&self) -> &'static str {
        "PReLU"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.alpha_shape(input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        Ok(vec![ParamShape::new(self.alpha_shape(input)?, self.args.trainable)])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        let shape = self.alpha_shape(input)?;
        let alpha = self.alpha_initializer.initialize(&shape, rng);
        self.alpha = Some(params.add(format!("{}/alpha", self.args.name), alpha, self.args.trainable));
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let id = self
            .alpha
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.args.name)))?;
        let alpha = graph.param(id);
        // relu(x) + alpha·min(x, 0), with min(x, 0) = x − relu(x).
        let positive = graph.relu(x);
        let negative = graph.sub(x, positive)?;
        let scaled = graph.mul(negative, alpha)?;
        let y = graph.add(positive, scaled)?;
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn params(&self) -> Vec<ParamId> {
        self.alpha.into_iter().collect()
    }

    fn config(&self) -> serde_json::Value {
        let shared_axes = match self.shared_axes.is_empty() {
            true => serde_json::Value::Null,
            false => serde_json::json!(self.shared_axes),
        };
        self.args.config(serde_json::json!({
            "alpha_initializer": self.alpha_initializer.name(),
            "shared_axes": shared_axes,
        }))
    }
}
