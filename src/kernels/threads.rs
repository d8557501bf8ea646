//! Where work runs: the thread pool the kernels split their loops over.

use std::cell::OnceCell;

thread_local! {
    /// The pool this thread leads as its worker 0, made by [`enter_pool`] (`None`: it could
    /// not be made). Dropped when the thread ends, which stops the pool's other workers.
    static OWN_POOL: OnceCell<Option<rayon::ThreadPool>> = const { OnceCell::new() };
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

/// The number of threads the kernels split work over.
pub fn threads() -> usize {
    rayon::current_num_threads()
}
