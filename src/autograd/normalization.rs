//! Batch and layer normalization, each fused into one operation: the forward pass keeps the
//! statistics its backward needs, and the backward uses the closed form rather than a chain of
//! small reductions.
//!
//! Both normalize `x̂ = (x − mean) / √(var + ε)` and return `γ·x̂ + β`. Batch normalization takes
//! the statistics of each channel (the last axis) over every other axis; layer normalization takes
//! those of each row over its last axis. Variances are the biased ones, as Keras uses.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Statistics, Var};
use super::params::{ParamId, ParamStore};
use super::tape::{Graph, MovingUpdate, Tape};
use crate::error::{Error, Result};
use crate::kernels;
use crate::tensor::Tensor;

impl Graph<'_> {
    /// Batch normalization over every axis but the last (channels-last images, Dense outputs).
    ///
    /// With [`Statistics::Batch`] the batch's own statistics are used and, when `moving` is
    /// given as `(moving_mean, moving_variance, momentum)`, the moving statistics are updated
    /// from them once the pass is applied (see `Tape::apply_moving_updates`).
    pub fn batch_norm(
        &mut self,
        x: Var,
        gamma: Option<Var>,
        beta: Option<Var>,
        epsilon: f32,
        statistics: Statistics,
        moving_update: Option<(ParamId, ParamId, f32)>,
    ) -> Result<Var> {
        let shape = self.dims(x);
        let channels = *shape.last().unwrap_or(&0);
        self.check_affine("batch_norm", &shape, gamma, beta)?;
        let op = Op::BatchNorm {
            x,
            gamma,
            beta,
            epsilon,
            statistics,
        };
        let params = self.params;
        let out = self.push(op, &shape, |inputs, out, saved| {
            saved.resize_for(&[3 * channels]);
            let (mean, rest) = saved.data_mut().split_at_mut(channels);
            let (var, inv_std) = rest.split_at_mut(channels);
            let x = inputs.get(x).data();
            match statistics {
                Statistics::Batch => kernels::batch_norm_moments(x, channels, mean, var),
                Statistics::Moving { mean: m, variance: v } => {
                    mean.copy_from_slice(params.value(m).data());
                    var.copy_from_slice(params.value(v).data());
                }
            }
            for (s, v) in inv_std.iter_mut().zip(var.iter()) {
                *s = 1.0 / (v + epsilon).sqrt();
            }
            let gamma = gamma.map(|g| inputs.get(g).data());
            let beta = beta.map(|b| inputs.get(b).data());
            let stats = kernels::Normalization {
                mean: &*mean,
                inv_std: &*inv_std,
            };
            kernels::batch_norm_forward(x, stats, gamma, beta, out.data_mut());
        });
        if let Some((moving_mean, moving_variance, momentum)) = moving_update
            && statistics == Statistics::Batch
        {
            self.tape.moving_updates.push(MovingUpdate {
                node: out.0,
                moving_mean,
                moving_variance,
                momentum,
            });
        }
        Ok(out)
    }

    /// Layer normalization over the last axis of each sample.
    pub fn layer_norm(&mut self, x: Var, gamma: Option<Var>, beta: Option<Var>, epsilon: f32) -> Result<Var> {
        let shape = self.dims(x);
        let features = *shape.last().unwrap_or(&0);
        self.check_affine("layer_norm", &shape, gamma, beta)?;
        let rows = shape.iter().product::<usize>() / features.max(1);
        let op = Op::LayerNorm {
            x,
            gamma,
            beta,
            epsilon,
        };
        Ok(self.push(op, &shape, |inputs, out, saved| {
            saved.resize_for(&[2 * rows]);
            let (means, inv_stds) = saved.data_mut().split_at_mut(rows);
            let gamma = gamma.map(|g| inputs.get(g).data());
            let beta = beta.map(|b| inputs.get(b).data());
            let affine = kernels::Affine { gamma, beta };
            let x = inputs.get(x).data();
            kernels::layer_norm_forward(x, features, epsilon, affine, out.data_mut(), (means, inv_stds));
        }))
    }

    /// Checks that `gamma` and `beta` hold one value per entry of the last axis of `shape`.
    fn check_affine(&self, op: &'static str, shape: &[usize], gamma: Option<Var>, beta: Option<Var>) -> Result<()> {
        let last = shape.last().copied().unwrap_or(0);
        if shape.len() < 2 || last == 0 {
            return Err(Error::ShapeMismatch {
                op,
                lhs: shape.to_vec(),
                rhs: vec![],
            });
        }
        for var in gamma.into_iter().chain(beta) {
            if self.shape(var) != [last] {
                return Err(Error::ShapeMismatch {
                    op,
                    lhs: shape.to_vec(),
                    rhs: self.shape(var).to_vec(),
                });
            }
        }
        Ok(())
    }
}

/// Backward of batch normalization. With batch statistics the mean and variance depend on `x`,
/// which gives the usual closed form `dx = γ·inv_std/N · (N·dy − Σdy − x̂·Σ(dy·x̂))`; with moving
/// statistics they are constants and `dx = γ·inv_std·dy`.
pub(super) fn batch_norm_backward(
    (x, gamma, beta, statistics): (Var, Option<Var>, Option<Var>, Statistics),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let saved = node.saved.data();
    let channels = saved.len() / 3;
    let (mean, inv_std) = (&saved[..channels], &saved[2 * channels..]);
    let x_values = inputs.get(x).data();
    let dy = node.grad.data();
    let rows = dy.len() / channels.max(1);
    scratch.resize_for(&[3 * channels]);
    let (sum_dy, rest) = scratch.data_mut().split_at_mut(channels);
    let (sum_dy_xhat, scale_over_n) = rest.split_at_mut(channels);
    let stats = kernels::Normalization { mean, inv_std };
    // Per-channel sums over the rows, then per-value maps (`kernels::batch_norm`: vectors as
    // wide as the CPU has, split over the threads, the same bits on every path and count).
    kernels::batch_norm_sums(dy, x_values, stats, sum_dy, sum_dy_xhat);
    if let Some(dgamma) = gamma.and_then(|g| targets.get(g)) {
        dgamma.iter_mut().zip(sum_dy_xhat.iter()).for_each(|(d, s)| *d += s);
    }
    if let Some(dbeta) = beta.and_then(|b| targets.get(b)) {
        dbeta.iter_mut().zip(sum_dy.iter()).for_each(|(d, s)| *d += s);
    }
    let gamma_values = gamma.map(|g| inputs.get(g).data());
    let Some(dx) = targets.get(x) else { return };
    let n = rows as f32;
    for (c, k) in scale_over_n.iter_mut().enumerate() {
        *k = gamma_values.map_or(1.0, |g| g[c]) * inv_std[c];
    }
    if statistics != Statistics::Batch {
        // Moving statistics are constants: `dx = γ·inv_std·dy`.
        return kernels::batch_norm_scaled_grad(dx, dy, scale_over_n);
    }
    scale_over_n.iter_mut().for_each(|k| *k /= n);
    kernels::batch_norm_input_grad(dx, (dy, x_values), stats, scale_over_n, (sum_dy, sum_dy_xhat));
}

/// Backward of layer normalization: the batch-normalization closed form, per row.
pub(super) fn layer_norm_backward(
    (x, gamma, beta): (Var, Option<Var>, Option<Var>),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    let saved = node.saved.data();
    let rows = saved.len() / 2;
    let (means, inv_stds) = saved.split_at(rows);
    let x_values = inputs.get(x).data();
    let dy = node.grad.data();
    let features = dy.len() / rows.max(1);
    let gamma_values = gamma.map(|g| inputs.get(g).data());
    let [dx, dgamma, dbeta] = targets.get_many([Some(x), gamma, beta]);
    // A fresh buffer holds stale values: clear it, as `GradTargets::get` would.
    let [dx, dgamma, dbeta] = [dx, dgamma, dbeta].map(|grad| {
        grad.map(|(grad, fresh)| {
            if fresh {
                kernels::fill(grad, 0.0);
            }
            grad
        })
    });
    let stats = (means, inv_stds);
    kernels::layer_norm_backward(x_values, features, stats, gamma_values, dy, dx, dgamma, dbeta);
}

impl Tape {
    /// Moves each moving mean and variance toward the batch statistics of the last training
    /// pass, as Keras does: `moving = moving·momentum + batch·(1 − momentum)`.
    pub fn apply_moving_updates(&mut self, params: &mut ParamStore) {
        for update in self.moving_updates.drain(..) {
            let saved = self.saved[update.node].data();
            let channels = saved.len() / 3;
            let (mean, var) = (&saved[..channels], &saved[channels..2 * channels]);
            let m = update.momentum;
            for (moving, batch) in [(update.moving_mean, mean), (update.moving_variance, var)] {
                for (v, b) in params.value_mut(moving).data_mut().iter_mut().zip(batch) {
                    *v = *v * m + b * (1.0 - m);
                }
            }
        }
    }
}
