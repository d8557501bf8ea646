//! Shared by the data-parallel tests (threads in `distributed.rs`, MPI processes in `mpi.rs`):
//! the MLP on a few hundred MNIST images, trained on one process or as one rank of several.
#![allow(dead_code)]

use strata::Tensor;
use strata::distributed::Collective;
use strata::io::config::load_model_spec;
use strata::model::{FitOptions, History, Model};

/// Training images: 301, so global batches of 32 or 64 end with an odd remainder (13 or 45
/// rows) that splits unevenly over two ranks.
pub const TRAIN_ROWS: usize = 301;
/// Validation images, from the test set.
pub const VALIDATION_ROWS: usize = 101;
/// Largest difference allowed between a weight trained on `n` ranks with batch `b` and on one
/// process with batch `n·b`: the gradients differ only in float summation order (the mean of
/// shard means vs one mean, about 1 ulp of the gradient), which Adam's 20 steps carry into the
/// weights at about 1e-7 (measured: 1.5e-7 with 2 ranks); 1e-5 leaves room for platforms.
pub const WEIGHT_TOLERANCE: f32 = 1e-5;
/// The same for the logged losses and accuracies (means over a few hundred samples).
pub const LOG_TOLERANCE: f32 = 1e-5;

/// `(x_train, y_train, x_validation, y_validation)`: the first MNIST images, pixels in [0, 1].
pub fn mnist_subset() -> (Tensor, Tensor, Tensor, Tensor) {
    let ((x_train, y_train), (x_test, y_test)) = strata::data::mnist::load_data().expect("bundled MNIST");
    let scale = |x: Tensor| x.map(|v| v / 255.0);
    (
        scale(x_train.slice_rows(0, TRAIN_ROWS)),
        y_train.slice_rows(0, TRAIN_ROWS),
        scale(x_test.slice_rows(0, VALIDATION_ROWS)),
        y_test.slice_rows(0, VALIDATION_ROWS),
    )
}

/// A named model compiled as its file says, with weights from seed 7.
pub fn compiled(name: &str) -> Model {
    let spec = load_model_spec(name).expect("a named model");
    let mut model = spec.model;
    model.seed(7);
    let metrics: Vec<&str> = spec.metrics.iter().map(String::as_str).collect();
    model.compile(spec.optimizer, spec.loss, &metrics).expect("compiles");
    model
}

/// Trains `model` for 2 epochs with validation, shuffled from seed 3: on one process when
/// `world` is `None`, else as this rank of `world` (then `batch_size` is per rank).
pub fn train(
    model: &mut Model,
    data: &(Tensor, Tensor, Tensor, Tensor),
    batch_size: usize,
    world: Option<&dyn Collective>,
) -> strata::Result<History> {
    let (x, y, vx, vy) = data;
    let mut options = FitOptions::default()
        .epochs(2)
        .batch_size(batch_size)
        .seed(3)
        .verbose(0)
        .validation_data(vx, vy);
    if let Some(world) = world {
        options = options.distributed(world);
    }
    model.fit(x, y, options)
}

/// Every weight of `model`, in order.
pub fn weights(model: &Model) -> Vec<Vec<f32>> {
    let params = model.params();
    params.ids().map(|id| params.value(id).data().to_vec()).collect()
}

/// The largest absolute difference between two models' weights.
pub fn max_difference(a: &[Vec<f32>], b: &[Vec<f32>]) -> f32 {
    assert_eq!(a.len(), b.len(), "different numbers of weight tensors");
    a.iter()
        .zip(b)
        .flat_map(|(a, b)| a.iter().zip(b).map(|(x, y)| (x - y).abs()))
        .fold(0.0, f32::max)
}

/// The largest difference between two histories' losses, accuracies and validation scores.
pub fn max_log_difference(a: &History, b: &History) -> f32 {
    assert_eq!(a.epochs.len(), b.epochs.len());
    ["loss", "accuracy", "val_loss", "val_accuracy"]
        .iter()
        .flat_map(|key| {
            let (x, y) = (a.get(key), b.get(key));
            assert_eq!(x.len(), y.len(), "{key}");
            assert!(!x.is_empty(), "{key} logged");
            x.into_iter().zip(y).map(|(x, y)| (x - y).abs()).collect::<Vec<_>>()
        })
        .fold(0.0, f32::max)
}
