//! The interface every group of ranks offers (MPI processes, threads): what `fit` and the
//! command line ask of a world, apart from how a world is made.

use crate::error::Result;

/// The collective operations data-parallel training needs, over a fixed group of `size()`
/// ranks. Every rank must make the same calls in the same order with buffers of the same
/// length (as MPI requires): `fit` does.
pub trait Collective: std::fmt::Debug {
    /// This process's rank, `0..size()`.
    fn rank(&self) -> usize;

    /// Number of ranks.
    fn size(&self) -> usize;

    /// Whether this rank prints progress and writes files (rank 0).
    fn is_chief(&self) -> bool {
        self.rank() == 0
    }

    /// Overwrites `buffer` on every rank with rank `root`'s.
    fn broadcast_f32(&self, buffer: &mut [f32], root: usize) -> Result<()>;

    /// Replaces `buffer` on every rank with the element-wise sum over the ranks.
    fn all_reduce_sum_f32(&self, buffer: &mut [f32]) -> Result<()>;

    /// [`Collective::all_reduce_sum_f32`] in double precision (metric sums over many samples).
    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> Result<()>;

    /// Every rank's `values` (of the same length on all ranks), concatenated in rank order.
    fn all_gather_u64(&self, values: &[u64]) -> Result<Vec<u64>>;
}

/// Time spent in the `f32` all-reduces (one per training step, plus one per epoch end), waiting
/// for the slowest rank included.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct AllReduceTime {
    /// Number of all-reduces.
    pub calls: usize,
    /// Seconds spent in them, in total.
    pub seconds: f64,
    /// Floats reduced, in total.
    pub floats: usize,
}

/// What the command line's `--distributed` needs of its world beyond the collectives.
pub trait Launched: Collective {
    /// Ends every rank of the job now, with exit status `code`.
    fn abort(&self, code: i32) -> !;

    /// Time spent in `f32` all-reduces so far.
    fn all_reduce_time(&self) -> AllReduceTime;
}
