//! The losses' fused operations (cross-entropies through log-sum-exp or clipped logs), forward
//! next to backward. Targets are constants: no gradient flows to them.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::scalar::{EPSILON, sigmoid};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels;
use crate::tensor::numel;

impl Graph<'_> {
    /// Mean over rows of the cross-entropy between `softmax(logits)` and `target`, fused through
    /// log-sum-exp so logits of any size give a finite loss. `target` is one-hot `(rows, classes)`
    /// or, when `sparse`, class indices `(rows)`. Targets are constants: no gradient flows to them.
    pub fn softmax_cross_entropy(&mut self, logits: Var, target: Var, sparse: bool) -> Result<Var> {
        let (rows, classes) = self.check_targets("softmax_cross_entropy", logits, target, sparse)?;
        Ok(self.push(
            Op::SoftmaxCrossEntropy { logits, target, sparse },
            &[],
            |inputs, out, saved| {
                let (x, t) = (inputs.get(logits).data(), inputs.get(target).data());
                saved.resize_for(&[rows, classes]);
                kernels::log_softmax_rows(saved.data_mut(), x, classes);
                let mut total = 0.0f64;
                for (row, log_probs) in saved.data_mut().chunks_mut(classes).enumerate() {
                    total -= if sparse {
                        log_probs[t[row] as usize] as f64
                    } else {
                        log_probs
                            .iter()
                            .zip(&t[row * classes..])
                            .map(|(&lp, &t)| (lp * t) as f64)
                            .sum::<f64>()
                    };
                    log_probs.iter_mut().for_each(|lp| *lp = lp.exp());
                }
                out.data_mut()[0] = (total / rows.max(1) as f64) as f32;
            },
        ))
    }

    /// Mean over all values of the binary cross-entropy between `sigmoid(logits)` and `target`,
    /// computed as `max(x,0) − x·t + log(1 + e^−|x|)` so it never overflows.
    pub fn sigmoid_cross_entropy(&mut self, logits: Var, target: Var) -> Result<Var> {
        self.check_same_shape("sigmoid_cross_entropy", logits, target)?;
        Ok(
            self.push(Op::SigmoidCrossEntropy { logits, target }, &[], |inputs, out, _| {
                let (x, t) = (inputs.get(logits).data(), inputs.get(target).data());
                let total: f64 = x
                    .iter()
                    .zip(t)
                    .map(|(&x, &t)| (x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()) as f64)
                    .sum();
                out.data_mut()[0] = (total / x.len().max(1) as f64) as f32;
            }),
        )
    }

    /// Cross-entropy on probabilities, as Keras computes it without `from_logits`: probabilities
    /// clipped to `[1e-7, 1 − 1e-7]` before the log. Mean over rows.
    pub fn cross_entropy(&mut self, probs: Var, target: Var, sparse: bool) -> Result<Var> {
        let (rows, classes) = self.check_targets("cross_entropy", probs, target, sparse)?;
        Ok(
            self.push(Op::CrossEntropy { probs, target, sparse }, &[], |inputs, out, _| {
                let (p, t) = (inputs.get(probs).data(), inputs.get(target).data());
                let log = |p: f32| p.clamp(EPSILON, 1.0 - EPSILON).ln() as f64;
                let total: f64 = if sparse {
                    (0..rows).map(|row| -log(p[row * classes + t[row] as usize])).sum()
                } else {
                    p.iter().zip(t).map(|(&p, &t)| -(t as f64) * log(p)).sum()
                };
                out.data_mut()[0] = (total / rows.max(1) as f64) as f32;
            }),
        )
    }

    /// Binary cross-entropy on probabilities (clipped as Keras does). Mean over all values.
    pub fn binary_cross_entropy(&mut self, probs: Var, target: Var) -> Result<Var> {
        self.check_same_shape("binary_cross_entropy", probs, target)?;
        Ok(
            self.push(Op::BinaryCrossEntropy { probs, target }, &[], |inputs, out, _| {
                let (p, t) = (inputs.get(probs).data(), inputs.get(target).data());
                let total: f64 = p
                    .iter()
                    .zip(t)
                    .map(|(&p, &t)| {
                        let p = p.clamp(EPSILON, 1.0 - EPSILON);
                        -(t * p.ln() + (1.0 - t) * (1.0 - p).ln()) as f64
                    })
                    .sum();
                out.data_mut()[0] = (total / p.len().max(1) as f64) as f32;
            }),
        )
    }

    fn check_same_shape(&self, op: &'static str, a: Var, b: Var) -> Result<()> {
        if self.shape(a) != self.shape(b) {
            return Err(Error::ShapeMismatch {
                op,
                lhs: self.shape(a).to_vec(),
                rhs: self.shape(b).to_vec(),
            });
        }
        Ok(())
    }

    /// Checks prediction/target shapes for a categorical loss; returns (rows, classes).
    fn check_targets(&self, op: &'static str, pred: Var, target: Var, sparse: bool) -> Result<(usize, usize)> {
        let (sp, st) = (self.shape(pred), self.shape(target));
        let classes = sp.last().copied().unwrap_or(0);
        let rows = numel(sp) / classes.max(1);
        let fits = if sparse { numel(st) == rows } else { sp == st };
        if sp.is_empty() || !fits {
            return Err(Error::ShapeMismatch {
                op,
                lhs: sp.to_vec(),
                rhs: st.to_vec(),
            });
        }
        if sparse
            && let Some(bad) = self
                .value(target)
                .data()
                .iter()
                .find(|&&l| l < 0.0 || l as usize >= classes)
        {
            return Err(Error::Data(format!(
                "label {bad} is out of range for {classes} classes (expected 0..{classes})"
            )));
        }
        Ok((rows, classes))
    }
}

/// d/dlogits of mean binary cross-entropy on logits: `(sigmoid(x) − t) / n`.
pub(super) fn sigmoid_cross_entropy_backward(
    logits: Var,
    target: Var,
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    if let Some(dx) = targets.get(logits) {
        let scale = node.grad.item() / dx.len().max(1) as f32;
        let t = inputs.get(target).data();
        kernels::accumulate_zip(dx, inputs.get(logits).data(), t, |x, t| scale * (sigmoid(x) - t));
    }
}

/// d/dp of mean binary cross-entropy on clipped probabilities.
pub(super) fn binary_cross_entropy_backward(
    probs: Var,
    target: Var,
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    if let Some(dp) = targets.get(probs) {
        let scale = node.grad.item() / dp.len().max(1) as f32;
        let t = inputs.get(target).data();
        kernels::accumulate_zip(dp, inputs.get(probs).data(), t, |p, t| {
            if p > EPSILON && p < 1.0 - EPSILON {
                scale * (p - t) / (p * (1.0 - p))
            } else {
                0.0
            }
        });
    }
}

pub(super) fn softmax_cross_entropy_backward(
    logits: Var,
    target: Var,
    sparse: bool,
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    let probs = node.saved.data();
    let classes = node.saved.shape()[1];
    let rows = node.saved.shape()[0];
    let t = inputs.get(target).data();
    if let Some(dx) = targets.get(logits) {
        // d/dlogits of mean-over-rows cross-entropy: (softmax − target) / rows.
        let scale = node.grad.item() / rows.max(1) as f32;
        for (row, (dx, p)) in dx.chunks_mut(classes).zip(probs.chunks(classes)).enumerate() {
            dx.iter_mut().zip(p).for_each(|(d, &p)| *d += scale * p);
            if sparse {
                dx[t[row] as usize] -= scale;
            } else {
                dx.iter_mut()
                    .zip(&t[row * classes..])
                    .for_each(|(d, &t)| *d -= scale * t);
            }
        }
    }
}

pub(super) fn cross_entropy_backward(
    probs: Var,
    target: Var,
    sparse: bool,
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    let pv = inputs.get(probs);
    let classes = *pv.shape().last().expect("checked when recorded");
    let rows = pv.len() / classes.max(1);
    let (p, t) = (pv.data(), inputs.get(target).data());
    if let Some(dp) = targets.get(probs) {
        let scale = node.grad.item() / rows.max(1) as f32;
        let inside = |p: f32| p > EPSILON && p < 1.0 - EPSILON;
        if sparse {
            for (row, &label) in t.iter().enumerate().take(rows) {
                let at = row * classes + label as usize;
                if inside(p[at]) {
                    dp[at] -= scale / p[at];
                }
            }
        } else {
            kernels::accumulate_zip(dp, p, t, |p, t| if inside(p) { -scale * t / p } else { 0.0 });
        }
    }
}
