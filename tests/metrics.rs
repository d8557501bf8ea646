//! Keras's metrics besides accuracy (`mae`, `mse`, `root_mean_squared_error`, `mape`, top-k,
//! `precision`, `recall`, `auc`) through `compile`, `fit`, `evaluate` and the callbacks,
//! checked against values computed by hand from `predict`'s outputs.

use strata::callbacks::EarlyStopping;
use strata::prelude::*;
use strata::rng::Rng;

fn quiet() -> FitOptions<'static> {
    FitOptions::default().verbose(0).batch_size(16)
}

/// `y = 2·x₀ − x₁ + 0.5` with a little noise, 200 samples.
fn regression_data() -> (Tensor, Tensor) {
    let mut rng = Rng::new(7);
    let x: Vec<f32> = (0..400).map(|_| rng.normal()).collect();
    let y: Vec<f32> = x
        .chunks(2)
        .map(|p| 2.0 * p[0] - p[1] + 0.5 + 0.1 * rng.normal())
        .collect();
    (
        Tensor::from_vec(vec![200, 2], x).unwrap(),
        Tensor::from_vec(vec![200, 1], y).unwrap(),
    )
}

fn regression_model(metrics: &[&str]) -> Model {
    let mut model = Sequential::new();
    model.add(Input::new(&[2])).add(Dense::new(1));
    model.compile(Adam::new(0.05), "mse", metrics).unwrap();
    model
}

#[test]
fn regression_errors_match_the_predictions() {
    let (x, y) = regression_data();
    let mut model = regression_model(&["mae", "mse", "root_mean_squared_error", "mape"]);
    let history = model.fit(&x, &y, quiet().epochs(20).validation_split(0.25)).unwrap();
    let last = history.last().unwrap();
    for key in ["mae", "mse", "root_mean_squared_error", "mape", "val_mae", "val_mape"] {
        assert!(
            last.get(key).is_some_and(f32::is_finite),
            "no {key} in {:?}",
            last.keys()
        );
    }
    assert_eq!(history.get("mae").len(), 20);
    assert!(
        history.get("mae")[19] < history.get("mae")[0],
        "mae should fall while training"
    );
    let scores = model.evaluate(&x, &y, 32).unwrap();
    let predictions = model.predict(&x, 32).unwrap();
    let pairs: Vec<(f64, f64)> = predictions
        .data()
        .iter()
        .zip(y.data())
        .map(|(&p, &t)| (p as f64, t as f64))
        .collect();
    let n = pairs.len() as f64;
    let mae = pairs.iter().map(|(p, t)| (t - p).abs()).sum::<f64>() / n;
    let mse = pairs.iter().map(|(p, t)| (t - p).powi(2)).sum::<f64>() / n;
    let mape = pairs
        .iter()
        .map(|(p, t)| 100.0 * ((t - p) / t.abs().max(1e-7)).abs())
        .sum::<f64>()
        / n;
    let value = |key: &str| {
        scores
            .metrics
            .iter()
            .find(|(k, _)| k == key)
            .map(|&(_, v)| v as f64)
            .unwrap()
    };
    assert!((value("mae") - mae).abs() < 1e-5, "mae {} against {mae}", value("mae"));
    assert!((value("mse") - mse).abs() < 1e-5);
    assert!((value("root_mean_squared_error") - mse.sqrt()).abs() < 1e-5);
    assert!((value("mape") - mape).abs() < 1e-3 * mape.max(1.0));
    // Keras's loss here is the mse: the two agree.
    assert!((scores.loss as f64 - mse).abs() < 1e-4);
}

#[test]
fn classifier_scores_match_the_predictions() {
    let mut rng = Rng::new(3);
    let x: Vec<f32> = (0..600).map(|_| rng.normal()).collect();
    let y: Vec<f32> = x
        .chunks(3)
        .map(|p| (p[0] + 0.5 * p[1] + 0.8 * rng.normal() > 0.0) as u8 as f32)
        .collect();
    let (x, y) = (
        Tensor::from_vec(vec![200, 3], x).unwrap(),
        Tensor::from_vec(vec![200, 1], y).unwrap(),
    );
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Dense::new(1).activation("sigmoid"));
    model
        .compile(
            Adam::new(0.05),
            "binary_crossentropy",
            &["accuracy", "Precision", "recall", "AUC"],
        )
        .unwrap();
    model.fit(&x, &y, quiet().epochs(10)).unwrap();
    let scores = model.evaluate(&x, &y, 64).unwrap();
    let keys: Vec<&str> = scores.metrics.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(keys, ["precision", "recall", "auc"], "Keras's keys, in compile order");
    let p = model.predict(&x, 64).unwrap();
    let pairs: Vec<(f32, bool)> = p.data().iter().zip(y.data()).map(|(&p, &t)| (p, t > 0.5)).collect();
    let true_positives = pairs.iter().filter(|(p, t)| *p > 0.5 && *t).count() as f32;
    let predicted = pairs.iter().filter(|(p, _)| *p > 0.5).count() as f32;
    let actual = pairs.iter().filter(|(_, t)| *t).count() as f32;
    assert_eq!(scores.metrics[0].1, true_positives / predicted);
    assert_eq!(scores.metrics[1].1, true_positives / actual);
    // The exact ROC AUC (pairs ranked right); Keras's 200 thresholds come within a bucket's ties.
    let (positives, negatives): (Vec<_>, Vec<_>) = pairs.iter().partition(|(_, t)| *t);
    let ranked: f32 = positives
        .iter()
        .map(|(a, _)| {
            negatives
                .iter()
                .map(|(b, _)| {
                    if a > b {
                        1.0
                    } else if a == b {
                        0.5
                    } else {
                        0.0
                    }
                })
                .sum::<f32>()
        })
        .sum();
    let exact = ranked / (positives.len() * negatives.len()) as f32;
    assert!(
        (scores.metrics[2].1 - exact).abs() < 0.01,
        "auc {} against {exact}",
        scores.metrics[2].1
    );
    assert!(exact > 0.75, "the classifier should have learned something: {exact}");
}

#[test]
fn sparse_top_k_counts_labels_among_the_highest_outputs() {
    let mut rng = Rng::new(5);
    let x = Tensor::from_vec(vec![64, 4], (0..256).map(|_| rng.normal()).collect()).unwrap();
    let y = Tensor::from_vec(vec![64], (0..64).map(|i| (i % 10) as f32).collect()).unwrap();
    let mut model = Sequential::new();
    model.add(Input::new(&[4])).add(Dense::new(10).activation("softmax"));
    model
        .compile(
            "adam",
            "sparse_categorical_crossentropy",
            &["sparse_top_k_categorical_accuracy"],
        )
        .unwrap();
    let scores = model.evaluate(&x, &y, 16).unwrap();
    let p = model.predict(&x, 16).unwrap();
    let hits = p
        .data()
        .chunks(10)
        .zip(y.data())
        .filter(|&(row, label)| row.iter().filter(|&&v| v > row[*label as usize]).count() < 5)
        .count();
    assert_eq!(
        scores.metrics,
        vec![("sparse_top_k_categorical_accuracy".to_string(), hits as f32 / 64.0)]
    );
}

#[test]
fn early_stopping_watches_a_metric_by_its_key() {
    let (x, y) = regression_data();
    let mut model = regression_model(&["mae"]);
    let mut stopper = EarlyStopping::new("val_mae").patience(0).min_delta(10.0);
    let history = model
        .fit_with_callbacks(&x, &y, quiet().epochs(10).validation_split(0.25), &mut [&mut stopper])
        .unwrap();
    // No epoch improves val_mae by 10: training stops after the second.
    assert_eq!(history.epochs.len(), 2);
}

#[test]
fn bad_metric_names_and_shapes_are_errors() {
    let mut model = Sequential::new();
    model.add(Input::new(&[2])).add(Dense::new(3).activation("softmax"));
    let error = model
        .compile("adam", "sparse_categorical_crossentropy", &["f1"])
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("'f1'") && error.contains("mae") && error.contains("auc"),
        "{error}"
    );
    // mae pairs outputs with targets value by value: (4, 3) against integer labels (4,) do not pair.
    model
        .compile("adam", "sparse_categorical_crossentropy", &["mae"])
        .unwrap();
    let x = Tensor::zeros(&[4, 2]);
    let y = Tensor::from_slice(&[0.0, 1.0, 2.0, 0.0]);
    let error = model.evaluate(&x, &y, 4).unwrap_err().to_string();
    assert!(error.contains("mae") && error.contains("[4, 3]"), "{error}");
}

#[test]
fn compile_config_keeps_the_metrics() {
    let model = regression_model(&["mae", "AUC"]);
    assert_eq!(
        model.compile_config().unwrap()["metrics"],
        serde_json::json!(["mae", "auc"])
    );
}
