//! The command line against a hostile user (issue #21): output paths checked before the first
//! step, resumes that tell the truth, flags out of range refused by name, `generate` that
//! streams and never draws an id it cannot print.

use std::collections::HashMap;
use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

mod common;
use common::{small_mnist, strata};

/// Runs `strata` and returns its final JSON line and stderr; fails on a failing status.
fn strata_json(args: &[&str]) -> (serde_json::Value, String) {
    let (code, stdout, stderr) = strata(args);
    assert_eq!(code, 0, "strata {args:?}\n{stderr}");
    let report = serde_json::from_str(stdout.lines().last().expect("some output")).expect("the last line is JSON");
    (report, stderr)
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-hardening-{name}-{}", common::run_id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// `dir/mnist` with 256 training and 64 test images: eight batches of 32.
fn mnist_in(dir: &Path) -> PathBuf {
    let mnist = dir.join("mnist");
    small_mnist(&mnist, 256, 64);
    mnist
}

/// Rewrites a safetensors file with `edit` applied to its metadata and its tensors' values.
fn edit_model_file(path: &Path, edit: impl FnOnce(&mut HashMap<String, String>, &mut HashMap<String, Vec<f32>>)) {
    let bytes = std::fs::read(path).unwrap();
    let (_, header) = safetensors::SafeTensors::read_metadata(&bytes).unwrap();
    let mut metadata = header.metadata().clone().unwrap_or_default();
    let file = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let mut shapes = HashMap::new();
    let mut values = HashMap::new();
    for (name, view) in file.tensors() {
        let floats = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        shapes.insert(name.clone(), view.shape().to_vec());
        values.insert(name, floats);
    }
    edit(&mut metadata, &mut values);
    let raw: HashMap<String, Vec<u8>> = values
        .iter()
        .map(|(name, v)| (name.clone(), v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views: Vec<(String, safetensors::tensor::TensorView)> = raw
        .iter()
        .map(|(name, data)| {
            let view = safetensors::tensor::TensorView::new(safetensors::Dtype::F32, shapes[name].clone(), data);
            (name.clone(), view.unwrap())
        })
        .collect();
    std::fs::write(path, safetensors::serialize(views, Some(metadata)).unwrap()).unwrap();
}

/// Trains the MLP for one epoch on `mnist` with `extra` flags; the run's report.
fn train_mlp(mnist: &Path, extra: &[&str]) -> (serde_json::Value, String) {
    let mut args = vec![
        "train",
        "--data",
        text(mnist),
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--json",
    ];
    args.extend(extra);
    strata_json(&args)
}

#[test]
fn unwritable_output_paths_fail_before_the_first_step_naming_the_flag() {
    let dir = scratch("outputs");
    let mnist = mnist_in(&dir);
    std::fs::write(dir.join("plain"), b"a file, not a folder").unwrap();
    let missing = dir.join("missing/model.safetensors");
    let in_a_file = dir.join("plain/history.json");
    let same = dir.join("same.json");
    let cases: [(&str, Vec<&str>); 5] = [
        ("--save", vec!["--save", text(&missing)]),
        ("--checkpoint", vec!["--checkpoint", text(&dir)]),
        ("--history", vec!["--history", text(&in_a_file)]),
        ("--plot", vec!["--plot", text(&dir)]),
        ("--history", vec!["--plot", text(&same), "--history", text(&same)]),
    ];
    for (flag, extra) in cases {
        let mut args = vec!["train", "--data", text(&mnist), "--epochs", "1", "--verbose", "2"];
        args.extend(&extra);
        let (code, stdout, stderr) = strata(&args);
        assert_eq!(code, 1, "{extra:?}: {stderr}");
        assert!(!stdout.contains("Epoch 1/"), "{extra:?} trained first: {stdout}");
        assert!(stderr.contains(flag), "{extra:?}: {stderr}");
    }
}

#[test]
fn a_resume_with_another_batch_size_restarts_the_interrupted_epoch() {
    let dir = scratch("batch-size");
    let mnist = mnist_in(&dir);
    let saved = dir.join("first.safetensors");
    // A temporary file a killed save left behind (its PID is above Linux's maximum).
    let stale = dir.join(".first.safetensors.tmp-4999999");
    std::fs::write(&stale, b"partial").unwrap();
    train_mlp(&mnist, &["--batch-size", "32", "--save", text(&saved)]);
    assert!(!stale.exists(), "the next save of the same file removes it");
    // As if interrupted six batches of 32 into the first epoch.
    edit_model_file(&saved, |metadata, _| {
        metadata.insert("epoch".into(), "0".into());
        metadata.insert("batches_into_epoch".into(), "6".into());
    });
    let (restarted, stderr) = strata_json(&[
        "train",
        "--resume",
        text(&saved),
        "--epochs",
        "1",
        "--batch-size",
        "128",
        "--verbose",
        "0",
        "--json",
        // Elsewhere: saved back, the file would no longer be mid-epoch for the run below.
        "--save",
        text(&dir.join("restarted.safetensors")),
    ]);
    assert!(
        stderr.contains("6 batches into epoch 1") && stderr.contains("restarts"),
        "{stderr}"
    );
    let loss = restarted["epochs"][0]["loss"].as_f64().unwrap();
    assert!(loss > 0.0, "the epoch was trained, not skipped: {restarted}");
    // With the same batch size the epoch continues after its sixth batch, silently.
    let (_, stderr) = strata_json(&[
        "train",
        "--resume",
        text(&saved),
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--json",
    ]);
    assert!(!stderr.contains("restarts"), "{stderr}");
}

#[test]
fn compile_flags_and_damaged_counters_on_resume_are_errors_naming_them() {
    let dir = scratch("resume-errors");
    let mnist = mnist_in(&dir);
    let saved = dir.join("adam.safetensors");
    train_mlp(&mnist, &["--save", text(&saved)]);
    let resume = |path: &Path, extra: &[&str]| {
        let mut args = vec!["train", "--resume", text(path), "--epochs", "2", "--verbose", "0"];
        args.extend(extra);
        strata(&args)
    };
    let (code, _, stderr) = resume(&saved, &["--optimizer", "sgd"]);
    assert!(
        code == 1 && stderr.contains("--optimizer sgd") && stderr.contains("Adam"),
        "{stderr}"
    );
    let (code, _, stderr) = resume(&saved, &["--lr-schedule", "exponential:decay_steps=10,decay_rate=0.9"]);
    assert!(code == 1 && stderr.contains("--lr-schedule"), "{stderr}");
    let damaged: [(&str, &str); 4] = [
        ("epoch", "18446744073709551615"),
        ("batches_into_epoch", "18446744073709551615"),
        ("optimizer_iterations", "2147483648"),
        ("optimizer_state", "SGD"),
    ];
    for (key, value) in damaged {
        let copy = dir.join(format!("{key}.safetensors"));
        std::fs::copy(&saved, &copy).unwrap();
        edit_model_file(&copy, |metadata, _| {
            metadata.insert(key.into(), value.into());
        });
        let (code, _, stderr) = resume(&copy, &[]);
        assert!(
            code == 1 && stderr.contains(&format!("'{key}'")),
            "{key}={value}: {stderr}"
        );
        assert!(!stderr.contains("loss became"), "{stderr}");
    }
    // Adam's second moments are sums of squares: a negative one would make the update NaN.
    let copy = dir.join("negative.safetensors");
    std::fs::copy(&saved, &copy).unwrap();
    edit_model_file(&copy, |_, tensors| {
        tensors.get_mut("optimizer/second/dense/kernel").unwrap()[0] = -1.0;
    });
    let (code, _, stderr) = resume(&copy, &[]);
    assert!(
        code == 1 && stderr.contains("optimizer/second") && stderr.contains("-1"),
        "{stderr}"
    );
    // Counters no run reaches: a mid-epoch count beyond the epoch, from the library's fit.
    edit_model_file(&copy, |metadata, tensors| {
        tensors.get_mut("optimizer/second/dense/kernel").unwrap()[0] = 0.0;
        metadata.insert("epoch".into(), "0".into());
        metadata.insert("batches_into_epoch".into(), "9".into());
    });
    let (code, _, stderr) = resume(&copy, &[]);
    assert!(code == 1 && stderr.contains("initial_batch=9"), "{stderr}");
}

#[test]
fn flag_values_out_of_range_are_usage_errors_naming_the_flag() {
    let cases: [&[&str]; 9] = [
        &["train", "--l2", "nan"],
        &["train", "--l2", "inf"],
        &["train", "--dropout", "1.5"],
        &["train", "--lr=-1"],
        &["train", "--validation-split", "2"],
        &["train", "--checkpoint-every", "0"],
        &["train", "--label", "digit"],
        &["train", "--test-data", "test.csv"],
        &["bench", "--batch-size", "0"],
    ];
    for args in cases {
        let (code, stdout, stderr) = strata(args);
        assert_eq!(code, 1, "{args:?}: {stdout}{stderr}");
        let flag = args[1].split('=').next().unwrap();
        assert!(stderr.contains(flag), "{args:?}: {stderr}");
        assert!(!stdout.contains("Epoch"), "{args:?} trained: {stdout}");
    }
}

#[test]
fn a_non_finite_l2_factor_is_refused_by_the_library_too() {
    for factor in [f32::NAN, f32::INFINITY, -1.0] {
        let model = strata::io::config::load_model_spec("mlp").unwrap().model;
        let error = strata::io::regularized(model, None, Some(factor)).unwrap_err();
        assert!(error.to_string().contains("l2"), "{factor}: {error}");
    }
}

#[test]
fn more_threads_than_cpus_are_capped_with_a_warning() {
    let dir = scratch("threads");
    let mnist = mnist_in(&dir);
    let (report, stderr) = train_mlp(&mnist, &["--threads", "10000"]);
    let cpus = std::thread::available_parallelism().unwrap().get();
    assert_eq!(report["threads"], cpus, "{report}");
    assert!(
        stderr.contains("--threads 10000") && stderr.contains("warning"),
        "{stderr}"
    );
}

/// A `char_rnn` sized for the bundled play (66 outputs, not "auto") trained for one epoch on a
/// text of four distinct characters: a model with outputs no character of its text has.
fn few_character_model(dir: &Path) -> PathBuf {
    let small = dir.join("abcd.txt");
    std::fs::write(&small, "abcd dcba ".repeat(40)).unwrap();
    let (_, char_rnn) = strata::io::config::NAMED_MODELS
        .iter()
        .find(|(name, _)| *name == "char_rnn")
        .unwrap();
    let description = dir.join("char_rnn_66.toml");
    std::fs::write(&description, char_rnn.replace(r#""auto""#, "66")).unwrap();
    let saved = dir.join("abcd.safetensors");
    strata_json(&[
        "train",
        "--model",
        text(&description),
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
    saved
}

#[test]
fn generate_draws_only_known_characters_caps_its_length_and_refuses_nan_weights() {
    let dir = scratch("generate");
    let saved = few_character_model(&dir);
    for seed in ["0", "1", "2"] {
        // A high temperature spreads the untrained model's probability over all 66 outputs.
        let (code, stdout, stderr) = strata(&[
            "generate",
            "--model",
            text(&saved),
            "--prompt",
            "abc",
            "--length",
            "300",
            "--temperature",
            "3",
            "--seed",
            seed,
        ]);
        assert_eq!(code, 0, "{stderr}");
        let line = stdout.trim_end_matches('\n');
        assert!(line.starts_with("abc") && line.chars().count() == 303, "{line:?}");
        assert!(line.chars().all(|c| "abcd ".contains(c)), "{line:?}");
    }
    let (code, _, stderr) = strata(&[
        "generate",
        "--model",
        text(&saved),
        "--prompt",
        "abc",
        "--length",
        "1000001",
    ]);
    assert!(code == 1 && stderr.contains("--length"), "{stderr}");
    edit_model_file(&saved, |_, tensors| {
        tensors.get_mut("dense/kernel").unwrap()[3] = f32::NAN;
    });
    let (code, stdout, stderr) = strata(&["generate", "--model", text(&saved), "--prompt", "abc"]);
    assert!(
        code == 1 && stderr.contains("'dense/kernel'") && stderr.contains("NaN"),
        "{stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
}

#[test]
fn generate_prints_characters_as_they_are_drawn() {
    let dir = scratch("stream");
    let saved = few_character_model(&dir);
    // A million characters take far longer than the test waits: the first ones must come
    // before the end.
    let mut child = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args([
            "generate",
            "--model",
            text(&saved),
            "--prompt",
            "abc",
            "--length",
            "1000000",
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let mut first = [0u8; 8];
    child.stdout.take().unwrap().read_exact(&mut first).unwrap();
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(first.starts_with(b"abc"), "{first:?}");
}

#[test]
fn commands_refuse_to_write_over_the_model_they_read() {
    let dir = scratch("overwrite");
    let mnist = mnist_in(&dir);
    let model = dir.join("mlp.safetensors");
    train_mlp(&mnist, &["--save", text(&model)]);
    let original = std::fs::read(&model).unwrap();
    let same_spelled_otherwise = dir.join(".").join("mlp.safetensors");
    let other = dir.join("other.safetensors");
    let attempts: [&[&str]; 3] = [
        &["export", "--model", text(&model), "-o", text(&model)],
        &["quantize", "--model", text(&model), "-o", text(&same_spelled_otherwise)],
        &["export", "--model", text(&model), "-o", text(&other)],
    ];
    for args in attempts {
        let (code, _, stderr) = strata(args);
        assert_eq!(code, 1, "{args:?}: {stderr}");
        assert!(stderr.contains("--output"), "{args:?}: {stderr}");
    }
    assert!(std::fs::read(&model).unwrap() == original, "the model file changed");
    assert!(!other.exists());
    // Export to Keras, then importing it over itself is refused too.
    let keras = dir.join("mlp.keras");
    let (code, _, stderr) = strata(&["export", "--model", text(&model), "-o", text(&keras)]);
    assert_eq!(code, 0, "{stderr}");
    let (code, _, stderr) = strata(&["import", text(&keras), "-o", text(&keras)]);
    assert!(
        code == 1 && stderr.contains("is the file this command reads"),
        "{stderr}"
    );
}

#[test]
fn bench_draws_token_ids_for_embeddings_and_checks_its_data_against_the_budget() {
    let (code, stdout, stderr) = strata(&[
        "bench",
        "--model",
        "imdb_transformer",
        "--batch-size",
        "2",
        "--steps",
        "1",
        "--predictions",
        "1",
    ]);
    assert_eq!(code, 0, "{stderr}");
    assert!(stdout.contains("ms/step"), "{stdout}");
    let huge = [
        "bench",
        "--model",
        "mlp",
        "--batch-size",
        "3000000",
        "--steps",
        "1",
        "--predictions",
        "1",
    ];
    let (code, _, stderr) = strata(&[&huge[..], &["--max-memory", "1G"]].concat());
    assert!(code == 1 && stderr.contains("over the memory budget"), "{stderr}");
    let (code, _, stderr) = strata(&["bench", "--model", "mlp", "--batch-size", &usize::MAX.to_string()]);
    assert!(code == 1 && stderr.contains("more than 2^64 bytes"), "{stderr}");
}

#[test]
fn model_files_that_are_devices_are_refused_without_reading() {
    let dir = scratch("devices");
    let zero = dir.join("zero.safetensors");
    std::os::unix::fs::symlink("/dev/zero", &zero).unwrap();
    let (code, _, stderr) = strata(&["evaluate", "--model", text(&zero)]);
    assert!(code == 1 && stderr.contains("needs a regular file"), "{stderr}");
    let onnx = dir.join("zero.onnx");
    std::os::unix::fs::symlink("/dev/zero", &onnx).unwrap();
    let (code, _, stderr) = strata(&["import", text(&onnx), "-o", text(&dir.join("out.safetensors"))]);
    assert!(code == 1 && stderr.contains("needs a regular file"), "{stderr}");
}

/// A model description with `layers` after an InputLayer of `shape`, trained with loss `loss`.
fn huge_input_model(dir: &Path, shape: &str, loss: &str, layers: &[&str]) -> PathBuf {
    let mut description = format!(
        "name = \"huge\"\n[compile]\noptimizer = \"adam\"\nloss = \"{loss}\"\n[fit]\nepochs = 1\nbatch_size = 1\n\
         [[layers]]\nclass_name = \"InputLayer\"\nconfig = {{ shape = {shape} }}\n"
    );
    for layer in layers {
        description.push_str(&format!("[[layers]]\n{layer}\n"));
    }
    let path = dir.join("huge.toml");
    std::fs::write(&path, description).unwrap();
    path
}

/// The data is sized by the model's declared input before the model is checked: an input of
/// terabytes (or one whose size wraps around to 0 in unchecked arithmetic) is refused against
/// the memory budget, naming the data, instead of aborting on the allocation.
#[test]
fn input_shapes_that_size_the_data_beyond_the_budget_are_refused() {
    let dir = scratch("huge-input");
    let images = dir.join("imgs");
    std::fs::create_dir_all(images.join("a")).unwrap();
    image::RgbImage::new(1, 1).save(images.join("a/one.png")).unwrap();
    let pooled = [
        "class_name = \"GlobalAveragePooling2D\"",
        "class_name = \"Dense\"\nconfig = { units = 1 }",
    ];
    for shape in ["[1048576, 1048576, 3]", "[4294967296, 4294967296, 3]"] {
        let model = huge_input_model(&dir, shape, "sparse_categorical_crossentropy", &pooled);
        let (code, _, stderr) = strata(&["train", "--model", text(&model), "--data", text(&images)]);
        assert_ne!(code, 0, "{stderr}");
        assert!(
            stderr.contains("imgs") && stderr.contains("image_size") && stderr.contains("memory budget"),
            "{shape}: {stderr}"
        );
    }
    // IMDB's reviews padded to 2³⁶ ids each.
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets");
    std::fs::copy(fixtures.join("imdb.npz"), dir.join("imdb.npz")).unwrap();
    let layers = [
        "class_name = \"Embedding\"\nconfig = { input_dim = 100, output_dim = 4 }",
        "class_name = \"GlobalAveragePooling1D\"",
        "class_name = \"Dense\"\nconfig = { units = 1, activation = \"sigmoid\" }",
    ];
    let model = huge_input_model(&dir, "[68719476736]", "binary_crossentropy", &layers);
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["train", "--model", text(&model), "--data", "imdb"])
        .env("STRATA_DATA", &dir)
        .env("KERAS_HOME", dir.join("keras"))
        .env("HOME", &dir)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(
        stderr.contains("maxlen 68719476736") && stderr.contains("memory budget"),
        "{stderr}"
    );
}
