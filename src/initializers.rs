//! Weight initializers with Keras's names and formulas (the `VarianceScaling` family), seeded.

use crate::error::{Error, Result};
use crate::rng::Rng;
use crate::tensor::Tensor;

/// How a weight tensor's starting values are drawn.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Initializer {
    /// Uniform in ±√(6 / (fan_in + fan_out)). Keras's default for kernels.
    GlorotUniform,
    /// Truncated normal, stddev √(2 / (fan_in + fan_out)) / 0.8796.
    GlorotNormal,
    /// Truncated normal, stddev √(2 / fan_in) / 0.8796.
    HeNormal,
    /// Uniform in ±√(6 / fan_in).
    HeUniform,
    /// Truncated normal, stddev √(1 / fan_in) / 0.8796.
    LecunNormal,
    /// Uniform in ±√(3 / fan_in).
    LecunUniform,
    /// All zeros. Keras's default for biases.
    Zeros,
    /// All ones.
    Ones,
    /// All equal to a value.
    Constant(f32),
    /// Normal with `mean` and `stddev` (Keras: 0, 0.05).
    RandomNormal { mean: f32, stddev: f32 },
    /// Uniform in `[minval, maxval)` (Keras: -0.05, 0.05).
    RandomUniform { minval: f32, maxval: f32 },
    /// A random orthogonal matrix times `gain` (Keras: 1.0): the default recurrent kernel of
    /// SimpleRNN, LSTM and GRU. A `(rows, cols)` kernel has orthonormal rows or columns,
    /// whichever are fewer; higher ranks are flattened to `(Π leading axes, last axis)`.
    Orthogonal { gain: f32 },
    /// Keras's `VarianceScaling(scale, mode, distribution)`, of which the named ones above are
    /// cases: variance `scale / n`, `n` being the fan in, the fan out or their average
    /// (`mode`), drawn truncated normal, normal or uniform (`distribution`). EfficientNet's
    /// kernels use `(2.0, fan_out, truncated_normal)`.
    VarianceScaling {
        scale: f32,
        mode: FanMode,
        distribution: Distribution,
    },
}

/// Which fan [`Initializer::VarianceScaling`] divides by.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FanMode {
    /// `fan_in` (Keras's default).
    FanIn,
    /// `fan_out`.
    FanOut,
    /// `(fan_in + fan_out) / 2`.
    FanAvg,
}

/// What [`Initializer::VarianceScaling`] draws from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Distribution {
    /// A normal truncated at two standard deviations (Keras's default).
    TruncatedNormal,
    /// A normal.
    UntruncatedNormal,
    /// A uniform of the same variance.
    Uniform,
}

impl FanMode {
    /// Keras's `mode` name.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "fan_in" => Ok(FanMode::FanIn),
            "fan_out" => Ok(FanMode::FanOut),
            "fan_avg" => Ok(FanMode::FanAvg),
            other => Err(Error::unknown(
                "VarianceScaling mode",
                other,
                &["fan_in", "fan_out", "fan_avg"],
            )),
        }
    }
}

impl Distribution {
    /// Keras's `distribution` name (`normal` is Keras's old name for the truncated one).
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "truncated_normal" | "normal" => Ok(Distribution::TruncatedNormal),
            "untruncated_normal" => Ok(Distribution::UntruncatedNormal),
            "uniform" => Ok(Distribution::Uniform),
            other => Err(Error::unknown(
                "VarianceScaling distribution",
                other,
                &["truncated_normal", "untruncated_normal", "uniform"],
            )),
        }
    }
}

/// The names [`Initializer::from_name`] accepts.
pub const NAMES: &[&str] = &[
    "glorot_uniform",
    "glorot_normal",
    "he_normal",
    "he_uniform",
    "lecun_normal",
    "lecun_uniform",
    "zeros",
    "ones",
    "random_normal",
    "random_uniform",
    "orthogonal",
    "variance_scaling",
];

/// Truncating a standard normal at ±2 shrinks its stddev by this factor; Keras divides by it.
const TRUNCATION_STDDEV: f32 = 0.879_625_7;

impl Initializer {
    /// Looks an initializer up by its Keras name (`glorot_uniform` or `GlorotUniform`).
    pub fn from_name(name: &str) -> Result<Self> {
        let snake = to_snake_case(name);
        Ok(match snake.as_str() {
            "glorot_uniform" => Initializer::GlorotUniform,
            "glorot_normal" => Initializer::GlorotNormal,
            "he_normal" => Initializer::HeNormal,
            "he_uniform" => Initializer::HeUniform,
            "lecun_normal" => Initializer::LecunNormal,
            "lecun_uniform" => Initializer::LecunUniform,
            "zeros" | "zero" => Initializer::Zeros,
            "ones" | "one" => Initializer::Ones,
            "random_normal" => Initializer::RandomNormal {
                mean: 0.0,
                stddev: 0.05,
            },
            "random_uniform" => Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            "orthogonal" => Initializer::Orthogonal { gain: 1.0 },
            "variance_scaling" => Initializer::VarianceScaling {
                scale: 1.0,
                mode: FanMode::FanIn,
                distribution: Distribution::TruncatedNormal,
            },
            _ => return Err(Error::unknown("initializer", name, NAMES)),
        })
    }

    /// The Keras name.
    pub fn name(&self) -> &'static str {
        match self {
            Initializer::GlorotUniform => "glorot_uniform",
            Initializer::GlorotNormal => "glorot_normal",
            Initializer::HeNormal => "he_normal",
            Initializer::HeUniform => "he_uniform",
            Initializer::LecunNormal => "lecun_normal",
            Initializer::LecunUniform => "lecun_uniform",
            Initializer::Zeros => "zeros",
            Initializer::Ones => "ones",
            Initializer::Constant(_) => "constant",
            Initializer::RandomNormal { .. } => "random_normal",
            Initializer::RandomUniform { .. } => "random_uniform",
            Initializer::Orthogonal { .. } => "orthogonal",
            Initializer::VarianceScaling { .. } => "variance_scaling",
        }
    }

    /// A tensor of `shape` drawn from this initializer.
    pub fn initialize(&self, shape: &[usize], rng: &mut Rng) -> Tensor {
        let (fan_in, fan_out) = fans(shape);
        let mut tensor = Tensor::zeros(shape);
        let values = tensor.data_mut();
        let uniform = |values: &mut [f32], rng: &mut Rng, limit: f32| {
            values.iter_mut().for_each(|v| *v = rng.uniform(-limit, limit));
        };
        let truncated = |values: &mut [f32], rng: &mut Rng, variance: f32| {
            let stddev = variance.sqrt() / TRUNCATION_STDDEV;
            values.iter_mut().for_each(|v| *v = rng.truncated_normal(stddev));
        };
        let fan_avg = ((fan_in + fan_out) / 2.0).max(1.0);
        let fan_out = fan_out.max(1.0);
        let fan_in = fan_in.max(1.0);
        match *self {
            Initializer::GlorotUniform => uniform(values, rng, (3.0 / fan_avg).sqrt()),
            Initializer::GlorotNormal => truncated(values, rng, 1.0 / fan_avg),
            Initializer::HeNormal => truncated(values, rng, 2.0 / fan_in),
            Initializer::HeUniform => uniform(values, rng, (6.0 / fan_in).sqrt()),
            Initializer::LecunNormal => truncated(values, rng, 1.0 / fan_in),
            Initializer::LecunUniform => uniform(values, rng, (3.0 / fan_in).sqrt()),
            Initializer::Zeros => {}
            Initializer::Ones => values.fill(1.0),
            Initializer::Constant(c) => values.fill(c),
            Initializer::RandomNormal { mean, stddev } => {
                values.iter_mut().for_each(|v| *v = mean + stddev * rng.normal())
            }
            Initializer::RandomUniform { minval, maxval } => {
                values.iter_mut().for_each(|v| *v = rng.uniform(minval, maxval))
            }
            Initializer::Orthogonal { gain } => orthogonal(values, shape, gain, rng),
            Initializer::VarianceScaling {
                scale,
                mode,
                distribution,
            } => {
                let n = match mode {
                    FanMode::FanIn => fan_in,
                    FanMode::FanOut => fan_out,
                    FanMode::FanAvg => fan_avg,
                };
                let variance = scale / n;
                match distribution {
                    Distribution::TruncatedNormal => truncated(values, rng, variance),
                    Distribution::UntruncatedNormal => {
                        let stddev = variance.sqrt();
                        values.iter_mut().for_each(|v| *v = stddev * rng.normal())
                    }
                    Distribution::Uniform => uniform(values, rng, (3.0 * variance).sqrt()),
                }
            }
        }
        tensor
    }
}

/// Keras's `Orthogonal`: a normal `(rows, cols)` matrix, orthonormalized along its longer side
/// (the QR decomposition's Q with R's diagonal made positive), times `gain`.
///
/// Modified Gram-Schmidt written out here rather than a linear-algebra crate: it runs once per
/// recurrent kernel when a model is built (a few hundred columns at most), never in a step, and
/// a QR dependency would cost more build time than these lines.
fn orthogonal(values: &mut [f32], shape: &[usize], gain: f32, rng: &mut Rng) {
    let cols = shape.last().copied().unwrap_or(1).max(1);
    let rows = values.len() / cols;
    // Work on the tall orientation: `vectors` are its columns, each `length` long.
    let (count, length) = if rows < cols { (rows, cols) } else { (cols, rows) };
    let mut vectors: Vec<Vec<f64>> = (0..count)
        .map(|_| (0..length).map(|_| rng.normal() as f64).collect())
        .collect();
    for i in 0..count {
        let (done, rest) = vectors.split_at_mut(i);
        let v = &mut rest[0];
        for q in done.iter() {
            let dot: f64 = q.iter().zip(v.iter()).map(|(a, b)| a * b).sum();
            v.iter_mut().zip(q).for_each(|(x, q)| *x -= dot * q);
        }
        let norm = v.iter().map(|x| x * x).sum::<f64>().sqrt().max(f64::MIN_POSITIVE);
        v.iter_mut().for_each(|x| *x /= norm);
    }
    for (i, vector) in vectors.iter().enumerate() {
        for (j, &x) in vector.iter().enumerate() {
            // Tall: vector i is column i. Wide: vector i is row i.
            let at = if rows < cols { i * cols + j } else { j * cols + i };
            values[at] = gain * x as f32;
        }
    }
}

/// Keras's `compute_fans`: a Dense kernel `(in, out)`; a conv kernel `(..., in, out)` scaled by
/// its receptive field.
pub fn fans(shape: &[usize]) -> (f32, f32) {
    match shape.len() {
        0 => (1.0, 1.0),
        1 => (shape[0] as f32, shape[0] as f32),
        2 => (shape[0] as f32, shape[1] as f32),
        n => {
            let receptive: usize = shape[..n - 2].iter().product();
            ((shape[n - 2] * receptive) as f32, (shape[n - 1] * receptive) as f32)
        }
    }
}

/// Keras's `to_snake_case`: `GlorotUniform` → `glorot_uniform`, `Conv2D` → `conv2d`,
/// `MaxPooling2D` → `max_pooling2d`. A `_` goes before a capital that starts a lowercase word and
/// between a lowercase letter and a capital.
pub(crate) fn to_snake_case(name: &str) -> String {
    let chars: Vec<char> = name.chars().collect();
    let mut out = String::new();
    for (i, &c) in chars.iter().enumerate() {
        let starts_word = c.is_ascii_uppercase() && chars.get(i + 1).is_some_and(|n| n.is_ascii_lowercase());
        let after_lower = c.is_ascii_uppercase() && i > 0 && chars[i - 1].is_ascii_lowercase();
        if i > 0 && (starts_word || after_lower) && !out.ends_with('_') {
            out.push('_');
        }
        out.push(c.to_ascii_lowercase());
    }
    out
}

impl TryFrom<&str> for Initializer {
    type Error = Error;
    fn try_from(name: &str) -> Result<Self> {
        Initializer::from_name(name)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn glorot_uniform_stays_inside_its_limit_and_fills_it() {
        let t = Initializer::GlorotUniform.initialize(&[784, 128], &mut Rng::new(0));
        let limit = (6.0f32 / (784.0 + 128.0)).sqrt();
        let max = t.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
        assert!(max <= limit && max > 0.95 * limit, "{max} vs {limit}");
    }

    #[test]
    fn he_normal_has_the_keras_stddev() {
        let t = Initializer::HeNormal.initialize(&[400, 300], &mut Rng::new(1));
        let n = t.len() as f32;
        let mean = t.data().iter().sum::<f32>() / n;
        let std = (t.data().iter().map(|v| (v - mean).powi(2)).sum::<f32>() / n).sqrt();
        let expected = (2.0f32 / 400.0).sqrt();
        assert!((std - expected).abs() < 0.03 * expected, "{std} vs {expected}");
    }

    #[test]
    fn variance_scaling_fan_out_has_the_keras_stddev() {
        // EfficientNet's kernels: VarianceScaling(2.0, "fan_out", "truncated_normal").
        let init = Initializer::VarianceScaling {
            scale: 2.0,
            mode: FanMode::FanOut,
            distribution: Distribution::TruncatedNormal,
        };
        let t = init.initialize(&[3, 3, 8, 64], &mut Rng::new(2));
        let n = t.len() as f32;
        let std = (t.data().iter().map(|v| v * v).sum::<f32>() / n).sqrt();
        let expected = (2.0f32 / (9.0 * 64.0)).sqrt();
        assert!((std - expected).abs() < 0.05 * expected, "{std} vs {expected}");
    }

    #[test]
    fn conv_fans_and_names() {
        assert_eq!(fans(&[3, 3, 1, 32]), (9.0, 288.0));
        assert_eq!(
            Initializer::from_name("GlorotUniform").unwrap(),
            Initializer::GlorotUniform
        );
        assert!(
            Initializer::from_name("xavier")
                .unwrap_err()
                .to_string()
                .contains("glorot_uniform")
        );
    }
}
