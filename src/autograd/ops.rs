//! The differentiable operations: each forward (a method on [`Graph`]) and its backward rule
//! (`*_backward`) sit next to each other, so one can be checked against the other on a screen.
//!
//! The set is small on purpose. Layers compose these; a few fusions (`linear`, the
//! cross-entropies) exist because they are faster or numerically safer than their parts.

use super::normalization::{self, Statistics};
use super::{GradTargets, Graph, Inputs, Node, ParamId, Var, losses};
use crate::error::{Error, Result};
use crate::kernels::{self, Transpose, Window2d};
use crate::tensor::{Dims, Tensor, broadcast_dims, numel};

/// Keras's fuzz factor for clipping probabilities before a log (`keras.config.epsilon()`).
pub(crate) const EPSILON: f32 = 1e-7;

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
    },
    Binary(BinaryOp, Var, Var),
    Unary(UnaryOp, Var),
    Scale(Var, f32),
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
    /// Rows of a table picked by integer ids (Embedding).
    Gather {
        table: Var,
        ids: Var,
    },
    /// A recurrent layer over all steps (SimpleRNN, LSTM, GRU).
    Recurrent {
        inputs: super::recurrent::RecurrentInputs,
        options: super::recurrent::RecurrentOptions,
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
            MaxPool2d { .. } => "max_pool2d",
            AvgPool2d { .. } => "avg_pool2d",
            SoftmaxCrossEntropy { .. }
            | SigmoidCrossEntropy { .. }
            | CrossEntropy { .. }
            | BinaryCrossEntropy { .. } => "loss",
            BatchNorm { .. } => "batch_norm",
            LayerNorm { .. } => "layer_norm",
            Penalty { .. } => "penalty",
            Concat { .. } => "concatenate",
            Gather { .. } => "gather",
            Recurrent { .. } => "recurrent",
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
            Gather { table, ids } => [Some(table), Some(ids), None],
            other => other.inputs3(),
        };
        [a, b, c, None]
    }

    fn inputs3(&self) -> [Option<Var>; 3] {
        use Op::*;
        match *self {
            Constant | Param(_) | Gather { .. } | Recurrent { .. } => [None; 3],
            MatMul(a, b) | Binary(_, a, b) => [Some(a), Some(b), None],
            Linear { x, kernel, bias } | Conv2d { x, kernel, bias, .. } => [Some(x), Some(kernel), bias],
            MaxPool2d { x, .. } | AvgPool2d { x, .. } => [Some(x), None, None],
            Unary(_, x) | Scale(x, _) | Clip(x, ..) | Softmax(x) | LogSoftmax(x) | Sum(x) | Mean(x) | Reshape(x) => {
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
            Penalty { weight, .. } => [Some(weight), None, None],
            Concat { a, b, .. } => [Some(a), Some(b), None],
        }
    }
}

/// Elementwise operations on two tensors, broadcast numpy-style.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum BinaryOp {
    Add,
    Sub,
    Mul,
    Div,
    Maximum,
}

impl BinaryOp {
    fn apply(self, a: f32, b: f32) -> f32 {
        match self {
            BinaryOp::Add => a + b,
            BinaryOp::Sub => a - b,
            BinaryOp::Mul => a * b,
            BinaryOp::Div => a / b,
            BinaryOp::Maximum => a.max(b),
        }
    }

    /// (∂out/∂a, ∂out/∂b) at (a, b).
    fn partials(self, a: f32, b: f32) -> (f32, f32) {
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
        }
    }

    fn name(self) -> &'static str {
        match self {
            BinaryOp::Add => "add",
            BinaryOp::Sub => "subtract",
            BinaryOp::Mul => "multiply",
            BinaryOp::Div => "divide",
            BinaryOp::Maximum => "maximum",
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
}

impl UnaryOp {
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
            UnaryOp::Exp => x.exp(),
            UnaryOp::Log => x.ln(),
            UnaryOp::Abs => x.abs(),
            UnaryOp::Square => x * x,
            UnaryOp::Sqrt => x.sqrt(),
            UnaryOp::Neg => -x,
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
            UnaryOp::Exp => y,
            UnaryOp::Log => 1.0 / x,
            UnaryOp::Abs => x.signum() * (x != 0.0) as i32 as f32,
            UnaryOp::Square => 2.0 * x,
            UnaryOp::Sqrt => 0.5 / y,
            UnaryOp::Neg => -1.0,
        }
    }
}

pub(super) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}

/// Runs the backward rule of `op`: adds its inputs' gradients into `targets`.
pub(super) fn backward(op: Op, inputs: &Inputs, node: Node, targets: &mut GradTargets, scratch: &mut Tensor) {
    match op {
        Op::Conv2d { .. } => super::conv::conv2d_backward(op, inputs, node, targets, scratch),
        Op::MaxPool2d { x, window } => super::conv::max_pool2d_backward(x, window, inputs, node, targets),
        Op::AvgPool2d { x, window } => super::conv::avg_pool2d_backward(x, window, node, targets),
        Op::Constant | Op::Param(_) => {}
        Op::MatMul(a, b) => matmul_backward(a, b, inputs, node, targets),
        Op::Linear { x, kernel, bias } => linear_backward(x, kernel, bias, inputs, node, targets),
        Op::Binary(kind, a, b) => binary_backward(kind, a, b, inputs, node, targets),
        Op::Unary(kind, x) => {
            if let Some(dx) = targets.get(x) {
                let x = inputs.get(x).data();
                // ReLU gets its own loop: matching on `kind` per element keeps the compiler from
                // vectorizing, and ReLU is the activation of nearly every hidden layer.
                match kind {
                    UnaryOp::Relu => {
                        kernels::accumulate_zip(dx, node.grad.data(), x, |dy, x| if x > 0.0 { dy } else { 0.0 })
                    }
                    _ => kernels::accumulate_zip3(dx, node.grad.data(), x, node.value.data(), |dy, x, y| {
                        dy * kind.derivative(x, y)
                    }),
                }
            }
        }
        Op::Scale(x, factor) => {
            if let Some(dx) = targets.get(x) {
                kernels::axpy(dx, factor, node.grad.data());
            }
        }
        Op::Clip(x, low, high) => {
            if let Some(dx) = targets.get(x) {
                let x = inputs.get(x).data();
                kernels::accumulate_zip(
                    dx,
                    node.grad.data(),
                    x,
                    |dy, x| {
                        if x >= low && x <= high { dy } else { 0.0 }
                    },
                );
            }
        }
        Op::Softmax(x) => softmax_backward(x, node, targets),
        Op::LogSoftmax(x) => log_softmax_backward(x, node, targets),
        Op::Sum(x) | Op::Mean(x) => {
            if let Some(dx) = targets.get(x) {
                let scale = if matches!(op, Op::Mean(_)) {
                    1.0 / dx.len().max(1) as f32
                } else {
                    1.0
                };
                let dy = node.grad.item() * scale;
                dx.iter_mut().for_each(|d| *d += dy);
            }
        }
        Op::Reshape(x) => {
            if let Some(dx) = targets.get(x) {
                kernels::axpy(dx, 1.0, node.grad.data());
            }
        }
        Op::SoftmaxCrossEntropy { logits, target, sparse } => {
            losses::softmax_cross_entropy_backward(logits, target, sparse, inputs, node, targets)
        }
        Op::SigmoidCrossEntropy { logits, target } => {
            losses::sigmoid_cross_entropy_backward(logits, target, inputs, node, targets)
        }
        Op::CrossEntropy { probs, target, sparse } => {
            losses::cross_entropy_backward(probs, target, sparse, inputs, node, targets)
        }
        Op::BinaryCrossEntropy { probs, target } => {
            losses::binary_cross_entropy_backward(probs, target, inputs, node, targets)
        }
        Op::BatchNorm {
            x,
            gamma,
            beta,
            statistics,
            ..
        } => normalization::batch_norm_backward((x, gamma, beta, statistics), inputs, node, targets, scratch),
        Op::LayerNorm { x, gamma, beta, .. } => {
            normalization::layer_norm_backward((x, gamma, beta), inputs, node, targets)
        }
        Op::Concat { a, b, axis } => super::concat::concat_backward(a, b, axis, inputs, node, targets),
        Op::Gather { table, ids } => super::embedding::gather_backward(table, ids, inputs, node, targets),
        Op::Recurrent {
            inputs: operands,
            options,
        } => super::recurrent::recurrent_backward((operands, options), inputs, node, targets, scratch),
        Op::Penalty { weight, l1, l2 } => {
            if let Some(dw) = targets.get(weight) {
                let dy = node.grad.item();
                for (d, &w) in dw.iter_mut().zip(inputs.get(weight).data()) {
                    // |w| has no slope at 0; take 0 there, as Keras's sign() does.
                    let sign = if w == 0.0 { 0.0 } else { w.signum() };
                    *d += dy * (l1 * sign + 2.0 * l2 * w);
                }
            }
        }
    }
}

impl Graph<'_> {
    /// Matrix product of 2-D values: `(m, k) · (k, n) → (m, n)`.
    pub fn matmul(&mut self, a: Var, b: Var) -> Result<Var> {
        let (sa, sb) = (self.dims(a), self.dims(b));
        if sa.len() != 2 || sb.len() != 2 || sa[1] != sb[0] {
            return Err(Error::ShapeMismatch {
                op: "matmul",
                lhs: sa.to_vec(),
                rhs: sb.to_vec(),
            });
        }
        let (m, k, n) = (sa[0], sa[1], sb[1]);
        Ok(self.push(Op::MatMul(a, b), &[m, n], |inputs, out, _| {
            let (a, b) = (inputs.get(a).data(), inputs.get(b).data());
            kernels::matmul(a, Transpose::No, b, Transpose::No, out.data_mut(), m, k, n, false);
        }))
    }

    /// `x · kernel + bias` over the last axis of `x`: a Dense layer's affine map, fused so the
    /// bias is added while the product's output is still in cache.
    /// `x` is `(..., in)`, `kernel` `(in, out)`, `bias` `(out)`; the result is `(..., out)`.
    pub fn linear(&mut self, x: Var, kernel: Var, bias: Option<Var>) -> Result<Var> {
        let (sx, sk) = (self.dims(x), self.dims(kernel));
        let inner = sx.last().copied().unwrap_or(0);
        if sx.is_empty() || sk.len() != 2 || sk[0] != inner {
            return Err(Error::ShapeMismatch {
                op: "linear",
                lhs: sx.to_vec(),
                rhs: sk.to_vec(),
            });
        }
        let units = sk[1];
        if let Some(b) = bias
            && self.shape(b) != [units]
        {
            return Err(Error::ShapeMismatch {
                op: "linear bias",
                lhs: sk.to_vec(),
                rhs: self.shape(b).to_vec(),
            });
        }
        let rows = numel(&sx) / inner.max(1);
        let mut shape = sx.clone();
        *shape.last_mut().expect("non-empty") = units;
        Ok(self.push(Op::Linear { x, kernel, bias }, &shape, |inputs, out, _| {
            let (xv, kv) = (inputs.get(x).data(), inputs.get(kernel).data());
            kernels::matmul(
                xv,
                Transpose::No,
                kv,
                Transpose::No,
                out.data_mut(),
                rows,
                inner,
                units,
                false,
            );
            if let Some(b) = bias {
                kernels::add_row_vector(out.data_mut(), inputs.get(b).data());
            }
        }))
    }

    /// Elementwise `a + b`, broadcast numpy-style.
    pub fn add(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Add, a, b)
    }

    /// Elementwise `a − b`, broadcast numpy-style.
    pub fn sub(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Sub, a, b)
    }

    /// Elementwise `a · b`, broadcast numpy-style.
    pub fn mul(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Mul, a, b)
    }

    /// Elementwise `max(a, b)`, broadcast numpy-style.
    pub fn maximum(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Maximum, a, b)
    }

    /// Elementwise `a / b`, broadcast numpy-style.
    pub fn div(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Div, a, b)
    }

    fn binary(&mut self, kind: BinaryOp, a: Var, b: Var) -> Result<Var> {
        let (sa, sb) = (self.dims(a), self.dims(b));
        let shape = broadcast_dims(kind.name(), &sa, &sb)?;
        Ok(self.push(Op::Binary(kind, a, b), &shape, |inputs, out, _| {
            let (av, bv) = (inputs.get(a).data(), inputs.get(b).data());
            if sa == sb {
                kernels::zip_map_into(out.data_mut(), av, bv, |x, y| kind.apply(x, y));
            } else {
                let (stride_a, stride_b) = broadcast_strides(&sa, &sb, &shape);
                let data = out.data_mut();
                kernels::for_each_broadcast(&shape, &stride_a, &stride_b, |o, i, j| {
                    data[o] = kind.apply(av[i], bv[j])
                });
            }
        }))
    }

    /// Applies an elementwise function.
    pub fn unary(&mut self, kind: UnaryOp, x: Var) -> Var {
        let shape = self.dims(x);
        self.push(Op::Unary(kind, x), &shape, |inputs, out, _| match kind {
            UnaryOp::Relu => kernels::map_into(out.data_mut(), inputs.get(x).data(), |v| v.max(0.0)),
            _ => kernels::map_into(out.data_mut(), inputs.get(x).data(), |v| kind.apply(v)),
        })
    }

    /// `max(x, 0)`.
    pub fn relu(&mut self, x: Var) -> Var {
        self.unary(UnaryOp::Relu, x)
    }

    /// Logistic sigmoid.
    pub fn sigmoid(&mut self, x: Var) -> Var {
        self.unary(UnaryOp::Sigmoid, x)
    }

    /// Hyperbolic tangent.
    pub fn tanh(&mut self, x: Var) -> Var {
        self.unary(UnaryOp::Tanh, x)
    }

    /// `e^x`.
    pub fn exp(&mut self, x: Var) -> Var {
        self.unary(UnaryOp::Exp, x)
    }

    /// Natural logarithm.
    pub fn log(&mut self, x: Var) -> Var {
        self.unary(UnaryOp::Log, x)
    }

    /// `x²`.
    pub fn square(&mut self, x: Var) -> Var {
        self.unary(UnaryOp::Square, x)
    }

    /// `|x|`.
    pub fn abs(&mut self, x: Var) -> Var {
        self.unary(UnaryOp::Abs, x)
    }

    /// `factor · x`.
    pub fn scale(&mut self, x: Var, factor: f32) -> Var {
        let shape = self.dims(x);
        self.push(Op::Scale(x, factor), &shape, |inputs, out, _| {
            kernels::map_into(out.data_mut(), inputs.get(x).data(), |v| v * factor);
        })
    }

    /// `x` limited to `[low, high]`; no gradient flows where it was clipped.
    pub fn clip(&mut self, x: Var, low: f32, high: f32) -> Var {
        let shape = self.dims(x);
        self.push(Op::Clip(x, low, high), &shape, |inputs, out, _| {
            kernels::map_into(out.data_mut(), inputs.get(x).data(), |v| v.clamp(low, high));
        })
    }

    /// Softmax over the last axis.
    pub fn softmax(&mut self, x: Var) -> Var {
        let shape = self.dims(x);
        let cols = shape.last().copied().unwrap_or(1).max(1);
        self.push(Op::Softmax(x), &shape, |inputs, out, _| {
            kernels::softmax_rows(out.data_mut(), inputs.get(x).data(), cols);
        })
    }

    /// Log-softmax over the last axis, computed through log-sum-exp.
    pub fn log_softmax(&mut self, x: Var) -> Var {
        let shape = self.dims(x);
        let cols = shape.last().copied().unwrap_or(1).max(1);
        self.push(Op::LogSoftmax(x), &shape, |inputs, out, _| {
            kernels::log_softmax_rows(out.data_mut(), inputs.get(x).data(), cols);
        })
    }

    /// Sum of all values, as a scalar.
    pub fn sum(&mut self, x: Var) -> Var {
        self.push(Op::Sum(x), &[], |inputs, out, _| {
            out.data_mut()[0] = kernels::sum(inputs.get(x).data())
        })
    }

    /// Mean of all values, as a scalar.
    pub fn mean(&mut self, x: Var) -> Var {
        self.push(Op::Mean(x), &[], |inputs, out, _| {
            let values = inputs.get(x).data();
            out.data_mut()[0] = kernels::sum(values) / values.len().max(1) as f32;
        })
    }

    /// A weight regularizer's penalty `l1·Σ|w| + l2·Σw²`, as a scalar.
    pub fn penalty(&mut self, weight: Var, l1: f32, l2: f32) -> Var {
        self.push(Op::Penalty { weight, l1, l2 }, &[], |inputs, out, _| {
            let w = inputs.get(weight).data();
            let (abs, squares) = w.iter().fold((0.0f32, 0.0f32), |(a, s), &v| (a + v.abs(), s + v * v));
            out.data_mut()[0] = l1 * abs + l2 * squares;
        })
    }

    /// The same values under a new shape with as many elements.
    pub fn reshape(&mut self, x: Var, shape: &[usize]) -> Result<Var> {
        let from = self.shape(x);
        if numel(from) != numel(shape) {
            return Err(Error::ShapeMismatch {
                op: "reshape",
                lhs: from.to_vec(),
                rhs: shape.to_vec(),
            });
        }
        Ok(self.push(Op::Reshape(x), shape, |inputs, out, _| {
            out.data_mut().copy_from_slice(inputs.get(x).data());
        }))
    }
}

fn broadcast_strides(sa: &[usize], sb: &[usize], out: &[usize]) -> (Dims, Dims) {
    (
        crate::tensor::shape_broadcast_strides(sa, out),
        crate::tensor::shape_broadcast_strides(sb, out),
    )
}

fn matmul_backward(a: Var, b: Var, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let (av, bv) = (inputs.get(a), inputs.get(b));
    let (m, k, n) = (av.shape()[0], av.shape()[1], bv.shape()[1]);
    let dy = node.grad.data();
    if let Some(da) = targets.get(a) {
        kernels::matmul(dy, Transpose::No, bv.data(), Transpose::Yes, da, m, n, k, true);
    }
    if let Some(db) = targets.get(b) {
        kernels::matmul(av.data(), Transpose::Yes, dy, Transpose::No, db, k, m, n, true);
    }
}

fn linear_backward(x: Var, kernel: Var, bias: Option<Var>, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let (xv, kv) = (inputs.get(x), inputs.get(kernel));
    let (inner, units) = (kv.shape()[0], kv.shape()[1]);
    let rows = xv.len() / inner.max(1);
    let dy = node.grad.data();
    if let Some(dx) = targets.get(x) {
        kernels::matmul(
            dy,
            Transpose::No,
            kv.data(),
            Transpose::Yes,
            dx,
            rows,
            units,
            inner,
            true,
        );
    }
    if let Some((dk, fresh)) = targets.get_fresh(kernel) {
        kernels::matmul(
            xv.data(),
            Transpose::Yes,
            dy,
            Transpose::No,
            dk,
            inner,
            rows,
            units,
            !fresh,
        );
    }
    if let Some(b) = bias
        && let Some(db) = targets.get(b)
    {
        kernels::accumulate_column_sums(db, dy);
    }
}

fn binary_backward(kind: BinaryOp, a: Var, b: Var, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let (av, bv) = (inputs.get(a), inputs.get(b));
    let dy = node.grad.data();
    if av.shape() == bv.shape() {
        // A sum's or difference's partials are ±1: its gradients need not read the inputs.
        let b_sign = match kind {
            BinaryOp::Add => Some(1.0),
            BinaryOp::Sub => Some(-1.0),
            _ => None,
        };
        if let Some(sign) = b_sign {
            if let Some(da) = targets.get(a) {
                kernels::axpy(da, 1.0, dy);
            }
            if let Some(db) = targets.get(b) {
                kernels::axpy(db, sign, dy);
            }
            return;
        }
        if let Some(da) = targets.get(a) {
            kernels::accumulate_zip3(da, dy, av.data(), bv.data(), |g, x, y| g * kind.partials(x, y).0);
        }
        if let Some(db) = targets.get(b) {
            kernels::accumulate_zip3(db, dy, av.data(), bv.data(), |g, x, y| g * kind.partials(x, y).1);
        }
        return;
    }
    let shape = node.value.shape();
    let (stride_a, stride_b) = broadcast_strides(av.shape(), bv.shape(), shape);
    let (ad, bd) = (av.data(), bv.data());
    if let Some(da) = targets.get(a) {
        kernels::for_each_broadcast(shape, &stride_a, &stride_b, |o, i, j| {
            da[i] += dy[o] * kind.partials(ad[i], bd[j]).0
        });
    }
    if let Some(db) = targets.get(b) {
        kernels::for_each_broadcast(shape, &stride_a, &stride_b, |o, i, j| {
            db[j] += dy[o] * kind.partials(ad[i], bd[j]).1
        });
    }
}

fn softmax_backward(x: Var, node: Node, targets: &mut GradTargets) {
    let y = node.value.data();
    let cols = node.value.shape().last().copied().unwrap_or(1).max(1);
    if let Some(dx) = targets.get(x) {
        // dx = y ⊙ (dy − Σ dy·y), row by row.
        for ((dx, y), dy) in dx
            .chunks_mut(cols)
            .zip(y.chunks(cols))
            .zip(node.grad.data().chunks(cols))
        {
            let dot: f32 = y.iter().zip(dy).map(|(a, b)| a * b).sum();
            dx.iter_mut()
                .zip(y)
                .zip(dy)
                .for_each(|((d, &y), &g)| *d += y * (g - dot));
        }
    }
}

fn log_softmax_backward(x: Var, node: Node, targets: &mut GradTargets) {
    let y = node.value.data();
    let cols = node.value.shape().last().copied().unwrap_or(1).max(1);
    if let Some(dx) = targets.get(x) {
        // dx = dy − softmax · Σ dy, with softmax = e^y.
        for ((dx, y), dy) in dx
            .chunks_mut(cols)
            .zip(y.chunks(cols))
            .zip(node.grad.data().chunks(cols))
        {
            let total: f32 = dy.iter().sum();
            dx.iter_mut()
                .zip(y)
                .zip(dy)
                .for_each(|((d, &y), &g)| *d += g - y.exp() * total);
        }
    }
}
