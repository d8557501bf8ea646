//! The `strata` command line, run as a user runs it.

mod common;
use common::{interrupt_cnn_training, strata, write_digit_folders};

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("some output")).expect("the last line is JSON")
}

#[test]
fn summaries_show_keras_parameter_counts() {
    for (model, params) in [("mlp", "101,770"), ("mlp2", "109,386"), ("cnn", "93,322")] {
        let (code, stdout, _) = strata(&["summary", "--model", model]);
        assert_eq!(code, 0);
        assert!(stdout.contains(&format!("Total params: {params}")), "{model}: {stdout}");
    }
}

#[test]
fn linreg_learns_the_identity_and_reports_json() {
    let (code, stdout, _) = strata(&["train", "--model", "linreg", "--verbose", "0", "--json"]);
    assert_eq!(code, 0);
    let report = last_json(&stdout);
    assert_eq!(report["epochs"].as_array().unwrap().len(), 1000);
    let predictions: Vec<f64> = report["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap())
        .collect();
    for (got, want) in predictions.iter().zip([1.0, 2.0, 3.0, 4.0]) {
        assert!((got - want).abs() < 0.05, "{predictions:?}");
    }
}

#[test]
fn early_stopping_says_when_it_stopped_and_which_weights_it_restored() {
    // A learning rate of 10 makes the one-neuron regression diverge: epoch 2 is worse than 1.
    let args = ["train", "--model", "linreg", "--lr", "10", "--early-stopping", "0"];
    let (code, stdout, stderr) = strata(&[&args[..], &["--verbose", "2"]].concat());
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Epoch 2: early stopping"), "{stdout}");
    assert!(
        stdout.contains("Restoring model weights from the end of the best epoch: 1."),
        "{stdout}"
    );
    let (code, stdout, _) = strata(&[&args[..], &["--verbose", "0"]].concat());
    assert_eq!(code, 0);
    assert!(!stdout.contains("early stopping"), "{stdout}");
}

#[test]
fn help_and_messages_say_what_exists_and_what_to_do() {
    // A named model where a saved one is needed says how to get one.
    for command in [
        &["evaluate", "--model", "cnn"][..],
        &["predict", "--model", "cnn", "digit.png"],
    ] {
        let (code, _, stderr) = strata(command);
        assert_eq!(code, 1, "{stderr}");
        assert!(
            stderr.contains("'cnn' is a named model") && stderr.contains("--save cnn.safetensors"),
            "{stderr}"
        );
    }
    // Help lists every schedule the parser takes, and summary reads a .keras file.
    let (_, help, _) = strata(&["train", "--help"]);
    for name in strata::optimizers::SCHEDULE_SPEC_NAMES {
        assert!(help.contains(name), "{name} missing from: {help}");
    }
    let keras = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keras/application_blocks.keras"
    );
    let (code, stdout, stderr) = strata(&["summary", "--model", keras]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("Total params: 483"), "{stdout}");
}

#[test]
fn train_save_evaluate_and_predict_images() {
    let dir = std::env::temp_dir().join(format!("strata-cli-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let model = dir.join("mlp.safetensors");
    let model = model.to_str().unwrap();
    let (code, stdout, stderr) = strata(&["train", "--epochs", "1", "--verbose", "0", "--json", "--save", model]);
    assert_eq!(code, 0, "{stderr}");
    let trained = last_json(&stdout);
    assert!(trained["test_accuracy"].as_f64().unwrap() >= 0.95, "{trained}");

    let (code, stdout, _) = strata(&["evaluate", "--model", model, "--json"]);
    assert_eq!(code, 0);
    let evaluated = last_json(&stdout);
    assert_eq!(evaluated["test_accuracy"], trained["test_accuracy"]);

    // The first test digits, written as PNG files: 7, 2, 1.
    let ((_, _), (x_test, y_test)) = strata::data::mnist::load_data().unwrap();
    let mut paths = Vec::new();
    for i in 0..3 {
        let pixels: Vec<u8> = x_test.data()[i * 784..(i + 1) * 784].iter().map(|&v| v as u8).collect();
        let path = dir.join(format!("digit{i}.png"));
        image::GrayImage::from_raw(28, 28, pixels).unwrap().save(&path).unwrap();
        paths.push(path.to_str().unwrap().to_string());
    }
    let mut args = vec!["predict", "--model", model, "--json"];
    args.extend(paths.iter().map(String::as_str));
    let (code, stdout, stderr) = strata(&args);
    assert_eq!(code, 0, "{stderr}");
    let predictions = last_json(&stdout);
    for (i, prediction) in predictions.as_array().unwrap().iter().enumerate() {
        assert_eq!(
            prediction["top"][0]["class"].as_f64().unwrap() as f32,
            y_test.data()[i],
            "{prediction}"
        );
        assert_eq!(prediction["top"].as_array().unwrap().len(), 3);
    }
}

#[test]
fn bad_arguments_are_clear_errors_with_a_failing_status() {
    let (code, _, stderr) = strata(&["train", "--batch-size", "0", "--epochs", "1", "--verbose", "0"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("batch_size"), "{stderr}");
    let (code, _, stderr) = strata(&["train", "--optimizer", "adamm", "--epochs", "1"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("unknown optimizer 'adamm'") && stderr.contains("rmsprop"),
        "{stderr}"
    );
    let (code, _, stderr) = strata(&["train", "--model", "no-such-model.toml"]);
    assert_eq!(code, 1);
    assert!(
        stderr.contains("no-such-model.toml") && stderr.contains("mlp"),
        "{stderr}"
    );
    let (code, _, stderr) = strata(&["evaluate", "--model", "missing.safetensors"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("missing.safetensors"), "{stderr}");
}

#[test]
fn trains_on_a_folder_of_images_per_class() {
    let dir = std::env::temp_dir().join(format!("strata-cli-folders-{}", common::run_id()));
    write_digit_folders(&dir, 60);
    let data = dir.to_str().unwrap();
    let args = [
        "train",
        "--data",
        data,
        "--epochs",
        "5",
        "--validation-split",
        "0.25",
        "--verbose",
        "0",
        "--json",
    ];
    let (code, stdout, stderr) = strata(&args);
    assert_eq!(code, 0, "{stderr}");
    let report = last_json(&stdout);
    let last = report["epochs"].as_array().unwrap().last().unwrap().clone();
    assert!(last["val_accuracy"].as_f64().unwrap() >= 0.9, "{report}");
}

#[test]
fn a_resumed_run_ends_where_an_uninterrupted_one_does() {
    let dir = std::env::temp_dir().join(format!("strata-cli-resume-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (straight, first, resumed) = (
        path("straight.safetensors"),
        path("first.safetensors"),
        path("resumed.safetensors"),
    );
    // Augmentation and dropout draw from the step count, so they resume exactly too.
    let quiet = ["--verbose", "0", "--json", "--augment"];
    let run = |extra: &[&str]| {
        let mut args = vec!["train"];
        args.extend(extra);
        args.extend(quiet);
        let (code, stdout, stderr) = strata(&args);
        assert_eq!(code, 0, "{stderr}");
        last_json(&stdout)
    };
    let uninterrupted = run(&["--epochs", "2", "--dropout", "0.1", "--save", &straight]);
    run(&["--epochs", "1", "--dropout", "0.1", "--save", &first]);
    let continued = run(&["--resume", &first, "--epochs", "2", "--save", &resumed]);
    assert_eq!(continued["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(continued["epochs"][0]["epoch"], 2);
    assert_eq!(continued["test_loss"], uninterrupted["test_loss"]);
    let weights = |file: &str| {
        let bytes = std::fs::read(file).unwrap();
        let tensors = safetensors::SafeTensors::deserialize(&bytes).unwrap();
        tensors.tensor("dense/kernel").unwrap().data().to_vec()
    };
    assert_eq!(weights(&straight), weights(&resumed));
}

#[test]
fn ctrl_c_saves_a_checkpoint_and_exits_130() {
    let dir = std::env::temp_dir().join(format!("strata-cli-sigint-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let checkpoint = dir.join("interrupted.safetensors");
    let (code, rest, stderr) = interrupt_cnn_training(&["--checkpoint", checkpoint.to_str().unwrap()]);
    assert_eq!(code, Some(130), "{stderr}");
    assert!(
        stderr.contains("checkpoint saved to") && stderr.contains("--resume"),
        "{stderr}"
    );
    let model = strata::load_model(&checkpoint).unwrap();
    assert_eq!(model.epochs_trained(), 0, "{rest}");
    assert!(
        model.batches_into_epoch() > 0 && model.batches_into_epoch() < 938,
        "{}",
        model.batches_into_epoch()
    );
}

#[test]
fn toolkit_flags_regularize_schedule_and_chart_the_training() {
    let dir = std::env::temp_dir().join(format!("strata-cli-toolkit-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = |name: &str| dir.join(name).to_str().unwrap().to_string();
    let (model, history, curves, matrix) = (
        path("mlp.safetensors"),
        path("history.json"),
        path("curves.png"),
        path("matrix.png"),
    );
    let (code, stdout, stderr) = strata(&[
        "train",
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--json",
        "--dropout",
        "0.2",
        "--l2",
        "1e-5",
        "--lr-schedule",
        "exponential:decay_steps=1000,decay_rate=0.5",
        "--augment",
        "--validation-split",
        "0.1",
        "--history",
        &history,
        "--plot",
        &curves,
        "--save",
        &model,
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report = last_json(&stdout);
    assert!(report["test_accuracy"].as_f64().unwrap() >= 0.93, "{report}");
    // 54,000 training images in batches of 32 are 1,688 steps: lr = 0.001 · 0.5^1.688.
    let history: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&history).unwrap()).unwrap();
    let lr = history["learning_rate"][0].as_f64().unwrap();
    assert!((lr - 0.001 * 0.5f64.powf(1688.0 / 1000.0)).abs() < 1e-7, "{history}");
    assert_eq!(history["val_accuracy"].as_array().unwrap().len(), 1);
    let chart = image::open(&curves).unwrap();
    assert_eq!((chart.width(), chart.height()), (1000, 400));
    // The saved model has the Dropout layers the flag inserted and the L2 penalties.
    let (code, stdout, _) = strata(&["summary", "--model", &model]);
    assert_eq!(code, 0);
    assert!(stdout.contains("dropout (Dropout)"), "{stdout}");
    let (code, stdout, stderr) = strata(&["evaluate", "--model", &model, "--json", "--confusion-matrix", &matrix]);
    assert_eq!(code, 0, "{stderr}");
    let evaluated = last_json(&stdout);
    let counts = evaluated["confusion_matrix"]["counts"].as_array().unwrap();
    let total: u64 = counts
        .iter()
        .flat_map(|row| row.as_array().unwrap())
        .map(|v| v.as_u64().unwrap())
        .sum();
    assert_eq!(total, 10_000);
    let diagonal: u64 = (0..10).map(|i| counts[i][i].as_u64().unwrap()).sum();
    let accuracy = evaluated["test_accuracy"].as_f64().unwrap();
    assert!((diagonal as f64 / 10_000.0 - accuracy).abs() < 1e-6, "{evaluated}");
    assert!(image::open(&matrix).is_ok());
    // Bad values are clear errors.
    let (code, _, stderr) = strata(&["train", "--epochs", "1", "--dropout", "1.5", "--verbose", "0"]);
    assert_eq!(code, 1);
    assert!(stderr.contains("rate") && stderr.contains("[0, 1)"), "{stderr}");
    let (code, _, stderr) = strata(&[
        "train",
        "--epochs",
        "1",
        "--lr-schedule",
        "cosine:decay_step=5",
        "--verbose",
        "0",
    ]);
    assert_eq!(code, 1);
    assert!(stderr.contains("decay_step"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn bench_reports_step_time_predict_latency_and_peak_memory() {
    let (code, stdout, stderr) = strata(&[
        "bench",
        "--model",
        "mlp",
        "--steps",
        "3",
        "--predictions",
        "50",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let report = last_json(&stdout);
    assert_eq!(report["steps"], 3);
    assert_eq!(report["batch_size"], 32);
    assert_eq!(report["predictions"], 50);
    let (p50, p99) = (
        report["predict_p50_ms"].as_f64().unwrap(),
        report["predict_p99_ms"].as_f64().unwrap(),
    );
    assert!(0.0 < p50 && p50 <= p99, "{report}");
    // The model's weights and the 5 batches of random data alone take more than 1 MB.
    assert!(report["peak_rss_mb"].as_f64().unwrap() > 1.0, "{report}");

    // With a single call, the 50th and 99th percentiles are that call.
    let (code, stdout, _) = strata(&["bench", "--steps", "1", "--predictions", "1", "--json"]);
    assert_eq!(code, 0);
    let report = last_json(&stdout);
    assert_eq!(report["predict_p50_ms"], report["predict_p99_ms"]);
}

#[test]
fn bench_all_times_the_three_classic_models_one_line_each() {
    let (code, stdout, stderr) = strata(&[
        "bench",
        "--model",
        "all",
        "--steps",
        "1",
        "--predictions",
        "1",
        "--json",
    ]);
    assert_eq!(code, 0, "{stderr}");
    let reports: Vec<serde_json::Value> = stdout
        .lines()
        .filter(|line| line.starts_with('{'))
        .map(|line| serde_json::from_str(line).expect("one JSON object per line"))
        .collect();
    let models: Vec<&str> = reports.iter().map(|r| r["model"].as_str().unwrap()).collect();
    assert_eq!(models, ["mlp", "mlp2", "cnn"]);
    let batch_sizes: Vec<u64> = reports.iter().map(|r| r["batch_size"].as_u64().unwrap()).collect();
    assert_eq!(batch_sizes, [32, 32, 64]);
    assert!(reports.iter().all(|r| r["ms_per_step"].as_f64().unwrap() > 0.0));
}
