//! [`DataParallel`]: the training strategy of a data-parallel run (see [`crate::distributed`]):
//! the start-up check and broadcast, the per-step reduce, the epoch-end synchronisation and the
//! reduction of evaluation sums. A run without a [`Collective`] never reaches it.

use super::Model;
use super::options::FitOptions;
use super::strategy::TrainingStrategy;
use super::totals::{Scores, StepStats, Totals};
use crate::autograd::ParamStore;
use crate::distributed::{self, Agreed, Collective};
use crate::error::Result;
use crate::rng::hash_name;
use crate::tensor::Tensor;
use std::fmt::Write;

/// Training with the other ranks of `world`: each step takes one batch per rank from the one
/// shuffled order, each rank computes the gradient of its shard, and every rank applies the
/// gradient averaged over the ranks.
pub(super) struct DataParallel<'w> {
    world: &'w dyn Collective,
}

impl<'w> DataParallel<'w> {
    /// The strategy over the ranks of `world`.
    pub(super) fn new(world: &'w dyn Collective) -> Self {
        DataParallel { world }
    }
}

impl TrainingStrategy for DataParallel<'_> {
    /// Checks that every rank trains the same model on the same data with the same options:
    /// an error on every rank otherwise. Once they agree, every later check in `fit` gives
    /// every rank the same answer, so no rank stops alone and leaves the others waiting.
    fn check(&self, model: &Model, xs: &[&Tensor], ys: &[&Tensor], options: &FitOptions) -> Result<()> {
        let mut values = model_values(model);
        values.extend(data_values(xs, ys, options));
        values.extend(option_values(model, options));
        distributed::check_agreement(self.world, &values)
    }

    /// Replaces every rank's weights with rank 0's (once the model is built).
    fn begin(&self, model: &mut Model) -> Result<()> {
        distributed::weights_from_chief(self.world, &mut model.params)
    }

    fn global_batch(&self, batch_size: usize) -> usize {
        batch_size * self.world.size()
    }

    /// Only rank 0 prints progress.
    fn prints_progress(&self) -> bool {
        self.world.is_chief()
    }

    /// Computes this rank's shard of the global `batch` (on this thread: MPI's communicator may
    /// not leave it), then turns the gradients, loss and stats into the global batch's.
    fn step(
        &self,
        model: &mut Model,
        xs: &[&Tensor],
        ys: &[Tensor],
        batch: &[usize],
        stats: &mut [StepStats],
    ) -> Result<f32> {
        let (rank, size) = (self.world.rank(), self.world.size());
        let shard = &batch[distributed::shard(batch.len(), rank, size)];
        // Each rank draws its own noise for its shard.
        let mut noise_seed = model.step_noise_seed();
        if rank > 0 {
            noise_seed = crate::rng::mix(noise_seed, rank as u64);
        }
        // A rank whose shard of the last, short global batch is empty still takes part in the
        // reduce and the update.
        let mut loss = 0.0;
        if !shard.is_empty() {
            loss = model.compute_gradients(xs, ys, shard, noise_seed, stats)?;
        }
        let loss = reduce_step(self.world, &mut model.params, shard.len(), batch.len(), loss, stats)?;
        model.apply_gradients();
        Ok(loss)
    }

    /// Makes the replicas one model again.
    fn end_epoch(&self, model: &mut Model) -> Result<()> {
        distributed::sync_replicas(self.world, &mut model.params)
    }

    /// Each rank evaluates its [`shard`](crate::distributed::shard) of `(xs, ys)`; every rank
    /// returns the scores over all of it.
    fn evaluate(&self, model: &mut Model, xs: &[&Tensor], ys: &[&Tensor], batch_size: usize) -> Result<Scores> {
        let rows = distributed::shard(xs[0].rows(), self.world.rank(), self.world.size());
        let mut totals = model.evaluate_rows(xs, ys, rows, batch_size)?;
        reduce_totals(self.world, &mut totals)?;
        Ok(model.scores(&totals))
    }
}

/// What every rank must agree on about the model: its weights, layers and compile settings.
fn model_values(model: &Model) -> Vec<Agreed<'static>> {
    let mut weights = String::new();
    for id in model.params.ids() {
        let _ = write!(
            weights,
            "{}{:?};",
            model.params.name(id),
            model.params.value(id).shape()
        );
    }
    let compile = model.compile_config().map(|c| c.to_string()).unwrap_or_default();
    vec![
        counted("number of parameters", model.params.counts().0),
        counted("number of weight tensors", model.params.len()),
        counted("number of layers", model.network.layers.len()),
        hashed("weight names and shapes (hash)", &weights),
        hashed("architecture (hash of the model's config)", &model.config().to_string()),
        hashed("compile settings (hash)", &compile),
    ]
}

/// What every rank must agree on about the training and validation data.
fn data_values(xs: &[&Tensor], ys: &[&Tensor], options: &FitOptions) -> Vec<Agreed<'static>> {
    let shapes = |tensors: &[&Tensor]| format!("{:?}", tensors.iter().map(|t| t.shape()).collect::<Vec<_>>());
    let (validation_shapes, validation_hash) = match &options.validation_data {
        Some((vx, vy)) => (format!("{} {}", shapes(vx), shapes(vy)), data_hash(vx.iter().chain(vy))),
        None => (String::new(), 0),
    };
    vec![
        counted("number of training samples", xs.first().map_or(0, |x| x.rows())),
        hashed("shapes of x and y (hash)", &format!("{} {}", shapes(xs), shapes(ys))),
        exact("training data (hash of x and y)", data_hash(xs.iter().chain(ys)), true),
        hashed("validation data shapes (hash)", &validation_shapes),
        exact("validation data (hash)", validation_hash, true),
    ]
}

/// What every rank must agree on about the options and the point training starts from.
fn option_values(model: &Model, options: &FitOptions) -> Vec<Agreed<'static>> {
    let steps_taken = model.training.compiled.as_ref().map_or(0, |c| c.optimizer.iterations());
    vec![
        counted("batch size per rank", options.batch_size),
        counted("epochs", options.epochs),
        counted("initial epoch", options.initial_epoch),
        counted("initial batch", options.initial_batch),
        exact(
            "validation split (bits)",
            options.validation_split.to_bits() as u64,
            false,
        ),
        counted("shuffle flag", options.shuffle as usize),
        exact(
            "shuffling seed",
            options.seed.unwrap_or(model.training.seed.wrapping_add(1)),
            false,
        ),
        exact("optimizer steps taken", steps_taken, false),
    ]
}

/// A count the ranks must agree on.
fn counted(what: &'static str, value: usize) -> Agreed<'static> {
    exact(what, value as u64, false)
}

/// A text the ranks must agree on, compared by its hash.
fn hashed(what: &'static str, text: &str) -> Agreed<'static> {
    exact(what, hash_name(text), true)
}

/// A value the ranks must agree on; `hash` says it is one (shown as such in the error).
fn exact(what: &'static str, value: u64, hash: bool) -> Agreed<'static> {
    Agreed { what, value, hash }
}

/// Turns this rank's gradients, loss and metric counts for its `shard_rows` of a global batch of
/// `global_rows` into the global batch's, in one all-reduce; returns the global batch's loss.
fn reduce_step(
    world: &dyn Collective,
    params: &mut ParamStore,
    shard_rows: usize,
    global_rows: usize,
    loss: f32,
    stats: &mut [StepStats],
) -> Result<f32> {
    // Losses are means over the rows, so the global mean is Σ (rows / global rows) × mean.
    let weight = shard_rows as f32 / global_rows.max(1) as f32;
    let sums: usize = stats.iter().map(|output| 3 + output.metric_sums.len()).sum();
    let mut extras = Vec::with_capacity(1 + sums);
    extras.push(loss * weight);
    for output in stats.iter() {
        extras.extend([output.loss * weight, output.correct as f32, output.predictions as f32]);
        // Metric sums of one batch (counts, sums of errors) are small enough for f32.
        extras.extend(output.metric_sums.iter().map(|&sum| sum as f32));
    }
    if shard_rows == 0 {
        // The stats are the previous step's: this rank computed nothing.
        extras.fill(0.0);
    }
    distributed::reduce_gradients(world, params, weight, &mut extras)?;
    let mut rest = &extras[1..];
    for output in stats.iter_mut() {
        let (sums, after) = rest.split_at(3 + output.metric_sums.len());
        // Counts below 2^24 per batch, exact in f32.
        output.loss = sums[0];
        output.correct = sums[1].round() as usize;
        output.predictions = sums[2].round() as usize;
        for (sum, &reduced) in output.metric_sums.iter_mut().zip(&sums[3..]) {
            *sum = reduced as f64;
        }
        rest = after;
    }
    Ok(extras[0])
}

/// Replaces this rank's evaluation sums with the sums over every rank's shard.
fn reduce_totals(world: &dyn Collective, totals: &mut Totals) -> Result<()> {
    let mut sums = vec![totals.loss, totals.samples as f64];
    for output in &totals.outputs {
        sums.extend([output.loss, output.correct as f64, output.predictions as f64]);
        sums.extend(&output.metric_sums);
    }
    world.all_reduce_sum_f64(&mut sums)?;
    totals.loss = sums[0];
    totals.samples = sums[1].round() as usize;
    let mut rest = &sums[2..];
    for output in totals.outputs.iter_mut() {
        let (own, after) = rest.split_at(3 + output.metric_sums.len());
        output.loss = own[0];
        output.correct = own[1].round() as usize;
        output.predictions = own[2].round() as usize;
        output.metric_sums.copy_from_slice(&own[3..]);
        rest = after;
    }
    Ok(())
}

/// A fast hash of the tensors' values (their bits), to tell whether the ranks hold the same
/// data: once per `fit`, a small cost next to an epoch (see docs/PERFORMANCE.md).
fn data_hash<'t>(tensors: impl Iterator<Item = &'t &'t Tensor>) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for tensor in tensors {
        for value in tensor.data() {
            hash = (hash ^ value.to_bits() as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}
