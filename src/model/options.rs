//! [`FitOptions`]: the arguments of `fit`.

use crate::distributed::Collective;
use crate::tensor::Tensor;

/// The arguments of `fit`, with Keras's defaults: 1 epoch, batch 32, shuffling, verbose 1.
///
/// ```
/// use strata::model::FitOptions;
/// let options = FitOptions::default().epochs(10).batch_size(64).validation_split(0.1);
/// assert_eq!(options.epochs, 10);
/// ```
#[derive(Clone, Debug)]
pub struct FitOptions<'a> {
    /// Passes over the training data.
    pub epochs: usize,
    /// Samples per gradient update.
    pub batch_size: usize,
    /// Data to evaluate at the end of each epoch: one `x` per model input, one `y` per output.
    pub validation_data: Option<(Vec<&'a Tensor>, Vec<&'a Tensor>)>,
    /// Fraction of the training data, taken from its end before shuffling, held out for
    /// validation (ignored when `validation_data` is given).
    pub validation_split: f32,
    /// Whether to shuffle the training samples before each epoch.
    pub shuffle: bool,
    /// 0 silent, 1 progress bar, 2 one line per epoch.
    pub verbose: u8,
    /// Seed of the shuffling order; `None` draws it from the model's seed.
    pub seed: Option<u64>,
    /// Epoch to start after (Keras's `initial_epoch`): training runs epochs
    /// `initial_epoch + 1 ..= epochs`, with the shuffling order those epochs would have had in
    /// one uninterrupted run, so a resumed run matches it exactly.
    pub initial_epoch: usize,
    /// Batches of epoch `initial_epoch + 1` already trained (resuming a run stopped mid-epoch):
    /// that epoch skips them, in the same shuffled order.
    pub initial_batch: usize,
    /// Train data-parallel with the other ranks of this group: see [`FitOptions::distributed`].
    pub distributed: Option<&'a dyn Collective>,
}

impl Default for FitOptions<'_> {
    fn default() -> Self {
        FitOptions {
            epochs: 1,
            batch_size: 32,
            validation_data: None,
            validation_split: 0.0,
            shuffle: true,
            verbose: 1,
            seed: None,
            initial_epoch: 0,
            initial_batch: 0,
            distributed: None,
        }
    }
}

impl<'a> FitOptions<'a> {
    /// Sets the number of epochs.
    pub fn epochs(mut self, epochs: usize) -> Self {
        self.epochs = epochs;
        self
    }

    /// Sets the batch size.
    pub fn batch_size(mut self, batch_size: usize) -> Self {
        self.batch_size = batch_size;
        self
    }

    /// Sets validation data `(x, y)`.
    pub fn validation_data(mut self, x: &'a Tensor, y: &'a Tensor) -> Self {
        self.validation_data = Some((vec![x], vec![y]));
        self
    }

    /// Sets validation data for a model with several inputs or outputs: one `x` per input, one
    /// `y` per output.
    pub fn validation_data_multi(mut self, xs: &[&'a Tensor], ys: &[&'a Tensor]) -> Self {
        self.validation_data = Some((xs.to_vec(), ys.to_vec()));
        self
    }

    /// Holds out the last `fraction` of the training data for validation.
    pub fn validation_split(mut self, fraction: f32) -> Self {
        self.validation_split = fraction;
        self
    }

    /// Turns shuffling on or off.
    pub fn shuffle(mut self, shuffle: bool) -> Self {
        self.shuffle = shuffle;
        self
    }

    /// Sets the verbosity (0, 1 or 2).
    pub fn verbose(mut self, verbose: u8) -> Self {
        self.verbose = verbose;
        self
    }

    /// Starts after `epoch` epochs (to resume a saved run).
    pub fn initial_epoch(mut self, epoch: usize) -> Self {
        self.initial_epoch = epoch;
        self
    }

    /// Skips the first `batch` batches of the first epoch run (to resume mid-epoch).
    pub fn initial_batch(mut self, batch: usize) -> Self {
        self.initial_batch = batch;
        self
    }

    /// Sets the shuffling seed.
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Trains data-parallel with the other ranks of `world` (see [`crate::distributed`]): every
    /// rank calls `fit` with the same model, data and options; each step takes a global batch
    /// of `batch_size × world.size()` samples, of which this rank computes the gradient of its
    /// [`shard`](crate::distributed::shard), and applies the gradient averaged over the ranks.
    /// The result equals training on one process with the global batch size, up to the
    /// summation order of the gradients (and dropout masks, drawn per rank). Only rank 0
    /// prints progress; the logs and history hold the metrics over all ranks. Callbacks run on
    /// every rank with those logs (so `EarlyStopping` stops every rank at the same epoch); give
    /// the ones that write files (`ModelCheckpoint`, `CSVLogger`) to rank 0 only, as Horovod
    /// does: `if world.is_chief() { callbacks.push(&mut checkpoint) }`.
    pub fn distributed(mut self, world: &'a dyn Collective) -> Self {
        self.distributed = Some(world);
        self
    }
}
