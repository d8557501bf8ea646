//! `ZeroPadding2D` and `Cropping2D`: add zero rows and columns around channels-last images, or
//! take them away (ResNet's and MobileNet's `conv1_pad`, a U-Net's skip connections).

use super::Layer;
use super::preprocessing::check_data_format;
use crate::autograd::{Graph, Sides, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use serde_json::{Value, json};

/// The amounts on each side of an image, in any of Keras's three forms: `1` (every side),
/// `(1, 2)` (top and bottom 1, left and right 2) or `((1, 0), (2, 1))` (`((top, bottom),
/// (left, right))`).
pub trait IntoSides {
    /// `((top, bottom), (left, right))`.
    fn into_sides(self) -> Sides;
}

impl IntoSides for usize {
    fn into_sides(self) -> Sides {
        ((self, self), (self, self))
    }
}

impl IntoSides for (usize, usize) {
    fn into_sides(self) -> Sides {
        ((self.0, self.0), (self.1, self.1))
    }
}

impl IntoSides for Sides {
    fn into_sides(self) -> Sides {
        self
    }
}

/// Keras's `padding`/`cropping` value under `key`, in any of its three forms, or `default`.
fn sides_config(config: &Value, key: &str, class_name: &str, default: usize) -> Result<Sides> {
    let bad = |value: &Value| {
        Error::Data(format!(
            "{class_name}'s \"{key}\" must be an integer, a pair of integers or a pair of pairs, got {value}"
        ))
    };
    let size = |v: &Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
    let pair = |v: &Value| match v.as_array().map(Vec::as_slice) {
        Some([a, b]) => Some((size(a)?, size(b)?)),
        _ => None,
    };
    match config.get(key) {
        None | Some(Value::Null) => Ok(default.into_sides()),
        Some(value @ Value::Array(items)) => match items.as_slice() {
            [a, b] if a.is_array() => pair(a).zip(pair(b)).ok_or_else(|| bad(value)),
            [a, b] => size(a)
                .zip(size(b))
                .map(IntoSides::into_sides)
                .ok_or_else(|| bad(value)),
            _ => Err(bad(value)),
        },
        Some(value) => size(value).map(IntoSides::into_sides).ok_or_else(|| bad(value)),
    }
}

/// Keras's config value for `sides`: `[[top, bottom], [left, right]]`.
fn sides_json(((top, bottom), (left, right)): Sides) -> Value {
    json!([[top, bottom], [left, right]])
}

/// Checks that `input_shape` is one image `(H, W, C)`, naming the layer otherwise.
fn image<'a>(layer: &str, input_shape: &'a [usize]) -> Result<&'a [usize]> {
    if input_shape.len() != 3 {
        return Err(Error::LayerShape {
            layer: layer.to_string(),
            expected: "(None, height, width, channels)".into(),
            received: keras_shape(input_shape),
        });
    }
    Ok(input_shape)
}

/// Keras's `ZeroPadding2D(padding=(1, 1))`: rows of zeros above and below each image, columns
/// on its left and right. Channels-last; no weights.
///
/// ```
/// use strata::layers::ZeroPadding2D;
/// let pad = ZeroPadding2D::new(((0, 1), (0, 1))); // MobileNetV2's "correct_pad" for stride 2
/// ```
#[derive(Clone, Debug)]
pub struct ZeroPadding2D {
    args: LayerArgs,
    padding: Sides,
}

impl ZeroPadding2D {
    /// Pads by `padding`: `1`, `(top_bottom, left_right)` or `((top, bottom), (left, right))`.
    pub fn new(padding: impl IntoSides) -> Self {
        ZeroPadding2D {
            args: LayerArgs::default(),
            padding: padding.into_sides(),
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "ZeroPadding2D")?;
        Ok(ZeroPadding2D {
            args: LayerArgs::with_input_shape(config)?,
            padding: sides_config(config, "padding", "ZeroPadding2D", 1)?,
        })
    }
}

layer_builders!(ZeroPadding2D, input_shape);

impl Layer for ZeroPadding2D {
    fn class_name(&self) -> &'static str {
        "ZeroPadding2D"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let image = image(&self.args.name, input_shape)?;
        let ((top, bottom), (left, right)) = self.padding;
        let grown = |size: usize, a: usize, b: usize| size.checked_add(a)?.checked_add(b);
        match (grown(image[0], top, bottom), grown(image[1], left, right)) {
            (Some(h), Some(w)) => Ok(vec![h, w, image[2]]),
            _ => Err(Error::invalid(
                "padding",
                format!("{:?}", self.padding),
                format!(
                    "layer '{}' (ZeroPadding2D): the padded image's size overflows",
                    self.args.name
                ),
            )),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        graph.zero_pad2d(x, self.padding)
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        Some(crate::layers::InferenceRole::ZeroPadding(self.padding))
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "padding": sides_json(self.padding),
            "data_format": "channels_last",
        }))
    }
}

/// Keras's `Cropping2D(cropping=((0, 0), (0, 0)))`: removes rows from the top and bottom of each
/// image and columns from its left and right. Channels-last; no weights.
#[derive(Clone, Debug)]
pub struct Cropping2D {
    args: LayerArgs,
    cropping: Sides,
}

impl Cropping2D {
    /// Crops by `cropping`: `1`, `(top_bottom, left_right)` or `((top, bottom), (left, right))`.
    pub fn new(cropping: impl IntoSides) -> Self {
        Cropping2D {
            args: LayerArgs::default(),
            cropping: cropping.into_sides(),
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "Cropping2D")?;
        Ok(Cropping2D {
            args: LayerArgs::with_input_shape(config)?,
            cropping: sides_config(config, "cropping", "Cropping2D", 0)?,
        })
    }
}

layer_builders!(Cropping2D, input_shape);

impl Layer for Cropping2D {
    fn class_name(&self) -> &'static str {
        "Cropping2D"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let image = image(&self.args.name, input_shape)?;
        let ((top, bottom), (left, right)) = self.cropping;
        // At least one row and one column must remain, as Keras requires.
        let kept = |size: usize, a: usize, b: usize| size.checked_sub(a.checked_add(b)?).filter(|&s| s > 0);
        match (kept(image[0], top, bottom), kept(image[1], left, right)) {
            (Some(h), Some(w)) => Ok(vec![h, w, image[2]]),
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!(
                    "(None, height > {}, width > {}, channels) for cropping ((top {top}, bottom {bottom}), (left {left}, right {right}))",
                    top.saturating_add(bottom),
                    left.saturating_add(right)
                ),
                received: keras_shape(input_shape),
            }),
        }
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        graph.crop2d(x, self.cropping)
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "cropping": sides_json(self.cropping),
            "data_format": "channels_last",
        }))
    }
}
