//! strata's errors and Rust panics as Python exceptions: files → `OSError`, everything else a
//! caller did (shapes, arguments, names) → `ValueError`, a panic → `RuntimeError`.

use pyo3::PyErr;
use pyo3::exceptions::{PyOSError, PyRuntimeError, PyValueError};
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::{Mutex, MutexGuard};

/// A strata error as the Python exception Keras would raise for it, with strata's message.
pub fn to_python(error: strata::Error) -> PyErr {
    let message = error.to_string();
    match error {
        strata::Error::File { .. } | strata::Error::Io { .. } => PyOSError::new_err(message),
        _ => PyValueError::new_err(message),
    }
}

/// Runs `work`, turning a panic into a `RuntimeError` naming `what`: a panic must not unwind
/// across the FFI boundary, and PyO3's own `PanicException` derives from `BaseException`,
/// which `except Exception` does not catch.
pub fn guarded<T>(what: &str, work: impl FnOnce() -> pyo3::PyResult<T>) -> pyo3::PyResult<T> {
    match catch_unwind(AssertUnwindSafe(work)) {
        Ok(result) => result,
        Err(payload) => {
            let reason = payload
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| payload.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "unknown cause".to_string());
            Err(PyRuntimeError::new_err(format!(
                "strata failed internally in {what} (a bug, please report it): {reason}"
            )))
        }
    }
}

/// Locks `mutex`, also after a panic poisoned it: what it guards (a model, an exception) is
/// still whole, since every panic is caught before it could leave it half-changed in a way a
/// later call would misread.
pub fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}
