//! Functional models with several inputs and outputs: one loss per output and `loss_weights`,
//! per-output metrics in the logs, gradients of the weighted objective checked by finite
//! differences, save/load and model files, and the mistakes a user can make.

mod common;

use common::uniform;
use strata::prelude::*;

/// Two inputs (`a`: 4 values, `b`: 3 values) and two outputs: `class`, the index of the
/// largest value of `a` (softmax over 4), and `value`, the sum of `b` (linear).
fn two_headed(activation: &str) -> Model {
    let a = Input::node(&[4]);
    let b = Input::node(&[3]);
    let joined = Concatenate::new(-1).call_many(&[&a, &b]).unwrap();
    let hidden = Dense::new(32).activation(activation).call(&joined).unwrap();
    let class = Dense::new(4).activation("softmax").name("class").call(&hidden).unwrap();
    let value = Dense::new(1).name("value").call(&hidden).unwrap();
    Model::functional_multi(&[&a, &b], &[&class, &value]).unwrap()
}

/// `(a, b, class, value)` for `samples` random samples.
fn task(samples: usize, seed: u64) -> (Tensor, Tensor, Tensor, Tensor) {
    let a = uniform(&[samples, 4], 0.0, 1.0, seed);
    let b = uniform(&[samples, 3], -1.0, 1.0, seed + 1);
    let class = a
        .data()
        .chunks(4)
        .map(|row| (0..4).max_by(|&i, &j| row[i].total_cmp(&row[j])).unwrap() as f32)
        .collect();
    let value = b.data().chunks(3).map(|row| row.iter().sum()).collect();
    (
        a,
        b,
        Tensor::from_vec(vec![samples], class).unwrap(),
        Tensor::from_vec(vec![samples, 1], value).unwrap(),
    )
}

#[test]
fn two_inputs_and_two_outputs_train_to_both_targets() {
    let mut model = two_headed("relu");
    assert_eq!(model.input_count(), 2);
    assert_eq!(model.output_names(), ["class", "value"]);
    model
        .compile_outputs(
            Adam::new(0.01),
            &["sparse_categorical_crossentropy", "mse"],
            &[1.0, 0.5],
            &[&["accuracy"], &[]],
        )
        .unwrap();
    let (a, b, class, value) = task(2000, 3);
    let history = model
        .fit_multi(
            &[&a, &b],
            &[&class, &value],
            FitOptions::default()
                .epochs(30)
                .batch_size(64)
                .validation_split(0.2)
                .verbose(0),
        )
        .unwrap();
    let last = history.last().unwrap();
    for key in [
        "class_loss",
        "class_accuracy",
        "value_loss",
        "val_class_accuracy",
        "val_value_loss",
    ] {
        assert!(last.get(key).is_some(), "{key} missing from {:?}", last.keys());
    }
    assert_eq!(
        last.get("value_accuracy"),
        None,
        "no metric was asked for the value output"
    );
    assert_eq!(history.get("val_class_accuracy").len(), 30);
    let (a, b, class, value) = task(500, 99);
    let scores = model.evaluate_multi(&[&a, &b], &[&class, &value], 100).unwrap();
    let class_accuracy = scores.outputs[0].accuracy.unwrap();
    assert!(class_accuracy >= 0.9, "class accuracy {class_accuracy}");
    assert!(scores.outputs[1].loss < 0.01, "value mse {}", scores.outputs[1].loss);
    assert_eq!(
        scores.accuracy,
        Some(class_accuracy),
        "Scores::accuracy is the first output's"
    );
    let predictions = model.predict_multi(&[&a, &b], 128).unwrap();
    assert_eq!(predictions[0].shape(), [500, 4]);
    assert_eq!(predictions[1].shape(), [500, 1]);
    let json = history.to_json();
    assert_eq!(json["val_value_loss"].as_array().unwrap().len(), 30, "{json}");
}

#[test]
fn the_loss_is_the_weighted_sum_of_the_outputs_losses() {
    let (a, b, class, value) = task(64, 5);
    let mut model = two_headed("tanh");
    model
        .compile_outputs(
            Sgd::new(0.1),
            &["sparse_categorical_crossentropy", "mse"],
            &[0.3, 2.0],
            &[],
        )
        .unwrap();
    let scores = model.evaluate_multi(&[&a, &b], &[&class, &value], 16).unwrap();
    let expected = 0.3 * scores.outputs[0].loss + 2.0 * scores.outputs[1].loss;
    assert!((scores.loss - expected).abs() < 1e-5, "{} vs {expected}", scores.loss);
    // Cross-entropy of a near-uniform softmax over 4 classes at initialization.
    assert!(
        (scores.outputs[0].loss - 4f32.ln()).abs() < 0.5,
        "{}",
        scores.outputs[0].loss
    );
}

/// One full-batch SGD step moves each weight by `-lr × gradient`; the gradient of the weighted
/// objective must match central differences of `evaluate_multi`'s loss.
#[test]
fn gradients_of_the_weighted_objective_match_finite_differences() {
    let (a, b, class, value) = task(16, 8);
    let lr = 1e-3;
    let mut model = two_headed("tanh");
    model
        .compile_outputs(
            Sgd::new(lr),
            &["sparse_categorical_crossentropy", "mse"],
            &[0.7, 1.5],
            &[],
        )
        .unwrap();
    let before = model.weights();
    let mut stepped = two_headed("tanh");
    stepped
        .compile_outputs(
            Sgd::new(lr),
            &["sparse_categorical_crossentropy", "mse"],
            &[0.7, 1.5],
            &[],
        )
        .unwrap();
    stepped
        .fit_multi(
            &[&a, &b],
            &[&class, &value],
            FitOptions::default().batch_size(16).shuffle(false).verbose(0),
        )
        .unwrap();
    let after = stepped.weights();
    let eps = 1e-2;
    let mut checked = 0;
    for name in [
        "dense/kernel",
        "dense/bias",
        "class/kernel",
        "value/kernel",
        "value/bias",
    ] {
        let id = model
            .params()
            .ids()
            .find(|&id| model.params().name(id) == name)
            .unwrap();
        for index in [0, 5, 17].into_iter().filter(|&i| i < before[name].len()) {
            let analytic = (before[name].data()[index] - after[name].data()[index]) / lr;
            let original = before[name].data()[index];
            let mut loss_at = |w: f32| {
                model.params_mut().value_mut(id).data_mut()[index] = w;
                model.evaluate_multi(&[&a, &b], &[&class, &value], 16).unwrap().loss
            };
            let numeric = (loss_at(original + eps) - loss_at(original - eps)) / (2.0 * eps);
            loss_at(original);
            let error = (analytic - numeric).abs() / (analytic.abs() + numeric.abs()).max(1e-2);
            assert!(error < 0.02, "{name}[{index}]: analytic {analytic}, numeric {numeric}");
            checked += 1;
        }
    }
    assert!(checked >= 12);
}

#[test]
fn one_output_with_a_loss_weight_scales_the_loss() {
    let x = uniform(&[8, 3], -1.0, 1.0, 1);
    let y = uniform(&[8, 2], -1.0, 1.0, 2);
    let build = || {
        let mut model = Sequential::new();
        model.add(Input::new(&[3])).add(Dense::new(2));
        model
    };
    let mut plain = build();
    plain.compile("sgd", "mse", &[]).unwrap();
    let mut weighted = build();
    weighted.compile_outputs("sgd", &["mse"], &[2.5], &[]).unwrap();
    let plain = plain.evaluate(&x, &y, 8).unwrap().loss;
    let weighted = weighted.evaluate(&x, &y, 8).unwrap().loss;
    assert!((weighted - 2.5 * plain).abs() < 1e-6, "{weighted} vs 2.5 × {plain}");
}

#[test]
fn a_multi_io_model_saves_and_loads_with_its_losses() {
    let (a, b, class, value) = task(32, 11);
    let mut model = two_headed("relu");
    model
        .compile_outputs(
            "rmsprop",
            &["sparse_categorical_crossentropy", "mae"],
            &[1.0, 0.25],
            &[&["accuracy"], &[]],
        )
        .unwrap();
    model
        .fit_multi(&[&a, &b], &[&class, &value], FitOptions::default().verbose(0))
        .unwrap();
    let path = std::env::temp_dir().join(format!("strata-multi-io-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::io::load_model(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    assert_eq!(loaded.input_shapes(), [vec![4], vec![3]]);
    assert_eq!(loaded.output_names(), ["class", "value"]);
    assert_eq!(
        loaded.losses().unwrap(),
        [
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            Loss::MeanAbsoluteError
        ]
    );
    let expected = model.predict_multi(&[&a, &b], 8).unwrap();
    let got = loaded.predict_multi(&[&a, &b], 8).unwrap();
    assert_eq!(expected, got);
    let scores = loaded.evaluate_multi(&[&a, &b], &[&class, &value], 8).unwrap();
    let weighted = scores.outputs[0].loss + 0.25 * scores.outputs[1].loss;
    assert!(
        (scores.loss - weighted).abs() < 1e-5,
        "loss weights survive: {} vs {weighted}",
        scores.loss
    );
    assert!(scores.outputs[0].accuracy.is_some() && scores.outputs[1].accuracy.is_none());
}

#[test]
fn a_model_file_describes_inputs_outputs_and_per_output_losses() {
    let text = r#"{"class_name": "Functional", "config": {"name": "two", "layers": [
        {"class_name": "InputLayer", "name": "left", "config": {"batch_shape": [null, 2]}, "inbound_nodes": []},
        {"class_name": "InputLayer", "name": "right", "config": {"batch_shape": [null, 3]}, "inbound_nodes": []},
        {"class_name": "Concatenate", "name": "join", "config": {"axis": -1}, "inbound_nodes": [[["left", 0, 0, {}], ["right", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "label", "config": {"units": 3, "activation": "softmax"}, "inbound_nodes": [[["join", 0, 0, {}]]]},
        {"class_name": "Dense", "name": "score", "config": {"units": 1}, "inbound_nodes": [[["join", 0, 0, {}]]]}
      ],
      "input_layers": [["right", 0, 0], ["left", 0, 0]],
      "output_layers": [["score", 0, 0], ["label", 0, 0]]},
     "compile": {"optimizer": "adam", "loss": ["mse", "sparse_categorical_crossentropy"],
                 "loss_weights": [0.5, 1.0], "metrics": [[], ["accuracy"]]}}"#;
    let spec = strata::io::config::parse(text, strata::io::config::Format::Json, "two.json").unwrap();
    assert_eq!(
        spec.losses,
        [
            Loss::MeanSquaredError,
            Loss::SparseCategoricalCrossentropy { from_logits: false }
        ]
    );
    assert_eq!(spec.loss_weights, [0.5, 1.0]);
    assert_eq!(
        spec.metric_lists(),
        [Vec::<String>::new(), vec!["accuracy".to_string()]]
    );
    let mut model = spec.model;
    model.build_inputs(&[&[3], &[2]]).unwrap();
    assert_eq!(
        model.output_names(),
        ["score", "label"],
        "outputs in output_layers' order"
    );
    assert_eq!(model.output_shapes(), [&[1][..], &[3][..]]);
    // The saved config lists both inputs and outputs in order, and reads back the same.
    let config = model.config();
    assert_eq!(
        config["config"]["input_layers"],
        serde_json::json!([["right", 0, 0], ["left", 0, 0]])
    );
    assert_eq!(
        config["config"]["output_layers"],
        serde_json::json!([["score", 0, 0], ["label", 0, 0]])
    );
    let summary = model.summary().unwrap();
    assert!(
        summary.contains("left[0][0]") && summary.contains("right[0][0]"),
        "{summary}"
    );
}

#[test]
fn multi_io_mistakes_are_errors_naming_the_outputs() {
    let mut model = two_headed("relu");
    let error = model
        .compile_outputs("adam", &["mse"], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("'value' has no loss"), "{error}");
    let error = model
        .compile_outputs("adam", &["mse", "mse", "mse"], &[], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("3 losses for 2 output"), "{error}");
    let error = model
        .compile_outputs("adam", &["mse", "mse"], &[1.0], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("loss_weights"), "{error}");
    let error = model
        .compile_outputs("adam", &["mse", "mse"], &[1.0, f32::NAN], &[])
        .unwrap_err()
        .to_string();
    assert!(error.contains("loss_weights"), "{error}");

    model.compile("adam", "mse", &[]).unwrap();
    let (a, b, _, value) = task(8, 1);
    let error = model
        .fit_multi(&[&a, &b], &[&value], FitOptions::default().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(
        error.contains("2 output(s) (class, value)") && error.contains("1 y"),
        "{error}"
    );
    let error = model
        .fit_multi(&[&a], &[&value, &value], FitOptions::default().verbose(0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("takes 2 input(s)"), "{error}");
    let error = model.predict(&a, 8).unwrap_err().to_string();
    assert!(error.contains("predict_multi"), "{error}");
    let wrong_b = uniform(&[8, 5], 0.0, 1.0, 3);
    let error = model.predict_multi(&[&a, &wrong_b], 8).unwrap_err().to_string();
    assert!(error.contains("(None, 3)") && error.contains("(None, 5)"), "{error}");

    // An input that reaches no output.
    let a = Input::node(&[2]);
    let unused = Input::node(&[2]);
    let out = Dense::new(1).call(&a).unwrap();
    let error = Model::functional_multi(&[&a, &unused], &[&out])
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("input 1") && error.contains("not connected to any output"),
        "{error}"
    );
}
