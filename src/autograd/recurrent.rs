//! Recurrent layers' forward pass and backpropagation through time, fused into one operation.
//!
//! The input projection of every step is one matrix product, `P = x·kernel + bias` over all
//! `(sample, step)` rows; only the recurrence `h·recurrent_kernel` runs step by step. The
//! backward pass walks the steps in reverse, collecting each step's pre-activation gradients,
//! then finishes with one product each for the input gradient, the kernel gradient and the
//! recurrent kernel gradient. Every product goes through `kernels::matmul` (the GEMM crate).
//!
//! Cells, with Keras's gate order and formulas (`σ` the recurrent activation, `φ` the
//! activation, `z` the pre-activations `P_t + h_{t−1}·R`):
//! - SimpleRNN: `h = φ(z)`.
//! - LSTM (gates i, f, c, o): `c = σ(z_f)·c_{t−1} + σ(z_i)·φ(z_c)`, `h = σ(z_o)·φ(c)`.
//! - GRU with `reset_after` (gates z, r, h; Keras's default): with `r_t = h_{t−1}·R + b_rec`,
//!   `u = σ(P_z + r_z)`, `r = σ(P_r + r_r)`, `ĥ = φ(P_h + r·r_h)`, `h = u·h_{t−1} + (1 − u)·ĥ`.
//!
//! A mask `(N, T)` of ones and zeros skips steps per sample: a skipped step keeps the previous
//! state (and repeats the previous output). A recurrent dropout mask `(N, units)` multiplies
//! `h_{t−1}` before the recurrent product, as Keras applies `recurrent_dropout`.

use super::buffers::{GradTargets, Inputs, Node};
use super::cell::{Cell, RecurrentOptions};
use super::op::{Op, RecurrentInputs, Var};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, BackwardState, ForwardState, Squashes, StepInputs, Transpose, matmul};
use crate::tensor::Tensor;

/// Offsets of the pieces of a recurrent operation's saved state (all in floats).
struct Layout {
    n: usize,
    t: usize,
    units: usize,
    gates: usize,
    /// `(T+1, N, U)`: the state before each step, then the last.
    h: usize,
    /// `(T+1, N, U)`: the LSTM's cell state (empty otherwise).
    c: usize,
    /// `(T, N, G·U)`: gate activations per step (GRU: u, r, ĥ).
    gate_values: usize,
    /// `(T, N, U)`: the GRU's recurrent candidate part `r_h` (empty otherwise).
    recurrent_candidate: usize,
    /// `(T, N, U)`: `h_{t−1}` times the recurrent dropout mask (empty without it).
    dropped: usize,
    /// `(N·T, G·U)`: the input projection, batch-major.
    projection: usize,
    /// `(N, G·U)`: one step's recurrent product.
    step: usize,
    total: usize,
}

impl Layout {
    fn new(n: usize, t: usize, options: &RecurrentOptions, dropout: bool) -> Self {
        let (u, g) = (options.units, options.cell.gates());
        let mut offset = 0;
        let mut take = |size: usize| {
            offset += size;
            offset - size
        };
        let h = take((t + 1) * n * u);
        let c = take(if options.cell == Cell::Lstm { (t + 1) * n * u } else { 0 });
        let gate_values = take(t * n * g * u);
        let recurrent_candidate = take(if options.cell == Cell::Gru { t * n * u } else { 0 });
        let dropped = take(if dropout { t * n * u } else { 0 });
        let projection = take(n * t * g * u);
        let step = take(n * g * u);
        Layout {
            n,
            t,
            units: u,
            gates: g,
            h,
            c,
            gate_values,
            recurrent_candidate,
            dropped,
            projection,
            step,
            total: offset,
        }
    }

    /// Step `s`'s views of the saved state: what the forward step writes (`h_s → h_{s+1}`,
    /// `c` likewise, the gates, the GRU's `r_h`), then the whole input projection and the
    /// step's recurrent product, which it reads.
    fn step_views<'a>(&self, saved: &'a mut [f32], s: usize) -> (ForwardState<'a>, &'a [f32], &'a [f32]) {
        let (nu, ngu) = (self.n * self.units, self.n * self.gates * self.units);
        let (h, rest) = saved[self.h..].split_at_mut(self.c - self.h);
        let (c, rest) = rest.split_at_mut(self.gate_values - self.c);
        let (gates, rest) = rest.split_at_mut(self.recurrent_candidate - self.gate_values);
        let (candidate, rest) = rest.split_at_mut(self.dropped - self.recurrent_candidate);
        let (projection, step) = rest[self.projection - self.dropped..].split_at(self.step - self.projection);
        // Consecutive `(N, U)` states: before this step, after it (empty for a cell without c).
        let pair = |states: &'a mut [f32]| match states.get_mut(s * nu..(s + 2) * nu) {
            Some(both) => {
                let (before, after) = both.split_at_mut(nu);
                (&*before, after)
            }
            None => (Default::default(), Default::default()),
        };
        let ((h_prev, h), (c_prev, c)) = (pair(h), pair(c));
        let state = ForwardState {
            h_prev,
            h,
            c_prev,
            c,
            gates: &mut gates[s * ngu..(s + 1) * ngu],
            recurrent_candidate: candidate.get_mut(s * nu..(s + 1) * nu).unwrap_or_default(),
        };
        (state, projection, &step[..ngu])
    }

    /// The input time index of processing step `s`.
    fn time(&self, s: usize, options: &RecurrentOptions) -> usize {
        if options.go_backwards { self.t - 1 - s } else { s }
    }

    /// Where step `s`'s output goes along the output's time axis.
    fn output_time(&self, s: usize, options: &RecurrentOptions) -> usize {
        if options.align_output { self.time(s, options) } else { s }
    }
}

impl Graph<'_> {
    /// Runs a recurrent layer over `(N, T, features)` sequences; see the module docs.
    pub fn recurrent(&mut self, operands: RecurrentInputs, options: RecurrentOptions) -> Result<Var> {
        let RecurrentInputs {
            x,
            kernel,
            recurrent_kernel,
            bias,
            mask,
            recurrent_mask,
        } = operands;
        let shape = self.dims(x);
        let (u, g) = (options.units, options.cell.gates());
        let mismatch = |what: &[usize]| Error::ShapeMismatch {
            op: "recurrent",
            lhs: shape.to_vec(),
            rhs: what.to_vec(),
        };
        let &[n, t, features] = shape.as_slice() else {
            return Err(mismatch(&[]));
        };
        if self.shape(kernel) != [features, g * u] {
            return Err(mismatch(self.shape(kernel)));
        }
        if self.shape(recurrent_kernel) != [u, g * u] {
            return Err(mismatch(self.shape(recurrent_kernel)));
        }
        let bias_shape: &[usize] = if options.cell == Cell::Gru {
            &[2, g * u]
        } else {
            &[g * u]
        };
        if let Some(b) = bias
            && self.shape(b) != bias_shape
        {
            return Err(mismatch(self.shape(b)));
        }
        if let Some(m) = mask
            && self.shape(m) != [n, t]
        {
            return Err(mismatch(self.shape(m)));
        }
        if let Some(m) = recurrent_mask
            && self.shape(m) != [n, u]
        {
            return Err(mismatch(self.shape(m)));
        }
        if t == 0 {
            return Err(Error::Data(
                "a recurrent layer needs sequences of at least one step".into(),
            ));
        }
        let out_shape = options.output_shape(n, t);
        let op = Op::Recurrent {
            inputs: operands,
            options,
        };
        Ok(self.push(op, &out_shape, |inputs, out, saved| {
            let layout = Layout::new(n, t, &options, recurrent_mask.is_some());
            saved.resize_for(&[layout.total]);
            forward(&layout, &options, inputs, operands, out.data_mut(), saved.data_mut());
        }))
    }
}

/// The cell's two functions, as the step kernels take them.
fn squashes(options: &RecurrentOptions) -> Squashes {
    Squashes {
        activation: options.activation,
        recurrent: options.recurrent_activation,
    }
}

/// The forward pass: fills the output and the saved state.
fn forward(
    layout: &Layout,
    options: &RecurrentOptions,
    inputs: &Inputs,
    operands: RecurrentInputs,
    out: &mut [f32],
    saved: &mut [f32],
) {
    let Layout {
        n,
        t,
        units: u,
        gates: g,
        ..
    } = *layout;
    let gu = g * u;
    let (sequence_rows, state_rows) = options.output_rows(t);
    let rows = sequence_rows + state_rows;
    let x = inputs.get(operands.x).data();
    let features = x.len() / (n * t).max(1);
    let kernel = inputs.get(operands.kernel).data();
    let recurrent_kernel = inputs.get(operands.recurrent_kernel).data();
    let bias = operands.bias.map(|b| inputs.get(b).data());
    let mask = operands.mask.map(|m| inputs.get(m).data());
    let recurrent_mask = operands.recurrent_mask.map(|m| inputs.get(m).data());
    let (input_bias, recurrent_bias) = match bias {
        Some(b) if options.cell == Cell::Gru => (Some(&b[..gu]), Some(&b[gu..])),
        other => (other, None),
    };
    {
        let projection = &mut saved[layout.projection..layout.projection + n * t * gu];
        matmul(
            x,
            Transpose::No,
            kernel,
            Transpose::No,
            projection,
            n * t,
            features,
            gu,
            false,
        );
        if let Some(b) = input_bias {
            kernels::add_row_vector(projection, b);
        }
    }
    saved[layout.h..layout.h + n * u].fill(0.0);
    if options.cell == Cell::Lstm {
        saved[layout.c..layout.c + n * u].fill(0.0);
    }
    for s in 0..t {
        let time = layout.time(s, options);
        let (h_prev_at, h_at) = (layout.h + s * n * u, layout.h + (s + 1) * n * u);
        // The recurrent product, from h_{t−1} (times the dropout mask when there is one).
        let recurrent_input_at = match recurrent_mask {
            Some(keep) => {
                let dropped_at = layout.dropped + s * n * u;
                for i in 0..n * u {
                    saved[dropped_at + i] = saved[h_prev_at + i] * keep[i];
                }
                dropped_at
            }
            None => h_prev_at,
        };
        {
            let (before, after) = saved.split_at_mut(layout.step);
            let step = &mut after[..n * gu];
            matmul(
                &before[recurrent_input_at..recurrent_input_at + n * u],
                Transpose::No,
                recurrent_kernel,
                Transpose::No,
                step,
                n,
                u,
                gu,
                false,
            );
            if let Some(b) = recurrent_bias {
                kernels::add_row_vector(step, b);
            }
        }
        // The gates, the cell update and the new state, on vectors (`kernels::recurrent`).
        let (state, projection, step) = layout.step_views(saved, s);
        let step_inputs = StepInputs {
            projection: &projection[time * gu..],
            mask: mask.map(|m| &m[time..]),
            steps: t,
            recurrent: step,
        };
        kernels::step_forward(options.cell, squashes(options), u, step_inputs, state);
        if options.return_sequences {
            let at = layout.output_time(s, options);
            for sample in 0..n {
                let from = h_at + sample * u;
                let row = (sample * rows + at) * u;
                out[row..row + u].copy_from_slice(&saved[from..from + u]);
            }
        }
    }
    // The final states follow the sequence's rows: h_T, then c_T.
    let finals = [layout.h, layout.c].map(|state| state + t * n * u);
    for (k, state) in finals.into_iter().take(state_rows).enumerate() {
        for sample in 0..n {
            let row = (sample * rows + sequence_rows + k) * u;
            out[row..row + u].copy_from_slice(&saved[state + sample * u..state + (sample + 1) * u]);
        }
    }
}

/// Backpropagation through time: adds the gradients of x, the kernels and the bias.
pub(super) fn recurrent_backward(
    (operands, options): (RecurrentInputs, RecurrentOptions),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let x_shape = inputs.get(operands.x).shape();
    let (n, t, features) = (x_shape[0], x_shape[1], x_shape[2]);
    let layout = Layout::new(n, t, &options, operands.recurrent_mask.is_some());
    let Layout { units: u, gates: g, .. } = layout;
    let gu = g * u;
    let (sequence_rows, state_rows) = options.output_rows(t);
    let rows = sequence_rows + state_rows;
    let saved = node.saved.data();
    let dy = node.grad.data();
    let recurrent_kernel = inputs.get(operands.recurrent_kernel).data();
    let mask = operands.mask.map(|m| inputs.get(m).data());
    let recurrent_mask = operands.recurrent_mask.map(|m| inputs.get(m).data());
    // Scratch: dP (N·T, G·U) batch-major, dR (T·N, G·U) time-major, then (N, U) each: dh, dc,
    // dh_{t−1} being summed, and the recurrent product through the dropout mask.
    let (nu, ngu) = (n * u, n * gu);
    scratch.resize_for(&[2 * n * t * gu + 4 * nu]);
    let (dp_all, rest) = scratch.data_mut().split_at_mut(n * t * gu);
    let (dr_all, rest) = rest.split_at_mut(n * t * gu);
    rest.fill(0.0);
    let (dh, rest) = rest.split_at_mut(nu);
    let (dc, rest) = rest.split_at_mut(nu);
    let (back, product) = rest.split_at_mut(nu);
    let states = |at: usize, s: usize| saved.get(at + s * nu..at + (s + 1) * nu).unwrap_or_default();
    for s in (0..t).rev() {
        let time = layout.time(s, &options);
        // The output's gradient at this step joins the one flowing back from later steps.
        if options.return_sequences {
            let at = layout.output_time(s, &options);
            for (sample, dh) in dh.chunks_exact_mut(u).enumerate() {
                let row = (sample * rows + at) * u;
                dh.iter_mut().zip(&dy[row..row + u]).for_each(|(d, g)| *d += g);
            }
        }
        if s == t - 1 {
            // The final states' gradients: h_T's row, then c_T's.
            for (k, into) in [&mut *dh, &mut *dc].into_iter().take(state_rows).enumerate() {
                for (sample, into) in into.chunks_exact_mut(u).enumerate() {
                    let row = (sample * rows + sequence_rows + k) * u;
                    into.iter_mut().zip(&dy[row..row + u]).for_each(|(d, g)| *d += g);
                }
            }
        }
        // The gates' gradients on vectors (`kernels::recurrent`): dP, dR, dc_{t−1} and the
        // direct paths' part of dh_{t−1}.
        let lstm = options.cell == Cell::Lstm;
        let state = BackwardState {
            gates: &saved[layout.gate_values + s * ngu..layout.gate_values + (s + 1) * ngu],
            h_prev: states(layout.h, s),
            c_prev: if lstm { states(layout.c, s) } else { &[] },
            c: if lstm { states(layout.c, s + 1) } else { &[] },
            recurrent_candidate: if options.cell == Cell::Gru {
                states(layout.recurrent_candidate, s)
            } else {
                &[]
            },
            dh: &*dh,
            dc: if lstm { &mut *dc } else { Default::default() },
            dp: &mut dp_all[time * gu..],
            dr: &mut dr_all[s * ngu..(s + 1) * ngu],
            back: &mut *back,
        };
        let step_mask = mask.map(|m| &m[time..]);
        kernels::step_backward(options.cell, squashes(&options), u, (step_mask, t), state);
        // dh_{t−1} += (dR_t · Rᵀ) ∘ keep, added to the direct and skipped paths above. Skipped
        // rows have dR = 0, so the product adds nothing to them.
        let dr_step = &dr_all[s * ngu..(s + 1) * ngu];
        match recurrent_mask {
            None => matmul(
                dr_step,
                Transpose::No,
                recurrent_kernel,
                Transpose::Yes,
                back,
                n,
                gu,
                u,
                true,
            ),
            Some(keep) => {
                matmul(
                    dr_step,
                    Transpose::No,
                    recurrent_kernel,
                    Transpose::Yes,
                    product,
                    n,
                    gu,
                    u,
                    false,
                );
                kernels::accumulate_zip(back, product, keep, |p, k| p * k);
            }
        }
        // The state gradient for the previous step.
        dh.copy_from_slice(back);
    }
    // The input projection's gradients, in one product each.
    let dp = &*dp_all;
    let x = inputs.get(operands.x).data();
    if let Some(dx) = targets.get(operands.x) {
        matmul(
            dp,
            Transpose::No,
            inputs.get(operands.kernel).data(),
            Transpose::Yes,
            dx,
            n * t,
            gu,
            features,
            true,
        );
    }
    if let Some(dkernel) = targets.get(operands.kernel) {
        matmul(x, Transpose::Yes, dp, Transpose::No, dkernel, features, n * t, gu, true);
    }
    let dr = &*dr_all;
    if let Some(drecurrent) = targets.get(operands.recurrent_kernel) {
        // Rows of dR are time-major, as the saved states h_{t−1} (or their dropped copies).
        let states = match operands.recurrent_mask {
            Some(_) => &saved[layout.dropped..layout.dropped + t * n * u],
            None => &saved[layout.h..layout.h + t * n * u],
        };
        matmul(
            states,
            Transpose::Yes,
            dr,
            Transpose::No,
            drecurrent,
            u,
            t * n,
            gu,
            true,
        );
    }
    if let Some(dbias) = operands.bias.and_then(|b| targets.get(b)) {
        for row in dp.chunks(gu) {
            dbias[..gu].iter_mut().zip(row).for_each(|(d, v)| *d += v);
        }
        if options.cell == Cell::Gru {
            for row in dr.chunks(gu) {
                dbias[gu..].iter_mut().zip(row).for_each(|(d, v)| *d += v);
            }
        }
    }
}
