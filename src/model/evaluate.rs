//! `evaluate`: the mean loss and accuracy of a compiled model on labelled data.

use super::Model;
use super::distributed::DataParallel;
use super::strategy::{LocalTraining, TrainingStrategy};
use super::totals::Scores;
use crate::distributed::Collective;
use crate::error::Result;
use crate::tensor::Tensor;

impl Model {
    /// Mean loss (and accuracy) over `(x, y)`, in batches of `batch_size`, as Keras's `evaluate`.
    pub fn evaluate(&mut self, x: &Tensor, y: &Tensor, batch_size: usize) -> Result<Scores> {
        self.evaluate_multi(&[x], &[y], batch_size)
    }

    /// [`Model::evaluate`] for a model with several inputs or outputs: one `x` per input,
    /// one `y` per output. [`Scores::outputs`] holds each output's loss and accuracy.
    pub fn evaluate_multi(&mut self, xs: &[&Tensor], ys: &[&Tensor], batch_size: usize) -> Result<Scores> {
        crate::kernels::enter_pool();
        let ys = self.prepare(xs, ys)?;
        let ys: Vec<&Tensor> = ys.iter().collect();
        let rows = xs.first().map_or(0, |x| x.rows());
        self.check_batch_memory(batch_size.min(rows), false, "evaluate")?;
        LocalTraining.evaluate(self, xs, &ys, batch_size)
    }

    /// [`Model::evaluate`] split over the ranks of `world`, as `fit` validates when
    /// distributed: each rank evaluates its [`shard`](crate::distributed::shard) of `(x, y)`
    /// and every rank returns the scores over all of it. Every rank must call it with the same
    /// data.
    pub fn evaluate_distributed(
        &mut self,
        x: &Tensor,
        y: &Tensor,
        batch_size: usize,
        world: &dyn Collective,
    ) -> Result<Scores> {
        crate::kernels::enter_pool();
        let ys = self.prepare(&[x], &[y])?;
        DataParallel::new(world).evaluate(self, &[x], &[&ys[0]], batch_size)
    }
}
