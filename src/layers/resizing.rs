//! `Resizing`: channels-last images resized to a fixed size (a model's first layer, so that it
//! takes images of any size), bilinear or nearest-neighbour as Keras computes it.

use super::preprocessing::{bad_argument, check_data_format};
use super::{Layer, args};
use crate::autograd::{Graph, Sides, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use serde_json::{Value, json};

/// Keras's `Resizing(height, width, interpolation="bilinear", crop_to_aspect_ratio=False)`:
/// each image resized to `height` × `width` with TensorFlow's half-pixel centres and no
/// antialiasing, `"bilinear"` or `"nearest"`; with `crop_to_aspect_ratio`, the largest centred
/// window of the target's aspect ratio is resized instead, so nothing is stretched. Gradients
/// pass through, so it may sit anywhere in a model. Keras's `pad_to_aspect_ratio`, `antialias`
/// and the bicubic, Lanczos and area interpolations are refused when the model is built.
///
/// ```
/// use strata::layers::Resizing;
/// let resize = Resizing::new(224, 224).interpolation("nearest");
/// ```
#[derive(Clone, Debug)]
pub struct Resizing {
    args: LayerArgs,
    height: usize,
    width: usize,
    interpolation: String,
    crop_to_aspect_ratio: bool,
    /// Keras settings kept to be refused with the layer's name when it is built.
    pad_to_aspect_ratio: bool,
    antialias: bool,
}

impl Resizing {
    /// Resizes images to `height` × `width` (both at least 1), bilinear.
    pub fn new(height: usize, width: usize) -> Self {
        Resizing {
            args: LayerArgs::default(),
            height,
            width,
            interpolation: "bilinear".into(),
            crop_to_aspect_ratio: false,
            pad_to_aspect_ratio: false,
            antialias: false,
        }
    }

    /// `"bilinear"` (the default) or `"nearest"`.
    pub fn interpolation(mut self, interpolation: &str) -> Self {
        self.interpolation = interpolation.to_string();
        self
    }

    /// Resizes the largest centred window of the target's aspect ratio instead of the whole
    /// image.
    pub fn crop_to_aspect_ratio(mut self, crop: bool) -> Self {
        self.crop_to_aspect_ratio = crop;
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "Resizing")?;
        let fill_mode = args::string(config, "fill_mode", "constant")?;
        if fill_mode != "constant" {
            return Err(Error::invalid(
                "fill_mode",
                fill_mode,
                "Resizing: only \"constant\" exists",
            ));
        }
        let mut layer = Resizing::new(
            args::required_size(config, "height", "Resizing")?,
            args::required_size(config, "width", "Resizing")?,
        );
        layer.args = LayerArgs::with_input_shape(config)?;
        layer.interpolation = args::string(config, "interpolation", "bilinear")?;
        layer.crop_to_aspect_ratio = args::flag(config, "crop_to_aspect_ratio", false)?;
        layer.pad_to_aspect_ratio = args::flag(config, "pad_to_aspect_ratio", false)?;
        layer.antialias = args::flag(config, "antialias", false)?;
        Ok(layer)
    }
}

layer_builders!(Resizing, input_shape);

impl Layer for Resizing {
    fn class_name(&self) -> &'static str {
        "Resizing"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let name = &self.args.name;
        let refuse = |argument: &str, value: &dyn std::fmt::Display, why: &str| {
            Err(bad_argument(name, "Resizing", argument, value, why))
        };
        if !matches!(self.interpolation.as_str(), "bilinear" | "nearest") {
            return refuse(
                "interpolation",
                &self.interpolation,
                "only \"bilinear\" and \"nearest\" are implemented",
            );
        }
        if self.pad_to_aspect_ratio {
            return refuse(
                "pad_to_aspect_ratio",
                &true,
                "padding to the aspect ratio is not implemented",
            );
        }
        if self.antialias {
            return refuse("antialias", &true, "antialiased resizing is not implemented");
        }
        for (argument, value) in [("height", self.height), ("width", self.width)] {
            if value == 0 {
                return refuse(argument, &value, "must be at least 1");
            }
        }
        let [_, _, channels] = image_dims(name, input_shape)?;
        Ok(vec![self.height, self.width, channels])
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let [height, width, _] = image_dims(&self.args.name, &graph.shape(x)[1..])?;
        let x = match self.crop_to_aspect_ratio {
            true => crop_if_needed(graph, x, aspect_window((height, width), (self.height, self.width)))?,
            false => x,
        };
        if graph.shape(x)[1..3] == [self.height, self.width] {
            return Ok(x); // Resizing to the same size reads every pixel where it is.
        }
        graph.resize2d(x, (self.height, self.width), self.interpolation == "bilinear")
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "height": self.height,
            "width": self.width,
            "interpolation": self.interpolation,
            "crop_to_aspect_ratio": self.crop_to_aspect_ratio,
            "pad_to_aspect_ratio": self.pad_to_aspect_ratio,
            "fill_mode": "constant",
            "fill_value": 0.0,
            "antialias": self.antialias,
            "data_format": "channels_last",
        }))
    }
}

/// `(height, width, channels)` of channels-last images, or the error naming the layer.
pub(super) fn image_dims(layer: &str, input_shape: &[usize]) -> Result<[usize; 3]> {
    match *input_shape {
        [height, width, channels] if height > 0 && width > 0 => Ok([height, width, channels]),
        _ => Err(Error::LayerShape {
            layer: layer.to_string(),
            expected: "(None, height, width, channels)".into(),
            received: keras_shape(input_shape),
        }),
    }
}

/// The largest centred window of an `image` (rows, columns) with the aspect ratio of `target`,
/// as Keras's `smart_resize` and `crop_to_aspect_ratio` compute it: the sides to crop.
pub(super) fn aspect_window((height, width): (usize, usize), (target_height, target_width): (usize, usize)) -> Sides {
    // Keras truncates `float(width · target_height) / target_width`; for sizes below 2⁵³ that is
    // the integer division.
    let crop_height = (width.saturating_mul(target_height) / target_width.max(1)).clamp(1, height);
    let crop_width = (height.saturating_mul(target_width) / target_height.max(1)).clamp(1, width);
    let (top, left) = ((height - crop_height) / 2, (width - crop_width) / 2);
    ((top, height - crop_height - top), (left, width - crop_width - left))
}

/// `x` cropped by `sides`, or `x` itself when nothing is cropped.
pub(super) fn crop_if_needed(graph: &mut Graph, x: Var, sides: Sides) -> Result<Var> {
    match sides {
        ((0, 0), (0, 0)) => Ok(x),
        sides => graph.crop2d(x, sides),
    }
}
