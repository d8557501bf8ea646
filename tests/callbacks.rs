//! EarlyStopping and ModelCheckpoint behave as Keras's do.

use strata::prelude::*;

/// One neuron on y = x with a learning rate so high that every epoch makes the loss worse.
fn diverging() -> (Sequential, Tensor) {
    let mut model = Sequential::new();
    model.add(Input::new(&[1])).add(Dense::new(1));
    model.compile(Sgd::new(0.2), "mse", &[]).unwrap();
    (model, Tensor::from_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap())
}

fn options() -> FitOptions<'static> {
    FitOptions::default().epochs(10).batch_size(4).verbose(0)
}

#[test]
fn early_stopping_waits_patience_epochs_without_improvement() {
    // A learning rate of 0 keeps the loss constant: the first epoch is the best.
    let mut model = Sequential::new();
    model.add(Input::new(&[1])).add(Dense::new(1));
    model.compile(Sgd::new(0.0), "mse", &[]).unwrap();
    let x = Tensor::from_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut early = EarlyStopping::new("loss").patience(2);
    let history = model.fit_with_callbacks(&x, &x, options(), &mut [&mut early]).unwrap();
    assert_eq!(history.epochs.len(), 3);
    assert_eq!(early.stopped_epoch, 3);
}

#[test]
fn restore_best_weights_puts_back_the_best_epoch() {
    let dir = std::env::temp_dir().join(format!("strata-callbacks-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let best_file = dir.join("best.safetensors");
    let (mut model, x) = diverging();
    let mut early = EarlyStopping::new("loss").patience(1).restore_best_weights(true);
    let mut checkpoint = ModelCheckpoint::new(&best_file).monitor("loss").save_best_only(true);
    let history = model
        .fit_with_callbacks(&x, &x, options(), &mut [&mut checkpoint, &mut early])
        .unwrap();
    let losses = history.get("loss");
    assert_eq!(losses.len(), 2, "{losses:?}");
    assert!(losses[1] > losses[0], "the loss should get worse: {losses:?}");
    let best = strata::load_model(&best_file).unwrap();
    assert_eq!(best.epochs_trained(), 1);
    assert_eq!(model.weights(), best.weights());

    let (mut kept, x) = diverging();
    let mut early = EarlyStopping::new("loss").patience(1);
    kept.fit_with_callbacks(&x, &x, options(), &mut [&mut early]).unwrap();
    assert_ne!(kept.weights(), best.weights());
}

#[test]
fn checkpoints_follow_every_epoch_and_bad_monitors_are_errors() {
    let dir = std::env::temp_dir().join(format!("strata-callbacks-every-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("every.safetensors");
    let mut model = Sequential::new();
    model.add(Input::new(&[1])).add(Dense::new(1));
    model.compile(Sgd::new(0.01), "mse", &[]).unwrap();
    let x = Tensor::from_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut checkpoint = ModelCheckpoint::new(&file).monitor("loss");
    model
        .fit_with_callbacks(&x, &x, options().epochs(3), &mut [&mut checkpoint])
        .unwrap();
    let saved = strata::load_model(&file).unwrap();
    assert_eq!(saved.epochs_trained(), 3);
    assert_eq!(saved.weights(), model.weights());

    let mut typo = EarlyStopping::new("val_los");
    let error = model
        .fit_with_callbacks(&x, &x, options(), &mut [&mut typo])
        .unwrap_err();
    assert!(
        error.to_string().contains("val_los") && error.to_string().contains("val_loss"),
        "{error}"
    );
}
