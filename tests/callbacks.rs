//! The callbacks behave as Keras's do: EarlyStopping, ModelCheckpoint, ReduceLROnPlateau,
//! LearningRateScheduler, CSVLogger and TerminateOnNaN, on scripted metric sequences where
//! the expected behaviour can be worked out by hand.
mod common;

use strata::model::EpochLogs;
use strata::prelude::*;

/// One neuron on y = x with a learning rate so high that every epoch makes the loss worse.
fn diverging() -> (Model, Tensor) {
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
    let dir = std::env::temp_dir().join(format!("strata-callbacks-{}", common::run_id()));
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
    let dir = std::env::temp_dir().join(format!("strata-callbacks-every-{}", common::run_id()));
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
    let message = error.to_string();
    assert!(
        message.contains("'val_los'") && message.contains("available: loss"),
        "{message}"
    );
    // A validation metric without validation data is named, with the metrics there are.
    let mut early = EarlyStopping::new("val_loss");
    let message = model
        .fit_with_callbacks(&x, &x, options(), &mut [&mut early])
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("validation_split") && message.contains("loss, learning_rate"),
        "{message}"
    );
}

/// Logs of epoch `epoch` with training loss `loss` (and nothing else).
fn logs(epoch: usize, loss: f32) -> EpochLogs {
    EpochLogs {
        epoch,
        loss,
        ..EpochLogs::default()
    }
}

/// A compiled one-weight model whose single weight can be set to mark an epoch.
fn marker_model(lr: f32) -> Model {
    let mut model = Sequential::new();
    model.add(Input::new(&[1])).add(Dense::new(1).use_bias(false));
    model.compile(Sgd::new(lr), "mse", &[]).unwrap();
    model
}

fn set_marker(model: &mut Model, value: f32) {
    let id = model.params().ids().next().unwrap();
    *model.params_mut().value_mut(id) = Tensor::from_vec(vec![1, 1], vec![value]).unwrap();
}

#[test]
fn early_stopping_follows_a_scripted_loss_sequence_and_restores_the_best_epoch() {
    // Best at epoch 2 (0.8); epochs 3 and 4 do not improve on it, so patience 2 stops at 4.
    let losses = [1.0, 0.8, 0.9, 0.85, 0.7];
    let mut model = marker_model(0.1);
    let mut early = EarlyStopping::new("loss").patience(2).restore_best_weights(true);
    let mut stopped = None;
    for (i, &loss) in losses.iter().enumerate() {
        set_marker(&mut model, (i + 1) as f32);
        if early.on_epoch_end(&mut model, &logs(i + 1, loss)).unwrap() == Control::Stop {
            stopped = Some(i + 1);
            break;
        }
    }
    assert_eq!(stopped, Some(4));
    assert_eq!(early.stopped_epoch, 4);
    assert_eq!(early.best_epoch, 2);
    // As in Keras 3, the best weights come back when training ends.
    early.on_train_end(&mut model, &History::default()).unwrap();
    let weight = model.params().ids().next().unwrap();
    assert_eq!(
        model.params().value(weight).data(),
        &[2.0],
        "weights of epoch 2 restored"
    );
    // min_delta: 0.8 → 0.79 is not an improvement of more than 0.05.
    let mut early = EarlyStopping::new("loss").patience(1).min_delta(0.05);
    assert_eq!(
        early.on_epoch_end(&mut model, &logs(1, 0.8)).unwrap(),
        Control::Continue
    );
    assert_eq!(early.on_epoch_end(&mut model, &logs(2, 0.79)).unwrap(), Control::Stop);
}

#[test]
fn early_stopping_restores_at_the_end_even_without_stopping_and_honours_baseline_and_warm_up() {
    // Never stops (patience 10), but epoch 2 was the best: Keras 3 restores it at the end.
    let losses = [1.0, 0.5, 0.9];
    let mut model = marker_model(0.1);
    let mut early = EarlyStopping::new("loss").patience(10).restore_best_weights(true);
    early.on_train_begin(&mut model).unwrap();
    for (i, &loss) in losses.iter().enumerate() {
        set_marker(&mut model, (i + 1) as f32);
        assert_eq!(
            early.on_epoch_end(&mut model, &logs(i + 1, loss)).unwrap(),
            Control::Continue
        );
    }
    early.on_train_end(&mut model, &History::default()).unwrap();
    let weight = model.params().ids().next().unwrap();
    assert_eq!(model.params().value(weight).data(), &[2.0]);
    assert_eq!(early.stopped_epoch, 0);

    // A baseline of 0.5: improving on the best (1.0 → 0.8) without beating the baseline still
    // uses up patience, so with patience 2 the first epoch that does not improve (3) stops;
    // without the baseline it would wait.
    for (baseline, third) in [(Some(0.5), Control::Stop), (None, Control::Continue)] {
        let mut early = EarlyStopping::new("loss").patience(2);
        if let Some(baseline) = baseline {
            early = early.baseline(baseline);
        }
        early.on_train_begin(&mut model).unwrap();
        assert_eq!(
            early.on_epoch_end(&mut model, &logs(1, 1.0)).unwrap(),
            Control::Continue
        );
        assert_eq!(
            early.on_epoch_end(&mut model, &logs(2, 0.8)).unwrap(),
            Control::Continue
        );
        assert_eq!(early.on_epoch_end(&mut model, &logs(3, 0.9)).unwrap(), third);
    }

    // start_from_epoch 2: epochs 1 and 2 are not monitored, so a loss that only rises from
    // epoch 3 on stops at epoch 4 with patience 1.
    let mut early = EarlyStopping::new("loss").patience(1).start_from_epoch(2);
    early.on_train_begin(&mut model).unwrap();
    let outcomes: Vec<Control> = [0.1, 0.2, 0.3, 0.4]
        .iter()
        .enumerate()
        .map(|(i, &loss)| early.on_epoch_end(&mut model, &logs(i + 1, loss)).unwrap())
        .collect();
    assert_eq!(
        outcomes,
        [Control::Continue, Control::Continue, Control::Continue, Control::Stop]
    );
}

#[test]
fn reduce_lr_on_plateau_cuts_the_rate_after_patience_epochs_and_cools_down() {
    let mut model = marker_model(0.1);
    let mut reduce = ReduceLROnPlateau::new("loss")
        .factor(0.5)
        .patience(2)
        .cooldown(1)
        .min_lr(0.02);
    reduce.on_train_begin(&mut model).unwrap();
    let mut rates = Vec::new();
    for epoch in 1..=8 {
        reduce.on_epoch_end(&mut model, &logs(epoch, 1.0)).unwrap();
        rates.push(model.optimizer().unwrap().learning_rate());
    }
    // Epoch 1 sets the best; 2 and 3 wait and 3 halves. Epoch 4 spends the cooldown, which
    // ends within that epoch, so (as in Keras) it already waits: 5 halves. 6 cools down and
    // waits, 7 would halve to 0.0125 but the floor is 0.02.
    let expected = [0.1, 0.1, 0.05, 0.05, 0.025, 0.025, 0.02, 0.02];
    for (rate, want) in rates.iter().zip(expected) {
        assert!((rate - want).abs() < 1e-7, "{rates:?}");
    }
    let mut bad = ReduceLROnPlateau::new("loss").factor(1.5);
    assert!(
        bad.on_train_begin(&mut model)
            .unwrap_err()
            .to_string()
            .contains("factor")
    );
}

#[test]
fn learning_rate_scheduler_and_csv_logger_record_each_epoch() {
    let path = std::env::temp_dir().join(format!("strata-log-{}.csv", common::run_id()));
    let mut model = marker_model(0.5);
    let x = Tensor::from_vec(vec![4, 1], vec![0.1, 0.2, 0.3, 0.4]).unwrap();
    let mut scheduler = LearningRateScheduler::new(|epoch, _| 0.01 * (epoch + 1) as f32);
    let mut logger = CSVLogger::new(&path);
    let history = model
        .fit_with_callbacks(&x, &x, options().epochs(3), &mut [&mut scheduler, &mut logger])
        .unwrap();
    assert_eq!(history.get("learning_rate"), vec![0.01, 0.02, 0.03]);
    let text = std::fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines[0], "epoch,learning_rate,loss");
    assert_eq!(lines.len(), 4, "{text}");
    for (i, line) in lines[1..].iter().enumerate() {
        let epoch = &history.epochs[i];
        assert_eq!(*line, format!("{i},{},{}", epoch.learning_rate.unwrap(), epoch.loss));
    }
    // Appending continues the file without a second header.
    let mut logger = CSVLogger::new(&path).append(true);
    model
        .fit_with_callbacks(&x, &x, options().epochs(1), &mut [&mut logger])
        .unwrap();
    let text = std::fs::read_to_string(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(text.lines().count(), 5);
    assert_eq!(text.matches("epoch").count(), 1);
    // The history as Keras's JSON layout.
    let json = history.to_json();
    assert_eq!(json["epoch"], serde_json::json!([1, 2, 3]));
    assert_eq!(json["loss"].as_array().unwrap().len(), 3);
    assert!(json.get("val_loss").is_none());
}

#[test]
fn terminate_on_nan_stops_where_fit_would_fail() {
    let x = Tensor::from_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 4.0]).unwrap();
    let mut model = marker_model(1e30);
    let error = model.fit(&x, &x, options()).unwrap_err();
    assert!(matches!(error, strata::Error::NonFiniteLoss { .. }), "{error}");
    let mut model = marker_model(1e30);
    let mut terminate = TerminateOnNaN::new();
    let history = model
        .fit_with_callbacks(&x, &x, options(), &mut [&mut terminate])
        .unwrap();
    let (epoch, batch) = terminate.stopped_at.expect("stopped");
    assert_eq!(batch, 1);
    assert_eq!(history.epochs.len(), epoch - 1);
}
