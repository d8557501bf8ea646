//! `Rescaling`: `x·scale + offset`, the input scaling of the Keras Applications models
//! (`1/127.5` and `−1` for MobileNet, per-channel values for EfficientNet's normalization).

use super::Layer;
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::tensor::Tensor;
use serde_json::{Value, json};

/// A `scale` or `offset`: one number, or one per channel (the last axis), as Keras accepts.
#[derive(Clone, Debug, PartialEq)]
pub enum Rescale {
    /// The same number for every value.
    All(f32),
    /// One number per channel.
    PerChannel(Vec<f32>),
}

impl From<f32> for Rescale {
    fn from(value: f32) -> Self {
        Rescale::All(value)
    }
}

impl From<Vec<f32>> for Rescale {
    fn from(values: Vec<f32>) -> Self {
        Rescale::PerChannel(values)
    }
}

impl From<&[f32]> for Rescale {
    fn from(values: &[f32]) -> Self {
        Rescale::PerChannel(values.to_vec())
    }
}

impl Rescale {
    /// The values as a tensor that broadcasts against the input's last axis.
    fn tensor(&self) -> Tensor {
        match self {
            Rescale::All(v) => Tensor::from_slice(&[*v]),
            Rescale::PerChannel(values) => Tensor::from_slice(values),
        }
    }

    fn json(&self) -> Value {
        match self {
            Rescale::All(v) => json!(v),
            Rescale::PerChannel(values) => json!(values),
        }
    }

    /// A number, a list of numbers, or a serialized NumPy array (`{"class_name": "__numpy__",
    /// "config": {"value": [...]}}`) under `key`; `default` when absent.
    fn from_config(config: &Value, key: &str, default: f32) -> Result<Self> {
        let bad = |value: &Value| {
            Error::Data(format!(
                "Rescaling's \"{key}\" must be a number or a list of numbers, got {value}"
            ))
        };
        let list = |value: &Value| -> Result<Vec<f32>> {
            let items = value.as_array().ok_or_else(|| bad(value))?;
            items
                .iter()
                .map(|v| v.as_f64().map(|v| v as f32).ok_or_else(|| bad(value)))
                .collect()
        };
        match config.get(key) {
            None | Some(Value::Null) => Ok(Rescale::All(default)),
            Some(Value::Number(n)) => n
                .as_f64()
                .map(|v| Rescale::All(v as f32))
                .ok_or_else(|| bad(&config[key])),
            Some(value @ Value::Array(_)) => list(value).map(Rescale::PerChannel),
            Some(value @ Value::Object(map)) => match map.get("config").and_then(|c| c.get("value")) {
                Some(Value::Number(n)) => n.as_f64().map(|v| Rescale::All(v as f32)).ok_or_else(|| bad(value)),
                Some(inner) => list(inner).map(Rescale::PerChannel),
                None => Err(bad(value)),
            },
            Some(other) => Err(bad(other)),
        }
    }
}

/// Keras's `Rescaling(scale, offset=0.0)`: `x·scale + offset`, each one number or one per
/// channel (the last axis). No weights.
///
/// ```
/// use strata::layers::Rescaling;
/// let to_unit_range = Rescaling::new(1.0 / 127.5).offset(-1.0);
/// ```
#[derive(Clone, Debug)]
pub struct Rescaling {
    args: LayerArgs,
    scale: Rescale,
    offset: Rescale,
    /// `scale` and `offset` as tensors, made once so a forward pass allocates nothing.
    tensors: (Tensor, Tensor),
}

impl Rescaling {
    /// Multiplies by `scale` (a number, or a list with one per channel).
    pub fn new(scale: impl Into<Rescale>) -> Self {
        Rescaling::with(LayerArgs::default(), scale.into(), Rescale::All(0.0))
    }

    fn with(args: LayerArgs, scale: Rescale, offset: Rescale) -> Self {
        let tensors = (scale.tensor(), offset.tensor());
        Rescaling {
            args,
            scale,
            offset,
            tensors,
        }
    }

    /// Adds `offset` after scaling (a number, or one per channel). Defaults to 0.
    pub fn offset(self, offset: impl Into<Rescale>) -> Self {
        Rescaling::with(self.args, self.scale, offset.into())
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        Ok(Rescaling::with(
            LayerArgs::with_input_shape(config)?,
            Rescale::from_config(config, "scale", 1.0)?,
            Rescale::from_config(config, "offset", 0.0)?,
        ))
    }
}

layer_builders!(Rescaling, input_shape);

impl Layer for Rescaling {
    fn class_name(&self) -> &'static str {
        "Rescaling"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let channels = input_shape.last().copied();
        for (name, values) in [("scale", &self.scale), ("offset", &self.offset)] {
            if let Rescale::PerChannel(values) = values
                && values.len() != 1
                && Some(values.len()) != channels
            {
                return Err(Error::LayerShape {
                    layer: self.args.name.clone(),
                    expected: format!("(None, ..., {}) for a {name} of {} values", values.len(), values.len()),
                    received: keras_shape(input_shape),
                });
            }
        }
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let scaled = match self.scale {
            Rescale::All(1.0) => x,
            Rescale::All(factor) => graph.scale(x, factor),
            Rescale::PerChannel(_) => {
                let scale = graph.constant(&self.tensors.0);
                graph.mul(x, scale)?
            }
        };
        if self.offset == Rescale::All(0.0) {
            return Ok(scaled);
        }
        let offset = graph.constant(&self.tensors.1);
        graph.add(scaled, offset)
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "scale": self.scale.json(),
            "offset": self.offset.json(),
        }))
    }
}
