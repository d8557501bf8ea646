//! `ReLU`: Keras's rectifier layer with a ceiling, a slope below the threshold and a threshold
//! (`ReLU(6.0)` is MobileNet's ReLU6).

use super::{Layer, args};
use crate::autograd::{Graph, UnaryOp, Var};
use crate::error::{Error, Result};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;

/// Keras's `layers.ReLU(max_value=None, negative_slope=0.0, threshold=0.0)`: `max_value` at or
/// above it, `x` above `threshold`, `negative_slope·(x − threshold)` at or below it. Has no
/// weights.
///
/// ```
/// use strata::layers::ReLU;
/// let relu6 = ReLU::new().max_value(6.0);
/// ```
#[derive(Clone, Debug)]
pub struct ReLU {
    args: LayerArgs,
    max_value: Option<f32>,
    negative_slope: f32,
    threshold: f32,
}

impl ReLU {
    /// `max(x, 0)`, Keras's defaults.
    #[allow(clippy::new_without_default)]
    pub fn new() -> Self {
        ReLU {
            args: LayerArgs::default(),
            max_value: None,
            negative_slope: 0.0,
            threshold: 0.0,
        }
    }

    /// The largest output (`6.0` for ReLU6). Defaults to none; must not be negative.
    pub fn max_value(mut self, max_value: f32) -> Self {
        self.max_value = Some(max_value);
        self
    }

    /// The slope at or below the threshold. Defaults to 0; must not be negative.
    pub fn negative_slope(mut self, negative_slope: f32) -> Self {
        self.negative_slope = negative_slope;
        self
    }

    /// Where the rectifier turns. Defaults to 0; must not be negative.
    pub fn threshold(mut self, threshold: f32) -> Self {
        self.threshold = threshold;
        self
    }

    /// Keras refuses negative (and NaN) arguments; so does this, naming the layer.
    fn validate(&self) -> Result<()> {
        let arguments = [
            ("max_value", self.max_value.unwrap_or(0.0)),
            ("negative_slope", self.negative_slope),
            ("threshold", self.threshold),
        ];
        for (name, value) in arguments {
            if value.is_nan() || value < 0.0 {
                return Err(Error::invalid(
                    name,
                    value,
                    format!("layer '{}' (ReLU) needs a {name} of 0 or more", self.args.name),
                ));
            }
        }
        Ok(())
    }

    /// The elementwise function: plain `relu` (its own fast loop) for Keras's defaults.
    fn function(&self) -> UnaryOp {
        match (self.max_value, self.negative_slope, self.threshold) {
            (None, 0.0, 0.0) => UnaryOp::Relu,
            (max_value, negative_slope, threshold) => UnaryOp::Rectifier {
                // `+ 0.0` makes a −0 ceiling +0, so every path clips to the same zero.
                max_value: max_value.map_or(f32::INFINITY, |ceiling| ceiling + 0.0),
                negative_slope,
                threshold,
            },
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(ReLU {
            args: LayerArgs::with_input_shape(config)?,
            max_value: args::number(config, "max_value")?,
            negative_slope: args::number(config, "negative_slope")?.unwrap_or(0.0),
            threshold: args::number(config, "threshold")?.unwrap_or(0.0),
        })
    }
}

layer_builders!(ReLU, input_shape);

impl Layer for ReLU {
    fn class_name(&self) -> &'static str {
        "ReLU"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let y = graph.unary(self.function(), x);
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        if self.negative_slope != 0.0 || self.threshold != 0.0 {
            return None;
        }
        Some(match self.max_value {
            None => crate::layers::InferenceRole::Relu,
            Some(max_value) => crate::layers::InferenceRole::CappedRelu { max_value },
        })
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({
            "max_value": self.max_value,
            "negative_slope": self.negative_slope,
            "threshold": self.threshold,
        }))
    }
}
