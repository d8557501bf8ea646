//! Time spent per operation kind, forward and backward, for finding where a step goes.
//!
//! Off unless the environment variable `STRATA_PROFILE` is set when the program starts; then
//! every recorded operation is timed and [`report`] (called at the end of `fit`) prints a table
//! to stderr. When off, the cost is one relaxed atomic load per operation.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 off, 2 on
/// (operation, is backward) → (total time, calls).
type Totals = BTreeMap<(&'static str, bool), (Duration, u64)>;
static TOTALS: Mutex<Totals> = Mutex::new(BTreeMap::new());

/// True when `STRATA_PROFILE` is set.
pub(crate) fn enabled() -> bool {
    match STATE.load(Ordering::Relaxed) {
        1 => false,
        2 => true,
        _ => {
            let on = std::env::var_os("STRATA_PROFILE").is_some();
            STATE.store(if on { 2 } else { 1 }, Ordering::Relaxed);
            on
        }
    }
}

/// Runs `work`, adding its duration to `op`'s forward or backward total when profiling.
#[inline]
pub(crate) fn time<R>(op: &'static str, backward: bool, work: impl FnOnce() -> R) -> R {
    if !enabled() {
        return work();
    }
    let started = Instant::now();
    let result = work();
    let elapsed = started.elapsed();
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let entry = totals.entry((op, backward)).or_default();
    entry.0 += elapsed;
    entry.1 += 1;
    result
}

/// Prints the accumulated times (largest first) to stderr and clears them.
pub fn report() {
    if !enabled() {
        return;
    }
    let mut totals = TOTALS.lock().unwrap_or_else(|e| e.into_inner());
    let mut rows: Vec<_> = totals.iter().map(|(k, v)| (*k, *v)).collect();
    rows.sort_by_key(|row| std::cmp::Reverse(row.1.0));
    let all: Duration = rows.iter().map(|r| r.1.0).sum();
    eprintln!("{:<24} {:>9} {:>10} {:>7}", "op", "pass", "seconds", "share");
    for ((op, backward), (duration, _count)) in rows {
        let share = 100.0 * duration.as_secs_f64() / all.as_secs_f64().max(1e-9);
        eprintln!(
            "{op:<24} {:>9} {:>10.3} {share:>6.1}%",
            if backward { "backward" } else { "forward" },
            duration.as_secs_f64()
        );
    }
    totals.clear();
}
