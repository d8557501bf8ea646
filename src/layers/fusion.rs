//! What a layer tells inference about itself so `predict` can fuse it with its neighbours: a
//! convolution followed by BatchNormalization (and a ReLU) runs as one convolution whose kernel
//! and bias have the normalization folded in (see `model::inference`).

pub use crate::autograd::FoldedNorm;
use crate::autograd::{ParamId, WindowOptions};

/// A layer's part in a fusable run, as [`Layer::inference_role`](super::Layer::inference_role)
/// reports it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum InferenceRole {
    /// A 2-D convolution (or a depthwise one) without an activation of its own:
    /// `conv(x, kernel) + bias`.
    Convolution {
        /// The kernel `(KH, KW, C, F)`.
        kernel: ParamId,
        /// The bias `(F)`, if any.
        bias: Option<ParamId>,
        /// Strides, dilation and padding.
        options: WindowOptions,
        /// A depthwise convolution (kernel `(KH, KW, C, multiplier)`, output channel
        /// `c·multiplier + m`).
        depthwise: bool,
    },
    /// A 2-D convolution with a ReLU of its own: `max(conv(x, kernel) + bias, 0)`. An int8 or
    /// `f32` one read only by a [`InferenceRole::MaxPool`] runs with the pooling folded in.
    ConvolutionRelu {
        /// The kernel `(KH, KW, C, F)`.
        kernel: ParamId,
        /// The bias `(F)`, if any.
        bias: Option<ParamId>,
        /// Strides, dilation and padding.
        options: WindowOptions,
        /// Whether its products are `f32` (not bfloat16, as a mixed-precision policy has them).
        float32: bool,
    },
    /// A 2-D max pooling with this window.
    MaxPool {
        /// The window, (rows, columns).
        size: (usize, usize),
        /// Strides and padding.
        options: WindowOptions,
    },
    /// BatchNormalization over the last axis, as it runs in inference (moving statistics).
    BatchNorm(FoldedNorm),
    /// A plain `max(x, 0)`.
    Relu,
    /// A ReLU capped at `max_value` (ReLU6), without a threshold or negative slope.
    CappedRelu {
        /// The cap.
        max_value: f32,
    },
    /// Zero rows and columns around each image (`ZeroPadding2D`), which a depthwise
    /// convolution reading it alone skips instead of reading.
    ZeroPadding(crate::autograd::Sides),
    /// The elementwise sum of its inputs (Keras's `Add`): the join of a residual connection,
    /// fused into the convolution that computes one of its two inputs.
    Add,
}
