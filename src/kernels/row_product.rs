//! The product of one row and a matrix, `c (1×n) = a (1×k) · b (k×n)`: a single-sample `predict`
//! of a Dense layer. `gemm` runs it through its general path (packing, blocking, a dispatch per
//! call) at about a third of the speed of this loop, which streams `b` once, row by row, into
//! a block of sums held in registers.

use super::simd::{Simd, dispatch_simd};

/// Vector registers of sums per pass over `b`: 8 × 16 lanes cover the mlp's 128 units in one
/// pass on AVX-512 (two on AVX2), leaving registers for the loads.
const BLOCK_VECTORS: usize = 8;

/// `c = a · b`, or `c += a · b` when `accumulate`; `a` holds `k` values, `b` is `k×n`
/// row-major, `c` holds `n`. Each output is one multiply-add chain over `k` in order, on every
/// vector width (so AVX-512 and AVX2 give the same bits), and the sum is added to `c` after it
/// is complete, as `gemm` adds its product.
pub(super) fn row_times_matrix(a: &[f32], b: &[f32], c: &mut [f32], k: usize, n: usize, accumulate: bool) {
    row_times_matrix_simd(&a[..k], &b[..k * n], &mut c[..n], accumulate);
}

dispatch_simd!(row_times_matrix_simd<> => row_times_matrix_body(
    a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool
));

#[inline(always)]
fn row_times_matrix_body<S: Simd>(s: S, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    let n = c.len();
    let vectors = n / S::LANES;
    let mut first = 0;
    while first < vectors {
        let count = (vectors - first).min(BLOCK_VECTORS);
        let mut sums = [s.splat(0.0); BLOCK_VECTORS];
        for (&x, row) in a.iter().zip(b.chunks_exact(n)) {
            let x = s.splat(x);
            for (v, sum) in sums[..count].iter_mut().enumerate() {
                let at = (first + v) * S::LANES;
                *sum = s.mul_add(x, s.load(&row[at..at + S::LANES]), *sum);
            }
        }
        for (v, sum) in sums[..count].iter().enumerate() {
            let at = (first + v) * S::LANES;
            let out = &mut c[at..at + S::LANES];
            let sum = if accumulate { s.add(s.load(out), *sum) } else { *sum };
            s.store(out, sum);
        }
        first += count;
    }
    // The columns past the last whole vector (the mlp's 10 outputs), one chain each.
    for (j, out) in c.iter_mut().enumerate().skip(vectors * S::LANES) {
        let sum = a
            .iter()
            .zip(b[j..].iter().step_by(n))
            .fold(0.0f32, |sum, (&x, &w)| x.mul_add(w, sum));
        *out = if accumulate { *out + sum } else { sum };
    }
}
