//! The elementwise functions the graph records by kind: [`BinaryOp`] on two tensors and
//! [`UnaryOp`] on one, each with its derivative beside it.

use super::scalar::sigmoid;
use crate::kernels;

/// Elementwise operations on two tensors, broadcast numpy-style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
    Minimum,
}

impl BinaryOp {
    pub(super) fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum => a.max(b),
            BinaryOp::Minimum => a.min(b),
        }
    }

    /// `out[i] = a[i] ∘ b[i]`, the kind matched once rather than per element (a match per
    /// element keeps the loop scalar, with an indirect jump each: 4 % of a Transformer step).
    pub(super) fn zip_into(self, out: &mut [f32], a: &[f32], b: &[f32]) {
        use kernels::zip_map_into as zip;
        match self {
            BinaryOp::Add => zip(out, a, b, |x, y| x + y),
            BinaryOp::Sub => zip(out, a, b, |x, y| x - y),
            BinaryOp::Mul => zip(out, a, b, |x, y| x * y),
            BinaryOp::Div => zip(out, a, b, |x, y| x / y),
            BinaryOp::Maximum => zip(out, a, b, f32::max),
            BinaryOp::Minimum => zip(out, a, b, f32::min),
        }
    }

    /// `out[r·w + j] = full[r·w + j] ∘ row[j]` (or `row[j] ∘ full[r·w + j]` when not
    /// `full_first`), the kind matched once as in [`BinaryOp::zip_into`].
    pub(super) fn zip_rows_into(self, out: &mut [f32], full: &[f32], row: &[f32], full_first: bool) {
        use kernels::zip_rows_into as zip;
        match (self, full_first) {
            (BinaryOp::Add, _) => zip(out, full, row, |x, r| x + r),
            (BinaryOp::Mul, _) => zip(out, full, row, |x, r| x * r),
            (BinaryOp::Sub, true) => zip(out, full, row, |x, r| x - r),
            (BinaryOp::Sub, false) => zip(out, full, row, |x, r| r - x),
            (kind, true) => zip(out, full, row, move |x, r| kind.apply(x, r)),
            (kind, false) => zip(out, full, row, move |x, r| kind.apply(r, x)),
        }
    }

    /// (∂out/∂a, ∂out/∂b) at (a, b).
    pub(super) fn partials(self, a: f32, b: f32) -> (f32, f32) {
        match self {
            BinaryOp::Add => (1.0, 1.0),
            BinaryOp::Sub => (1.0, -1.0),
            BinaryOp::Mul => (b, a),
            BinaryOp::Div => (1.0 / b, -a / (b * b)),
            // Ties send the gradient to the first input, as a `>=` selection does.
            BinaryOp::Maximum => {
                if a >= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
            BinaryOp::Minimum => {
                if a <= b {
                    (1.0, 0.0)
                } else {
                    (0.0, 1.0)
                }
            }
        }
    }

    pub(super) fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "subtract",
            BinaryOp::Mul => "multiply",
            BinaryOp::Div => "divide",
            BinaryOp::Maximum => "maximum",
            BinaryOp::Minimum => "minimum",
        }
    }
}

/// Elementwise functions of one tensor, with their derivatives.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnaryOp {
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e^-x)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// `x` for x ≥ 0, `slope·x` below.
    LeakyRelu(f32),
    /// `x` for x > 0, `alpha·(e^x − 1)` below.
    Elu(f32),
    /// Exact GELU, `x·Φ(x)`.
    Gelu,
    /// GELU's tanh approximation, `x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2` (PyTorch's
    /// `approximate="tanh"`, Keras's `gelu(x, approximate=True)`).
    GeluTanh,
    /// `e^x`.
    Exp,
    /// Natural log.
    Log,
    /// `|x|`.
    Abs,
    /// `x²`.
    Square,
    /// `√x`.
    Sqrt,
    /// `−x`.
    Neg,
    /// Keras's `ReLU` layer: `min(x, max_value)` above `threshold`, `negative_slope·(x −
    /// threshold)` at or below it (`max_value` infinite when unlimited). `relu6` is
    /// `max_value = 6`.
    Rectifier {
        /// The largest output (`f32::INFINITY`: none).
        max_value: f32,
        /// The slope at or below `threshold`.
        negative_slope: f32,
        /// Where the line starts.
        threshold: f32,
    },
    /// `x·σ(x)` (Keras's `silu`, also called `swish`).
    Swish,
    /// `relu6(x + 3) / 6`, Keras 3's piecewise-linear sigmoid.
    HardSigmoid,
    /// `x·hard_sigmoid(x)` (Keras's `hard_silu`, also called `hard_swish`).
    HardSwish,
    /// `ln(1 + e^x)`, computed without overflow.
    Softplus,
    /// `scale·x` for x > 0, `scale·alpha·(e^x − 1)` below, with Keras's constants.
    Selu,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `x·tanh(softplus(x))`.
    Mish,
}

/// SELU's `alpha` (Klambauer et al., as Keras writes it).
pub(crate) const SELU_ALPHA: f32 = 1.673_263_2;
/// SELU's `scale`.
pub(crate) const SELU_SCALE: f32 = 1.050_701;

/// √(2/π), the factor inside GELU's tanh approximation.
const GELU_TANH_SCALE: f32 = 0.797_884_6;
/// The cube's weight inside GELU's tanh approximation.
const GELU_TANH_CUBE: f32 = 0.044_715;

/// The argument of the tanh in GELU's approximation.
fn gelu_tanh_inner(x: f32) -> f32 {
    GELU_TANH_SCALE * (x + GELU_TANH_CUBE * x * x * x)
}

/// `ln(1 + e^x)` as `max(x, 0) + ln(1 + e^−|x|)`, which neither overflows nor loses small values.
fn softplus(x: f32) -> f32 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// Keras 3's hard sigmoid: `relu6(x + 3) / 6`.
fn hard_sigmoid(x: f32) -> f32 {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

impl UnaryOp {
    /// `out[i] = self.apply(x[i])`, with the function chosen once rather than per element:
    /// `apply` is too large to inline, so calling it per value costs a call and a branch
    /// each, and keeps the loop off vectors (half of MobileNetV2's inference time went to its
    /// ReLU6 that way). The arms repeat `apply`'s expressions, so the values are the same.
    pub(super) fn map_into(self, out: &mut [f32], x: &[f32]) {
        use kernels::map_into as map;
        match self {
            UnaryOp::Relu => map(out, x, |v| v.max(0.0)),
            UnaryOp::Rectifier {
                max_value,
                negative_slope,
                threshold,
            } => map(out, x, move |v| {
                if v > threshold {
                    v.min(max_value)
                } else {
                    negative_slope * (v - threshold)
                }
            }),
            UnaryOp::Sigmoid => map(out, x, sigmoid),
            UnaryOp::Swish => map(out, x, |v| v * sigmoid(v)),
            UnaryOp::HardSigmoid => map(out, x, hard_sigmoid),
            UnaryOp::HardSwish => map(out, x, |v| v * hard_sigmoid(v)),
            other => map(out, x, move |v| other.apply(v)),
        }
    }

    /// The function at `x`.
    pub fn apply(self, x: f32) -> f32 {
        match self {
            UnaryOp::Relu => x.max(0.0),
            UnaryOp::Sigmoid => sigmoid(x),
            UnaryOp::Tanh => x.tanh(),
            UnaryOp::LeakyRelu(slope) => {
                if x >= 0.0 {
                    x
                } else {
                    slope * x
                }
            }
            UnaryOp::Elu(alpha) => {
                if x > 0.0 {
                    x
                } else {
                    alpha * x.exp_m1()
                }
            }
            UnaryOp::Gelu => 0.5 * x * (1.0 + kernels::erf(x * std::f32::consts::FRAC_1_SQRT_2)),
            UnaryOp::GeluTanh => 0.5 * x * (1.0 + gelu_tanh_inner(x).tanh()),
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Square => x * x,
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Neg => -x,
            UnaryOp::Rectifier {
                max_value,
                negative_slope,
                threshold,
            } => {
                if x > threshold {
                    x.min(max_value)
                } else {
                    negative_slope * (x - threshold)
                }
            }
            UnaryOp::Swish => x * sigmoid(x),
            UnaryOp::HardSigmoid => hard_sigmoid(x),
            UnaryOp::HardSwish => x * hard_sigmoid(x),
            UnaryOp::Softplus => softplus(x),
            UnaryOp::Selu => {
                if x > 0.0 {
                    SELU_SCALE * x
                } else {
                    SELU_SCALE * SELU_ALPHA * x.exp_m1()
                }
            }
            UnaryOp::Softsign => x / (1.0 + x.abs()),
            UnaryOp::Mish => x * softplus(x).tanh(),
        }
    }

    /// The derivative at `x`, given `y = f(x)` (cheaper for sigmoid, tanh, exp, sqrt).
    pub fn derivative(self, x: f32, y: f32) -> f32 {
        match self {
            UnaryOp::Relu => {
                if x > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            UnaryOp::Sigmoid => y * (1.0 - y),
            UnaryOp::Tanh => 1.0 - y * y,
            UnaryOp::LeakyRelu(slope) => {
                if x >= 0.0 {
                    1.0
                } else {
                    slope
                }
            }
            UnaryOp::Elu(alpha) => {
                if x > 0.0 {
                    1.0
                } else {
                    y + alpha
                }
            }
            UnaryOp::Gelu => {
                let cdf = 0.5 * (1.0 + kernels::erf(x * std::f32::consts::FRAC_1_SQRT_2));
                let pdf = (-0.5 * x * x).exp() * 0.398_942_3;
                cdf + x * pdf
            }
            UnaryOp::GeluTanh => {
                let t = gelu_tanh_inner(x).tanh();
                let inner_slope = GELU_TANH_SCALE * (1.0 + 3.0 * GELU_TANH_CUBE * x * x);
                0.5 * (1.0 + t) + 0.5 * x * (1.0 - t * t) * inner_slope
            }
            UnaryOp::Exp => y,
            UnaryOp::Log => 1.0 / x,
            UnaryOp::Abs => x.signum() * (x != 0.0) as i32 as f32,
            UnaryOp::Square => 2.0 * x,
            UnaryOp::Sqrt => 0.5 / y,
            UnaryOp::Neg => -1.0,
            UnaryOp::Rectifier {
                max_value,
                negative_slope,
                threshold,
            } => {
                if x <= threshold {
                    negative_slope
                } else if x < max_value {
                    1.0
                } else {
                    0.0
                }
            }
            UnaryOp::Swish => {
                let s = sigmoid(x);
                s + x * s * (1.0 - s)
            }
            // Flat outside (−3, 3), as relu6's derivative is outside (0, 6).
            UnaryOp::HardSigmoid => {
                if x > -3.0 && x < 3.0 {
                    1.0 / 6.0
                } else {
                    0.0
                }
            }
            UnaryOp::HardSwish => {
                if x <= -3.0 {
                    0.0
                } else if x >= 3.0 {
                    1.0
                } else {
                    (2.0 * x + 3.0) / 6.0
                }
            }
            UnaryOp::Softplus => sigmoid(x),
            UnaryOp::Selu => {
                if x > 0.0 {
                    SELU_SCALE
                } else {
                    y + SELU_SCALE * SELU_ALPHA
                }
            }
            UnaryOp::Softsign => {
                let d = 1.0 + x.abs();
                1.0 / (d * d)
            }
            UnaryOp::Mish => {
                let t = softplus(x).tanh();
                t + x * (1.0 - t * t) * sigmoid(x)
            }
        }
    }
}
