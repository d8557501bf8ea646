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
    use crate::kernels::simd::{SimdLevel, limit_simd_on_this_thread};

    /// `x (rows×cols)` stored transposed.
    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        (0..rows * cols).map(|i| x[(i % rows) * cols + i / rows]).collect()
    }

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

    /// Runs one case twice (the second time accumulating) on a pool of `threads` threads
    /// limited to `level`; returns the result and the operands' values as plain row-major
    /// matrices `a` (m×k) and `b` (k×n).
    fn run(
        (transpose_a, transpose_b, (m, k, n)): (Transpose, Transpose, (usize, usize, usize)),
        level: SimdLevel,
        threads: usize,
    ) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.3).collect();
        let stored_a = if transpose_a == Transpose::Yes {
            transpose(&a, m, k)
        } else {
            a.clone()
        };
        let stored_b = if transpose_b == Transpose::Yes {
            transpose(&b, k, n)
        } else {
            b.clone()
        };
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .start_handler(move |_| limit_simd_on_this_thread(Some(level)))
            .build()
            .unwrap();
        let mut c = vec![0.5; m * n];
        pool.install(|| {
            for accumulate in [false, true] {
                let taken = try_batch_product(
                    &stored_a,
                    transpose_a,
                    &stored_b,
                    transpose_b,
                    &mut c,
                    (m, k, n),
                    accumulate,
                );
                assert!(taken, "{m}x{k}x{n} {transpose_a:?} {transpose_b:?} not taken");
            }
        });
        (c, a, b)
    }

    #[test]
    fn backward_products_match_a_naive_product() {
        for case in cases() {
            let (m, k, n) = case.2;
            let (c, a, b) = run(case, SimdLevel::Avx512, 2);
            for i in 0..m {
                for j in 0..n {
                    let expected: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
                    let got = c[i * n + j] as f64;
                    assert!(
                        (got - 2.0 * expected).abs() < 1e-3 * (1.0 + expected.abs()),
                        "{case:?} ({i}, {j}): {got} against {}",
                        2.0 * expected
                    );
                }
            }
        }
    }

    /// AVX-512 and AVX2 on one or two threads give the same bits (each value is one chain of
    /// fused multiply-adds in order); the scalar path, which rounds the product before the add,
    /// agrees within rounding, and gives the same bits on one thread as on two. On a CPU without
    /// AVX-512 the pool falls back to the widest path it has, and the comparisons still hold.
    #[test]
    fn every_path_and_thread_count_gives_the_same_bits() {
        for case in cases() {
            let bits =
                |level, threads| -> Vec<u32> { run(case, level, threads).0.iter().map(|v| v.to_bits()).collect() };
            let reference = bits(SimdLevel::Avx512, 2);
            for (level, threads) in [(SimdLevel::Avx512, 1), (SimdLevel::Avx2, 2), (SimdLevel::Avx2, 1)] {
                assert!(
                    bits(level, threads) == reference,
                    "{case:?} on {level:?}, {threads} threads"
                );
            }
            let scalar = bits(SimdLevel::Scalar, 2);
            assert!(bits(SimdLevel::Scalar, 1) == scalar, "{case:?} on Scalar, 1 thread");
            for (&x, &y) in scalar.iter().zip(&reference) {
                let (x, y) = (f32::from_bits(x), f32::from_bits(y));
                assert!(
                    (x - y).abs() <= 1e-5 * (1.0 + y.abs()),
                    "{case:?}: scalar {x} against {y}"
                );
            }
        }
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
