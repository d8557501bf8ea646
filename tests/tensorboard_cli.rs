//! `strata train --tensorboard`: a run folder per start, --run-name to continue one on
//! --resume, and an unusable folder refused before training.

use std::path::Path;

mod common;
use common::strata;
use strata::callbacks::tensorboard::{Kind, What, read_events};

/// The steps of `epoch_loss` in every event file of `folder`.
fn epoch_steps(folder: &Path) -> Vec<i64> {
    let mut steps = Vec::new();
    for file in std::fs::read_dir(folder).unwrap() {
        for event in read_events(file.unwrap().path()).unwrap() {
            if let Some(What::Summary(summary)) = event.what
                && summary
                    .value
                    .iter()
                    .any(|v| v.tag == "epoch_loss" && matches!(v.kind, Some(Kind::SimpleValue(_))))
            {
                steps.push(event.step);
            }
        }
    }
    steps.sort_unstable();
    steps
}

#[test]
fn each_start_gets_its_own_run_folder_and_a_named_run_continues_on_resume() {
    let dir = std::env::temp_dir().join(format!("strata-tb-cli-{}", common::run_id()));
    let _ = std::fs::remove_dir_all(&dir);
    let logs = dir.join("logs");
    let model = dir.join("linreg.safetensors");
    let (logs_arg, model_arg) = (logs.to_str().unwrap(), model.to_str().unwrap());
    let train = [
        "train",
        "--model",
        "linreg",
        "--epochs",
        "2",
        "--verbose",
        "0",
        "--tensorboard",
        logs_arg,
    ];
    for _ in 0..2 {
        let (code, _, stderr) = strata(&train);
        assert_eq!(code, 0, "{stderr}");
    }
    let runs: Vec<_> = std::fs::read_dir(&logs).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(runs.len(), 2, "{runs:?}");
    for run in &runs {
        assert_eq!(epoch_steps(&run.join("train")), [0, 1]);
    }
    let named = [&train[..], &["--run-name", "first", "--save", model_arg]].concat();
    let (code, _, stderr) = strata(&named);
    assert_eq!(code, 0, "{stderr}");
    let resume = [
        "train",
        "--resume",
        model_arg,
        "--epochs",
        "3",
        "--verbose",
        "0",
        "--tensorboard",
        logs_arg,
        "--run-name",
        "first",
    ];
    let (code, _, stderr) = strata(&resume);
    assert_eq!(code, 0, "{stderr}");
    assert_eq!(epoch_steps(&logs.join("first/train")), [0, 1, 2]);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn an_unusable_tensorboard_folder_is_an_error_before_training() {
    let dir = std::env::temp_dir().join(format!("strata-tb-cli-bad-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("file");
    std::fs::write(&file, b"x").unwrap();
    let (code, stdout, stderr) = strata(&[
        "train",
        "--model",
        "linreg",
        "--verbose",
        "2",
        "--tensorboard",
        file.to_str().unwrap(),
    ]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--tensorboard") && stderr.contains("is a file, not a folder"),
        "{stderr}"
    );
    assert!(!stdout.contains("Epoch"), "nothing trained: {stdout}");
    let (code, _, stderr) = strata(&[
        "train",
        "--model",
        "linreg",
        "--tensorboard",
        dir.to_str().unwrap(),
        "--run-name",
        "../up",
    ]);
    assert_ne!(code, 0);
    assert!(stderr.contains("--run-name"), "{stderr}");
    let _ = std::fs::remove_dir_all(&dir);
}
