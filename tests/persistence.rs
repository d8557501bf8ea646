//! Saving and loading models: safetensors files with the architecture and compile settings in
//! their metadata, weights-only files, and clear errors for files that do not fit.
mod common;

use strata::prelude::*;
use strata::rng::Rng;
use strata::{Error, Tensor};

fn temp_path(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-persistence-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir.join(name)
}

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), (0..n).map(|_| rng.uniform(0.0, 1.0)).collect()).unwrap()
}

fn labels(n: usize, classes: usize, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    Tensor::from_vec(vec![n], (0..n).map(|_| rng.below(classes) as f32).collect()).unwrap()
}

fn mlp(seed: u64) -> Model {
    let mut model = Sequential::new();
    model.seed(seed);
    model
        .add(Input::new(&[6, 4]))
        .add(Flatten::new())
        .add(Dense::new(16).activation("relu"))
        .add(Dense::new(3).activation("softmax"));
    model
}

fn trained_mlp() -> (Model, Tensor) {
    let mut model = mlp(3);
    model
        .compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    let x = random(&[64, 6, 4], 1);
    model
        .fit(
            &x,
            &labels(64, 3, 2),
            FitOptions::default().epochs(2).batch_size(16).verbose(0),
        )
        .unwrap();
    (model, x)
}

#[test]
fn a_saved_model_loads_with_identical_predictions_and_settings() {
    let (mut model, x) = trained_mlp();
    let path = temp_path("mlp.safetensors");
    model.save(&path).unwrap();
    let mut restored = strata::load_model(&path).unwrap();
    assert_eq!(model.predict(&x, 32).unwrap(), restored.predict(&x, 32).unwrap());
    assert_eq!(model.summary().unwrap(), restored.summary().unwrap());
    let optimizer = restored.optimizer().unwrap();
    assert_eq!(optimizer.class_name(), "Adam");
    assert!((optimizer.learning_rate() - 0.01).abs() < 1e-9);
    assert_eq!(restored.loss(), model.loss());
    let y = labels(64, 3, 2);
    assert_eq!(
        model.evaluate(&x, &y, 32).unwrap(),
        restored.evaluate(&x, &y, 32).unwrap()
    );
}

#[test]
fn the_file_is_plain_safetensors_with_keras_names_and_layouts() {
    let (model, _) = trained_mlp();
    let path = temp_path("names.safetensors");
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut names: Vec<&str> = file
        .names()
        .into_iter()
        .filter(|n| !n.starts_with("optimizer/"))
        .collect();
    names.sort();
    assert_eq!(names, ["dense/bias", "dense/kernel", "dense_1/bias", "dense_1/kernel"]);
    let kernel = file.tensor("dense/kernel").unwrap();
    assert_eq!(kernel.shape(), &[24, 16]);
    let first = f32::from_le_bytes(kernel.data()[..4].try_into().unwrap());
    assert_eq!(first, model.weights()["dense/kernel"].data()[0]);
}

#[test]
fn weights_load_into_the_same_architecture_and_are_refused_by_another() {
    let (mut model, x) = trained_mlp();
    let path = temp_path("weights.safetensors");
    model.save_weights(&path).unwrap();
    let mut fresh = mlp(99);
    fresh.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
    assert_ne!(fresh.predict(&x, 32).unwrap(), model.predict(&x, 32).unwrap());
    fresh.load_weights(&path).unwrap();
    assert_eq!(fresh.predict(&x, 32).unwrap(), model.predict(&x, 32).unwrap());

    let mut wider = Sequential::new();
    wider
        .add(Input::new(&[6, 4]))
        .add(Flatten::new())
        .add(Dense::new(17).activation("relu"))
        .add(Dense::new(3));
    wider.compile("adam", "mse", &[]).unwrap();
    let message = wider.load_weights(&path).unwrap_err().to_string();
    assert!(
        message.contains("dense/kernel") && message.contains("[24, 16]") && message.contains("[24, 17]"),
        "{message}"
    );

    let mut deeper = mlp(1);
    deeper.add(Dense::new(2));
    deeper.compile("adam", "mse", &[]).unwrap();
    let message = deeper.load_weights(&path).unwrap_err().to_string();
    assert!(message.contains("dense_2/kernel"), "{message}");

    let error = strata::load_model(&path).unwrap_err();
    assert!(
        matches!(error, Error::File { .. }) && error.to_string().contains("architecture"),
        "{error}"
    );
}

#[test]
fn truncated_or_foreign_files_are_file_errors() {
    let (model, _) = trained_mlp();
    let path = temp_path("cut.safetensors");
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    for cut in [0, 7, 100, bytes.len() - 1] {
        std::fs::write(&path, &bytes[..cut]).unwrap();
        let error = strata::load_model(&path).unwrap_err();
        assert!(matches!(error, Error::File { .. }), "cut at {cut}: {error}");
    }
    std::fs::write(&path, b"not a model at all, just some text that is long enough").unwrap();
    assert!(matches!(strata::load_model(&path).unwrap_err(), Error::File { .. }));
    assert!(matches!(
        strata::load_model(temp_path("missing.safetensors")).unwrap_err(),
        Error::File { .. }
    ));
}

#[test]
fn a_cnn_with_logits_round_trips() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[8, 8, 1]))
        .add(Conv2D::new(4, 3).padding("same").activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(3, (2, 2)).strides(2))
        .add(GlobalAveragePooling2D::new())
        .add(Dense::new(5));
    model
        .compile(
            RMSprop::new(0.002),
            Loss::SparseCategoricalCrossentropy { from_logits: true },
            &["accuracy"],
        )
        .unwrap();
    let x = random(&[20, 8, 8, 1], 5);
    model
        .fit(
            &x,
            &labels(20, 5, 6),
            FitOptions::default().epochs(1).batch_size(10).verbose(0),
        )
        .unwrap();
    let path = temp_path("cnn.safetensors");
    model.save(&path).unwrap();
    let mut restored = strata::load_model(&path).unwrap();
    assert_eq!(model.predict(&x, 8).unwrap(), restored.predict(&x, 8).unwrap());
    assert_eq!(
        restored.loss(),
        Some(Loss::SparseCategoricalCrossentropy { from_logits: true })
    );
    assert_eq!(restored.optimizer().unwrap().class_name(), "RMSprop");
}

#[test]
fn an_unbuilt_model_cannot_be_saved() {
    let mut model = Sequential::new();
    model.add(Dense::new(3));
    let error = model.save(temp_path("unbuilt.safetensors")).unwrap_err();
    assert!(matches!(error, Error::Usage(_)), "{error}");
}

#[test]
fn two_epochs_saved_and_resumed_for_three_equal_five_uninterrupted() {
    let (x, y) = (random(&[96, 6, 4], 11), labels(96, 3, 12));
    let options = FitOptions::default().batch_size(16).verbose(0).validation_split(0.25);
    let compiled = || {
        let mut model = mlp(7);
        model
            .compile(Adam::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])
            .unwrap();
        model
    };
    let mut straight = compiled();
    let full = straight.fit(&x, &y, options.clone().epochs(5)).unwrap();

    let mut first = compiled();
    first.fit(&x, &y, options.clone().epochs(2)).unwrap();
    let path = temp_path("resume.safetensors");
    first.save(&path).unwrap();
    let mut resumed = strata::load_model(&path).unwrap();
    assert_eq!(resumed.epochs_trained(), 2);
    assert_eq!(resumed.optimizer().unwrap().iterations(), 10);
    let rest = resumed.fit(&x, &y, options.clone().epochs(5).initial_epoch(2)).unwrap();

    assert_eq!(
        straight.weights(),
        resumed.weights(),
        "resumed weights differ from an uninterrupted run"
    );
    assert_eq!(rest.epochs.len(), 3);
    assert_eq!(rest.get("loss"), full.get("loss")[2..].to_vec());
    assert_eq!(resumed.epochs_trained(), 5);
}

/// Stops training after a given batch of a given epoch, as Ctrl-C does in the CLI.
struct StopAt {
    epoch: usize,
    batch: usize,
}

impl Callback for StopAt {
    fn on_batch_end(&mut self, _: &mut Model, epoch: usize, batch: usize, _: f32) -> strata::Result<Control> {
        Ok(if (epoch, batch) == (self.epoch, self.batch) {
            Control::Stop
        } else {
            Control::Continue
        })
    }
}

#[test]
fn a_run_stopped_mid_epoch_resumes_exactly() {
    let (x, y) = (random(&[80, 6, 4], 21), labels(80, 3, 22));
    let options = FitOptions::default().batch_size(16).verbose(0).epochs(3);
    let compiled = || {
        let mut model = mlp(8);
        model
            .compile(RMSprop::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])
            .unwrap();
        model
    };
    let mut straight = compiled();
    straight.fit(&x, &y, options.clone()).unwrap();

    let mut stopped = compiled();
    let history = stopped
        .fit_with_callbacks(&x, &y, options.clone(), &mut [&mut StopAt { epoch: 2, batch: 3 }])
        .unwrap();
    assert_eq!(history.epochs.len(), 1);
    assert_eq!((stopped.epochs_trained(), stopped.batches_into_epoch()), (1, 3));
    let path = temp_path("stopped.safetensors");
    stopped.save(&path).unwrap();
    let mut resumed = strata::load_model(&path).unwrap();
    assert_eq!((resumed.epochs_trained(), resumed.batches_into_epoch()), (1, 3));
    let resume = options
        .initial_epoch(resumed.epochs_trained())
        .initial_batch(resumed.batches_into_epoch());
    resumed.fit(&x, &y, resume).unwrap();
    assert_eq!(straight.weights(), resumed.weights());
}
