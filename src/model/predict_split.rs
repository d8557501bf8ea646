//! `predict`'s batches in two parts: the early layers, whose activations are large per image
//! (MobileNetV2's 112×112 and 56×56 blocks, megabytes per image), run image by image, so each
//! layer reads its input and writes its output in the cache instead of streaming the whole
//! batch through memory; the later layers, small per image, run on the whole batch, where their
//! products have rows enough to run at full speed. The part a network splits at is where one
//! value alone passes from the early layers to the later ones; a network without such a place,
//! or whose layers are all small (or all large), runs its batches whole.
//!
//! Each image's early layers run as a batch of one whatever the batch size and the thread
//! count, and the later ones on the batch: results on one and two threads keep their bits.

use super::graph::Source;
use super::inference::{Split, Step};
use super::{Model, Network};
use crate::autograd::{Graph, ParamStore, Var};
use crate::error::Result;
use crate::layers::InferenceRole;
use crate::tensor::{Tensor, numel};
use rayon::prelude::*;
use smallvec::SmallVec;

/// Values per image from which a layer's output counts as large (1 MiB): more than a core's
/// second-level cache holds.
const LARGE_VALUES: usize = 256 * 1024;
/// Values per image up to which a layer's output counts as small (256 KiB).
const SMALL_VALUES: usize = 64 * 1024;

/// The most arithmetic (operations per value the early layers write) at which splitting pays:
/// a value streamed through memory costs about as much time as 50 operations on this kind of
/// machine (docs/PERFORMANCE.md), so MobileNetV2's early layers (30 per value) gain from the
/// cache and ResNet18's (350) lose.
const MAX_FLOPS_PER_VALUE: usize = 100;

impl Network {
    /// The first call from which every output is small, when some output before it is large,
    /// one output alone is read across it, no run of fused calls (`plan`) straddles it, and
    /// the convolutions before it do at most [`MAX_FLOPS_PER_VALUE`] operations per value
    /// written.
    pub(super) fn split_point(&self, plan: &[Step], params: &ParamStore) -> Option<Split> {
        let output_count: usize = self
            .calls
            .last()
            .map_or(0, |call| call.first_output + self.layers[call.layer].output_count());
        // Per output: the last call reading it (the model's outputs are read after them all).
        let mut last_reader: Vec<Option<usize>> = vec![None; output_count];
        let mut last_input_reader = None;
        for (i, call) in self.calls.iter().enumerate() {
            for source in &call.inputs {
                match *source {
                    Source::Output(o) => last_reader[o] = Some(i),
                    Source::ModelInput(_) => last_input_reader = Some(i),
                }
            }
        }
        for &o in &self.outputs {
            last_reader[o] = Some(self.calls.len());
        }
        let size = |o: usize| self.output_shapes.get(o).map_or(0, |shape| numel(shape));
        let call_size = |call: &super::graph::Call| {
            let outputs = call.first_output..call.first_output + self.layers[call.layer].output_count();
            outputs.map(size).max().unwrap_or(0)
        };
        let mut largest_after = vec![0; self.calls.len() + 1];
        for (i, call) in self.calls.iter().enumerate().rev() {
            largest_after[i] = largest_after[i + 1].max(call_size(call));
        }
        let mut largest_before = 0;
        for (c, &largest_from) in largest_after.iter().enumerate().take(self.calls.len()).skip(1) {
            largest_before = largest_before.max(call_size(&self.calls[c - 1]));
            if largest_before < LARGE_VALUES || largest_from > SMALL_VALUES {
                continue;
            }
            if last_input_reader.is_some_and(|i| i >= c) {
                return None;
            }
            let first = self.calls[c].first_output;
            let mut crossing = (0..first).filter(|&o| last_reader[o].is_some_and(|i| i >= c));
            let (Some(crossing), None) = (crossing.next(), crossing.next()) else {
                continue;
            };
            let straddles =
                |(i, step): (usize, &Step)| step.partners().into_iter().flatten().any(|p| (p < c) != (i < c));
            if self.outputs.contains(&crossing) || plan.iter().enumerate().any(straddles) {
                continue;
            }
            // Where the early layers' arithmetic dominates, their weights streamed once per
            // image and their products' fewer rows cost more than the cache saves.
            let values: usize = self.calls[..c].iter().map(call_size).sum();
            let flops: usize = self.calls[..c]
                .iter()
                .map(|call| self.conv_flops(call, call_size(call), params))
                .sum();
            if flops > MAX_FLOPS_PER_VALUE * values {
                return None;
            }
            return Some(Split { call: c, crossing });
        }
        None
    }
}

impl Network {
    /// The multiply-adds (two operations each) of `call` per image when it is a convolution
    /// writing `outputs` values per image; zero for other layers.
    fn conv_flops(&self, call: &super::graph::Call, outputs: usize, params: &ParamStore) -> usize {
        let (kernel, depthwise) = match self.layers[call.layer].inference_role() {
            Some(InferenceRole::Convolution { kernel, depthwise, .. }) => (kernel, depthwise),
            Some(InferenceRole::ConvolutionRelu { kernel, .. }) => (kernel, false),
            _ => return 0,
        };
        let shape = params.value(kernel).shape();
        let taps = match (shape, depthwise) {
            ([h, w, _, _], true) => h * w,
            ([h, w, c, _], false) => h * w * c,
            _ => return 0,
        };
        2 * taps * outputs
    }
}

impl Model {
    /// Predicts samples `start..end` of `xs` split at `split`: the calls before it image by
    /// image, then the rest on the whole batch; appends each model output's values to
    /// `results`.
    pub(super) fn predict_split(
        &mut self,
        xs: &[&Tensor],
        (start, end): (usize, usize),
        split: Split,
        results: &mut [(Vec<usize>, Vec<f32>)],
    ) -> Result<()> {
        let workspace = &mut self.workspace;
        let network = &self.network;
        let (params, plan) = (&self.params, &workspace.inference_plan);
        let mut crossing = std::mem::take(&mut workspace.crossing);
        let per_image = numel(&network.output_shapes[split.crossing]);
        crossing.clear();
        crossing.resize((end - start) * per_image, 0.0);
        // (Salted: the batch's passes over all calls have another schedule under the key.)
        let key = crate::rng::mix(pass_key(xs, 1, workspace), 0x0053_504c_4954);
        // Each thread runs its own images' early layers on a tape of its own, without waiting
        // for the others between layers; the kernels inside split over whichever thread is
        // idle, with the same bits.
        let groups = crate::kernels::threads().clamp(1, end - start);
        let images_per_group = (end - start).div_ceil(groups);
        let tapes = &mut workspace.image_tapes;
        tapes.resize_with(tapes.len().max(groups), Default::default);
        let run_group = |(group, ((tape, outputs), crossing)): (usize, (&mut super::ImageTape, &mut [f32]))| {
            let first = start + group * images_per_group;
            for (image, crossing) in (first..).zip(crossing.chunks_mut(per_image)) {
                let mut graph = Graph::new(tape, params, false).without_gradients();
                graph.recycle_buffers(key);
                let inputs: SmallVec<[Var; 4]> = xs
                    .iter()
                    .map(|x| graph.constant_with(|buffer| x.slice_rows_into(image, image + 1, buffer)))
                    .collect();
                outputs.clear();
                network.forward_inference_calls(&mut graph, &inputs, outputs, plan, 0..split.call)?;
                let value = outputs[split.crossing];
                graph.finish_recycling(&[value]);
                crossing.copy_from_slice(graph.value(value).data());
            }
            Ok(())
        };
        tapes[..groups]
            .par_iter_mut()
            .zip(crossing.par_chunks_mut(images_per_group * per_image))
            .enumerate()
            .try_for_each(run_group)?;
        let mut shape = vec![end - start];
        shape.extend_from_slice(&network.output_shapes[split.crossing]);
        let key = pass_key(xs, end - start, workspace);
        let mut graph = Graph::new(&mut workspace.batch_tape, &self.params, false).without_gradients();
        graph.recycle_buffers(key);
        let x = graph.constant_with(|buffer| {
            buffer.resize_for(&shape);
            buffer.data_mut().copy_from_slice(&crossing);
        });
        let outputs = &mut workspace.call_outputs;
        outputs.clear();
        // The calls from the split on read the crossing value alone (`split_point`).
        outputs.resize(network.calls[split.call].first_output, x);
        let calls = split.call..network.calls.len();
        network.forward_inference_calls(&mut graph, &[], outputs, &workspace.inference_plan, calls)?;
        let read_after: SmallVec<[Var; 2]> = network.outputs.iter().map(|&o| outputs[o]).collect();
        graph.finish_recycling(&read_after);
        for ((_, values), &o) in results.iter_mut().zip(&network.outputs) {
            values.extend_from_slice(graph.value(outputs[o]).data());
        }
        workspace.crossing = crossing;
        Ok(())
    }
}

/// What decides the operations of a `predict` pass over `rows` samples of `xs`: the inputs'
/// shapes, the weights and the inference plan; passes under the same key hand buffers on in
/// the same way (see `Graph::recycle_buffers`).
pub(super) fn pass_key(xs: &[&Tensor], rows: usize, workspace: &super::Workspace) -> u64 {
    let mut key = crate::rng::mix(rows as u64, u64::from(workspace.unfused));
    key = crate::rng::mix(key, workspace.inference_plan_generation.unwrap_or(u64::MAX));
    for x in xs {
        for &size in x.shape().get(1..).unwrap_or_default() {
            key = crate::rng::mix(key, size as u64);
        }
    }
    key
}
