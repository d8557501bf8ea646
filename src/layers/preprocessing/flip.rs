//! [`RandomFlip`], as `keras.layers.RandomFlip`.

use super::geometric::warp_batch;
use super::warp::{FillMode, Transform};
use super::{Layer, bad_argument, check_after_input, check_data_format, seed_config, string_config};
use crate::autograd::{Graph, Var};
use crate::error::Result;
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
    name: String,
    mode: String,
    seed: Option<u64>,
}

impl RandomFlip {
    /// Flips along `mode`: `"horizontal"`, `"vertical"` or `"horizontal_and_vertical"` (Keras's
    /// default).
    pub fn new(mode: &str) -> Self {
        RandomFlip {
            name: String::new(),
            mode: mode.to_string(),
            seed: None,
        }
    }

    /// Seeds this layer's draws (mixed with the model's per-step seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Gives the layer a name instead of the automatic one.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "RandomFlip")?;
        let mut layer = RandomFlip::new(&string_config(config, "mode", "horizontal_and_vertical")?);
        layer.seed = seed_config(config)?;
        Ok(layer)
    }

    /// (left–right, top–bottom) for the mode, or an error naming the layer.
    fn axes(&self) -> Result<(bool, bool)> {
        match self.mode.as_str() {
            "horizontal" => Ok((true, false)),
            "vertical" => Ok((false, true)),
            "horizontal_and_vertical" => Ok((true, true)),
            _ => Err(bad_argument(
                &self.name,
                "RandomFlip",
                "mode",
                &self.mode,
                &format!("must be one of {}", MODES.join(", ")),
            )),
        }
    }
}

impl Layer for RandomFlip {
    fn class_name(&self) -> &'static str {
        "RandomFlip"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.axes()?;
        super::image_shape(&self.name, input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        check_after_input(graph, x, &self.name, self.class_name())?;
        if !graph.training() {
            return Ok(x);
        }
        let (horizontal, vertical) = self.axes()?;
        let salt = self.seed.unwrap_or_else(|| hash_name(&self.name));
        // A mirror maps pixel centres onto pixel centres, so the warp copies them exactly.
        let fill = (FillMode::Nearest, 0.0);
        warp_batch(graph, x, (&self.name, salt), fill, |rng, _, _| {
            let flip = rng.uniform(0.0, 1.0) <= 0.5;
            Transform {
                horizontal_flip: flip && horizontal,
                vertical_flip: flip && vertical,
                ..Transform::IDENTITY
            }
        })
    }

    fn config(&self) -> Value {
        json!({"name": self.name, "mode": self.mode, "seed": self.seed, "data_format": "channels_last"})
    }
}
