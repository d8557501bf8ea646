//! Scaled dot-product attention, fused: for each sample and head, blocks of query rows go
//! through scores, mask, softmax, dropout and the weighted sum of values while they are in
//! cache, so the only `(N, heads, Tq, Tk)` array is the probabilities the backward pass needs.
//! Queries, keys and values stay in their projected `(N, T, heads·dim)` layout; samples run in
//! parallel, each sample's arithmetic on one thread, so the thread count changes no bits.
//!
//! Every product (`q·kᵀ`, `p·v` forward; `dout·vᵀ`, `ds·k`, `dsᵀ·q`, `pᵀ·dout` backward) is a
//! register-blocked [`small_gemm`] on rows that are contiguous: the block of scores is a
//! scratch matrix whose width is `Tk` rounded up to 16, keys and values are transposed into
//! scratch once per head where a product needs them as rows, and a head width that is not a
//! multiple of 16 is copied into zero-padded scratch. The row passes (softmax, its gradient)
//! are vector loops of `kernels::softmax`. Each value is summed in the same order on every
//! vector width, so the AVX-512 and AVX2 paths give the same bits.

use super::scratch::with_scratch;
use super::simd::dispatch_simd;
use super::small_gemm::{Strided, small_gemm};
use super::softmax::{Pow2, SUM_LANES, dot, softmax_row};
use rayon::prelude::*;

/// Keras's score for a masked position (`_large_negative_number` for float32): it is replaced,
/// not added, so a row whose every position is masked gets a uniform softmax, as in Keras.
const MASKED: f32 = -1e9;

/// Query rows per block: a block of scores (48 × 208 values for the `imdb_transformer`'s 200
/// steps, 40 KB) stays in the level-1 cache between its products and its softmax.
const BLOCK_ROWS: usize = 48;

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

    fn has_dropout(&self) -> bool {
        matches!(self.dropout, Some((rate, _)) if rate > 0.0)
    }

    /// Widths of queries and keys per step (all heads), and of values.
    fn row_widths(&self) -> (usize, usize) {
        (self.heads * self.key_dim, self.heads * self.value_dim)
    }

    /// `Tk`, `key_dim` and `value_dim` rounded up to whole [`SUM_LANES`]-wide vectors.
    fn padded(&self) -> (usize, usize, usize) {
        let up = |n: usize| n.next_multiple_of(SUM_LANES);
        (up(self.steps.1), up(self.key_dim), up(self.value_dim))
    }
}

/// A head's columns `offset..offset + width` of a `rows × stride` matrix, as `small_gemm`'s
/// right operand (rows of a whole number of vectors): the matrix itself when `width` is
/// already padded, else a zero-padded copy in `buffer` (`rows × padded`).
fn head_rows<'a>(
    matrix: &'a [f32],
    (offset, width, stride): (usize, usize, usize),
    rows: usize,
    padded: usize,
    buffer: &'a mut [f32],
) -> (&'a [f32], usize) {
    if width == padded {
        return (&matrix[offset..], stride);
    }
    for (out, row) in buffer.chunks_exact_mut(padded).zip(matrix.chunks(stride)).take(rows) {
        out[..width].copy_from_slice(&row[offset..offset + width]);
        out[width..].fill(0.0);
    }
    (buffer, padded)
}

/// `transposed (width × padded_rows) = matrix[:, offset..offset + width]ᵀ`, zero past `rows`.
/// Eight rows of `matrix` at a time, so each column's eight values go out as one contiguous
/// store (one value per store, with its bounds check, cost as much as a third of a product).
fn transpose_head(matrix: &[f32], (offset, width, stride): (usize, usize, usize), rows: usize, transposed: &mut [f32]) {
    const BLOCK: usize = 8;
    let padded_rows = transposed.len() / width.max(1);
    let head_row = |j: usize| &matrix[j * stride + offset..][..width];
    let whole = rows - rows % BLOCK;
    for j in (0..whole).step_by(BLOCK) {
        let block: [&[f32]; BLOCK] = std::array::from_fn(|r| head_row(j + r));
        for c in 0..width {
            let column: [f32; BLOCK] = std::array::from_fn(|r| block[r][c]);
            transposed[c * padded_rows + j..][..BLOCK].copy_from_slice(&column);
        }
    }
    for j in whole..rows {
        for (c, &value) in head_row(j).iter().enumerate() {
            transposed[c * padded_rows + j] = value;
        }
    }
    for out in transposed.chunks_exact_mut(padded_rows) {
        out[rows..].fill(0.0);
    }
}

/// Copies columns `..width` of `rows` rows of `padded` values into a head's columns of `out`.
fn unpad(buffer: &[f32], padded: usize, out: &mut [f32], (offset, width, stride): (usize, usize, usize), rows: usize) {
    for (row, values) in out.chunks_mut(stride).zip(buffer.chunks_exact(padded)).take(rows) {
        row[offset..offset + width].copy_from_slice(&values[..width]);
    }
}

/// Splits `buffer` into pieces of the given lengths.
fn split<const K: usize>(mut buffer: &mut [f32], lengths: [usize; K]) -> [&mut [f32]; K] {
    lengths.map(|len| {
        let (piece, rest) = std::mem::take(&mut buffer).split_at_mut(len);
        buffer = rest;
        piece
    })
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
    let (qw, vw) = d.row_widths();
    if tq == 0 || tk == 0 {
        out.fill(0.0);
        return;
    }
    let (tkp, _, dvp) = d.padded();
    let scratch = d.key_dim * tkp + tk * dvp + BLOCK_ROWS * (tkp + dvp + d.key_dim);
    out.par_chunks_mut(tq * vw)
        .zip(probs.par_chunks_mut(d.probs_len()))
        .enumerate()
        .for_each(|(n, (out, probs))| {
            let operands = (
                &q[n * tq * qw..][..tq * qw],
                &k[n * tk * qw..][..tk * qw],
                &v[n * tk * vw..][..tk * vw],
            );
            let mask = mask.map(|m| &m[n * tq * tk..][..tq * tk]);
            with_scratch(scratch, |scratch| {
                forward_sample(&d, n, operands, mask, (out, probs), scratch)
            });
        });
}

dispatch_simd!(forward_sample<> => forward_sample_body(
    d: &AttentionDims, n: usize, operands: (&[f32], &[f32], &[f32]), mask: Option<&[f32]>,
    outputs: (&mut [f32], &mut [f32]), scratch: &mut [f32]
));

/// [`attention_forward`] for sample `n` (its slices of the operands and outputs).
#[inline(always)]
fn forward_sample_body<S: Pow2>(
    s: S,
    d: &AttentionDims,
    n: usize,
    (q, k, v): (&[f32], &[f32], &[f32]),
    mask: Option<&[f32]>,
    (out, probs): (&mut [f32], &mut [f32]),
    scratch: &mut [f32],
) {
    let (tq, tk) = d.steps;
    let (qw, vw) = d.row_widths();
    let (dk, dv) = (d.key_dim, d.value_dim);
    let (tkp, _, dvp) = d.padded();
    let [keys_t, values_pad, scores, block_out, queries] = split(
        scratch,
        [dk * tkp, tk * dvp, BLOCK_ROWS * tkp, BLOCK_ROWS * dvp, BLOCK_ROWS * dk],
    );
    for h in 0..d.heads {
        transpose_head(k, (h * dk, dk, qw), tk, keys_t);
        let values = head_rows(v, (h * dv, dv, vw), tk, dvp, values_pad);
        for first in (0..tq).step_by(BLOCK_ROWS) {
            let rows = BLOCK_ROWS.min(tq - first);
            // The block's queries times the scale, as Keras scales the query before its
            // product with the keys: the scores come out scaled.
            for (scaled, row) in queries
                .chunks_exact_mut(dk)
                .zip(q[first * qw + h * dk..].chunks(qw))
                .take(rows)
            {
                for (scaled, &value) in scaled.iter_mut().zip(&row[..dk]) {
                    *scaled = value * d.scale;
                }
            }
            let q_block = Strided {
                data: queries,
                row_stride: dk,
                col_stride: 1,
            };
            small_gemm(s, (rows, dk, tkp), q_block, (keys_t, tkp), (scores, tkp), false);
            for (r, row) in scores.chunks_exact_mut(tkp).take(rows).enumerate() {
                let i = first + r;
                if d.causal || mask.is_some() {
                    for (j, score) in row[..tk].iter_mut().enumerate() {
                        if !d.allowed(mask, i, j) {
                            *score = MASKED;
                        }
                    }
                }
                let probs = &mut probs[(h * tq + i) * tk..][..tk];
                softmax_row(s, row, tk, probs);
                if d.has_dropout() {
                    let base = n * d.probs_len() + (h * tq + i) * tk;
                    for (j, (dropped, &p)) in row[..tk].iter_mut().zip(probs.iter()).enumerate() {
                        *dropped = p * d.keep(base + j);
                    }
                }
            }
            // The weights of the values: the probabilities as saved, or their dropped-out
            // copy in the block of scores.
            let weights = match d.has_dropout() {
                true => Strided {
                    data: scores,
                    row_stride: tkp,
                    col_stride: 1,
                },
                false => Strided {
                    data: &probs[(h * tq + first) * tk..],
                    row_stride: tk,
                    col_stride: 1,
                },
            };
            if dv == dvp {
                let out = &mut out[first * vw + h * dv..];
                small_gemm(s, (rows, tk, dvp), weights, values, (out, vw), false);
            } else {
                small_gemm(s, (rows, tk, dvp), weights, values, (block_out, dvp), false);
                unpad(block_out, dvp, &mut out[first * vw..], (h * dv, dv, vw), rows);
            }
        }
    }
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
    let (qw, vw) = d.row_widths();
    if tq == 0 || tk == 0 {
        for grad in [dq, dk, dv] {
            grad.fill(0.0);
        }
        return;
    }
    let scratch = BackwardScratch::lengths(&d).iter().sum();
    dq.par_chunks_mut(tq * qw)
        .zip(dk.par_chunks_mut(tk * qw))
        .zip(dv.par_chunks_mut(tk * vw))
        .enumerate()
        .for_each(|(n, ((dq, dk), dv))| {
            let operands = (
                &q[n * tq * qw..][..tq * qw],
                &k[n * tk * qw..][..tk * qw],
                &v[n * tk * vw..][..tk * vw],
            );
            let probs = &probs[n * d.probs_len()..][..d.probs_len()];
            let dout = &dout[n * tq * vw..][..tq * vw];
            with_scratch(scratch, |scratch| {
                backward_sample(&d, n, operands, (probs, dout), (dq, dk, dv), scratch)
            });
        });
}

/// The pieces of [`backward_sample_body`]'s scratch memory.
struct BackwardScratch;

impl BackwardScratch {
    /// Lengths of: values transposed, keys, queries and `dout` padded, the block of score
    /// gradients, the block of dropped-out probabilities, and the padded `dq`, `dk`, `dv`.
    fn lengths(d: &AttentionDims) -> [usize; 9] {
        let (tq, tk) = d.steps;
        let (tkp, dkp, dvp) = d.padded();
        let (pad_k, pad_v) = (d.key_dim != dkp, d.value_dim != dvp);
        let dropout = d.has_dropout();
        [
            d.value_dim * tkp,
            if pad_k { tk * dkp } else { 0 },
            if pad_k { tq * dkp } else { 0 },
            if pad_v { tq * dvp } else { 0 },
            BLOCK_ROWS * tkp,
            if dropout { BLOCK_ROWS * tkp } else { 0 },
            if pad_k { tq * dkp } else { 0 },
            if pad_k { tk * dkp } else { 0 },
            if pad_v { tk * dvp } else { 0 },
        ]
    }
}

dispatch_simd!(backward_sample<> => backward_sample_body(
    d: &AttentionDims, n: usize, operands: (&[f32], &[f32], &[f32]), saved: (&[f32], &[f32]),
    grads: (&mut [f32], &mut [f32], &mut [f32]), scratch: &mut [f32]
));

/// [`attention_backward`] for sample `n`. Per block of query rows: `dp = dout·vᵀ`, then the
/// softmax's gradient `ds = scale·p·(dp − Σ p·dp)` row by row, `dq = ds·k`, `dk += dsᵀ·q` and
/// `dv += pᵀ·dout` (dropout applied to `p` and `dp` where there is dropout).
#[inline(always)]
fn backward_sample_body<S: Pow2>(
    s: S,
    d: &AttentionDims,
    n: usize,
    (q, k, v): (&[f32], &[f32], &[f32]),
    (probs, dout): (&[f32], &[f32]),
    (dq, dk, dv): (&mut [f32], &mut [f32], &mut [f32]),
    scratch: &mut [f32],
) {
    let (tq, tk) = d.steps;
    let (qw, vw) = d.row_widths();
    let (dkd, dvd) = (d.key_dim, d.value_dim);
    let (tkp, dkp, dvp) = d.padded();
    let [values_t, k_pad, q_pad, dout_pad, grads, dropped, dq_pad, dk_pad, dv_pad] =
        split(scratch, BackwardScratch::lengths(d));
    for h in 0..d.heads {
        let (key_cols, value_cols) = ((h * dkd, dkd, qw), (h * dvd, dvd, vw));
        transpose_head(v, value_cols, tk, values_t);
        let keys = head_rows(k, key_cols, tk, dkp, k_pad);
        let queries = head_rows(q, key_cols, tq, dkp, q_pad);
        let douts = head_rows(dout, value_cols, tq, dvp, dout_pad);
        // The head's gradients are written in place when its widths are whole vectors, else
        // into padded scratch and copied out after the last block.
        let (keys_in_place, values_in_place) = (dkd == dkp, dvd == dvp);
        for first in (0..tq).step_by(BLOCK_ROWS) {
            let rows = BLOCK_ROWS.min(tq - first);
            let dout_block = Strided {
                data: &dout[first * vw + h * dvd..],
                row_stride: vw,
                col_stride: 1,
            };
            small_gemm(s, (rows, dvd, tkp), dout_block, (values_t, tkp), (grads, tkp), false);
            for (r, ds) in grads.chunks_exact_mut(tkp).take(rows).enumerate() {
                let i = first + r;
                let p = &probs[(h * tq + i) * tk..][..tk];
                if d.has_dropout() {
                    let base = n * d.probs_len() + (h * tq + i) * tk;
                    let dropped = &mut dropped[r * tkp..][..tk];
                    for (j, (g, pd)) in ds[..tk].iter_mut().zip(dropped.iter_mut()).enumerate() {
                        let keep = d.keep(base + j);
                        *g *= keep;
                        *pd = p[j] * keep;
                    }
                }
                softmax_gradient(s, p, &mut ds[..tk], d.scale);
            }
            let grad_rows = Strided {
                data: grads,
                row_stride: tkp,
                col_stride: 1,
            };
            let grad_columns = Strided {
                row_stride: 1,
                col_stride: tkp,
                ..grad_rows
            };
            let dq_out = match keys_in_place {
                true => (&mut dq[first * qw + h * dkd..], qw),
                false => (&mut dq_pad[first * dkp..], dkp),
            };
            small_gemm(s, (rows, tk, dkp), grad_rows, keys, dq_out, false);
            let accumulate = first > 0;
            let q_block = (&queries.0[first * queries.1..], queries.1);
            let dk_out = match keys_in_place {
                true => (&mut dk[h * dkd..], qw),
                false => (&mut *dk_pad, dkp),
            };
            small_gemm(s, (tk, rows, dkp), grad_columns, q_block, dk_out, accumulate);
            let weights = match d.has_dropout() {
                true => Strided {
                    data: dropped,
                    row_stride: 1,
                    col_stride: tkp,
                },
                false => Strided {
                    data: &probs[(h * tq + first) * tk..],
                    row_stride: 1,
                    col_stride: tk,
                },
            };
            let dout_rows = (&douts.0[first * douts.1..], douts.1);
            let dv_out = match values_in_place {
                true => (&mut dv[h * dvd..], vw),
                false => (&mut *dv_pad, dvp),
            };
            small_gemm(s, (tk, rows, dvp), weights, dout_rows, dv_out, accumulate);
        }
        if !keys_in_place {
            unpad(dq_pad, dkp, dq, key_cols, tq);
            unpad(dk_pad, dkp, dk, key_cols, tk);
        }
        if !values_in_place {
            unpad(dv_pad, dvp, dv, value_cols, tk);
        }
    }
}

/// `ds ← scale·p·(ds − Σ p·ds)`: the gradient through a softmax row `p` of the gradient `ds`
/// of its output, in place.
#[inline(always)]
fn softmax_gradient<S: Pow2>(s: S, p: &[f32], ds: &mut [f32], scale: f32) {
    let weighted = s.splat(dot(s, p, ds));
    let scale = s.splat(scale);
    let len = p.len();
    let mut at = 0;
    while at < len {
        let width = (len - at).min(S::LANES);
        let (pv, gv) = (s.load_partial(&p[at..], width), s.load_partial(&ds[at..], width));
        let g = s.mul(s.mul(scale, pv), s.sub(gv, weighted));
        s.store_partial(&mut ds[at..], width, g);
        at += width;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::SimdLevel;

    /// The plain definition: per sample, head and query row, scores, mask, softmax, dropout
    /// and the weighted sum, one scalar loop each; and its gradient.
    fn reference_forward(
        d: AttentionDims,
        (q, k, v): (&[f32], &[f32], &[f32]),
        mask: Option<&[f32]>,
    ) -> (Vec<f32>, Vec<f32>) {
        let (tq, tk) = d.steps;
        let (qw, vw) = d.row_widths();
        let mut out = vec![0.0f32; d.batch * tq * vw];
        let mut probs = vec![0.0f32; d.batch * d.probs_len()];
        for n in 0..d.batch {
            let mask = mask.map(|m| &m[n * tq * tk..][..tq * tk]);
            for h in 0..d.heads {
                for i in 0..tq {
                    let scores: Vec<f64> = (0..tk)
                        .map(|j| match d.allowed(mask, i, j) {
                            true => {
                                let dot: f64 = (0..d.key_dim)
                                    .map(|c| {
                                        q[(n * tq + i) * qw + h * d.key_dim + c] as f64
                                            * k[(n * tk + j) * qw + h * d.key_dim + c] as f64
                                    })
                                    .sum();
                                d.scale as f64 * dot
                            }
                            false => MASKED as f64,
                        })
                        .collect();
                    let max = scores.iter().copied().fold(f64::NEG_INFINITY, f64::max);
                    let total: f64 = scores.iter().map(|s| (s - max).exp()).sum();
                    let base = n * d.probs_len() + (h * tq + i) * tk;
                    for j in 0..tk {
                        let p = (scores[j] - max).exp() / total;
                        probs[base + j] = p as f32;
                        let p = p * d.keep(base + j) as f64;
                        for c in 0..d.value_dim {
                            let o = (n * tq + i) * vw + h * d.value_dim + c;
                            out[o] += (p * v[(n * tk + j) * vw + h * d.value_dim + c] as f64) as f32;
                        }
                    }
                }
            }
        }
        (out, probs)
    }

    fn values(len: usize, seed: usize) -> Vec<f32> {
        (0..len)
            .map(|i| ((i * 7919 + seed * 104_729) % 2001) as f32 / 1000.0 - 1.0)
            .collect()
    }

    fn dims(batch: usize, steps: (usize, usize), heads: usize, key_dim: usize, value_dim: usize) -> AttentionDims {
        AttentionDims {
            batch,
            steps,
            heads,
            key_dim,
            value_dim,
            scale: 1.0 / (key_dim as f32).sqrt(),
            causal: false,
            dropout: None,
        }
    }

    /// Forward and backward outputs of the kernels, all concatenated.
    fn run(d: AttentionDims, mask: Option<&[f32]>) -> Vec<f32> {
        let (tq, tk) = d.steps;
        let (qw, vw) = d.row_widths();
        let (q, k, v) = (
            values(d.batch * tq * qw, 1),
            values(d.batch * tk * qw, 2),
            values(d.batch * tk * vw, 3),
        );
        let mut out = vec![0.0; d.batch * tq * vw];
        let mut probs = vec![0.0; d.batch * d.probs_len()];
        attention_forward(d, (&q, &k, &v), mask, &mut out, &mut probs);
        let dout = values(out.len(), 4);
        let (mut dq, mut dk, mut dv) = (vec![1.0; q.len()], vec![1.0; k.len()], vec![1.0; v.len()]);
        attention_backward(d, (&q, &k, &v), &probs, &dout, (&mut dq, &mut dk, &mut dv));
        [out, probs, dq, dk, dv].concat()
    }

    /// Shapes with widths that are and are not whole vectors, step counts that are not
    /// multiples of the block or the vector, masks, causality and dropout.
    fn cases() -> Vec<(AttentionDims, bool)> {
        vec![
            (dims(2, (7, 9), 2, 5, 3), false),
            (dims(3, (50, 37), 2, 16, 16), true),
            (
                AttentionDims {
                    causal: true,
                    dropout: Some((0.3, 11)),
                    ..dims(2, (53, 53), 3, 8, 32)
                },
                false,
            ),
            (
                AttentionDims {
                    dropout: Some((0.2, 5)),
                    ..dims(2, (20, 61), 2, 32, 32)
                },
                true,
            ),
        ]
    }

    fn mask_for(d: &AttentionDims, masked: bool) -> Option<Vec<f32>> {
        let (tq, tk) = d.steps;
        masked.then(|| {
            (0..d.batch * tq * tk)
                .map(|i| if (i * 31 % 7) < 5 { 1.0 } else { 0.0 })
                .collect()
        })
    }

    #[test]
    fn forward_matches_the_definition() {
        for (d, masked) in cases() {
            let mask = mask_for(&d, masked);
            let (tq, tk) = d.steps;
            let (qw, vw) = d.row_widths();
            let (q, k, v) = (
                values(d.batch * tq * qw, 1),
                values(d.batch * tk * qw, 2),
                values(d.batch * tk * vw, 3),
            );
            let (want_out, want_probs) = reference_forward(d, (&q, &k, &v), mask.as_deref());
            let mut out = vec![0.0; want_out.len()];
            let mut probs = vec![0.0; want_probs.len()];
            attention_forward(d, (&q, &k, &v), mask.as_deref(), &mut out, &mut probs);
            let worst = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(worst(&probs, &want_probs) < 1e-6, "{d:?}: probabilities");
            assert!(worst(&out, &want_out) < 1e-5, "{d:?}: outputs");
        }
    }

    #[test]
    fn backward_matches_central_differences_of_the_forward() {
        // The loss Σ out·w through the kernels; its gradient by the backward kernel against
        // differences of the forward kernel, for a sample of inputs.
        for (d, masked) in cases() {
            let mask = mask_for(&d, masked);
            let (tq, tk) = d.steps;
            let (qw, vw) = d.row_widths();
            let mut inputs = [
                values(d.batch * tq * qw, 1),
                values(d.batch * tk * qw, 2),
                values(d.batch * tk * vw, 3),
            ];
            let w = values(d.batch * tq * vw, 4);
            let loss = |inputs: &[Vec<f32>; 3]| {
                let mut out = vec![0.0; w.len()];
                let mut probs = vec![0.0; d.batch * d.probs_len()];
                attention_forward(
                    d,
                    (&inputs[0], &inputs[1], &inputs[2]),
                    mask.as_deref(),
                    &mut out,
                    &mut probs,
                );
                (out.iter().zip(&w).map(|(o, w)| (o * w) as f64).sum::<f64>(), probs)
            };
            let (_, probs) = loss(&inputs);
            let mut grads = [
                vec![0.0; inputs[0].len()],
                vec![0.0; inputs[1].len()],
                vec![0.0; inputs[2].len()],
            ];
            {
                let [dq, dk, dv] = &mut grads;
                let operands = (&inputs[0][..], &inputs[1][..], &inputs[2][..]);
                attention_backward(d, operands, &probs, &w, (dq, dk, dv));
            }
            for which in 0..3 {
                for index in (0..inputs[which].len()).step_by(11) {
                    let original = inputs[which][index];
                    let step = 1e-2;
                    inputs[which][index] = original + step;
                    let up = loss(&inputs).0;
                    inputs[which][index] = original - step;
                    let down = loss(&inputs).0;
                    inputs[which][index] = original;
                    let numeric = (up - down) / (2.0 * step as f64);
                    let got = grads[which][index] as f64;
                    assert!(
                        (numeric - got).abs() < 2e-3 * (1.0 + numeric.abs()),
                        "{d:?} input {which}[{index}]: {got} vs {numeric}"
                    );
                }
            }
        }
    }

    #[test]
    fn paths_and_thread_counts_agree() {
        let pool = |level: SimdLevel, threads: usize| {
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .start_handler(move |_| crate::kernels::limit_simd_on_this_thread(Some(level)))
                .build()
                .expect("a thread pool")
        };
        for (d, masked) in cases() {
            let mask = mask_for(&d, masked);
            let at = |level, threads| pool(level, threads).install(|| run(d, mask.as_deref()));
            let wide = at(SimdLevel::Avx512, 2);
            let same = |a: &[f32], b: &[f32]| a.iter().zip(b).all(|(x, y)| x.to_bits() == y.to_bits());
            assert!(
                same(&wide, &at(SimdLevel::Avx512, 1)),
                "{d:?}: one thread and two differ"
            );
            assert!(same(&wide, &at(SimdLevel::Avx2, 2)), "{d:?}: AVX-512 and AVX2 differ");
            let scalar = at(SimdLevel::Scalar, 2);
            let worst = wide.iter().zip(&scalar).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-4, "{d:?}: scalar differs by {worst}");
        }
    }

    /// The forward and backward kernels at the `imdb_transformer`'s shape (batch 32, 200
    /// steps, 2 heads of 32), on 1 and 2 threads: the figures of docs/PERFORMANCE.md's
    /// Transformer section.
    #[test]
    #[ignore = "a timing, not a check: cargo test --release --lib attention::tests::timing -- --ignored --nocapture"]
    fn timing_at_the_imdb_transformer_shape() {
        let d = dims(32, (200, 200), 2, 32, 32);
        let (tq, tk) = d.steps;
        let (qw, vw) = d.row_widths();
        let (q, k, v) = (
            values(d.batch * tq * qw, 1),
            values(d.batch * tk * qw, 2),
            values(d.batch * tk * vw, 3),
        );
        let dout = values(d.batch * tq * vw, 4);
        let mut out = vec![0.0; dout.len()];
        let mut probs = vec![0.0; d.batch * d.probs_len()];
        let (mut dq, mut dk, mut dv) = (vec![0.0; q.len()], vec![0.0; k.len()], vec![0.0; v.len()]);
        // Two products forward, four backward, each 2·Tq·Tk·32 per sample and head.
        let product_gflop = 2.0 * (d.batch * d.heads * tq * tk * d.key_dim) as f64 * 1e-9;
        /// The fastest of 10 runs of `work`, each the mean of 5 calls, in ms.
        fn fastest(mut work: impl FnMut()) -> f64 {
            let runs = (0..10).map(|_| {
                let started = std::time::Instant::now();
                (0..5).for_each(|_| work());
                started.elapsed().as_secs_f64() * 1e3 / 5.0
            });
            runs.fold(f64::MAX, f64::min)
        }
        for threads in [1, 2] {
            let pool = rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .build()
                .expect("a thread pool");
            pool.install(|| {
                let forward = fastest(|| attention_forward(d, (&q, &k, &v), None, &mut out, &mut probs));
                let backward = fastest(|| {
                    attention_backward(d, (&q, &k, &v), &probs, &dout, (&mut dq, &mut dk, &mut dv))
                });
                println!(
                    "{threads} thread(s): forward {forward:.3} ms ({:.0} GFLOP/s), backward {backward:.3} ms ({:.0} GFLOP/s)",
                    2.0 * product_gflop / forward * 1e3,
                    4.0 * product_gflop / backward * 1e3
                );
            });
        }
    }

    #[test]
    fn one_head_matches_a_hand_computed_softmax_of_scores() {
        // q = [1, 0], keys [1, 0] and [0, 1]: scores 1/√2·(1, 0), values 10 and 20.
        let d = AttentionDims {
            scale: 1.0 / 2f32.sqrt(),
            ..dims(1, (1, 2), 1, 2, 1)
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
