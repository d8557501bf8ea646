//! Layer normalization's loops: each row of `features` values normalized by its own mean and
//! standard deviation, and the closed-form gradient, on vectors (`kernels::simd`), rows in
//! parallel. A row's sums run in the sixteen fixed lanes of `kernels::softmax`, so every
//! vector width and thread count gives the same bits; the sums over rows (the gradients of
//! `γ` and `β`) run in row order on one thread.

use super::scratch::with_scratch;
use super::simd::{Simd, dispatch_simd};
use super::softmax::{Pow2, dot, sum};
use rayon::prelude::*;

/// Rows per parallel task.
const ROWS_PER_TASK: usize = 128;

/// The affine parameters of a normalization: `γ` and `β`, each optional.
#[derive(Clone, Copy)]
pub(crate) struct Affine<'a> {
    /// Scale, one per feature.
    pub gamma: Option<&'a [f32]>,
    /// Offset, one per feature.
    pub beta: Option<&'a [f32]>,
}

/// `out = (x − mean)·inv_std·γ + β` per row of `features` values, with each row's mean and
/// `inv_std = 1/√(var + ε)` (the biased variance) written to `means` and `inv_stds`.
pub(crate) fn layer_norm_forward(
    x: &[f32],
    features: usize,
    epsilon: f32,
    affine: Affine,
    out: &mut [f32],
    (means, inv_stds): (&mut [f32], &mut [f32]),
) {
    let chunk = ROWS_PER_TASK * features.max(1);
    out.par_chunks_mut(chunk)
        .zip(x.par_chunks(chunk))
        .zip(means.par_chunks_mut(ROWS_PER_TASK))
        .zip(inv_stds.par_chunks_mut(ROWS_PER_TASK))
        .for_each(|(((out, x), means), inv_stds)| forward_rows(x, features, epsilon, affine, out, means, inv_stds));
}

dispatch_simd!(forward_rows<> => forward_rows_body(
    x: &[f32], features: usize, epsilon: f32, affine: Affine, out: &mut [f32], means: &mut [f32],
    inv_stds: &mut [f32]
));

/// Applies `f` to each vector of `len` values starting at the offsets `f` reads and writes.
#[inline(always)]
fn for_vectors<S: Simd>(len: usize, mut f: impl FnMut(usize, usize)) {
    let mut at = 0;
    while at < len {
        let width = (len - at).min(S::LANES);
        f(at, width);
        at += width;
    }
}

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn forward_rows_body<S: Pow2>(
    s: S,
    x: &[f32],
    features: usize,
    epsilon: f32,
    affine: Affine,
    out: &mut [f32],
    means: &mut [f32],
    inv_stds: &mut [f32],
) {
    let n = features as f32;
    let rows = out.chunks_exact_mut(features).zip(x.chunks_exact(features));
    for ((out, x), (mean_out, inv_out)) in rows.zip(means.iter_mut().zip(inv_stds.iter_mut())) {
        let mean = sum(s, x) / n;
        let m = s.splat(mean);
        for_vectors::<S>(features, |at, w| {
            s.store_partial(&mut out[at..], w, s.sub(s.load_partial(&x[at..], w), m));
        });
        let inv_std = 1.0 / (dot(s, out, out) / n + epsilon).sqrt();
        let inv = s.splat(inv_std);
        for_vectors::<S>(features, |at, w| {
            let mut v = s.mul(s.load_partial(&out[at..], w), inv);
            if let Some(gamma) = affine.gamma {
                v = s.mul(v, s.load_partial(&gamma[at..], w));
            }
            if let Some(beta) = affine.beta {
                v = s.add(v, s.load_partial(&beta[at..], w));
            }
            s.store_partial(&mut out[at..], w, v);
        });
        (*mean_out, *inv_out) = (mean, inv_std);
    }
}

/// The gradients of [`layer_norm_forward`] from the output's gradient `dy`: `dx += …` (the
/// closed form `inv_std/F·(F·dx̂ − Σdx̂ − x̂·Σ(dx̂·x̂))` with `dx̂ = dy·γ`), `dgamma += Σ dy·x̂`
/// and `dbeta += Σ dy` over the rows; each only where given.
#[allow(clippy::too_many_arguments)]
pub(crate) fn layer_norm_backward(
    x: &[f32],
    features: usize,
    (means, inv_stds): (&[f32], &[f32]),
    gamma: Option<&[f32]>,
    dy: &[f32],
    dx: Option<&mut [f32]>,
    dgamma: Option<&mut [f32]>,
    dbeta: Option<&mut [f32]>,
) {
    if let Some(dbeta) = dbeta {
        super::accumulate_column_sums(dbeta, dy);
    }
    if let Some(dgamma) = dgamma {
        super::accumulate_columns(dgamma, means.len(), |row, dgamma| {
            let (mean, inv_std) = (means[row], inv_stds[row]);
            let (dy, x) = (&dy[row * features..][..features], &x[row * features..][..features]);
            let terms = dgamma.iter_mut().zip(dy.iter().zip(x));
            terms.for_each(|(d, (&g, &x))| *d += g * ((x - mean) * inv_std));
        });
    }
    let Some(dx) = dx else { return };
    let chunk = ROWS_PER_TASK * features.max(1);
    dx.par_chunks_mut(chunk)
        .zip(dy.par_chunks(chunk).zip(x.par_chunks(chunk)))
        .zip(means.par_chunks(ROWS_PER_TASK).zip(inv_stds.par_chunks(ROWS_PER_TASK)))
        .for_each(|((dx, (dy, x)), stats)| {
            with_scratch(2 * features, |scratch| {
                backward_rows(x, features, stats, gamma, dy, dx, scratch)
            })
        });
}

dispatch_simd!(backward_rows<> => backward_rows_body(
    x: &[f32], features: usize, stats: (&[f32], &[f32]), gamma: Option<&[f32]>, dy: &[f32],
    dx: &mut [f32], scratch: &mut [f32]
));

#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn backward_rows_body<S: Pow2>(
    s: S,
    x: &[f32],
    features: usize,
    (means, inv_stds): (&[f32], &[f32]),
    gamma: Option<&[f32]>,
    dy: &[f32],
    dx: &mut [f32],
    scratch: &mut [f32],
) {
    let n = features as f32;
    let (dxhat, xhat) = scratch.split_at_mut(features);
    let rows = dx
        .chunks_exact_mut(features)
        .zip(dy.chunks_exact(features).zip(x.chunks_exact(features)));
    for ((dx, (dy, x)), (&mean, &inv_std)) in rows.zip(means.iter().zip(inv_stds)) {
        let (m, inv) = (s.splat(mean), s.splat(inv_std));
        for_vectors::<S>(features, |at, w| {
            let mut g = s.load_partial(&dy[at..], w);
            if let Some(gamma) = gamma {
                g = s.mul(g, s.load_partial(&gamma[at..], w));
            }
            s.store_partial(&mut dxhat[at..], w, g);
            let h = s.mul(s.sub(s.load_partial(&x[at..], w), m), inv);
            s.store_partial(&mut xhat[at..], w, h);
        });
        let (total, total_xhat) = (s.splat(sum(s, dxhat)), s.splat(dot(s, dxhat, xhat)));
        let (count, factor) = (s.splat(n), s.splat(inv_std / n));
        for_vectors::<S>(features, |at, w| {
            let g = s.load_partial(&dxhat[at..], w);
            let h = s.load_partial(&xhat[at..], w);
            let inner = s.sub(s.sub(s.mul(count, g), total), s.mul(h, total_xhat));
            let d = s.add(s.load_partial(&dx[at..], w), s.mul(factor, inner));
            s.store_partial(&mut dx[at..], w, d);
        });
    }
}
