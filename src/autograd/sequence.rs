//! Reductions over the steps of sequences `(N, T, C)`: the (masked) mean of
//! `GlobalAveragePooling1D`, with its backward beside it.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};

impl Graph<'_> {
    /// The mean over the steps of `x (N, T, C)`, giving `(N, C)`; with `mask (N, T)` (1 for a
    /// real step, 0 for padding) only the real steps count, as Keras's `GlobalAveragePooling1D`
    /// does. A sample with no real step gives zeros (Keras divides by zero there).
    pub fn mean_steps(&mut self, x: Var, mask: Option<Var>) -> Result<Var> {
        let shape = self.dims(x);
        let &[n, t, c] = shape.as_slice() else {
            return Err(Error::ShapeMismatch {
                op: "mean over steps (expected (batch, steps, channels))",
                lhs: shape.to_vec(),
                rhs: vec![],
            });
        };
        if let Some(m) = mask
            && self.shape(m) != [n, t]
        {
            return Err(Error::ShapeMismatch {
                op: "mean over steps: mask (expected (batch, steps))",
                lhs: vec![n, t],
                rhs: self.shape(m).to_vec(),
            });
        }
        Ok(self.push(Op::MeanSteps { x, mask }, &[n, c], |inputs, out, saved| {
            step_weights(saved, mask.map(|m| inputs.get(m).data()), n, t);
            let (x, w) = (inputs.get(x).data(), saved.data());
            for ((o, x), w) in out
                .data_mut()
                .chunks_mut(c.max(1))
                .zip(x.chunks(t * c.max(1)))
                .zip(w.chunks(t))
            {
                o.fill(0.0);
                for (row, &w) in x.chunks(c.max(1)).zip(w) {
                    o.iter_mut().zip(row).for_each(|(o, &v)| *o += w * v);
                }
            }
        }))
    }
}

/// Each step's weight in its sample's mean, `(N, T)`: `1/T`, or with a mask `m/Σm` (0 for a
/// sample with no real step).
fn step_weights(saved: &mut crate::tensor::Tensor, mask: Option<&[f32]>, n: usize, t: usize) {
    saved.resize_for(&[n, t]);
    for (i, w) in saved.data_mut().chunks_mut(t.max(1)).enumerate() {
        match mask {
            None => w.fill(1.0 / t.max(1) as f32),
            Some(mask) => {
                let m = &mask[i * t..][..t];
                let total: f32 = m.iter().sum();
                let scale = if total > 0.0 { 1.0 / total } else { 0.0 };
                w.iter_mut().zip(m).for_each(|(w, &m)| *w = m * scale);
            }
        }
    }
}

/// `dx[n, t, :] += w[n, t] · dy[n, :]`.
pub(super) fn mean_steps_backward(x: Var, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let shape = inputs.get(x).shape();
    let (t, c) = (shape[1], shape[2].max(1));
    let Some((dx, fresh)) = targets.get_fresh(x) else {
        return;
    };
    // A fresh buffer is written rather than cleared and added to.
    crate::kernels::spread_over_steps(dx, node.grad.data(), node.saved.data(), (t, c), !fresh);
}
