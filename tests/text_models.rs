//! The character-level language model: `char_rnn` learns the bundled play, and the command line
//! trains a text model, saves it with its tokenizer and generates text from it.
mod common;

use strata::data::text::{Tokenizer, load_shakespeare, sliding_windows};
use strata::prelude::*;

#[test]
fn char_rnn_loss_falls_on_the_bundled_play() {
    let text = load_shakespeare().unwrap();
    // The first 60,000 characters (about a third of the play), to keep the test short.
    let text: String = text.chars().take(60_000).collect();
    let mut tokenizer = Tokenizer::new().char_level(true).lower(false);
    tokenizer.fit_on_texts(&[&text]).unwrap();
    let ids = tokenizer.encode(&text).unwrap();
    let (x, y) = sliding_windows(&ids, 40, 3).unwrap();
    // Its Embedding and output sized from the text's vocabulary, as `strata train` sizes them.
    let spec = strata::io::config::load_model_spec("char_rnn")
        .unwrap()
        .with_vocabulary(tokenizer.vocabulary_size())
        .unwrap();
    let mut model = spec.model;
    model.compile(spec.optimizer, spec.loss, &["accuracy"]).unwrap();
    let history = model
        .fit(
            &x,
            &y,
            FitOptions::default().epochs(2).batch_size(spec.batch_size).verbose(0),
        )
        .unwrap();
    let losses = history.get("loss");
    // A model that learned only character frequencies stays near their entropy, about 3.0
    // nats; uniform guessing over 66 ids costs ln 66 = 4.19. Measured here: 3.07, then 2.49.
    assert!(losses[1] < 2.6, "char_rnn training loss after 2 epochs: {losses:?}");
}

#[test]
fn the_command_line_trains_a_text_model_and_generates_from_it() {
    let dir = std::env::temp_dir().join(format!("strata-text-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let corpus = dir.join("corpus.txt");
    let play: String = load_shakespeare().unwrap().chars().take(4000).collect();
    std::fs::write(&corpus, &play).unwrap();
    let model = dir.join("model.safetensors");
    let strata = env!("CARGO_BIN_EXE_strata");
    let trained = std::process::Command::new(strata)
        .args([
            "train",
            "--model",
            "char_rnn",
            "--epochs",
            "1",
            "--json",
            "--verbose",
            "0",
            "--data",
        ])
        .arg(&corpus)
        .arg("--save")
        .arg(&model)
        .output()
        .unwrap();
    assert!(trained.status.success(), "{}", String::from_utf8_lossy(&trained.stderr));
    let report: serde_json::Value =
        serde_json::from_str(String::from_utf8_lossy(&trained.stdout).lines().last().unwrap()).unwrap();
    let loss = report["epochs"][0]["loss"].as_f64().unwrap();
    let perplexity = report["epochs"][0]["perplexity"].as_f64().unwrap();
    assert!((perplexity - loss.exp()).abs() < 1e-3 * perplexity, "{report}");
    assert!(report["test_perplexity"].as_f64().is_some(), "{report}");

    let generated = std::process::Command::new(strata)
        .args([
            "generate", "--prompt", "To be", "--length", "30", "--seed", "7", "--model",
        ])
        .arg(&model)
        .output()
        .unwrap();
    assert!(
        generated.status.success(),
        "{}",
        String::from_utf8_lossy(&generated.stderr)
    );
    let text = String::from_utf8(generated.stdout).unwrap();
    let text = text.trim_end_matches('\n');
    assert!(text.starts_with("To be"), "{text:?}");
    assert_eq!(text.chars().count(), 35, "{text:?}");
    // Every generated character comes from the corpus.
    assert!(text.chars().all(|c| play.contains(c)), "{text:?}");

    let unknown = std::process::Command::new(strata)
        .args(["generate", "--prompt", "~Zq", "--model"])
        .arg(&model)
        .output()
        .unwrap();
    assert!(!unknown.status.success());
    let error = String::from_utf8_lossy(&unknown.stderr);
    assert!(error.contains("\"~\""), "{error}");
    let empty = dir.join("empty.txt");
    std::fs::write(&empty, "").unwrap();
    let failed = std::process::Command::new(strata)
        .args(["train", "--model", "char_rnn", "--epochs", "1", "--data"])
        .arg(&empty)
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(
        String::from_utf8_lossy(&failed.stderr).contains("empty"),
        "{}",
        String::from_utf8_lossy(&failed.stderr)
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// Gives `to` the weights of `from`, by name.
fn copy_weights(from: &Model, to: &mut Model) {
    let weights = from.weights();
    let ids: Vec<_> = to.params().ids().collect();
    for id in ids {
        let name = to.params().name(id).to_string();
        *to.params_mut().value_mut(id) = weights[&name].clone();
    }
}

/// Keras's `keras.Input(shape=(None,))` (a sequence of any length, as keras.io's text models
/// declare it): the model is built when it first meets data, for that data's length; its
/// config keeps the `null`; data of another rank is refused naming both shapes.
#[test]
fn an_input_of_any_length_is_built_for_the_first_data() {
    let text = r#"{"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, null]}},
        {"class_name": "Embedding", "config": {"input_dim": 20, "output_dim": 4}},
        {"class_name": "LSTM", "config": {"units": 3}},
        {"class_name": "Dense", "config": {"units": 1, "activation": "sigmoid"}}
    ]}"#;
    let mut model = strata::io::config::parse(text, strata::io::config::Format::Json, "test")
        .unwrap()
        .model;
    assert!(model.input_shapes().is_empty(), "built before any data");
    let input = &model.layers()[0];
    assert_eq!(input.config()["batch_shape"], serde_json::json!([null, null]));
    let ids = Tensor::from_vec(vec![4, 7], (0..28).map(|i| (i % 20) as f32).collect()).unwrap();
    let labels = Tensor::from_vec(vec![4, 1], vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    model
        .compile(
            Adam::new(0.01),
            Loss::BinaryCrossentropy {
                from_logits: false,
                label_smoothing: 0.0,
            },
            &[],
        )
        .unwrap();
    let options = FitOptions::default().epochs(1).batch_size(2).verbose(0);
    model.fit(&ids, &labels, options).unwrap();
    assert_eq!(model.input_shapes(), &[vec![7]]);
    assert_eq!(model.count_params(), 20 * 4 + 4 * 3 * (4 + 3 + 1) + 3 + 1);
    let predicted = model.predict(&ids, 4).unwrap();
    assert_eq!(predicted.shape(), &[4, 1]);
    // Another length: the same weights, planned anew (as Keras runs it). The first three steps
    // of a sequence alone give what a fresh model of length 3 with these weights gives.
    let short = Tensor::from_vec(vec![4, 3], (0..12).map(|i| (i % 20) as f32).collect()).unwrap();
    let on_short = model.predict(&short, 4).unwrap();
    assert_eq!(model.input_shapes(), &[vec![3]]);
    let mut fresh = strata::io::config::parse(text, strata::io::config::Format::Json, "test")
        .unwrap()
        .model;
    fresh.build(&[3]).unwrap();
    copy_weights(&model, &mut fresh);
    assert_eq!(fresh.predict(&short, 4).unwrap().data(), on_short.data());
    assert_eq!(model.predict(&ids, 4).unwrap().data(), predicted.data());
    assert_eq!(model.count_params(), 20 * 4 + 4 * 3 * (4 + 3 + 1) + 3 + 1);
    let matrix = Tensor::from_vec(vec![2, 7, 2], vec![0.0; 28]).unwrap();
    let error = model.predict(&matrix, 2).unwrap_err().to_string();
    assert!(error.contains("(None, 7)") && error.contains("(None, 7, 2)"), "{error}");
    // Convolutions and global pooling over the steps run any length too (each call pools its
    // own steps).
    let pooled = r#"{"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, null]}},
        {"class_name": "Embedding", "config": {"input_dim": 20, "output_dim": 4}},
        {"class_name": "Conv1D", "config": {"filters": 8, "kernel_size": 2, "activation": "relu"}},
        {"class_name": "GlobalMaxPooling1D", "config": {}},
        {"class_name": "Dense", "config": {"units": 1}}
    ]}"#;
    let parse = |text| {
        strata::io::config::parse(text, strata::io::config::Format::Json, "test")
            .unwrap()
            .model
    };
    let mut pooled_model = parse(pooled);
    pooled_model.predict(&ids, 4).unwrap();
    let on_short = pooled_model.predict(&short, 4).unwrap();
    let mut fresh = parse(pooled);
    fresh.build(&[3]).unwrap();
    copy_weights(&pooled_model, &mut fresh);
    assert_eq!(fresh.predict(&short, 4).unwrap().data(), on_short.data());
    // A layer whose weights depend on the length (Dense after Flatten) keeps its first.
    let flat = r#"{"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, null]}},
        {"class_name": "Embedding", "config": {"input_dim": 20, "output_dim": 4}},
        {"class_name": "Flatten", "config": {}},
        {"class_name": "Dense", "config": {"units": 1}}
    ]}"#;
    let mut flat = strata::io::config::parse(flat, strata::io::config::Format::Json, "test")
        .unwrap()
        .model;
    flat.predict(&ids, 4).unwrap();
    let error = flat.predict(&short, 4).unwrap_err().to_string();
    assert!(error.contains("(None, 7)") && error.contains("(None, 3)"), "{error}");
}
