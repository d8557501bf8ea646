//! `strata predict` and `strata evaluate` with class names: names kept from image folders and
//! CSV tables through save, resume and evaluation; `--top`, `--labels` and `--preprocess`; an
//! imported Keras application predicting as Keras does on the same pixels.

mod common;
use common::{strata, write_digit_folders};
use std::path::{Path, PathBuf};
use strata::applications::{ImageInput, Mode, imagenet_classes};
use strata::data::labels::class_names;
use strata::prelude::*;

fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-predict-{name}-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn text(path: &Path) -> &str {
    path.to_str().unwrap()
}

fn last_json(stdout: &str) -> serde_json::Value {
    serde_json::from_str(stdout.lines().last().expect("some output")).expect("the last line is JSON")
}

/// Runs strata, asserting success; its stdout.
fn ok(args: &[&str]) -> String {
    let (code, stdout, stderr) = strata(args);
    assert_eq!(code, 0, "{args:?}: {stderr}");
    stdout
}

/// Runs strata, asserting failure; its stderr.
fn fails(args: &[&str]) -> String {
    let (code, _, stderr) = strata(args);
    assert_eq!(code, 1, "{args:?} should fail: {stderr}");
    stderr
}

/// A zero and a one from the folders `write_digit_folders` wrote.
fn one_of_each(data: &Path) -> [PathBuf; 2] {
    ["zero", "one"].map(|class| {
        let folder = data.join(class);
        let mut files: Vec<_> = std::fs::read_dir(folder).unwrap().map(|e| e.unwrap().path()).collect();
        files.sort();
        files.pop().unwrap()
    })
}

#[test]
fn folder_names_travel_with_the_model_through_resume_predict_and_evaluate() {
    let dir = temp_dir("folders");
    let data = dir.join("digits");
    write_digit_folders(&data, 30);
    let (first, resumed) = (dir.join("first.safetensors"), dir.join("resumed.safetensors"));
    let quiet = ["--verbose", "0", "--json"];
    let mut args = vec!["train", "--data", text(&data), "--epochs", "2", "--save", text(&first)];
    args.extend(quiet);
    let report = last_json(&ok(&args));
    assert_eq!(report["class_names"], serde_json::json!(["one", "zero"]));
    let stdout = ok(&["train", "--resume", text(&first), "--epochs", "3", "--verbose", "2"]);
    assert!(
        stdout.contains("2 classes, labelled in this order: one, zero"),
        "{stdout}"
    );
    let mut args = vec![
        "train",
        "--resume",
        text(&first),
        "--epochs",
        "3",
        "--save",
        text(&resumed),
    ];
    args.extend(quiet);
    ok(&args);
    for file in [&first, &resumed] {
        let model = strata::load_model(file).unwrap();
        // Alphabetical, as the folders are numbered.
        assert_eq!(class_names(&model).unwrap().unwrap(), ["one", "zero"]);
        let record = ImageInput::of(&model).unwrap().unwrap();
        assert_eq!((record.image_size, record.mode), (Some((28, 28)), Mode::Unit));
    }

    let [zero, one] = one_of_each(&data);
    let stdout = ok(&[
        "predict",
        "--model",
        text(&resumed),
        text(&zero),
        text(&one),
        "--top",
        "2",
    ]);
    let lines: Vec<&str> = stdout.lines().collect();
    assert!(
        lines[0].contains(": zero (") && lines[0].contains(", one ("),
        "{stdout}"
    );
    assert!(
        lines[1].contains(": one (") && lines[1].contains(", zero ("),
        "{stdout}"
    );
    let stdout = ok(&["predict", "--model", text(&resumed), text(&one), "--json", "--top", "4"]);
    let top = last_json(&stdout)[0]["top"].clone();
    assert_eq!(top.as_array().unwrap().len(), 4);
    assert_eq!(
        (top[0]["class"].as_u64(), top[0]["name"].as_str()),
        (Some(0), Some("one"))
    );
    // The mlp has 10 outputs for its 2 folders: the others go by number.
    let numbered = top.as_array().unwrap()[2..].iter().all(|t| {
        let class = t["class"].as_u64().unwrap();
        class >= 2 && t["name"].as_str().and_then(|n| n.parse::<u64>().ok()) == Some(class)
    });
    assert!(numbered, "{top}");

    // The classification report and the matrix's header name the classes.
    let stdout = ok(&["evaluate", "--model", text(&resumed)]);
    let report_row = |name: &str| stdout.lines().any(|l| l.split_whitespace().next() == Some(name));
    assert!(report_row("one") && report_row("zero"), "{stdout}");
    let report = last_json(&ok(&["evaluate", "--model", text(&resumed), "--json"]));
    let classes = &report["confusion_matrix"]["classes"];
    let first: Vec<&str> = classes.as_array().unwrap()[..3]
        .iter()
        .map(|c| c.as_str().unwrap())
        .collect();
    assert_eq!(first, ["one", "zero", "2"]);
}

#[test]
fn another_folders_classes_are_an_error_naming_both() {
    let dir = temp_dir("other-classes");
    let data = dir.join("digits");
    write_digit_folders(&data, 5);
    let model = dir.join("model.safetensors");
    ok(&[
        "train",
        "--data",
        text(&data),
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--save",
        text(&model),
    ]);
    std::fs::rename(data.join("one"), data.join("uno")).unwrap();
    let stderr = fails(&["evaluate", "--model", text(&model), "--data", text(&data)]);
    assert!(stderr.contains("uno, zero") && stderr.contains("one, zero"), "{stderr}");
    // A new run on the model as a base takes the new folders' names.
    let transferred = dir.join("transferred.safetensors");
    ok(&[
        "train",
        "--base",
        text(&model),
        "--data",
        text(&data),
        "--epochs",
        "1",
        "--verbose",
        "0",
        "--save",
        text(&transferred),
    ]);
    let names = class_names(&strata::load_model(&transferred).unwrap()).unwrap();
    assert_eq!(names.unwrap(), ["uno", "zero"]);
}

#[test]
fn csv_text_labels_become_class_names() {
    let dir = temp_dir("csv");
    let (train, test, model) = (dir.join("train.csv"), dir.join("test.csv"), dir.join("m.safetensors"));
    let mut rows = String::from("x,y,species\n");
    for i in 0..60 {
        let (x, species) = if i % 2 == 0 {
            (1.0, "setosa")
        } else {
            (-1.0, "virginica")
        };
        rows.push_str(&format!("{x},{},{species}\n", i as f32 / 60.0));
    }
    std::fs::write(&train, &rows).unwrap();
    // The test table lists the classes the other way round: numbered by the training names.
    std::fs::write(&test, "x,y,species\n-1,0.5,virginica\n1,0.5,setosa\n").unwrap();
    let model_file = dir.join("model.toml");
    std::fs::write(
        &model_file,
        "[compile]\noptimizer = \"adam\"\nloss = \"sparse_categorical_crossentropy\"\nmetrics = [\"accuracy\"]\n\n\
         [[layers]]\nclass_name = \"InputLayer\"\nconfig = { shape = [2] }\n\n\
         [[layers]]\nclass_name = \"Dense\"\nconfig = { units = 2, activation = \"softmax\" }\n",
    )
    .unwrap();
    let stdout = ok(&[
        "train",
        "--model",
        text(&model_file),
        "--data",
        text(&train),
        "--test-data",
        text(&test),
        "--epochs",
        "30",
        "--lr",
        "0.1",
        "--verbose",
        "0",
        "--json",
        "--save",
        text(&model),
    ]);
    assert_eq!(last_json(&stdout)["test_accuracy"].as_f64(), Some(1.0), "{stdout}");
    let saved = strata::load_model(&model).unwrap();
    assert_eq!(class_names(&saved).unwrap().unwrap(), ["setosa", "virginica"]);
    let report = last_json(&ok(&["evaluate", "--model", text(&model), "--json"]));
    assert_eq!(report["test_accuracy"].as_f64(), Some(1.0), "{report}");
    assert_eq!(
        report["confusion_matrix"]["classes"],
        serde_json::json!(["setosa", "virginica"])
    );
    std::fs::write(&test, "x,y,species\n-1,0.5,versicolor\n").unwrap();
    let stderr = fails(&["evaluate", "--model", text(&model)]);
    assert!(
        stderr.contains("'versicolor' is not one of the model's classes (setosa, virginica)"),
        "{stderr}"
    );
}

/// A saved 1000-class model on 8×8 RGB images, untrained.
fn thousand_classes(path: &Path) {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[8, 8, 3]))
        .add(Flatten::new())
        .add(Dense::new(1000).activation("softmax"));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model.build(&[8, 8, 3]).unwrap();
    model.save(path).unwrap();
}

#[test]
fn labels_files_override_and_imagenet_names_a_thousand_classes() {
    let dir = temp_dir("labels");
    let model = dir.join("thousand.safetensors");
    thousand_classes(&model);
    let image = dir.join("image.png");
    image::RgbImage::from_fn(8, 8, |x, y| image::Rgb([(x * 30) as u8, (y * 30) as u8, 128]))
        .save(&image)
        .unwrap();
    let stdout = ok(&["predict", "--model", text(&model), text(&image), "--top", "5", "--json"]);
    let top = last_json(&stdout)[0]["top"].clone();
    assert_eq!(top.as_array().unwrap().len(), 5);
    for entry in top.as_array().unwrap() {
        let class = entry["class"].as_u64().unwrap() as usize;
        assert_eq!(entry["name"], imagenet_classes()[class].1, "{entry}");
        assert_eq!(entry["wnid"], imagenet_classes()[class].0, "{entry}");
    }
    let best = top[0]["class"].as_u64().unwrap() as usize;
    // The probabilities are the model's, most probable first, as Keras's decode_predictions
    // lists them: the pixels prepared as the model's record says ("unit" without one: x/255).
    let mut loaded = strata::load_model(&model).unwrap();
    let pixels = image::open(&image).unwrap().to_rgb8();
    let x = Tensor::from_vec(
        vec![1, 8, 8, 3],
        pixels.as_raw().iter().map(|&p| f32::from(p) / 255.0).collect(),
    )
    .unwrap();
    let decoded = strata::applications::decode_predictions(&loaded.predict(&x, 1).unwrap(), 5).unwrap();
    for (entry, expected) in top.as_array().unwrap().iter().zip(&decoded[0]) {
        assert_eq!(entry["class"].as_u64().unwrap() as usize, expected.index, "{entry}");
        assert_eq!(entry["name"], expected.name, "{entry}");
        let probability = entry["probability"].as_f64().unwrap() as f32;
        assert!(
            (probability - expected.probability).abs() < 1e-6,
            "{entry}: {expected:?}"
        );
    }
    let stdout = ok(&["predict", "--model", text(&model), text(&image), "--top", "2"]);
    let first = &decoded[0][0];
    assert!(stdout.contains(&format!("image.png: {} (", first.name)), "{stdout}");

    // Keras's class-index form, as a file: names from it instead.
    let index: serde_json::Map<String, serde_json::Value> = (0..1000)
        .map(|i| {
            (
                i.to_string(),
                serde_json::json!([format!("id{i}"), format!("class {i}")]),
            )
        })
        .collect();
    let labels = dir.join("index.json");
    std::fs::write(&labels, serde_json::Value::Object(index).to_string()).unwrap();
    let stdout = ok(&[
        "predict",
        "--model",
        text(&model),
        text(&image),
        "--labels",
        text(&labels),
    ]);
    assert!(stdout.contains(&format!(": class {best} (")), "{stdout}");

    let short = dir.join("short.txt");
    std::fs::write(&short, "cat\ndog\n").unwrap();
    let stderr = fails(&[
        "predict",
        "--model",
        text(&model),
        text(&image),
        "--labels",
        text(&short),
    ]);
    assert!(
        stderr.contains("short.txt name 2 classes") && stderr.contains("1000 outputs"),
        "{stderr}"
    );
    let stderr = fails(&["predict", "--model", text(&model), text(&image), "--top", "0"]);
    assert!(stderr.contains("--top"), "{stderr}");
    let stderr = fails(&[
        "predict",
        "--model",
        text(&model),
        text(&image),
        "--preprocess",
        "keras",
    ]);
    assert!(
        stderr.contains("--preprocess") && stderr.contains("caffe, tf, torch, unit, none"),
        "{stderr}"
    );
}

/// The Keras-side pipeline of `tools/make_imagenet_fixtures.py` for `name`: the mode, the image's
/// pixels and Keras's predictions.
fn keras_pipeline(name: &str) -> (String, image::RgbImage, Vec<f32>) {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/imagenet_utils.json");
    let fixture: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let pipeline = &fixture["pipelines"][name];
    let rows = pipeline["pixels"].as_array().unwrap();
    let size = rows.len() as u32;
    let pixel = |x: u32, y: u32| {
        let rgb = &rows[y as usize][x as usize];
        image::Rgb([0, 1, 2].map(|c| rgb[c].as_u64().unwrap() as u8))
    };
    let predictions = pipeline["predictions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_f64().unwrap() as f32);
    (
        pipeline["mode"].as_str().unwrap().to_string(),
        image::RgbImage::from_fn(size, size, pixel),
        predictions.collect(),
    )
}

/// `strata predict --json`'s probabilities of every class, by class index.
fn all_probabilities(args: &[&str]) -> Vec<f32> {
    let stdout = ok(args);
    let top = last_json(&stdout)[0]["top"].as_array().unwrap().clone();
    let mut probabilities = vec![f32::NAN; top.len()];
    for entry in &top {
        probabilities[entry["class"].as_u64().unwrap() as usize] = entry["probability"].as_f64().unwrap() as f32;
    }
    probabilities
}

#[test]
fn imported_applications_predict_as_keras_with_their_recorded_preparation() {
    let dir = temp_dir("import");
    let fixtures = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/applications");
    for (name, recorded) in [("mobilenetv3small_a035", true), ("nested_mobilenetv2", false)] {
        let model = dir.join(format!("{name}.safetensors"));
        let stdout = ok(&["import", &format!("{fixtures}/{name}.keras"), "-o", text(&model)]);
        let (mode, pixels, keras) = keras_pipeline(name);
        let image = dir.join(format!("{name}.png"));
        pixels.save(&image).unwrap();
        let mut args = vec![
            "predict",
            "--model",
            text(&model),
            text(&image),
            "--json",
            "--top",
            "10",
        ];
        if recorded {
            // MobileNetV3 rescales inside: Keras's name for it says so, and the record keeps it.
            assert!(stdout.contains("\"none\" mode"), "{stdout}");
            let record = ImageInput::of(&strata::load_model(&model).unwrap()).unwrap().unwrap();
            assert_eq!((record.image_size, record.mode), (Some((64, 64)), Mode::Raw));
            // Trained further on an image folder, it keeps its mode (the images are prepared so).
            let (data, tuned) = (dir.join("digits"), dir.join("tuned.safetensors"));
            write_digit_folders(&data, 3);
            ok(&[
                "train",
                "--base",
                text(&model),
                "--data",
                text(&data),
                "--epochs",
                "1",
                "--save",
                text(&tuned),
            ]);
            let tuned = strata::load_model(&tuned).unwrap();
            assert_eq!(ImageInput::of(&tuned).unwrap(), Some(record));
            assert_eq!(class_names(&tuned).unwrap().unwrap(), ["one", "zero"]);
            // --base takes the Keras file itself, and records its family's preparation as
            // `strata import` does.
            let direct = dir.join("direct.safetensors");
            let keras = format!("{fixtures}/{name}.keras");
            let flags = ["train", "--base", &keras, "--data", text(&data), "--epochs", "1"];
            ok(&[&flags[..], &["--save", text(&direct)]].concat());
            let direct = strata::load_model(&direct).unwrap();
            assert_eq!(ImageInput::of(&direct).unwrap(), Some(record));
            assert_eq!(class_names(&direct).unwrap().unwrap(), ["one", "zero"]);
        } else {
            // A model named by its author records nothing: the flag says how.
            args.extend(["--preprocess", mode.as_str()]);
            // ... or import records it, with class names.
            let (recorded, labels) = (dir.join("recorded.safetensors"), dir.join("labels.txt"));
            std::fs::write(&labels, "a\nb\nc\nd\ne\n").unwrap();
            let keras = format!("{fixtures}/{name}.keras");
            let flags = [
                "import",
                &keras,
                "-o",
                text(&recorded),
                "--preprocess",
                &mode,
                "--labels",
                text(&labels),
            ];
            ok(&flags);
            let imported = strata::load_model(&recorded).unwrap();
            assert_eq!(ImageInput::of(&imported).unwrap().unwrap().mode, Mode::Tf);
            assert_eq!(class_names(&imported).unwrap().unwrap(), ["a", "b", "c", "d", "e"]);
            std::fs::write(&labels, "a\nb\n").unwrap();
            let stderr = fails(&flags);
            assert!(
                stderr.contains("names 2 classes") && stderr.contains("5 outputs"),
                "{stderr}"
            );
        }
        let ours = all_probabilities(&args);
        for (class, (a, k)) in ours.iter().zip(&keras).enumerate() {
            assert!((a - k).abs() < 1e-4, "{name}, class {class}: {a} against Keras's {k}");
        }
        if !recorded {
            // The flag is heeded: raw pixels give other outputs.
            *args.last_mut().unwrap() = "none";
            let raw = all_probabilities(&args);
            assert!(raw.iter().zip(&keras).any(|(a, k)| (a - k).abs() > 1e-3), "{raw:?}");
        }
    }
}
