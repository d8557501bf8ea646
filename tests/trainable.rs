//! Keras's `trainable`: a frozen layer's weights stay as they are through `fit`, `summary`
//! counts them as non-trainable, and the flag survives save and load.

use serde_json::json;
use strata::prelude::*;
use strata::rng::Rng;
use strata::{Error, Tensor};

fn random(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n = shape.iter().product();
    Tensor::from_vec(shape.to_vec(), (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()).unwrap()
}

/// 4 inputs → a frozen Dense(3) (4·3 + 3 = 15 weights) → a trainable Dense(2) (3·2 + 2 = 8).
fn half_frozen() -> Model {
    let mut model = Sequential::new();
    model.seed(5);
    model
        .add(Input::new(&[4]))
        .add(Dense::new(3).activation("tanh").name("frozen").trainable(false))
        .add(Dense::new(2).name("head"));
    model.compile(Sgd::new(0.1), "mse", &[]).unwrap();
    model
}

#[test]
fn a_frozen_layer_keeps_its_exact_weights_through_fit() {
    let mut model = half_frozen();
    let before = model.weights();
    let options = FitOptions::default().epochs(3).batch_size(4).verbose(0);
    model.fit(&random(&[16, 4], 1), &random(&[16, 2], 2), options).unwrap();
    let after = model.weights();
    assert_eq!(before["frozen/kernel"], after["frozen/kernel"]);
    assert_eq!(before["frozen/bias"], after["frozen/bias"]);
    assert_ne!(before["head/kernel"], after["head/kernel"]);
}

#[test]
fn summary_counts_frozen_weights_as_non_trainable() {
    let summary = half_frozen().summary().unwrap();
    assert!(summary.contains("Total params: 23 "), "{summary}");
    assert!(summary.contains(" Trainable params: 8 "), "{summary}");
    assert!(summary.contains("Non-trainable params: 15 "), "{summary}");
}

#[test]
fn trainable_round_trips_through_save_and_load() {
    let mut model = half_frozen();
    let dir = std::env::temp_dir().join(format!("strata-trainable-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("frozen.safetensors");
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    let layers = &loaded.config()["config"]["layers"];
    let trainable: Vec<_> = layers
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["config"]["trainable"].clone())
        .collect();
    assert!(trainable.contains(&json!(false)), "{layers}");
    assert_eq!(loaded.summary().unwrap(), model.summary().unwrap());
}

#[test]
fn configs_read_trainable_and_refuse_a_non_flag() {
    let layer = strata::layers::from_config("Dense", &json!({"units": 2, "trainable": false})).unwrap();
    assert!(!layer.is_trainable());
    assert_eq!(layer.config()["trainable"], json!(false));
    let error = strata::layers::from_config("Dense", &json!({"units": 2, "trainable": "no"})).err();
    assert!(matches!(error, Some(Error::Data(why)) if why.contains("trainable")));
}
