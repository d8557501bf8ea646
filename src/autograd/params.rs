//! [`ParamStore`]: a model's weights and their gradients, indexed densely by [`ParamId`].
//!
//! Values and gradients sit in two parallel vectors so a backward pass can read every weight
//! while writing every gradient, and an optimizer can walk both without hashing names.

use super::quantized_kernel::QuantizedKernel;
use crate::tensor::Tensor;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// The source of [`ParamStore::generation`] stamps, shared by every store in the process, so
/// two different weight sets never carry the same stamp (a store replaced by another one, a
/// model whose weights were loaded, still reads as changed).
static GENERATIONS: AtomicU64 = AtomicU64::new(1);

/// A penalty `l1·Σ|w| + l2·Σw²` that training adds to the loss for one weight. It is what a
/// regularizer (`crate::regularizers`, a module above this one) becomes once attached: plain
/// factors, so the tape can differentiate it without knowing regularizers.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Penalty {
    /// Factor of the sum of absolute values.
    pub l1: f32,
    /// Factor of the sum of squares.
    pub l2: f32,
}

/// Index of a parameter in its [`ParamStore`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ParamId(pub(crate) usize);

impl ParamId {
    /// The parameter's position in its store.
    pub fn index(self) -> usize {
        self.0
    }
}

/// Named weights (`dense/kernel`, `dense/bias`, ...) with a gradient buffer each.
#[derive(Clone, Debug, Default)]
pub struct ParamStore {
    names: Vec<String>,
    values: Vec<Tensor>,
    grads: Vec<Tensor>,
    trainable: Vec<bool>,
    penalties: Vec<Option<Penalty>>,
    /// Per parameter: its int8 form, once the model is quantized (shared, so cloning a store
    /// does not copy it).
    quantized: Vec<Option<Arc<QuantizedKernel>>>,
    /// A stamp that changes whenever any weight may have changed (see
    /// [`ParamStore::generation`]).
    generation: u64,
}

impl ParamStore {
    /// An empty store.
    pub fn new() -> Self {
        Self::default()
    }

    /// A stamp of the weights' current values: every way of changing a value (an optimizer
    /// step, loading, `value_mut`, quantizing, adding a weight) takes a fresh one from a
    /// process-wide counter. Inference caches what it derives from the weights (Winograd's
    /// transformed kernels, BatchNormalization folded into a convolution) under this stamp,
    /// and recomputes it when the stamp differs, so a cached value is never stale.
    pub fn generation(&self) -> u64 {
        self.generation
    }

    /// Marks the weights as (possibly) changed.
    fn touch(&mut self) {
        self.generation = GENERATIONS.fetch_add(1, Ordering::Relaxed);
    }

    /// Adds a parameter and returns its id. `name` becomes its key in saved files and summaries.
    pub fn add(&mut self, name: impl Into<String>, value: Tensor, trainable: bool) -> ParamId {
        self.touch();
        self.names.push(name.into());
        self.grads.push(Tensor::zeros(value.shape()));
        self.values.push(value);
        self.trainable.push(trainable);
        self.penalties.push(None);
        self.quantized.push(None);
        ParamId(self.values.len() - 1)
    }

    /// Attaches a penalty (a [`Regularizer`](crate::regularizers::Regularizer), or a
    /// [`Penalty`]) to a weight; training adds it to the loss.
    pub fn set_regularizer(&mut self, id: ParamId, regularizer: Option<impl Into<Penalty>>) {
        self.penalties[id.0] = regularizer.map(Into::into);
    }

    /// The penalty attached to a weight, if any.
    pub fn regularizer(&self, id: ParamId) -> Option<Penalty> {
        self.penalties[id.0]
    }

    /// The int8 form of a weight, if the model was quantized.
    pub fn quantized(&self, id: ParamId) -> Option<&QuantizedKernel> {
        self.quantized[id.0].as_deref()
    }

    /// Makes a weight int8: the products that read it use `kernel`, and its `f32` value becomes
    /// `kernel`'s dequantized values (what summaries count and an f32-only reader sees).
    pub fn set_quantized(&mut self, id: ParamId, kernel: QuantizedKernel) {
        self.touch();
        self.values[id.0] = kernel.dequantized();
        self.quantized[id.0] = Some(Arc::new(kernel));
    }

    /// Makes a weight `f32` again (a loaded `f32` value replaces its int8 form).
    pub(crate) fn clear_quantized(&mut self, id: ParamId) {
        self.touch();
        self.quantized[id.0] = None;
    }

    /// True when any weight is int8.
    pub fn is_quantized(&self) -> bool {
        self.quantized.iter().any(Option::is_some)
    }

    /// Number of parameters (tensors, not scalars).
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// True when the store holds no parameter.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// A parameter's value.
    pub fn value(&self, id: ParamId) -> &Tensor {
        &self.values[id.0]
    }

    /// A parameter's value, writable (to load or set weights).
    pub fn value_mut(&mut self, id: ParamId) -> &mut Tensor {
        self.touch();
        &mut self.values[id.0]
    }

    /// A parameter's gradient from the last backward pass.
    pub fn grad(&self, id: ParamId) -> &Tensor {
        &self.grads[id.0]
    }

    /// A parameter's name.
    pub fn name(&self, id: ParamId) -> &str {
        &self.names[id.0]
    }

    /// Whether the optimizer updates this parameter.
    pub fn is_trainable(&self, id: ParamId) -> bool {
        self.trainable[id.0]
    }

    /// Freezes (`false`) or unfreezes a parameter: backward passes compute no gradient for a
    /// frozen one and optimizers neither update it nor keep state for it. A model sets these
    /// from its layers' `trainable` flags when it is compiled.
    pub fn set_trainable(&mut self, id: ParamId, trainable: bool) {
        self.trainable[id.0] = trainable;
    }

    /// All ids, in the order the parameters were added.
    pub fn ids(&self) -> impl Iterator<Item = ParamId> + use<> {
        (0..self.values.len()).map(ParamId)
    }

    /// Total number of scalar weights, and how many of them are trainable.
    pub fn counts(&self) -> (usize, usize) {
        let total = self.values.iter().map(Tensor::len).sum();
        let trainable = self
            .values
            .iter()
            .zip(&self.trainable)
            .filter(|(_, t)| **t)
            .map(|(v, _)| v.len())
            .sum();
        (total, trainable)
    }

    /// Every value with its gradient and trainable flag, for an optimizer step.
    pub(crate) fn values_and_grads_mut(&mut self) -> (&mut [Tensor], &[Tensor], &[bool]) {
        self.touch();
        (&mut self.values, &self.grads, &self.trainable)
    }

    /// Every value, in id order.
    pub(crate) fn values_slice(&self) -> &[Tensor] {
        &self.values
    }

    /// Values to read and gradients to write during a backward pass.
    pub(crate) fn split_for_backward(&mut self) -> (&[Tensor], &mut [Tensor]) {
        (&self.values, &mut self.grads)
    }
}

impl ParamStore {
    /// Overwrites a gradient (tests of optimizers set gradients by hand).
    #[doc(hidden)]
    pub fn set_grad_for_test(&mut self, id: ParamId, grad: &[f32]) {
        self.grads[id.0].data_mut().copy_from_slice(grad);
    }
}
