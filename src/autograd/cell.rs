//! The settings of a recurrent operation: which [`Cell`], its [`Squash`] functions, and the
//! rest of [`RecurrentOptions`].

use super::scalar::sigmoid;
use crate::error::{Error, Result};

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

/// An elementwise function of a recurrent cell whose slope can be read from its output.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Squash {
    /// Hyperbolic tangent (slope `1 − y²`).
    Tanh,
    /// Logistic sigmoid (slope `y·(1 − y)`).
    Sigmoid,
    /// Keras 3's hard sigmoid, `relu6(x + 3) / 6` (slope 1/6 inside (0, 1)).
    HardSigmoid,
    /// `max(x, 0)`.
    Relu,
    /// Identity.
    Linear,
}

impl Squash {
    /// By Keras name.
    pub fn from_name(name: &str) -> Result<Self> {
        Ok(match name {
            "tanh" => Squash::Tanh,
            "sigmoid" => Squash::Sigmoid,
            "hard_sigmoid" => Squash::HardSigmoid,
            "relu" => Squash::Relu,
            "linear" => Squash::Linear,
            _ => {
                return Err(Error::unknown(
                    "recurrent activation",
                    name,
                    &["tanh", "sigmoid", "hard_sigmoid", "relu", "linear"],
                ));
            }
        })
    }

    pub(super) fn apply(self, x: f32) -> f32 {
        match self {
            Squash::Tanh => x.tanh(),
            Squash::Sigmoid => sigmoid(x),
            Squash::HardSigmoid => ((x + 3.0) / 6.0).clamp(0.0, 1.0),
            Squash::Relu => x.max(0.0),
            Squash::Linear => x,
        }
    }

    /// The slope at the input whose output is `y`.
    pub(super) fn slope(self, y: f32) -> f32 {
        match self {
            Squash::Tanh => 1.0 - y * y,
            Squash::Sigmoid => y * (1.0 - y),
            Squash::HardSigmoid => {
                if y > 0.0 && y < 1.0 {
                    1.0 / 6.0
                } else {
                    0.0
                }
            }
            Squash::Relu => {
                if y > 0.0 {
                    1.0
                } else {
                    0.0
                }
            }
            Squash::Linear => 1.0,
        }
    }
}

/// The fixed settings of one recurrent operation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RecurrentOptions {
    /// The cell.
    pub cell: Cell,
    /// Units (state size).
    pub units: usize,
    /// `φ`: the activation of the candidate and output (tanh).
    pub activation: Squash,
    /// `σ`: the gates' activation (sigmoid).
    pub recurrent_activation: Squash,
    /// Output every step `(N, T, units)` rather than the last `(N, units)`.
    pub return_sequences: bool,
    /// Process the steps from last to first.
    pub go_backwards: bool,
    /// With `go_backwards` and `return_sequences`, store each step's output at its input's
    /// position rather than in processing order (what `Bidirectional` wants).
    pub align_output: bool,
    /// Keras's `return_state`: the output is `(N, rows, units)` holding the sequence's rows
    /// (with `return_sequences`), then the final `h_T`, then the LSTM's final `c_T`; the layer
    /// slices its outputs from it, so the recurrence runs once.
    pub emit_states: bool,
}

impl RecurrentOptions {
    /// `(sequence_rows, state_rows)` of the output along its time axis for `t` steps: the
    /// sequence's rows come first, then `h_T` (and the LSTM's `c_T` with `emit_states`).
    pub fn output_rows(&self, t: usize) -> (usize, usize) {
        let sequence = if self.return_sequences { t } else { 0 };
        let states = match (self.emit_states, self.cell) {
            (true, Cell::Lstm) => 2,
            (true, _) => 1,
            (false, _) => usize::from(!self.return_sequences),
        };
        (sequence, states)
    }

    /// The output's shape for `n` sequences of `t` steps: `(N, units)` for the last step
    /// alone, `(N, rows, units)` otherwise.
    pub fn output_shape(&self, n: usize, t: usize) -> Vec<usize> {
        match self.output_rows(t) {
            (0, 1) if !self.emit_states => vec![n, self.units],
            (sequence, states) => vec![n, sequence + states, self.units],
        }
    }
}
