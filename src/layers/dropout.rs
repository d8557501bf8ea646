//! Noise layers that fight overfitting, active only in training: [`Dropout`],
//! [`SpatialDropout1D`], [`SpatialDropout2D`], [`GaussianNoise`], [`GaussianDropout`] and
//! [`AlphaDropout`]. At inference each is the identity.
//!
//! Their noise comes from the pass's seed (the model's seed and the optimizer's step count)
//! mixed with the layer's `seed`, or with a hash of its name when no seed is given: runs are
//! reproducible, and a resumed run draws the masks an uninterrupted one would have.

use super::{Layer, args};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::{Rng, hash_name};

/// Which noise a [`NoiseLayer`] applies.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Noise {
    /// Zero each value with probability `rate`, scale the rest by `1 / (1 − rate)`.
    Dropout { rate: f32 },
    /// Zero whole channels with probability `rate`: of `(N, steps, C)` sequences (`dims` 1)
    /// or `(N, H, W, C)` images (`dims` 2).
    Spatial { rate: f32, dims: usize },
    /// Add zero-mean normal noise.
    Gaussian { stddev: f32 },
    /// Multiply by normal noise of mean 1 and variance `rate / (1 − rate)`.
    GaussianDropout { rate: f32 },
    /// Set dropped values to SELU's negative saturation and rescale, keeping a self-normalizing
    /// network's mean and variance.
    Alpha { rate: f32 },
}

/// A noise layer; build one with [`Dropout::new`], [`SpatialDropout2D::new`],
/// [`GaussianNoise::new`], [`GaussianDropout::new`] or [`AlphaDropout::new`].
#[derive(Clone, Debug)]
pub struct NoiseLayer {
    args: LayerArgs,
    noise: Noise,
    seed: Option<u64>,
    /// Dropout's `noise_shape`: the mask's shape, batch axis included, `None` for "the input's
    /// size"; an axis of size 1 shares one draw (EfficientNet's `(None, 1, 1, 1)` drops whole
    /// samples).
    noise_shape: Option<Vec<Option<usize>>>,
}

/// Inverted dropout, as Keras's `Dropout(rate, seed=None)`: in training each value is zeroed with
/// probability `rate` and the others are scaled by `1 / (1 − rate)`, so the expected output
/// equals the input.
///
/// ```
/// use strata::layers::Dropout;
/// let dropout = Dropout::new(0.5);
/// ```
pub struct Dropout;

impl Dropout {
    /// Drops each value with probability `rate`, in `[0, 1)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(rate: f32) -> NoiseLayer {
        NoiseLayer::new(Noise::Dropout { rate })
    }
}

/// Keras's `SpatialDropout2D(rate)`: drops whole feature maps of channels-last images, which
/// suits convolutions, whose neighbouring pixels are strongly correlated.
pub struct SpatialDropout2D;

impl SpatialDropout2D {
    /// Drops each channel of each sample with probability `rate`, in `[0, 1)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(rate: f32) -> NoiseLayer {
        NoiseLayer::new(Noise::Spatial { rate, dims: 2 })
    }
}

/// Keras's `SpatialDropout1D(rate)`: drops whole feature channels of `(N, steps, C)` sequences
/// (every step of a channel together), as text models after an `Embedding` use it.
pub struct SpatialDropout1D;

impl SpatialDropout1D {
    /// Drops each channel of each sample with probability `rate`, in `[0, 1)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(rate: f32) -> NoiseLayer {
        NoiseLayer::new(Noise::Spatial { rate, dims: 1 })
    }
}

/// Keras's `GaussianNoise(stddev)`: adds normal noise of standard deviation `stddev` in training.
pub struct GaussianNoise;

impl GaussianNoise {
    /// Adds noise of standard deviation `stddev` (≥ 0).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(stddev: f32) -> NoiseLayer {
        NoiseLayer::new(Noise::Gaussian { stddev })
    }
}

/// Keras's `GaussianDropout(rate)`: multiplies each value in training by normal noise of mean 1
/// and standard deviation `sqrt(rate / (1 − rate))`, dropout's variance without its zeros.
///
/// ```
/// use strata::layers::GaussianDropout;
/// let noise = GaussianDropout::new(0.2);
/// ```
pub struct GaussianDropout;

impl GaussianDropout {
    /// Noise of the variance a dropout of `rate` (in `[0, 1)`) would give.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(rate: f32) -> NoiseLayer {
        NoiseLayer::new(Noise::GaussianDropout { rate })
    }
}

/// Keras's `AlphaDropout(rate)`, the dropout of self-normalizing networks (`selu` activations,
/// `lecun_normal` weights): in training each value is dropped with probability `rate` to SELU's
/// negative saturation `α' = −λα`, then all are mapped by `a·x + b` with
/// `a = ((1 − rate)(1 + rate·α'²))^(−1/2)` and `b = −a·α'·rate`, which keeps a standardized
/// input's mean and variance.
///
/// ```
/// use strata::layers::AlphaDropout;
/// let dropout = AlphaDropout::new(0.1);
/// ```
pub struct AlphaDropout;

impl AlphaDropout {
    /// Drops each value with probability `rate`, in `[0, 1)`.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(rate: f32) -> NoiseLayer {
        NoiseLayer::new(Noise::Alpha { rate })
    }
}

/// SELU's `λ·α`: the value SELU tends to for large negative inputs is its negative.
const SELU_SATURATION: f64 = 1.050_700_987_355_480_5 * 1.673_263_242_354_377_3;

impl NoiseLayer {
    fn new(noise: Noise) -> Self {
        NoiseLayer {
            args: LayerArgs::default(),
            noise,
            seed: None,
            noise_shape: None,
        }
    }

    /// Keras's `noise_shape` for `Dropout`: the dropout mask's shape, batch axis first, `None`
    /// where it follows the input; each given size must be 1 or the input's.
    pub fn noise_shape(mut self, shape: &[Option<usize>]) -> Self {
        self.noise_shape = Some(shape.to_vec());
        self
    }

    /// The mask's shape for an input of `shape` (batch axis included), or the error naming the
    /// layer and both shapes.
    fn mask_shape(&self, shape: &[usize]) -> Result<Vec<usize>> {
        let Some(noise_shape) = &self.noise_shape else {
            return Ok(shape.to_vec());
        };
        let fits = noise_shape.len() == shape.len()
            && noise_shape
                .iter()
                .zip(shape)
                .all(|(n, &s)| n.is_none_or(|n| n == 1 || n == s));
        if !fits {
            return Err(Error::invalid(
                "noise_shape",
                format!("{noise_shape:?}"),
                format!(
                    "layer '{}' (Dropout): each size must be None, 1 or the input's, for inputs of shape {}",
                    self.args.name,
                    keras_shape(&shape[1..])
                ),
            ));
        }
        Ok(noise_shape.iter().zip(shape).map(|(n, &s)| n.unwrap_or(s)).collect())
    }

    /// Seeds this layer's noise (mixed with the model's per-step seed).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Checks the rate or standard deviation.
    fn validate(&self) -> Result<()> {
        match self.noise {
            Noise::Dropout { rate }
            | Noise::Spatial { rate, .. }
            | Noise::GaussianDropout { rate }
            | Noise::Alpha { rate }
                if !(0.0..1.0).contains(&rate) =>
            {
                Err(Error::invalid(
                    "rate",
                    rate,
                    format!("layer '{}': a dropout rate must be in [0, 1)", self.args.name),
                ))
            }
            Noise::Gaussian { stddev } if !(stddev.is_finite() && stddev >= 0.0) => Err(Error::invalid(
                "stddev",
                stddev,
                format!("layer '{}': the noise's standard deviation must be ≥ 0", self.args.name),
            )),
            _ => Ok(()),
        }
    }
}

impl NoiseLayer {
    /// A noise layer of Keras's class `class_name` from its `get_config()` keys.
    pub(crate) fn from_config(class_name: &str, config: &serde_json::Value) -> Result<Self> {
        let key = if class_name == "GaussianNoise" {
            "stddev"
        } else {
            "rate"
        };
        let value =
            args::number(config, key)?.ok_or_else(|| Error::Data(format!("{class_name} needs a number \"{key}\"")))?;
        let mut layer = match class_name {
            "Dropout" => Dropout::new(value),
            "SpatialDropout2D" => SpatialDropout2D::new(value),
            "SpatialDropout1D" => SpatialDropout1D::new(value),
            "GaussianDropout" => GaussianDropout::new(value),
            "AlphaDropout" => AlphaDropout::new(value),
            _ => GaussianNoise::new(value),
        };
        layer.seed = args::seed(config)?;
        if matches!(class_name, "Dropout" | "AlphaDropout") {
            layer.noise_shape = noise_shape(config)?;
        }
        Ok(layer)
    }
}

layer_builders!(NoiseLayer);

impl Layer for NoiseLayer {
    fn class_name(&self) -> &'static str {
        match self.noise {
            Noise::Dropout { .. } => "Dropout",
            Noise::Spatial { dims: 1, .. } => "SpatialDropout1D",
            Noise::Spatial { .. } => "SpatialDropout2D",
            Noise::Gaussian { .. } => "GaussianNoise",
            Noise::GaussianDropout { .. } => "GaussianDropout",
            Noise::Alpha { .. } => "AlphaDropout",
        }
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.validate()?;
        if let Noise::Spatial { dims, .. } = self.noise
            && input_shape.len() != dims + 1
        {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: match dims {
                    1 => "(None, steps, channels)".into(),
                    _ => "(None, height, width, channels)".into(),
                },
                received: keras_shape(input_shape),
            });
        }
        // The batch axis is unknown here; any size fits a `None` or 1 there.
        let with_batch: Vec<usize> = std::iter::once(1).chain(input_shape.iter().copied()).collect();
        self.mask_shape(&with_batch)?;
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let active = match self.noise {
            Noise::Dropout { rate }
            | Noise::Spatial { rate, .. }
            | Noise::GaussianDropout { rate }
            | Noise::Alpha { rate } => rate > 0.0,
            Noise::Gaussian { stddev } => stddev > 0.0,
        };
        if !graph.training() || !active {
            return Ok(x);
        }
        let salt = self.seed.unwrap_or_else(|| hash_name(&self.args.name));
        let key = graph.noise_key(salt);
        let shape = graph.dims(x);
        let (rows, channels) = (shape[0], *shape.last().unwrap_or(&1));
        let y = match self.noise {
            Noise::Dropout { rate } => {
                // A plain dropout's mask is the input's shape: no per-step allocation for it.
                let mask_shape = match self.noise_shape {
                    Some(_) => Some(self.mask_shape(&shape)?),
                    None => None,
                };
                let noise = graph.constant_with(|mask| {
                    mask.resize_for(mask_shape.as_deref().unwrap_or(&shape));
                    fill_mask(mask.data_mut(), rate, key);
                });
                graph.mul(x, noise)
            }
            Noise::Spatial { rate, dims } => {
                let mask_shape: Vec<usize> = std::iter::once(rows)
                    .chain(std::iter::repeat_n(1, dims))
                    .chain(std::iter::once(channels))
                    .collect();
                let noise = graph.constant_with(|mask| {
                    mask.resize_for(&mask_shape);
                    fill_mask(mask.data_mut(), rate, key);
                });
                graph.mul(x, noise)
            }
            Noise::Gaussian { stddev } => {
                let mut rng = Rng::new(key);
                let noise = graph.constant_with(|noise| {
                    noise.resize_for(&shape);
                    noise.data_mut().iter_mut().for_each(|v| *v = stddev * rng.normal());
                });
                graph.add(x, noise)
            }
            Noise::GaussianDropout { rate } => {
                let stddev = (rate / (1.0 - rate)).sqrt();
                let mut rng = Rng::new(key);
                let noise = graph.constant_with(|noise| {
                    noise.resize_for(&shape);
                    noise
                        .data_mut()
                        .iter_mut()
                        .for_each(|v| *v = 1.0 + stddev * rng.normal());
                });
                graph.mul(x, noise)
            }
            Noise::Alpha { rate } => self.alpha_dropout(graph, x, rate, key),
        }?;
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn config(&self) -> serde_json::Value {
        match self.noise {
            Noise::Dropout { rate } => self
                .args
                .config(serde_json::json!({"rate": rate, "seed": self.seed, "noise_shape": self.noise_shape})),
            Noise::Spatial { rate, .. } => self.args.config(serde_json::json!({"rate": rate, "seed": self.seed})),
            Noise::Gaussian { stddev } => self
                .args
                .config(serde_json::json!({"stddev": stddev, "seed": self.seed})),
            Noise::GaussianDropout { rate } => self.args.config(serde_json::json!({"rate": rate, "seed": self.seed})),
            Noise::Alpha { rate } => self
                .args
                .config(serde_json::json!({"rate": rate, "seed": self.seed, "noise_shape": self.noise_shape})),
        }
    }
}

impl NoiseLayer {
    /// `AlphaDropout` in training: `x·m + c`, where a kept value has `m = a`, `c = b` and a
    /// dropped one `m = 0`, `c = a·α' + b` (see [`AlphaDropout`]).
    fn alpha_dropout(&self, graph: &mut Graph, x: Var, rate: f32, key: u64) -> Result<Var> {
        let shape = graph.dims(x);
        let mask_shape = self.mask_shape(&shape)?;
        let saturation = -SELU_SATURATION;
        let rate64 = f64::from(rate);
        let a = ((1.0 - rate64) * (1.0 + rate64 * saturation * saturation)).powf(-0.5);
        let b = -a * saturation * rate64;
        let (kept_scale, dropped_value, kept_shift) = (a as f32, (a * saturation + b) as f32, b as f32);
        // Both draw the same mask from `key` (recycled buffers, no allocation per step).
        let scales = graph.constant_with(|scales| {
            scales.resize_for(&mask_shape);
            fill_mask(scales.data_mut(), rate, key);
            for scale in scales.data_mut() {
                *scale = if *scale != 0.0 { kept_scale } else { 0.0 };
            }
        });
        let shifts = graph.constant_with(|shifts| {
            shifts.resize_for(&mask_shape);
            fill_mask(shifts.data_mut(), rate, key);
            for shift in shifts.data_mut() {
                *shift = if *shift != 0.0 { kept_shift } else { dropped_value };
            }
        });
        let scaled = graph.mul(x, scales)?;
        graph.add(scaled, shifts)
    }
}

/// Keras's `noise_shape` key: `null`, or a list of sizes and `null`s.
fn noise_shape(config: &serde_json::Value) -> Result<Option<Vec<Option<usize>>>> {
    match config.get("noise_shape") {
        None | Some(serde_json::Value::Null) => Ok(None),
        Some(value) => serde_json::from_value(value.clone())
            .map(Some)
            .map_err(|_| Error::Data(format!("\"noise_shape\" must be a list of sizes or nulls, got {value}"))),
    }
}

/// Fills `mask` with `1 / (1 − rate)` where a value is kept (probability `1 − rate`) and 0 where
/// it is dropped, the draws fixed by `key` (see [`Graph::noise_key`]).
pub(super) fn fill_mask(mask: &mut [f32], rate: f32, key: u64) {
    crate::kernels::dropout_mask(mask, rate, key);
}
