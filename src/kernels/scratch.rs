//! Per-thread working buffers for kernels that need memory of their own inside a parallel loop.

use std::cell::RefCell;

thread_local! {
    /// Each thread's buffer, grown to the largest request it has served and then reused, so
    /// training steps after the first do not allocate.
    static BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on this thread's buffer, at least `len` long (contents unspecified).
///
/// The buffer is taken out of the thread-local slot while `work` runs and put back after, so
/// a nested call on the same thread (`work` calling `with_scratch`, or a job stolen by this
/// thread while `work` waits in a `rayon::join`) gets a buffer of its own instead of a
/// conflicting borrow.
pub(crate) fn with_scratch<R>(len: usize, work: impl FnOnce(&mut [f32]) -> R) -> R {
    let mut buffer = BUFFER.with(RefCell::take);
    if buffer.len() < len {
        buffer.resize(len, 0.0);
    }
    let result = work(&mut buffer[..len]);
    BUFFER.with(|slot| {
        let mut slot = slot.borrow_mut();
        // Keep the larger of the two when a nested call left one behind.
        if slot.len() < buffer.len() {
            *slot = buffer;
        }
    });
    result
}
