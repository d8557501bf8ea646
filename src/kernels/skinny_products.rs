//! Products with one long dimension and two short ones, without packing: a Dense layer
//! applied at every step of a sequence, as in a Transformer's projections (the
//! `imdb_transformer`'s batch of 32 × 200 steps is 6,400 rows of 32 or 64 values). Forward
//! `x·W` and input gradient `dy·Wᵀ` are long in rows; the kernel gradient `xᵀ·dy` is long in
//! depth.
//!
//! # Why not gemm-f32
//!
//! gemm-f32 packs the long operand into blocks on every call, a copy as large as the product's
//! input, for an inner dimension of 32 that gives each packed value 32 to 64 multiply-adds. At
//! these shapes it ran at 65–90 GFLOP/s on two threads of the AVX2 machine, bound by memory
//! (docs/PERFORMANCE.md, "Dense layers on sequences"). Here the short operand (at most 4,096
//! values) stays in the first-level cache and the long one is read once, in place, into the
//! register tiles of [`small_gemm`](super::small_gemm::small_gemm).
//!
//! Every output value of a long-row product is one multiply-add chain over the inner dimension
//! in order. A long-depth product sums fixed chunks of [`CHUNK`] rows, each one chain, then
//! adds the chunks' partial results in order. Neither depends on the vector width or the
//! thread count: AVX-512, AVX2 and one or more threads give the same bits.

use super::scratch::with_scratch;
use super::small_gemm::{Strided, small_gemm_dispatched as product};
use super::transpose::Transpose;
use rayon::prelude::*;

/// The shortest long dimension this path takes.
const MIN_LONG: usize = 1024;
/// The most values the short operand (or the long-depth product's result) may hold: it stays
/// in the first-level cache beside the rows being read.
const MAX_SHORT_VALUES: usize = 4096;
/// The vector width every column count must be a multiple of: AVX-512's, which AVX2's divides.
const WIDTH: usize = 16;
/// Rows of the result per task in a long-row product (a multiple of `small_gemm`'s six-row
/// tiles): about a hundred tasks for 6,400 rows.
const TASK_ROWS: usize = 96;
/// Rows of the long depth summed into one partial result.
const CHUNK: usize = 256;
/// Chunks in flight at once in a long-depth product, which bounds its scratch memory.
const CHUNKS_AT_ONCE: usize = 64;

/// `c (m×n) = a·b` or `c += a·b`, as `super::matmul` describes, when the shape is long in rows
/// (`a` as stored, `b` either way) or long in depth (`a` transposed, `b` as stored) with short
/// other dimensions; returns `false` (and leaves `c` alone) for any other.
#[allow(clippy::too_many_arguments)]
pub(super) fn try_skinny_product(
    a: &[f32],
    transpose_a: Transpose,
    b: &[f32],
    transpose_b: Transpose,
    c: &mut [f32],
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) -> bool {
    if !n.is_multiple_of(WIDTH) {
        return false;
    }
    match (transpose_a, transpose_b) {
        (Transpose::No, _) if m >= MIN_LONG && k * n <= MAX_SHORT_VALUES => {
            long_rows(a, (b, transpose_b), c, (m, k, n), accumulate)
        }
        (Transpose::Yes, Transpose::No) if k >= MIN_LONG && m * n <= MAX_SHORT_VALUES => {
            long_depth(a, b, c, (m, k, n), accumulate)
        }
        _ => return false,
    }
    true
}

/// `c (+)= a·b` for `a` of many rows, split into tasks of [`TASK_ROWS`] rows; `b` (k×n) is
/// transposed into scratch first when stored n×k.
fn long_rows(
    a: &[f32],
    (b, transpose_b): (&[f32], Transpose),
    c: &mut [f32],
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    with_scratch(k * n, |b_rows| {
        let b_rows: &[f32] = match transpose_b {
            Transpose::No => &b[..k * n],
            Transpose::Yes => {
                for (j, column) in b[..k * n].chunks_exact(k).enumerate() {
                    for (p, &value) in column.iter().enumerate() {
                        b_rows[p * n + j] = value;
                    }
                }
                b_rows
            }
        };
        c[..m * n]
            .par_chunks_mut(TASK_ROWS * n)
            .enumerate()
            .for_each(|(task, block)| {
                let a_rows = Strided {
                    data: &a[task * TASK_ROWS * k..],
                    row_stride: k,
                    col_stride: 1,
                };
                product((block.len() / n, k, n), a_rows, (b_rows, n), (block, n), accumulate);
            });
    });
}

/// `c (+)= aᵀ·b` for `a` (k×m) and `b` (k×n) of many rows: each chunk of [`CHUNK`] rows gives a
/// partial m×n result, in parallel, and the partials are added to `c` in order.
fn long_depth(a: &[f32], b: &[f32], c: &mut [f32], (m, k, n): (usize, usize, usize), accumulate: bool) {
    let c = &mut c[..m * n];
    let chunks = k.div_ceil(CHUNK);
    with_scratch(CHUNKS_AT_ONCE.min(chunks) * m * n, |partials| {
        for (group, first_chunk) in (0..chunks).step_by(CHUNKS_AT_ONCE).enumerate() {
            let count = CHUNKS_AT_ONCE.min(chunks - first_chunk);
            let partials = &mut partials[..count * m * n];
            partials.par_chunks_mut(m * n).enumerate().for_each(|(i, partial)| {
                let first_row = (first_chunk + i) * CHUNK;
                let rows = CHUNK.min(k - first_row);
                let a_columns = Strided {
                    data: &a[first_row * m..],
                    row_stride: 1,
                    col_stride: m,
                };
                product((m, rows, n), a_columns, (&b[first_row * n..], n), (partial, n), false);
            });
            let mut partials = partials.chunks_exact(m * n);
            if group == 0 && !accumulate {
                c.copy_from_slice(partials.next().expect("at least one chunk"));
            }
            for partial in partials {
                c.iter_mut().zip(partial).for_each(|(c, p)| *c += p);
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::product_checks::{assert_matches_naive, assert_same_bits_on_every_path};

    /// The `imdb_transformer`'s products (projections 32 → 64 and 64 → 32, feed-forward 32 →
    /// 32: forward, input gradient, kernel gradient), and uneven ones: rows not a whole number
    /// of tasks, depth not a whole number of chunks, more chunks than are summed at once.
    fn cases() -> Vec<(Transpose, Transpose, (usize, usize, usize))> {
        let mut cases = Vec::new();
        for shape in [(6400, 32, 64), (6400, 64, 32), (1031, 7, 48), (2000, 100, 32)] {
            cases.push((Transpose::No, Transpose::No, shape));
            cases.push((Transpose::No, Transpose::Yes, shape));
        }
        for shape in [(32, 6400, 64), (64, 6400, 32), (5, 1100, 16), (8, 64 * CHUNK + 77, 16)] {
            cases.push((Transpose::Yes, Transpose::No, shape));
        }
        cases
    }

    #[test]
    fn products_match_a_naive_product() {
        assert_matches_naive(try_skinny_product, &cases(), 1e-4);
    }

    /// AVX-512 and AVX2 on one or two threads give the same bits; the scalar path, which
    /// rounds each product before the add, agrees within rounding and gives the same bits on
    /// one thread as on two. Without AVX-512 the pool falls back to the widest path there is.
    #[test]
    fn every_path_and_thread_count_gives_the_same_bits() {
        assert_same_bits_on_every_path(try_skinny_product, &cases(), 1e-4);
    }

    #[test]
    fn other_shapes_are_left_to_gemm() {
        let (a, b) = (vec![1.0; 2048 * 300], vec![1.0; 300 * 2048]);
        let mut c = vec![7.0; 2048 * 128];
        let shapes = [
            // Short rows, a wide short operand, columns not a whole vector, `a` transposed
            // with few rows, and a long depth with a large result.
            (Transpose::No, Transpose::No, (512, 32, 64)),
            (Transpose::No, Transpose::No, (2048, 128, 64)),
            (Transpose::No, Transpose::Yes, (2048, 32, 40)),
            (Transpose::Yes, Transpose::No, (2048, 32, 64)),
            (Transpose::Yes, Transpose::No, (128, 2048, 64)),
        ];
        for (transpose_a, transpose_b, dims) in shapes {
            assert!(
                !try_skinny_product(&a, transpose_a, &b, transpose_b, &mut c, dims, false),
                "{dims:?}"
            );
        }
        assert!(c.iter().all(|&v| v == 7.0));
    }
}
