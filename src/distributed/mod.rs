//! Data-parallel training: every process (a *rank*) holds a replica of the model, takes its
//! shard of each global batch, and the ranks average their gradients before every optimizer
//! step, as Horovod and PyTorch's DistributedDataParallel do.
//!
//! `fit` talks to the other ranks through a [`Collective`]: `Mpi` (the `mpi` feature, over the
//! system's Open MPI) across processes and machines, or [`ThreadGroup`] between threads of one
//! process (tests, and trying the strategy without MPI). Pass one to
//! [`FitOptions::distributed`](crate::model::FitOptions::distributed):
//!
//! ```
//! use strata::distributed::{Collective, ThreadGroup};
//! use strata::prelude::*;
//!
//! // Two ranks as two threads; under MPI: `let world = strata::distributed::Mpi::init()?;`
//! let handles: Vec<_> = ThreadGroup::new(2)
//!     .into_iter()
//!     .map(|world| {
//!         std::thread::spawn(move || {
//!             let mut model = Sequential::new();
//!             model.add(Input::new(&[2])).add(Dense::new(1));
//!             model.compile("sgd", "mse", &[]).unwrap();
//!             let x = Tensor::from_vec(vec![8, 2], (0..16).map(|v| v as f32 / 16.0).collect()).unwrap();
//!             let y = Tensor::from_vec(vec![8, 1], (0..8).map(|v| v as f32 / 8.0).collect()).unwrap();
//!             // Global batch 2 × 4 = 8: each rank computes the gradient of its 4 rows.
//!             let options = FitOptions::default().batch_size(4).epochs(3).verbose(0).distributed(&world);
//!             model.fit(&x, &y, options).unwrap();
//!             model.params().value(model.params().ids().next().unwrap()).data().to_vec()
//!         })
//!     })
//!     .collect();
//! let kernels: Vec<Vec<f32>> = handles.into_iter().map(|h| h.join().unwrap()).collect();
//! assert_eq!(kernels[0], kernels[1]); // the replicas stay identical
//! ```
//!
//! What `fit` does with a `Collective` (see `FitOptions::distributed` for the contract):
//! - before the first step, every rank's model and training setup are compared (an error on
//!   every rank if they differ), then rank 0's weights are broadcast to all;
//! - the global batch is `batch_size × size()` samples of the one shuffled order (the same on
//!   every rank, from the same seed); rank `r` computes the gradient of its [`shard`];
//! - one all-reduce per step sums the row-weighted gradients and the batch's loss and metric
//!   counts, fused into one buffer; every rank then applies the same update;
//! - at each epoch end one all-reduce averages the non-trainable weights (BatchNormalization's
//!   moving statistics, which each rank updates from its own shard during the epoch) and copies
//!   rank 0's trainable weights to all, so checkpoints and evaluation see one model;
//! - validation (and [`Model::evaluate_distributed`](crate::model::Model::evaluate_distributed))
//!   is sharded the same way and its sums reduced;
//! - only rank 0 ([`Collective::is_chief`]) prints progress; write files from rank 0 only.

mod collective;
#[cfg(feature = "mpi")]
mod mpi;
mod replicas;
mod threads;

#[cfg(feature = "mpi")]
pub use self::mpi::{DEFAULT_TIMEOUT, Mpi, TIMEOUT_VARIABLE};
pub use collective::{AllReduceTime, Collective, Launched};
pub(crate) use replicas::{Agreed, check_agreement, reduce_gradients, sync_replicas, weights_from_chief};
pub use threads::ThreadGroup;

use crate::error::Result;
use std::ops::Range;

/// The world of the command line's `--distributed`: the MPI job this process belongs to, or an
/// error that says how to start one.
#[cfg(feature = "mpi")]
pub fn launch() -> Result<Box<dyn Launched>> {
    Ok(Box::new(Mpi::init()?))
}

/// Without the `mpi` feature there is no world to join: the error says how to build one in.
#[cfg(not(feature = "mpi"))]
pub fn launch() -> Result<Box<dyn Launched>> {
    Err(crate::Error::Usage(
        "--distributed needs strata built with MPI: install Open MPI (Debian: `apt-get install libopenmpi-dev \
         openmpi-bin libclang-dev`), build with `cargo build --release --features mpi`, and start one process \
         per rank: `mpirun -np 2 target/release/strata train --distributed ...`"
            .into(),
    ))
}

/// The rows `rank` takes of a global batch of `rows` samples split over `size` ranks: contiguous
/// and as even as possible (sizes differ by at most one; with fewer rows than ranks, some ranks
/// get none and contribute a zero gradient).
///
/// ```
/// use strata::distributed::shard;
/// assert_eq!(shard(10, 0, 3), 0..3);
/// assert_eq!(shard(10, 1, 3), 3..6);
/// assert_eq!(shard(10, 2, 3), 6..10);
/// assert_eq!(shard(1, 0, 2), 0..0);
/// assert_eq!(shard(1, 1, 2), 0..1);
/// ```
pub fn shard(rows: usize, rank: usize, size: usize) -> Range<usize> {
    let size = size.max(1);
    (rows * rank / size)..(rows * (rank + 1) / size)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_cover_the_batch_once_and_differ_by_at_most_one_row() {
        for rows in 0..40 {
            for size in 1..7 {
                let shards: Vec<Range<usize>> = (0..size).map(|r| shard(rows, r, size)).collect();
                assert_eq!(shards[0].start, 0);
                assert_eq!(shards[size - 1].end, rows);
                for pair in shards.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                }
                let lens: Vec<usize> = shards.iter().map(|s| s.len()).collect();
                let (min, max) = (lens.iter().min().unwrap(), lens.iter().max().unwrap());
                assert!(max - min <= 1, "rows {rows} size {size}: {lens:?}");
            }
        }
    }

    #[test]
    fn a_global_batch_of_64_over_2_ranks_gives_32_rows_each() {
        assert_eq!(shard(64, 0, 2), 0..32);
        assert_eq!(shard(64, 1, 2), 32..64);
        // The last, partial batch of 60,000 rows in global batches of 64: 32 rows, 16 each.
        assert_eq!(shard(60_000 % 64, 1, 2), 16..32);
    }
}
