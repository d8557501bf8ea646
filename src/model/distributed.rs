//! The points where `fit` and `evaluate` talk to the other ranks of a data-parallel run (see
//! [`crate::distributed`]): the start-up check and broadcast, the per-step reduce, the epoch-end
//! synchronisation and the reduction of evaluation sums. A run without a
//! [`Collective`] never reaches them.

use super::Model;
use super::fit::{FitOptions, StepStats, Totals};
use crate::autograd::ParamStore;
use crate::distributed::{self, Agreed, Collective};
use crate::error::Result;
use crate::rng::hash_name;
use crate::tensor::Tensor;
use std::fmt::Write;

impl Model {
    /// Checks, before anything in `fit` that could fail, that every rank trains the same model
    /// on the same data with the same options: an error on every rank otherwise. Once they
    /// agree, every later check in `fit` gives every rank the same answer, so no rank stops
    /// alone and leaves the others waiting for a step.
    pub(super) fn check_distributed(
        &self,
        world: &dyn Collective,
        xs: &[&Tensor],
        ys: &[&Tensor],
        options: &FitOptions,
    ) -> Result<()> {
        let mut weights = String::new();
        for id in self.params.ids() {
            let _ = write!(weights, "{}{:?};", self.params.name(id), self.params.value(id).shape());
        }
        let shapes = |tensors: &[&Tensor]| format!("{:?}", tensors.iter().map(|t| t.shape()).collect::<Vec<_>>());
        let (validation_shapes, validation_hash) = match &options.validation_data {
            Some((vx, vy)) => (format!("{} {}", shapes(vx), shapes(vy)), data_hash(vx.iter().chain(vy))),
            None => (String::new(), 0),
        };
        let compile = self.compile_config().map(|c| c.to_string()).unwrap_or_default();
        let steps_taken = self.compiled.as_ref().map_or(0, |c| c.optimizer.iterations());
        let counted = |what, value: usize| Agreed {
            what,
            value: value as u64,
            hash: false,
        };
        let hashed = |what, text: &str| Agreed {
            what,
            value: hash_name(text),
            hash: true,
        };
        let values = [
            counted("number of parameters", self.params.counts().0),
            counted("number of weight tensors", self.params.len()),
            counted("number of layers", self.layers.len()),
            hashed("weight names and shapes (hash)", &weights),
            hashed("architecture (hash of the model's config)", &self.config().to_string()),
            hashed("compile settings (hash)", &compile),
            counted("number of training samples", xs.first().map_or(0, |x| x.rows())),
            hashed("shapes of x and y (hash)", &format!("{} {}", shapes(xs), shapes(ys))),
            Agreed {
                what: "training data (hash of x and y)",
                value: data_hash(xs.iter().chain(ys)),
                hash: true,
            },
            hashed("validation data shapes (hash)", &validation_shapes),
            Agreed {
                what: "validation data (hash)",
                value: validation_hash,
                hash: true,
            },
            counted("batch size per rank", options.batch_size),
            counted("epochs", options.epochs),
            counted("initial epoch", options.initial_epoch),
            counted("initial batch", options.initial_batch),
            Agreed {
                what: "validation split (bits)",
                value: options.validation_split.to_bits() as u64,
                hash: false,
            },
            counted("shuffle flag", options.shuffle as usize),
            Agreed {
                what: "shuffling seed",
                value: options.seed.unwrap_or(self.seed.wrapping_add(1)),
                hash: false,
            },
            Agreed {
                what: "optimizer steps taken",
                value: steps_taken,
                hash: false,
            },
        ];
        distributed::check_agreement(world, &values)
    }

    /// Replaces every rank's weights with rank 0's (once the model is built).
    pub(super) fn weights_from_chief(&mut self, world: &dyn Collective) -> Result<()> {
        distributed::weights_from_chief(world, &mut self.params)
    }

    /// Makes the replicas one model again at an epoch end (before validation, callbacks and
    /// checkpoints see it).
    pub(super) fn sync_replicas(&mut self, world: &dyn Collective) -> Result<()> {
        distributed::sync_replicas(world, &mut self.params)
    }
}

/// Turns this rank's gradients, loss and metric counts for its `shard_rows` of a global batch of
/// `global_rows` into the global batch's, in one all-reduce; returns the global batch's loss.
pub(super) fn reduce_step(
    world: &dyn Collective,
    params: &mut ParamStore,
    shard_rows: usize,
    global_rows: usize,
    loss: f32,
    stats: &mut [StepStats],
) -> Result<f32> {
    // Losses are means over the rows, so the global mean is Σ (rows / global rows) × mean.
    let weight = shard_rows as f32 / global_rows.max(1) as f32;
    let mut extras = Vec::with_capacity(1 + 3 * stats.len());
    extras.push(loss * weight);
    for output in stats.iter() {
        extras.extend([output.loss * weight, output.correct as f32, output.predictions as f32]);
    }
    if shard_rows == 0 {
        // The stats are the previous step's: this rank computed nothing.
        extras.fill(0.0);
    }
    distributed::reduce_gradients(world, params, weight, &mut extras)?;
    for (output, sums) in stats.iter_mut().zip(extras[1..].chunks(3)) {
        // Counts below 2^24 per batch, exact in f32.
        *output = StepStats {
            loss: sums[0],
            correct: sums[1].round() as usize,
            predictions: sums[2].round() as usize,
        };
    }
    Ok(extras[0])
}

/// Replaces this rank's evaluation sums with the sums over every rank's shard.
pub(super) fn reduce_totals(world: &dyn Collective, totals: &mut Totals) -> Result<()> {
    let mut sums = vec![totals.loss, totals.samples as f64];
    for &(loss, correct, predictions) in &totals.outputs {
        sums.extend([loss, correct as f64, predictions as f64]);
    }
    world.all_reduce_sum_f64(&mut sums)?;
    totals.loss = sums[0];
    totals.samples = sums[1].round() as usize;
    for (output, sums) in totals.outputs.iter_mut().zip(sums[2..].chunks(3)) {
        *output = (sums[0], sums[1].round() as usize, sums[2].round() as usize);
    }
    Ok(())
}

/// A fast hash of the tensors' values (their bits), to tell whether the ranks hold the same
/// data: about 1 ns per value, once per `fit`.
fn data_hash<'t>(tensors: impl Iterator<Item = &'t &'t Tensor>) -> u64 {
    let mut hash = 0xcbf2_9ce4_8422_2325u64;
    for tensor in tensors {
        for value in tensor.data() {
            hash = (hash ^ value.to_bits() as u64).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    hash
}
