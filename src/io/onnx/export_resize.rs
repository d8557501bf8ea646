//! The image layers that crop and resize to a fixed size as ONNX operators: `Resizing`,
//! `CenterCrop` and `RandomCrop` (its inference crop), each a `Slice` for the crop and a
//! `Resize` with half-pixel centres (Keras's `image.resize`) between two `Transpose`s.

use super::builder::int;
use super::export_conv::{TO_NCHW, TO_NHWC};
use super::export_layers::text;
use super::layers::Emitter;
use crate::error::{Error, Result};
use crate::layers::Layer;
use serde_json::Value;

impl Emitter<'_> {
    /// RandomCrop at inference, as strata runs it: the largest centred window of the target's
    /// aspect ratio (`Slice`), resized bilinearly to the target; only the slice when the window
    /// is the target, nothing when the image is.
    pub(super) fn center_crop(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        x: &str,
        shape: &[usize],
    ) -> Result<String> {
        let target = target_size(layer, config)?;
        Ok(self.aspect_resize(layer.name(), x, shape, target, "linear"))
    }

    /// CenterCrop: the centred window of the target's size (`Slice`) where the image holds it,
    /// else as `smart_resize` (see [`Emitter::center_crop`]).
    pub(super) fn center_crop_layer(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        x: &str,
        shape: &[usize],
    ) -> Result<String> {
        let (height, width) = target_size(layer, config)?;
        let (image_height, image_width) = (shape[0], shape[1]);
        if image_height < height || image_width < width {
            return Ok(self.aspect_resize(layer.name(), x, shape, (height, width), "linear"));
        }
        if (image_height, image_width) == (height, width) {
            return Ok(x.to_string());
        }
        let (top, left) = ((image_height - height) / 2, (image_width - width) / 2);
        let (starts, ends) = ([top, left], [top + height, left + width]);
        Ok(self.slice(
            layer.name(),
            x,
            &starts.map(|v| v as i64),
            &ends.map(|v| v as i64),
            &[1, 2],
        ))
    }

    /// Resizing: the whole image, or with `crop_to_aspect_ratio` its centred window of the
    /// target's aspect ratio, resized to the target.
    pub(super) fn resizing(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let target = target_size(layer, config)?;
        let mode = match config["interpolation"].as_str() {
            Some("nearest") => "nearest",
            _ => "linear",
        };
        let name = layer.name();
        if config["crop_to_aspect_ratio"].as_bool() == Some(true) {
            return Ok(self.aspect_resize(name, x, shape, target, mode));
        }
        if (shape[0], shape[1]) == target {
            return Ok(x.to_string());
        }
        Ok(self.resize_to(name, x, x, (target.0, target.1, shape[2]), mode))
    }

    /// The largest centred window of `x`'s images (`shape`: height, width, channels) with the
    /// aspect ratio of `target`, resized to it (Keras's `smart_resize`).
    fn aspect_resize(&mut self, name: &str, x: &str, shape: &[usize], target: (usize, usize), mode: &str) -> String {
        let (image_height, image_width, channels) = (shape[0], shape[1], shape[2]);
        if (image_height, image_width) == target {
            return x.to_string();
        }
        let (height, width) = target;
        let crop_height = (image_width * height / width).clamp(1, image_height);
        let crop_width = (image_height * width / height).clamp(1, image_width);
        let (top, left) = ((image_height - crop_height) / 2, (image_width - crop_width) / 2);
        let starts = [top as i64, left as i64];
        let ends = [(top + crop_height) as i64, (left + crop_width) as i64];
        let cropped = match (crop_height, crop_width) == (image_height, image_width) {
            true => x.to_string(),
            false => self.slice(name, x, &starts, &ends, &[1, 2]),
        };
        if (crop_height, crop_width) == target {
            return cropped;
        }
        self.resize_to(name, &cropped, x, (height, width, channels), mode)
    }

    /// `x` (channels-last) resized to `(height, width, channels)` by `Resize` with half-pixel
    /// centres, the batch's size read from `batch_of`: `"linear"`, or `"nearest"` rounding
    /// halves up, which is TensorFlow's `floor((o + ½)·in/out)`.
    fn resize_to(
        &mut self,
        name: &str,
        x: &str,
        batch_of: &str,
        (height, width, channels): (usize, usize, usize),
        mode: &str,
    ) -> String {
        let nchw = self.builder.transpose(name, x, &TO_NCHW);
        let batch = self
            .builder
            .op(name, "Shape", &[batch_of], vec![int("start", 0), int("end", 1)]);
        let rest = [channels, height, width].map(|d| d as i64);
        let rest = self.builder.int64s(format!("{name}/image_size"), &rest);
        let sizes = self.builder.op(name, "Concat", &[&batch, &rest], vec![int("axis", 0)]);
        let mut attributes = vec![text("mode", mode), text("coordinate_transformation_mode", "half_pixel")];
        if mode == "nearest" {
            attributes.push(text("nearest_mode", "round_prefer_ceil"));
        }
        let y = self.builder.op(name, "Resize", &[&nchw, "", "", &sizes], attributes);
        self.builder.transpose(name, &y, &TO_NHWC)
    }
}

/// The `height` and `width` of a cropping or resizing layer's config.
fn target_size(layer: &dyn Layer, config: &Value) -> Result<(usize, usize)> {
    let size = |key: &str| config[key].as_u64().map(|v| v as usize).filter(|&v| v > 0);
    match (size("height"), size("width")) {
        (Some(height), Some(width)) => Ok((height, width)),
        _ => Err(Error::Usage(format!(
            "layer '{}' ({}) has no height and width",
            layer.name(),
            layer.class_name()
        ))),
    }
}
