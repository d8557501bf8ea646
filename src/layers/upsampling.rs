//! `UpSampling2D`: repeats the rows and columns of channels-last images (a U-Net's or a
//! feature pyramid's decoder).

use super::preprocessing::check_data_format;
use super::{IntoPair, Layer, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use serde_json::{Value, json};

/// Keras's `UpSampling2D(size=(2, 2), interpolation="nearest")`: each pixel becomes a
/// `size.0 × size.1` block of copies, or with `"bilinear"`, the image is resized by bilinear
/// interpolation as Keras 3 does it (`ops.image.resize`: half-pixel centres, no
/// antialiasing). `"bicubic"`, `"lanczos3"`, `"lanczos5"` are refused when the model is built.
/// Channels-last; no weights.
#[derive(Clone, Debug)]
pub struct UpSampling2D {
    args: LayerArgs,
    size: (usize, usize),
    interpolation: String,
}

impl UpSampling2D {
    /// Repeats each row `size.0` and each column `size.1` times (`2` or `(2, 2)`).
    pub fn new(size: impl IntoPair) -> Self {
        UpSampling2D {
            args: LayerArgs::default(),
            size: size.into_pair(),
            interpolation: "nearest".into(),
        }
    }

    /// How new pixels are made: `"nearest"` (the default) or `"bilinear"`.
    pub fn interpolation(mut self, interpolation: &str) -> Self {
        self.interpolation = interpolation.to_string();
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "UpSampling2D")?;
        let mut layer = UpSampling2D::new(args::pair(config, "size")?.unwrap_or((2, 2)));
        layer.args = LayerArgs::with_input_shape(config)?;
        layer.interpolation = args::string(config, "interpolation", "nearest")?;
        Ok(layer)
    }
}

layer_builders!(UpSampling2D, input_shape);

impl Layer for UpSampling2D {
    fn class_name(&self) -> &'static str {
        "UpSampling2D"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let name = &self.args.name;
        if !matches!(self.interpolation.as_str(), "nearest" | "bilinear") {
            return Err(Error::invalid(
                "interpolation",
                &self.interpolation,
                format!("layer '{name}' (UpSampling2D): only \"nearest\" and \"bilinear\" are implemented"),
            ));
        }
        if self.size.0 == 0 || self.size.1 == 0 {
            return Err(Error::invalid(
                "size",
                format!("{:?}", self.size),
                format!("layer '{name}' (UpSampling2D) needs sizes of 1 or more"),
            ));
        }
        let [h, w, c] = <[usize; 3]>::try_from(input_shape).map_err(|_| Error::LayerShape {
            layer: name.clone(),
            expected: "(None, height, width, channels)".into(),
            received: keras_shape(input_shape),
        })?;
        match (h.checked_mul(self.size.0), w.checked_mul(self.size.1)) {
            (Some(h), Some(w)) => Ok(vec![h, w, c]),
            _ => Err(Error::invalid(
                "size",
                format!("{:?}", self.size),
                format!("layer '{name}' (UpSampling2D): the upsampled image's size overflows"),
            )),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        if self.interpolation == "bilinear" {
            graph.upsample2d_bilinear(x, self.size)
        } else {
            graph.upsample2d(x, self.size)
        }
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "size": [self.size.0, self.size.1],
            "data_format": "channels_last",
            "interpolation": self.interpolation,
        }))
    }
}
