//! `predict`: the model's outputs for new inputs, in batches.

use super::Model;
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use smallvec::SmallVec;

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
        let mut outputs = self.predict_multi(&[x], batch_size)?;
        Ok(outputs.remove(0))
    }

    /// The model's outputs for inputs `xs` (one per model input), one tensor per output.
    pub fn predict_multi(&mut self, xs: &[&Tensor], batch_size: usize) -> Result<Vec<Tensor>> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        self.check_inputs(xs)?;
        // Large batches split their products over the pool from this thread, without hand-offs.
        crate::kernels::enter_pool();
        let shapes: Vec<Vec<usize>> = self.output_shapes().iter().map(|s| s.to_vec()).collect();
        let rows = xs[0].rows();
        let mut values: Vec<Vec<f32>> = shapes
            .iter()
            .map(|s| Vec::with_capacity(rows * s.iter().product::<usize>()))
            .collect();
        if !self.workspace.unfused {
            self.network
                .inference_plan(&self.params, &mut self.workspace.inference_plan);
        } else {
            self.workspace.inference_plan.clear();
        }
        let mut start = 0;
        while start < rows {
            let end = (start + batch_size).min(rows);
            let mut graph = Graph::new(&mut self.workspace.tape, &self.params, false);
            let inputs: SmallVec<[Var; 4]> = xs
                .iter()
                .map(|x| graph.constant_with(|buffer| x.slice_rows_into(start, end, buffer)))
                .collect();
            let outputs = &mut self.workspace.call_outputs;
            // An empty plan runs every layer as it is.
            self.network
                .forward_inference(&mut graph, &inputs, outputs, &self.workspace.inference_plan)?;
            for (values, &call) in values.iter_mut().zip(&self.network.outputs) {
                values.extend_from_slice(graph.value(self.workspace.call_outputs[call]).data());
            }
            start = end;
        }
        shapes
            .into_iter()
            .zip(values)
            .map(|(shape, values)| {
                let mut full = vec![rows];
                full.extend(shape);
                Tensor::from_vec(full, values)
            })
            .collect()
    }
}
