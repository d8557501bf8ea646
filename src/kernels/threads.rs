//! Where work runs: the thread pool the kernels split their loops over.

use std::cell::{Cell, OnceCell};
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How long, by default, the pool's other threads keep looking for work after a `predict` call
/// returns, instead of going to sleep (see [`set_stay_awake`]). Waking a sleeping thread costs tens of microseconds on a virtual
/// machine (more than a whole single-sample forward pass of a small model), so a service
/// answering requests back to back, or a loop of single-sample calls, would pay it on every
/// call. ONNX Runtime and OpenMP runtimes spin likewise; this bounds the spin to a millisecond
/// after the last call, so an idle program gives its cores back almost at once.
const STAY_AWAKE: Duration = Duration::from_millis(1);
/// The process's setting of [`STAY_AWAKE`], in nanoseconds.
static STAY_AWAKE_NANOS: AtomicU64 = AtomicU64::new(STAY_AWAKE.as_nanos() as u64);
/// The longest one spinning job runs however often calls move its deadline: a thread that
/// picked the job up while waiting for work of its own (which it does not check while it
/// spins) is held up no longer than this; the next call starts another job.
const LONGEST_SPIN: Duration = Duration::from_millis(5);

/// The other threads a caller keeps awake: until when, and how many are spinning or asked to.
#[derive(Default)]
struct Wakefulness {
    deadline_nanos: AtomicU64,
    spinning: AtomicUsize,
}

thread_local! {
    /// The pool this thread leads as its worker 0, made by [`enter_pool`] (`None`: it could
    /// not be made). Dropped when the thread ends, which stops the pool's other workers.
    static OWN_POOL: OnceCell<Option<rayon::ThreadPool>> = const { OnceCell::new() };
    /// What this thread, as a caller of `predict`, asked of its pool's other threads.
    static WAKEFULNESS: Arc<Wakefulness> = Arc::default();
    /// Whether this thread is running a [`stay_awake`] loop (a nested one returns at once).
    static STAYING_AWAKE: Cell<bool> = const { Cell::new(false) };
}

/// Makes the calling thread a worker of a thread pool, if it is not one yet, so the parallel
/// regions of what it runs next are cheap `join`s whose first half stays on this thread (and in
/// its core's cache) rather than jobs handed to the pool while this thread waits outside it.
///
/// `fit`, `evaluate` and `predict` call this first. A thread already in a pool (a rayon worker,
/// code inside `ThreadPool::install`, or the `strata` command's main thread, see [`join_pool`])
/// keeps it. Any other thread gets a pool of its own with as many threads as the global pool
/// (`RAYON_NUM_THREADS`, one per core, or what the program built), itself as worker 0: a
/// library user's main thread then trains as fast as the command. The thread stays that pool's
/// worker, so its later rayon calls run there too, with the same thread count; the pool's other
/// threads end with it. Results do not change: the kernels split by the thread count only.
pub(crate) fn enter_pool() {
    if rayon::current_thread_index().is_some() {
        return;
    }
    OWN_POOL.with(|pool| {
        pool.get_or_init(|| {
            let threads = rayon::current_num_threads();
            // If the pool cannot be made (no threads to spawn), each parallel region is handed
            // to the global pool instead: slower, same results.
            rayon::ThreadPoolBuilder::new()
                .num_threads(threads)
                .thread_name(|index| format!("strata-worker-{index}"))
                .use_current_thread()
                .build()
                .ok()
        });
    });
}

/// Sets up the pool with `threads` threads (`None`: rayon's default, `RAYON_NUM_THREADS` or one
/// per core), with the calling thread as its worker 0, so a program's main thread runs its
/// training steps inside the pool without a hand-off per step. Does nothing if the pool is
/// already set up. For programs that own their main thread (the `strata` command): the calling
/// thread must outlive every use of the pool. (Without it, `fit` and `predict` give the calling
/// thread a pool of its own, see `enter_pool`; this sets the thread count and shares the one
/// pool with every thread of the program.)
pub fn join_pool(threads: Option<usize>) {
    let _ = rayon::ThreadPoolBuilder::new()
        .num_threads(threads.unwrap_or(0))
        .use_current_thread()
        .build_global();
}

/// Sets how long the thread pool's other threads keep looking for work after a `predict` call
/// returns or a training step starts (default 1 ms, at most 5 ms), as ONNX Runtime's
/// `allow_spinning` does: a loop of single-sample calls, or a training step's many small
/// parallel parts, then find them awake instead of paying to wake each. Zero turns it off, for
/// a program that shares its cores and prefers them idle at once; what `predict` and `fit`
/// compute does not change.
///
/// ```
/// strata::kernels::set_stay_awake(std::time::Duration::ZERO);
/// ```
pub fn set_stay_awake(duration: Duration) {
    let nanos = duration.min(LONGEST_SPIN).as_nanos() as u64;
    STAY_AWAKE_NANOS.store(nanos, Ordering::Relaxed);
}

/// Keeps the calling thread's pool's other threads looking for work for the time
/// [`set_stay_awake`] sets, so the next call's parallel regions start at once instead of waking
/// them (`fit` calls this before each step, `evaluate` and `predict` before each batch and
/// `predict` again before it returns, the inference pass before each layer and the backward
/// pass before each node, so that they do not fall asleep in a long pass). Each other thread
/// runs one spinning job at
/// most; calls made while they spin only move the deadline. Does nothing outside a pool, with
/// one thread, with the time set to zero, or on a thread other than the pool's worker 0.
pub(crate) fn keep_others_awake() {
    let threads = rayon::current_num_threads();
    // Worker 0: the thread that leads its pool (see `enter_pool`, `join_pool`); the other
    // workers' spare time is the pool's to use, not theirs to keep.
    let stay_awake_nanos = STAY_AWAKE_NANOS.load(Ordering::Relaxed);
    if threads < 2 || stay_awake_nanos == 0 || rayon::current_thread_index() != Some(0) {
        return;
    }
    WAKEFULNESS.with(|wakefulness| {
        let deadline = nanos_since_start().saturating_add(stay_awake_nanos);
        wakefulness.deadline_nanos.store(deadline, Ordering::Relaxed);
        let caller = std::thread::current().id();
        while wakefulness.spinning.fetch_add(1, Ordering::AcqRel) < threads - 1 {
            let wakefulness = Arc::clone(wakefulness);
            rayon::spawn(move || stay_awake(&wakefulness, caller));
        }
        // The last increment found all threads asked already.
        wakefulness.spinning.fetch_sub(1, Ordering::AcqRel);
    });
}

/// One pool thread's spin: runs whatever parallel work the pool has until the deadline passes
/// with none, or [`LONGEST_SPIN`] has passed. The caller itself (if it picks this job up while
/// waiting) and a thread already spinning (if its own spin picks up another one) return at once.
fn stay_awake(wakefulness: &Wakefulness, caller: std::thread::ThreadId) {
    let nested = STAYING_AWAKE.with(Cell::get);
    if !nested && std::thread::current().id() != caller {
        STAYING_AWAKE.with(|flag| flag.set(true));
        let last = nanos_since_start() + LONGEST_SPIN.as_nanos() as u64;
        loop {
            if rayon::yield_now() == Some(rayon::Yield::Executed) {
                continue;
            }
            let now = nanos_since_start();
            if now > wakefulness.deadline_nanos.load(Ordering::Relaxed) || now > last {
                break;
            }
            std::hint::spin_loop();
        }
        STAYING_AWAKE.with(|flag| flag.set(false));
    }
    wakefulness.spinning.fetch_sub(1, Ordering::AcqRel);
}

/// A monotonic clock in nanoseconds, for deadlines kept in an atomic.
fn nanos_since_start() -> u64 {
    static START: OnceLock<Instant> = OnceLock::new();
    START.get_or_init(Instant::now).elapsed().as_nanos() as u64
}

/// How many blocks of at most `most` rows to cut `rows` into: a multiple of the thread count
/// where the rows allow, so that no thread is left a block to run alone at the end (ResNet50's
/// 784 rows at 28×28 made 17 blocks of 47 for 2 threads, now 18 of 44).
pub(crate) fn even_blocks(rows: usize, most: usize) -> usize {
    let blocks = rows.div_ceil(most.max(1));
    blocks.next_multiple_of(rayon::current_num_threads()).min(rows).max(1)
}

/// Output rows per parallel band of one image for a batch of `images` images with `rows`
/// output rows each: all of them when every thread has an image of its own, else few enough
/// that the batch's bands give every thread one (a single image still uses every thread).
/// Kernels that split this way compute each row the same way in any band.
pub(crate) fn row_band(images: usize, rows: usize) -> usize {
    let threads = rayon::current_num_threads();
    if images >= threads {
        return rows.max(1);
    }
    let bands = threads.div_ceil(images.max(1));
    rows.div_ceil(bands).max(1)
}

/// The number of threads the kernels split work over.
pub fn threads() -> usize {
    rayon::current_num_threads()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// After a call from the pool's worker 0, one job spins on the other thread and then stops:
    /// the count of spinning threads is 1, then back to zero; a pool of one thread, or a call
    /// from another worker, starts none.
    #[test]
    fn the_other_threads_stop_spinning_after_the_deadline() {
        let spinning_after_calls = |threads: usize| {
            std::thread::spawn(move || {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .use_current_thread()
                    .build()
                    .unwrap();
                pool.install(|| {
                    let called = Instant::now();
                    keep_others_awake();
                    keep_others_awake();
                    let wakefulness = WAKEFULNESS.with(Arc::clone);
                    let spinning = wakefulness.spinning.load(Ordering::Acquire);
                    (spinning, called.elapsed(), wakefulness)
                })
            })
            .join()
            .unwrap()
        };
        let (spinning, elapsed, wakefulness) = spinning_after_calls(2);
        // (Zero only where this thread was held up past the deadline before it looked.)
        assert!(
            spinning == 1 || elapsed > STAY_AWAKE,
            "{spinning} spinners after {elapsed:?}"
        );
        let started = Instant::now();
        while wakefulness.spinning.load(Ordering::Acquire) > 0 {
            assert!(started.elapsed() < Duration::from_secs(10), "still spinning after 10 s");
            std::thread::sleep(Duration::from_millis(1));
        }
        assert_eq!(spinning_after_calls(1).0, 0);
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let from_worker_1 = pool.broadcast(|context| {
            (context.index() == 1).then(|| {
                keep_others_awake();
                WAKEFULNESS.with(|w| w.spinning.load(Ordering::Acquire))
            })
        });
        assert_eq!(from_worker_1.into_iter().flatten().collect::<Vec<_>>(), [0]);
    }
}
