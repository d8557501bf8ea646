//! Concatenation of two values along one axis, the core of Keras's `Concatenate` layer.

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
