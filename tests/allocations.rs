//! No heap allocation per training step, evaluation batch or prediction batch once the model has
//! warmed up: the tape, the optimizer's slots and the batch buffers are reused.
//!
//! A counting global allocator sees every allocation of the process, rayon's worker threads
//! included. `fit`, `evaluate` and `predict` allocate a little per call (the shuffling order,
//! the history, the prepared targets, the prediction's output), so each runs over K and over 2K
//! batches: equal counts mean the extra K batches allocated nothing.
//!
//! Two kinds of allocation are strata's to avoid but not its own, and are kept apart:
//! - inside matrix products: `gemm` 0.19 allocates its packing buffer on every call (it takes no
//!   reusable memory); counted separately while `strata::kernels::products_in_flight()` is
//!   non-zero, and reported, not asserted;
//! - rayon's global queue allocates a block per 63 jobs handed to the pool from a thread outside
//!   it; `fit`, `evaluate` and `predict` make the calling thread a pool worker first
//!   (`enter_pool`), so the models run here from the test's own thread, as a library user's
//!   program runs them, and hand nothing over.
//!
//! A single-sample `predict` allocates nothing but its output (and, after a pause, the job that
//! keeps the pool's other threads awake between calls; `fit` starts that job too, at most once
//! per 5 ms of training, which this test turns off while it counts).
//!
//! The file holds a single test on purpose: the counters are global, and a second test running
//! on another thread of the harness would add its allocations to this one's.

use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use strata::Tensor;
use strata::data::to_categorical;
use strata::io::config::load_model_spec;
use strata::model::{FitOptions, Model};
use strata::rng::Rng;

/// The system allocator, counting calls that hand out memory (alloc, alloc_zeroed, realloc).
struct CountingAllocator;

/// Allocations made outside matrix products.
static OUTSIDE_PRODUCTS: AtomicUsize = AtomicUsize::new(0);
/// Allocations made while a matrix product runs (gemm's own).
static IN_PRODUCTS: AtomicUsize = AtomicUsize::new(0);

fn count_allocation() {
    let counter = if strata::kernels::products_in_flight() > 0 {
        &IN_PRODUCTS
    } else {
        &OUTSIDE_PRODUCTS
    };
    counter.fetch_add(1, Ordering::Relaxed);
}

// SAFETY: every call is forwarded unchanged to the system allocator; counting has no effect on
// the memory handed out.
unsafe impl GlobalAlloc for CountingAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc(layout) }
    }

    unsafe fn alloc_zeroed(&self, layout: Layout) -> *mut u8 {
        count_allocation();
        unsafe { System.alloc_zeroed(layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count_allocation();
        unsafe { System.realloc(ptr, layout, new_size) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }
}

#[global_allocator]
static ALLOCATOR: CountingAllocator = CountingAllocator;

/// Allocations (outside products, inside products) made by any thread while `run` runs.
fn allocations_during(run: impl FnOnce()) -> [usize; 2] {
    let before = [&OUTSIDE_PRODUCTS, &IN_PRODUCTS].map(|c| c.load(Ordering::SeqCst));
    run();
    let after = [&OUTSIDE_PRODUCTS, &IN_PRODUCTS].map(|c| c.load(Ordering::SeqCst));
    [after[0] - before[0], after[1] - before[1]]
}

/// A compiled named model with random data: `samples` inputs of its input shape, targets of the
/// kind its loss takes, and its batch size.
fn model_with_data(name: &str, samples: usize) -> (Model, Tensor, Tensor, usize) {
    let spec = load_model_spec(name).unwrap();
    let mut model = spec.model;
    model.compile(spec.optimizer, spec.loss, &["accuracy"]).unwrap();
    let input = model.layers()[0].declared_input_shape().unwrap().to_vec();
    let classes: usize = model.output_shape().unwrap().iter().product();
    let mut rng = Rng::new(7);
    let mut shape = vec![samples];
    shape.extend(&input);
    let values = (0..samples * input.iter().product::<usize>()).map(|_| rng.uniform(0.0, 1.0));
    let x = Tensor::from_vec(shape, values.collect()).unwrap();
    let labels = (0..samples).map(|_| rng.below(classes) as f32).collect();
    let labels = Tensor::from_vec(vec![samples], labels).unwrap();
    let y = if spec.loss.sparse_targets() {
        labels
    } else {
        to_categorical(&labels, classes).unwrap()
    };
    (model, x, y, spec.batch_size)
}

/// Allocations of one call each of `fit`, `evaluate` and `predict`, as [outside, inside] products.
#[derive(Debug, PartialEq)]
struct Counts {
    fit: [usize; 2],
    evaluate: [usize; 2],
    predict: [usize; 2],
}

impl Counts {
    fn outside_products(&self) -> [usize; 3] {
        [self.fit[0], self.evaluate[0], self.predict[0]]
    }

    fn in_products(&self) -> [usize; 3] {
        [self.fit[1], self.evaluate[1], self.predict[1]]
    }
}

fn counts(model: &mut Model, x: &Tensor, y: &Tensor, batch_size: usize, batches: usize) -> Counts {
    let (x, y) = (
        x.slice_rows(0, batches * batch_size),
        y.slice_rows(0, batches * batch_size),
    );
    // Verbose 0: the progress bar (verbose 1) formats its text at most every 100 ms.
    let options = FitOptions::default().batch_size(batch_size).verbose(0);
    Counts {
        fit: allocations_during(|| {
            model.fit(&x, &y, options).unwrap();
        }),
        evaluate: allocations_during(|| {
            model.evaluate(&x, &y, batch_size).unwrap();
        }),
        predict: allocations_during(|| {
            model.predict(&x, batch_size).unwrap();
        }),
    }
}

#[test]
fn training_evaluation_and_prediction_steps_do_not_allocate_after_warm_up() {
    const K: usize = 3;
    /// Measurements of K and 2K batches taken at most this many times: a per-batch allocation
    /// shows in every one, while a one-off growth that timing placed after the warm-up (a
    /// rayon worker's job queue filling up while the other core was busy elsewhere) does not
    /// repeat. Seen once with two test suites running at once.
    const ATTEMPTS: usize = 3;
    for name in ["mlp", "cnn"] {
        // `predict` starts a job that keeps the pool's other threads awake (one allocation)
        // only when the last one has ended, which timing decides: off while counting.
        strata::kernels::set_stay_awake(Duration::ZERO);
        let (mut model, x, y, batch_size) = model_with_data(name, 2 * K * 64);
        let (over_k, over_2k) = {
            // Warm-up: the first steps size the tape's buffers, the optimizer's slots, the pool's
            // threads and their queues.
            counts(&mut model, &x, &y, batch_size, 2);
            let mut measured = (
                counts(&mut model, &x, &y, batch_size, K),
                counts(&mut model, &x, &y, batch_size, 2 * K),
            );
            for _ in 1..ATTEMPTS {
                if measured.0.outside_products() == measured.1.outside_products() {
                    break;
                }
                measured = (
                    counts(&mut model, &x, &y, batch_size, K),
                    counts(&mut model, &x, &y, batch_size, 2 * K),
                );
            }
            measured
        };
        assert_eq!(
            over_k.outside_products(),
            over_2k.outside_products(),
            "{name}: allocations outside products (fit, evaluate, predict) over {K} batches \
             and over {} batches differ in {ATTEMPTS} measurements: {over_k:?} vs {over_2k:?}",
            2 * K
        );
        let in_products: Vec<f64> = (0..3)
            .map(|i| (over_2k.in_products()[i] - over_k.in_products()[i]) as f64 / K as f64)
            .collect();
        eprintln!("{name}: allocations per batch inside gemm (fit, evaluate, predict): {in_products:?}");
        // A single-sample `predict` (a service answering one request) allocates only the
        // tensor it returns: its shape and its values; and, with the other threads kept awake,
        // the one job that does so when the last one ended (a pause over a millisecond: this
        // thread may have been preempted).
        let one = x.slice_rows(0, 1);
        model.predict(&one, 1).unwrap(); // the first sizes the buffers for one sample
        // As above, a one-off growth that timing places in a measured call (seen once, in a
        // fresh clone's CI run: 3 allocations) does not repeat; an allocation of the call's
        // own shows in every attempt.
        let mut single = [0, 0];
        for _ in 0..ATTEMPTS {
            single = allocations_during(|| {
                model.predict(&one, 1).unwrap();
            });
            if single == [2, 0] {
                break;
            }
        }
        assert_eq!(
            single,
            [2, 0],
            "{name}: one single-sample predict made {single:?} allocations (outside, inside \
             products), not just its output's two"
        );
        strata::kernels::set_stay_awake(Duration::from_millis(1));
        model.predict(&one, 1).unwrap();
        let single = allocations_during(|| {
            model.predict(&one, 1).unwrap();
        });
        assert!(
            single[0] + single[1] <= 3,
            "{name}: one single-sample predict made {single:?} allocations (outside, inside \
             products), not just its output's two and a spinning job"
        );
    }
}
