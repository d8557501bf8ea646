//! The two backward products of a Dense layer trained on a small batch, without packing: the
//! input gradient `dy·Wᵀ` and the kernel gradient `xᵀ·dy`, where the batch (32) is one of the
//! three dimensions and the kernel is large (cifar10_cnn's 2304 × 512, 4.7 MB).
//!
//! # Why not gemm-f32
//!
//! gemm-f32 packs its operands into blocks on every call. With 32 rows there is little reuse
//! to pay for packing the 4.7 MB kernel: the two products ran at about 140 GFLOP/s on two
//! threads, against gemm's 442 on large squares. Here the kernel is streamed once, straight
//! from memory, into the register tiles of [`small_gemm`](super::small_gemm::small_gemm), each tile summing a few rows of the
//! small operand against a few vectors of the large one (figures in docs/PERFORMANCE.md,
//! "cifar10_cnn step"). The forward product `x·W` gained nothing this way (it reads the kernel
//! in 256-byte pieces of each row, one block of columns at a time, and stays bound by memory
//! like gemm's depth split, see `super::matmul`), so it stays with gemm.
//!
//! Every output value is one multiply-add chain over the inner dimension in order, whatever
//! the vector width, the tiling or the thread count, and is added to the destination after it
//! is complete: AVX-512, AVX2 and the scalar path give the same bits, on any number of threads.

use super::scratch::with_scratch;
use super::small_gemm::{Strided, small_gemm_dispatched as product};
use super::transpose::Transpose;
use rayon::prelude::*;

/// The largest batch this path takes: beyond it gemm's packing pays for itself.
const MAX_BATCH: usize = 64;
/// The smallest size of the large dimensions: below it the product is small enough for gemm.
const MIN_LARGE: usize = 256;
/// The vector width every shape here must be a multiple of: AVX-512's, which the other paths
/// divide.
const WIDTH: usize = 16;
/// Rows of the result per task in the products split by rows (a multiple of `small_gemm`'s
/// six-row tiles): a few dozen tasks per product, enough to balance two to eight threads.
const TASK_ROWS: usize = 48;

/// `c (m×n) = a·b` or `c += a·b`, as `super::matmul` describes, when the shape is one of a
/// small batch's Dense backward products; returns `false` (and leaves `c` alone) for any other.
#[allow(clippy::too_many_arguments)]
pub(super) fn try_batch_product(
    a: &[f32],
    transpose_a: Transpose,
    b: &[f32],
    transpose_b: Transpose,
    c: &mut [f32],
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) -> bool {
    let small_batch = |size: usize| size <= MAX_BATCH && size.is_multiple_of(WIDTH);
    match (transpose_a, transpose_b) {
        // The input gradient: the batch's output gradient times the kernel transposed.
        (_, Transpose::Yes) if small_batch(m) && k >= MIN_LARGE / 2 && n >= MIN_LARGE => {
            input_grad(a, transpose_a, b, c, (m, k, n), accumulate)
        }
        // The kernel gradient: the inputs transposed times the output gradient.
        (Transpose::Yes, Transpose::No) if k <= MAX_BATCH && m >= MIN_LARGE && n.is_multiple_of(WIDTH) => {
            kernel_grad(a, b, c, (m, k, n), accumulate)
        }
        _ => return false,
    }
    true
}

/// `c (+)= a·bᵀ` (`b` stored n×k) computed as `cᵀ = b·aᵀ`, split by rows of `b`: each row of
/// the large `b` is read once, broadcast against `aᵀ`'s contiguous rows, and the result is
/// transposed into `c`.
fn input_grad(
    a: &[f32],
    transpose_a: Transpose,
    b: &[f32],
    c: &mut [f32],
    (m, k, n): (usize, usize, usize),
    accumulate: bool,
) {
    with_scratch(k * m + n * m, |scratch| {
        let (transposed_a, result) = scratch.split_at_mut(k * m);
        // `aᵀ` (k×m) row-major: `a` as stored when it is already transposed.
        let a_rows: &[f32] = match transpose_a {
            Transpose::Yes => &a[..k * m],
            Transpose::No => {
                for (row, values) in a[..m * k].chunks_exact(k).enumerate() {
                    for (p, &value) in values.iter().enumerate() {
                        transposed_a[p * m + row] = value;
                    }
                }
                transposed_a
            }
        };
        result
            .par_chunks_mut(TASK_ROWS * m)
            .enumerate()
            .for_each(|(task, block)| {
                let first = task * TASK_ROWS;
                let b_rows = Strided {
                    data: &b[first * k..],
                    row_stride: k,
                    col_stride: 1,
                };
                product((block.len() / m, k, m), b_rows, (a_rows, m), (block, m), false);
            });
        let result = &*result;
        c[..m * n].par_chunks_mut(n).enumerate().for_each(|(row, out)| {
            let column = result[row..].iter().step_by(m);
            if accumulate {
                out.iter_mut().zip(column).for_each(|(c, v)| *c += v);
            } else {
                out.iter_mut().zip(column).for_each(|(c, v)| *c = *v);
            }
        });
    });
}

/// `c (+)= aᵀ·b` (`a` stored k×m, `k` the batch) split by rows of `c`: each task reads `b`
/// (k×n, small) from its cache and broadcasts the values of its columns of `a`.
fn kernel_grad(a: &[f32], b: &[f32], c: &mut [f32], (m, k, n): (usize, usize, usize), accumulate: bool) {
    c[..m * n]
        .par_chunks_mut(TASK_ROWS * n)
        .enumerate()
        .for_each(|(task, block)| {
            let first = task * TASK_ROWS;
            let a_columns = Strided {
                data: &a[first..],
                row_stride: 1,
                col_stride: m,
            };
            product((block.len() / n, k, n), a_columns, (b, n), (block, n), accumulate);
        });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::product_checks::{assert_matches_naive, assert_same_bits_on_every_path};

    /// The shapes (m, k, n) and transposes of both products, each with `a` in both layouts
    /// where the product takes both: the cifar10_cnn's, smaller ones and uneven row counts.
    fn cases() -> Vec<(Transpose, Transpose, (usize, usize, usize))> {
        let mut cases = Vec::new();
        for shape in [(32, 512, 2304), (16, 130, 300), (48, 200, 257)] {
            cases.push((Transpose::No, Transpose::Yes, shape));
            cases.push((Transpose::Yes, Transpose::Yes, shape));
        }
        for shape in [(2304, 32, 512), (300, 17, 48), (257, 64, 16)] {
            cases.push((Transpose::Yes, Transpose::No, shape));
        }
        cases
    }

    #[test]
    fn backward_products_match_a_naive_product() {
        assert_matches_naive(try_batch_product, &cases(), 1e-3);
    }

    /// AVX-512 and AVX2 on one or two threads give the same bits (each value is one chain of
    /// fused multiply-adds in order); the scalar path, which rounds the product before the add,
    /// agrees within rounding, and gives the same bits on one thread as on two. On a CPU without
    /// AVX-512 the pool falls back to the widest path it has, and the comparisons still hold.
    #[test]
    fn every_path_and_thread_count_gives_the_same_bits() {
        assert_same_bits_on_every_path(try_batch_product, &cases(), 1e-5);
    }

    #[test]
    fn other_shapes_are_left_to_gemm() {
        let (a, b) = (vec![1.0; 100 * 300], vec![1.0; 300 * 500]);
        let mut c = vec![7.0; 100 * 500];
        // A batch of 100 rows, one of 24 (not a whole vector), and the forward product.
        let shapes = [
            (Transpose::No, Transpose::Yes, (100, 300, 500)),
            (Transpose::No, Transpose::Yes, (24, 300, 500)),
            (Transpose::No, Transpose::No, (32, 300, 480)),
            (Transpose::Yes, Transpose::No, (300, 100, 480)),
        ];
        for (transpose_a, transpose_b, dims) in shapes {
            assert!(!try_batch_product(
                &a,
                transpose_a,
                &b,
                transpose_b,
                &mut c,
                dims,
                false
            ));
        }
        assert!(c.iter().all(|&v| v == 7.0));
    }
}
