//! `predict`: the model's outputs for new inputs, in batches.
//!
//! A single-sample call (a service answering one request) is a few microseconds of arithmetic,
//! so what it costs around the layers counts: the call allocates only the tensors it returns,
//! and the inference plan is rebuilt only when the weights changed (see `inference.rs`).

use super::Model;
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result, keras_shape};
use crate::limits;
use crate::tensor::{Tensor, checked_numel};
use smallvec::SmallVec;

/// Outputs up to this size are allocated without asking the memory budget.
const SMALL_OUTPUT_BYTES: u64 = 1 << 20;

/// One tensor per model output, kept off the heap for the usual one or two.
type Outputs = SmallVec<[Tensor; 2]>;

impl Model {
    /// The model's outputs for `x`, computed in batches of `batch_size`, as Keras's `predict`.
    /// A model with several inputs or outputs uses [`Model::predict_multi`].
    pub fn predict(&mut self, x: &Tensor, batch_size: usize) -> Result<Tensor> {
        if self.network.outputs.len() > 1 {
            return Err(Error::Usage(format!(
                "the model has {} outputs ({}): use predict_multi, which returns one tensor per output",
                self.network.outputs.len(),
                self.output_names().join(", ")
            )));
        }
        let outputs = self.predict_outputs(&[x], batch_size)?;
        outputs
            .into_iter()
            .next()
            .ok_or_else(|| Error::Usage("the model has no output".into()))
    }

    /// The model's outputs for inputs `xs` (one per model input), one tensor per output.
    pub fn predict_multi(&mut self, xs: &[&Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        self.predict_outputs(xs, batch_size).map(SmallVec::into_vec)
    }

    /// [`Model::predict_multi`] without its `Vec`.
    fn predict_outputs(&mut self, xs: &[&Tensor], batch_size: usize) -> Result<Outputs> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        self.check_inputs(xs)?;
        // Large batches split their products over the pool from this thread, without hand-offs.
        crate::kernels::enter_pool();
        let rows = xs[0].rows();
        // Each output's shape and values, filled batch by batch; sized (and checked against
        // the memory budget) before the first batch runs.
        let mut results: SmallVec<[(Vec<usize>, Vec<f32>); 2]> = SmallVec::new();
        for &call in &self.network.outputs {
            let sample = self.network.output_shapes.get(call).map_or(&[][..], Vec::as_slice);
            let mut shape = Vec::with_capacity(sample.len() + 1);
            shape.push(rows);
            shape.extend_from_slice(sample);
            let len = checked_numel(&shape);
            let bytes = len.and_then(limits::f32_bytes);
            // Reading the budget costs a lock and an environment look-up: asked only where an
            // output could be large.
            if bytes.is_none_or(|bytes| bytes > SMALL_OUTPUT_BYTES) {
                limits::check_memory(
                    || format!("predict's output {} for {rows} samples", keras_shape(sample)),
                    bytes,
                )?;
            }
            results.push((shape, Vec::with_capacity(len.unwrap_or(0))));
        }
        self.check_batch_memory(batch_size.min(rows), false, "predict")?;
        self.update_inference_plan();
        let mut start = 0;
        while start < rows {
            let end = (start + batch_size).min(rows);
            crate::kernels::keep_others_awake();
            if let Some(split) = self.workspace.split.filter(|_| end - start > 1) {
                self.predict_split(xs, (start, end), split, &mut results)?;
                start = end;
                continue;
            }
            let key = super::predict_split::pass_key(xs, end - start, &self.workspace);
            let mut graph = Graph::new(&mut self.workspace.tape, &self.params, false).without_gradients();
            graph.recycle_buffers(key);
            let inputs: SmallVec<[Var; 4]> = xs
                .iter()
                .map(|x| graph.constant_with(|buffer| x.slice_rows_into(start, end, buffer)))
                .collect();
            let outputs = &mut self.workspace.call_outputs;
            // An empty plan runs every layer as it is.
            self.network
                .forward_inference(&mut graph, &inputs, outputs, &self.workspace.inference_plan)?;
            let read_after: SmallVec<[Var; 2]> = self.network.outputs.iter().map(|&call| outputs[call]).collect();
            graph.finish_recycling(&read_after);
            for ((_, values), &call) in results.iter_mut().zip(&self.network.outputs) {
                values.extend_from_slice(graph.value(self.workspace.call_outputs[call]).data());
            }
            start = end;
        }
        crate::kernels::keep_others_awake();
        results
            .into_iter()
            .map(|(shape, values)| Tensor::from_vec(shape, values))
            .collect()
    }

    /// Rebuilds the inference plan when the weights changed since it was made (quantizing or
    /// loading weights can change which calls fuse), or clears it when fusion is off.
    fn update_inference_plan(&mut self) {
        let workspace = &mut self.workspace;
        if workspace.unfused {
            workspace.inference_plan.clear();
            workspace.inference_plan_generation = None;
            workspace.split = self.network.split_point(&[], &self.params);
            return;
        }
        let generation = Some(self.params.generation());
        if workspace.inference_plan_generation != generation
            || workspace.inference_plan.len() != self.network.calls.len()
        {
            self.network.inference_plan(&self.params, &mut workspace.inference_plan);
            workspace.inference_plan_generation = generation;
            workspace.split = self.network.split_point(&workspace.inference_plan, &self.params);
        }
    }
}
