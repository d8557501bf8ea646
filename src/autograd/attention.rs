//! Multi-head scaled dot-product attention as one operation: `softmax(q·kᵀ·scale + mask)·v`
//! per head, on queries, keys and values already projected to `(N, T, heads·dim)`. Its forward
//! and backward run the fused kernels of `kernels::attention`; the probabilities are its saved
//! state.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{AttentionOptions, Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, AttentionDims};
use crate::tensor::Tensor;

impl Graph<'_> {
    /// Attention of `q (N, Tq, heads·dk)` over `k (N, Tk, heads·dk)` and `v (N, Tk, heads·dv)`,
    /// giving `(N, Tq, heads·dv)`; `mask (N, Tq, Tk)`, when given, holds 1 where query `i` may
    /// attend to key `j` and 0 where not. Shapes that do not fit are an error naming both.
    pub fn attention(&mut self, q: Var, k: Var, v: Var, mask: Option<Var>, options: AttentionOptions) -> Result<Var> {
        let d = self.attention_dims(q, k, v, mask, options)?;
        let (tq, vw) = (d.steps.0, d.heads * d.value_dim);
        let mut options = options;
        if !self.training() {
            options.dropout = 0.0;
        }
        options.seed = self.noise_rng(options.seed).below(usize::MAX) as u64;
        let d = AttentionDims {
            dropout: (options.dropout > 0.0).then_some((options.dropout, options.seed)),
            ..d
        };
        let op = Op::Attention { q, k, v, mask, options };
        Ok(self.push(op, &[d.batch, tq, vw], |inputs, out, saved| {
            saved.resize_for(&[d.batch, d.heads, d.steps.0, d.steps.1]);
            let operands = (inputs.get(q).data(), inputs.get(k).data(), inputs.get(v).data());
            let mask = mask.map(|m| inputs.get(m).data());
            kernels::attention_forward(d, operands, mask, out.data_mut(), saved.data_mut());
        }))
    }

    /// The probabilities of an attention operation `(N, heads, Tq, Tk)`, before dropout (Keras's
    /// `return_attention_scores`), as a constant: no gradient flows back through them.
    pub fn attention_scores(&mut self, attention: Var) -> Result<Var> {
        if !matches!(self.op(attention), Op::Attention { .. }) {
            return Err(Error::Usage(
                "attention_scores reads the output of an attention operation".into(),
            ));
        }
        let scores = self.tape.saved[attention.0].clone();
        Ok(self.constant(&scores))
    }

    /// Checks the operands' shapes against each other and the options.
    fn attention_dims(
        &self,
        q: Var,
        k: Var,
        v: Var,
        mask: Option<Var>,
        options: AttentionOptions,
    ) -> Result<AttentionDims> {
        let (sq, sk, sv) = (self.dims(q), self.dims(k), self.dims(v));
        let heads = options.heads.max(1);
        let fits = sq.len() == 3
            && sk.len() == 3
            && sv.len() == 3
            && sq[0] == sk[0]
            && sk[0] == sv[0]
            && sk[1] == sv[1]
            && sq[2] == sk[2]
            && sq[2] % heads == 0
            && sv[2] % heads == 0
            && sq[2] > 0
            && sv[2] > 0;
        if !fits || options.heads == 0 {
            return Err(Error::ShapeMismatch {
                op: "attention (query and key)",
                lhs: sq.to_vec(),
                rhs: [sk.as_slice(), sv.as_slice()].concat(),
            });
        }
        if let Some(m) = mask
            && self.shape(m) != [sq[0], sq[1], sk[1]]
        {
            return Err(Error::ShapeMismatch {
                op: "attention mask (expected (batch, query steps, key steps))",
                lhs: vec![sq[0], sq[1], sk[1]],
                rhs: self.shape(m).to_vec(),
            });
        }
        Ok(AttentionDims {
            batch: sq[0],
            steps: (sq[1], sk[1]),
            heads,
            key_dim: sq[2] / heads,
            value_dim: sv[2] / heads,
            scale: options.scale,
            causal: options.causal,
            dropout: None,
        })
    }
}

/// The rule of [`Graph::attention`]. The kernel overwrites `dq`, `dk`, `dv`: a gradient
/// buffer nothing has been added to yet this pass is handed to it directly (the usual case:
/// the three come from distinct projections); the others are written to `scratch` and then
/// added, so a `k` that is also `v` gets both parts.
pub(super) fn attention_backward(
    (q, k, v, options): (Var, Var, Var, AttentionOptions),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let (qv, kv, vv) = (inputs.get(q), inputs.get(k), inputs.get(v));
    let probs = node.saved.shape();
    let (heads, tq, tk) = (probs[1], probs[2], probs[3]);
    let d = AttentionDims {
        batch: probs[0],
        steps: (tq, tk),
        heads,
        key_dim: qv.shape()[2] / heads,
        value_dim: vv.shape()[2] / heads,
        scale: options.scale,
        causal: options.causal,
        dropout: (options.dropout > 0.0).then_some((options.dropout, options.seed)),
    };
    let lens = [qv.len(), kv.len(), vv.len()];
    let operands = (qv.data(), kv.data(), vv.data());
    let distinct = q != k && k != v && q != v;
    let grads = match distinct {
        true => targets.get_many([Some(q), Some(k), Some(v)]),
        false => [None, None, None],
    };
    backward_into(d, operands, (node.saved.data(), node.grad.data()), grads, lens, scratch);
    if !distinct {
        // Every part is in `scratch`, one after the other: add each to its operand's gradient.
        let mut offset = 0;
        for (var, len) in [q, k, v].into_iter().zip(lens) {
            if let Some(target) = targets.get(var) {
                kernels::axpy(target, 1.0, &scratch.data()[offset..offset + len]);
            }
            offset += len;
        }
    }
}

/// Runs the backward kernel into `grads` (as `GradTargets::get_many` gives them): a fresh
/// buffer is overwritten in place, the others get the kernel's output from `scratch` added
/// (those that are `None` keep it in `scratch`, in the order `dq`, `dk`, `dv`).
fn backward_into(
    d: AttentionDims,
    operands: (&[f32], &[f32], &[f32]),
    (saved, dout): (&[f32], &[f32]),
    mut grads: [Option<(&mut [f32], bool)>; 3],
    lens: [usize; 3],
    scratch: &mut Tensor,
) {
    let in_place = grads.each_ref().map(|g| matches!(g, Some((_, true))));
    let scratch_len: usize = (0..3).filter(|&i| !in_place[i]).map(|i| lens[i]).sum();
    scratch.resize_for(&[scratch_len]);
    let mut rest = scratch.data_mut();
    let mut outputs: [Option<&mut [f32]>; 3] = [None, None, None];
    let mut to_add: [Option<&mut [f32]>; 3] = [None, None, None];
    for (i, grad) in grads.iter_mut().enumerate() {
        match grad.take() {
            Some((buffer, true)) => outputs[i] = Some(buffer),
            other => {
                let (piece, tail) = std::mem::take(&mut rest).split_at_mut(lens[i]);
                rest = tail;
                outputs[i] = Some(piece);
                to_add[i] = other.map(|(buffer, _)| buffer);
            }
        }
    }
    let [Some(dq), Some(dk), Some(dv)] = outputs else {
        unreachable!("every gradient has a buffer")
    };
    kernels::attention_backward(d, operands, saved, dout, (&mut *dq, &mut *dk, &mut *dv));
    for (target, computed) in to_add.into_iter().zip([&*dq, &*dk, &*dv]) {
        if let Some(target) = target {
            kernels::axpy(target, 1.0, computed);
        }
    }
}
