//! [`ImageAugmentation`]: seeded, on-the-fly random rotation, shift, zoom and flips of image
//! batches, with the arguments of Keras's `ImageDataGenerator` (`rotation_range` in degrees,
//! `width_shift_range`, `height_shift_range`, `zoom_range`, `horizontal_flip`, `vertical_flip`,
//! `fill_mode`) and the `fill_value` of its successors, the `RandomRotation`/`RandomTranslation`/
//! `RandomZoom` layers.
//!
//! Each image gets its own transform, composed into one affine map and applied by inverse
//! mapping: every output pixel reads the source at the point the map sends it to, with bilinear
//! interpolation, the same for every channel. The map is affine, so the source point moves by a
//! constant step along a row: no trigonometry and no allocation per pixel. Buffers are kept
//! between batches, so a training loop allocates only for its first (largest) batch.
//!
//! ```
//! use strata::data::ImageAugmentation;
//! use strata::{rng::Rng, Tensor};
//!
//! # fn main() -> strata::Result<()> {
//! let mut augmentation = ImageAugmentation::new()
//!     .rotation_range(10.0)
//!     .width_shift_range(0.1)
//!     .height_shift_range(0.1)
//!     .zoom_range(0.1);
//! augmentation.validate()?;
//! let mut batch = Tensor::zeros(&[64, 28, 28, 1]);
//! augmentation.augment_batch(&mut batch, &mut Rng::new(42))?;
//! # Ok(()) }
//! ```

use crate::error::{Error, Result};
use crate::layers::preprocessing::warp::{self, FillMode, InverseMap, transform_image};
use crate::layers::{Layer, RandomFlip, RandomRotation, RandomTranslation, RandomZoom};
use crate::rng::Rng;
use crate::tensor::Tensor;
use rayon::prelude::*;

pub use crate::layers::preprocessing::warp::{FILL_MODES, Transform};

/// A batch is split across rayon's threads in runs of images of at least this many values, so a
/// small batch stays on one thread where spawning would cost more than it saves.
const PARALLEL_VALUES: usize = 1 << 14;

/// Random image transforms for training, applied in place to a batch.
///
/// Built like `ImageDataGenerator(rotation_range=10, width_shift_range=0.1, ...)`: every range is
/// off (0) by default, and so are the flips. `fill_mode` defaults to `"nearest"`, as in
/// `ImageDataGenerator`: on black-background images such as MNIST it gives the same zeros as
/// `"constant"`, and on photographs it does not paint black corners that the network could learn
/// to look for. The settings are public fields so a caller can read them back; [`validate`]
/// checks them, and [`augment_batch`] does too before touching any image.
///
/// [`validate`]: ImageAugmentation::validate
/// [`augment_batch`]: ImageAugmentation::augment_batch
#[derive(Clone, Debug)]
pub struct ImageAugmentation {
    /// Rotations are drawn uniformly from `[-rotation_range, rotation_range]` degrees.
    pub rotation_range: f32,
    /// Horizontal shifts are drawn from `[-width_shift_range, width_shift_range]` times the width.
    pub width_shift_range: f32,
    /// Vertical shifts are drawn from `[-height_shift_range, height_shift_range]` times the height.
    pub height_shift_range: f32,
    /// Zoom factors are drawn from `[1 - zoom_range, 1 + zoom_range]`, independently for height
    /// and width, as `ImageDataGenerator` does. See [`Transform::height_zoom`] for the direction.
    pub zoom_range: f32,
    /// Mirror left–right with probability 1/2.
    pub horizontal_flip: bool,
    /// Mirror top–bottom with probability 1/2.
    pub vertical_flip: bool,
    /// What points outside the image read: `"constant"` ([`fill_value`](Self::fill_value)),
    /// `"nearest"` (`aaaa|abcd|dddd`), `"reflect"` (`dcba|abcd|dcba`) or `"wrap"` (`abcd|abcd|abcd`).
    pub fill_mode: String,
    /// The value outside the image when `fill_mode` is `"constant"`. Defaults to 0.
    pub fill_value: f32,
    /// The batch's values before augmentation, read while the batch is rewritten in place; kept
    /// between batches so a training loop allocates once.
    scratch: Vec<f32>,
    /// Each image's transform in the batch being augmented; kept between batches.
    transforms: Vec<Transform>,
}

impl Default for ImageAugmentation {
    fn default() -> Self {
        ImageAugmentation {
            rotation_range: 0.0,
            width_shift_range: 0.0,
            height_shift_range: 0.0,
            zoom_range: 0.0,
            horizontal_flip: false,
            vertical_flip: false,
            fill_mode: "nearest".into(),
            fill_value: 0.0,
            scratch: Vec::new(),
            transforms: Vec::new(),
        }
    }
}

impl ImageAugmentation {
    /// Everything off: `fill_mode="nearest"`, `fill_value=0`.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets `rotation_range`, in degrees.
    pub fn rotation_range(mut self, degrees: f32) -> Self {
        self.rotation_range = degrees;
        self
    }

    /// Sets `width_shift_range`, a fraction of the width.
    pub fn width_shift_range(mut self, fraction: f32) -> Self {
        self.width_shift_range = fraction;
        self
    }

    /// Sets `height_shift_range`, a fraction of the height.
    pub fn height_shift_range(mut self, fraction: f32) -> Self {
        self.height_shift_range = fraction;
        self
    }

    /// Sets `zoom_range`: 0.1 draws zoom factors from [0.9, 1.1].
    pub fn zoom_range(mut self, range: f32) -> Self {
        self.zoom_range = range;
        self
    }

    /// Sets `horizontal_flip`.
    pub fn horizontal_flip(mut self, flip: bool) -> Self {
        self.horizontal_flip = flip;
        self
    }

    /// Sets `vertical_flip`.
    pub fn vertical_flip(mut self, flip: bool) -> Self {
        self.vertical_flip = flip;
        self
    }

    /// Sets `fill_mode`, one of [`FILL_MODES`] (case-insensitive).
    pub fn fill_mode(mut self, mode: &str) -> Self {
        self.fill_mode = mode.to_string();
        self
    }

    /// Sets `fill_value`, used when `fill_mode` is `"constant"`.
    pub fn fill_value(mut self, value: f32) -> Self {
        self.fill_value = value;
        self
    }

    /// Checks every setting; an error names the argument, its value and the valid range.
    pub fn validate(&self) -> Result<()> {
        self.checked_fill_mode().map(|_| ())
    }

    /// Whether every range is 0 and both flips are off, so batches pass through untouched.
    pub fn is_identity(&self) -> bool {
        let ranges = [
            self.rotation_range,
            self.width_shift_range,
            self.height_shift_range,
            self.zoom_range,
        ];
        ranges.iter().all(|&range| range == 0.0) && !self.horizontal_flip && !self.vertical_flip
    }

    /// The preprocessing layers that augment as these settings do, for a model to apply in
    /// training (see [`crate::io::with_preprocessing`]): `RandomFlip`s, then `RandomZoom`, `RandomRotation`
    /// and `RandomTranslation`, the order this augmentation composes them in, each only where its
    /// setting is on. Keras's factors are fractions: `rotation_range` degrees become a
    /// `RandomRotation` factor of `degrees / 360` turns; `zoom_range` `z` a `RandomZoom` of `z`
    /// on each axis, drawn apart as here. Flips get a layer each, so they stay independent (one
    /// `RandomFlip("horizontal_and_vertical")` flips both axes together). The layers resample once
    /// each, where [`augment_batch`](Self::augment_batch) composes one map, so their output is a
    /// little smoother. Errors are [`validate`](Self::validate)'s.
    pub fn layers(&self) -> Result<Vec<Box<dyn Layer>>> {
        self.validate()?;
        let fill_mode = self.fill_mode.to_ascii_lowercase();
        let mut layers: Vec<Box<dyn Layer>> = Vec::new();
        for (enabled, mode) in [(self.horizontal_flip, "horizontal"), (self.vertical_flip, "vertical")] {
            if enabled {
                layers.push(Box::new(RandomFlip::new(mode)));
            }
        }
        if self.zoom_range > 0.0 {
            let zoom = RandomZoom::new(self.zoom_range).width_factor(self.zoom_range);
            layers.push(Box::new(zoom.fill_mode(&fill_mode).fill_value(self.fill_value)));
        }
        if self.rotation_range > 0.0 {
            let rotation = RandomRotation::new(self.rotation_range / 360.0);
            layers.push(Box::new(rotation.fill_mode(&fill_mode).fill_value(self.fill_value)));
        }
        if self.height_shift_range > 0.0 || self.width_shift_range > 0.0 {
            let translation = RandomTranslation::new(self.height_shift_range, self.width_shift_range);
            layers.push(Box::new(translation.fill_mode(&fill_mode).fill_value(self.fill_value)));
        }
        Ok(layers)
    }

    /// Draws one image's transform, as `ImageDataGenerator.get_random_transform`. Only the enabled
    /// settings draw from `rng`, always in the same order, so a seed fixes every transform.
    pub fn random_transform(&self, height: usize, width: usize, rng: &mut Rng) -> Transform {
        let mut symmetric = |range: f32| if range > 0.0 { rng.uniform(-range, range) } else { 0.0 };
        let rotation = symmetric(self.rotation_range);
        let height_shift = symmetric(self.height_shift_range) * height as f32;
        let width_shift = symmetric(self.width_shift_range) * width as f32;
        let height_zoom = 1.0 + symmetric(self.zoom_range);
        let width_zoom = 1.0 + symmetric(self.zoom_range);
        let mut coin = |enabled: bool| enabled && rng.below(2) == 1;
        let horizontal_flip = coin(self.horizontal_flip);
        let vertical_flip = coin(self.vertical_flip);
        Transform {
            rotation,
            height_shift,
            width_shift,
            height_zoom,
            width_zoom,
            horizontal_flip,
            vertical_flip,
        }
    }

    /// Transforms every image of a channels-last batch `(N, height, width, channels)` in place,
    /// each with its own transform drawn from `rng`. Labels are not this function's business:
    /// augmentation changes how a sample looks, never what it is.
    ///
    /// The same `rng` state gives the same batch whatever the number of threads: transforms are
    /// drawn in image order first, then large batches are split across rayon's threads. A rank
    /// other than 4, or a setting [`validate`](Self::validate) refuses, is an error before any
    /// image changes.
    pub fn augment_batch(&mut self, images: &mut Tensor, rng: &mut Rng) -> Result<()> {
        let &[_, height, width, channels] = images.shape() else {
            return Err(Error::Data(format!(
                "image augmentation needs a batch shaped (N, height, width, channels), but received shape {}; \
                 reshape greyscale images (N, height, width) to (N, height, width, 1)",
                crate::error::array_shape(images.shape())
            )));
        };
        self.augment_images(images.data_mut(), [height, width, channels], rng)
    }

    /// [`augment_batch`](Self::augment_batch) on the raw values of consecutive images of
    /// `image_shape` `[height, width, channels]`, for a buffer whose tensor has another shape
    /// (MNIST's `(N, 28, 28)` is `[28, 28, 1]` images).
    pub fn augment_images(&mut self, values: &mut [f32], image_shape: [usize; 3], rng: &mut Rng) -> Result<()> {
        let mode = self.checked_fill_mode()?;
        let [height, width, channels] = image_shape;
        let image_len = height * width * channels;
        if (image_len == 0 && !values.is_empty()) || (image_len > 0 && !values.len().is_multiple_of(image_len)) {
            return Err(Error::Data(format!(
                "{} values are not a whole number of images of shape {}",
                values.len(),
                crate::error::array_shape(&image_shape)
            )));
        }
        if self.is_identity() || image_len == 0 {
            return Ok(());
        }
        // Draw every transform first, in image order, so the result does not depend on threads.
        self.transforms.clear();
        for _ in 0..values.len() / image_len {
            let transform = self.random_transform(height, width, rng);
            self.transforms.push(transform);
        }
        self.scratch.clear();
        self.scratch.extend_from_slice(values);
        let fill = (mode, self.fill_value);
        values
            .par_chunks_exact_mut(image_len)
            .zip(self.scratch.par_chunks_exact(image_len))
            .zip(self.transforms.par_iter())
            .with_min_len(PARALLEL_VALUES.div_ceil(image_len))
            .filter(|(_, transform)| !transform.is_identity())
            .try_for_each(|((image, source), transform)| {
                let map = InverseMap::new(transform, height, width).ok_or_else(|| too_far(transform))?;
                transform_image(source, image, image_shape, &map, fill);
                Ok(())
            })
    }

    /// Applies one given transform to one image `(height, width, channels)` in place, with this
    /// augmentation's `fill_mode` and `fill_value`, as `ImageDataGenerator.apply_transform`.
    pub fn apply_transform(&mut self, image: &mut Tensor, transform: &Transform) -> Result<()> {
        let mode = self.checked_fill_mode()?;
        let &[height, width, channels] = image.shape() else {
            return Err(Error::Data(format!(
                "apply_transform needs one image shaped (height, width, channels), but received shape {}",
                crate::error::array_shape(image.shape())
            )));
        };
        let map = InverseMap::new(transform, height, width).ok_or_else(|| too_far(transform))?;
        self.scratch.clear();
        self.scratch.extend_from_slice(image.data());
        let fill = (mode, self.fill_value);
        transform_image(&self.scratch, image.data_mut(), [height, width, channels], &map, fill);
        Ok(())
    }

    /// Validates every setting and returns the parsed fill mode.
    fn checked_fill_mode(&self) -> Result<FillMode> {
        if !(self.rotation_range.is_finite() && self.rotation_range >= 0.0) {
            return Err(Error::invalid(
                "rotation_range",
                self.rotation_range,
                "must be a finite number of degrees >= 0",
            ));
        }
        for (name, range) in [
            ("width_shift_range", self.width_shift_range),
            ("height_shift_range", self.height_shift_range),
        ] {
            if !(0.0..=1.0).contains(&range) {
                return Err(Error::invalid(name, range, "must be a fraction of the size in [0, 1]"));
            }
        }
        if !(0.0..1.0).contains(&self.zoom_range) {
            return Err(Error::invalid(
                "zoom_range",
                self.zoom_range,
                "must be in [0, 1): zoom factors are drawn from [1 - zoom_range, 1 + zoom_range]",
            ));
        }
        if !self.fill_value.is_finite() {
            return Err(Error::invalid("fill_value", self.fill_value, "must be finite"));
        }
        FillMode::from_name(&self.fill_mode)
    }
}

/// The error for a transform whose map [`InverseMap::new`] refuses.
fn too_far(transform: &Transform) -> Error {
    Error::invalid(
        "transform",
        format!("{transform:?}"),
        format!(
            "every value must be finite, and no pixel may read more than {} pixels away",
            warp::FAR
        ),
    )
}
