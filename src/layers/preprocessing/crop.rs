//! [`RandomCrop`], as `keras.layers.RandomCrop`.

use super::warp::{FillMode, InverseMap, resample_image};
use super::{Layer, bad_argument, check_after_input, check_data_format};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::layers::common::layer_builders;
use crate::layers::{LayerArgs, args};
use crate::rng::{Rng, hash_name};
use rayon::prelude::*;
use serde_json::{Value, json};

/// Crops images to `height` × `width`, as `RandomCrop(height, width, seed=None)`. In training, on
/// images larger than the target on both axes, one random window per batch (Keras crops a whole
/// batch at one place). Otherwise, and always at inference, the largest centred window of the
/// target's aspect ratio, resized bilinearly to the target, so the output shape never changes.
///
/// ```
/// use strata::layers::RandomCrop;
/// let crop = RandomCrop::new(24, 24);
/// ```
#[derive(Clone, Debug)]
pub struct RandomCrop {
    args: LayerArgs,
    height: usize,
    width: usize,
    seed: Option<u64>,
}

/// A window of an image: its top-left pixel and its size, (rows, columns) each.
type Window = ((usize, usize), (usize, usize));

impl RandomCrop {
    /// Outputs `height` × `width` images (both at least 1).
    pub fn new(height: usize, width: usize) -> Self {
        RandomCrop {
            args: LayerArgs::default(),
            height,
            width,
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
        check_data_format(config, "RandomCrop")?;
        let size = |key: &str| {
            config
                .get(key)
                .and_then(Value::as_u64)
                .ok_or_else(|| Error::Data(format!("RandomCrop needs a positive integer \"{key}\"")))
        };
        let mut layer = RandomCrop::new(size("height")? as usize, size("width")? as usize);
        layer.seed = args::seed(config)?;
        Ok(layer)
    }

    /// The window Keras reads from an `image_height` × `image_width` image.
    fn window(&self, (image_height, image_width): (usize, usize), rng: Option<&mut Rng>) -> Window {
        let (height, width) = (self.height, self.width);
        match rng {
            Some(rng) if image_height > height && image_width > width => {
                let top = rng.below(image_height - height + 1);
                let left = rng.below(image_width - width + 1);
                ((top, left), (height, width))
            }
            _ => {
                let crop_height = (image_width * height / width).clamp(1, image_height);
                let crop_width = (image_height * width / height).clamp(1, image_width);
                (
                    ((image_height - crop_height) / 2, (image_width - crop_width) / 2),
                    (crop_height, crop_width),
                )
            }
        }
    }
}

layer_builders!(RandomCrop);

impl Layer for RandomCrop {
    fn class_name(&self) -> &'static str {
        "RandomCrop"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        super::check_target_size(&self.args.name, "RandomCrop", (self.height, self.width))?;
        super::image_shape(&self.args.name, input_shape)?;
        let mut output = input_shape.to_vec();
        output[0] = self.height;
        output[1] = self.width;
        Ok(output)
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        check_after_input(graph, x, &self.args.name, self.class_name())?;
        let shape = graph.shape(x).to_vec();
        let [image_height, image_width, channels] = super::image_shape(&self.args.name, &shape[1..])?;
        if (image_height, image_width) == (self.height, self.width) {
            return Ok(x);
        }
        let mut rng = graph.noise_rng(self.seed.unwrap_or_else(|| hash_name(&self.args.name)));
        let training = graph.training();
        let window = self.window((image_height, image_width), training.then_some(&mut rng));
        let cropped = crop(graph.value(x).data(), [image_height, image_width, channels], window);
        let (crop_height, crop_width) = window.1;
        let (scale_y, scale_x) = (
            crop_height as f64 / self.height as f64,
            crop_width as f64 / self.width as f64,
        );
        // Half-pixel centres, as Keras's `image.resize`: output pixel x reads (x + ½)·scale − ½.
        let coefficients = [scale_x, 0.0, 0.5 * scale_x - 0.5, 0.0, scale_y, 0.5 * scale_y - 0.5];
        let map = InverseMap::from_affine(coefficients, self.height, self.width).ok_or_else(|| {
            bad_argument(
                &self.args.name,
                "RandomCrop",
                "height",
                self.height,
                "is too far from the input's size",
            )
        })?;
        let mut output_shape = shape.clone();
        output_shape[1] = self.height;
        output_shape[2] = self.width;
        let (crop_len, output_len) = (crop_height * crop_width * channels, self.height * self.width * channels);
        Ok(graph.constant_with(|out| {
            out.resize_for(&output_shape);
            if crop_len == 0 {
                out.data_mut().fill(0.0);
                return;
            }
            out.data_mut()
                .par_chunks_exact_mut(output_len)
                .zip(cropped.par_chunks_exact(crop_len))
                .for_each(|(image, source)| {
                    let shape = [crop_height, crop_width, channels];
                    resample_image(source, shape, image, self.width, &map, (FillMode::Nearest, 0.0));
                });
        }))
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "height": self.height,
            "width": self.width,
            "seed": self.seed,
            "data_format": "channels_last",
        }))
    }
}

/// The `window` of every image of `shape` in `batch`, image after image.
fn crop(batch: &[f32], [height, width, channels]: [usize; 3], ((top, left), (rows, columns)): Window) -> Vec<f32> {
    let row_len = width * channels;
    let mut cropped = Vec::with_capacity(batch.len() / (height * width).max(1) * rows * columns);
    for image in batch.chunks_exact(height * row_len) {
        for row in image[top * row_len..].chunks_exact(row_len).take(rows) {
            cropped.extend_from_slice(&row[left * channels..(left + columns) * channels]);
        }
    }
    cropped
}
