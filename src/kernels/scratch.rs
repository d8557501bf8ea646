//! Per-thread working buffers for kernels that need memory of their own inside a parallel loop.

use std::cell::RefCell;

thread_local! {
    /// Each thread's buffer, grown to the largest request it has served and then reused, so
    /// training steps after the first do not allocate.
    static BUFFER: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on this thread's buffer, at least `len` long (contents unspecified). `work`
/// must not call `with_scratch` itself.
pub(crate) fn with_scratch<R>(len: usize, work: impl FnOnce(&mut [f32]) -> R) -> R {
    BUFFER.with(|cell| {
        let mut buffer = cell.borrow_mut();
        if buffer.len() < len {
            buffer.resize(len, 0.0);
        }
        work(&mut buffer[..len])
    })
}
