//! Data-parallel training with ranks as threads ([`ThreadGroup`]): the same code path as under
//! MPI (`tests/mpi.rs` runs it across processes), without MPI.

mod data_parallel;

use data_parallel::*;
use std::process::Command;
use strata::Tensor;
use strata::distributed::{Collective, ThreadGroup};
use strata::prelude::*;

/// Runs `body` as every rank of a group of `size` threads; returns the results by rank.
fn on_ranks<T: Send + 'static>(size: usize, body: impl Fn(ThreadGroup) -> T + Send + Clone + 'static) -> Vec<T> {
    let handles: Vec<_> = ThreadGroup::new(size)
        .into_iter()
        .map(|world| {
            let body = body.clone();
            std::thread::spawn(move || body(world))
        })
        .collect();
    handles
        .into_iter()
        .map(|h| h.join().expect("a rank panicked"))
        .collect()
}

/// Trains the MLP on `ranks` ranks with `batch_size` per rank and on one process with the
/// global batch, and checks that weights and logs agree and that the replicas are identical.
fn matches_one_process(ranks: usize, batch_size: usize) {
    matches_one_process_with("mlp", mnist_subset(), ranks, batch_size);
}

/// [`matches_one_process`] for a named model and its data.
fn matches_one_process_with(
    name: &'static str,
    data: (Tensor, Tensor, Tensor, Tensor),
    ranks: usize,
    batch_size: usize,
) {
    let mut single = compiled(name);
    let expected_history = train(&mut single, &data, batch_size * ranks, None).unwrap();
    let expected = weights(&single);
    let shared = std::sync::Arc::new(data);
    let results = on_ranks(ranks, move |world| {
        let mut model = compiled(name);
        let history = train(&mut model, &shared, batch_size, Some(&world)).unwrap();
        (weights(&model), history)
    });
    for (rank, (weights, history)) in results.iter().enumerate() {
        let difference = max_difference(weights, &expected);
        assert!(
            difference <= WEIGHT_TOLERANCE,
            "{name}, rank {rank} of {ranks}: weights differ from one process's by {difference}"
        );
        let difference = max_log_difference(history, &expected_history);
        assert!(
            difference <= LOG_TOLERANCE,
            "{name}, rank {rank}: logs differ by {difference}"
        );
        assert_eq!(weights, &results[0].0, "rank {rank}'s replica differs from rank 0's");
    }
}

#[test]
fn two_ranks_with_batch_16_train_as_one_process_with_batch_32() {
    // 301 rows: 9 global batches of 32, then 13 rows split 6 / 7.
    matches_one_process(2, 16);
}

#[test]
fn three_ranks_whose_last_shards_are_empty_train_as_one_process() {
    // Global batch 300, then 1 row: ranks 0 and 1 get none and contribute zero gradients.
    matches_one_process(3, 100);
}

#[test]
fn the_cnn_on_two_ranks_trains_as_one_process_too() {
    // Convolutions, pooling and one-hot targets: 130 images, 2 epochs of 2 global batches of 64
    // and one of 2 rows (one each).
    let (x, y, vx, vy) = mnist_subset();
    let images = |x: Tensor, rows: usize| x.slice_rows(0, rows).reshape(&[rows, 28, 28, 1]).unwrap();
    let one_hot = |y: Tensor, rows: usize| strata::data::to_categorical(&y.slice_rows(0, rows), 10).unwrap();
    let data = (images(x, 130), one_hot(y, 130), images(vx, 40), one_hot(vy, 40));
    matches_one_process_with("cnn", data, 2, 32);
}

#[test]
fn ranks_with_different_models_all_stop_with_the_same_error() {
    let data = std::sync::Arc::new(mnist_subset());
    let errors = on_ranks(2, move |world| {
        let mut model = compiled(if world.rank() == 0 { "mlp" } else { "mlp2" });
        train(&mut model, &data, 16, Some(&world)).unwrap_err().to_string()
    });
    for error in errors {
        assert_eq!(
            error,
            "the 2 ranks disagree on the number of parameters: rank 0 has 101770, rank 1 has 109386; \
             start every rank with the same model, data and options"
        );
    }
}

#[test]
fn ranks_with_different_batch_sizes_stop_before_any_step() {
    let data = std::sync::Arc::new(mnist_subset());
    let errors = on_ranks(2, move |world| {
        let mut model = compiled("mlp");
        let before = weights(&model);
        let error = train(&mut model, &data, 16 + world.rank(), Some(&world)).unwrap_err();
        assert_eq!(weights(&model), before, "no step was taken");
        error.to_string()
    });
    assert!(
        errors[0].contains("batch size per rank: rank 0 has 16, rank 1 has 17"),
        "{}",
        errors[0]
    );
    assert_eq!(errors[0], errors[1]);
}

#[test]
fn batch_normalization_statistics_are_averaged_at_each_epoch_end() {
    // Each rank normalises its own shard during the epoch, so the moving statistics differ
    // between ranks until the epoch-end sync makes them their mean.
    let x = Tensor::from_vec(vec![8, 1], vec![0.0, 1.0, 2.0, 3.0, 10.0, 11.0, 12.0, 13.0]).unwrap();
    let y = Tensor::from_vec(vec![8, 1], vec![0.0; 8]).unwrap();
    let replicas = on_ranks(2, move |world| {
        let mut model = Sequential::new();
        model.add(Input::new(&[1])).add(BatchNormalization::new());
        model.compile("sgd", "mse", &[]).unwrap();
        let options = FitOptions::default()
            .batch_size(4)
            .shuffle(false)
            .verbose(0)
            .distributed(&world);
        model.fit(&x, &y, options).unwrap();
        weights(&model)
    });
    assert_eq!(replicas[0], replicas[1]);
    // One step on one batch each: rank 0 saw mean 1.5, rank 1 mean 11.5. Keras's update with
    // momentum 0.99 from 0: 0.01 × mean; averaged: 0.01 × (1.5 + 11.5) / 2 = 0.065.
    let moving_mean = replicas[0][2][0];
    assert!((moving_mean - 0.065).abs() < 1e-6, "moving mean {moving_mean}");
}

#[test]
fn evaluate_distributed_reduces_every_ranks_shard() {
    let data = mnist_subset();
    let mut model = compiled("mlp");
    let expected = model.evaluate(&data.2, &data.3, 32).unwrap();
    let shared = std::sync::Arc::new(data);
    let scores = on_ranks(3, move |world| {
        let mut model = compiled("mlp");
        model.evaluate_distributed(&shared.2, &shared.3, 32, &world).unwrap()
    });
    for score in scores {
        assert!(
            (score.loss - expected.loss).abs() < 1e-6,
            "{} vs {}",
            score.loss,
            expected.loss
        );
        assert_eq!(score.accuracy, expected.accuracy);
    }
}

#[test]
fn the_command_line_says_how_to_run_distributed_training() {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["train", "--distributed", "--epochs", "1"])
        .env_remove("OMPI_COMM_WORLD_SIZE")
        .env_remove("PMIX_RANK")
        .env_remove("PMI_RANK")
        .env_remove("PMI_SIZE")
        .output()
        .expect("the binary runs");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("mpirun -np 2"), "{stderr}");
    if cfg!(not(feature = "mpi")) {
        assert!(stderr.contains("--features mpi"), "{stderr}");
    }
}
