//! Reverse-mode automatic differentiation on a reusable tape.
//!
//! A forward pass records operations on a [`Graph`], which borrows a [`Tape`] (the storage)
//! and the model's [`ParamStore`] (the weights). Each operation returns a [`Var`], a handle to
//! its output. [`Tape::backward`] then walks the record in reverse and adds every operation's
//! input gradients, ending in the parameters' gradient buffers.
//!
//! The tape keeps its buffers between steps: the n-th operation of a step reuses the n-th
//! operation's buffers of the previous one, so a training loop whose shapes do not change stops
//! allocating after its first step.
//!
//! ```
//! use strata::autograd::{Graph, ParamStore, Tape};
//! use strata::Tensor;
//!
//! let mut params = ParamStore::new();
//! let w = params.add("w", Tensor::from_slice(&[3.0]), true);
//! let mut tape = Tape::new();
//! let loss = {
//!     let mut g = Graph::new(&mut tape, &params, true);
//!     let w = g.param(w);
//!     let x = g.constant(&Tensor::from_slice(&[2.0]));
//!     let y = g.mul(w, x).unwrap(); // y = w·x
//!     g.sum(y)
//! };
//! tape.backward(loss, &mut params);
//! assert_eq!(params.grad(w).data(), &[2.0]); // dy/dw = x
//! ```
//!
//! The files, lowest first (each names only those before it): `scalar` (shared maths),
//! `pointwise`, `cell`, `quantized_kernel` (int8 weights), `params`, `profile` → `op` (what the
//! tape records) → `buffers`, `tape` (the storage and [`Graph`]) → the rule files, each an
//! operation's forward next to its backward (`ops`, `losses`, `attention`, `conv`,
//! `conv_transpose`, `depthwise`, `normalization`, `fold`, `recurrent`, `concat`, `embedding`,
//! `sequence`, `spatial`; `quantized` and `inverted_residual`, forward only) → `backward`
//! ([`Tape::backward`] and the dispatch from an operation to its rule).

mod attention;
mod backward;
mod buffers;
mod cell;
mod concat;
mod conv;
mod conv_transpose;
mod depthwise;
mod embedding;
mod fold;
mod inverted_residual;
mod losses;
mod normalization;
mod op;
mod ops;
mod params;
mod permute;
mod pointwise;
mod pointwise_conv;
pub mod profile;
mod quantized;
mod quantized_kernel;
mod recurrent;
mod recycle;
mod scalar;
mod sequence;
mod spatial;
mod tape;

#[doc(hidden)]
pub mod gradcheck;

pub use cell::{Cell, RecurrentOptions, Squash};
pub use conv::WindowOptions;
pub(crate) use conv::window as conv_window;
pub(crate) use conv_transpose::transpose_window;
pub use fold::FoldedNorm;
pub(crate) use fold::folded_width;
pub(crate) use inverted_residual::{BlockVars, PointwiseVars};
pub(crate) use op::Op;
pub use op::{AttentionOptions, RecurrentInputs, Statistics, Var};
pub use params::{ParamId, ParamStore, Penalty};
pub use pointwise::UnaryOp;
pub(crate) use quantized::int8_pool_folds;
pub use quantized_kernel::{ActivationScale, QuantizedKernel, ScaleAxis};
pub use spatial::Sides;
pub use tape::{Graph, Tape};
