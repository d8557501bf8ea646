//! Where work runs: the thread pool the kernels split their loops over.

/// Runs `work` on a thread of the pool (this one, if it already is one) and returns its result.
///
/// A training step runs this way so that each parallel region inside it is a cheap `join`
/// whose first half stays on the calling thread (and in its core's cache), rather than a job
/// handed to the pool while the caller waits outside it.
pub(crate) fn on_pool<R: Send>(work: impl FnOnce() -> R + Send) -> R {
    rayon::scope(|_| work())
}

/// Sets up the pool with `threads` threads (`None`: rayon's default, `RAYON_NUM_THREADS` or one
/// per core), with the calling thread as its worker 0, so a program's main thread runs its
/// training steps inside the pool without a hand-off per step. Does nothing if the pool is
/// already set up. For programs that own their main thread (the `strata` command): the calling
/// thread must outlive every use of the pool.
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
