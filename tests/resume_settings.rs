//! Runs remember their settings (#24 item 3): `strata train --resume FILE` takes the batch size,
//! data, validation split and callbacks of the run that saved FILE, says which flags replace
//! them, and saves back to FILE unless `--save` names another.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

mod common;
use common::{small_mnist, strata};

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-resume-settings-{name}-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

/// Runs `strata train ARGS --verbose 0 --json`: stdout's JSON report and stderr.
fn train(args: &[&str]) -> (serde_json::Value, String) {
    let mut all = vec!["train", "--verbose", "0", "--json"];
    all.extend_from_slice(args);
    let (code, stdout, stderr) = strata(&all);
    assert_eq!(code, 0, "strata {all:?}\n{stderr}");
    let report = serde_json::from_str(stdout.lines().last().expect("a report")).expect("JSON");
    (report, stderr)
}

/// Every weight of the saved model, as bits, by name.
fn weight_bits(path: &Path) -> BTreeMap<String, Vec<u32>> {
    let model = strata::load_model(path).unwrap();
    let params = model.params();
    params
        .ids()
        .map(|id| {
            let bits = params.value(id).data().iter().map(|v| v.to_bits()).collect();
            (params.name(id).to_string(), bits)
        })
        .collect()
}

#[test]
fn a_resumed_run_keeps_batch_size_and_validation_split_and_saves_back_to_its_file() {
    let dir = scratch("keeps");
    let data = dir.join("mnist");
    small_mnist(&data, 200, 16);
    let (a, b) = (dir.join("a.safetensors"), dir.join("b.safetensors"));
    let first = [
        "--data",
        text(&data),
        "--batch-size",
        "64",
        "--validation-split",
        "0.25",
        "--seed",
        "3",
    ];
    train(&[&first[..], &["--epochs", "1", "--save", text(&a)]].concat());
    // No --batch-size, --validation-split or --save: all three come from the saved run.
    let (resumed, notes) = train(&["--resume", text(&a), "--epochs", "2"]);
    assert_eq!(resumed["saved"], text(&a), "a resumed run saves back to its file");
    assert!(!notes.contains("replace"), "no flag replaced anything: {notes}");
    let epochs = resumed["epochs"].as_array().unwrap();
    assert!(epochs.iter().all(|e| e.get("val_loss").is_some()), "{resumed}");
    train(&[&first[..], &["--epochs", "2", "--save", text(&b)]].concat());
    assert_eq!(
        weight_bits(&a),
        weight_bits(&b),
        "resumed 1 + 1 epochs against 2 epochs at once"
    );
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_flag_replacing_a_saved_setting_says_so_in_one_line() {
    let dir = scratch("replace");
    let data = dir.join("mnist");
    small_mnist(&data, 64, 16);
    let a = dir.join("a.safetensors");
    let b = dir.join("b.safetensors");
    train(&[
        "--data",
        text(&data),
        "--batch-size",
        "64",
        "--early-stopping",
        "3",
        "--epochs",
        "1",
        "--save",
        text(&a),
    ]);
    let (report, notes) = train(&[
        "--resume",
        text(&a),
        "--epochs",
        "2",
        "--batch-size",
        "32",
        "--early-stopping",
        "5",
        "--save",
        text(&b),
    ]);
    let lines: Vec<&str> = notes.lines().filter(|l| l.contains("replace")).collect();
    assert_eq!(
        lines,
        ["note: flags replace the saved run's settings: batch size 32 (was 64), early-stopping patience 5 (was 3)"],
        "{notes}"
    );
    assert_eq!(report["saved"], text(&b), "--save still names another file");
    std::fs::remove_dir_all(&dir).ok();
}
