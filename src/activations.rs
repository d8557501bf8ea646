//! Activation functions by Keras name: `relu`, `sigmoid`, `tanh`, `softmax`, `linear`,
//! `leaky_relu`, `elu`, `gelu`.

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
}

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
            _ => return Err(Error::unknown("activation", name, NAMES)),
        })
    }

    /// The Keras name.
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
        }
    }
}

impl TryFrom<&str> for Activation {
    type Error = Error;
    fn try_from(name: &str) -> Result<Self> {
        Activation::from_name(name)
    }
}
