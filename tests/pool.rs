//! Where `fit` and `predict` run (#20 item 2): a library user's thread, outside any thread pool,
//! becomes worker 0 of a pool of its own with the global pool's thread count, so each parallel
//! region is a `join` whose first half stays on that thread (as in the `strata` command) rather
//! than a job handed to the pool per step; a thread already in a pool stays in it.

use strata::Tensor;
use strata::io::config::load_model_spec;

/// The named mlp, built, and one input sample of its shape.
fn mlp_and_sample() -> (strata::model::Model, Tensor) {
    let mut model = load_model_spec("mlp").unwrap().model;
    model.build(&[28, 28]).unwrap();
    (model, Tensor::from_vec(vec![1, 28, 28], vec![0.5; 784]).unwrap())
}

#[test]
fn a_thread_outside_any_pool_predicts_as_worker_0_of_its_own_pool() {
    let global = rayon::current_num_threads();
    let (before, after, threads, first_half) = std::thread::spawn(|| {
        let before = rayon::current_thread_index();
        let (mut model, x) = mlp_and_sample();
        model.predict(&x, 1).unwrap();
        let (first_half, _) = rayon::join(rayon::current_thread_index, || ());
        (
            before,
            rayon::current_thread_index(),
            rayon::current_num_threads(),
            first_half,
        )
    })
    .join()
    .unwrap();
    assert_eq!(before, None, "a spawned thread starts outside every pool");
    assert_eq!(after, Some(0), "predict made the calling thread worker 0");
    assert_eq!(threads, global, "its pool has the global pool's thread count");
    assert_eq!(first_half, Some(0), "a join's first half runs on the calling thread");
}

#[test]
fn a_pool_worker_predicts_in_its_own_pool() {
    let pool = rayon::ThreadPoolBuilder::new().num_threads(3).build().unwrap();
    let threads = pool.install(|| {
        let (mut model, x) = mlp_and_sample();
        model.predict(&x, 1).unwrap();
        rayon::current_num_threads()
    });
    assert_eq!(threads, 3);
}
