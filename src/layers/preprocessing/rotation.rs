//! [`RandomRotation`], as `keras.layers.RandomRotation`.

use super::geometric::{Warp, warp_batch};
use super::warp::Transform;
use super::{IntoFactor, Layer, check_after_input, check_data_format, check_range, factor_config};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::layers::common::layer_builders;
use crate::layers::{LayerArgs, args};
use crate::rng::hash_name;
use serde_json::{Value, json};

/// Rotates each training image by its own random angle about its centre, filling the corners
/// by `fill_mode`, as `RandomRotation(factor, fill_mode="reflect", interpolation="bilinear",
/// seed=None, fill_value=0.0)`. Angles are fractions of a full turn: `factor=0.1` draws from
/// [-36°, 36°]; positive turns counter-clockwise. The identity at inference.
///
/// ```
/// use strata::layers::RandomRotation;
/// let rotation = RandomRotation::new(0.1).fill_mode("constant");
/// ```
#[derive(Clone, Debug)]
pub struct RandomRotation {
    args: LayerArgs,
    factor: (f32, f32),
    warp: Warp,
    seed: Option<u64>,
}

warp_builders!(RandomRotation);

impl RandomRotation {
    /// Angles drawn from `factor` turns: `0.1` or `(-0.1, 0.1)`; within [-1, 1].
    pub fn new(factor: impl IntoFactor) -> Self {
        RandomRotation {
            args: LayerArgs::default(),
            factor: factor.into_factor(),
            warp: Warp::default(),
            seed: None,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "RandomRotation")?;
        let factor = factor_config(config, "factor", "RandomRotation")?
            .ok_or_else(|| Error::Data("RandomRotation needs \"factor\"".into()))?;
        let mut layer = RandomRotation::new(factor);
        layer.warp = Warp::from_config(config)?;
        layer.seed = args::seed(config)?;
        Ok(layer)
    }
}

layer_builders!(RandomRotation);

impl Layer for RandomRotation {
    fn class_name(&self) -> &'static str {
        "RandomRotation"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let layer = (self.args.name.as_str(), self.class_name());
        check_range(layer, "factor", self.factor, (-1.0, 1.0), false)?;
        self.warp.checked(layer.0, layer.1)?;
        super::image_shape(&self.args.name, input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        check_after_input(graph, x, &self.args.name, self.class_name())?;
        if !graph.training() || self.factor == (0.0, 0.0) {
            return Ok(x);
        }
        let fill = self.warp.checked(&self.args.name, self.class_name())?;
        let salt = self.seed.unwrap_or_else(|| hash_name(&self.args.name));
        let (lower, upper) = (self.factor.0 * 360.0, self.factor.1 * 360.0);
        warp_batch(graph, x, (&self.args.name, salt), fill, |rng, _, _| Transform {
            rotation: rng.uniform(lower, upper),
            ..Transform::IDENTITY
        })
    }

    fn config(&self) -> Value {
        let mut config = self.args.config(json!({
            "factor": [self.factor.0, self.factor.1],
            "seed": self.seed,
            "data_format": "channels_last",
        }));
        for (key, value) in self.warp.config() {
            config[key] = value;
        }
        config
    }
}
