//! The product of one row and a matrix (a single-sample `predict` of a Dense layer) takes its
//! own loop in `kernels::matmul`: it matches a naive product, with and without accumulation,
//! for widths with and without a partial vector, and gives the same bits on AVX-512 and AVX2
//! and on one and two threads (a large matrix's rows are summed in two halves, one per thread).

use strata::kernels::{SimdLevel, Transpose, limit_simd_on_this_thread, matmul, simd_level};

/// `c + a·b` for one row `a` of `k` values through `matmul`, on this thread's vector width.
fn row_product(a: &[f32], b: &[f32], k: usize, n: usize) -> Vec<f32> {
    let mut c = vec![1.0; n];
    matmul(a, Transpose::No, b, Transpose::No, &mut c, 1, k, n, true);
    c
}

#[test]
fn one_row_times_a_matrix_matches_a_naive_product_on_every_width() {
    for &(k, n) in &[
        (1, 1),
        (3, 10),
        (784, 128),
        (5, 136),
        (7, 300),
        (9, 16),
        (300, 300),
        (513, 130),
    ] {
        let a: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let naive: Vec<f64> = (0..n)
            .map(|j| 1.0 + (0..k).map(|i| a[i] as f64 * b[i * n + j] as f64).sum::<f64>())
            .collect();
        let widest = row_product(&a, &b, k, n);
        for (got, want) in widest.iter().zip(&naive) {
            assert!(
                (*got as f64 - want).abs() <= 1e-4 * (1.0 + want.abs()),
                "k={k} n={n}: {got} vs {want}"
            );
        }
        if simd_level() == SimdLevel::Avx512 {
            limit_simd_on_this_thread(Some(SimdLevel::Avx2));
            let avx2 = row_product(&a, &b, k, n);
            limit_simd_on_this_thread(None);
            let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&widest), bits(&avx2), "k={k} n={n}: AVX-512 and AVX2 differ");
        }
    }
}

/// A matrix large enough for its rows to be summed in two halves (784×128, the mlp's kernel;
/// 300×300, which ends in a partial vector; 513×130, an odd number of rows) gives the same bits
/// on one and two threads.
#[test]
fn the_two_threads_split_changes_no_bit() {
    for &(k, n) in &[(784, 128), (300, 300), (513, 130)] {
        let a: Vec<f32> = (0..k).map(|i| (i as f32 * 0.37).sin()).collect();
        let b: Vec<f32> = (0..k * n).map(|i| (i as f32 * 0.11).cos()).collect();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| row_product(&a, &b, k, n))
        };
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&on(1)), bits(&on(2)), "k={k} n={n}");
    }
}
