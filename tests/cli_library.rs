//! The command line and the library agree (#24 item 8): a named model trained by `strata train`
//! with a seed has bit for bit the weights of the same model trained in a program, whether the
//! program reads the model file (`load_model_spec`) or builds it as the example that mirrors it
//! does (`examples/mlp.rs`, `examples/cnn.rs`), on the same data prepared the same way.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use strata::data::{mnist, scale, to_categorical};
use strata::io::config::load_model_spec;
use strata::layers::{Conv2D, MaxPooling2D};
use strata::prelude::*;

mod common;
use common::{small_mnist, strata};

/// Training images in the small MNIST folder: a few steps of each batch size.
const TRAIN: usize = 160;

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-cli-library-{name}-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Every weight of `model` by name.
fn weights(model: &Model) -> BTreeMap<String, Vec<f32>> {
    let params = model.params();
    params
        .ids()
        .map(|id| (params.name(id).to_string(), params.value(id).data().to_vec()))
        .collect()
}

/// Asserts bit-identical weights (NaN-safe and sign-of-zero-exact, through the bits).
fn assert_same_weights(cli: &Model, library: &Model, what: &str) {
    let (cli, library) = (weights(cli), weights(library));
    assert_eq!(
        cli.keys().collect::<Vec<_>>(),
        library.keys().collect::<Vec<_>>(),
        "{what}: weight names"
    );
    for (name, values) in &cli {
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        let first = values
            .iter()
            .zip(&library[name])
            .position(|(a, b)| a.to_bits() != b.to_bits());
        assert_eq!(
            bits(values),
            bits(&library[name]),
            "{what}: weight {name} differs first at {first:?}"
        );
    }
}

/// `strata train --model NAME --data DIR --epochs 1 --seed 0`, saved and loaded back.
fn cli_model(name: &str, data: &Path, dir: &Path) -> Model {
    let saved = dir.join(format!("{name}.safetensors"));
    let (code, _, stderr) = strata(&[
        "train",
        "--model",
        name,
        "--data",
        data.to_str().unwrap(),
        "--epochs",
        "1",
        "--seed",
        "0",
        "--verbose",
        "0",
        "--save",
        saved.to_str().unwrap(),
    ]);
    assert_eq!(code, 0, "{stderr}");
    strata::load_model(&saved).unwrap()
}

/// The named model read from its model file, compiled as the file says and fitted for one
/// epoch with `fit`'s defaults otherwise.
fn spec_model(name: &str, x: &Tensor, y: &Tensor) -> Model {
    let spec = load_model_spec(name).unwrap();
    let mut model = spec.model;
    let metrics: Vec<&str> = spec.metrics.iter().map(String::as_str).collect();
    model.compile(spec.optimizer, spec.loss, &metrics).unwrap();
    let options = FitOptions::default().epochs(1).batch_size(spec.batch_size).verbose(0);
    model.fit(x, y, options).unwrap();
    model
}

#[test]
fn mlp_trained_by_the_cli_the_model_file_and_the_example_has_the_same_weights() {
    let dir = scratch("mlp");
    small_mnist(&dir.join("data"), TRAIN, 16);
    let cli = cli_model("mlp", &dir.join("data"), &dir);

    // As examples/mlp.rs prepares the data.
    let ((x_train, y_train), _) = mnist::load_data_from(dir.join("data")).unwrap();
    let x_train = scale(&x_train, 1.0 / 255.0);
    assert_same_weights(
        &cli,
        &spec_model("mlp", &x_train, &y_train),
        "mlp: CLI against the model file",
    );

    // As examples/mlp.rs builds, compiles and fits the model.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28]))
        .add(Flatten::new())
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    let options = FitOptions::default().epochs(1).batch_size(32).verbose(0);
    model.fit(&x_train, &y_train, options).unwrap();
    assert_same_weights(&cli, &model, "mlp: CLI against examples/mlp.rs");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn cnn_trained_by_the_cli_the_model_file_and_the_example_has_the_same_weights() {
    let dir = scratch("cnn");
    small_mnist(&dir.join("data"), TRAIN, 16);
    let cli = cli_model("cnn", &dir.join("data"), &dir);

    // As examples/cnn.rs prepares the data.
    let ((x_train, y_train), _) = mnist::load_data_from(dir.join("data")).unwrap();
    let rows = x_train.rows();
    let mut x_train = x_train.reshape(&[rows, 28, 28, 1]).unwrap();
    strata::data::scale_in_place(&mut x_train, 1.0 / 255.0);
    let y_train = to_categorical(&y_train, 10).unwrap();
    assert_same_weights(
        &cli,
        &spec_model("cnn", &x_train, &y_train),
        "cnn: CLI against the model file",
    );

    // As examples/cnn.rs builds, compiles and fits the model.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(32, (3, 3)).activation("relu"))
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation("relu"))
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model
        .compile(RMSprop::new(0.001), "categorical_crossentropy", &["accuracy"])
        .unwrap();
    let options = FitOptions::default().epochs(1).batch_size(64).verbose(0);
    model.fit(&x_train, &y_train, options).unwrap();
    assert_same_weights(&cli, &model, "cnn: CLI against examples/cnn.rs");
    std::fs::remove_dir_all(&dir).ok();
}
