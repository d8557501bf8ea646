//! Concatenation of two values along one axis, the core of Keras's `Concatenate` layer, and
//! its inverse, a slice along one axis (how a recurrent layer's `return_state` outputs are
//! taken from the one operation that computes them).

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};

/// `(outer, a_block, b_block)`: the values before `axis` count `outer` rows, each holding a
/// block of `a` then a block of `b` in the output.
fn blocks(a: &[usize], axis: usize, a_len: usize, b_len: usize) -> (usize, usize, usize) {
    let outer: usize = a[..axis].iter().product();
    (outer, a_len / outer.max(1), b_len / outer.max(1))
}

impl Graph<'_> {
    /// `a` and `b` joined along `axis`; every other axis must agree.
    pub fn concat(&mut self, a: Var, b: Var, axis: usize) -> Result<Var> {
        let (sa, sb) = (self.shape(a).to_vec(), self.shape(b).to_vec());
        let compatible = sa.len() == sb.len()
            && axis < sa.len()
            && sa.iter().zip(&sb).enumerate().all(|(i, (x, y))| i == axis || x == y);
        if !compatible {
            return Err(Error::ShapeMismatch {
                op: "concatenate",
                lhs: sa,
                rhs: sb,
            });
        }
        let mut shape = sa.clone();
        shape[axis] += sb[axis];
        Ok(self.push(Op::Concat { a, b, axis }, &shape, |inputs, out, _| {
            let (av, bv) = (inputs.get(a).data(), inputs.get(b).data());
            let (outer, a_block, b_block) = blocks(&sa, axis, av.len(), bv.len());
            let rows = out.data_mut().chunks_mut(a_block + b_block).take(outer);
            for ((row, a_row), b_row) in rows.zip(av.chunks(a_block.max(1))).zip(bv.chunks(b_block.max(1))) {
                row[..a_block].copy_from_slice(a_row);
                row[a_block..].copy_from_slice(b_row);
            }
        }))
    }
}

impl Graph<'_> {
    /// Entries `start..start + len` of `x` along `axis`.
    pub fn slice(&mut self, x: Var, axis: usize, start: usize, len: usize) -> Result<Var> {
        let mut shape = self.shape(x).to_vec();
        self.check_slice(x, axis, start, len)?;
        shape[axis] = len;
        Ok(self.push_slice(x, axis, start, &shape))
    }

    /// Entry `index` of `x` along `axis`, without that axis (`x[:, index]` for axis 1).
    pub fn select(&mut self, x: Var, axis: usize, index: usize) -> Result<Var> {
        let mut shape = self.shape(x).to_vec();
        self.check_slice(x, axis, index, 1)?;
        shape.remove(axis);
        Ok(self.push_slice(x, axis, index, &shape))
    }

    fn check_slice(&self, x: Var, axis: usize, start: usize, len: usize) -> Result<()> {
        let shape = self.shape(x);
        match (shape.get(axis), start.checked_add(len)) {
            (Some(&size), Some(end)) if end <= size => Ok(()),
            _ => Err(Error::ShapeMismatch {
                op: "slice",
                lhs: shape.to_vec(),
                rhs: vec![axis, start, len],
            }),
        }
    }

    /// Records the slice; a selected axis has length 1, so `out_shape` with or without it
    /// describes the same values.
    fn push_slice(&mut self, x: Var, axis: usize, start: usize, out_shape: &[usize]) -> Var {
        let from = self.shape(x).to_vec();
        self.push(Op::Slice { x, axis, start }, out_shape, |inputs, out, _| {
            let (outer, inner) = outer_inner(&from, axis);
            let (row, len) = (from[axis] * inner, out.len() / outer.max(1));
            let source = inputs.get(x).data().chunks(row.max(1));
            for (out_row, x_row) in out.data_mut().chunks_mut(len.max(1)).zip(source) {
                out_row.copy_from_slice(&x_row[start * inner..start * inner + len]);
            }
        })
    }
}

/// `(outer, inner)`: the entries before `axis` and after it.
fn outer_inner(shape: &[usize], axis: usize) -> (usize, usize) {
    (shape[..axis].iter().product(), shape[axis + 1..].iter().product())
}

/// The slice's gradient lands in its block of each row of `x`'s gradient.
pub(super) fn slice_backward(
    x: Var,
    axis: usize,
    start: usize,
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    let Some(dx) = targets.get(x) else { return };
    let from = inputs.get(x).shape();
    let (outer, inner) = outer_inner(from, axis);
    let dy = node.grad.data();
    let (row, len) = (from[axis] * inner, dy.len() / outer.max(1));
    for (dx_row, dy_row) in dx.chunks_mut(row.max(1)).zip(dy.chunks(len.max(1))) {
        dx_row[start * inner..start * inner + len]
            .iter_mut()
            .zip(dy_row)
            .for_each(|(d, g)| *d += g);
    }
}

/// Each input's gradient is its block of the output's gradient.
pub(super) fn concat_backward(a: Var, b: Var, axis: usize, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let (a_value, b_value) = (inputs.get(a), inputs.get(b));
    let (outer, a_block, b_block) = blocks(a_value.shape(), axis, a_value.len(), b_value.len());
    let dy = node.grad.data();
    for (var, offset, block) in [(a, 0, a_block), (b, a_block, b_block)] {
        if let Some(dx) = targets.get(var) {
            for (row, dx_row) in dy
                .chunks(a_block + b_block)
                .take(outer)
                .zip(dx.chunks_mut(block.max(1)))
            {
                dx_row
                    .iter_mut()
                    .zip(&row[offset..offset + block])
                    .for_each(|(d, g)| *d += g);
            }
        }
    }
}
