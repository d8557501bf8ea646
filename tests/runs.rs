//! Runs described on the command line and carried by saved models: regularization that keeps
//! residual graphs, and models of every data source (text, CSV, image folders, MNIST) that
//! save, resume and evaluate with the first run's flags or none (`strata::run`).

use std::path::{Path, PathBuf};

mod common;
use common::{interrupt_cnn_training, small_mnist, strata, write_digit_folders};

/// Runs `strata` and returns its final JSON line; fails the test on a failing status.
fn strata_json(args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = strata(args);
    assert_eq!(code, 0, "strata {args:?}\n{stderr}");
    serde_json::from_str(stdout.lines().last().expect("some output")).expect("the last line is JSON")
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-runs-{name}-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Trains `char_rnn` for one epoch on the play's first `characters` characters, saved in `dir`:
/// the text file, the model file and the run's report.
fn first_char_rnn_run(dir: &Path, characters: usize) -> (PathBuf, PathBuf, serde_json::Value) {
    let play = strata::data::text::load_shakespeare().unwrap();
    let small = dir.join("small.txt");
    std::fs::write(&small, &play[..characters]).unwrap();
    let saved = dir.join("c.safetensors");
    let report = strata_json(&[
        "train",
        "--model",
        "char_rnn",
        "--data",
        text(&small),
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--json",
        "--save",
        text(&saved),
    ]);
    (small, saved, report)
}

#[test]
fn dropout_and_l2_keep_the_residual_connections_of_resnet_and_resmlp() {
    let dir = scratch("regularized");
    let mnist = dir.join("mnist");
    small_mnist(&mnist, 512, 128);
    for model in ["resnet", "resmlp"] {
        let saved = dir.join(format!("{model}.safetensors"));
        let report = strata_json(&[
            "train",
            "--model",
            model,
            "--data",
            text(&mnist),
            "--l2",
            "1e-4",
            "--dropout",
            "0.1",
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--json",
            "--save",
            text(&saved),
        ]);
        let loss = report["epochs"][0]["loss"].as_f64().unwrap();
        assert!(loss.is_finite(), "{model}: {report}");
        let trained = strata::load_model(&saved).unwrap();
        let classes: Vec<&str> = trained.layers().iter().map(|l| l.class_name()).collect();
        assert!(classes.contains(&"Add"), "{model}: {classes:?}");
        assert!(classes.contains(&"Dropout"), "{model}: {classes:?}");
        let config = trained.config().to_string();
        assert!(config.contains("\"l2\""), "{model}: no L2 penalty in {config}");
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_text_model_saves_resumes_and_evaluates_without_data_flags() {
    let dir = scratch("text");
    let (small, saved, first) = first_char_rnn_run(&dir, 20_000);
    // Resuming finds the text (not MNIST, not a CSV) and the tokenizer from the model file.
    // Saved elsewhere: a resumed run would otherwise save back to the file it resumed.
    let elsewhere = dir.join("resumed.safetensors");
    let resumed = strata_json(&[
        "train",
        "--resume",
        text(&saved),
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--json",
        "--save",
        text(&elsewhere),
    ]);
    assert_eq!(resumed["epochs"][0]["epoch"], 2, "{resumed}");
    assert!(resumed["epochs"][0]["loss"].as_f64().unwrap() < first["epochs"][0]["loss"].as_f64().unwrap());
    // The same flags as the first run work too.
    let (code, _, stderr) = strata(&[
        "train",
        "--resume",
        text(&saved),
        "--data",
        text(&small),
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--save",
        text(&elsewhere),
    ]);
    assert_eq!(code, 0, "{stderr}");
    let evaluated = strata_json(&["evaluate", "--model", text(&saved), "--json"]);
    let test_loss = first["test_loss"].as_f64().unwrap();
    assert!(
        (evaluated["test_loss"].as_f64().unwrap() - test_loss).abs() < 1e-4,
        "{evaluated} vs {first}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_csv_model_saves_resumes_and_evaluates_without_data_flags() {
    let dir = scratch("csv");
    // y = 1 when x0 + x1 > 1: a separable table.
    let mut rows = String::from("x0,x1,label\n");
    let mut rng = strata::rng::Rng::new(3);
    for _ in 0..400 {
        let (a, b) = (rng.uniform(0.0, 1.0), rng.uniform(0.0, 1.0));
        rows += &format!("{a},{b},{}\n", u8::from(a + b > 1.0));
    }
    let (train, test) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&train, &rows).unwrap();
    std::fs::write(
        &test,
        &rows[..rows.len() / 2 + rows[rows.len() / 2..].find('\n').unwrap() + 1],
    )
    .unwrap();
    let model = dir.join("table.toml");
    std::fs::write(
        &model,
        r#"name = "table"
[compile]
optimizer = { class_name = "Adam", config = { learning_rate = 0.05 } }
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]
[fit]
epochs = 1
batch_size = 16
[[layers]]
class_name = "InputLayer"
config = { shape = [2] }
[[layers]]
class_name = "Dense"
config = { units = 8, activation = "relu" }
[[layers]]
class_name = "Dense"
config = { units = 2, activation = "softmax" }
"#,
    )
    .unwrap();
    let saved = dir.join("table.safetensors");
    // Resumed runs save elsewhere: by default they would save back to the file they resumed.
    let elsewhere = dir.join("resumed.safetensors");
    let args = ["--data", text(&train), "--test-data", text(&test), "--label", "label"];
    let mut first_args = vec![
        "train",
        "--model",
        text(&model),
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--json",
    ];
    first_args.extend(args);
    first_args.extend(["--save", text(&saved)]);
    let first = strata_json(&first_args);
    let resumed = strata_json(&[
        "train",
        "--resume",
        text(&saved),
        "--epochs",
        "6",
        "--verbose",
        "0",
        "--json",
        "--save",
        text(&elsewhere),
    ]);
    assert_eq!(resumed["epochs"].as_array().unwrap().len(), 4, "{resumed}");
    assert!(resumed["test_accuracy"].as_f64().unwrap() >= 0.9, "{resumed}");
    let mut again = vec![
        "train",
        "--resume",
        text(&saved),
        "--epochs",
        "3",
        "--verbose",
        "0",
        "--json",
        "--save",
        text(&elsewhere),
    ];
    again.extend(args);
    strata_json(&again);
    let evaluated = strata_json(&["evaluate", "--model", text(&saved), "--json"]);
    assert_eq!(evaluated["samples"], 200, "{evaluated}");
    assert!((evaluated["test_loss"].as_f64().unwrap() - first["test_loss"].as_f64().unwrap()).abs() < 1e-5);
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn an_image_folder_model_saves_resumes_and_evaluates_without_data_flags() {
    let dir = scratch("folders");
    let images = dir.join("digits");
    write_digit_folders(&images, 40);
    let saved = dir.join("folders.safetensors");
    strata_json(&[
        "train",
        "--data",
        text(&images),
        "--epochs",
        "5",
        "--verbose",
        "0",
        "--json",
        "--save",
        text(&saved),
    ]);
    let resumed = strata_json(&[
        "train",
        "--resume",
        text(&saved),
        "--epochs",
        "7",
        "--verbose",
        "0",
        "--json",
    ]);
    assert_eq!(resumed["epochs"].as_array().unwrap().len(), 2, "{resumed}");
    let evaluated = strata_json(&["evaluate", "--model", text(&saved), "--json"]);
    assert_eq!(evaluated["samples"], 80, "{evaluated}");
    assert!(evaluated["test_accuracy"].as_f64().unwrap() >= 0.9, "{evaluated}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn resuming_on_data_that_does_not_fit_the_model_names_both_shapes() {
    let dir = scratch("mismatch");
    let (_, saved, _) = first_char_rnn_run(&dir, 5_000);
    let mnist = dir.join("mnist");
    small_mnist(&mnist, 64, 16);
    let (code, _, stderr) = strata(&[
        "train",
        "--resume",
        text(&saved),
        "--data",
        text(&mnist),
        "--epochs",
        "2",
        "--verbose",
        "0",
    ]);
    assert_eq!(code, 1, "{stderr}");
    assert!(
        stderr.contains("(None, 40)") && stderr.contains("(None, 28, 28)") && stderr.contains("MNIST"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn the_ctrl_c_hint_resumes_the_interrupted_run() {
    let dir = scratch("hint");
    let mnist = dir.join("mnist");
    small_mnist(&mnist, 4096, 256);
    let checkpoint = dir.join("interrupted.safetensors");
    let (code, _, stderr) = interrupt_cnn_training(&["--data", text(&mnist), "--checkpoint", text(&checkpoint)]);
    assert_eq!(code, Some(130), "{stderr}");
    let hint = stderr
        .lines()
        .find_map(|l| l.strip_prefix("resume with: strata "))
        .unwrap_or_else(|| panic!("no hint in {stderr}"));
    // The printed command, asked to finish only the interrupted epoch.
    let mut args: Vec<&str> = hint.split_whitespace().collect();
    args.extend(["--epochs", "1", "--verbose", "0", "--json"]);
    let report = strata_json(&args);
    assert_eq!(report["epochs"][0]["epoch"], 1, "{report}");
    assert!(report["test_accuracy"].as_f64().unwrap() > 0.5, "{report}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_run_record_naming_a_device_or_a_missing_file_is_refused_before_reading() {
    use strata::prelude::*;
    let dir = scratch("record");
    let mut model = Sequential::new();
    model.add(Input::new(&[40])).add(Dense::new(2));
    model.compile("sgd", "mse", &[]).unwrap();
    for (kind, path) in [("text", "/dev/zero"), ("csv", "/no/such/table.csv")] {
        let data = if kind == "text" {
            serde_json::json!({"kind": "text", "path": path})
        } else {
            serde_json::json!({"kind": "csv", "train": path, "test": null, "label": null})
        };
        let record = serde_json::json!({"data": data, "epochs": 1, "batch_size": 32, "validate_on_test": false});
        model.set_attachment("run", record.to_string());
        let saved = dir.join(format!("{kind}.safetensors"));
        model.save(&saved).unwrap();
        for args in [
            vec!["evaluate", "--model", text(&saved)],
            vec!["train", "--resume", text(&saved), "--verbose", "0"],
        ] {
            let (code, _, stderr) = strata(&args);
            assert_eq!(code, 1, "{args:?}: {stderr}");
            assert!(
                stderr.contains(path) && stderr.contains("regular file"),
                "{args:?}: {stderr}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_nan_in_a_csv_table_is_refused_naming_line_and_column_unless_allowed() {
    let dir = scratch("csv-nan");
    let mut rows = String::from("x0,x1,label\n");
    for i in 0..40 {
        rows += &format!("{},{},{}\n", i % 2, (i / 2) % 2, i % 2);
    }
    let (train, test) = (dir.join("train.csv"), dir.join("test.csv"));
    std::fs::write(&train, &rows).unwrap();
    // One NaN feature in the test table, on its third line.
    std::fs::write(&test, "x0,x1,label\n1,0,1\n0,NaN,0\n").unwrap();
    let model = dir.join("table.toml");
    std::fs::write(
        &model,
        "[compile]\nloss = \"sparse_categorical_crossentropy\"\n\
         [[layers]]\nclass_name = \"InputLayer\"\nconfig = { shape = [2] }\n\
         [[layers]]\nclass_name = \"Dense\"\nconfig = { units = 2, activation = \"softmax\" }\n",
    )
    .unwrap();
    let args = [
        "train",
        "--model",
        text(&model),
        "--data",
        text(&train),
        "--test-data",
        text(&test),
        "--epochs",
        "1",
        "--verbose",
        "0",
    ];
    let (code, _, stderr) = strata(&args);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("test.csv") && stderr.contains("line 3, column 'x1'") && stderr.contains("NaN"),
        "{stderr}"
    );
    let (code, _, stderr) = strata(&[&args[..], &["--allow-nonfinite"]].concat());
    assert_eq!(code, 0, "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}
