//! The differentiable operations: each forward (a method on [`Graph`]) and its backward rule
//! (`*_backward`) sit next to each other, so one can be checked against the other on a screen.
//!
//! The set is small on purpose. Layers compose these; a few fusions (`linear`, the
//! cross-entropies) exist because they are faster or numerically safer than their parts.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::params::ParamId;
use super::pointwise::{BinaryOp, UnaryOp};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, ComputeDtype, Transpose};
use crate::tensor::{Dims, broadcast_dims, numel};

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
        self.linear_in(x, kernel, bias, ComputeDtype::Float32)
    }

    /// [`Graph::linear`] with its products (forward and backward) in `dtype`: under
    /// bfloat16, `x`, the kernel and the output gradient are rounded to bfloat16 as they enter
    /// a product, which accumulates in f32; the output, the bias and the gradients are f32.
    pub fn linear_in(&mut self, x: Var, kernel: Var, bias: Option<Var>, dtype: ComputeDtype) -> Result<Var> {
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
        let op = Op::Linear { x, kernel, bias, dtype };
        Ok(self.push(op, &shape, |inputs, out, _| {
            let (xv, kv) = (inputs.get(x).data(), inputs.get(kernel).data());
            kernels::product(
                dtype,
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

    /// Elementwise minimum, broadcast numpy-style (ties send the gradient to `a`).
    pub fn minimum(&mut self, a: Var, b: Var) -> Result<Var> {
        self.binary(BinaryOp::Minimum, a, b)
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
                kind.zip_into(out.data_mut(), av, bv);
            } else if let Some(b_repeats) = repeated_rows(&sa, &sb, &shape) {
                match b_repeats {
                    true => kind.zip_rows_into(out.data_mut(), av, bv, true),
                    false => kind.zip_rows_into(out.data_mut(), bv, av, false),
                }
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
        self.push(Op::Unary(kind, x), &shape, |inputs, out, _| {
            kind.map_into(out.data_mut(), inputs.get(x).data())
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
        self.push(Op::Scale(x, factor, 0.0), &shape, |inputs, out, _| {
            kernels::map_into(out.data_mut(), inputs.get(x).data(), |v| v * factor);
        })
    }

    /// `factor · x + shift` (a loss's label smoothing of its targets).
    pub fn affine(&mut self, x: Var, factor: f32, shift: f32) -> Var {
        let shape = self.dims(x);
        self.push(Op::Scale(x, factor, shift), &shape, |inputs, out, _| {
            kernels::map_into(out.data_mut(), inputs.get(x).data(), |v| v * factor + shift);
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

    /// `loss` plus the penalty of every regularized weight, as Keras adds `model.losses`.
    pub fn add_penalties(&mut self, mut loss: Var) -> Result<Var> {
        for index in 0..self.params.len() {
            if let Some(regularizer) = self.params.regularizer(ParamId(index)) {
                let weight = self.param(ParamId(index));
                let penalty = self.penalty(weight, regularizer.l1, regularizer.l2);
                loss = self.add(loss, penalty)?;
            }
        }
        Ok(loss)
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

/// Whether a product into the gradient buffer `grad` (fresh: see `GradTargets::get_many`)
/// over an inner dimension of `inner` adds to it: a fresh buffer is overwritten, and cleared
/// first where the product is empty and writes nothing.
fn clear_if_empty(grad: &mut [f32], fresh: bool, inner: usize) -> bool {
    if fresh && inner == 0 {
        kernels::fill(grad, 0.0);
    }
    !fresh || inner == 0
}

pub(super) fn matmul_backward(a: Var, b: Var, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let (av, bv) = (inputs.get(a), inputs.get(b));
    let (m, k, n) = (av.shape()[0], av.shape()[1], bv.shape()[1]);
    let dy = node.grad.data();
    if let Some((da, fresh)) = targets.get_fresh(a) {
        let add = clear_if_empty(da, fresh, n);
        kernels::matmul(dy, Transpose::No, bv.data(), Transpose::Yes, da, m, n, k, add);
    }
    if let Some(db) = targets.get(b) {
        kernels::matmul(av.data(), Transpose::Yes, dy, Transpose::No, db, k, m, n, true);
    }
}

pub(super) fn linear_backward(
    x: Var,
    kernel: Var,
    bias: Option<Var>,
    dtype: ComputeDtype,
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    let (xv, kv) = (inputs.get(x), inputs.get(kernel));
    let (inner, units) = (kv.shape()[0], kv.shape()[1]);
    let rows = xv.len() / inner.max(1);
    let dy = node.grad.data();
    if let Some((dx, fresh)) = targets.get_fresh(x) {
        let add = clear_if_empty(dx, fresh, units);
        kernels::product(
            dtype,
            dy,
            Transpose::No,
            kv.data(),
            Transpose::Yes,
            dx,
            rows,
            units,
            inner,
            add,
        );
    }
    if let Some((dk, fresh)) = targets.get_fresh(kernel) {
        kernels::product(
            dtype,
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

pub(super) fn binary_backward(kind: BinaryOp, a: Var, b: Var, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let (av, bv) = (inputs.get(a), inputs.get(b));
    let dy = node.grad.data();
    if av.shape() == bv.shape() {
        // A sum's or difference's partials are ±1: its gradients need not read the inputs.
        let b_sign = match kind {
            BinaryOp::Add => Some(1.0),
            BinaryOp::Sub => Some(-1.0),
            _ => None,
        };
        // A fresh gradient buffer (the first contribution this pass, as for most values) is
        // written, not cleared and then added to: one pass over it instead of two.
        if let Some(sign) = b_sign {
            let write = |grad: Option<(&mut [f32], bool)>, sign: f32| match grad {
                Some((grad, true)) if sign == 1.0 => kernels::copy(grad, dy),
                Some((grad, true)) => kernels::map_into(grad, dy, |g| sign * g),
                Some((grad, false)) => kernels::axpy(grad, sign, dy),
                None => {}
            };
            if a == b {
                // `x + x` asks twice, so its second part adds to the first.
                write(targets.get_fresh(a), 1.0);
                return write(targets.get_fresh(b), sign);
            }
            match targets.get_many([Some(a), Some(b)]) {
                // Both operands of a sum fresh (a residual connection): one pass over `dy`
                // writes both.
                [Some((da, true)), Some((db, true))] if sign == 1.0 => kernels::copy_to_both(da, db, dy),
                [da, db] => {
                    write(da, 1.0);
                    write(db, sign);
                }
            }
            return;
        }
        // A product's partials are the other operand: two reads, not three.
        if kind == BinaryOp::Mul {
            for (var, other) in [(a, bv.data()), (b, av.data())] {
                match targets.get_fresh(var) {
                    Some((grad, true)) => kernels::zip_map_into(grad, dy, other, |g, y| g * y),
                    Some((grad, false)) => kernels::accumulate_zip(grad, dy, other, |g, y| g * y),
                    None => {}
                }
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
    if let Some(b_repeats) = repeated_rows(av.shape(), bv.shape(), shape) {
        return repeated_rows_backward(kind, (a, b, b_repeats), inputs, dy, targets);
    }
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

/// For a broadcast where one operand has the output's shape and the other repeats over its
/// leading axes (its shape, leading 1s aside, is a trailing part of the output's: a position
/// table added to a batch): `Some(true)` when `b` repeats, `Some(false)` when `a` does.
fn repeated_rows(sa: &[usize], sb: &[usize], out: &[usize]) -> Option<bool> {
    let repeats = |full: &[usize], other: &[usize]| {
        let leading = other.iter().take_while(|&&d| d == 1).count();
        let trailing = &other[leading..];
        full == out && numel(other) > 0 && out.ends_with(trailing)
    };
    if repeats(sa, sb) {
        Some(true)
    } else if repeats(sb, sa) {
        Some(false)
    } else {
        None
    }
}

/// [`binary_backward`] for a [`repeated_rows`] broadcast: the full operand's gradient
/// elementwise, the repeated one's summed over the repeats in order.
fn repeated_rows_backward(
    kind: BinaryOp,
    (a, b, b_repeats): (Var, Var, bool),
    inputs: &Inputs,
    dy: &[f32],
    targets: &mut GradTargets,
) {
    let (av, bv) = (inputs.get(a).data(), inputs.get(b).data());
    // (full operand, repeated operand) and the partials in that order.
    let (full_var, row_var, full, row) = match b_repeats {
        true => (a, b, av, bv),
        false => (b, a, bv, av),
    };
    let partials = move |x: f32, r: f32| match b_repeats {
        true => kind.partials(x, r),
        false => {
            let (d_row, d_full) = kind.partials(r, x);
            (d_full, d_row)
        }
    };
    if let Some((d_full, fresh)) = targets.get_fresh(full_var) {
        match (kind, fresh) {
            (BinaryOp::Add, true) => kernels::copy(d_full, dy),
            (BinaryOp::Add, false) => kernels::axpy(d_full, 1.0, dy),
            _ => {
                if fresh {
                    kernels::fill(d_full, 0.0);
                }
                kernels::accumulate_zip_rows(d_full, dy, full, row, |g, x, r| g * partials(x, r).0)
            }
        }
    }
    if let Some(d_row) = targets.get(row_var) {
        match kind {
            BinaryOp::Add => kernels::accumulate_column_sums(d_row, dy),
            _ => kernels::accumulate_row_sums(d_row, dy, full, row, |g, x, r| g * partials(x, r).1),
        }
    }
}

pub(super) fn softmax_backward(x: Var, node: Node, targets: &mut GradTargets) {
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

pub(super) fn log_softmax_backward(x: Var, node: Node, targets: &mut GradTargets) {
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

pub(super) fn unary_backward(kind: UnaryOp, x: Var, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    if let Some(dx) = targets.get(x) {
        let x = inputs.get(x).data();
        // ReLU gets its own loop: matching on `kind` per element keeps the compiler from
        // vectorizing, and ReLU is the activation of nearly every hidden layer.
        match kind {
            UnaryOp::Relu => kernels::accumulate_zip(dx, node.grad.data(), x, |dy, x| if x > 0.0 { dy } else { 0.0 }),
            _ => kernels::accumulate_zip3(dx, node.grad.data(), x, node.value.data(), |dy, x, y| {
                dy * kind.derivative(x, y)
            }),
        }
    }
}

pub(super) fn scale_backward(x: Var, factor: f32, node: Node, targets: &mut GradTargets) {
    if let Some(dx) = targets.get(x) {
        kernels::axpy(dx, factor, node.grad.data());
    }
}

pub(super) fn clip_backward(x: Var, (low, high): (f32, f32), inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    if let Some(dx) = targets.get(x) {
        let x = inputs.get(x).data();
        kernels::accumulate_zip(
            dx,
            node.grad.data(),
            x,
            |dy, x| if x >= low && x <= high { dy } else { 0.0 },
        );
    }
}

/// The rule of [`Graph::sum`] (`scale` 1) and [`Graph::mean`] (`scale` 1/n).
pub(super) fn sum_backward(x: Var, scale: f32, node: Node, targets: &mut GradTargets) {
    if let Some(dx) = targets.get(x) {
        let dy = node.grad.item() * scale;
        dx.iter_mut().for_each(|d| *d += dy);
    }
}

pub(super) fn reshape_backward(x: Var, node: Node, targets: &mut GradTargets) {
    if let Some(dx) = targets.get(x) {
        kernels::axpy(dx, 1.0, node.grad.data());
    }
}

pub(super) fn penalty_backward(
    weight: Var,
    (l1, l2): (f32, f32),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    if let Some(dw) = targets.get(weight) {
        let dy = node.grad.item();
        for (d, &w) in dw.iter_mut().zip(inputs.get(weight).data()) {
            // |w| has no slope at 0; take 0 there, as Keras's sign() does.
            let sign = if w == 0.0 { 0.0 } else { w.signum() };
            *d += dy * (l1 * sign + 2.0 * l2 * w);
        }
    }
}
