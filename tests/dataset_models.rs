//! The named models of Keras's data sets train from the command line on small generated files
//! in the real formats (`tools/make_dataset_fixtures.py`), found in `$STRATA_DATA`, and beat
//! chance on their test sets; `--data` names a data set with its arguments, and an unknown name
//! or argument is an error listing what exists.
mod common;

use std::path::{Path, PathBuf};
use std::process::Command;

/// A strata folder holding the generated data sets, and an empty home (no `~/.keras`).
fn data_folder(name: &str) -> PathBuf {
    let root = std::env::temp_dir().join(format!("strata-dataset-models-{name}-{}", common::run_id()));
    let _ = std::fs::remove_dir_all(&root);
    std::fs::create_dir_all(root.join("home")).unwrap();
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets");
    let strata = root.join("strata");
    std::fs::create_dir_all(strata.join("fashion-mnist")).unwrap();
    for file in [
        "cifar-10-python.tar.gz",
        "cifar-100-python.tar.gz",
        "imdb.npz",
        "boston_housing.npz",
        "reuters.npz",
    ] {
        std::fs::copy(fixtures.join(file), strata.join(file)).unwrap();
    }
    for entry in std::fs::read_dir(fixtures.join("fashion-mnist")).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), strata.join("fashion-mnist").join(entry.file_name())).unwrap();
    }
    root
}

/// `strata ARGS` with the data folder as `$STRATA_DATA`, offline; exit code, stdout, stderr.
fn strata(root: &Path, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(args)
        .env("HOME", root.join("home"))
        .env("STRATA_DATA", root.join("strata"))
        .env_remove("KERAS_HOME")
        .env("STRATA_DATASETS_URL", "http://127.0.0.1:9")
        .output()
        .unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into(),
        String::from_utf8_lossy(&out.stderr).into(),
    )
}

/// Trains and returns the JSON report's test accuracy.
fn test_accuracy(root: &Path, args: &[&str]) -> f64 {
    let mut all = vec!["train", "--verbose", "0", "--json", "--threads", "2"];
    all.extend(args);
    let (code, stdout, stderr) = strata(root, &all);
    assert_eq!(code, 0, "{stderr}");
    let report: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    report["test_accuracy"].as_f64().unwrap()
}

#[test]
fn cifar10_cnn_learns_the_generated_cifar10() {
    let root = data_folder("cifar10");
    // 300 training images; Keras's RMSprop(1e-4) needs more than the 3 epochs a test affords.
    let accuracy = test_accuracy(
        &root,
        &[
            "--model",
            "cifar10_cnn",
            "--epochs",
            "3",
            "--optimizer",
            "adam",
            "--lr",
            "0.001",
        ],
    );
    assert!(accuracy > 0.3, "test accuracy {accuracy} (chance: 0.1)");
}

#[test]
fn fashion_mlp_learns_the_generated_fashion_mnist() {
    let root = data_folder("fashion");
    let accuracy = test_accuracy(&root, &["--model", "fashion_mlp", "--epochs", "5"]);
    assert!(accuracy > 0.5, "test accuracy {accuracy} (chance: 0.1)");
}

#[test]
fn imdb_lstm_learns_the_generated_reviews() {
    let root = data_folder("imdb");
    let accuracy = test_accuracy(
        &root,
        &[
            "--model",
            "imdb_lstm",
            "--data",
            "imdb:num_words=1000,maxlen=100",
            "--epochs",
            "3",
            "--lr",
            "0.003",
        ],
    );
    assert!(accuracy > 0.7, "test accuracy {accuracy} (chance: 0.5)");
}

#[test]
fn imdb_transformer_learns_the_generated_reviews_from_its_own_data_line() {
    // No --data: the model file names `imdb:num_words=20000`, found in $STRATA_DATA.
    let root = data_folder("imdb_transformer");
    let accuracy = test_accuracy(
        &root,
        &["--model", "imdb_transformer", "--epochs", "8", "--lr", "0.003"],
    );
    assert!(accuracy > 0.7, "test accuracy {accuracy} (chance: 0.5)");
}

#[test]
fn data_names_a_data_set_with_its_arguments() {
    let root = data_folder("names");
    // CIFAR-100's coarse labels (20 classes) into a small model file of the right shape.
    let model = root.join("small.toml");
    std::fs::write(
        &model,
        "name = \"small\"\n[compile]\noptimizer = \"adam\"\nloss = \"sparse_categorical_crossentropy\"\nmetrics = [\"accuracy\"]\n\
         [[layers]]\nclass_name = \"InputLayer\"\nconfig = { shape = [32, 32, 3] }\n[[layers]]\nclass_name = \"Flatten\"\n\
         [[layers]]\nclass_name = \"Dense\"\nconfig = { units = 20, activation = \"softmax\" }\n",
    )
    .unwrap();
    let model = model.to_str().unwrap();
    let (code, _, stderr) = strata(
        &root,
        &[
            "train",
            "--model",
            model,
            "--data",
            "cifar100:label_mode=coarse",
            "--epochs",
            "1",
            "--verbose",
            "0",
        ],
    );
    assert_eq!(code, 0, "{stderr}");
    // Fine labels (100 classes) do not fit 20 outputs: an error, not a silent wrong run.
    let (code, _, stderr) = strata(
        &root,
        &[
            "train",
            "--model",
            model,
            "--data",
            "cifar100",
            "--epochs",
            "1",
            "--verbose",
            "0",
        ],
    );
    assert_ne!(code, 0, "{stderr}");
    for (data, parts) in [
        (
            "cifar11",
            vec!["unknown data set 'cifar11'", "cifar10", "boston_housing"],
        ),
        ("imdb:num_word=5", vec!["num_word", "num_words", "index_from"]),
        ("imdb:maxlen=0", vec!["maxlen"]),
        ("cifar100:label_mode=medium", vec!["label_mode", "coarse"]),
        ("boston_housing:test_split=1.5", vec!["test_split"]),
    ] {
        let (code, _, stderr) = strata(&root, &["train", "--model", model, "--data", data, "--epochs", "1"]);
        assert_ne!(code, 0, "{data}");
        for part in parts {
            assert!(stderr.contains(part), "{part} in {stderr}");
        }
    }
}

#[test]
fn a_data_set_that_is_nowhere_says_where_to_put_it() {
    let root = data_folder("nowhere");
    std::fs::remove_file(root.join("strata/reuters.npz")).unwrap();
    let (code, _, stderr) = strata(
        &root,
        &["train", "--model", "imdb_lstm", "--data", "reuters", "--epochs", "1"],
    );
    assert_ne!(code, 0);
    for part in [
        "reuters.npz is missing",
        "http://127.0.0.1:9/reuters.npz",
        "d6586e694ee56d7a",
    ] {
        assert!(stderr.contains(part), "{part} in {stderr}");
    }
}
