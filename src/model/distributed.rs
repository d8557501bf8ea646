//! The points where `fit` and `evaluate` talk to the other ranks of a data-parallel run (see
//! [`crate::distributed`]): the start-up check and broadcast, the per-step reduce, the epoch-end
//! synchronisation and the reduction of evaluation sums. A run without a
//! [`Collective`] never reaches them.

use super::Sequential;
use super::fit::{FitOptions, StepStats, Totals};
use crate::autograd::ParamStore;
use crate::distributed::{self, Agreed, Collective};
use crate::error::Result;
use crate::rng::hash_name;
use std::fmt::Write;

impl Sequential {
    /// Checks that every rank trains the same model on the same setup (an error on every rank
    /// otherwise, before any rank waits for a step the others would not take), then replaces
    /// every rank's weights with rank 0's.
    pub(super) fn start_distributed(
        &mut self,
        world: &dyn Collective,
        options: &FitOptions,
        train_rows: usize,
        shuffle_seed: u64,
    ) -> Result<()> {
        let mut weights = String::new();
        for id in self.params.ids() {
            let _ = write!(weights, "{}{:?};", self.params.name(id), self.params.value(id).shape());
        }
        let steps_taken = self.compiled.as_ref().map_or(0, |c| c.optimizer.iterations());
        let agreed = |what, value: usize| Agreed {
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
            agreed("number of parameters", self.params.counts().0),
            agreed("number of weight tensors", self.params.len()),
            hashed("weight names and shapes (hash)", &weights),
            hashed("architecture (hash of the model's config)", &self.config().to_string()),
            agreed("number of training samples", train_rows),
            agreed("batch size per rank", options.batch_size),
            agreed("epochs", options.epochs),
            agreed("initial epoch", options.initial_epoch),
            agreed("initial batch", options.initial_batch),
            Agreed {
                what: "shuffling seed",
                value: shuffle_seed,
                hash: false,
            },
            Agreed {
                what: "optimizer steps taken",
                value: steps_taken,
                hash: false,
            },
        ];
        distributed::check_agreement(world, &values)?;
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
