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

mod concat;
mod conv;
mod embedding;
mod losses;
mod normalization;
mod ops;
mod params;
pub mod profile;
mod recurrent;

#[doc(hidden)]
pub mod gradcheck;

pub use conv::WindowOptions;
pub(crate) use conv::window as conv_window;
pub use normalization::Statistics;
pub(crate) use ops::Op;
pub use ops::UnaryOp;
pub use params::{ParamId, ParamStore};
pub use recurrent::{Cell, RecurrentInputs, RecurrentOptions, Squash};

use crate::tensor::Tensor;

/// A handle to one recorded value on the tape.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Var(pub(crate) usize);

/// Storage for one forward/backward pass, reused across passes.
#[derive(Debug, Default)]
pub struct Tape {
    ops: Vec<Op>,
    values: Vec<Tensor>,
    grads: Vec<Tensor>,
    /// Per-operation state a backward rule needs (softmax probabilities, masks).
    saved: Vec<Tensor>,
    /// Per-operation working memory of backward rules, kept so a step does not allocate.
    scratch: Vec<Tensor>,
    requires_grad: Vec<bool>,
    grad_live: Vec<bool>,
    /// Per parameter: whether a backward rule has written its gradient in this pass (parameter
    /// gradients are cleared lazily too, see [`Tape::backward`]).
    param_grad_live: Vec<bool>,
    /// Per value: how many recorded operations read it (counted by each backward pass).
    readers: Vec<u32>,
    /// Per value: the max-pooling node folded into this value's (a convolution's) backward
    /// rule in the last backward pass, or [`NOT_FOLDED`]; its gradient is never written.
    folded_pool: Vec<usize>,
    /// What [`Tape::grad`] shows for a gradient that was folded away.
    empty: Tensor,
    /// Batch normalizations of the last training pass whose moving statistics await an update.
    moving_updates: Vec<normalization::MovingUpdate>,
    /// Keras's masks of this pass: `(value, mask)`, the mask `(N, T)` marking which steps of a
    /// sequence value are real (1) or padding (0).
    masks: Vec<(Var, Var)>,
}

/// `Tape::folded_pool` of a value whose backward rule runs on its own.
const NOT_FOLDED: usize = usize::MAX;

impl Tape {
    /// An empty tape.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of a recorded operation (parameters are read from `params`).
    pub fn value<'a>(&'a self, var: Var, params: &'a ParamStore) -> &'a Tensor {
        match self.ops[var.0] {
            Op::Param(id) => params.value(id),
            _ => &self.values[var.0],
        }
    }

    /// Fills the gradient of every parameter that `loss` depends on with `d loss / d param`.
    ///
    /// `loss` must be a one-element value recorded on this tape since the last [`Graph::new`].
    /// Gradients are computed afresh (not accumulated across calls), as Keras does.
    pub fn backward(&mut self, loss: Var, params: &mut ParamStore) {
        let (param_values, param_grads) = params.split_for_backward();
        // Gradient buffers, the parameters' included, are cleared when a backward rule first
        // asks for them (or not at all when the rule overwrites every element, as a Dense
        // layer's kernel gradient does), not here: one pass over memory fewer, and no writes
        // from this thread to memory another thread's share of a product then fills.
        self.param_grad_live.clear();
        self.param_grad_live.resize(param_grads.len(), true);
        profile::time("zero_grads", true, || {
            for i in 0..=loss.0 {
                self.grad_live[i] = false;
                match self.ops[i] {
                    Op::Param(id) => self.param_grad_live[id.0] = false,
                    // Values and gradients are separate vectors, so no copy of the shape.
                    _ if self.requires_grad[i] => self.grads[i].resize_for(self.values[i].shape()),
                    _ => {}
                }
            }
        });
        self.folded_pool[..=loss.0].fill(NOT_FOLDED);
        if !self.requires_grad[loss.0] {
            self.clear_unreached_grads(loss, param_grads);
            return;
        }
        self.readers[..=loss.0].fill(0);
        for op in &self.ops[..=loss.0] {
            for input in op.inputs().into_iter().flatten() {
                self.readers[input.0] += 1;
            }
        }
        self.grads[loss.0].data_mut().fill(1.0);
        self.grad_live[loss.0] = true;
        for i in (0..=loss.0).rev() {
            if !self.grad_live[i] {
                continue;
            }
            let op = self.ops[i];
            // A max pooling that is the only reader of a convolution's output hands its
            // gradient straight to the convolution's rule, which rebuilds its own output
            // gradient from it row by row instead of reading one from memory.
            if let Op::MaxPool2d { x, window } = op
                && self.readers[x.0] == 1
                && conv::pool_folds_into(self.ops[x.0], &window, self.input_needs_grad(x))
            {
                self.folded_pool[x.0] = i;
                self.grad_live[x.0] = true;
                continue;
            }
            let (grads_before, grads_rest) = self.grads.split_at_mut(i);
            let inputs = Inputs {
                values: &self.values,
                ops: &self.ops,
                params: param_values,
            };
            let mut targets = GradTargets {
                node_grads: grads_before,
                live: &mut self.grad_live[..i],
                requires_grad: &self.requires_grad,
                ops: &self.ops,
                param_grads,
                param_live: &mut self.param_grad_live,
            };
            let node = Node {
                value: &self.values[i],
                saved: &self.saved[i],
                grad: &grads_rest[0],
            };
            let scratch = &mut self.scratch[i];
            let folded = self.folded_pool[i];
            profile::time(op.name(), true, || {
                if folded == NOT_FOLDED {
                    return ops::backward(op, &inputs, node, &mut targets, scratch);
                }
                let pool = Node {
                    value: &self.values[folded],
                    saved: &self.saved[folded],
                    grad: &grads_rest[folded - i],
                };
                conv::conv2d_pooled_backward(op, self.ops[folded], &inputs, node, pool, &mut targets, scratch)
            });
        }
        self.clear_unreached_grads(loss, param_grads);
    }

    /// Whether the first input of `var`'s operation (a convolution's image) needs a gradient.
    fn input_needs_grad(&self, var: Var) -> bool {
        self.ops[var.0].inputs()[0].is_some_and(|input| self.requires_grad[input.0])
    }

    /// Zeros the gradient buffers no backward rule reached, so [`Tape::grad`] and the
    /// parameters' gradients read zeros there.
    fn clear_unreached_grads(&mut self, loss: Var, param_grads: &mut [Tensor]) {
        for i in 0..=loss.0 {
            match self.ops[i] {
                Op::Param(id) if !self.param_grad_live[id.0] => {
                    param_grads[id.0].data_mut().fill(0.0);
                    self.param_grad_live[id.0] = true;
                }
                Op::Param(_) => {}
                _ if self.requires_grad[i] && !self.grad_live[i] => self.grads[i].data_mut().fill(0.0),
                _ => {}
            }
        }
    }

    /// The gradient of a recorded, non-parameter value after [`Tape::backward`]
    /// (zeros where nothing flowed). Empty for the output of a convolution read only by a max
    /// pooling whose gradient the backward pass folded into the convolution's rule: that
    /// gradient is never materialized.
    pub fn grad(&self, var: Var) -> &Tensor {
        if self.folded_pool.get(var.0).is_some_and(|&pool| pool != NOT_FOLDED) {
            return &self.empty;
        }
        &self.grads[var.0]
    }
}

/// A forward pass in progress: records operations on a [`Tape`], reading weights from a
/// [`ParamStore`]. Layers build their outputs by calling its operations.
pub struct Graph<'a> {
    tape: &'a mut Tape,
    params: &'a ParamStore,
    training: bool,
    noise_seed: u64,
}

impl<'a> Graph<'a> {
    /// Starts a new pass on `tape`, forgetting what it recorded before (but keeping its buffers).
    /// `training` switches layers such as Dropout between their training and inference behaviour.
    pub fn new(tape: &'a mut Tape, params: &'a ParamStore, training: bool) -> Self {
        tape.ops.clear();
        tape.moving_updates.clear();
        tape.masks.clear();
        Graph {
            tape,
            params,
            training,
            noise_seed: 0,
        }
    }

    /// Sets the seed random layers (Dropout, GaussianNoise) draw this pass's noise from. The
    /// model derives it from its seed and the optimizer's step count, so a resumed run draws
    /// the same masks as an uninterrupted one.
    pub fn with_noise_seed(mut self, seed: u64) -> Self {
        self.noise_seed = seed;
        self
    }

    /// A generator for one random layer in this pass: the pass's noise seed mixed with the
    /// layer's own `salt` (its seed, or a hash of its name), so layers draw independent noise.
    pub fn noise_rng(&self, salt: u64) -> crate::rng::Rng {
        crate::rng::Rng::new(crate::rng::mix(self.noise_seed, salt))
    }

    /// Attaches a sequence mask `(N, T)` (1 for real steps, 0 for padding) to `value`, as
    /// Keras's `Embedding(mask_zero=True)` does; layers that read sequences skip masked steps.
    pub fn set_mask(&mut self, value: Var, mask: Var) {
        self.tape.masks.push((value, mask));
    }

    /// The mask attached to `value`, if any.
    pub fn mask(&self, value: Var) -> Option<Var> {
        self.tape.masks.iter().find(|(v, _)| *v == value).map(|&(_, m)| m)
    }

    /// True in a training pass.
    pub fn training(&self) -> bool {
        self.training
    }

    /// The weights this pass reads.
    pub fn params(&self) -> &ParamStore {
        self.params
    }

    /// The value a [`Var`] holds.
    pub fn value(&self, var: Var) -> &Tensor {
        self.tape.value(var, self.params)
    }

    /// The shape of a [`Var`]'s value.
    pub fn shape(&self, var: Var) -> &[usize] {
        self.value(var).shape()
    }

    /// The shape of a [`Var`]'s value as an owned copy that stays off the heap (up to rank 6),
    /// for operations that hold an input's shape while they record themselves.
    pub(crate) fn dims(&self, var: Var) -> crate::tensor::Dims {
        crate::tensor::Dims::from_slice(self.shape(var))
    }

    /// The operation that produced `var`.
    pub(crate) fn op(&self, var: Var) -> Op {
        self.tape.ops[var.0]
    }

    /// Records a new operation whose output has `shape`; `compute` fills the output (and any
    /// state saved for backward) from the inputs' values.
    fn push(&mut self, op: Op, shape: &[usize], compute: impl FnOnce(&Inputs, &mut Tensor, &mut Tensor)) -> Var {
        let tape = &mut *self.tape;
        let index = tape.ops.len();
        if index == tape.values.len() {
            tape.values.push(Tensor::default());
            tape.grads.push(Tensor::default());
            tape.saved.push(Tensor::default());
            tape.scratch.push(Tensor::default());
            tape.requires_grad.push(false);
            tape.grad_live.push(false);
            tape.readers.push(0);
            tape.folded_pool.push(NOT_FOLDED);
        }
        let requires_grad = match op {
            Op::Constant => false,
            Op::Param(id) => self.params.is_trainable(id),
            _ => op.inputs().into_iter().flatten().any(|v| tape.requires_grad[v.0]),
        };
        tape.requires_grad[index] = requires_grad;
        let (before, rest) = tape.values.split_at_mut(index);
        let out = &mut rest[0];
        out.resize_for(shape);
        let inputs = Inputs {
            values: before,
            ops: &tape.ops,
            params: self.params.values_slice(),
        };
        profile::time(op.name(), false, || compute(&inputs, out, &mut tape.saved[index]));
        tape.ops.push(op);
        Var(index)
    }

    /// Records a constant (an input batch, targets): no gradient flows into it.
    pub fn constant(&mut self, value: &Tensor) -> Var {
        self.push(Op::Constant, value.shape(), |_, out, _| out.copy_from(value))
    }

    /// Records a constant filled in place by `fill`, reusing the tape's buffer (no allocation
    /// once the tape has warmed up).
    pub fn constant_with(&mut self, fill: impl FnOnce(&mut Tensor)) -> Var {
        self.push(Op::Constant, &[], |_, out, _| fill(out))
    }

    /// `loss` plus the penalty of every regularized weight, as Keras adds `model.losses`.
    pub fn add_penalties(&mut self, mut loss: Var) -> crate::error::Result<Var> {
        for index in 0..self.params.len() {
            if let Some(regularizer) = self.params.regularizer(ParamId(index)) {
                let weight = self.param(ParamId(index));
                let penalty = self.penalty(weight, regularizer.l1, regularizer.l2);
                loss = self.add(loss, penalty)?;
            }
        }
        Ok(loss)
    }

    /// Records a use of a model parameter. Its gradient goes to the [`ParamStore`].
    pub fn param(&mut self, id: ParamId) -> Var {
        // Parameters are read from the store, so the node keeps no copy of the value.
        self.push(Op::Param(id), &[0], |_, _, _| {})
    }
}

/// Read access to the values of already-recorded operations, parameters included.
pub(crate) struct Inputs<'a> {
    values: &'a [Tensor],
    ops: &'a [Op],
    params: &'a [Tensor],
}

impl Inputs<'_> {
    fn get(&self, var: Var) -> &Tensor {
        match self.ops[var.0] {
            Op::Param(id) => &self.params[id.0],
            _ => &self.values[var.0],
        }
    }
}

/// The operation being differentiated: its output value, saved state and output gradient.
pub(crate) struct Node<'a> {
    value: &'a Tensor,
    saved: &'a Tensor,
    grad: &'a Tensor,
}

/// Where a backward rule adds its input gradients: an earlier node's buffer or a parameter's.
pub(crate) struct GradTargets<'a> {
    node_grads: &'a mut [Tensor],
    live: &'a mut [bool],
    requires_grad: &'a [bool],
    ops: &'a [Op],
    param_grads: &'a mut [Tensor],
    param_live: &'a mut [bool],
}

impl GradTargets<'_> {
    /// The gradient buffers of several values at once, for backward rules that fill them in
    /// one pass: `None` where no gradient is wanted, and for a value already asked for earlier
    /// in `vars`. A buffer comes with `true` when nothing has been added to it yet this pass:
    /// its contents are then stale, and the rule must overwrite every element (or clear it).
    fn get_many<const N: usize>(&mut self, vars: [Option<Var>; N]) -> [Option<(&mut [f32], bool)>; N] {
        let (mut nodes, mut params) = ([None; N], [None; N]);
        let mut fresh = [false; N];
        for (slot, var) in vars.iter().enumerate() {
            let Some(var) = *var else { continue };
            if !self.requires_grad[var.0] {
                continue;
            }
            match self.ops[var.0] {
                Op::Param(id) if !params.contains(&Some(id.0)) => {
                    fresh[slot] = !self.param_live[id.0];
                    self.param_live[id.0] = true;
                    params[slot] = Some(id.0);
                }
                Op::Param(_) => {}
                _ if !nodes.contains(&Some(var.0)) => {
                    fresh[slot] = !self.live[var.0];
                    self.live[var.0] = true;
                    nodes[slot] = Some(var.0);
                }
                _ => {}
            }
        }
        let mut grads = [const { None }; N];
        let tensors =
            (self.node_grads.iter_mut().enumerate()).map(|(i, t)| (nodes.iter().position(|&n| n == Some(i)), t));
        let params =
            (self.param_grads.iter_mut().enumerate()).map(|(i, t)| (params.iter().position(|&p| p == Some(i)), t));
        for (slot, tensor) in tensors.chain(params) {
            if let Some(slot) = slot {
                grads[slot] = Some((tensor.data_mut(), fresh[slot]));
            }
        }
        grads
    }

    /// The gradient buffer of `var` and whether it is fresh (see [`GradTargets::get_many`]).
    fn get_fresh(&mut self, var: Var) -> Option<(&mut [f32], bool)> {
        let [grad] = self.get_many([Some(var)]);
        grad
    }

    /// The gradient buffer to add into for `var` (cleared when first asked for in a pass), or
    /// `None` when no gradient is wanted there.
    fn get(&mut self, var: Var) -> Option<&mut [f32]> {
        if !self.requires_grad[var.0] {
            return None;
        }
        match self.ops[var.0] {
            Op::Param(id) => {
                let grad = self.param_grads[id.0].data_mut();
                if !self.param_live[id.0] {
                    crate::kernels::fill(grad, 0.0);
                    self.param_live[id.0] = true;
                }
                Some(grad)
            }
            _ => {
                let grad = self.node_grads[var.0].data_mut();
                if !self.live[var.0] {
                    crate::kernels::fill(grad, 0.0);
                    self.live[var.0] = true;
                }
                Some(grad)
            }
        }
    }
}
