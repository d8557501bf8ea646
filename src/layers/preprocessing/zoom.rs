//! [`RandomZoom`], as `keras.layers.RandomZoom`.

use super::geometric::{Warp, warp_batch};
use super::warp::Transform;
use super::{IntoFactor, Layer, check_after_input, check_data_format, check_range, factor_config};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::layers::common::layer_builders;
use crate::layers::{LayerArgs, args};
use crate::rng::hash_name;
use serde_json::{Value, json};

/// Zooms each training image about its centre by its own random factors, filling what comes
/// into view by `fill_mode`, as `RandomZoom(height_factor, width_factor=None, fill_mode="reflect",
/// interpolation="bilinear", seed=None, fill_value=0.0)`. A factor `f` reads the source `1 + f`
/// times as far from the centre: positive zooms out, negative zooms in; `0.1` draws `f` from
/// [-0.1, 0.1]. Without a `width_factor` both axes share one draw, keeping the aspect ratio. The
/// identity at inference.
///
/// ```
/// use strata::layers::RandomZoom;
/// let zoom = RandomZoom::new(0.1).width_factor(0.1);
/// ```
#[derive(Clone, Debug)]
pub struct RandomZoom {
    args: LayerArgs,
    height_factor: (f32, f32),
    width_factor: Option<(f32, f32)>,
    warp: Warp,
    seed: Option<u64>,
}

warp_builders!(RandomZoom);

impl RandomZoom {
    /// Zooms drawn from `height_factor` (`0.1` or `(-0.2, 0.1)`, within (-1, 1]) for both axes.
    pub fn new(height_factor: impl IntoFactor) -> Self {
        RandomZoom {
            args: LayerArgs::default(),
            height_factor: height_factor.into_factor(),
            width_factor: None,
            warp: Warp::default(),
            seed: None,
        }
    }

    /// Draws the width's zoom on its own, from `factor` (within (-1, 1]).
    pub fn width_factor(mut self, factor: impl IntoFactor) -> Self {
        self.width_factor = Some(factor.into_factor());
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "RandomZoom")?;
        let height_factor = factor_config(config, "height_factor", "RandomZoom")?
            .ok_or_else(|| Error::Data("RandomZoom needs \"height_factor\"".into()))?;
        let mut layer = RandomZoom::new(height_factor);
        layer.width_factor = factor_config(config, "width_factor", "RandomZoom")?;
        layer.warp = Warp::from_config(config)?;
        layer.seed = args::seed(config)?;
        Ok(layer)
    }
}

layer_builders!(RandomZoom);

impl Layer for RandomZoom {
    fn class_name(&self) -> &'static str {
        "RandomZoom"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let layer = (self.args.name.as_str(), self.class_name());
        check_range(layer, "height_factor", self.height_factor, (-1.0, 1.0), true)?;
        if let Some(width_factor) = self.width_factor {
            check_range(layer, "width_factor", width_factor, (-1.0, 1.0), true)?;
        }
        self.warp.checked(layer.0, layer.1)?;
        super::image_shape(&self.args.name, input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        check_after_input(graph, x, &self.args.name, self.class_name())?;
        let still = |factor: Option<(f32, f32)>| factor.is_none_or(|f| f == (0.0, 0.0));
        if !graph.training() || (still(Some(self.height_factor)) && still(self.width_factor)) {
            return Ok(x);
        }
        let fill = self.warp.checked(&self.args.name, self.class_name())?;
        let salt = self.seed.unwrap_or_else(|| hash_name(&self.args.name));
        let (height_factor, width_factor) = (self.height_factor, self.width_factor);
        warp_batch(graph, x, (&self.args.name, salt), fill, |rng, _, _| {
            let height_zoom = 1.0 + rng.uniform(height_factor.0, height_factor.1);
            let width_zoom = width_factor.map_or(height_zoom, |(lower, upper)| 1.0 + rng.uniform(lower, upper));
            Transform {
                height_zoom,
                width_zoom,
                ..Transform::IDENTITY
            }
        })
    }

    fn config(&self) -> Value {
        let mut config = self.args.config(json!({
            "height_factor": [self.height_factor.0, self.height_factor.1],
            "width_factor": self.width_factor.map(|(lower, upper)| [lower, upper]),
            "seed": self.seed,
            "data_format": "channels_last",
        }));
        for (key, value) in self.warp.config() {
            config[key] = value;
        }
        config
    }
}
