//! Text models fit the text they train on (#24 item 4): `char_rnn` and `char_transformer` leave
//! their token table and output to the text's vocabulary (`"auto"`), so any text trains; a size
//! set too small in a model file is an error naming both sizes, without Rust debug values.

mod common;
use common::strata;
use std::path::{Path, PathBuf};
use strata::io::config::load_model_spec;
use strata::run::{DataSource, sized_for_data};

/// A text of exactly 99 distinct characters (the 94 printable ASCII ones after the space, and
/// five accented letters), long enough for a few hundred 40-character windows.
fn text_of_99_characters() -> String {
    let alphabet: String = ('!'..='~').chain("éüßñø".chars()).collect();
    assert_eq!(alphabet.chars().count(), 99);
    alphabet.repeat(30)
}

/// A fresh folder holding the 99-character text.
fn scratch(name: &str) -> (PathBuf, PathBuf) {
    let dir = std::env::temp_dir().join(format!("strata-text-vocabulary-{name}-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let text = dir.join("ninety_nine.txt");
    std::fs::write(&text, text_of_99_characters()).unwrap();
    (dir, text)
}

fn path(path: &Path) -> &str {
    path.to_str().unwrap()
}

#[test]
fn named_text_models_size_themselves_from_a_99_character_text_and_generate_from_it() {
    let (dir, text) = scratch("train");
    for model in ["char_rnn", "char_transformer"] {
        let saved = dir.join(format!("{model}.safetensors"));
        let (code, _, stderr) = strata(&[
            "train",
            "--model",
            model,
            "--data",
            path(&text),
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--save",
            path(&saved),
        ]);
        assert_eq!(code, 0, "{model}: {stderr}");
        // 99 characters and the padding id 0: the output Dense and the Embedding both 100.
        let (code, summary, stderr) = strata(&["summary", "--model", path(&saved)]);
        assert_eq!(code, 0, "{stderr}");
        assert!(summary.contains("(None, 100)"), "{model}: {summary}");
        let (code, generated, stderr) = strata(&[
            "generate",
            "--model",
            path(&saved),
            "--prompt",
            "abc",
            "--length",
            "60",
            "--seed",
            "1",
        ]);
        assert_eq!(code, 0, "{model}: {stderr}");
        let alphabet = text_of_99_characters();
        let continuation = generated
            .trim_end_matches('\n')
            .strip_prefix("abc")
            .unwrap_or(&generated);
        assert_eq!(continuation.chars().count(), 60, "{model}: {generated:?}");
        assert!(
            continuation.chars().all(|c| alphabet.contains(c)),
            "{model}: {generated:?}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_model_file_with_too_small_sizes_names_both_without_rust_debug_values() {
    let (dir, text) = scratch("small");
    let (_, named) = strata::io::config::NAMED_MODELS
        .iter()
        .find(|(name, _)| *name == "char_rnn")
        .unwrap();
    // The output Dense set to the bundled play's 66, then the Embedding too.
    let small_output = named.replacen(r#"units = "auto""#, "units = 66", 1);
    let small_table = named.replacen(r#"input_dim = "auto""#, "input_dim = 66", 1);
    for (file, expected) in [
        ("small_output.toml", &["(None, 66)", "at least 100 units"][..]),
        (
            "small_table.toml",
            &["Embedding 'embedding' has input_dim 66", "at least 100"][..],
        ),
    ] {
        let model = dir.join(file);
        let description = if file == "small_output.toml" {
            &small_output
        } else {
            &small_table
        };
        std::fs::write(&model, description).unwrap();
        let (code, _, stderr) = strata(&[
            "train",
            "--model",
            path(&model),
            "--data",
            path(&text),
            "--epochs",
            "1",
            "--verbose",
            "0",
        ]);
        assert_eq!(code, 1, "{stderr}");
        assert!(stderr.contains("100 tokens"), "{stderr}");
        assert!(expected.iter().all(|part| stderr.contains(part)), "{stderr}");
        assert!(!stderr.contains("Some("), "a Rust debug value: {stderr}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn open_sizes_need_a_text_and_take_its_vocabulary() {
    let spec = load_model_spec("char_rnn").unwrap();
    assert_eq!(
        spec.open_sizes,
        ["input_dim of layers[1] (Embedding)", "units of layers[3] (Dense)"]
    );
    let error = sized_for_data(spec, &DataSource::Mnist { dir: None })
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("model 'char_rnn' leaves input_dim of layers[1] (Embedding) and units of layers[3] (Dense)")
            && error.contains("MNIST")
            && error.contains("--data"),
        "{error}"
    );
    // The bundled play: 65 characters and padding, as the named models were sized before.
    let spec = load_model_spec("char_transformer").unwrap();
    let (mut spec, tokenizer) = sized_for_data(spec, &DataSource::Text { path: None }).unwrap();
    assert_eq!(tokenizer.unwrap().vocabulary_size(), 66);
    spec.model
        .compile("adam", "sparse_categorical_crossentropy", &[])
        .unwrap();
    assert_eq!(spec.model.output_shape(), Some(&[66][..]));
    // "auto" where no vocabulary fits is an error naming the layer and key.
    let text = r#"{"layers": [{"class_name": "InputLayer", "config": {"shape": [4]}},
                              {"class_name": "LSTM", "config": {"units": "auto"}}]}"#;
    let error = strata::io::config::parse(text, strata::io::config::Format::Json, "m.json")
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.starts_with("m.json: layers[1] (LSTM): LSTM \"units\" = \"auto\""),
        "{error}"
    );
}

#[test]
fn summary_of_a_named_text_model_shows_the_bundled_play_vocabulary() {
    let (code, summary, stderr) = strata(&["summary", "--model", "char_rnn"]);
    assert_eq!(code, 0, "{stderr}");
    assert!(summary.contains("(None, 66)"), "{summary}");
}

/// Messages of the data path print shapes as Keras and NumPy do, never Rust's `[4, 3]` or
/// `Some(..)`.
#[test]
fn data_errors_print_shapes_as_keras_does() {
    use strata::prelude::*;
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Dense::new(2).activation("softmax"));
    model.compile("sgd", "sparse_categorical_crossentropy", &[]).unwrap();
    let x = Tensor::zeros(&[4, 3]);
    let options = || FitOptions::default().epochs(1).verbose(0);
    let error = model.fit(&x, &Tensor::zeros(&[5]), options()).unwrap_err().to_string();
    assert!(
        error.contains("x has 4 (shape (4, 3)), y has 5 (shape (5,))"),
        "{error}"
    );
    let error = model
        .fit(&x, &Tensor::zeros(&[4, 2]), options())
        .unwrap_err()
        .to_string();
    assert!(error.contains("but y has shape (4, 2);"), "{error}");
    let mut images = Tensor::zeros(&[2, 8, 8]);
    let error = strata::data::ImageAugmentation::default()
        .rotation_range(10.0)
        .augment_batch(&mut images, &mut strata::rng::Rng::new(0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("received shape (2, 8, 8);"), "{error}");
}
