//! Scaled dot-product attention, fused: scores, mask, softmax, dropout and the weighted sum of
//! values are computed one query row at a time, so the only `(N, heads, Tq, Tk)` array is the
//! probabilities the backward pass needs. Queries, keys and values stay in their projected
//! `(N, T, heads, dim)` layout (no transposes); samples run in parallel.

use rayon::prelude::*;

/// Keras's score for a masked position (`_large_negative_number` for float32): it is replaced,
/// not added, so a row whose every position is masked gets a uniform softmax, as in Keras.
const MASKED: f32 = -1e9;

/// The sizes and settings of one attention product.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) struct AttentionDims {
    /// Batch size.
    pub batch: usize,
    /// Query steps `Tq` and key/value steps `Tk`.
    pub steps: (usize, usize),
    /// Number of heads.
    pub heads: usize,
    /// Per-head width of queries and keys.
    pub key_dim: usize,
    /// Per-head width of values (and of the output).
    pub value_dim: usize,
    /// Factor on `q·k` (Keras: `1/√key_dim`).
    pub scale: f32,
    /// Whether query `i` sees only keys `j ≤ i`.
    pub causal: bool,
    /// Dropout on the probabilities, `(rate, seed)`: the keep decision of each probability is
    /// a hash of its index and the seed, so the backward pass recomputes it instead of storing
    /// a second `(N, heads, Tq, Tk)` array.
    pub dropout: Option<(f32, u64)>,
}

impl AttentionDims {
    fn probs_len(&self) -> usize {
        self.heads * self.steps.0 * self.steps.1
    }

    fn allowed(&self, mask: Option<&[f32]>, i: usize, j: usize) -> bool {
        !(self.causal && j > i) && mask.is_none_or(|m| m[i * self.steps.1 + j] > 0.5)
    }

    /// The factor on probability `index` (of the whole batch): 0 if dropped, `1/(1 − rate)` if
    /// kept, 1 without dropout.
    fn keep(&self, index: usize) -> f32 {
        match self.dropout {
            Some((rate, seed)) if rate > 0.0 => {
                let draw = (crate::rng::mix(seed, index as u64) >> 40) as f32 / (1u64 << 24) as f32;
                if draw >= rate { 1.0 / (1.0 - rate) } else { 0.0 }
            }
            _ => 1.0,
        }
    }
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Fills `out (N, Tq, heads·value_dim)` and `probs (N, heads, Tq, Tk)` from `q (N, Tq,
/// heads·key_dim)`, `k (N, Tk, heads·key_dim)`, `v (N, Tk, heads·value_dim)` and an optional
/// `mask (N, Tq, Tk)` (above 0.5: may attend).
pub(crate) fn attention_forward(
    d: AttentionDims,
    (q, k, v): (&[f32], &[f32], &[f32]),
    mask: Option<&[f32]>,
    out: &mut [f32],
    probs: &mut [f32],
) {
    let (tq, tk) = d.steps;
    let (qw, vw) = (d.heads * d.key_dim, d.heads * d.value_dim);
    out.par_chunks_mut((tq * vw).max(1))
        .zip(probs.par_chunks_mut(d.probs_len().max(1)))
        .enumerate()
        .for_each(|(n, (out, probs))| {
            let q = &q[n * tq * qw..][..tq * qw];
            let (k, v) = (&k[n * tk * qw..][..tk * qw], &v[n * tk * vw..][..tk * vw]);
            let mask = mask.map(|m| &m[n * tq * tk..][..tq * tk]);
            out.fill(0.0);
            for h in 0..d.heads {
                for i in 0..tq {
                    let row = &mut probs[(h * tq + i) * tk..][..tk];
                    let qi = &q[i * qw + h * d.key_dim..][..d.key_dim];
                    for (j, score) in row.iter_mut().enumerate() {
                        *score = match d.allowed(mask, i, j) {
                            true => d.scale * dot(qi, &k[j * qw + h * d.key_dim..][..d.key_dim]),
                            false => MASKED,
                        };
                    }
                    super::softmax_rows_in_place(row);
                    let oi = &mut out[i * vw + h * d.value_dim..][..d.value_dim];
                    let base = n * d.probs_len() + (h * tq + i) * tk;
                    for (j, &p) in row.iter().enumerate() {
                        let p = p * d.keep(base + j);
                        if p != 0.0 {
                            let vj = &v[j * vw + h * d.value_dim..][..d.value_dim];
                            oi.iter_mut().zip(vj).for_each(|(o, &x)| *o += p * x);
                        }
                    }
                }
            }
        });
}

/// The gradients of [`attention_forward`]: `dq`, `dk`, `dv` (overwritten, same layouts as
/// `q`, `k`, `v`) from the output's gradient `dout` and the saved `probs`.
pub(crate) fn attention_backward(
    d: AttentionDims,
    (q, k, v): (&[f32], &[f32], &[f32]),
    probs: &[f32],
    dout: &[f32],
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
) {
    let (tq, tk) = d.steps;
    let (qw, vw) = (d.heads * d.key_dim, d.heads * d.value_dim);
    dq.par_chunks_mut((tq * qw).max(1))
        .zip(dk.par_chunks_mut((tk * qw).max(1)))
        .zip(dv.par_chunks_mut((tk * vw).max(1)))
        .enumerate()
        // One row buffer per worker, not per sample: every row overwrites it whole.
        .for_each_init(
            || vec![0.0f32; tk],
            |ds, (n, ((dq, dk), dv))| {
                let q = &q[n * tq * qw..][..tq * qw];
                let (k, v) = (&k[n * tk * qw..][..tk * qw], &v[n * tk * vw..][..tk * vw]);
                let dout = &dout[n * tq * vw..][..tq * vw];
                let probs = &probs[n * d.probs_len()..][..d.probs_len()];
                dq.fill(0.0);
                dk.fill(0.0);
                dv.fill(0.0);
                for h in 0..d.heads {
                    for i in 0..tq {
                        let p = &probs[(h * tq + i) * tk..][..tk];
                        let doi = &dout[i * vw + h * d.value_dim..][..d.value_dim];
                        let base = n * d.probs_len() + (h * tq + i) * tk;
                        // ds[j] = dL/d(probability j) after dropout, then through the softmax.
                        let mut weighted = 0.0;
                        for (j, s) in ds.iter_mut().enumerate() {
                            let keep = d.keep(base + j);
                            *s = 0.0;
                            if p[j] != 0.0 && keep != 0.0 {
                                let o = j * vw + h * d.value_dim;
                                *s = keep * dot(doi, &v[o..][..d.value_dim]);
                                let dvj = &mut dv[o..][..d.value_dim];
                                dvj.iter_mut().zip(doi).for_each(|(g, &x)| *g += p[j] * keep * x);
                            }
                            weighted += p[j] * *s;
                        }
                        let qi = i * qw + h * d.key_dim;
                        for (j, s) in ds.iter().enumerate() {
                            let g = d.scale * p[j] * (s - weighted);
                            if g != 0.0 {
                                let kj = j * qw + h * d.key_dim;
                                for c in 0..d.key_dim {
                                    dq[qi + c] += g * k[kj + c];
                                    dk[kj + c] += g * q[qi + c];
                                }
                            }
                        }
                    }
                }
            },
        );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn one_head_matches_a_hand_computed_softmax_of_scores() {
        // q = [1, 0], keys [1, 0] and [0, 1]: scores 1/√2·(1, 0), values 10 and 20.
        let d = AttentionDims {
            batch: 1,
            steps: (1, 2),
            heads: 1,
            key_dim: 2,
            value_dim: 1,
            scale: 1.0 / 2f32.sqrt(),
            causal: false,
            dropout: None,
        };
        let (mut out, mut probs) = ([0.0], [0.0; 2]);
        attention_forward(
            d,
            (&[1.0, 0.0], &[1.0, 0.0, 0.0, 1.0], &[10.0, 20.0]),
            None,
            &mut out,
            &mut probs,
        );
        let e = (1.0f32 / 2f32.sqrt()).exp();
        let p0 = e / (e + 1.0);
        assert!((probs[0] - p0).abs() < 1e-6 && (out[0] - (10.0 * p0 + 20.0 * (1.0 - p0))).abs() < 1e-5);
        // Causal with one query row at step 0: only key 0 is seen.
        attention_forward(
            AttentionDims { causal: true, ..d },
            (&[1.0, 0.0], &[1.0, 0.0, 0.0, 1.0], &[10.0, 20.0]),
            None,
            &mut out,
            &mut probs,
        );
        assert_eq!((probs, out), ([1.0, 0.0], [10.0]));
    }
}
