//! Importing Keras 3 `.keras` archives. The fixtures under tests/fixtures/keras/ were written
//! by tools/make_keras_fixtures.py with Keras 3: each NAME.keras has random weights (biases
//! too), and NAME.json holds a fixed input batch and what Keras's `predict` returned for it.
mod common;

use serde_json::Value;
use strata::io::import_keras;
use strata::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/{name}"))
}

/// The fixture's input batch and Keras's outputs for it.
fn keras_io(name: &str) -> (Tensor, Tensor) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let tensor = |key: &str| {
        let shape: Vec<usize> = serde_json::from_value(json[format!("{key}_shape")].clone()).unwrap();
        let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
        Tensor::from_vec(shape, values).unwrap()
    };
    (tensor("input"), tensor("output"))
}

fn assert_close(actual: &Tensor, expected: &Tensor, what: &str) {
    assert_eq!(actual.shape(), expected.shape(), "{what}");
    for (i, (a, e)) in actual.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-5, "{what}[{i}]: strata {a}, Keras {e}");
    }
}

/// Imports NAME.keras and checks its predictions against Keras's.
fn assert_matches_keras(name: &str) -> Model {
    let mut model = import_keras(fixture(&format!("{name}.keras"))).unwrap();
    let (x, expected) = keras_io(name);
    let y = model.predict(&x, 32).unwrap();
    assert_close(&y, &expected, name);
    model
}

#[test]
fn dense_mlp_matches_keras_and_keeps_its_compile_settings() {
    let model = assert_matches_keras("mlp");
    assert_eq!(model.name(), "mlp");
    // Dense(5) on 6 inputs, Dense(4) without bias, Dense(3): 35 + 20 + 15.
    assert_eq!(model.count_params(), 70);
    assert_eq!(
        model.loss(),
        Some(Loss::SparseCategoricalCrossentropy { from_logits: false })
    );
    let optimizer = model.optimizer().unwrap();
    assert!((optimizer.learning_rate() - 0.01).abs() < 1e-7);
    let compile = model.compile_config().unwrap();
    assert_eq!(compile["optimizer"]["class_name"], "Adam", "{compile}");
    assert_eq!(compile["metrics"], serde_json::json!(["accuracy"]), "{compile}");
}

#[test]
fn cnn_matches_keras() {
    let model = assert_matches_keras("cnn");
    // A loss object in compile_config becomes its name.
    assert_eq!(
        model.loss(),
        Some(Loss::SparseCategoricalCrossentropy { from_logits: false })
    );
    assert_eq!(model.compile_config().unwrap()["optimizer"]["class_name"], "SGD");
}

#[test]
fn conv1d_matches_keras() {
    let model = assert_matches_keras("conv1d");
    assert_eq!(model.loss(), Some(Loss::MeanSquaredError));
    assert!((model.optimizer().unwrap().learning_rate() - 0.002).abs() < 1e-7);
}

#[test]
fn reshape_global_pooling_and_activation_match_keras() {
    let model = assert_matches_keras("global");
    // Saved without compile: imported without compile.
    assert!(model.loss().is_none());
}

#[test]
fn masking_advanced_activations_and_sequence_pooling_match_keras() {
    // Masking → GRU → LeakyReLU → PReLU → SpatialDropout1D → AveragePooling1D →
    // GlobalMaxPooling1D → Dense → ELU → Identity → RepeatVector → LSTM → Dense → Softmax, on
    // inputs with fully padded steps.
    assert_matches_keras("masked_sequence_layers");
}

/// `Embedding(mask_zero=True)`'s mask through Activation, ReLU and BatchNormalization, which
/// Keras passes it through, to a GRU and to self-attention and its mask-aware mean, on ids
/// padded in front, at the end and inside.
#[test]
fn masks_through_keras_passing_layers_match_keras() {
    assert_matches_keras("masked_through_layers");
}

/// Masks joined as Keras 3's merges join them: `Add` of two masks (a step is real where either
/// is), of a masked and an unmasked input (no mask), `Concatenate` along the features with an
/// unmasked input (every step real) and along the steps (the masks side by side), each read by
/// a recurrent layer.
#[test]
fn merged_masks_match_keras() {
    assert_matches_keras("masked_merges");
}

/// `Masking` in a functional model: Keras 3 writes its mask as `not_equal` and `any`
/// operations handed to each call as `mask=`; strata's own mask takes their place. An LSTM, its
/// mask-aware mean and a GRU read it, on inputs with padded steps at the end and inside. The
/// same model from Keras 3's legacy `.h5` writer, which leaves the operations' module out.
#[test]
fn functional_masking_matches_keras() {
    let mut from_h5 = strata::io::import_keras_h5(fixture("masked_functional.h5")).unwrap();
    let (x, expected) = keras_io("masked_functional");
    assert_close(&from_h5.predict(&x, 32).unwrap(), &expected, "masked_functional.h5");
    let model = assert_matches_keras("masked_functional");
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert_eq!(
        classes,
        [
            "InputLayer",
            "Masking",
            "LSTM",
            "GlobalAveragePooling1D",
            "GRU",
            "Concatenate",
            "Dense"
        ]
    );
    // LSTM(4) and GRU(3) on 5 features, Dense(2) on 7.
    assert_eq!(model.count_params(), 4 * 4 * (5 + 4 + 1) + 3 * 3 * (5 + 3 + 2) + 8 * 2);
}

#[test]
fn imported_models_save_and_load() {
    let model = import_keras(fixture("cnn.keras")).unwrap();
    let path = std::env::temp_dir().join(format!("strata-keras-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut restored = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).unwrap();
    let (x, expected) = keras_io("cnn");
    assert_close(&restored.predict(&x, 32).unwrap(), &expected, "restored cnn");
    assert_eq!(restored.loss(), model.loss());
}

/// `keras.Input((None,))`: the file leaves the length open; strata builds for a stand-in
/// length, predicts Keras's values on 7 steps and keeps the `null` in the model's config.
#[test]
fn a_sequence_of_any_length_matches_keras() {
    let model = assert_matches_keras("any_length");
    assert_eq!(model.input_shapes(), &[vec![7]]);
    assert_eq!(
        model.layers()[0].config()["batch_shape"],
        serde_json::json!([null, null])
    );
    // Embedding(10, 4), LSTM(3), Dense(2).
    assert_eq!(model.count_params(), 40 + 4 * 3 * (4 + 3 + 1) + 8);
}

/// Keras 3's `RMSNormalization` (its `scale` drawn at random) and `ZeroPadding1D` before a
/// "valid" `Conv1D`.
#[test]
fn rms_normalization_and_zero_padding_1d_match_keras() {
    let model = assert_matches_keras("rms_padding");
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert!(
        classes.contains(&"RMSNormalization") && classes.contains(&"ZeroPadding1D"),
        "{classes:?}"
    );
    // Embedding(10, 4), Conv1D(3, 3), RMSNormalization's scale (3), Dense(2).
    assert_eq!(model.count_params(), 40 + 3 * 4 * 3 + 3 + 3 + 3 * 2 + 2);
}

/// `Conv1D(padding="causal")`: zeros before each sequence only, `(kernel - 1) · dilation` of
/// them, dilated and strided.
#[test]
fn causal_1d_convolutions_match_keras() {
    let model = assert_matches_keras("causal_conv1d");
    assert_eq!(model.output_shape(), Some(&[5, 2][..]));
    assert_eq!(model.layers()[1].config()["padding"], "causal");
}

#[test]
fn lstm_matches_keras() {
    // Keras keeps a recurrent layer's weights in its cell (layers/lstm/cell/vars/0..2).
    let model = assert_matches_keras("lstm");
    // LSTM(2) on 3 features: 4·(2·(3+2)+2) = 48, then Dense(1): 3.
    assert_eq!(model.count_params(), 51);
}

#[test]
fn embedding_gru_and_simple_rnn_match_keras() {
    // Embedding(10, 4) → GRU(3, return_sequences, reset_after) → SimpleRNN(2) → Dense(2).
    let model = assert_matches_keras("gru");
    // 40 + 3·3·(4+3) + 2·9 + 2·(3+2)+2 + 2·2+2.
    assert_eq!(model.count_params(), 40 + 81 + 12 + 6);
}

#[test]
fn unsupported_layers_are_named() {
    let mut archive = zip::ZipArchive::new(std::fs::File::open(fixture("lstm.keras")).unwrap()).unwrap();
    let mut config = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("config.json").unwrap(), &mut config).unwrap();
    let mut weights = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("model.weights.h5").unwrap(), &mut weights).unwrap();
    let path = std::env::temp_dir().join(format!("strata-convlstm-{}.keras", common::run_id()));
    write_archive(&path, &config.replace("\"LSTM\"", "\"ConvLSTM1D\""), Some(&weights));
    let err = import_keras(&path).err().unwrap().to_string();
    std::fs::remove_file(&path).unwrap();
    assert!(
        err.contains("'lstm' (ConvLSTM1D) is not supported") && err.contains("Conv2D"),
        "{err}"
    );
}

#[test]
fn imports_batch_normalization_and_dropout() {
    // Dense → BatchNormalization (random moving statistics) → Dropout → Dense, at inference.
    assert_matches_keras("batchnorm");
}

/// The fixture's input batches and Keras's outputs for a model with several inputs or outputs.
fn keras_multi_io(name: &str) -> (Vec<Tensor>, Vec<Tensor>) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let tensors = |key: &str| -> Vec<Tensor> {
        json[key]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| {
                let shape: Vec<usize> = serde_json::from_value(t["shape"].clone()).unwrap();
                let values: Vec<f32> = serde_json::from_value(t["values"].clone()).unwrap();
                Tensor::from_vec(shape, values).unwrap()
            })
            .collect()
    };
    (tensors("inputs"), tensors("outputs"))
}

#[test]
fn functional_models_with_shared_layers_and_merges_match_keras() {
    // Dense "shared" called twice, Add (skip connection), BatchNormalization, Concatenate.
    let mut model = assert_matches_keras("residual");
    assert_eq!(model.name(), "residual");
    // shared 6·6+6, norm 4·6, probabilities 12·3+3.
    assert_eq!(model.count_params(), 42 + 24 + 39);
    let summary = model.summary().unwrap();
    assert!(
        summary.contains("shared[1][0]") && summary.contains("pixels[0][0]"),
        "{summary}"
    );
    assert_eq!(model.config()["class_name"], "Functional");
}

#[test]
fn functional_models_with_two_inputs_and_two_outputs_match_keras() {
    let mut model = import_keras(fixture("two_heads.keras")).unwrap();
    assert_eq!(model.input_count(), 2);
    assert_eq!(model.output_names(), ["label", "score"]);
    assert_eq!(
        model.losses().unwrap(),
        [
            Loss::SparseCategoricalCrossentropy { from_logits: false },
            Loss::MeanSquaredError
        ]
    );
    let compile = model.compile_config().unwrap();
    assert_eq!(compile["loss_weights"], serde_json::json!([1.0, 0.5]), "{compile}");
    assert_eq!(compile["metrics"], serde_json::json!([["accuracy"], []]), "{compile}");
    let (inputs, expected) = keras_multi_io("two_heads");
    let inputs: Vec<&Tensor> = inputs.iter().collect();
    let outputs = model.predict_multi(&inputs, 32).unwrap();
    for (i, (output, expected)) in outputs.iter().zip(&expected).enumerate() {
        assert_close(output, expected, &format!("two_heads output {i}"));
    }
    // And it trains from there, with one loss per output.
    let labels = Tensor::from_vec(vec![3], vec![0.0, 1.0, 1.0]).unwrap();
    let scores = Tensor::from_vec(vec![3, 1], vec![0.5, -0.5, 0.0]).unwrap();
    let history = model
        .fit_multi(&inputs, &[&labels, &scores], FitOptions::default().verbose(0))
        .unwrap();
    assert!(history.last().unwrap().get("label_accuracy").is_some());
}

#[test]
fn the_cli_imports_to_safetensors() {
    let out = std::env::temp_dir().join(format!("strata-cli-keras-{}.safetensors", common::run_id()));
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("import")
        .arg(fixture("mlp.keras"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let mut model = strata::load_model(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    let (x, expected) = keras_io("mlp");
    assert_close(&model.predict(&x, 32).unwrap(), &expected, "mlp via the CLI");

    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("import")
        .arg(fixture("missing.keras"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(!failed.status.success() && !out.exists());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("missing.keras"));
}

#[test]
fn files_that_are_not_keras_archives_say_so() {
    let dir = std::env::temp_dir().join(format!("strata-keras-bad-{}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    let not_zip = dir.join("text.keras");
    std::fs::write(&not_zip, "hello").unwrap();
    let err = import_keras(&not_zip).err().unwrap().to_string();
    assert!(err.contains("text.keras") && err.contains("not a valid zip"), "{err}");
    let missing = import_keras(dir.join("missing.keras")).err().unwrap().to_string();
    assert!(
        missing.contains("missing.keras") && missing.contains("cannot read"),
        "{missing}"
    );

    // A zip without the weights, and one whose weights are not HDF5.
    let valid = std::fs::read(fixture("mlp.keras")).unwrap();
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(valid)).unwrap();
    let mut config_json = String::new();
    std::io::Read::read_to_string(&mut archive.by_name("config.json").unwrap(), &mut config_json).unwrap();
    let mut weights = Vec::new();
    std::io::Read::read_to_end(&mut archive.by_name("model.weights.h5").unwrap(), &mut weights).unwrap();
    let wider = config_json.replacen("\"units\": 5", "\"units\": 7", 1);
    assert_ne!(wider, config_json);
    for (name, config, member, says) in [
        ("noweights.keras", &config_json, None, "no model.weights.h5"),
        ("junk.keras", &config_json, Some(&b"not hdf5"[..]), "not an HDF5 file"),
        // The config disagrees with the stored kernel: refused before building the layer.
        (
            "wider.keras",
            &wider,
            Some(&weights[..]),
            "Dense layer 'dense': config says 7 outputs",
        ),
    ] {
        let path = dir.join(name);
        write_archive(&path, config, member);
        let err = import_keras(&path).err().unwrap().to_string();
        assert!(err.contains(name) && err.contains(says), "{err}");
    }
    // Keras stores members uncompressed; other zip tools may deflate them.
    let deflated = dir.join("deflated.keras");
    write_archive_with(
        &deflated,
        &config_json,
        Some(&weights),
        zip::CompressionMethod::Deflated,
    );
    let (x, expected) = keras_io("mlp");
    let y = import_keras(&deflated).unwrap().predict(&x, 32).unwrap();
    assert_close(&y, &expected, "deflated mlp");

    // A Sequential's layer list relabelled as a functional model has no graph to follow.
    let functional = config_json.replacen("\"Sequential\"", "\"Functional\"", 1);
    let path = dir.join("functional.keras");
    write_archive(&path, &functional, Some(&weights));
    let err = import_keras(&path).err().unwrap().to_string();
    assert!(err.contains("without input_layers"), "{err}");
    let subclassed = config_json.replacen("\"Sequential\"", "\"MyModel\"", 1);
    write_archive(&path, &subclassed, Some(&weights));
    let err = import_keras(&path).err().unwrap().to_string();
    assert!(err.contains("'MyModel' model"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}

fn write_archive(path: &std::path::Path, config: &str, weights: Option<&[u8]>) {
    write_archive_with(path, config, weights, zip::CompressionMethod::Stored);
}

fn write_archive_with(path: &std::path::Path, config: &str, weights: Option<&[u8]>, method: zip::CompressionMethod) {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let options = zip::write::SimpleFileOptions::default().compression_method(method);
    zip.start_file("config.json", options).unwrap();
    zip.write_all(config.as_bytes()).unwrap();
    if let Some(weights) = weights {
        zip.start_file("model.weights.h5", options).unwrap();
        zip.write_all(weights).unwrap();
    }
    zip.finish().unwrap();
}

#[test]
fn the_layers_of_the_keras_applications_match_keras() {
    // Rescaling, ZeroPadding2D, ReLU(6), DepthwiseConv2D (stride 2, "same", multiplier 2,
    // hard_swish), a squeeze-and-excitation gate (hard_sigmoid, broadcast Multiply),
    // SeparableConv2D (silu), UpSampling2D, Cropping2D, softplus.
    let model = assert_matches_keras("application_blocks");
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    for class in ["DepthwiseConv2D", "SeparableConv2D", "Multiply", "ReLU", "Cropping2D"] {
        assert!(classes.contains(&class), "{classes:?}");
    }
}

/// A tiny Transformer text classifier saved by Keras 3 (tools/make_keras_transformer.py:
/// Embedding → MultiHeadAttention self-attention → Add → LayerNormalization → Dense →
/// GlobalAveragePooling1D → Dense) loads through `strata::io::load_model` and predicts as
/// Keras did, without and with `mask_zero` padding reaching the attention and the pooling.
#[test]
fn a_keras_transformer_text_classifier_matches_keras() {
    for name in ["transformer_classifier", "transformer_classifier_masked"] {
        let mut model = strata::io::load_model(fixture(&format!("{name}.keras"))).unwrap();
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert!(
            classes.contains(&"MultiHeadAttention") && classes.contains(&"LayerNormalization"),
            "{classes:?}"
        );
        let (x, expected) = keras_io(name);
        let y = model.predict(&x, 32).unwrap();
        assert_close(&y, &expected, name);
    }
}

/// Keras's dot-product `Attention(use_scale=True)` and `AdditiveAttention` over a masked
/// embedding, saved by Keras 3 (tools/make_keras_transformer.py), predict as Keras did.
#[test]
fn keras_attention_and_additive_attention_layers_match_keras() {
    let mut model = strata::io::load_model(fixture("attention_layers.keras")).unwrap();
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert!(
        classes.contains(&"Attention") && classes.contains(&"AdditiveAttention"),
        "{classes:?}"
    );
    let (x, expected) = keras_io("attention_layers");
    let y = model.predict(&x, 32).unwrap();
    assert_close(&y, &expected, "attention_layers");
}

/// Imports NAME.keras (several inputs or one) and checks its predictions against Keras's.
fn assert_multi_matches_keras(model: &mut Model, name: &str) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let (inputs, expected) = if text.contains("\"inputs\"") {
        keras_multi_io(name)
    } else {
        let (x, y) = keras_io(name);
        (vec![x], vec![y])
    };
    let inputs: Vec<&Tensor> = inputs.iter().collect();
    let outputs = model.predict_multi(&inputs, 32).unwrap();
    assert_eq!(outputs.len(), expected.len(), "{name}");
    for (output, expected) in outputs.iter().zip(&expected) {
        assert_close(output, expected, name);
    }
}

#[test]
fn nested_models_called_several_times_share_their_weights_and_match_keras() {
    // siamese: one encoder (holding a Dense called twice itself) on two inputs;
    // nested_thrice: a Sequential block called on its own output, three times;
    // siamese_nested: an encoder calling a nested block on its own output, on two inputs.
    for (name, params) in [
        ("siamese", 30 + 24 + 5),
        ("nested_thrice", 2 * 42 + 21),
        ("siamese_nested", 30 + 24 + 5),
    ] {
        let mut model = import_keras(fixture(&format!("{name}.keras"))).unwrap();
        assert_multi_matches_keras(&mut model, name);
        // Called more than once, the weights exist once.
        assert_eq!(model.count_params(), params, "{name}");
        // Written back to a Keras archive or HDF5 file and read again, the model still matches.
        for extension in ["keras", "h5"] {
            let path = std::env::temp_dir().join(format!("strata-{name}-{}.{extension}", common::run_id()));
            if extension == "keras" {
                model.save_keras(&path).unwrap();
            } else {
                model.save_keras_h5(&path).unwrap();
            }
            let mut again = strata::io::import_keras_file(&path).unwrap();
            std::fs::remove_file(&path).unwrap();
            assert_multi_matches_keras(&mut again, name);
            assert_eq!(again.count_params(), params, "{name}");
        }
    }
}

/// Keras 3's `Bidirectional` (its backward layer's config differs from the forward one's in
/// name, direction and `shared_object_id`s; weights under `forward_layer/cell/vars` and
/// `backward_layer/cell/vars`) and `TimeDistributed` (weights under `layer/vars`), from a
/// `.keras` archive and a legacy `.h5` (tools/make_keras_wrappers.py), predict as Keras did.
#[test]
fn keras3_bidirectional_and_time_distributed_match_keras() {
    let (x, expected) = keras_io("wrappers/wrappers");
    for file in ["wrappers.keras", "wrappers.h5"] {
        let mut model = strata::io::import_keras_file(fixture(&format!("wrappers/{file}")))
            .unwrap_or_else(|e| panic!("{file}: {e}"));
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert!(
            classes.contains(&"Bidirectional") && classes.contains(&"TimeDistributed"),
            "{classes:?}"
        );
        let y = model.predict(&x, 32).unwrap();
        assert_close(&y, &expected, file);
    }
}

/// A Sequential config.json whose layers include a number, or whose config is not an object
/// (with a nested model, so the Sequential is rewritten as a functional model): an error naming
/// the entry, where writing its name into it panicked.
#[test]
fn sequential_entries_that_are_not_objects_are_named() {
    let error = |text: &str| {
        let config: Value = serde_json::from_str(text).unwrap();
        strata::io::keras_model_from_config(&config).err().unwrap().to_string()
    };
    let nested = r#"{"class_name":"Sequential","config":{"layers":[{"class_name":"Dense","config":{"units":1}}]}}"#;
    let input = r#"{"class_name":"InputLayer","config":{"name":"in","batch_shape":[null,2]}}"#;
    let err = error(&format!(
        r#"{{"class_name":"Sequential","config":{{"layers":[{input},5,{nested}]}}}}"#
    ));
    assert!(err.contains("layers[1]") && err.contains("not a JSON object"), "{err}");
    // The same without an InputLayer: the layers are still numbered as the file numbers them.
    let err = error(&format!(
        r#"{{"class_name":"Sequential","config":{{"build_input_shape":[null,2],"layers":[5,{nested}]}}}}"#
    ));
    assert!(err.contains("layers[0]") && err.contains("not a JSON object"), "{err}");
    // A nested Sequential whose config is a list.
    let err = error(&format!(
        r#"{{"class_name":"Sequential","config":{{"layers":[{input},{{"class_name":"Sequential","config":[1]}}]}}}}"#
    ));
    assert!(err.contains("config is not a JSON object"), "{err}");
}
