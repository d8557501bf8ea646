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
//! differ from the recorded ones stops passing buffers on. The recording also plans which
//! buffer (slot) each released value computes into (`plan_slots`), so every later pass uses the
//! same buffers and allocates nothing. Training passes never take part: their backward pass
//! reads every value again.

use super::op::Var;
use crate::tensor::Tensor;
use std::cell::Cell;

/// How many times a value's size a free slot may hold before the most recently released one
/// is passed over for a tighter fit (see `plan_slots`).
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
    /// While recording, per operation: whether its value may take a recycled buffer.
    recyclable: Vec<bool>,
    /// Per operation position `k`: `released[starts[k]..starts[k + 1]]` are the values
    /// released just before operation `k` is recorded.
    starts: Vec<u32>,
    released: Vec<u32>,
    /// Per value of the schedule: the buffer slot it computes into ([`NO_SLOT`]: its own).
    slots: Vec<u32>,
    /// Per slot: its buffer, while no value holds it (empty until a value first gives it back).
    pool: Vec<Vec<f32>>,
}

/// A value that keeps its own buffer (see `Recycling::slots`).
const NO_SLOT: u32 = u32::MAX;

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
            self.recyclable.clear();
        }
    }

    /// Ends whatever the last pass did: the next pass keeps its buffers unless it asks.
    pub(super) fn stop(&mut self) {
        self.mode = Mode::Off;
    }

    /// Drops the free buffers and the schedule, before a training pass: it needs a buffer
    /// per value, and the memory is better spent there.
    pub(super) fn forget(&mut self) {
        self.pool.clear();
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
    /// while recording, notes its size and whether it is `recyclable`; while passing buffers
    /// on, releases the values last read before it into their slots' places in the pool and
    /// gives it its own slot's buffer (see [`plan_slots`]).
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
                self.recyclable.push(recyclable);
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
                    if let Some(place) = self.pool.get_mut(self.slots[var as usize] as usize) {
                        *place = values[var as usize].take_data();
                    }
                }
                let slot = self.slots[index];
                if slot != NO_SLOT {
                    let buffer = std::mem::take(&mut self.pool[slot as usize]);
                    // Until the slot's buffer first comes back, the value uses its own.
                    if buffer.capacity() > 0 {
                        drop(values[index].replace_data(buffer));
                    }
                }
            }
        }
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
            self.slots = plan_slots(&self.sizes, &self.recyclable, &self.starts, &self.released);
            let slot_count = self
                .slots
                .iter()
                .filter(|&&slot| slot != NO_SLOT)
                .max()
                .map_or(0, |&slot| slot + 1);
            self.pool.clear();
            self.pool.resize_with(slot_count as usize, Vec::new);
            self.key = self.recording.take();
        }
        self.mode = Mode::Off;
    }
}

/// The buffer slot of each value of a recorded pass: `sizes` and `recyclable` per operation,
/// `released[starts[k]..starts[k + 1]]` the values released before operation `k`. Only values
/// that are released get a slot (the others, the pass's outputs, keep their own buffers, so
/// every slot's buffer is back in the pool when a pass ends). A value takes the free slot
/// released most recently whose largest value so far is at least its size and at most
/// [`MOST_ROOM`] times it, else the free slot with the least room to spare above its size,
/// else a new slot.
///
/// Why recency first: the buffer released last is the likeliest to be still in the cache, and
/// taking it keeps the pass in a few buffers. Taking the tightest fit first drew on every
/// buffer in turn (MobileNetV2 at batch 1 wrote into 30 buffers, 18 MB, per pass instead of 9,
/// 8 MB), which with the weights no longer fit the cache; the bound keeps a small value from
/// taking a buffer that a large one will need next. Why a plan rather than a choice at each
/// pass: the buffers then settle after one pass, and every later pass allocates nothing.
fn plan_slots(sizes: &[usize], recyclable: &[bool], starts: &[u32], released: &[u32]) -> Vec<u32> {
    let mut is_released = vec![false; sizes.len()];
    released.iter().for_each(|&var| is_released[var as usize] = true);
    let mut slots = vec![NO_SLOT; sizes.len()];
    // Per slot: the largest value it holds; the free slots, the most recently released last.
    let mut largest: Vec<usize> = Vec::new();
    let mut free: Vec<u32> = Vec::new();
    for (index, &len) in sizes.iter().enumerate() {
        let (start, end) = (starts[index] as usize, starts[index + 1] as usize);
        let freed = released[start..end].iter().map(|&var| slots[var as usize]);
        free.extend(freed.filter(|&slot| slot != NO_SLOT));
        if !recyclable[index] || !is_released[index] {
            continue;
        }
        let room = |&slot: &u32| largest[slot as usize];
        let close = free
            .iter()
            .rposition(|slot| room(slot) >= len && room(slot) / MOST_ROOM <= len);
        let tightest = || {
            let fitting = free.iter().enumerate().rev().filter(|(_, slot)| room(slot) >= len);
            fitting.min_by_key(|(_, slot)| room(slot)).map(|(at, _)| at)
        };
        let slot = match close.or_else(tightest) {
            Some(at) => free.remove(at),
            None => {
                largest.push(0);
                (largest.len() - 1) as u32
            }
        };
        largest[slot as usize] = largest[slot as usize].max(len);
        slots[index] = slot;
    }
    slots
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
        let g = graph.relu(f);
        let g = located(&graph, g);
        graph.finish_recycling(&[g]);
        (graph.value(g).data().to_vec(), at)
    }

    /// The first pass under a key records; the next ones hand the buffers of values no longer
    /// read on (`d` gets `b`'s, `e` gets `c`'s: the most recently released) and give the same
    /// bits, each pass in the same buffers; `a`, read by `e`, shares with none of them, nor
    /// do `f` (read by the last operation) and the output `g`, which keep their own. A pass
    /// under another key (another input shape) records again.
    #[test]
    fn values_no_longer_read_hand_their_buffers_on() {
        let params = ParamStore::default();
        let mut tape = Tape::new();
        let x = Tensor::from_vec(vec![2, 3], vec![-1.0, 0.5, 2.0, -0.25, 1.5, 0.0]).unwrap();
        let (first, recorded) = pass(&mut tape, &params, &x, 1);
        let distinct = |at: &[usize]| at.iter().collect::<std::collections::BTreeSet<_>>().len();
        assert_eq!(distinct(&recorded), 7, "no value shares a buffer while recording");
        let mut settled = None;
        for _ in 0..3 {
            let (again, recycled) = pass(&mut tape, &params, &x, 1);
            assert_eq!(again, first);
            let [a, b, c, d, e, f, g] = recycled[..] else {
                unreachable!()
            };
            assert_eq!((d, e), (b, c), "d takes b's buffer, e c's");
            assert!(![b, c, d, e, f, g].contains(&a), "a is still read");
            assert_eq!(distinct(&recycled), 5, "f and g keep their own");
            assert!(settled.is_none_or(|at| at == recycled), "each pass in the same buffers");
            settled = Some(recycled);
        }
        let wider = Tensor::from_vec(vec![3, 3], (0..9).map(|i| i as f32 - 4.0).collect()).unwrap();
        let mut fresh = Tape::new();
        assert_eq!(
            pass(&mut tape, &params, &wider, 2).0,
            pass(&mut fresh, &params, &wider, 2).0
        );
        assert_eq!(pass(&mut tape, &params, &x, 1).0, first);
    }

    /// A value takes the slot released most recently whose largest value is at least its
    /// size and at most four times it, else the tightest fit, else a new slot; a value never
    /// released (the pass's output) keeps its own buffer.
    #[test]
    fn the_latest_slot_with_not_too_much_room_is_taken() {
        use super::{NO_SLOT, plan_slots};
        // Values 0, 1, 2 (100, 10 and 40 values) released before operation 3, in that order;
        // 3 to 6 before operation 7, whose value is the output.
        let sizes = [100, 10, 40, 10, 41, 1, 101, 5];
        let starts = [0, 0, 0, 0, 3, 3, 3, 3, 7];
        let released = [0, 1, 2, 3, 4, 5, 6];
        let slots = plan_slots(&sizes, &[true; 8], &starts, &released);
        // 3 (10 values): 2's slot (40), the latest, not 1's exact fit; 4 (41): 0's (100);
        // 5 (1): none within four times, so the tightest, 1's (10); 6 (101): a new one.
        assert_eq!(slots, [0, 1, 2, 2, 0, 1, 3, NO_SLOT]);
        let mut fixed = [true; 8];
        fixed[2] = false;
        let slots = plan_slots(&sizes, &fixed, &starts, &released);
        assert_eq!(slots[2], NO_SLOT, "a value keeping its own buffer has no slot");
    }
}
