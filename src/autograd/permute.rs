//! Axes put in another order (Keras's `Permute`), with its backward rule: the inverse order.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, PermutedAxes, Var};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels;

impl Graph<'_> {
    /// `x` with its axes in the order `axes` (output axis `i` is `x`'s axis `axes[i]`), the
    /// batch's first: `axes[0]` must be 0, and `axes` a permutation of `x`'s axes (at most six).
    pub fn permute(&mut self, x: Var, axes: &[usize]) -> Result<Var> {
        let shape = self.shape(x).to_vec();
        let mut seen = vec![false; shape.len()];
        let valid = axes.len() == shape.len()
            && axes.len() <= kernels::MAX_PERMUTED_AXES
            && axes.first() == Some(&0)
            && axes
                .iter()
                .all(|&a| a < seen.len() && !std::mem::replace(&mut seen[a], true));
        if !valid {
            return Err(Error::ShapeMismatch {
                op: "permute",
                lhs: shape,
                rhs: axes.to_vec(),
            });
        }
        let out_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let order = PermutedAxes::new(axes);
        Ok(self.push(Op::Permute { x, axes: order }, &out_shape, |inputs, out, _| {
            kernels::permute(inputs.get(x).data(), &shape, axes, out.data_mut(), false);
        }))
    }
}

/// The gradient of a permutation is the output's gradient put back in the input's order.
pub(super) fn permute_backward(x: Var, axes: PermutedAxes, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let Some(dx) = targets.get(x) else { return };
    let (axes, out_shape) = (axes.order(), node.grad.shape());
    debug_assert_eq!(inputs.get(x).len(), node.grad.len());
    kernels::permute(node.grad.data(), out_shape, &kernels::inverse_axes(axes), dx, true);
}
