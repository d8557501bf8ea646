//! The Keras Applications built in Rust (`strata::applications`, issue #16) against Keras's
//! own: for each architecture, the model the Rust builder lays out equals the one imported from
//! the Keras config in tests/fixtures/keras/applications/ (written by
//! tools/make_keras_applications.py): the same layers, in the same order, with Keras's names,
//! classes, configs, connections, parameter counts and output shapes, with the classifier
//! (default input size, 10 classes) and without it (96×96). Nothing is built: the comparison
//! costs no weight memory.
mod common;

use serde_json::Value;
use std::collections::BTreeMap;
use std::io::Read;
use strata::applications::{self, Options, Pooling};
use strata::io::keras_model_from_config;
use strata::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/applications/{name}"))
}

/// A config-only fixture: `{"config", "input_shape", "output_shape", "total_params", "layers"}`.
fn config_fixture(name: &str) -> Value {
    let file = std::fs::File::open(fixture(&format!("{name}.json.gz"))).unwrap();
    let mut text = String::new();
    flate2::read::GzDecoder::new(file).read_to_string(&mut text).unwrap();
    serde_json::from_str(&text).unwrap()
}

/// The architectures built in Rust, by their fixtures' names (which the builders accept).
const BUILT: &[&str] = &[
    "vgg16",
    "vgg19",
    "resnet50",
    "resnet101",
    "resnet152",
    "resnet50v2",
    "resnet101v2",
    "resnet152v2",
    "mobilenet",
    "mobilenetv2",
    "mobilenetv3small",
    "mobilenetv3large",
    "densenet121",
    "densenet169",
    "densenet201",
    "efficientnetb0",
    "efficientnetb1",
    "efficientnetb2",
    "efficientnetb3",
    "efficientnetb4",
    "efficientnetb5",
    "efficientnetb6",
    "efficientnetb7",
    "efficientnetv2b0",
    "efficientnetv2b1",
    "efficientnetv2b2",
    "efficientnetv2b3",
    "inceptionv3",
    "xception",
    "nasnetmobile",
];

/// `config` with an `axis` naming the last axis of a batched tensor of per-sample `rank`
/// written -1 (Keras's ResNet says `axis=3`, the same axis as BatchNormalization's default -1).
fn last_axis_as_minus_one(config: &Value, rank: usize) -> Value {
    let mut config = config.clone();
    if config["axis"].as_u64() == Some(rank as u64) {
        config["axis"] = Value::from(-1);
    }
    config
}

/// The model strata's builder lays out for `architecture` equals Keras's from `fixture_name`.
fn assert_builder_matches_keras(architecture: &str, fixture_name: &str, options: &Options) {
    let fixture = config_fixture(fixture_name);
    let keras = keras_model_from_config(&fixture["config"]).unwrap_or_else(|e| panic!("{fixture_name}: {e}"));
    let ours = applications::architecture(architecture, options).unwrap_or_else(|e| panic!("{fixture_name}: {e}"));
    let input: Vec<usize> = serde_json::from_value(fixture["input_shape"].clone()).unwrap();
    assert_eq!(ours.name(), keras.name(), "{fixture_name}: model name");
    let planned = |model: &Model| {
        model
            .planned_layers(&[&input])
            .unwrap_or_else(|e| panic!("{fixture_name}: {e}"))
    };
    let (mine, theirs) = (planned(&ours), planned(&keras));
    // Layers by name: strata orders a graph's layers depth first, Keras by depth, so branchy
    // graphs (Inception) list the same layers in another order.
    let by_name = |model: &Model,
                   rows: Vec<strata::model::PlannedLayer>|
     -> BTreeMap<String, (strata::model::PlannedLayer, Value, Value)> {
        let graph = model.config()["config"]["layers"].clone();
        rows.into_iter()
            .enumerate()
            .map(|(i, row)| {
                let inbound = graph[i]["inbound_nodes"].clone();
                assert_eq!(graph[i]["name"], row.name.as_str(), "{fixture_name}: config order");
                (row.name.clone(), (row, model.layers()[i].config(), inbound))
            })
            .collect()
    };
    let (mine, theirs) = (by_name(&ours, mine), by_name(&keras, theirs));
    assert_eq!(
        mine.keys().collect::<Vec<_>>(),
        theirs.keys().collect::<Vec<_>>(),
        "{fixture_name}: layer names"
    );
    for (name, (row, config, inbound)) in &mine {
        let (keras_row, keras_config, keras_inbound) = &theirs[name];
        assert_eq!(row, keras_row, "{fixture_name}: layer '{name}'");
        let rank = row.output_shapes[0].len();
        assert_eq!(
            last_axis_as_minus_one(config, rank),
            last_axis_as_minus_one(keras_config, rank),
            "{fixture_name}: layer '{name}' config"
        );
        assert_eq!(inbound, keras_inbound, "{fixture_name}: layer '{name}' inputs");
    }
    assert_eq!(
        ours.count_params() as u64,
        fixture["total_params"].as_u64().unwrap(),
        "{fixture_name}: count_params"
    );
}

#[test]
fn every_builder_with_its_classifier_equals_keras() {
    let options = Options {
        classes: 10,
        ..Options::default()
    };
    for name in BUILT {
        assert_builder_matches_keras(name, &format!("{name}_top"), &options);
    }
}

#[test]
fn every_builder_without_its_classifier_at_a_small_input_equals_keras() {
    let options = Options {
        include_top: false,
        input_shape: Some([96, 96, 3]),
        ..Options::default()
    };
    for name in BUILT {
        assert_builder_matches_keras(name, &format!("{name}_notop"), &options);
    }
}

#[test]
fn keras_family_arguments_and_input_tensor_lay_out_the_model_as_keras() {
    // Fixtures from tools/make_keras_applications.py's argument_variants, Keras's arguments
    // spelled the same here.
    let cases = [
        (
            "mobilenet",
            "mobilenet_dm2_top",
            Options {
                alpha: 0.5,
                depth_multiplier: 2,
                dropout: Some(0.1),
                classes: 10,
                ..Options::default()
            },
        ),
        (
            "mobilenet_v3_small",
            "mobilenetv3small_minimalistic_top",
            Options {
                minimalistic: true,
                dropout: Some(0.0),
                include_preprocessing: false,
                classes: 10,
                input_shape: Some([224, 224, 3]),
                ..Options::default()
            },
        ),
        (
            "mobilenet_v3_large",
            "mobilenetv3large_minimalistic_notop",
            Options {
                minimalistic: true,
                include_top: false,
                input_shape: Some([96, 96, 3]),
                pooling: Some(Pooling::Max),
                ..Options::default()
            },
        ),
        (
            "efficientnet_v2_b0",
            "efficientnetv2b0_nopreprocessing_notop",
            Options {
                include_top: false,
                include_preprocessing: false,
                input_shape: Some([96, 96, 3]),
                pooling: Some(Pooling::Avg),
                ..Options::default()
            },
        ),
    ];
    for (architecture, fixture, options) in cases {
        assert_builder_matches_keras(architecture, fixture, &options);
    }
    // keras.applications.MobileNetV2(input_tensor=Rescaling(...)(Input((40, 40, 3))), ...):
    // the model starts at the caller's input and holds the layers before the tensor.
    let input = Input::node(&[40, 40, 3]);
    let scaled = Rescaling::new(1.0 / 127.5)
        .offset(-1.0)
        .name("rescaling")
        .call(&input)
        .unwrap();
    let on_tensor = Options {
        alpha: 0.35,
        include_top: false,
        pooling: Some(Pooling::Avg),
        input_shape: Some([40, 40, 3]),
        input_tensor: Some(scaled.clone()),
        ..Options::default()
    };
    assert_builder_matches_keras("mobilenet_v2", "mobilenetv2_input_tensor_notop", &on_tensor);
    let other = Options {
        input_shape: Some([48, 48, 3]),
        ..on_tensor
    };
    let error = applications::architecture("mobilenet_v2", &other)
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("input_tensor") && error.contains("[48, 48, 3]"),
        "{error}"
    );
}

#[test]
fn keras_argument_checks_name_what_is_wrong() {
    let error = |name: &str, options: Options| {
        applications::application(name, &options)
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let imagenet = || Some(std::path::PathBuf::from(applications::IMAGENET));
    let cases = [
        (
            "resnet50",
            Options {
                weights: imagenet(),
                classes: 10,
                ..Options::default()
            },
            &["ResNet50", "imagenet", "classes = 10", "1000"][..],
        ),
        (
            "resnet50",
            Options {
                weights: imagenet(),
                input_shape: Some([96, 96, 3]),
                ..Options::default()
            },
            &["(224, 224, 3)", "(96, 96, 3)"],
        ),
        (
            "resnet50",
            Options {
                weights: imagenet(),
                classifier_activation: Some("relu".into()),
                ..Options::default()
            },
            &["classifier_activation", "relu"],
        ),
        (
            "mobilenet",
            Options {
                weights: imagenet(),
                depth_multiplier: 2,
                ..Options::default()
            },
            &["MobileNet", "depth_multiplier must be 1"],
        ),
        (
            "mobilenet_v2",
            Options {
                weights: imagenet(),
                alpha: 0.6,
                ..Options::default()
            },
            &["alpha must be one of 0.35", "0.6"],
        ),
        (
            "vgg16",
            Options {
                minimalistic: true,
                ..Options::default()
            },
            &["VGG16 has no minimalistic argument"],
        ),
        (
            "mobilenet_v2",
            Options {
                dropout: Some(0.5),
                ..Options::default()
            },
            &["MobileNetV2 has no dropout argument", "only alpha"],
        ),
        // ImageNet weights are Keras's cached file, by Keras's name for it: strata downloads
        // nothing, and says so before making any weight.
        (
            "mobilenet_v2",
            Options {
                weights: imagenet(),
                alpha: 0.35,
                include_top: false,
                input_shape: Some([96, 96, 3]),
                ..Options::default()
            },
            &[
                "mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5",
                "downloads nothing",
            ],
        ),
        (
            "resnet50",
            Options {
                weights: imagenet(),
                include_top: false,
                input_shape: Some([64, 64, 3]),
                ..Options::default()
            },
            &["resnet50_weights_tf_dim_ordering_tf_kernels_notop.h5"],
        ),
        (
            "mobilenet_v3_small",
            Options {
                weights: imagenet(),
                minimalistic: true,
                ..Options::default()
            },
            &["weights_mobilenet_v3_small_minimalistic_224_1.0_float.h5"],
        ),
        (
            "mobilenet",
            Options {
                weights: imagenet(),
                alpha: 0.25,
                include_top: false,
                input_shape: Some([100, 100, 3]),
                ..Options::default()
            },
            &["mobilenet_2_5_224_tf_no_top.h5"],
        ),
        (
            "nasnet_mobile",
            Options {
                weights: imagenet(),
                ..Options::default()
            },
            &["nasnet_mobile.h5"],
        ),
    ];
    for (name, options, needles) in cases {
        let message = error(name, options);
        for needle in needles {
            assert!(message.contains(needle), "{name}: {needle}: {message}");
        }
    }
    // Without its own preprocessing, MobileNetV3 takes pixels as Keras's "tf" mode leaves them.
    let model = applications::mobilenet_v3_small(&Options {
        include_preprocessing: false,
        input_shape: Some([32, 32, 3]),
        classes: 3,
        ..Options::default()
    })
    .unwrap();
    let record = strata::applications::ImageInput::of(&model).unwrap().unwrap();
    assert_eq!(record.mode, strata::applications::Mode::Tf);
}

#[test]
fn pooling_and_alpha_shape_the_output_as_in_keras() {
    // keras.applications.MobileNetV2(alpha=0.35, include_top=False, pooling="max",
    // input_shape=(64, 64, 3)).output_shape == (None, 1280); MobileNet(alpha=0.25) ends in
    // 256 channels; ResNet50's pooled features are 2048 wide.
    let cases = [
        ("mobilenet_v2", 0.35, Some(Pooling::Max), vec![1280]),
        ("mobilenet", 0.25, Some(Pooling::Avg), vec![256]),
        ("resnet50", 1.0, Some(Pooling::Avg), vec![2048]),
        ("resnet50", 1.0, None, vec![2, 2, 2048]),
    ];
    for (name, alpha, pooling, expected) in cases {
        let options = Options {
            alpha,
            pooling,
            include_top: false,
            input_shape: Some([64, 64, 3]),
            ..Options::default()
        };
        let model = applications::architecture(name, &options).unwrap();
        let rows = model.planned_layers(&[&[64, 64, 3]]).unwrap();
        assert_eq!(rows.last().unwrap().output_shapes, [expected], "{name}");
    }
}

#[test]
fn bad_arguments_are_errors_naming_them() {
    let small = Options {
        input_shape: Some([16, 16, 3]),
        ..Options::default()
    };
    let error = applications::architecture("resnet50", &small)
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("ResNet50") && error.contains("at least 32"), "{error}");
    let alpha = Options {
        alpha: 0.5,
        ..Options::default()
    };
    let error = applications::architecture("VGG16", &alpha).err().unwrap().to_string();
    assert!(error.contains("VGG16") && error.contains("alpha"), "{error}");
    let error = applications::architecture("resnet51", &Options::default())
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("resnet51") && error.contains("mobilenet_v2"), "{error}");
}

/// The fixture's input batch and Keras's outputs for it, `(input, output)`.
fn keras_io(name: &str) -> (Tensor, Tensor) {
    let text = std::fs::read_to_string(fixture(&format!("{name}.json"))).unwrap();
    let json: Value = serde_json::from_str(&text).unwrap();
    let tensor = |key: &str| {
        let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
        let shape: Vec<usize> = serde_json::from_value(json[format!("{key}_shape")].clone()).unwrap();
        Tensor::from_vec(shape, values).unwrap()
    };
    (tensor("input"), tensor("output"))
}

#[test]
fn a_builder_loads_keras_weights_by_name_and_predicts_as_keras() {
    // keras.applications.MobileNetV3Small(alpha=0.35, input_shape=(64, 64, 3), classes=10)
    // with random weights, saved by Keras; built here, its weights loaded from the archive.
    let options = Options {
        alpha: 0.35,
        input_shape: Some([64, 64, 3]),
        classes: 10,
        weights: Some(fixture("mobilenetv3small_a035.keras")),
        ..Options::default()
    };
    let mut model = applications::mobilenet_v3_small(&options).unwrap();
    let (x, expected) = keras_io("mobilenetv3small_a035");
    let y = model.predict(&x, 32).unwrap();
    assert_eq!(y.shape(), expected.shape());
    for (i, (a, e)) in y.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-4, "[{i}]: strata {a}, Keras {e}");
    }
    // The model knows its family's preprocessing: MobileNetV3 rescales inside, takes 0-255.
    let record = strata::applications::ImageInput::of(&model).unwrap().unwrap();
    assert_eq!(record.mode, strata::applications::Mode::Raw);
    assert_eq!(record.image_size, Some((64, 64)));

    // Another width has other shapes: the error names the first weight that differs.
    let narrower = Options {
        alpha: 0.75,
        ..options.clone()
    };
    let error = applications::mobilenet_v3_small(&narrower).err().unwrap().to_string();
    assert!(
        error.contains("mobilenetv3small_a035.keras") && error.contains("shape"),
        "{error}"
    );
}

#[test]
fn a_builder_loads_its_own_saved_weights() {
    let options = Options {
        alpha: 0.35,
        input_shape: Some([32, 32, 3]),
        classes: 4,
        ..Options::default()
    };
    let mut first = applications::mobilenet_v2(&options).unwrap();
    assert_eq!(first.name(), "mobilenetv2_0.35_32");
    let path = std::env::temp_dir().join(format!("strata-application-{}.safetensors", common::run_id()));
    first.save_weights(&path).unwrap();
    let mut second = applications::mobilenet_v2(&Options {
        weights: Some(path.clone()),
        ..options.clone()
    })
    .unwrap();
    let x = Tensor::from_vec(
        vec![2, 32, 32, 3],
        (0..2 * 32 * 32 * 3).map(|i| (i % 7) as f32 / 7.0).collect(),
    )
    .unwrap();
    assert_eq!(
        first.predict(&x, 2).unwrap().data(),
        second.predict(&x, 2).unwrap().data()
    );
    // Without the classifier the file holds weights the model lacks: refused, named.
    let error = applications::mobilenet_v2(&Options {
        include_top: false,
        weights: Some(path.clone()),
        ..options
    })
    .err()
    .unwrap()
    .to_string();
    std::fs::remove_file(&path).ok();
    assert!(error.contains("predictions"), "{error}");
}

#[test]
fn a_description_file_names_an_application() {
    use strata::applications::parse_description as parse;
    use strata::io::config::Format;
    let text = r#"
        data = "flowers/"
        application = { name = "MobileNetV2", alpha = 0.35, input_shape = [96, 96, 3], classes = 5 }
        [compile]
        optimizer = "adam"
    "#;
    let spec = parse(text, Format::Toml, "flowers.toml").unwrap();
    let keras = applications::architecture(
        "mobilenet_v2",
        &Options {
            alpha: 0.35,
            input_shape: Some([96, 96, 3]),
            classes: 5,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(spec.model.name(), "mobilenetv2_0.35_96");
    assert_eq!(spec.model.config(), keras.config());
    assert_eq!(spec.model.count_params(), keras.count_params());
    assert_eq!(
        spec.loss,
        strata::losses::Loss::SparseCategoricalCrossentropy { from_logits: false }
    );
    let minimal = parse(
        "application = { name = \"MobileNetV3Small\", minimalistic = true, dropout = 0.0, include_preprocessing = false }",
        Format::Toml,
        "m.toml",
    )
    .unwrap();
    let keras = applications::architecture(
        "mobilenet_v3_small",
        &Options {
            minimalistic: true,
            dropout: Some(0.0),
            include_preprocessing: false,
            ..Options::default()
        },
    )
    .unwrap();
    assert_eq!(minimal.model.config(), keras.config());
    // The file formats know no architecture: io's own parser points to the one that does.
    let error = strata::io::config::parse(text, Format::Toml, "flowers.toml")
        .err()
        .unwrap()
        .to_string();
    assert!(error.contains("parse_description"), "{error}");
    let plain = parse("application = \"resnet50\"\nname = \"mine\"", Format::Toml, "r.toml").unwrap();
    assert_eq!(plain.model.name(), "mine");
    assert_eq!(plain.model.count_params(), 25_636_712, "Keras's ResNet50 count");
    for (bad, needle) in [
        ("application = { name = \"resnet50\", alpah = 1.0 }", "alpah"),
        ("application = { name = \"resnet50\", pooling = \"mean\" }", "mean"),
        ("application = \"resnet5\"", "resnet5"),
        ("application = { alpha = 1.0 }", "name"),
    ] {
        let error = parse(bad, Format::Toml, "bad.toml").err().unwrap().to_string();
        assert!(error.contains("bad.toml") && error.contains(needle), "{bad}: {error}");
    }
}

#[test]
fn built_applications_train() {
    // One epoch on four 32×32 images: every layer the builders use runs forward and backward in
    // training mode (drop-connect Dropout with noise_shape (None, 1, 1, 1), squeeze-and-excitation
    // broadcasting, hard sigmoid's Rescaling), and the loss stays finite.
    let x = Tensor::from_vec(
        vec![4, 32, 32, 3],
        (0..4 * 32 * 32 * 3).map(|i| (i % 255) as f32).collect(),
    )
    .unwrap();
    let y = Tensor::from_vec(vec![4], vec![0.0, 1.0, 2.0, 1.0]).unwrap();
    for name in ["efficientnet_b0", "mobilenet_v3_small", "efficientnet_v2_b0"] {
        let options = Options {
            input_shape: Some([32, 32, 3]),
            classes: 3,
            ..Options::default()
        };
        let mut model = applications::application(name, &options).unwrap();
        model
            .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
            .unwrap();
        let history = model
            .fit(&x, &y, FitOptions::default().epochs(1).batch_size(2).verbose(0))
            .unwrap();
        let loss = history.get("loss")[0];
        assert!(loss.is_finite() && loss > 0.0, "{name}: loss {loss}");
    }
}

#[test]
fn imagenet_weights_are_read_from_keras_cache() {
    // weights = "imagenet" reads the file Keras's builder downloads, from $KERAS_HOME/models/
    // (here a strata weights file under Keras's name), in a description file as in Rust.
    let home = std::env::temp_dir().join(format!("strata-keras-home-{}", common::run_id()));
    std::fs::create_dir_all(home.join("models")).unwrap();
    let options = Options {
        alpha: 0.35,
        include_top: false,
        input_shape: Some([96, 96, 3]),
        ..Options::default()
    };
    let cached = home
        .join("models")
        .join("mobilenet_v2_weights_tf_dim_ordering_tf_kernels_0.35_96_no_top.h5");
    let description = home.join("imagenet.toml");
    std::fs::write(
        &description,
        "application = { name = \"MobileNetV2\", weights = \"imagenet\", alpha = 0.35, include_top = false, \
         input_shape = [96, 96, 3] }\n",
    )
    .unwrap();
    let summary = || {
        std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(["summary", "--model", description.to_str().unwrap()])
            .env("KERAS_HOME", &home)
            .output()
            .unwrap()
    };
    let missing = summary();
    let stderr = String::from_utf8_lossy(&missing.stderr);
    assert!(
        !missing.status.success() && stderr.contains(cached.to_str().unwrap()),
        "{stderr}"
    );
    applications::mobilenet_v2(&options)
        .unwrap()
        .save_weights(&cached)
        .unwrap();
    let found = summary();
    let stderr = String::from_utf8_lossy(&found.stderr);
    assert!(found.status.success(), "{stderr}");
    assert!(String::from_utf8_lossy(&found.stdout).contains("410,208"));
    std::fs::remove_dir_all(&home).ok();
}
