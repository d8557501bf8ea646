//! Which call outputs carry a sequence mask, found by recording one inference pass: the layers
//! themselves decide (a source such as `Masking`, a layer that passes its input's on, one that
//! drops it), so an exporter that asks here cannot drift from what `predict` computes.

use super::Model;
use crate::autograd::{Graph, Tape};
use crate::error::Result;
use crate::model::{Call, Source};
use crate::tensor::Tensor;

impl Model {
    /// Per call output (indexed as [`Call::first_output`] counts them), the mask
    /// it carries, as the index of that mask among the pass's distinct masks; `None` for an
    /// output without one. Two outputs with the same index carry the very same mask (one
    /// passed it on to the other). Records a pass on one sample of zeros.
    pub(crate) fn call_output_masks(&self) -> Result<Vec<Option<usize>>> {
        let mut tape = Tape::new();
        let mut graph = Graph::new(&mut tape, &self.params, false);
        let inputs: Vec<_> = self
            .input_shapes()
            .iter()
            .map(|shape| {
                let batch: Vec<usize> = std::iter::once(1).chain(shape.iter().copied()).collect();
                graph.constant(&Tensor::zeros(&batch))
            })
            .collect();
        let mut outputs = Vec::new();
        self.network.forward(&mut graph, &inputs, &mut outputs)?;
        let mut distinct = Vec::new();
        Ok(outputs
            .iter()
            .map(|&output| {
                let mask = graph.mask(output)?;
                let index = distinct.iter().position(|&m| m == mask).unwrap_or_else(|| {
                    distinct.push(mask);
                    distinct.len() - 1
                });
                Some(index)
            })
            .collect())
    }

    /// The mask index of each input of `call`, as [`Model::call_output_masks`] gave them
    /// (`masks`); model inputs carry none.
    pub(crate) fn input_masks(&self, call: &Call, masks: &[Option<usize>]) -> Vec<Option<usize>> {
        call.inputs
            .iter()
            .map(|source| match *source {
                Source::ModelInput(_) => None,
                Source::Output(o) => masks.get(o).copied().flatten(),
            })
            .collect()
    }
}
