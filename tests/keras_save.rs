//! Saving in Keras's formats, `model.save("m.keras")` and `model.save("m.h5")`, and loading the
//! files back in strata: the same weights, the same outputs bit for bit, the same compile
//! settings. (Keras itself loads the same models in `tools/check_keras_save.py`, run by CI.)
mod common;

#[path = "common/keras_models.rs"]
mod keras_models;

use std::io::Read;
use std::path::PathBuf;
use strata::prelude::*;

/// A fresh folder for one test's files.
fn scratch(test: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-keras-save-{test}-{}", common::run_id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// The compile settings that must survive: optimizer class and learning rate, losses, metrics.
fn compile_summary(model: &Model) -> serde_json::Value {
    let config = model.compile_config().expect("compiled");
    serde_json::json!({
        "optimizer": config["optimizer"]["class_name"],
        "learning_rate": config["optimizer"]["config"]["learning_rate"],
        "loss": config["loss"],
        "from_logits": config["from_logits"],
        "metrics": config["metrics"],
    })
}

#[test]
fn keras_files_round_trip_weights_outputs_and_compile_settings() {
    let dir = scratch("round-trip");
    for extension in ["keras", "h5"] {
        for mut case in keras_models::cases().unwrap() {
            let expected = case.model.predict(&case.input, 32).unwrap();
            let path = dir.join(format!("{}.{extension}", case.name));
            case.model.save(&path).unwrap();
            let mut loaded = strata::load_model(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            let (saved, restored) = (case.model.weights(), loaded.weights());
            assert_eq!(restored.len(), saved.len(), "{}", path.display());
            for (name, value) in &saved {
                let back = &restored[name];
                assert_eq!(back.shape(), value.shape(), "{name} of {}", path.display());
                assert_eq!(back.data(), value.data(), "{name} of {}", path.display());
            }
            let got = loaded.predict(&case.input, 32).unwrap();
            assert_eq!(got.shape(), expected.shape(), "{}", path.display());
            assert_eq!(got.data(), expected.data(), "{}", path.display());
            assert_eq!(
                compile_summary(&loaded),
                compile_summary(&case.model),
                "{}",
                path.display()
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn the_archive_is_laid_out_as_keras_writes_it() {
    let dir = scratch("layout");
    let mut cases = keras_models::cases().unwrap();
    let text = cases.iter_mut().find(|c| c.name == "text").unwrap();
    let path = dir.join("text.keras");
    text.model.save(&path).unwrap();
    let mut archive = zip::ZipArchive::new(std::fs::File::open(&path).unwrap()).unwrap();
    let mut names: Vec<String> = archive.file_names().map(|n| n.unwrap().to_string()).collect();
    names.sort();
    assert_eq!(names, ["config.json", "metadata.json", "model.weights.h5"]);
    let mut config = String::new();
    archive
        .by_name("config.json")
        .unwrap()
        .read_to_string(&mut config)
        .unwrap();
    let config: serde_json::Value = serde_json::from_str(&config).unwrap();
    assert_eq!(config["class_name"], "Sequential");
    let layers = config["config"]["layers"].as_array().unwrap();
    let classes: Vec<&str> = layers.iter().map(|l| l["class_name"].as_str().unwrap()).collect();
    assert_eq!(classes, ["InputLayer", "Embedding", "LSTM", "GRU", "Dense"]);
    // Each layer says how Keras builds it: the LSTM reads (None, 15, 8).
    assert_eq!(
        layers[2]["build_config"]["input_shape"],
        serde_json::json!([null, 15, 8])
    );
    assert_eq!(layers[2]["module"], "keras.layers");
    assert_eq!(config["compile_config"]["loss"], "binary_crossentropy");
    assert_eq!(config["compile_config"]["optimizer"]["module"], "keras.optimizers");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// config.json of a `.keras` archive.
fn archive_config(path: &std::path::Path) -> serde_json::Value {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(path).unwrap()).unwrap();
    let mut config = String::new();
    archive
        .by_name("config.json")
        .unwrap()
        .read_to_string(&mut config)
        .unwrap();
    serde_json::from_str(&config).unwrap()
}

#[test]
fn nested_models_are_saved_nested_and_load_back_nested() {
    let dir = scratch("nested");
    let mut cases = keras_models::cases().unwrap();
    let case = cases.iter_mut().find(|c| c.name == "nested").unwrap();
    let expected = case.model.predict(&case.input, 32).unwrap();
    let path = dir.join("nested.keras");
    case.model.save(&path).unwrap();
    // As Keras writes Sequential([base, GlobalAveragePooling2D(), Dense(3)]): the base is one
    // layer of class Functional, called on the input, holding its layers and the block.
    let config = archive_config(&path);
    let layers = config["config"]["layers"].as_array().unwrap();
    let names: Vec<&str> = layers.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(names[1..], ["base", "pool", "head"]);
    let base = &layers[1];
    assert_eq!(base["class_name"], "Functional");
    assert_eq!(base["config"]["trainable"], false);
    assert_eq!(
        base["inbound_nodes"][0]["args"][0]["config"]["keras_history"][0],
        names[0]
    );
    let inner: Vec<&str> = base["config"]["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["class_name"].as_str().unwrap())
        .collect();
    assert_eq!(
        inner,
        [
            "InputLayer",
            "Conv2D",
            "BatchNormalization",
            "Activation",
            "Sequential",
            "Add"
        ]
    );
    assert_eq!(base["config"]["output_layers"], serde_json::json!(["base_add", 0, 0]));
    let block = &base["config"]["layers"][4];
    assert_eq!(block["config"]["layers"][0]["class_name"], "InputLayer");
    assert_eq!(block["config"]["layers"].as_array().unwrap().len(), 3);
    // strata reads its file back nested, the base still frozen, with the same outputs.
    for file in ["nested.keras", "nested.h5", "nested.safetensors"] {
        let path = dir.join(file);
        case.model.save(&path).unwrap();
        let mut loaded = strata::load_model(&path).unwrap();
        assert_eq!(loaded.nested_models(), case.model.nested_models(), "{file}");
        assert!(
            !loaded.is_nested_trainable(keras_models::NESTED_BASE).unwrap(),
            "{file}"
        );
        assert!(loaded.get_layer("head").unwrap().is_trainable(), "{file}");
        let got = loaded.predict(&case.input, 32).unwrap();
        assert_eq!(got.data(), expected.data(), "{file}");
    }
    // The archive's weights load into the model (Keras's load_weights), and so do those of the
    // flat archive strata wrote before it kept the nesting.
    let nested_case = || {
        let case = keras_models::cases().unwrap().into_iter().find(|c| c.name == "nested");
        case.unwrap().model
    };
    let mut flat = nested_case();
    flat.set_nested_models(Vec::new());
    flat.save(dir.join("flat.keras")).unwrap();
    for file in ["nested.keras", "flat.keras"] {
        let mut fresh = nested_case();
        keras_models::randomize(&mut fresh, 99);
        fresh.load_weights(dir.join(file)).unwrap();
        assert_eq!(
            fresh.predict(&case.input, 32).unwrap().data(),
            expected.data(),
            "{file}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_loss_on_logits_is_saved_as_a_keras_loss_object() {
    let dir = scratch("logits");
    let mut cases = keras_models::cases().unwrap();
    let functional = cases.iter_mut().find(|c| c.name == "functional").unwrap();
    let path = dir.join("functional.keras");
    functional.model.save(&path).unwrap();
    let config = archive_config(&path);
    let loss = &config["compile_config"]["loss"];
    assert_eq!(loss["class_name"], "SparseCategoricalCrossentropy");
    assert_eq!(loss["config"]["from_logits"], true);
    // The shared layer is called twice: its second call is Keras's node 1.
    let layers = config["config"]["layers"].as_array().unwrap();
    let shared = layers.iter().find(|l| l["name"] == "shared").unwrap();
    assert_eq!(shared["inbound_nodes"].as_array().unwrap().len(), 2);
    let add = layers.iter().find(|l| l["class_name"] == "Add").unwrap();
    let histories: Vec<&serde_json::Value> = add["inbound_nodes"][0]["args"][0]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| &t["config"]["keras_history"])
        .collect();
    assert_eq!(
        histories,
        [
            &serde_json::json!(["shared", 0, 0]),
            &serde_json::json!(["shared", 1, 0])
        ]
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn layers_keras_lacks_are_all_named_before_anything_is_written() {
    let dir = scratch("unsupported");
    let mut model = Sequential::new();
    model
        .add(Input::new(&[5, 4]))
        .add(PositionEmbedding::new(5))
        .add(SinePositionEncoding::new())
        .add(Dense::new(1));
    model.build(&[5, 4]).unwrap();
    for name in ["m.keras", "m.h5"] {
        let path = dir.join(name);
        let error = model.save(&path).unwrap_err().to_string();
        assert!(error.contains("'position_embedding' (PositionEmbedding)"), "{error}");
        assert!(error.contains("keras_hub"), "{error}");
        assert!(
            error.contains("'sine_position_encoding' (SinePositionEncoding)"),
            "{error}"
        );
        assert!(error.contains(".safetensors"), "{error}");
        assert!(!path.exists());
    }
    // The same model saves in strata's own file.
    model.save(dir.join("m.safetensors")).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_unbuilt_model_is_refused() {
    let mut model = Sequential::new();
    model.add(Dense::new(3));
    let error = model.save("never-written.keras").unwrap_err().to_string();
    assert!(error.contains("build it"), "{error}");
    assert!(!std::path::Path::new("never-written.keras").exists());
}

/// Label smoothing survives saving: in strata's own file, and in Keras's files as the loss
/// object's `label_smoothing` (where Keras reads it), loaded back into the same loss.
#[test]
fn label_smoothing_is_saved_and_loaded() {
    let dir = scratch("smoothing");
    let smoothed = Loss::CategoricalCrossentropy {
        from_logits: false,
        label_smoothing: 0.1,
    };
    for extension in ["safetensors", "keras", "h5"] {
        let mut model = Sequential::new();
        model.add(Input::new(&[4])).add(Dense::new(3).activation("softmax"));
        model.build(&[4]).unwrap();
        model.compile(Adam::new(0.01), smoothed, &["accuracy"]).unwrap();
        let path = dir.join(format!("smoothed.{extension}"));
        model.save(&path).unwrap();
        let loaded = strata::load_model(&path).unwrap();
        assert_eq!(loaded.loss(), Some(smoothed), "{}", path.display());
        if extension == "keras" {
            let config = archive_config(&path);
            let loss = &config["compile_config"]["loss"];
            assert_eq!(loss["class_name"], "CategoricalCrossentropy", "{loss}");
            assert!(
                (loss["config"]["label_smoothing"].as_f64().unwrap() - 0.1).abs() < 1e-7,
                "{loss}"
            );
        }
    }
    std::fs::remove_dir_all(&dir).unwrap();
}
