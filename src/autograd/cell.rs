//! The settings of a recurrent operation: which [`Cell`], its [`Squash`] functions (both
//! defined in `kernels`, which runs the steps), and the rest of [`RecurrentOptions`].

use crate::error::{Error, Result};

// The cell kinds and their functions are compute concepts (`kernels` runs the steps); the
// layers name them from here.
pub use crate::kernels::{Cell, Squash};

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
