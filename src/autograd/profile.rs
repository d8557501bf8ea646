//! Time spent per operation kind, forward and backward, for finding where a step goes.
//!
//! Off unless the environment variable `STRATA_PROFILE` is set when the program starts; then
//! every recorded operation is timed and [`report`] (called at the end of `fit`) prints a table
//! to stderr. When off, the cost is one relaxed atomic load per operation.
//!
//! With `STRATA_PROFILE=nodes`, forward passes are also timed node by node (the node's index on
//! the tape and its output shape), and [`report`] prints each node's median and fastest time in
//! tape order: what a per-layer comparison with another engine's profile needs.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, Ordering};
use std::time::{Duration, Instant};

static STATE: AtomicU8 = AtomicU8::new(0); // 0 unknown, 1 off, 2 on, 3 on with nodes
/// (operation, is backward) → (total time, calls).
type Totals = BTreeMap<(&'static str, bool), (Duration, u64)>;
static TOTALS: Mutex<Totals> = Mutex::new(BTreeMap::new());
/// (node index, output shape) → (operation, the time of each call).
type NodeTotals = BTreeMap<(usize, Vec<usize>), (&'static str, Vec<Duration>)>;
static NODES: Mutex<NodeTotals> = Mutex::new(BTreeMap::new());

fn state() -> u8 {
    match STATE.load(Ordering::Relaxed) {
        0 => {
            let state = match std::env::var("STRATA_PROFILE") {
                Ok(value) if value == "nodes" => 3,
                Ok(_) => 2,
                Err(std::env::VarError::NotUnicode(_)) => 2,
                Err(std::env::VarError::NotPresent) => 1,
            };
            STATE.store(state, Ordering::Relaxed);
            state
        }
        state => state,
    }
}

/// True when `STRATA_PROFILE` is set.
pub(crate) fn enabled() -> bool {
    state() >= 2
}

/// Runs a forward node's `work`, timing it under `op` and, with `STRATA_PROFILE=nodes`, under
/// its tape `index` and output `shape` too.
#[inline]
pub(crate) fn time_node<R>(op: &'static str, index: usize, shape: &[usize], work: impl FnOnce() -> R) -> R {
    if state() < 3 {
        return time(op, false, work);
    }
    let started = Instant::now();
    let result = time(op, false, work);
    let elapsed = started.elapsed();
    let mut nodes = NODES.lock().unwrap_or_else(|e| e.into_inner());
    nodes
        .entry((index, shape.to_vec()))
        .or_insert((op, Vec::new()))
        .1
        .push(elapsed);
    result
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
    report_nodes();
}

/// Prints the per-node times of `STRATA_PROFILE=nodes` in tape order (the median and fastest
/// call of each, and their sums over the nodes) and clears them.
fn report_nodes() {
    let mut nodes = NODES.lock().unwrap_or_else(|e| e.into_inner());
    if nodes.is_empty() {
        return;
    }
    let micros = |d: Duration| d.as_secs_f64() * 1e6;
    let mut sums = (0.0, 0.0);
    eprintln!(
        "{:>5} {:<24} {:<22} {:>7} {:>10} {:>10}",
        "node", "op", "shape", "calls", "median µs", "min µs"
    );
    for ((index, shape), (op, times)) in nodes.iter_mut() {
        times.sort();
        let (median, fastest) = (micros(times[times.len() / 2]), micros(times[0]));
        sums = (sums.0 + median, sums.1 + fastest);
        let (shape, calls) = (format!("{shape:?}"), times.len());
        eprintln!("{index:>5} {op:<24} {shape:<22} {calls:>7} {median:>10.1} {fastest:>10.1}");
    }
    eprintln!(
        "{:>5} {:<24} {:<22} {:>7} {:>10.1} {:>10.1}",
        "", "all nodes", "", "", sums.0, sums.1
    );
    nodes.clear();
}
