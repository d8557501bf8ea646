//! The elementwise work of one step of a recurrent cell, forward and backward, on vectors: the
//! gates' squashing functions (`kernels::squash`), the LSTM's cell update, the GRU's
//! interpolation, and their gradients. The step's matrix products stay in `kernels::matmul`
//! (GEMM); `autograd::recurrent` calls these between them.
//!
//! A step runs over the batch's rows, each row's units in vectors as wide as the CPU has
//! (`dispatch_simd!`): every lane does the same operations in the same order on every width,
//! so AVX-512 and AVX2 give the same bits. Large steps split their rows over the thread pool;
//! a row's arithmetic does not depend on which task runs it, so neither do the results.
//!
//! Layouts, for `N` rows, `U` units and `G` gates per unit (gate `k` of unit `j` at `k·U + j`):
//! the step's slices of the input projection and the mask are taken at its time index, so row
//! `i`'s values sit `i·T` rows further on (`T` = [`StepInputs::steps`]); everything else is
//! `(N, U)` or `(N, G·U)`, row after row.

use super::simd::dispatch_simd;
use super::softmax::Pow2;
use super::squash::Squash;

/// Which recurrent cell.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Cell {
    /// Keras's `SimpleRNN`: one gate.
    SimpleRnn,
    /// Keras's `LSTM`: gates i, f, c, o.
    Lstm,
    /// Keras's `GRU` with `reset_after=True`: gates z, r, h, with a second (recurrent) bias.
    Gru,
}

impl Cell {
    /// Gates per unit.
    pub fn gates(self) -> usize {
        match self {
            Cell::SimpleRnn => 1,
            Cell::Lstm => 4,
            Cell::Gru => 3,
        }
    }
}

/// A cell's two functions: `activation` (φ: candidate and output) and `recurrent` (σ: gates).
#[derive(Clone, Copy, Debug)]
pub(crate) struct Squashes {
    /// φ.
    pub activation: Squash,
    /// σ.
    pub recurrent: Squash,
}

/// Gate values a task should hold at least before a step splits over threads: below that the
/// hand-off costs more than the second thread saves (an `rnn_mnist` step of 64 rows × 512
/// gates splits in two, an `imdb_lstm` step of 32 × 256 does not).
const VALUES_PER_TASK: usize = 8192;

/// What one step reads besides the saved state: the pre-activations' two parts and the mask.
#[derive(Clone, Copy)]
pub(crate) struct StepInputs<'a> {
    /// The input projections `x·W + b` from this step's time on (`(N·T, G·U)` batch-major).
    pub projection: &'a [f32],
    /// The mask `(N, T)` from this step's time on: 0 skips the row's step (the state stays).
    pub mask: Option<&'a [f32]>,
    /// `T`: how many rows of the projection and entries of the mask lie between two rows'.
    pub steps: usize,
    /// `(N, G·U)`: `h_{t−1}·R` (plus the GRU's recurrent bias).
    pub recurrent: &'a [f32],
}

impl StepInputs<'_> {
    /// Whether row `i` skips this step.
    #[inline(always)]
    fn skips(&self, i: usize) -> bool {
        self.mask.is_some_and(|m| m[i * self.steps] == 0.0)
    }

    /// The inputs of the rows from `rows` on.
    fn after_rows(self, rows: usize, gu: usize) -> Self {
        StepInputs {
            projection: &self.projection[(rows * self.steps * gu).min(self.projection.len())..],
            mask: self.mask.map(|m| &m[(rows * self.steps).min(m.len())..]),
            recurrent: &self.recurrent[rows * gu..],
            ..self
        }
    }
}

/// The state a forward step reads and writes, all `(N, U)` but `gates`.
pub(crate) struct ForwardState<'a> {
    /// `h_{t−1}`.
    pub h_prev: &'a [f32],
    /// `h_t`, written.
    pub h: &'a mut [f32],
    /// The LSTM's `c_{t−1}` (empty for the other cells).
    pub c_prev: &'a [f32],
    /// The LSTM's `c_t`, written (empty for the other cells).
    pub c: &'a mut [f32],
    /// `(N, G·U)`: the gate values backpropagation reads (GRU: u, r, ĥ), written; zeros for a
    /// skipped row.
    pub gates: &'a mut [f32],
    /// The GRU's recurrent candidate part `r_h` (empty for the other cells), written.
    pub recurrent_candidate: &'a mut [f32],
}

/// Runs one forward step of `cell` with `units` units over every row of `state`.
pub(crate) fn step_forward<'a>(
    cell: Cell,
    squashes: Squashes,
    units: usize,
    inputs: StepInputs<'a>,
    state: ForwardState<'a>,
) {
    let gu = cell.gates() * units;
    let rows = state.h.len() / units.max(1);
    let split = |(inputs, state): (StepInputs<'a>, ForwardState<'a>), at: usize| {
        let (left, right) = state.split(at, units, gu);
        ((inputs, left), (inputs.after_rows(at, gu), right))
    };
    let run = |(inputs, state): (StepInputs, ForwardState)| forward_rows(cell, squashes, units, inputs, state);
    split_rows(rows, gu, (inputs, state), &split, &run);
}

impl<'a> ForwardState<'a> {
    /// The first `rows` rows and the rest.
    fn split(self, rows: usize, u: usize, gu: usize) -> (Self, Self) {
        let cut = |v: &'a [f32], width: usize| v.split_at((rows * width).min(v.len()));
        let cut_mut = |v: &'a mut [f32], width: usize| v.split_at_mut((rows * width).min(v.len()));
        let (h_prev, h_prev_rest) = cut(self.h_prev, u);
        let (h, h_rest) = cut_mut(self.h, u);
        let (c_prev, c_prev_rest) = cut(self.c_prev, u);
        let (c, c_rest) = cut_mut(self.c, u);
        let (gates, gates_rest) = cut_mut(self.gates, gu);
        let (candidate, candidate_rest) = cut_mut(self.recurrent_candidate, u);
        let first = ForwardState {
            h_prev,
            h,
            c_prev,
            c,
            gates,
            recurrent_candidate: candidate,
        };
        let rest = ForwardState {
            h_prev: h_prev_rest,
            h: h_rest,
            c_prev: c_prev_rest,
            c: c_rest,
            gates: gates_rest,
            recurrent_candidate: candidate_rest,
        };
        (first, rest)
    }
}

dispatch_simd!(forward_rows<> => forward_rows_body(
    cell: Cell, squashes: Squashes, units: usize, inputs: StepInputs, state: ForwardState
));

#[inline(always)]
fn forward_rows_body<S: Pow2>(
    s: S,
    cell: Cell,
    Squashes { activation, recurrent }: Squashes,
    u: usize,
    inputs: StepInputs,
    state: ForwardState,
) {
    let gu = cell.gates() * u;
    let one = s.splat(1.0);
    for i in 0..state.h.len() / u.max(1) {
        let row = i * u..(i + 1) * u;
        let (h_prev, h) = (&state.h_prev[row.clone()], &mut state.h[row.clone()]);
        let gates = &mut state.gates[i * gu..(i + 1) * gu];
        if inputs.skips(i) {
            h.copy_from_slice(h_prev);
            if cell == Cell::Lstm {
                state.c[row.clone()].copy_from_slice(&state.c_prev[row]);
            }
            gates.fill(0.0);
            continue;
        }
        let p = &inputs.projection[i * inputs.steps * gu..][..gu];
        let r = &inputs.recurrent[i * gu..(i + 1) * gu];
        let mut j = 0;
        while j < u {
            let w = (u - j).min(S::LANES);
            let load = |v: &[f32], gate: usize| s.load_partial(&v[gate * u + j..], w);
            let z = |gate: usize| s.add(load(p, gate), load(r, gate));
            match cell {
                Cell::SimpleRnn => {
                    let y = activation.apply(s, z(0));
                    s.store_partial(&mut h[j..], w, y);
                    s.store_partial(&mut gates[j..], w, y);
                }
                Cell::Lstm => {
                    let input = recurrent.apply(s, z(0));
                    let forget = recurrent.apply(s, z(1));
                    let candidate = activation.apply(s, z(2));
                    let output = recurrent.apply(s, z(3));
                    let c_prev = s.load_partial(&state.c_prev[i * u + j..], w);
                    let c = s.add(s.mul(forget, c_prev), s.mul(input, candidate));
                    s.store_partial(&mut state.c[i * u + j..], w, c);
                    s.store_partial(&mut h[j..], w, s.mul(output, activation.apply(s, c)));
                    for (gate, v) in [input, forget, candidate, output].into_iter().enumerate() {
                        s.store_partial(&mut gates[gate * u + j..], w, v);
                    }
                }
                Cell::Gru => {
                    let update = recurrent.apply(s, z(0));
                    let reset = recurrent.apply(s, z(1));
                    let recurrent_part = load(r, 2);
                    let candidate = activation.apply(s, s.add(load(p, 2), s.mul(reset, recurrent_part)));
                    let keep = s.mul(update, s.load_partial(&h_prev[j..], w));
                    s.store_partial(&mut h[j..], w, s.add(keep, s.mul(s.sub(one, update), candidate)));
                    for (gate, v) in [update, reset, candidate].into_iter().enumerate() {
                        s.store_partial(&mut gates[gate * u + j..], w, v);
                    }
                    s.store_partial(&mut state.recurrent_candidate[i * u + j..], w, recurrent_part);
                }
            }
            j += w;
        }
    }
}

/// What one backward step reads (the forward pass's saved values) and writes (the gradients).
pub(crate) struct BackwardState<'a> {
    /// `(N, G·U)`: the step's saved gate values.
    pub gates: &'a [f32],
    /// `h_{t−1}` (read by the GRU).
    pub h_prev: &'a [f32],
    /// The LSTM's `c_{t−1}` and `c_t` (empty for the other cells).
    pub c_prev: &'a [f32],
    /// See `c_prev`.
    pub c: &'a [f32],
    /// The GRU's saved `r_h` (empty for the other cells).
    pub recurrent_candidate: &'a [f32],
    /// The gradient of `h_t`.
    pub dh: &'a [f32],
    /// The LSTM's gradient of `c_t`, replaced by that of `c_{t−1}` (empty for the others).
    pub dc: &'a mut [f32],
    /// The pre-activations' gradients through the input projection, written: from this step's
    /// time on, row `i`'s `G·U` values `i·T` rows further on, as the projection's.
    pub dp: &'a mut [f32],
    /// `(N, G·U)`: the gradients through `h_{t−1}·R`, written (the GRU's candidate gate
    /// times `r`).
    pub dr: &'a mut [f32],
    /// The gradient of `h_{t−1}` along the paths that skip `R`, written: `dh` for a skipped
    /// row, the GRU's `dh·u`, zero otherwise.
    pub back: &'a mut [f32],
}

/// Runs one backward step of `cell` with `units` units over every row of `state`; the mask is
/// the one of [`StepInputs`], from this step's time on, `steps` entries between two rows'.
pub(crate) fn step_backward<'a>(
    cell: Cell,
    squashes: Squashes,
    units: usize,
    (mask, steps): (Option<&'a [f32]>, usize),
    state: BackwardState<'a>,
) {
    let gu = cell.gates() * units;
    let rows = state.dh.len() / units.max(1);
    let split = |(mask, state): (Option<&'a [f32]>, BackwardState<'a>), at: usize| {
        let rest = mask.map(|m| &m[(at * steps).min(m.len())..]);
        let (left, right) = state.split(at, units, gu, steps);
        ((mask, left), (rest, right))
    };
    let run =
        |(mask, state): (Option<&[f32]>, BackwardState)| backward_rows(cell, squashes, units, (mask, steps), state);
    split_rows(rows, gu, (mask, state), &split, &run);
}

impl<'a> BackwardState<'a> {
    /// The first `rows` rows and the rest.
    fn split(self, rows: usize, u: usize, gu: usize, steps: usize) -> (Self, Self) {
        let cut = |v: &'a [f32], width: usize| v.split_at((rows * width).min(v.len()));
        let cut_mut = |v: &'a mut [f32], width: usize| v.split_at_mut((rows * width).min(v.len()));
        let (gates, gates_rest) = cut(self.gates, gu);
        let (h_prev, h_prev_rest) = cut(self.h_prev, u);
        let (c_prev, c_prev_rest) = cut(self.c_prev, u);
        let (c, c_rest) = cut(self.c, u);
        let (candidate, candidate_rest) = cut(self.recurrent_candidate, u);
        let (dh, dh_rest) = cut(self.dh, u);
        let (dc, dc_rest) = cut_mut(self.dc, u);
        let (dp, dp_rest) = cut_mut(self.dp, steps * gu);
        let (dr, dr_rest) = cut_mut(self.dr, gu);
        let (back, back_rest) = cut_mut(self.back, u);
        let first = BackwardState {
            gates,
            h_prev,
            c_prev,
            c,
            recurrent_candidate: candidate,
            dh,
            dc,
            dp,
            dr,
            back,
        };
        let rest = BackwardState {
            gates: gates_rest,
            h_prev: h_prev_rest,
            c_prev: c_prev_rest,
            c: c_rest,
            recurrent_candidate: candidate_rest,
            dh: dh_rest,
            dc: dc_rest,
            dp: dp_rest,
            dr: dr_rest,
            back: back_rest,
        };
        (first, rest)
    }
}

dispatch_simd!(backward_rows<> => backward_rows_body(
    cell: Cell, squashes: Squashes, units: usize, mask: (Option<&[f32]>, usize), state: BackwardState
));

#[inline(always)]
fn backward_rows_body<S: Pow2>(
    s: S,
    cell: Cell,
    Squashes { activation, recurrent }: Squashes,
    u: usize,
    (mask, steps): (Option<&[f32]>, usize),
    state: BackwardState,
) {
    let gu = cell.gates() * u;
    let one = s.splat(1.0);
    for i in 0..state.dh.len() / u.max(1) {
        let row = i * u..(i + 1) * u;
        let dp = &mut state.dp[i * steps * gu..][..gu];
        let dr = &mut state.dr[i * gu..(i + 1) * gu];
        let (dh, back) = (&state.dh[row.clone()], &mut state.back[row.clone()]);
        if mask.is_some_and(|m| m[i * steps] == 0.0) {
            // The state passed through unchanged: so does its gradient.
            dp.fill(0.0);
            dr.fill(0.0);
            back.copy_from_slice(dh);
            continue;
        }
        let gates = &state.gates[i * gu..(i + 1) * gu];
        let mut j = 0;
        while j < u {
            let w = (u - j).min(S::LANES);
            let gate = |k: usize| s.load_partial(&gates[k * u + j..], w);
            let at = |v: &[f32]| s.load_partial(&v[i * u + j..], w);
            let d_h = s.load_partial(&dh[j..], w);
            match cell {
                Cell::SimpleRnn => {
                    let dz = s.mul(d_h, activation.slope(s, gate(0)));
                    s.store_partial(&mut dp[j..], w, dz);
                    s.store_partial(&mut dr[j..], w, dz);
                    s.store_partial(&mut back[j..], w, s.splat(0.0));
                }
                Cell::Lstm => {
                    let (input, forget, candidate, output) = (gate(0), gate(1), gate(2), gate(3));
                    let cell_out = activation.apply(s, at(state.c));
                    let through_h = s.mul(s.mul(d_h, output), activation.slope(s, cell_out));
                    let dc = s.add(at(&*state.dc), through_h);
                    let dz = [
                        s.mul(s.mul(dc, candidate), recurrent.slope(s, input)),
                        s.mul(s.mul(dc, at(state.c_prev)), recurrent.slope(s, forget)),
                        s.mul(s.mul(dc, input), activation.slope(s, candidate)),
                        s.mul(s.mul(d_h, cell_out), recurrent.slope(s, output)),
                    ];
                    for (k, dz) in dz.into_iter().enumerate() {
                        s.store_partial(&mut dp[k * u + j..], w, dz);
                        s.store_partial(&mut dr[k * u + j..], w, dz);
                    }
                    s.store_partial(&mut state.dc[i * u + j..], w, s.mul(dc, forget));
                    s.store_partial(&mut back[j..], w, s.splat(0.0));
                }
                Cell::Gru => {
                    let (update, reset, candidate) = (gate(0), gate(1), gate(2));
                    let d_candidate = s.mul(s.mul(d_h, s.sub(one, update)), activation.slope(s, candidate));
                    let d_update = s.mul(
                        s.mul(d_h, s.sub(at(state.h_prev), candidate)),
                        recurrent.slope(s, update),
                    );
                    let d_reset = s.mul(
                        s.mul(d_candidate, at(state.recurrent_candidate)),
                        recurrent.slope(s, reset),
                    );
                    for (k, dz) in [d_update, d_reset, d_candidate].into_iter().enumerate() {
                        s.store_partial(&mut dp[k * u + j..], w, dz);
                    }
                    s.store_partial(&mut dr[j..], w, d_update);
                    s.store_partial(&mut dr[u + j..], w, d_reset);
                    s.store_partial(&mut dr[2 * u + j..], w, s.mul(d_candidate, reset));
                    // The direct path h_{t−1} → u·h_{t−1}.
                    s.store_partial(&mut back[j..], w, s.mul(d_h, update));
                }
            }
            j += w;
        }
    }
}

/// Runs `run` on `task` (of `rows` rows of `gu` gate values), split by `split` into halves
/// run by `rayon::join` while each half would keep at least [`VALUES_PER_TASK`] values and
/// no more tasks than threads are made. `rayon::join` allocates nothing, so neither does a
/// step.
fn split_rows<T: Send>(
    rows: usize,
    gu: usize,
    task: T,
    split: &(impl Fn(T, usize) -> (T, T) + Sync),
    run: &(impl Fn(T) + Sync),
) {
    let threads = rayon::current_num_threads().max(1);
    let grain = VALUES_PER_TASK.div_ceil(gu.max(1)).max(rows.div_ceil(threads));
    fn go<T: Send>(
        rows: usize,
        grain: usize,
        task: T,
        split: &(impl Fn(T, usize) -> (T, T) + Sync),
        run: &(impl Fn(T) + Sync),
    ) {
        if rows < 2 * grain {
            return run(task);
        }
        let half = rows / 2;
        let (first, rest) = split(task, half);
        rayon::join(
            || go(half, grain, first, split, run),
            || go(rows - half, grain, rest, split, run),
        );
    }
    go(rows, grain, task, split, run);
}
