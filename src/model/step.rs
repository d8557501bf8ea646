//! One training step and one evaluation pass, the pieces a training strategy puts together:
//! the forward pass, the objective over the outputs, the gradients and the optimizer's update.

use super::Model;
use super::totals::{Scores, StepStats, Totals};
use crate::autograd::{Graph, Var};
use crate::error::{Error, Result};
use crate::metrics::Accuracy;
use crate::tensor::Tensor;
use smallvec::SmallVec;
use std::ops::Range;

impl Model {
    /// The seed of this step's noise (dropout masks): it follows the step count, so a resumed
    /// run draws the same masks.
    pub(super) fn step_noise_seed(&self) -> u64 {
        let steps_taken = self.compiled().optimizer.iterations();
        crate::rng::mix(self.training.seed, steps_taken)
    }

    /// Records the forward pass and the objective on the samples `batch` of `(xs, ys)` and
    /// leaves their gradients in the weights. Returns the batch's loss (the weighted sum over
    /// outputs, with penalties) and writes each output's loss and correct predictions into
    /// `stats`.
    pub(super) fn compute_gradients(
        &mut self,
        xs: &[&Tensor],
        ys: &[Tensor],
        batch: &[usize],
        noise_seed: u64,
        stats: &mut [StepStats],
    ) -> Result<f32> {
        let compiled = self
            .training
            .compiled
            .as_ref()
            .expect("prepare checked that the model is compiled");
        let workspace = &mut self.workspace;
        let mut graph = Graph::new(&mut workspace.tape, &self.params, true).with_noise_seed(noise_seed);
        let mut inputs: SmallVec<[Var; 4]> = SmallVec::new();
        for x in xs {
            inputs.push(graph.constant_with(|buffer| x.gather_rows_into(batch, buffer)));
        }
        let mut targets: SmallVec<[Var; 4]> = SmallVec::new();
        for y in ys {
            targets.push(graph.constant_with(|buffer| y.gather_rows_into(batch, buffer)));
        }
        let plan = (&mut workspace.readers, &mut workspace.training_plan);
        (self.network).forward_fused(&mut graph, &inputs, &mut workspace.call_outputs, plan)?;
        let loss = objective(
            compiled,
            &mut graph,
            &self.network.outputs,
            &workspace.call_outputs,
            &targets,
            stats,
        )?;
        let loss = graph.add_penalties(loss)?;
        let value = graph.value(loss).item();
        self.workspace.tape.backward(loss, &mut self.params);
        self.workspace.tape.apply_moving_updates(&mut self.params);
        Ok(value)
    }

    /// The optimizer's update from the gradients in the weights.
    pub(super) fn apply_gradients(&mut self) {
        let compiled = self
            .training
            .compiled
            .as_mut()
            .expect("prepare checked that the model is compiled");
        crate::autograd::profile::time("optimizer", true, || compiled.optimizer.step(&mut self.params));
    }

    /// Loss and correct predictions summed over the samples `rows` of `(xs, ys)`, in batches of
    /// `batch_size`.
    pub(super) fn evaluate_rows(
        &mut self,
        xs: &[&Tensor],
        ys: &[&Tensor],
        rows: Range<usize>,
        batch_size: usize,
    ) -> Result<Totals> {
        if batch_size == 0 {
            return Err(Error::invalid("batch_size", 0, "must be at least 1"));
        }
        let compiled = self
            .training
            .compiled
            .as_ref()
            .expect("prepare checked that the model is compiled");
        let metric_sums = compiled.metric_sums();
        let mut totals = Totals::new(&metric_sums);
        let mut stats = StepStats::for_outputs(&metric_sums);
        let mut start = rows.start;
        let workspace = &mut self.workspace;
        while start < rows.end {
            let end = (start + batch_size).min(rows.end);
            // As for training steps: the other threads spin between the batches' parallel parts.
            crate::kernels::keep_others_awake();
            let mut graph = Graph::new(&mut workspace.tape, &self.params, false).without_gradients();
            graph.recycle_buffers(evaluation_key(xs, ys, end - start));
            let inputs: SmallVec<[Var; 4]> = xs
                .iter()
                .map(|x| graph.constant_with(|buffer| x.slice_rows_into(start, end, buffer)))
                .collect();
            let targets: SmallVec<[Var; 4]> = ys
                .iter()
                .map(|y| graph.constant_with(|buffer| y.slice_rows_into(start, end, buffer)))
                .collect();
            let plan = (&mut workspace.readers, &mut workspace.training_plan);
            (self.network).forward_fused(&mut graph, &inputs, &mut workspace.call_outputs, plan)?;
            let loss = objective(
                compiled,
                &mut graph,
                &self.network.outputs,
                &workspace.call_outputs,
                &targets,
                &mut stats,
            )?;
            let loss = graph.add_penalties(loss)?;
            graph.finish_recycling(&[loss]);
            totals.add(graph.value(loss).item(), end - start, &stats);
            start = end;
        }
        Ok(totals)
    }

    /// The scores `totals` give, by output name.
    pub(super) fn scores(&self, totals: &Totals) -> Scores {
        let names = self.output_names();
        let compiled = self.compiled();
        totals.scores(&names, &compiled.accuracies, &compiled.metrics)
    }

    /// Whether the logs show an overall accuracy: with several outputs, Keras logs accuracies
    /// only per output (`class_accuracy`).
    pub(super) fn tracks_accuracy(&self) -> bool {
        self.network.outputs.len() == 1 && self.compiled().accuracies[0].is_some()
    }

    /// What `compile` fixed (the callers run after `prepare` checked that there is one).
    pub(super) fn compiled(&self) -> &super::Compiled {
        self.training
            .compiled
            .as_ref()
            .expect("prepare checked that the model is compiled")
    }
}

/// Records the training objective `Σ weight × loss` over the outputs, and each output's loss
/// and correct predictions into `stats`. One output of weight 1 adds no operation.
fn objective(
    compiled: &super::Compiled,
    graph: &mut Graph,
    outputs: &[usize],
    call_outputs: &[Var],
    targets: &[Var],
    stats: &mut [StepStats],
) -> Result<Var> {
    let mut total: Option<Var> = None;
    for (i, (&call, &target)) in outputs.iter().zip(targets).enumerate() {
        let output = call_outputs[call];
        let loss = compiled.losses[i].compute(graph, output, target)?;
        let (correct, predictions) = batch_stats(compiled, i, graph.value(output), graph.value(target));
        stats[i].loss = graph.value(loss).item();
        stats[i].correct = correct;
        stats[i].predictions = predictions;
        metric_sums(
            compiled,
            i,
            graph.value(output),
            graph.value(target),
            &mut stats[i].metric_sums,
        )?;
        let weighted = match compiled.loss_weights[i] {
            1.0 => loss,
            weight => graph.scale(loss, weight),
        };
        total = Some(match total {
            None => weighted,
            Some(sum) => graph.add(sum, weighted)?,
        });
    }
    Ok(total.expect("compile gives every model at least one output"))
}

/// Writes the sums of output `output`'s metrics over one batch into `sums`.
fn metric_sums(
    compiled: &super::Compiled,
    output: usize,
    values: &Tensor,
    target: &Tensor,
    sums: &mut [f64],
) -> Result<()> {
    let metrics = &compiled.metrics[output];
    if metrics.is_empty() {
        return Ok(());
    }
    sums.fill(0.0);
    let mut rest = sums;
    for (metric, key) in metrics {
        let (own, after) = rest.split_at_mut(metric.state_len());
        metric.update(key, values, target, own)?;
        rest = after;
    }
    Ok(())
}

/// Correct predictions and predictions counted in one batch of output `output`.
fn batch_stats(compiled: &super::Compiled, output: usize, values: &Tensor, target: &Tensor) -> (usize, usize) {
    let Some(accuracy) = compiled.accuracies[output] else {
        return (0, 0);
    };
    let threshold = if compiled.losses[output].from_logits() && accuracy == Accuracy::Binary {
        0.0
    } else {
        0.5
    };
    let correct = accuracy.count_correct(values, target, threshold);
    (correct, values.rows() * accuracy.per_sample(values.row_len().max(1)))
}

/// What decides the operations of an evaluation pass over `rows` samples: the shapes of the
/// inputs and targets (the loss, metrics and layers are the model's; a pass whose operations
/// turn out to differ anyway only stops handing buffers on). Distinct from `predict`'s keys,
/// whose passes run the inference plan and no loss.
fn evaluation_key(xs: &[&Tensor], ys: &[&Tensor], rows: usize) -> u64 {
    const EVALUATION: u64 = 0x6576_616c_7561_7465; // "evaluate"
    let mut key = crate::rng::mix(EVALUATION, rows as u64);
    for tensor in xs.iter().chain(ys) {
        key = crate::rng::mix(key, tensor.shape().len() as u64);
        for &size in tensor.shape().get(1..).unwrap_or_default() {
            key = crate::rng::mix(key, size as u64);
        }
    }
    key
}
