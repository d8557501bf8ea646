//! What the tape records: one [`Op`] per operation, naming the [`Var`]s it read.
//!
//! Below the rules (which record these) and the dispatcher (which runs a rule per `Op`): this
//! file takes no names from either, so neither ties back to the other through it.

use super::cell::RecurrentOptions;
use super::params::ParamId;
use super::pointwise::{BinaryOp, UnaryOp};
use crate::kernels::{ComputeDtype, MAX_PERMUTED_AXES, OutputActivation, Window2d};

/// An order of a tensor's axes (see [`Graph::permute`](super::Graph::permute)), held inline so
/// that an [`Op`] stays `Copy`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct PermutedAxes {
    order: [usize; MAX_PERMUTED_AXES],
    len: usize,
}

impl PermutedAxes {
    /// Holds `order` (at most [`MAX_PERMUTED_AXES`] axes: a bug otherwise).
    pub(crate) fn new(order: &[usize]) -> Self {
        let mut held = [0; MAX_PERMUTED_AXES];
        held[..order.len()].copy_from_slice(order);
        PermutedAxes {
            order: held,
            len: order.len(),
        }
    }

    /// The order: output axis `i` is input axis `order()[i]`.
    pub(crate) fn order(&self) -> &[usize] {
        &self.order[..self.len]
    }
}

/// A handle to one recorded value on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(pub(crate) usize);

/// One recorded operation and the [`Var`]s it read.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Op {
    Constant,
    Param(ParamId),
    MatMul(Var, Var),
    Linear {
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        /// What the forward and backward products compute in.
        dtype: ComputeDtype,
    },
    Binary(BinaryOp, Var, Var),
    Unary(UnaryOp, Var),
    /// `factor·x + shift`.
    Scale(Var, f32, f32),
    Clip(Var, f32, f32),
    Softmax(Var),
    LogSoftmax(Var),
    Sum(Var),
    Mean(Var),
    Reshape(Var),
    Conv2d {
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        window: Window2d,
        /// `max(·, 0)` applied to the output in the same pass.
        relu: bool,
        /// What the products compute in (bfloat16: always through im2col and one product).
        dtype: ComputeDtype,
        /// Added to the output (same shape) before the ReLU: a residual connection's `Add`
        /// fused into the convolution by `predict`.
        residual: Option<Var>,
    },
    /// Each channel of `x` under its own filters (kernel `(KH, KW, C, multiplier)`).
    DepthwiseConv2d {
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        window: Window2d,
        /// Applied to the output in the same pass (inference fuses a ReLU after it).
        activation: OutputActivation,
    },
    /// A 1×1 convolution with stride 1 and the activation after it in its output pass
    /// (inference only records it).
    PointwiseConv2d {
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        activation: OutputActivation,
    },
    /// The transposed convolution of `x` with a `(KH, KW, F, C)` kernel: `window` is the
    /// convolution whose input gradient it is (over the output; see `kernels::conv_transpose`).
    ConvTranspose2d {
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        window: Window2d,
    },
    MaxPool2d {
        x: Var,
        window: Window2d,
    },
    AvgPool2d {
        x: Var,
        window: Window2d,
    },
    SoftmaxCrossEntropy {
        logits: Var,
        target: Var,
        sparse: bool,
    },
    SigmoidCrossEntropy {
        logits: Var,
        target: Var,
    },
    CrossEntropy {
        probs: Var,
        target: Var,
        sparse: bool,
    },
    BinaryCrossEntropy {
        probs: Var,
        target: Var,
    },
    BatchNorm {
        x: Var,
        gamma: Option<Var>,
        beta: Option<Var>,
        epsilon: f32,
        statistics: Statistics,
    },
    LayerNorm {
        x: Var,
        gamma: Option<Var>,
        beta: Option<Var>,
        epsilon: f32,
    },
    Concat {
        a: Var,
        b: Var,
        axis: usize,
    },
    /// Entries `start..` of `x` along `axis`, as many as the output holds.
    Slice {
        x: Var,
        axis: usize,
        start: usize,
    },
    /// `x` placed with its pixel (0, 0) at `offset` = (row, column) of a zero image batch of
    /// the output's shape: zero padding (positive offsets) and cropping (negative).
    Frame2d {
        x: Var,
        offset: (isize, isize),
    },
    /// `x` grown `factor` = (rows, columns) times: each pixel repeated, or with `bilinear`,
    /// interpolated between its neighbours.
    Upsample2d {
        x: Var,
        factor: (usize, usize),
        bilinear: bool,
    },
    /// `x` resized to the output's size (Keras's `Resizing`), bilinear or nearest-neighbour.
    Resize2d {
        x: Var,
        bilinear: bool,
    },
    /// `x` with its axes in another order (Keras's `Permute`).
    Permute {
        x: Var,
        axes: PermutedAxes,
    },
    /// Rows of a table picked by integer ids (Embedding).
    Gather {
        table: Var,
        ids: Var,
    },
    /// A recurrent layer over all steps (SimpleRNN, LSTM, GRU).
    Recurrent {
        inputs: RecurrentInputs,
        options: RecurrentOptions,
    },
    /// Multi-head scaled dot-product attention (`q`, `k`, `v` projected, `mask` (N, Tq, Tk)).
    Attention {
        q: Var,
        k: Var,
        v: Var,
        mask: Option<Var>,
        options: AttentionOptions,
    },
    /// The mean over the steps of `(N, T, C)`, only the real ones where `mask` (N, T) is given.
    MeanSteps {
        x: Var,
        mask: Option<Var>,
    },
    /// An int8 product (`Graph::int8_linear`, `Graph::int8_conv2d`): inference only, its
    /// kernel read from the store's int8 weights.
    Int8 {
        x: Var,
        bias: Option<Var>,
    },
    /// A ReLU convolution (`window`) and the max pooling of its output (`pool`) in one pass
    /// (`Graph::conv2d_relu_max_pool`). It has a gradient (for the kernel and bias alone) where
    /// it was recorded with one: on the direct kernel, its argmax saved.
    ConvReluMaxPool {
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        window: Window2d,
        pool: Window2d,
    },
    /// An inverted residual block (expansion, depthwise convolution, projection, residual)
    /// in one pass (`Graph::inverted_residual`): inference only, no gradient. Its weights are
    /// parameters or constants, which keep their buffers, so only these inputs are listed.
    InvertedResidual {
        x: Var,
        residual: Option<Var>,
    },
    /// `l1·Σ|w| + l2·Σw²`: a weight regularizer's penalty.
    Penalty {
        weight: Var,
        l1: f32,
        l2: f32,
    },
}

impl Op {
    /// A short name for profiles.
    pub(crate) fn name(&self) -> &'static str {
        use Op::*;
        match self {
            Constant => "constant",
            Param(_) => "param",
            MatMul(..) => "matmul",
            Linear { .. } => "linear",
            Binary(kind, ..) => kind.name(),
            Unary(kind, _) => match kind {
                UnaryOp::Relu => "relu",
                UnaryOp::Sigmoid => "sigmoid",
                UnaryOp::Tanh => "tanh",
                _ => "unary",
            },
            Scale(..) => "scale",
            Clip(..) => "clip",
            Softmax(_) => "softmax",
            LogSoftmax(_) => "log_softmax",
            Sum(_) | Mean(_) => "reduce",
            Reshape(_) => "reshape",
            Conv2d { .. } => "conv2d",
            DepthwiseConv2d { .. } => "depthwise_conv2d",
            PointwiseConv2d { .. } => "pointwise_conv2d",
            ConvTranspose2d { .. } => "conv2d_transpose",
            MaxPool2d { .. } => "max_pool2d",
            AvgPool2d { .. } => "avg_pool2d",
            SoftmaxCrossEntropy { .. }
            | SigmoidCrossEntropy { .. }
            | CrossEntropy { .. }
            | BinaryCrossEntropy { .. } => "loss",
            BatchNorm { .. } => "batch_norm",
            LayerNorm { .. } => "layer_norm",
            Penalty { .. } => "penalty",
            Int8 { .. } => "int8",
            ConvReluMaxPool { .. } => "conv2d_relu_max_pool",
            InvertedResidual { .. } => "inverted_residual",
            Concat { .. } => "concatenate",
            Slice { .. } => "slice",
            Frame2d { .. } => "frame2d",
            Upsample2d { .. } => "upsample2d",
            Resize2d { .. } => "resize2d",
            Permute { .. } => "permute",
            Gather { .. } => "gather",
            Recurrent { .. } => "recurrent",
            Attention { .. } => "attention",
            MeanSteps { .. } => "mean_steps",
        }
    }

    /// The operation's inputs that gradients can flow into (at most four).
    pub(crate) fn inputs(&self) -> [Option<Var>; 4] {
        use Op::*;
        let [a, b, c] = match *self {
            Recurrent { inputs, .. } => {
                return [
                    Some(inputs.x),
                    Some(inputs.kernel),
                    Some(inputs.recurrent_kernel),
                    inputs.bias,
                ];
            }
            Conv2d {
                x,
                kernel,
                bias,
                residual,
                ..
            } => return [Some(x), Some(kernel), bias, residual],
            Gather { table, ids } => [Some(table), Some(ids), None],
            Attention { q, k, v, mask, .. } => return [Some(q), Some(k), Some(v), mask],
            other => other.inputs3(),
        };
        [a, b, c, None]
    }

    fn inputs3(&self) -> [Option<Var>; 3] {
        use Op::*;
        match *self {
            Constant | Param(_) | Gather { .. } | Recurrent { .. } | Attention { .. } | Conv2d { .. } => [None; 3],
            MatMul(a, b) | Binary(_, a, b) => [Some(a), Some(b), None],
            Linear { x, kernel, bias, .. }
            | DepthwiseConv2d { x, kernel, bias, .. }
            | PointwiseConv2d { x, kernel, bias, .. }
            | ConvReluMaxPool { x, kernel, bias, .. }
            | ConvTranspose2d { x, kernel, bias, .. } => [Some(x), Some(kernel), bias],
            MaxPool2d { x, .. } | AvgPool2d { x, .. } => [Some(x), None, None],
            Unary(_, x) | Scale(x, ..) | Clip(x, ..) | Softmax(x) | LogSoftmax(x) | Sum(x) | Mean(x) | Reshape(x) => {
                [Some(x), None, None]
            }
            SoftmaxCrossEntropy {
                logits: a, target: b, ..
            }
            | SigmoidCrossEntropy { logits: a, target: b }
            | CrossEntropy {
                probs: a, target: b, ..
            }
            | BinaryCrossEntropy { probs: a, target: b } => [Some(a), Some(b), None],
            BatchNorm { x, gamma, beta, .. } | LayerNorm { x, gamma, beta, .. } => [Some(x), gamma, beta],
            Penalty { weight, .. }
            | Slice { x: weight, .. }
            | Frame2d { x: weight, .. }
            | Upsample2d { x: weight, .. }
            | Resize2d { x: weight, .. }
            | Permute { x: weight, .. } => [Some(weight), None, None],
            Concat { a, b, .. } => [Some(a), Some(b), None],
            MeanSteps { x, mask } => [Some(x), mask, None],
            Int8 { x, bias } => [Some(x), bias, None],
            InvertedResidual { x, residual } => [Some(x), residual, None],
        }
    }
}

/// Where batch normalization's statistics come from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Statistics {
    /// Mean and variance of the batch being normalized (training).
    Batch,
    /// The moving mean and variance parameters (inference).
    Moving {
        /// The moving mean's parameter.
        mean: ParamId,
        /// The moving variance's parameter.
        variance: ParamId,
    },
}

/// The operands of a recurrent operation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RecurrentInputs {
    /// The sequences, `(N, T, features)`.
    pub x: Var,
    /// `(features, gates·units)`.
    pub kernel: Var,
    /// `(units, gates·units)`.
    pub recurrent_kernel: Var,
    /// `(gates·units)`, or `(2, 3·units)` for the GRU (input bias, then recurrent bias).
    pub bias: Option<Var>,
    /// `(N, T)`: 1 for steps to process, 0 for padding.
    pub mask: Option<Var>,
    /// `(N, units)`: recurrent dropout's scaled keep mask.
    pub recurrent_mask: Option<Var>,
}

/// How `Graph::attention` combines its operands.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AttentionOptions {
    /// Number of heads: the last axis of `q`, `k` and `v` is `heads` equal slices.
    pub heads: usize,
    /// Factor on `q·k`; Keras's MultiHeadAttention uses `1/√key_dim`.
    pub scale: f32,
    /// Whether query step `i` sees only key steps `j ≤ i` (Keras's `use_causal_mask`).
    pub causal: bool,
    /// Fraction of the probabilities dropped (training passes only). Defaults to 0.
    pub dropout: f32,
    /// Seed of the dropout decisions, mixed with the pass's noise seed.
    pub seed: u64,
}
