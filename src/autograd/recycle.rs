//! Buffers passed on between the values of an inference pass: a value that nothing reads any
//! more gives its buffer to the next value computed, so a network's activations live in a few
//! buffers that stay in the cache, instead of one buffer per value, each last touched a whole
//! pass earlier (writing into such a buffer first fetches it from memory).
//!
//! When a value is last read is learned from a pass: the first pass under a key (the caller's
//! name for what decides the pass's operations: its input shapes, its plan, the weights)
//! records, for each value, the last time an operation or the layer code (through
//! `Graph::value`) read it; later passes under the same key release each value right after
//! that time. A pass under another key records again; a pass whose operations turn out to
//! differ from the recorded ones stops passing buffers on. Training passes never take part:
//! their backward pass reads every value again.

use super::op::Var;
use crate::tensor::Tensor;
use std::cell::Cell;

/// How many times the values it is given a free buffer may hold before a more recently
/// released one is passed over for a tighter fit (see `Recycling::best_fit`).
const MOST_ROOM: usize = 4;

/// What the current pass does with buffers.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
enum Mode {
    /// Nothing: each value keeps its own buffer (training, and passes that did not ask).
    #[default]
    Off,
    /// Learns when each value is last read.
    Record,
    /// Releases values after their last read and hands their buffers on.
    Apply,
}

/// The tape's buffer recycling state (see the module documentation).
#[derive(Debug, Default)]
pub(super) struct Recycling {
    mode: Mode,
    /// The key of the pass whose schedule `starts`/`released` hold.
    key: Option<u64>,
    /// The key the recording pass was started under.
    recording: Option<u64>,
    /// While recording, per value: the last time it was read, as the number of operations
    /// recorded before the read (a value never read holds its own position).
    last_read: Vec<Cell<u32>>,
    /// The recorded pass's output sizes, in values, per operation.
    sizes: Vec<usize>,
    /// Per operation position `k`: `released[starts[k]..starts[k + 1]]` are the values
    /// released just before operation `k` is recorded.
    starts: Vec<u32>,
    released: Vec<u32>,
    /// Buffers of released values, the most recently released last.
    free: Vec<Vec<f32>>,
}

impl Recycling {
    /// Starts a pass under `key`: it passes buffers on when the last pass under `key`
    /// recorded a schedule, and records one otherwise.
    pub(super) fn begin(&mut self, key: u64) {
        if self.key == Some(key) {
            self.mode = Mode::Apply;
        } else {
            self.mode = Mode::Record;
            self.recording = Some(key);
            self.last_read.clear();
            self.sizes.clear();
        }
    }

    /// Ends whatever the last pass did: the next pass keeps its buffers unless it asks.
    pub(super) fn stop(&mut self) {
        self.mode = Mode::Off;
    }

    /// Drops the free buffers and the schedule, before a training pass: it needs a buffer
    /// per value, and the memory is better spent there.
    pub(super) fn forget(&mut self) {
        self.free.clear();
        self.key = None;
    }

    /// The read times to update while recording, for [`super::buffers::Inputs`].
    pub(super) fn read_times(&self) -> Option<&[Cell<u32>]> {
        (self.mode == Mode::Record).then_some(&self.last_read[..])
    }

    /// Notes that value `var` is read when `now` operations have been recorded.
    pub(super) fn read(&self, var: Var, now: usize) {
        if let Some(times) = self.read_times() {
            note_read(times, var, now);
        }
    }

    /// Before operation `index` (with `len` output values) computes into `values[index]`:
    /// while recording, notes its size; while passing buffers on, releases the values last
    /// read before it and gives it the best-fitting free buffer, when `recyclable`.
    pub(super) fn before(&mut self, index: usize, len: usize, values: &mut [Tensor], recyclable: bool) {
        match self.mode {
            Mode::Off => {}
            Mode::Record => {
                if index != self.last_read.len() {
                    // Not recording from the pass's first operation: give up on this pass.
                    self.mode = Mode::Off;
                    self.recording = None;
                    return;
                }
                self.sizes.push(len);
                self.last_read.push(Cell::new(index as u32));
            }
            Mode::Apply => {
                if self.sizes.get(index) != Some(&len) {
                    // The operations differ from the recorded ones: record again next time.
                    self.mode = Mode::Off;
                    self.key = None;
                    return;
                }
                let (start, end) = (self.starts[index] as usize, self.starts[index + 1] as usize);
                for &var in &self.released[start..end] {
                    let buffer = values[var as usize].take_data();
                    if buffer.capacity() > 0 && self.free.len() < self.sizes.len() {
                        self.free.push(buffer);
                    }
                }
                if recyclable && let Some(at) = self.best_fit(len) {
                    let buffer = self.free.remove(at);
                    let own = values[index].replace_data(buffer);
                    // Untouched since the last pass: taken last. (The list holds no more
                    // buffers than the pass has values, which `finish` made room for.)
                    if own.capacity() > 0 && self.free.len() < self.sizes.len() {
                        self.free.insert(0, own);
                    }
                }
            }
        }
    }

    /// The free buffer to hold `len` values: the most recently released one with room for
    /// them and at most [`MOST_ROOM`] times as much, else the one with the least room to spare
    /// (the most recently released among equals).
    ///
    /// Why recency first: the buffer released last is the likeliest to be still in the cache,
    /// and taking it keeps the pass in a few buffers. Taking the tightest fit first drew on
    /// every buffer of the pool in turn (MobileNetV2 at batch 1 wrote into 30 buffers, 18 MB,
    /// per pass instead of 9, 8 MB), which with the weights no longer fit the cache; the bound
    /// keeps a small value from taking a buffer that a large one will need next.
    fn best_fit(&self, len: usize) -> Option<usize> {
        let roomy_enough = |buffer: &Vec<f32>| buffer.capacity() >= len && buffer.capacity() / MOST_ROOM <= len;
        if let Some(at) = self.free.iter().rposition(roomy_enough) {
            return Some(at);
        }
        let mut best: Option<(usize, usize)> = None;
        for (at, buffer) in self.free.iter().enumerate().rev() {
            let capacity = buffer.capacity();
            if capacity >= len && best.is_none_or(|(_, least)| capacity < least) {
                best = Some((at, capacity));
            }
        }
        best.map(|(at, _)| at)
    }

    /// Ends a pass. A recording pass becomes the schedule: each value that `kept` does not
    /// exclude (the pass's outputs, parameters, constants) is released
    /// before the operation after its last read.
    pub(super) fn finish(&mut self, operations: usize, kept: impl Fn(usize) -> bool) {
        if self.mode == Mode::Record {
            let count = operations.min(self.last_read.len());
            let mut per_position = vec![0u32; count + 1];
            let release_at = |var: usize| self.last_read[var].get() as usize + 1;
            let releasable = |var: usize| !kept(var) && release_at(var) < count;
            for var in (0..count).filter(|&var| releasable(var)) {
                per_position[release_at(var)] += 1;
            }
            self.starts.clear();
            self.starts.push(0);
            let mut start = 0;
            for &released in &per_position[..count] {
                start += released;
                self.starts.push(start);
            }
            self.released.clear();
            self.released.resize(self.starts[count] as usize, 0);
            let mut next: Vec<u32> = self.starts[..count].to_vec();
            for var in (0..count).filter(|&var| releasable(var)) {
                let slot = &mut next[release_at(var)];
                self.released[*slot as usize] = var as u32;
                *slot += 1;
            }
            self.sizes.truncate(count);
            self.free.reserve(count.saturating_sub(self.free.len()));
            self.key = self.recording.take();
        }
        self.mode = Mode::Off;
    }
}

/// Moves `var`'s last read time in `times` up to `now`.
pub(super) fn note_read(times: &[Cell<u32>], var: Var, now: usize) {
    if let Some(time) = times.get(var.0) {
        time.set(time.get().max(now as u32));
    }
}

#[cfg(test)]
mod tests {
    use crate::autograd::{Graph, ParamStore, Tape};
    use crate::tensor::Tensor;

    /// One pass of a small chain under `key`: its output, and where each value's buffer was
    /// when it was computed (`a` is read again near the end, so it lives longest).
    fn pass(tape: &mut Tape, params: &ParamStore, x: &Tensor, key: u64) -> (Vec<f32>, Vec<usize>) {
        let mut graph = Graph::new(tape, params, false);
        graph.recycle_buffers(key);
        let mut at = Vec::new();
        let mut located = |graph: &Graph, var| {
            at.push(graph.value(var).data().as_ptr() as usize);
            var
        };
        let x = graph.constant(x);
        let a = graph.relu(x);
        let a = located(&graph, a);
        let b = graph.scale(a, 2.0);
        let b = located(&graph, b);
        let c = graph.exp(b);
        let c = located(&graph, c);
        let d = graph.tanh(c);
        let d = located(&graph, d);
        let e = graph.add(d, a).unwrap();
        let e = located(&graph, e);
        let f = graph.sigmoid(e);
        let f = located(&graph, f);
        graph.finish_recycling(&[f]);
        (graph.value(f).data().to_vec(), at)
    }

    /// The first pass under a key records; the next ones hand the buffers of values no longer
    /// read on (`d` gets `b`'s, `e` gets `c`'s, `f` gets `d`'s: the most recently released)
    /// and give the same bits; `a`, read by `e`, shares with none of them. A pass under
    /// another key (another input shape) records again.
    #[test]
    fn values_no_longer_read_hand_their_buffers_on() {
        let params = ParamStore::default();
        let mut tape = Tape::new();
        let x = Tensor::from_vec(vec![2, 3], vec![-1.0, 0.5, 2.0, -0.25, 1.5, 0.0]).unwrap();
        let (first, recorded) = pass(&mut tape, &params, &x, 1);
        let distinct = |at: &[usize]| at.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert_eq!(distinct(&recorded), 6, "no value shares a buffer while recording");
        for _ in 0..2 {
            let (again, recycled) = pass(&mut tape, &params, &x, 1);
            assert_eq!(again, first);
            let [a, b, c, d, e, f] = recycled[..] else {
                unreachable!()
            };
            assert_eq!((d, e, f), (b, c, d), "d takes b's buffer, e c's, f d's");
            assert!(![b, c, d, e].contains(&a), "a is still read");
        }
        let wider = Tensor::from_vec(vec![3, 3], (0..9).map(|i| i as f32 - 4.0).collect()).unwrap();
        let mut fresh = Tape::new();
        assert_eq!(
            pass(&mut tape, &params, &wider, 2).0,
            pass(&mut fresh, &params, &wider, 2).0
        );
        assert_eq!(pass(&mut tape, &params, &x, 1).0, first);
    }

    /// A free buffer goes to the most recently released one with room for the value and at
    /// most four times as much; failing that, to the tightest fit.
    #[test]
    fn the_latest_buffer_with_not_too_much_room_is_taken() {
        let recycling = super::Recycling {
            free: [100, 10, 40].map(Vec::with_capacity).into(),
            ..Default::default()
        };
        let capacities: Vec<usize> = recycling.free.iter().map(Vec::capacity).collect();
        assert_eq!(capacities, [100, 10, 40]);
        let taken = |len| recycling.best_fit(len).map(|at| capacities[at]);
        assert_eq!(taken(10), Some(40), "the latest, not the exact fit");
        assert_eq!(taken(41), Some(100));
        assert_eq!(taken(1), Some(10), "none within four times: the tightest");
        assert_eq!(taken(101), None);
    }
}
