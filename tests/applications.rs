//! `strata::applications`: Keras's `preprocess_input` modes and `decode_predictions` (hand-computed
//! values, and Keras's own outputs from `tools/make_imagenet_fixtures.py`), the bundled ImageNet
//! class list, and the records a model keeps of its classes and image preparation.
mod common;

use strata::applications::{
    ImageInput, Mode, decode_predictions, imagenet_classes, keras_application_mode, preprocess_input,
};
use strata::data::labels::{class_names, set_class_names};
use strata::prelude::*;

fn fixture() -> serde_json::Value {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/imagenet_utils.json");
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

/// The nested JSON numbers of `value`, flattened in order.
fn flat(value: &serde_json::Value) -> Vec<f32> {
    match value {
        serde_json::Value::Array(items) => items.iter().flat_map(flat).collect(),
        number => vec![number.as_f64().unwrap() as f32],
    }
}

fn close(actual: &[f32], expected: &[f32], tolerance: f32) {
    assert_eq!(actual.len(), expected.len());
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!((a - e).abs() <= tolerance, "element {i}: {a} against {e}");
    }
}

#[test]
fn each_mode_prepares_a_pixel_as_worked_out_by_hand() {
    // One RGB pixel (255, 0, 51).
    let pixel = Tensor::from_vec(vec![1, 1, 3], vec![255.0, 0.0, 51.0]).unwrap();
    let prepared = |mode| preprocess_input(&pixel, mode).unwrap().data().to_vec();
    // tf: x / 127.5 - 1.
    close(&prepared(Mode::Tf), &[1.0, -1.0, 51.0 / 127.5 - 1.0], 1e-6);
    // torch: (x / 255 - mean) / std, mean (0.485, 0.456, 0.406), std (0.229, 0.224, 0.225).
    let torch = [(1.0 - 0.485) / 0.229, (0.0 - 0.456) / 0.224, (0.2 - 0.406) / 0.225];
    close(&prepared(Mode::Torch), &torch, 1e-5);
    // caffe: BGR (51, 0, 255) minus the BGR means (103.939, 116.779, 123.68).
    close(
        &prepared(Mode::Caffe),
        &[51.0 - 103.939, -116.779, 255.0 - 123.68],
        1e-4,
    );
    close(&prepared(Mode::Unit), &[1.0, 0.0, 0.2], 1e-6);
    close(&prepared(Mode::Raw), &[255.0, 0.0, 51.0], 0.0);
}

#[test]
fn modes_match_keras_preprocess_input() {
    let fixture = fixture();
    let values = flat(&fixture["image"]);
    let image = Tensor::from_vec(vec![2, 3, 2, 3], values).unwrap();
    for name in ["caffe", "tf", "torch"] {
        let ours = preprocess_input(&image, Mode::parse(name).unwrap()).unwrap();
        assert_eq!(ours.shape(), image.shape());
        close(ours.data(), &flat(&fixture["preprocessed"][name]), 1e-4);
    }
}

#[test]
fn bad_modes_and_channel_counts_are_errors() {
    let message = Mode::parse("keras").unwrap_err().to_string();
    assert!(
        message.contains("'keras'") && message.contains("caffe, tf, torch"),
        "{message}"
    );
    let grey = Tensor::zeros(&[2, 4, 4, 1]);
    let message = preprocess_input(&grey, Mode::Caffe).unwrap_err().to_string();
    assert!(
        message.contains("(2, 4, 4, 1)") && message.contains("3 channels"),
        "{message}"
    );
    assert!(preprocess_input(&grey, Mode::Tf).is_ok());
}

#[test]
fn the_bundled_class_list_runs_from_tench_to_toilet_tissue() {
    let classes = imagenet_classes();
    assert_eq!(classes.len(), 1000);
    assert_eq!(classes[0], ("n01440764", "tench"));
    assert_eq!(classes[281], ("n02123045", "tabby"));
    assert_eq!(classes[999], ("n15075141", "toilet_tissue"));
    // Keras's list names two classes "crane" and two "maillot": ids tell them apart.
    assert_eq!(classes[134].1, classes[517].1);
    assert_ne!(classes[134].0, classes[517].0);
}

#[test]
fn decoding_matches_keras_decode_predictions() {
    let fixture = fixture();
    let preds = Tensor::from_vec(vec![3, 1000], flat(&fixture["predictions"])).unwrap();
    let decoded = decode_predictions(&preds, 5).unwrap();
    let keras = fixture["decoded_top5"].as_array().unwrap();
    assert_eq!(decoded.len(), keras.len());
    for (ours, theirs) in decoded.iter().zip(keras) {
        assert_eq!(ours.len(), 5);
        for (prediction, keras) in ours.iter().zip(theirs.as_array().unwrap()) {
            assert_eq!(prediction.wnid, keras[0].as_str().unwrap());
            assert_eq!(prediction.name, keras[1].as_str().unwrap());
            assert_eq!(prediction.probability, keras[2].as_f64().unwrap() as f32);
        }
    }
    assert_eq!(decoded[1][0].name, "toilet_tissue");
    assert_eq!(decoded[1][0].index, 999);
    assert_eq!(decoded[2][0].name, "tench");
}

#[test]
fn decoding_refuses_other_shapes_and_top_zero() {
    let message = decode_predictions(&Tensor::zeros(&[2, 10]), 5).unwrap_err().to_string();
    assert!(
        message.contains("(2, 10)") && message.contains("(samples, 1000)"),
        "{message}"
    );
    assert!(decode_predictions(&Tensor::zeros(&[1, 1000]), 0).is_err());
    assert_eq!(
        decode_predictions(&Tensor::zeros(&[1, 1000]), 5000).unwrap()[0].len(),
        1000
    );
}

#[test]
fn keras_application_names_give_their_family_mode() {
    for (name, mode) in [
        ("vgg16", Mode::Caffe),
        ("resnet50", Mode::Caffe),
        ("resnet50v2", Mode::Tf),
        ("mobilenet_1.00_224", Mode::Tf),
        ("mobilenetv2_1.00_224", Mode::Tf),
        ("MobileNetV3Small", Mode::Raw),
        ("inception_v3", Mode::Tf),
        ("xception", Mode::Tf),
        ("nasnet_mobile", Mode::Tf),
        ("densenet121", Mode::Torch),
        ("efficientnetb0", Mode::Raw),
        ("efficientnetv2-b0", Mode::Raw),
        ("convnext_tiny", Mode::Raw),
    ] {
        assert_eq!(keras_application_mode(name), Some(mode), "{name}");
    }
    assert_eq!(keras_application_mode("sequential"), None);
}

#[test]
fn class_names_and_image_preparation_survive_save_and_load() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4, 4, 3]))
        .add(Flatten::new())
        .add(Dense::new(2).activation("softmax"));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model.build(&[4, 4, 3]).unwrap();
    set_class_names(&mut model, &["cat", "dog"]);
    let record = ImageInput {
        image_size: Some((4, 4)),
        mode: Mode::Torch,
    };
    record.attach_to(&mut model);
    let path = std::env::temp_dir().join(format!("strata-applications-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let loaded = strata::load_model(&path).unwrap();
    assert_eq!(class_names(&loaded).unwrap().unwrap(), ["cat", "dog"]);
    assert_eq!(ImageInput::of(&loaded).unwrap(), Some(record));
    std::fs::remove_file(&path).unwrap();
}
