//! Checks shared by the tests of the product kernels that `matmul` hands shapes to
//! (`batch_products`, `skinny_products`): each against a naive product in f64, and every
//! vector path and thread count against each other.

use super::simd::SimdLevel;
use super::transpose::Transpose;

/// A kernel's entry: `c (+)= a·b` for `(m, k, n)` if it takes the shape, else `false`.
pub(crate) type TryProduct = fn(&[f32], Transpose, &[f32], Transpose, &mut [f32], (usize, usize, usize), bool) -> bool;

/// The transposes of `a` and `b` and the shape `(m, k, n)`.
pub(crate) type Case = (Transpose, Transpose, (usize, usize, usize));

/// `x (rows×cols)` stored transposed.
fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    (0..rows * cols).map(|i| x[(i % rows) * cols + i / rows]).collect()
}

/// Runs one case twice (the second time accumulating) on a pool of `threads` threads limited
/// to `level`; returns the result and the operands as plain row-major matrices `a` (m×k) and
/// `b` (k×n).
fn run(product: TryProduct, case: Case, level: SimdLevel, threads: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
    let (transpose_a, transpose_b, (m, k, n)) = case;
    let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
    let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.3).collect();
    let stored_a = match transpose_a {
        Transpose::Yes => transpose(&a, m, k),
        Transpose::No => a.clone(),
    };
    let stored_b = match transpose_b {
        Transpose::Yes => transpose(&b, k, n),
        Transpose::No => b.clone(),
    };
    let pool = crate::kernels::simd::limited_pool(threads, level);
    let mut c = vec![0.5; m * n];
    pool.install(|| {
        for accumulate in [false, true] {
            let taken = product(
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

/// Each case's result (`0.5` overwritten by `a·b`, then `a·b` added to it) is twice
/// the naive product, within `tolerance` relative to `1 + |value|`.
pub(crate) fn assert_matches_naive(product: TryProduct, cases: &[Case], tolerance: f64) {
    for &case in cases {
        let (m, k, n) = case.2;
        let (c, a, b) = run(product, case, SimdLevel::Avx512, 2);
        for i in 0..m {
            for j in 0..n {
                let expected: f64 = (0..k).map(|p| a[i * k + p] as f64 * b[p * n + j] as f64).sum();
                let got = c[i * n + j] as f64;
                assert!(
                    (got - 2.0 * expected).abs() < tolerance * (1.0 + expected.abs()),
                    "{case:?} ({i}, {j}): {got} against {}",
                    2.0 * expected
                );
            }
        }
    }
}

/// AVX-512 and AVX2 on one or two threads give the same bits; the scalar path, which rounds
/// each product before the add, agrees within `scalar_tolerance` and gives the same bits on one
/// thread as on two. Without AVX-512 the pool falls back to the widest path there is.
pub(crate) fn assert_same_bits_on_every_path(product: TryProduct, cases: &[Case], scalar_tolerance: f32) {
    for &case in cases {
        let bits = |level, threads| -> Vec<u32> {
            run(product, case, level, threads)
                .0
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
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
                (x - y).abs() <= scalar_tolerance * (1.0 + y.abs()),
                "{case:?}: scalar {x} against {y}"
            );
        }
    }
}
