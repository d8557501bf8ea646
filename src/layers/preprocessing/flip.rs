//! [`RandomFlip`], as `keras.layers.RandomFlip`.

use super::geometric::warp_batch;
use super::warp::{FillMode, Transform};
use super::{Layer, bad_argument, check_after_input, check_data_format};
use crate::autograd::{Graph, Var};
use crate::error::Result;
use crate::layers::common::layer_builders;
use crate::layers::{LayerArgs, args};
use crate::rng::hash_name;
use serde_json::{Value, json};

/// The `mode` names Keras accepts.
const MODES: &[&str] = &["horizontal", "vertical", "horizontal_and_vertical"];

/// Mirrors each training image with probability 1/2, as `RandomFlip(mode="horizontal_and_vertical",
/// seed=None)`: `"horizontal"` left–right, `"vertical"` top–bottom, and
/// `"horizontal_and_vertical"` both at once on one coin, as Keras does (for independent flips,
/// stack a horizontal and a vertical layer). The identity at inference.
///
/// ```
/// use strata::layers::RandomFlip;
/// let flip = RandomFlip::new("horizontal");
/// ```
#[derive(Clone, Debug)]
pub struct RandomFlip {
    args: LayerArgs,
    mode: String,
    seed: Option<u64>,
}

impl RandomFlip {
    /// Flips along `mode`: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"` (Keras's
    /// default).
    pub fn new(mode: &str) -> Self {
        RandomFlip {
            args: LayerArgs::default(),
            mode: mode.to_string(),
            seed: None,
        }
    }

    /// Seeds this layer's draws (mixed with the model's per-step seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "RandomFlip")?;
        let mut layer = RandomFlip::new(&args::string(config, "mode", "horizontal_and_vertical")?);
        layer.seed = args::seed(config)?;
        Ok(layer)
    }

    /// (left–right, top–bottom) for the mode, or an error naming the layer.
    fn axes(&self) -> Result<(bool, bool)> {
        match self.mode.as_str() {
            "horizontal" => Ok((true, false)),
            "vertical" => Ok((false, true)),
            "horizontal_and_vertical" => Ok((true, true)),
            _ => Err(bad_argument(
                &self.args.name,
                "RandomFlip",
                "mode",
                &self.mode,
                &format!("must be one of {}", MODES.join(", ")),
            )),
        }
    }
}

layer_builders!(RandomFlip);

impl Layer for RandomFlip {
    fn class_name(&self) -> &'static str {
        "RandomFlip"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.axes()?;
        super::image_shape(&self.args.name, input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        check_after_input(graph, x, &self.args.name, self.class_name())?;
        if !graph.training() {
            return Ok(x);
        }
        let (horizontal, vertical) = self.axes()?;
        let salt = self.seed.unwrap_or_else(|| hash_name(&self.args.name));
        // A mirror maps pixel centres onto pixel centres, so the warp copies them exactly.
        let fill = (FillMode::Nearest, 0.0);
        warp_batch(graph, x, (&self.args.name, salt), fill, |rng, _, _| {
            let flip = rng.uniform(0.0, 1.0) <= 0.5;
            Transform {
                horizontal_flip: flip && horizontal,
                vertical_flip: flip && vertical,
                ..Transform::IDENTITY
            }
        })
    }

    fn config(&self) -> Value {
        self.args
            .config(json!({"mode": self.mode, "seed": self.seed, "data_format": "channels_last"}))
    }
}
