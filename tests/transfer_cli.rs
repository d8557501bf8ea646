//! Transfer learning from the command line: `strata train --base FILE --base-output LAYER
//! --freeze-base --head "..."`, then `--resume FILE --fine-tune-from LAYER --lr 1e-4`, on
//! image folders of MNIST digits: a base trained on digits 0–4, a head trained on 100 images
//! of each of the digits 5–9.

use std::path::{Path, PathBuf};

mod common;
use common::strata;

fn ok(args: &[&str]) -> serde_json::Value {
    let (code, stdout, stderr) = strata(args);
    assert_eq!(code, 0, "strata {args:?}:\n{stdout}\n{stderr}");
    serde_json::from_str(stdout.lines().last().expect("some output")).expect("the last line is JSON")
}

/// Writes up to `per_class` images of each of `digits` from the bundled MNIST (`test`: its test
/// set) as PNG files under `dir/digit_D/`.
fn digit_folders(dir: &Path, digits: std::ops::Range<usize>, per_class: usize, test: bool) -> PathBuf {
    let ((x_train, y_train), (x_test, y_test)) = strata::data::mnist::load_data().unwrap();
    let (x, y) = if test { (x_test, y_test) } else { (x_train, y_train) };
    let mut written = [0usize; 10];
    for i in 0..x.rows() {
        let label = y.data()[i] as usize;
        if !digits.contains(&label) || written[label] == per_class {
            continue;
        }
        let folder = dir.join(format!("digit_{label}"));
        std::fs::create_dir_all(&folder).unwrap();
        let pixels: Vec<u8> = x.data()[i * 784..(i + 1) * 784].iter().map(|&v| v as u8).collect();
        image::GrayImage::from_raw(28, 28, pixels)
            .unwrap()
            .save(folder.join(format!("{i}.png")))
            .unwrap();
        written[label] += 1;
    }
    dir.to_path_buf()
}

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-transfer-cli-{}-{name}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The weights of a saved model by name.
fn weights(path: &Path) -> std::collections::HashMap<String, strata::Tensor> {
    strata::load_model(path).unwrap().weights()
}

#[test]
fn freeze_a_base_add_a_head_then_fine_tune() {
    let dir = temp_dir("recipe");
    let old = digit_folders(&dir.join("old"), 0..5, 400, false);
    let new = digit_folders(&dir.join("new"), 5..10, 100, false);
    let test = digit_folders(&dir.join("test"), 5..10, 200, true);
    let path = |name: &str| dir.join(name).display().to_string();
    let (base, head, tuned) = (
        path("base.safetensors"),
        path("head.safetensors"),
        path("tuned.safetensors"),
    );
    let data = |p: &Path| p.display().to_string();
    let quiet = ["--verbose", "0", "--json"];
    ok(&[
        &[
            "train",
            "--model",
            "cnn",
            "--data",
            &data(&old),
            "--epochs",
            "2",
            "--save",
            &base,
        ][..],
        &quiet,
    ]
    .concat());

    let transfer = [
        "train",
        "--base",
        &base,
        "--base-output",
        "flatten",
        "--freeze-base",
        "--head",
        "Dense(64,relu),Dropout(0.2),Dense(5,softmax)",
        "--data",
        &data(&new),
        "--epochs",
        "15",
        "--save",
        &head,
    ];
    let report = ok(&[&transfer[..], &quiet].concat());
    assert_eq!(report["epochs"].as_array().map(Vec::len), Some(15), "{report}");
    let (before, after) = (weights(Path::new(&base)), weights(Path::new(&head)));
    for name in ["conv2d/kernel", "conv2d_1/bias", "conv2d_2/kernel"] {
        assert_eq!(before[name], after[name], "{name} is frozen");
    }
    let scores = ok(&["evaluate", "--model", &head, "--data", &data(&test), "--json"]);
    let frozen = scores["test_accuracy"].as_f64().unwrap();
    assert!(frozen > 0.85, "{scores}");

    let fine_tune = [
        "train",
        "--resume",
        &head,
        "--fine-tune-from",
        "conv2d_2",
        "--lr",
        "1e-4",
        "--epochs",
        "20",
    ];
    let report = ok(&[&fine_tune[..], &["--save", &tuned], &quiet].concat());
    assert_eq!(report["epochs"][0]["epoch"], 16, "{report}");
    let tuned_weights = weights(Path::new(&tuned));
    assert_eq!(after["conv2d_1/kernel"], tuned_weights["conv2d_1/kernel"]);
    assert_ne!(after["conv2d_2/kernel"], tuned_weights["conv2d_2/kernel"]);
    let scores = ok(&["evaluate", "--model", &tuned, "--data", &data(&test), "--json"]);
    assert!(scores["test_accuracy"].as_f64().unwrap() > 0.85, "{scores}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn layer_names_and_head_items_are_checked() {
    let dir = temp_dir("errors");
    let base = dir.join("base.safetensors");
    let mut model = strata::model::Sequential::new();
    model
        .add(strata::layers::Input::new(&[28, 28, 1]))
        .add(strata::layers::Flatten::new())
        .add(strata::layers::Dense::new(3));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model.save(&base).unwrap();
    let base = base.display().to_string();
    let fail = |args: &[&str]| {
        let (code, _, stderr) = strata(args);
        assert_ne!(code, 0, "{args:?} must fail");
        stderr
    };
    let stderr = fail(&["train", "--base", &base, "--base-output", "dense_9", "--epochs", "1"]);
    assert!(
        stderr.contains("--base-output") && stderr.contains("flatten, dense"),
        "{stderr}"
    );
    let stderr = fail(&["train", "--base", &base, "--fine-tune-from", "conv", "--epochs", "1"]);
    assert!(
        stderr.contains("--fine-tune-from") && stderr.contains("flatten, dense"),
        "{stderr}"
    );
    let stderr = fail(&["train", "--base", &base, "--head", "Dense(4),Dens(2)", "--epochs", "1"]);
    assert!(
        stderr.contains("item 2 'Dens(2)'") && stderr.contains("Dense"),
        "{stderr}"
    );
    let stderr = fail(&["train", "--model", "mlp", "--freeze-base", "--epochs", "1"]);
    assert!(stderr.contains("--base FILE"), "{stderr}");
    let stderr = fail(&["train", "--base", &base, "--dropout", "0.5", "--epochs", "1"]);
    assert!(stderr.contains("--head"), "{stderr}");
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn a_head_takes_any_single_input_layer_the_registry_has() {
    // A decoder-style head: Conv2DTranspose and UpSampling2D with Keras's unnamed arguments,
    // on a frozen base that ends in a vector.
    let dir = temp_dir("head-layers");
    let data = digit_folders(&dir.join("data"), 5..8, 4, false).display().to_string();
    let base = dir.join("base.safetensors");
    let mut model = strata::model::Sequential::new();
    model
        .add(strata::layers::Input::new(&[28, 28, 1]))
        .add(strata::layers::Flatten::new())
        .add(strata::layers::Dense::new(4));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model.save(&base).unwrap();
    let (base, head) = (
        base.display().to_string(),
        dir.join("head.safetensors").display().to_string(),
    );
    let spec = "Reshape((1,1,4)),Conv2DTranspose(6,3,2,same),UpSampling2D((2,2)),Flatten,Dense(3,softmax)";
    ok(&[
        "train",
        "--base",
        &base,
        "--freeze-base",
        "--head",
        spec,
        "--data",
        &data,
        "--epochs",
        "1",
        "--save",
        &head,
        "--verbose",
        "0",
        "--json",
    ]);
    let saved = weights(Path::new(&head));
    assert_eq!(saved["conv2d_transpose/kernel"].shape(), [3, 3, 6, 4]);
    // A layer that cannot be one link of the chain says why; an unknown one lists what is
    // accepted (Conv2DTranspose among them, Add and InputLayer not).
    let (code, _, stderr) = strata(&["train", "--base", &base, "--head", "Dense(4),Add", "--epochs", "1"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("item 2 'Add'") && stderr.contains("merges several inputs"),
        "{stderr}"
    );
    let (code, _, stderr) = strata(&[
        "train",
        "--base",
        &base,
        "--head",
        "Conv2DTransposed(6,3)",
        "--epochs",
        "1",
    ]);
    assert_ne!(code, 0);
    let accepted = stderr.split("valid names are:").nth(1).unwrap_or_default();
    assert!(
        accepted.contains("Conv2DTranspose") && !accepted.contains("InputLayer") && !accepted.contains("Add,"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}

/// Writes `per_class` random 48×48 RGB images into each of `classes` folders under `dir`.
fn random_image_folders(dir: &Path, classes: usize, per_class: usize) -> String {
    let mut rng = strata::rng::Rng::new(3);
    for class in 0..classes {
        let folder = dir.join(format!("class_{class}"));
        std::fs::create_dir_all(&folder).unwrap();
        for i in 0..per_class {
            let pixels: Vec<u8> = (0..48 * 48 * 3).map(|_| rng.uniform(0.0, 255.0) as u8).collect();
            image::RgbImage::from_raw(48, 48, pixels)
                .unwrap()
                .save(folder.join(format!("{i}.png")))
                .unwrap();
        }
    }
    dir.display().to_string()
}

#[test]
fn a_nested_keras_base_is_frozen_and_fine_tuned_by_its_keras_names() {
    // Keras 3's Sequential([Input((48, 48, 3)), MobileNetV2(alpha=0.35, include_top=False),
    // GlobalAveragePooling2D(), Dense(5, softmax)]).save(...): the base is the nested model
    // mobilenetv2_0.35_48, frozen by that name as Keras's base_model.trainable = False.
    let dir = temp_dir("nested");
    let data = random_image_folders(&dir.join("data"), 5, 2);
    let keras = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keras/applications/nested_mobilenetv2.keras"
    );
    let base_name = "mobilenetv2_0.35_48";
    let path = |name: &str| dir.join(name).display().to_string();
    let (head, tuned, whole) = (
        path("head.safetensors"),
        path("tuned.safetensors"),
        path("whole.safetensors"),
    );
    let quiet = ["--verbose", "0", "--json", "--batch-size", "10"];
    let run = [
        "train", "--base", keras, "--freeze", base_name, "--data", &data, "--epochs", "1",
    ];
    ok(&[&run[..], &["--save", &head], &quiet].concat());
    let (before, after) = (weights(Path::new(keras)), weights(Path::new(&head)));
    for name in [
        "Conv1/kernel",
        "block_16_project/kernel",
        "bn_Conv1/moving_mean",
        "Conv_1_bn/gamma",
    ] {
        assert_eq!(before[name], after[name], "{name} is in the frozen base");
    }
    assert_ne!(before["dense/kernel"], after["dense/kernel"], "the head trains");

    // Keras's fine-tuning: the top of the base unfrozen (from a layer inside it) with the head.
    let fine_tune = ["train", "--resume", &head, "--fine-tune-from", "block_16_expand"];
    ok(&[
        &fine_tune[..],
        &["--lr", "1e-5", "--epochs", "2", "--save", &tuned],
        &quiet,
    ]
    .concat());
    let tuned_weights = weights(Path::new(&tuned));
    assert_eq!(
        after["block_15_project/kernel"],
        tuned_weights["block_15_project/kernel"]
    );
    assert_ne!(after["block_16_expand/kernel"], tuned_weights["block_16_expand/kernel"]);
    assert_ne!(after["dense/kernel"], tuned_weights["dense/kernel"]);
    // The nested model's name unfreezes all of it (Keras's base_model.trainable = True), its
    // BatchNormalization layers staying in inference mode.
    let unfreeze = ["train", "--resume", &head, "--fine-tune-from", base_name];
    ok(&[&unfreeze[..], &["--epochs", "2", "--save", &whole], &quiet].concat());
    let whole_weights = weights(Path::new(&whole));
    assert_ne!(after["Conv1/kernel"], whole_weights["Conv1/kernel"]);
    assert_eq!(after["bn_Conv1/moving_mean"], whole_weights["bn_Conv1/moving_mean"]);

    // Unknown names list the nested models and the layers.
    for (flag, name) in [("--freeze", "mobilenetv2"), ("--fine-tune-from", "block_99")] {
        let (code, _, stderr) = strata(&["train", "--base", keras, flag, name, "--data", &data, "--epochs", "1"]);
        assert_ne!(code, 0);
        assert!(
            stderr.contains(flag)
                && stderr.contains(&format!("its nested models are: {base_name}"))
                && stderr.contains("block_16_expand"),
            "{stderr}"
        );
    }
    std::fs::remove_dir_all(&dir).ok();
}

#[test]
fn loss_replaces_the_bases_and_base_output_may_name_a_layer_of_a_nested_model() {
    // k3_nested.h5 was compiled with mse; a softmax head on class labels needs another loss,
    // and its base is cut inside its nested Sequential ('inner').
    let dir = temp_dir("loss");
    let base = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/keras/h5/k3_nested.h5");
    let base = base.display().to_string();
    let mut rows = String::from("a,b,c,d,e,label\n");
    for i in 0..60 {
        let features: Vec<String> = (0..5)
            .map(|j| (((i * 5 + j) as f32) * 0.37).sin().to_string())
            .collect();
        rows += &format!("{},{}\n", features.join(","), i % 3);
    }
    let table = dir.join("table.csv").display().to_string();
    std::fs::write(&table, rows).unwrap();
    let saved = dir.join("tuned.safetensors").display().to_string();
    let run = |head: &str, loss: Option<&str>| {
        let mut args = vec![
            "train",
            "--base",
            &base,
            "--base-output",
            "inner_dense",
            "--freeze-base",
            "--head",
            head,
            "--data",
            &table,
            "--epochs",
            "1",
            "--verbose",
            "0",
            "--save",
            &saved,
        ];
        if let Some(loss) = loss {
            args.extend(["--loss", loss]);
        }
        strata(&args)
    };
    // Without --loss, the base's mse meets class labels: refused, naming the loss.
    let (code, _, stderr) = run("Dense(3,softmax)", None);
    assert_ne!(code, 0);
    assert!(stderr.contains("mean_squared_error"), "{stderr}");
    for (head, loss, from_logits) in [
        ("Dense(3,softmax)", "sparse_categorical_crossentropy", false),
        ("Dense(3)", "SparseCategoricalCrossentropy(from_logits=True)", true),
    ] {
        let (code, stdout, stderr) = run(head, Some(loss));
        assert_eq!(code, 0, "{loss}: {stdout}{stderr}");
        let model = strata::load_model(&saved).unwrap();
        let names: Vec<&str> = model.layers().iter().map(|l| l.name()).collect();
        assert_eq!(names, ["features", "inner_dense", "dense"], "{loss}");
        assert_eq!(
            model.loss(),
            Some(strata::losses::Loss::SparseCategoricalCrossentropy { from_logits }),
            "{loss}"
        );
        // The frozen base kept Keras's weights.
        assert_eq!(
            weights(dir.join("tuned.safetensors").as_path())["inner_dense/kernel"],
            weights(Path::new(&base))["inner_dense/kernel"]
        );
    }
    // A bad name or argument names the flag; a resumed run keeps its loss.
    for (loss, says) in [
        ("hinge", "unknown loss 'hinge'"),
        ("Mse(from_logits=True)", "has no from_logits"),
    ] {
        let (code, _, stderr) = run("Dense(3,softmax)", Some(loss));
        assert_ne!(code, 0);
        assert!(
            stderr.contains(&format!("--loss {loss}")) && stderr.contains(says),
            "{stderr}"
        );
    }
    let (code, _, stderr) = strata(&["train", "--resume", &saved, "--epochs", "2", "--loss", "mse"]);
    assert_ne!(code, 0);
    assert!(
        stderr.contains("--loss mean_squared_error does not apply to a resumed run"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).ok();
}
