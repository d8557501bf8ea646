//! [`RandomTranslation`], as `keras.layers.RandomTranslation`.

use super::geometric::{Warp, warp_batch};
use super::warp::Transform;
use super::{IntoFactor, Layer, check_after_input, check_data_format, check_range, factor_config};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::layers::common::layer_builders;
use crate::layers::{LayerArgs, args};
use crate::rng::hash_name;
use serde_json::{Value, json};

/// Shifts each training image by its own random offset, filling what moves in by `fill_mode`, as
/// `RandomTranslation(height_factor, width_factor, fill_mode="reflect", interpolation="bilinear",
/// seed=None, fill_value=0.0)`. Offsets are fractions of the height and width: `0.1` draws from
/// [-10 %, 10 %]; positive moves the content down (height) and right (width). The identity at
/// inference.
///
/// ```
/// use strata::layers::RandomTranslation;
/// let translation = RandomTranslation::new(0.1, (-0.2, 0.2));
/// ```
#[derive(Clone, Debug)]
pub struct RandomTranslation {
    args: LayerArgs,
    height_factor: (f32, f32),
    width_factor: (f32, f32),
    warp: Warp,
    seed: Option<u64>,
}

warp_builders!(RandomTranslation);

impl RandomTranslation {
    /// Offsets drawn from `height_factor` times the height and `width_factor` times the width:
    /// each `0.1` or `(-0.1, 0.2)`, within [-1, 1].
    pub fn new(height_factor: impl IntoFactor, width_factor: impl IntoFactor) -> Self {
        RandomTranslation {
            args: LayerArgs::default(),
            height_factor: height_factor.into_factor(),
            width_factor: width_factor.into_factor(),
            warp: Warp::default(),
            seed: None,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "RandomTranslation")?;
        let factor = |key: &str| {
            factor_config(config, key, "RandomTranslation")?
                .ok_or_else(|| Error::Data(format!("RandomTranslation needs \"{key}\"")))
        };
        let mut layer = RandomTranslation::new(factor("height_factor")?, factor("width_factor")?);
        layer.warp = Warp::from_config(config)?;
        layer.seed = args::seed(config)?;
        Ok(layer)
    }
}

layer_builders!(RandomTranslation);

impl Layer for RandomTranslation {
    fn class_name(&self) -> &'static str {
        "RandomTranslation"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let layer = (self.args.name.as_str(), self.class_name());
        check_range(layer, "height_factor", self.height_factor, (-1.0, 1.0), false)?;
        check_range(layer, "width_factor", self.width_factor, (-1.0, 1.0), false)?;
        self.warp.checked(layer.0, layer.1)?;
        super::image_shape(&self.args.name, input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        check_after_input(graph, x, &self.args.name, self.class_name())?;
        if !graph.training() || (self.height_factor, self.width_factor) == ((0.0, 0.0), (0.0, 0.0)) {
            return Ok(x);
        }
        let fill = self.warp.checked(&self.args.name, self.class_name())?;
        let salt = self.seed.unwrap_or_else(|| hash_name(&self.args.name));
        let ((top, bottom), (left, right)) = (self.height_factor, self.width_factor);
        warp_batch(graph, x, (&self.args.name, salt), fill, |rng, height, width| {
            Transform {
                height_shift: rng.uniform(top, bottom) * height as f32,
                width_shift: rng.uniform(left, right) * width as f32,
                ..Transform::IDENTITY
            }
        })
    }

    fn config(&self) -> Value {
        let mut config = self.args.config(json!({
            "height_factor": [self.height_factor.0, self.height_factor.1],
            "width_factor": [self.width_factor.0, self.width_factor.1],
            "seed": self.seed,
            "data_format": "channels_last",
        }));
        for (key, value) in self.warp.config() {
            config[key] = value;
        }
        config
    }
}
