//! Gradient clipping, as Keras 3's optimizers do it before every update (`clipnorm`,
//! `clipvalue`, `global_clipnorm` in `keras/src/optimizers/base_optimizer.py`).
//!
//! Every optimizer holds a [`Clipping`] and applies it to the trainable parameters' gradients at
//! the start of its `step`, in place, so clipping allocates nothing.

use crate::autograd::ParamStore;
use crate::error::{Error, Result};
use serde_json::Value;

/// Which gradient clipping an optimizer applies; all `None` (the default) clips nothing.
///
/// As in Keras, at most one of the three may be set:
/// - `clipnorm`: each gradient tensor `g` separately becomes `g·clipnorm / max(‖g‖₂, clipnorm)`;
/// - `global_clipnorm`: all gradients are scaled by `min(1, global_clipnorm / ‖(g₁, g₂, …)‖₂)`,
///   which keeps their directions relative to each other (a non-finite global norm makes every
///   gradient NaN, as in Keras, so the loss check stops training);
/// - `clipvalue`: each element is clamped to `[-clipvalue, clipvalue]`.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Clipping {
    /// Largest L2 norm of each gradient tensor.
    pub clipnorm: Option<f32>,
    /// Largest absolute value of each gradient element.
    pub clipvalue: Option<f32>,
    /// Largest L2 norm of all gradients together.
    pub global_clipnorm: Option<f32>,
}

/// The config keys, in the order Keras's `get_config()` writes them.
const KEYS: [&str; 3] = ["clipnorm", "global_clipnorm", "clipvalue"];

impl Clipping {
    /// The three settings with their Keras names, in [`KEYS`] order.
    fn named(&self) -> [(&'static str, Option<f32>); 3] {
        [
            (KEYS[0], self.clipnorm),
            (KEYS[1], self.global_clipnorm),
            (KEYS[2], self.clipvalue),
        ]
    }

    /// Whether any clipping is set.
    pub fn is_set(&self) -> bool {
        self.named().iter().any(|(_, value)| value.is_some())
    }

    /// Each value set must be a finite number > 0, and at most one may be set (Keras raises
    /// `ValueError` for several).
    pub fn validate(&self) -> Result<()> {
        let mut first_set: Option<(&str, f32)> = None;
        for (name, value) in self.named() {
            let Some(value) = value else { continue };
            if !(value > 0.0 && value.is_finite()) {
                return Err(Error::invalid(
                    name,
                    value,
                    "must be a finite number > 0 (leave it unset to not clip)",
                ));
            }
            if let Some((other, other_value)) = first_set {
                return Err(Error::invalid(
                    name,
                    value,
                    format!(
                        "only one of clipnorm, clipvalue and global_clipnorm can be set, \
                         and {other}={other_value} is set too"
                    ),
                ));
            }
            first_set = Some((name, value));
        }
        Ok(())
    }

    /// Reads `clipnorm`, `clipvalue` and `global_clipnorm` from an optimizer's Keras config
    /// (missing or `null`: unset) and validates them.
    pub fn from_config(config: &Value) -> Result<Self> {
        let read = |key: &str| -> Result<Option<f32>> {
            match config.get(key) {
                None | Some(Value::Null) => Ok(None),
                Some(value) => value
                    .as_f64()
                    .map(|v| Some(v as f32))
                    .ok_or_else(|| Error::invalid(key, value, "must be a number or null")),
            }
        };
        let clipping = Clipping {
            clipnorm: read("clipnorm")?,
            clipvalue: read("clipvalue")?,
            global_clipnorm: read("global_clipnorm")?,
        };
        clipping.validate()?;
        Ok(clipping)
    }

    /// Adds the three keys to an optimizer's config object, `null` where unset, as Keras writes
    /// them.
    pub fn write_config(&self, config: &mut Value) {
        for (name, value) in self.named() {
            config[name] = value.map_or(Value::Null, Value::from);
        }
    }

    /// Clips the trainable parameters' gradients in place. Follows Keras's precedence
    /// (`clipnorm`, then `global_clipnorm`, then `clipvalue`) and, like Keras, ignores a value
    /// that is not > 0, for a setting that skipped [`Clipping::validate`].
    pub(crate) fn apply(&self, params: &mut ParamStore) {
        let positive = |value: Option<f32>| value.filter(|v| *v > 0.0);
        if let Some(clipnorm) = positive(self.clipnorm) {
            for_each_trainable_grad(params, |grad| {
                let norm = sum_of_squares(grad).sqrt() as f32;
                // g·c/max(‖g‖, c) is g itself unless the norm exceeds c.
                if norm > clipnorm {
                    scale(grad, clipnorm / norm);
                }
            });
        } else if let Some(global_clipnorm) = positive(self.global_clipnorm) {
            let mut total = 0.0;
            for_each_trainable_grad(params, |grad| total += sum_of_squares(grad));
            let norm = total.sqrt() as f32;
            let factor = if norm.is_finite() {
                global_clipnorm / norm.max(global_clipnorm)
            } else {
                f32::NAN
            };
            if factor != 1.0 {
                for_each_trainable_grad(params, |grad| scale(grad, factor));
            }
        } else if let Some(clipvalue) = positive(self.clipvalue) {
            for_each_trainable_grad(params, |grad| {
                grad.iter_mut().for_each(|g| *g = g.clamp(-clipvalue, clipvalue));
            });
        }
    }
}

/// Runs `f` on the gradient of every trainable parameter.
fn for_each_trainable_grad(params: &mut ParamStore, mut f: impl FnMut(&mut [f32])) {
    for id in params.ids() {
        if params.is_trainable(id) {
            f(params.split_for_backward().1[id.index()].data_mut());
        }
    }
}

/// Σg², accumulated in f64 so a large tensor's norm does not lose small terms.
fn sum_of_squares(values: &[f32]) -> f64 {
    values.iter().map(|&v| f64::from(v) * f64::from(v)).sum()
}

fn scale(values: &mut [f32], factor: f32) {
    values.iter_mut().for_each(|v| *v *= factor);
}

/// Adds Keras's builder methods `clipnorm`, `clipvalue` and `global_clipnorm` to an optimizer
/// whose [`Clipping`] lives at the given field path.
macro_rules! clipping_builders {
    ($optimizer:ty, $($field:ident).+) => {
        impl $optimizer {
            /// Clips each gradient tensor to this L2 norm before the update (Keras's `clipnorm`).
            pub fn clipnorm(mut self, clipnorm: f32) -> Self {
                self.$($field).+.clipnorm = Some(clipnorm);
                self
            }

            /// Clamps each gradient element to `[-clipvalue, clipvalue]` before the update
            /// (Keras's `clipvalue`).
            pub fn clipvalue(mut self, clipvalue: f32) -> Self {
                self.$($field).+.clipvalue = Some(clipvalue);
                self
            }

            /// Scales all gradients together so their global L2 norm is at most this before the
            /// update (Keras's `global_clipnorm`).
            pub fn global_clipnorm(mut self, global_clipnorm: f32) -> Self {
                self.$($field).+.global_clipnorm = Some(global_clipnorm);
                self
            }
        }
    };
}

clipping_builders!(super::Sgd, clipping);
clipping_builders!(super::Adam, clipping);
clipping_builders!(super::AdamW, adam.clipping);
clipping_builders!(super::RMSprop, clipping);
clipping_builders!(super::Adagrad, clipping);
