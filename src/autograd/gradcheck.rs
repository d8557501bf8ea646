//! Central-difference gradient checking, for tests of every op, layer and loss.

use super::op::Var;
use super::params::ParamStore;
use super::tape::{Graph, Tape};
use crate::error::Result;

/// Compares the gradient `backward` computes for every trainable parameter with the central
/// difference `(f(p + eps) − f(p − eps)) / 2eps` and returns the worst error, measured as
/// `|analytic − numeric| / max(1, |analytic|, |numeric|)`.
///
/// `loss` builds a scalar from the parameters on a fresh [`Graph`] each time it is called.
pub fn max_gradient_error(params: &mut ParamStore, eps: f32, loss: impl Fn(&mut Graph) -> Result<Var>) -> Result<f32> {
    let mut tape = Tape::new();
    let evaluate = |tape: &mut Tape, params: &ParamStore| -> Result<(Var, f64)> {
        let mut graph = Graph::new(tape, params, true);
        let out = loss(&mut graph)?;
        let value = graph.value(out).item() as f64;
        Ok((out, value))
    };
    let (out, _) = evaluate(&mut tape, params)?;
    tape.backward(out, params);
    let mut worst = 0.0f32;
    for id in params.ids().collect::<Vec<_>>() {
        if !params.is_trainable(id) {
            continue;
        }
        let analytic = params.grad(id).clone();
        for i in 0..analytic.len() {
            let original = params.value(id).data()[i];
            params.value_mut(id).data_mut()[i] = original + eps;
            let (_, plus) = evaluate(&mut tape, params)?;
            params.value_mut(id).data_mut()[i] = original - eps;
            let (_, minus) = evaluate(&mut tape, params)?;
            params.value_mut(id).data_mut()[i] = original;
            let numeric = ((plus - minus) / (2.0 * eps as f64)) as f32;
            let exact = analytic.data()[i];
            let error = (exact - numeric).abs() / 1f32.max(exact.abs()).max(numeric.abs());
            worst = worst.max(error);
        }
    }
    Ok(worst)
}
