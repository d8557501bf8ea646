//! Keras's `trainable`: a frozen layer's weights stay as they are through `fit`, `summary`
//! counts them as non-trainable, and the flag survives save and load.
mod common;

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
    let dir = std::env::temp_dir().join(format!("strata-trainable-{}", common::run_id()));
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

/// The weight of `model` named `name`.
fn weight(model: &Model, name: &str) -> Tensor {
    model.weights()[name].clone()
}

fn fit_a_little(model: &mut Model) {
    let options = FitOptions::default().epochs(3).batch_size(4).verbose(0);
    model.fit(&random(&[16, 4], 1), &random(&[16, 2], 2), options).unwrap();
}

/// 4 inputs → Dense(3) named "base" → Dense(2) named "head", all trainable, compiled with Adam.
fn unfrozen() -> Model {
    let mut model = Sequential::new();
    model.seed(5);
    model
        .add(Input::new(&[4]))
        .add(Dense::new(3).activation("tanh").name("base"))
        .add(Dense::new(2).name("head"));
    model.compile(Adam::new(0.01), "mse", &[]).unwrap();
    model
}

#[test]
fn freezing_after_compile_takes_effect_at_the_next_compile() {
    let mut model = unfrozen();
    model.get_layer_mut("base").unwrap().set_trainable(false);
    let before = weight(&model, "base/kernel");
    fit_a_little(&mut model);
    // As in Keras: not compiled again, the model still trains what it compiled as trainable.
    assert_ne!(before, weight(&model, "base/kernel"));
    model.compile(Adam::new(0.01), "mse", &[]).unwrap();
    let (base, head) = (weight(&model, "base/kernel"), weight(&model, "head/kernel"));
    fit_a_little(&mut model);
    assert_eq!(base, weight(&model, "base/kernel"));
    assert_ne!(head, weight(&model, "head/kernel"));
}

#[test]
fn unfreezing_and_compiling_again_trains_the_layer() {
    let mut model = half_frozen();
    model.get_layer_mut("frozen").unwrap().set_trainable(true);
    model.compile(Sgd::new(0.1), "mse", &[]).unwrap();
    let before = weight(&model, "frozen/kernel");
    fit_a_little(&mut model);
    assert_ne!(before, weight(&model, "frozen/kernel"));
}

#[test]
fn the_optimizer_keeps_no_slots_for_frozen_weights() {
    let mut model = unfrozen();
    model.get_layer_mut("base").unwrap().set_trainable(false);
    model.compile(Adam::new(0.01), "mse", &[]).unwrap();
    fit_a_little(&mut model);
    let slots = model.optimizer().unwrap().slots();
    let params = model.params();
    for id in params.ids() {
        let frozen = params.name(id).starts_with("base/");
        assert_eq!(slots.first()[id.index()].is_empty(), frozen, "{}", params.name(id));
        assert_eq!(slots.second()[id.index()].is_empty(), frozen, "{}", params.name(id));
    }
}

#[test]
fn summary_follows_set_trainable_before_compile() {
    let mut model = unfrozen();
    let all = model.summary().unwrap();
    assert!(all.contains(" Trainable params: 23 "), "{all}");
    model.set_trainable(false);
    assert!(!model.is_trainable());
    let none = model.summary().unwrap();
    assert!(none.contains(" Trainable params: 0 "), "{none}");
    assert!(none.contains("Non-trainable params: 23 "), "{none}");
    model.get_layer_mut("head").unwrap().set_trainable(true);
    model.compile("sgd", "mse", &[]).unwrap();
    assert_eq!(model.params().counts(), (23, 8));
}

#[test]
fn an_unknown_layer_name_lists_the_layers() {
    let mut model = unfrozen();
    let Err(Error::Usage(why)) = model.get_layer_mut("dense") else {
        panic!("an unknown name must be an error");
    };
    assert!(why.contains("'dense'") && why.contains("base, head"), "{why}");
    assert!(matches!(model.fine_tune_from("top"), Err(Error::Usage(why)) if why.contains("base, head")));
}

#[test]
fn fine_tune_from_freezes_the_layers_below() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4]))
        .add(Dense::new(4).name("a"))
        .add(Dense::new(4).name("b"))
        .add(BatchNormalization::new().name("bn"))
        .add(Dense::new(2).name("c"));
    model.set_trainable(false);
    model.fine_tune_from("b").unwrap();
    let flags: Vec<(&str, bool)> = model.layers()[1..]
        .iter()
        .map(|l| (l.name(), l.is_trainable()))
        .collect();
    assert_eq!(flags, [("a", false), ("b", true), ("bn", false), ("c", true)]);
}

#[test]
fn frozen_weights_survive_save_and_load_with_their_optimizer_state() {
    let mut model = unfrozen();
    model.get_layer_mut("base").unwrap().set_trainable(false);
    model.compile(Adam::new(0.01), "mse", &[]).unwrap();
    fit_a_little(&mut model);
    let path = std::env::temp_dir().join(format!("strata-frozen-adam-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert!(!loaded.get_layer("base").unwrap().is_trainable());
    assert_eq!(loaded.params().counts(), (23, 8));
    assert_eq!(loaded.optimizer().unwrap().slots(), model.optimizer().unwrap().slots());
    let (base, head) = (weight(&loaded, "base/kernel"), weight(&loaded, "head/kernel"));
    fit_a_little(&mut loaded);
    assert_eq!(base, weight(&loaded, "base/kernel"));
    assert_ne!(head, weight(&loaded, "head/kernel"));
}

/// 4 inputs → Dense(6) → BatchNormalization named "bn" → Dense(2), the statistics moved off
/// their initial zeros and ones so that using them shows.
fn with_batch_norm(trainable: bool) -> Model {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4]))
        .add(Dense::new(6))
        .add(BatchNormalization::new().momentum(0.5).name("bn").trainable(trainable))
        .add(Dense::new(2));
    model.compile(Sgd::new(0.1), "mse", &[]).unwrap();
    let params = model.params_mut();
    for id in params.ids().collect::<Vec<_>>() {
        if params.name(id).starts_with("bn/moving") {
            params.value_mut(id).map_in_place(|v| v * 2.0 + 0.25);
        }
    }
    model
}

#[test]
fn a_frozen_batch_normalization_keeps_its_statistics_through_fit() {
    let names = ["bn/moving_mean", "bn/moving_variance", "bn/gamma", "bn/beta"];
    let mut frozen = with_batch_norm(false);
    let before: Vec<Tensor> = names.iter().map(|n| weight(&frozen, n)).collect();
    fit_a_little(&mut frozen);
    for (name, before) in names.iter().zip(&before) {
        assert_eq!(before, &weight(&frozen, name), "{name}");
    }
    let mut trained = with_batch_norm(true);
    fit_a_little(&mut trained);
    assert_ne!(before[0], weight(&trained, "bn/moving_mean"));
}

#[test]
fn a_frozen_batch_normalization_runs_in_inference_mode_in_training() {
    use strata::autograd::{Graph, ParamStore, Tape};
    let x = random(&[8, 3], 3);
    let output = |trainable: bool, training: bool| {
        let mut params = ParamStore::new();
        let mut bn = BatchNormalization::new().name("bn").trainable(trainable);
        bn.build_one(&[3], &mut params, &mut Rng::new(0)).unwrap();
        let mut tape = Tape::new();
        let mut graph = Graph::new(&mut tape, &params, training);
        let input = graph.constant(&x);
        let y = bn.forward_one(&mut graph, input).unwrap();
        graph.value(y).clone()
    };
    assert_eq!(output(false, true), output(false, false));
    assert_ne!(output(true, true), output(true, false));
}

#[test]
fn no_gradient_flows_into_the_frozen_part() {
    use strata::autograd::{Graph, ParamStore, Tape};
    let mut params = ParamStore::new();
    let mut rng = Rng::new(0);
    let mut base = Dense::new(3).name("base").trainable(false);
    let mut head = Dense::new(2).name("head");
    base.build_one(&[4], &mut params, &mut rng).unwrap();
    head.build_one(&[3], &mut params, &mut rng).unwrap();
    let mut tape = Tape::new();
    let mut graph = Graph::new(&mut tape, &params, true);
    let x = graph.constant(&random(&[5, 4], 4));
    let hidden = base.forward_one(&mut graph, x).unwrap();
    let y = head.forward_one(&mut graph, hidden).unwrap();
    let loss = graph.sum(y);
    tape.backward(loss, &mut params);
    // The frozen layer's output needs no gradient, so none is made: the backward pass stops at
    // the first trainable layer.
    assert!(tape.grad(hidden).is_empty(), "{:?}", tape.grad(hidden));
    for id in params.ids() {
        let zero = params.grad(id).data().iter().all(|&g| g == 0.0);
        assert_eq!(zero, params.name(id).starts_with("base/"), "{}", params.name(id));
    }
}
