//! The `imdb_transformer` trained a few steps on one thread and on two, and on the AVX-512
//! and AVX2 paths: the weights must come out bit for bit the same. Every kernel of its step
//! (embedding, attention, layer normalization, products, dropout, optimizer) splits work at
//! points that do not depend on the thread count and sums in the same order on every vector
//! width.

use std::collections::HashMap;
use strata::Tensor;
use strata::io::config::load_model_spec;
use strata::kernels::{SimdLevel, limit_simd_on_this_thread};
use strata::model::FitOptions;
use strata::rng::Rng;

/// The named model after three training steps on fixed random reviews.
fn short_fit() -> HashMap<String, Tensor> {
    let spec = load_model_spec("imdb_transformer").unwrap();
    let mut model = spec.model;
    model.seed(7);
    model.compile(spec.optimizer, spec.loss, &["accuracy"]).unwrap();
    let mut rng = Rng::new(3);
    let x = Tensor::from_vec(vec![96, 200], (0..96 * 200).map(|_| rng.below(20_000) as f32).collect()).unwrap();
    let y = Tensor::from_vec(vec![96], (0..96).map(|i| (i % 2) as f32).collect()).unwrap();
    model
        .fit(&x, &y, FitOptions::default().epochs(1).batch_size(32).verbose(0))
        .unwrap();
    model.weights()
}

fn on(level: SimdLevel, threads: usize) -> HashMap<String, Tensor> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| limit_simd_on_this_thread(Some(level)))
        .build()
        .unwrap();
    pool.install(|| {
        limit_simd_on_this_thread(Some(level));
        short_fit()
    })
}

#[test]
fn threads_and_vector_widths_train_the_transformer_to_the_same_bits() {
    let reference = on(SimdLevel::Avx512, 2);
    for (level, threads) in [(SimdLevel::Avx512, 1), (SimdLevel::Avx2, 2)] {
        let other = on(level, threads);
        for (name, weights) in &reference {
            let same = weights
                .data()
                .iter()
                .zip(other[name].data())
                .all(|(a, b)| a.to_bits() == b.to_bits());
            assert!(same, "{name} differs on {level:?} with {threads} threads");
        }
    }
}
