//! `CenterCrop`: the centre of channels-last images, at a fixed size.

use super::preprocessing::{check_data_format, check_target_size};
use super::resizing::{aspect_window, crop_if_needed, image_dims};
use super::{Layer, args};
use crate::autograd::{Graph, Var};
use crate::error::Result;
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use serde_json::{Value, json};

/// Keras's `CenterCrop(height, width)`: the centred `height` × `width` window of each image
/// (starting at `(image_height − height) // 2`, likewise for columns). An image smaller than the
/// target on either side is resized up instead, as Keras does (`smart_resize`: the largest
/// centred window of the target's aspect ratio, bilinear). Gradients pass through.
///
/// ```
/// use strata::layers::CenterCrop;
/// let crop = CenterCrop::new(24, 24);
/// ```
#[derive(Clone, Debug)]
pub struct CenterCrop {
    args: LayerArgs,
    height: usize,
    width: usize,
}

impl CenterCrop {
    /// Crops images to `height` × `width` (both at least 1).
    pub fn new(height: usize, width: usize) -> Self {
        CenterCrop {
            args: LayerArgs::default(),
            height,
            width,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "CenterCrop")?;
        let mut layer = CenterCrop::new(
            args::required_size(config, "height", "CenterCrop")?,
            args::required_size(config, "width", "CenterCrop")?,
        );
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

layer_builders!(CenterCrop, input_shape);

impl Layer for CenterCrop {
    fn class_name(&self) -> &'static str {
        "CenterCrop"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        check_target_size(&self.args.name, "CenterCrop", (self.height, self.width))?;
        let [_, _, channels] = image_dims(&self.args.name, input_shape)?;
        Ok(vec![self.height, self.width, channels])
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let [height, width, _] = image_dims(&self.args.name, &graph.shape(x)[1..])?;
        let target = (self.height, self.width);
        if height >= target.0 && width >= target.1 {
            let (top, left) = ((height - target.0) / 2, (width - target.1) / 2);
            let sides = ((top, height - target.0 - top), (left, width - target.1 - left));
            return crop_if_needed(graph, x, sides);
        }
        let window = crop_if_needed(graph, x, aspect_window((height, width), target))?;
        graph.resize2d(window, target, true)
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "height": self.height,
            "width": self.width,
            "data_format": "channels_last",
        }))
    }
}
