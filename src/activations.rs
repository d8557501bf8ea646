//! Activation functions by Keras name: `relu`, `sigmoid`, `tanh`, `softmax`, `linear`,
//! `leaky_relu`, `elu`, `gelu`, and those of the Keras Applications architectures: `relu6`,
//! `silu` (`swish`), `hard_sigmoid`, `hard_silu` (`hard_swish`), `softplus`, `selu`,
//! `softsign`, `exponential`, `mish`; `log_softmax` (PyTorch classifiers end in it) and
//! `gelu_approximate` (GELU's tanh form, keras-hub's name; GPT-2 and ALBERT use it).

use crate::autograd::{Graph, UnaryOp, Var};
use crate::error::{Error, Result};

/// An activation function, applied elementwise (or over the last axis for softmax).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Activation {
    /// Identity (Keras's `linear`, and `None`).
    Linear,
    /// `max(x, 0)`.
    Relu,
    /// Logistic sigmoid.
    Sigmoid,
    /// Hyperbolic tangent.
    Tanh,
    /// Softmax over the last axis.
    Softmax,
    /// Leaky ReLU with `negative_slope` (Keras's default 0.2; PyTorch uses 0.01).
    LeakyRelu(f32),
    /// ELU with `alpha` (default 1.0).
    Elu(f32),
    /// Exact GELU (Keras's `approximate=False`).
    Gelu,
    /// GELU's tanh approximation (Keras's `gelu(x, approximate=True)`, PyTorch's
    /// `approximate="tanh"`).
    GeluApproximate,
    /// Log-softmax over the last axis.
    LogSoftmax,
    /// `min(max(x, 0), 6)` (MobileNet).
    Relu6,
    /// `x·σ(x)`: Keras 3's `silu`, also accepted as `swish` (EfficientNet).
    Swish,
    /// `relu6(x + 3) / 6`, as Keras 3 defines it (Keras 2 used `0.2·x + 0.5`).
    HardSigmoid,
    /// `x·hard_sigmoid(x)`: Keras 3's `hard_silu`, also accepted as `hard_swish`
    /// (MobileNetV3).
    HardSwish,
    /// `ln(1 + e^x)`.
    Softplus,
    /// Scaled ELU with Keras's constants (`alpha ≈ 1.6733`, `scale ≈ 1.0507`).
    Selu,
    /// `x / (1 + |x|)`.
    Softsign,
    /// `e^x`.
    Exponential,
    /// `x·tanh(softplus(x))`.
    Mish,
}

/// `relu6` as the general rectifier Keras's `ReLU` layer computes.
const RELU6: UnaryOp = UnaryOp::Rectifier {
    max_value: 6.0,
    negative_slope: 0.0,
    threshold: 0.0,
};

/// The names [`Activation::from_name`] accepts.
pub const NAMES: &[&str] = &[
    "linear",
    "relu",
    "sigmoid",
    "tanh",
    "softmax",
    "leaky_relu",
    "elu",
    "gelu",
    "gelu_approximate",
    "log_softmax",
    "relu6",
    "silu",
    "swish",
    "hard_sigmoid",
    "hard_silu",
    "hard_swish",
    "softplus",
    "selu",
    "softsign",
    "exponential",
    "mish",
];

impl Activation {
    /// Looks an activation up by its Keras name (`None`/empty means linear).
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name.to_ascii_lowercase().as_str() {
            "linear" | "none" | "" => Activation::Linear,
            "relu" => Activation::Relu,
            "sigmoid" => Activation::Sigmoid,
            "tanh" => Activation::Tanh,
            "softmax" => Activation::Softmax,
            "leaky_relu" => Activation::LeakyRelu(0.2),
            "elu" => Activation::Elu(1.0),
            "gelu" => Activation::Gelu,
            "gelu_approximate" => Activation::GeluApproximate,
            "log_softmax" => Activation::LogSoftmax,
            "relu6" => Activation::Relu6,
            "silu" | "swish" => Activation::Swish,
            "hard_sigmoid" => Activation::HardSigmoid,
            "hard_silu" | "hard_swish" => Activation::HardSwish,
            "softplus" => Activation::Softplus,
            "selu" => Activation::Selu,
            "softsign" => Activation::Softsign,
            "exponential" => Activation::Exponential,
            "mish" => Activation::Mish,
            _ => return Err(Error::unknown("activation", name, NAMES)),
        })
    }

    /// The Keras 3 name (`silu` and `hard_silu` for the functions also called swish).
    pub fn name(&self) -> &'static str {
        match self {
            Activation::Linear => "linear",
            Activation::Relu => "relu",
            Activation::Sigmoid => "sigmoid",
            Activation::Tanh => "tanh",
            Activation::Softmax => "softmax",
            Activation::LeakyRelu(_) => "leaky_relu",
            Activation::Elu(_) => "elu",
            Activation::Gelu => "gelu",
            Activation::GeluApproximate => "gelu_approximate",
            Activation::LogSoftmax => "log_softmax",
            Activation::Relu6 => "relu6",
            Activation::Swish => "silu",
            Activation::HardSigmoid => "hard_sigmoid",
            Activation::HardSwish => "hard_silu",
            Activation::Softplus => "softplus",
            Activation::Selu => "selu",
            Activation::Softsign => "softsign",
            Activation::Exponential => "exponential",
            Activation::Mish => "mish",
        }
    }

    /// Records the activation of `x` on the graph.
    pub fn apply(&self, graph: &mut Graph, x: Var) -> Var {
        match *self {
            Activation::Linear => x,
            Activation::Relu => graph.unary(UnaryOp::Relu, x),
            Activation::Sigmoid => graph.unary(UnaryOp::Sigmoid, x),
            Activation::Tanh => graph.unary(UnaryOp::Tanh, x),
            Activation::Softmax => graph.softmax(x),
            Activation::LeakyRelu(slope) => graph.unary(UnaryOp::LeakyRelu(slope), x),
            Activation::Elu(alpha) => graph.unary(UnaryOp::Elu(alpha), x),
            Activation::Gelu => graph.unary(UnaryOp::Gelu, x),
            Activation::GeluApproximate => graph.unary(UnaryOp::GeluTanh, x),
            Activation::LogSoftmax => graph.log_softmax(x),
            Activation::Relu6 => graph.unary(RELU6, x),
            Activation::Swish => graph.unary(UnaryOp::Swish, x),
            Activation::HardSigmoid => graph.unary(UnaryOp::HardSigmoid, x),
            Activation::HardSwish => graph.unary(UnaryOp::HardSwish, x),
            Activation::Softplus => graph.unary(UnaryOp::Softplus, x),
            Activation::Selu => graph.unary(UnaryOp::Selu, x),
            Activation::Softsign => graph.unary(UnaryOp::Softsign, x),
            Activation::Exponential => graph.unary(UnaryOp::Exp, x),
            Activation::Mish => graph.unary(UnaryOp::Mish, x),
        }
    }
}

impl TryFrom<&str> for Activation {
    type Error = Error;
    fn try_from(name: &str) -> Result<Self> {
        Activation::from_name(name)
    }
}
