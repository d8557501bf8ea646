//! The [`Tape`] (storage reused across passes) and the [`Graph`] that records a forward pass
//! on it. The backward pass is in `backward.rs`; the operations, in the rule files.

use super::buffers::Inputs;
use super::op::{Op, Var};
use super::params::{ParamId, ParamStore};
use super::profile;
use super::quantized_kernel::Int8Value;
use super::recycle::{Recycling, note_read};
use crate::tensor::Tensor;

/// Storage for one forward/backward pass, reused across passes.
#[derive(Debug, Default)]
pub struct Tape {
    pub(super) ops: Vec<Op>,
    pub(super) values: Vec<Tensor>,
    pub(super) grads: Vec<Tensor>,
    /// Per-operation state a backward rule needs (softmax probabilities, masks).
    pub(super) saved: Vec<Tensor>,
    /// Per-operation working memory of backward rules, kept so a step does not allocate.
    pub(super) scratch: Vec<Tensor>,
    pub(super) requires_grad: Vec<bool>,
    pub(super) grad_live: Vec<bool>,
    /// Per parameter: whether a backward rule has written its gradient in this pass (parameter
    /// gradients are cleared lazily too, see [`Tape::backward`]).
    pub(super) param_grad_live: Vec<bool>,
    /// Per value: how many recorded operations read it (counted by each backward pass).
    pub(super) readers: Vec<u32>,
    /// Per value: the max-pooling node folded into this value's (a convolution's) backward
    /// rule in the last backward pass, or [`NOT_FOLDED`]; its gradient is never written.
    pub(super) folded_pool: Vec<usize>,
    /// What [`Tape::grad`] shows for a gradient that was folded away.
    pub(super) empty: Tensor,
    /// Batch normalizations of the last training pass whose moving statistics await an update.
    pub(super) moving_updates: Vec<MovingUpdate>,
    /// Keras's masks of this pass: `(value, mask)`, the mask `(N, T)` marking which steps of a
    /// sequence value are real (1) or padding (0).
    pub(super) masks: Vec<(Var, Var)>,
    /// Per value: `(key, weights generation)` when its value (a constant) or saved state (a
    /// convolution's transformed kernel) was derived from the weights alone, under a key
    /// that names what was derived; a later pass recording the same key at the same position
    /// under the same generation reuses it instead of recomputing it (see
    /// [`Graph::push_cached`]).
    pub(super) cache_keys: Vec<Option<(u64, u64)>>,
    /// Values of this pass kept as int8 between the int8 layers of a calibrated model (their
    /// `f32` form is not written; see `quantized.rs`).
    pub(super) int8_values: Vec<(Var, Int8Value)>,
    /// Buffers handed on between the values of inference passes (see `recycle.rs`).
    pub(super) recycling: Recycling,
}

/// `Tape::folded_pool` of a value whose backward rule runs on its own.
pub(super) const NOT_FOLDED: usize = usize::MAX;

/// A batch normalization whose batch statistics should update the moving ones after the pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct MovingUpdate {
    /// The normalization's position on the tape; its saved state holds `[mean, var, inv_std]`.
    pub(crate) node: usize,
    pub(crate) moving_mean: ParamId,
    pub(crate) moving_variance: ParamId,
    pub(crate) momentum: f32,
}

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
    pub(super) tape: &'a mut Tape,
    pub(super) params: &'a ParamStore,
    training: bool,
    gradients: bool,
    noise_seed: u64,
}

impl<'a> Graph<'a> {
    /// Starts a new pass on `tape`, forgetting what it recorded before (but keeping its buffers).
    /// `training` switches layers such as Dropout between their training and inference behaviour.
    pub fn new(tape: &'a mut Tape, params: &'a ParamStore, training: bool) -> Self {
        tape.ops.clear();
        tape.moving_updates.clear();
        tape.masks.clear();
        tape.int8_values.clear();
        tape.recycling.stop();
        if training {
            tape.recycling.forget();
        }
        Graph {
            tape,
            params,
            training,
            gradients: true,
            noise_seed: 0,
        }
    }

    /// Records a pass no gradient will be asked of (`predict`, `evaluate`): no parameter
    /// requires a gradient, so kernels may keep inference-only forms of the weights (packed
    /// kernels) instead of what a backward pass would read.
    pub fn without_gradients(mut self) -> Self {
        self.gradients = false;
        self
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
        crate::rng::Rng::new(self.noise_key(salt))
    }

    /// The key of this pass's noise for the layer salted `salt`: the seed of
    /// [`Graph::noise_rng`], and of counter-based draws such as dropout masks.
    pub fn noise_key(&self, salt: u64) -> u64 {
        crate::rng::mix(self.noise_seed, salt)
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

    /// Gives `to` the mask of `from`, if it has one: for layers that keep a sequence's steps
    /// (Dense, Dropout, LayerNormalization, merges), as Keras's `supports_masking` layers do.
    pub fn pass_mask(&mut self, from: Var, to: Var) {
        if let Some(mask) = self.mask(from)
            && self.mask(to).is_none()
        {
            self.set_mask(to, mask);
        }
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
        self.tape.recycling.read(var, self.tape.ops.len());
        self.tape.value(var, self.params)
    }

    /// Makes this (inference) pass hand the buffers of values it no longer reads on to the
    /// values it computes next (see `recycle.rs`). `key` names what decides the pass's
    /// operations (input shapes, plan, weights): the first pass under a key learns when each
    /// value is last read, later ones under the same key recycle. Call
    /// [`Graph::finish_recycling`] when the pass is done.
    pub(crate) fn recycle_buffers(&mut self, key: u64) {
        self.tape.recycling.begin(key);
    }

    /// Ends a pass started with [`Graph::recycle_buffers`]; `outputs` are the values read after
    /// it, which are never released.
    pub(crate) fn finish_recycling(&mut self, outputs: &[Var]) {
        let tape = &mut *self.tape;
        let kept = |var: usize| outputs.contains(&Var(var)) || keeps_own_buffer(&tape.ops[var]);
        tape.recycling.finish(tape.ops.len(), kept);
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
    pub(super) fn push(
        &mut self,
        op: Op,
        shape: &[usize],
        compute: impl FnOnce(&Inputs, &mut Tensor, &mut Tensor),
    ) -> Var {
        self.push_cached(op, shape, None, |inputs, out, saved, _| compute(inputs, out, saved))
    }

    /// [`Graph::push`] for an operation part of whose result depends on the weights alone:
    /// `key` (when given) names that part. `compute` is told whether the node at this
    /// position recorded the same key under the same weights generation in an earlier pass,
    /// in which case what it derived then (in its output or saved state) is still there and
    /// still right, and need not be computed again.
    pub(super) fn push_cached(
        &mut self,
        op: Op,
        shape: &[usize],
        key: Option<u64>,
        compute: impl FnOnce(&Inputs, &mut Tensor, &mut Tensor, bool),
    ) -> Var {
        self.push_entry(op, Some(shape), key, compute)
    }

    /// [`Graph::push_cached`], where `shape` may be left to `compute` (`None`): the output then
    /// keeps its buffer as the last pass left it until `compute` resizes it, so a fill of the
    /// same size writes over it instead of first clearing the values it grows back.
    fn push_entry(
        &mut self,
        op: Op,
        shape: Option<&[usize]>,
        key: Option<u64>,
        compute: impl FnOnce(&Inputs, &mut Tensor, &mut Tensor, bool),
    ) -> Var {
        let generation = self.params.generation();
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
            tape.cache_keys.push(None);
        }
        let key = key.map(|key| (key, generation));
        let cached = key.is_some() && tape.cache_keys[index] == key;
        // Forgotten while `compute` runs: a panic there leaves nothing half-written marked
        // as reusable.
        tape.cache_keys[index] = None;
        let requires_grad = match op {
            Op::Constant => false,
            Op::Param(id) => self.gradients && self.params.is_trainable(id),
            _ => op.inputs().into_iter().flatten().any(|v| tape.requires_grad[v.0]),
        };
        tape.requires_grad[index] = requires_grad;
        let recyclable = !keeps_own_buffer(&op);
        let len = shape.map_or(0, crate::tensor::numel);
        tape.recycling.before(index, len, &mut tape.values, recyclable);
        let (before, rest) = tape.values.split_at_mut(index);
        let out = &mut rest[0];
        if let Some(shape) = shape {
            out.resize_for(shape);
        }
        let reads = tape.recycling.read_times();
        let inputs = Inputs {
            values: before,
            ops: &tape.ops,
            params: self.params.values_slice(),
            reads,
            now: index,
        };
        profile::time_node(op.name(), index, shape.unwrap_or_default(), || {
            compute(&inputs, out, &mut tape.saved[index], cached)
        });
        if let Some(times) = reads {
            for var in op.inputs().into_iter().flatten() {
                note_read(times, var, index);
            }
        }
        tape.cache_keys[index] = key;
        tape.ops.push(op);
        Var(index)
    }

    /// Records a constant (an input batch, targets): no gradient flows into it.
    pub fn constant(&mut self, value: &Tensor) -> Var {
        self.push(Op::Constant, value.shape(), |_, out, _| out.copy_from(value))
    }

    /// Records a constant filled in place by `fill`, which sets its shape, reusing the tape's
    /// buffer (no allocation once the tape has warmed up, and no clearing of a buffer that
    /// `fill` writes over: a training step's dropout masks and input batch).
    pub fn constant_with(&mut self, fill: impl FnOnce(&mut Tensor)) -> Var {
        self.push_entry(Op::Constant, None, None, |_, out, _, _| fill(out))
    }

    /// Records a constant computed by `fill` from the weights alone (a folded kernel): `key`
    /// names what it is, and while the weights keep their generation a later pass recording
    /// the same key at the same position keeps the value instead of calling `fill` again.
    pub(crate) fn weights_constant(&mut self, key: u64, shape: &[usize], fill: impl FnOnce(&mut [f32])) -> Var {
        self.push_cached(Op::Constant, shape, Some(key), |_, out, _, cached| {
            if !cached {
                fill(out.data_mut());
            }
        })
    }

    /// The cache key of `var`'s value when it was derived from the current weights alone
    /// ([`Graph::weights_constant`]), or its parameter's for a parameter: what an operation
    /// reading it mixes into its own key.
    pub(crate) fn weights_key(&self, var: Var) -> Option<u64> {
        match self.tape.ops[var.0] {
            Op::Param(id) => Some(crate::rng::mix(0x5041_5241_4d00, id.0 as u64)),
            Op::Constant => {
                let (key, generation) = self.tape.cache_keys[var.0]?;
                (generation == self.params.generation()).then_some(crate::rng::mix(key, var.0 as u64))
            }
            _ => None,
        }
    }

    /// Whether `var` is a parameter or a constant: a value whose buffer the tape keeps, never
    /// handed on to a later operation.
    pub(crate) fn is_weight(&self, var: Var) -> bool {
        keeps_own_buffer(&self.tape.ops[var.0])
    }

    /// Whether a backward pass may ask for a gradient through any of `vars`.
    pub(crate) fn any_requires_grad(&self, vars: impl IntoIterator<Item = Option<Var>>) -> bool {
        vars.into_iter().flatten().any(|v| self.tape.requires_grad[v.0])
    }

    /// Records a use of a model parameter. Its gradient goes to the [`ParamStore`].
    pub fn param(&mut self, id: ParamId) -> Var {
        // Parameters are read from the store, so the node keeps no copy of the value.
        self.push(Op::Param(id), &[0], |_, _, _| {})
    }
}

/// Whether a recorded value stays out of buffer recycling (`recycle.rs`): parameters are read
/// from the store, and constants (input batches, values cached from the weights) keep their
/// buffers between passes.
fn keeps_own_buffer(op: &Op) -> bool {
    matches!(op, Op::Param(_) | Op::Constant)
}
