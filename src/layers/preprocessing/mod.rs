//! Keras 3's image augmentation layers: [`RandomFlip`], [`RandomRotation`],
//! [`RandomTranslation`], [`RandomZoom`], [`RandomContrast`] and [`RandomCrop`].
//!
//! They take channels-last images, per sample `(height, width, channels)`, or `(height, width)`
//! read as one channel (MNIST as it loads). Each is active only in training and the identity at
//! inference, except `RandomCrop`, which always outputs its target size. Like `Dropout`, a layer
//! draws from the pass's noise seed (the model's seed and the optimizer's step) mixed with its own
//! `seed`, or a hash of its name: a seed repeats a run, and a resumed run sees the images an
//! uninterrupted one would have. Every image's transform is drawn in image order before the
//! pixels are shared out across threads, so the result does not depend on the thread count.
//!
//! # No gradient to the input
//!
//! A layer's output is a new constant on the tape, cut from its input: these layers change the
//! data a model learns from, and what comes before them is data, not weights. Flips and crops
//! could pass a gradient back exactly, and rotations and zooms through their interpolation
//! weights, but nothing upstream would use it, and one rule for all six is easier to trust.
//! So they must come right after the model's input (or after one another): called on anything
//! else, the forward pass fails with an error naming the layer, rather than silently stopping
//! the gradient there.

/// The builders of the layers that resample images (`RandomRotation`, `RandomTranslation`,
/// `RandomZoom`): Keras's `fill_mode`, `fill_value`, `interpolation` and `seed`, on a layer with
/// `warp: Warp` and `seed: Option<u64>` fields.
macro_rules! warp_builders {
    ($layer:ty) => {
        impl $layer {
            /// Sets `fill_mode`: `"constant"`, `"nearest"`, `"reflect"` (the default) or `"wrap"`.
            pub fn fill_mode(mut self, mode: &str) -> Self {
                self.warp.fill_mode = mode.to_string();
                self
            }

            /// Sets `fill_value`, read beyond the edges when `fill_mode` is `"constant"`.
            pub fn fill_value(mut self, value: f32) -> Self {
                self.warp.fill_value = value;
                self
            }

            /// Sets `interpolation`; strata supports `"bilinear"` (the default) only.
            pub fn interpolation(mut self, interpolation: &str) -> Self {
                self.warp.interpolation = interpolation.to_string();
                self
            }

            /// Seeds this layer's draws (mixed with the model's per-step seed).
            pub fn seed(mut self, seed: u64) -> Self {
                self.seed = Some(seed);
                self
            }
        }
    };
}

mod contrast;
mod crop;
mod flip;
mod geometric;
mod rotation;
mod translation;
pub(crate) mod warp;
mod zoom;

pub use contrast::RandomContrast;
pub use crop::RandomCrop;
pub use flip::RandomFlip;
pub use rotation::RandomRotation;
pub use translation::RandomTranslation;
pub use zoom::RandomZoom;

use super::Layer;
use crate::autograd::{Graph, Op, Var};
use crate::error::{Error, Result, keras_shape};
use serde_json::Value;

/// A random range `[lower, upper]`, as Keras's `factor` arguments give it: one number `f` means
/// `[-|f|, |f|]`, a pair is sorted.
pub trait IntoFactor {
    /// (lower, upper).
    fn into_factor(self) -> (f32, f32);
}

impl IntoFactor for f32 {
    fn into_factor(self) -> (f32, f32) {
        (-self.abs(), self.abs())
    }
}

impl IntoFactor for (f32, f32) {
    fn into_factor(self) -> (f32, f32) {
        (self.0.min(self.1), self.0.max(self.1))
    }
}

/// The per-sample image `[height, width, channels]` of `input_shape`, `(H, W)` meaning one channel.
pub(crate) fn image_shape(layer: &str, input_shape: &[usize]) -> Result<[usize; 3]> {
    match *input_shape {
        [height, width] => Ok([height, width, 1]),
        [height, width, channels] => Ok([height, width, channels]),
        _ => Err(Error::LayerShape {
            layer: layer.to_string(),
            expected: "(None, height, width, channels) or (None, height, width)".into(),
            received: keras_shape(input_shape),
        }),
    }
}

/// Refuses an input that the model computed (see the module's "No gradient to the input").
pub(crate) fn check_after_input(graph: &Graph, x: Var, layer: &str, class_name: &str) -> Result<()> {
    if matches!(graph.op(x), Op::Constant) {
        return Ok(());
    }
    Err(Error::Usage(format!(
        "layer '{layer}' ({class_name}) must come right after the model's input or another preprocessing layer: \
         it passes no gradient to its input"
    )))
}

/// An argument error that names the layer, as Keras's "Received: factor=..." does.
pub(crate) fn bad_argument(
    layer: &str,
    class_name: &str,
    argument: &str,
    value: impl std::fmt::Display,
    why: &str,
) -> Error {
    Error::invalid(argument, value, format!("{class_name} '{layer}': {why}"))
}

/// Refuses a target `height` or `width` of 0 (`RandomCrop`, `CenterCrop`), naming the layer.
pub(crate) fn check_target_size(layer: &str, class_name: &str, (height, width): (usize, usize)) -> Result<()> {
    for (argument, value) in [("height", height), ("width", width)] {
        if value == 0 {
            return Err(bad_argument(layer, class_name, argument, value, "must be at least 1"));
        }
    }
    Ok(())
}

/// Checks that `range` lies within `[min, max]` (`min` excluded when `open_min`).
pub(crate) fn check_range(
    (layer, class_name): (&str, &str),
    argument: &str,
    range: (f32, f32),
    (min, max): (f32, f32),
    open_min: bool,
) -> Result<()> {
    let inside = |v: f32| v.is_finite() && v <= max && if open_min { v > min } else { v >= min };
    if inside(range.0) && inside(range.1) {
        return Ok(());
    }
    let bracket = if open_min { "(" } else { "[" };
    Err(bad_argument(
        layer,
        class_name,
        argument,
        format!("({}, {})", range.0, range.1),
        &format!("must be a number or a pair of numbers in {bracket}{min}, {max}]"),
    ))
}

/// `data_format` must be channels-last, the only layout strata's images have.
pub(crate) fn check_data_format(config: &Value, class_name: &str) -> Result<()> {
    match config.get("data_format") {
        None | Some(Value::Null) => Ok(()),
        Some(Value::String(format)) if format == "channels_last" => Ok(()),
        Some(other) => Err(Error::invalid(
            "data_format",
            other,
            format!("{class_name}: strata's images are channels-last; only \"channels_last\" is supported"),
        )),
    }
}

/// Keras's `factor`-style value under `key`: a number or a list of two; `None` when absent or null.
pub(crate) fn factor_config(config: &Value, key: &str, class_name: &str) -> Result<Option<(f32, f32)>> {
    let bad = |value: &Value| {
        Error::Data(format!(
            "{class_name}'s \"{key}\" must be a number or a list of two, got {value}"
        ))
    };
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => Ok(Some((n.as_f64().unwrap_or(f64::NAN) as f32).into_factor())),
        Some(value @ Value::Array(items)) => match items.as_slice() {
            [a, b] => match (a.as_f64(), b.as_f64()) {
                (Some(a), Some(b)) => Ok(Some((a as f32, b as f32).into_factor())),
                _ => Err(bad(value)),
            },
            _ => Err(bad(value)),
        },
        Some(other) => Err(bad(other)),
    }
}
