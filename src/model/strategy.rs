//! [`TrainingStrategy`]: how `fit` runs its steps and validation, on one process
//! ([`LocalTraining`]) or data-parallel over several
//! ([`DataParallel`](super::distributed::DataParallel)).

use super::Model;
use super::options::FitOptions;
use super::totals::{Scores, StepStats};
use crate::error::Result;
use crate::tensor::Tensor;

/// The parts of `fit` that depend on where the work runs. `fit` calls them in this order:
/// `check` (before any other check), `begin`, then per epoch `step` for each batch, `end_epoch`
/// and `evaluate` for the validation data.
pub(super) trait TrainingStrategy {
    /// Checks, before anything else in `fit` can fail, what must hold for this strategy.
    fn check(&self, model: &Model, xs: &[&Tensor], ys: &[&Tensor], options: &FitOptions) -> Result<()>;

    /// Makes the model ready for the first step (the model is built and compiled).
    fn begin(&self, model: &mut Model) -> Result<()>;

    /// Samples each step takes from the shuffled order, for a batch size of `batch_size`.
    fn global_batch(&self, batch_size: usize) -> usize;

    /// Whether this process prints progress.
    fn prints_progress(&self) -> bool;

    /// One step on the samples `batch` of `(xs, ys)`: gradients and the optimizer's update.
    /// Returns the batch's loss and writes each output's loss and correct predictions into
    /// `stats`.
    fn step(
        &self,
        model: &mut Model,
        xs: &[&Tensor],
        ys: &[Tensor],
        batch: &[usize],
        stats: &mut [StepStats],
    ) -> Result<f32>;

    /// Makes the model whole at the end of an epoch, before validation and callbacks see it.
    fn end_epoch(&self, model: &mut Model) -> Result<()>;

    /// The scores of the model on `(xs, ys)`, in batches of `batch_size`.
    fn evaluate(&self, model: &mut Model, xs: &[&Tensor], ys: &[&Tensor], batch_size: usize) -> Result<Scores>;
}

/// Training on this process alone, the work spread over the thread pool.
pub(super) struct LocalTraining;

impl TrainingStrategy for LocalTraining {
    fn check(&self, _model: &Model, _xs: &[&Tensor], _ys: &[&Tensor], _options: &FitOptions) -> Result<()> {
        Ok(())
    }

    fn begin(&self, _model: &mut Model) -> Result<()> {
        Ok(())
    }

    fn global_batch(&self, batch_size: usize) -> usize {
        batch_size
    }

    fn prints_progress(&self) -> bool {
        true
    }

    fn step(
        &self,
        model: &mut Model,
        xs: &[&Tensor],
        ys: &[Tensor],
        batch: &[usize],
        stats: &mut [StepStats],
    ) -> Result<f32> {
        // On the calling thread, which `fit` made a pool worker (see `enter_pool`).
        let noise_seed = model.step_noise_seed();
        let loss = model.compute_gradients(xs, ys, batch, noise_seed, stats)?;
        model.apply_gradients();
        Ok(loss)
    }

    fn end_epoch(&self, _model: &mut Model) -> Result<()> {
        Ok(())
    }

    fn evaluate(&self, model: &mut Model, xs: &[&Tensor], ys: &[&Tensor], batch_size: usize) -> Result<Scores> {
        let rows = xs[0].rows();
        let totals = model.evaluate_rows(xs, ys, 0..rows, batch_size)?;
        Ok(model.scores(&totals))
    }
}
