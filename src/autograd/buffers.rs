//! What a backward rule reads and writes: the recorded values ([`Inputs`]), its own node
//! ([`Node`]), and the gradient buffers of its inputs ([`GradTargets`]).

use super::op::{Op, Var};
use crate::tensor::Tensor;

/// Read access to the values of already-recorded operations, parameters included.
pub(crate) struct Inputs<'a> {
    pub(super) values: &'a [Tensor],
    pub(super) ops: &'a [Op],
    pub(super) params: &'a [Tensor],
    /// While an inference pass learns when values are last read: their read times, and
    /// the time of this pass's reads (see `recycle.rs`).
    pub(super) reads: Option<&'a [std::cell::Cell<u32>]>,
    pub(super) now: usize,
}

impl Inputs<'_> {
    pub(super) fn get(&self, var: Var) -> &Tensor {
        if let Some(times) = self.reads {
            super::recycle::note_read(times, var, self.now);
        }
        match self.ops[var.0] {
            Op::Param(id) => &self.params[id.0],
            _ => &self.values[var.0],
        }
    }
}

/// The operation being differentiated: its output value, saved state and output gradient.
pub(crate) struct Node<'a> {
    pub(super) value: &'a Tensor,
    pub(super) saved: &'a Tensor,
    pub(super) grad: &'a Tensor,
}

/// Where a backward rule adds its input gradients: an earlier node's buffer or a parameter's.
pub(crate) struct GradTargets<'a> {
    pub(super) node_grads: &'a mut [Tensor],
    pub(super) live: &'a mut [bool],
    pub(super) requires_grad: &'a [bool],
    pub(super) ops: &'a [Op],
    pub(super) param_grads: &'a mut [Tensor],
    pub(super) param_live: &'a mut [bool],
}

impl GradTargets<'_> {
    /// The gradient buffers of several values at once, for backward rules that fill them in
    /// one pass: `None` where no gradient is wanted, and for a value already asked for earlier
    /// in `vars`. A buffer comes with `true` when nothing has been added to it yet this pass:
    /// its contents are then stale, and the rule must overwrite every element (or clear it).
    pub(super) fn get_many<const N: usize>(&mut self, vars: [Option<Var>; N]) -> [Option<(&mut [f32], bool)>; N] {
        let (mut nodes, mut params) = ([None; N], [None; N]);
        let mut fresh = [false; N];
        for (slot, var) in vars.iter().enumerate() {
            let Some(var) = *var else { continue };
            if !self.requires_grad[var.0] {
                continue;
            }
            match self.ops[var.0] {
                Op::Param(id) if !params.contains(&Some(id.0)) => {
                    fresh[slot] = !self.param_live[id.0];
                    self.param_live[id.0] = true;
                    params[slot] = Some(id.0);
                }
                Op::Param(_) => {}
                _ if !nodes.contains(&Some(var.0)) => {
                    fresh[slot] = !self.live[var.0];
                    self.live[var.0] = true;
                    nodes[slot] = Some(var.0);
                }
                _ => {}
            }
        }
        let mut grads = [const { None }; N];
        let tensors =
            (self.node_grads.iter_mut().enumerate()).map(|(i, t)| (nodes.iter().position(|&n| n == Some(i)), t));
        let params =
            (self.param_grads.iter_mut().enumerate()).map(|(i, t)| (params.iter().position(|&p| p == Some(i)), t));
        for (slot, tensor) in tensors.chain(params) {
            if let Some(slot) = slot {
                grads[slot] = Some((tensor.data_mut(), fresh[slot]));
            }
        }
        grads
    }

    /// The gradient buffer of `var` and whether it is fresh (see [`GradTargets::get_many`]).
    pub(super) fn get_fresh(&mut self, var: Var) -> Option<(&mut [f32], bool)> {
        let [grad] = self.get_many([Some(var)]);
        grad
    }

    /// The gradient buffer to add into for `var` (cleared when first asked for in a pass), or
    /// `None` when no gradient is wanted there.
    pub(super) fn get(&mut self, var: Var) -> Option<&mut [f32]> {
        if !self.requires_grad[var.0] {
            return None;
        }
        match self.ops[var.0] {
            Op::Param(id) => {
                let grad = self.param_grads[id.0].data_mut();
                if !self.param_live[id.0] {
                    crate::kernels::fill(grad, 0.0);
                    self.param_live[id.0] = true;
                }
                Some(grad)
            }
            _ => {
                let grad = self.node_grads[var.0].data_mut();
                if !self.live[var.0] {
                    crate::kernels::fill(grad, 0.0);
                    self.live[var.0] = true;
                }
                Some(grad)
            }
        }
    }
}
