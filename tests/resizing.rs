//! `Resizing`, `CenterCrop` and `UpSampling1D`: Keras 3's values (bilinear up and down, nearest,
//! `crop_to_aspect_ratio`, a plain centre crop and an image smaller than the target, resized
//! up, repeated steps), finite-difference gradients, configs read and written back, and settings strata lacks
//! refused by name. The fixtures under tests/fixtures/keras/resizing/ were written by
//! tools/make_keras_resizing.py (Keras 3.15 on TensorFlow).

mod common;

use common::{TOLERANCE, boxed, layer_gradient_error, uniform};
use strata::Error;
use strata::autograd::ParamStore;
use strata::io::import_keras_file;
use strata::layers::{CenterCrop, Layer, Resizing, UpSampling1D};
use strata::rng::Rng;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/resizing/{name}"))
}

#[test]
fn resizing_and_center_crop_compute_what_keras_computes() {
    for name in [
        "resize_bilinear_up",
        "resize_bilinear_down",
        "resize_nearest",
        "resize_crop_to_aspect_ratio",
        "center_crop",
        "center_crop_smaller_image",
        "upsampling1d",
    ] {
        let mut model = import_keras_file(fixture(&format!("{name}.keras"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (inputs, expected) = common::keras_io(&fixture(&format!("{name}.json")));
        let output = model.predict(&inputs[0], 32).unwrap();
        assert_eq!(output.shape(), expected[0].shape(), "{name}");
        // Pixel values up to 255: TensorFlow's arithmetic, so within a few ulps.
        for (i, (a, e)) in output.data().iter().zip(expected[0].data()).enumerate() {
            assert!(
                (a - e).abs() <= 1e-4 * e.abs().max(1.0),
                "{name}[{i}]: strata {a}, Keras {e}"
            );
        }
    }
}

#[test]
fn resizing_and_center_crop_pass_gradients() {
    let images = uniform(&[2, 5, 7, 2], -1.0, 1.0, 11);
    let cases: Vec<(&str, Box<dyn Layer>)> = vec![
        ("bilinear up", boxed(Resizing::new(8, 9))),
        ("bilinear down", boxed(Resizing::new(3, 4))),
        ("nearest", boxed(Resizing::new(7, 3).interpolation("nearest"))),
        (
            "cropped to the aspect ratio",
            boxed(Resizing::new(4, 4).crop_to_aspect_ratio(true)),
        ),
        ("centre crop", boxed(CenterCrop::new(3, 4))),
        ("centre crop of a smaller image", boxed(CenterCrop::new(6, 5))),
    ];
    for (what, layer) in cases {
        let error = layer_gradient_error(vec![layer], images.clone(), |_| {});
        assert!(error < TOLERANCE, "{what}: gradient error {error}");
    }
    let sequences = uniform(&[2, 4, 3], -1.0, 1.0, 12);
    let error = layer_gradient_error(vec![boxed(UpSampling1D::new(3))], sequences, |_| {});
    assert!(error < TOLERANCE, "UpSampling1D: gradient error {error}");
}

#[test]
fn configs_are_read_and_written_back_and_lacking_settings_refused_by_name() {
    let keras = serde_json::json!({
        "name": "resize", "height": 6, "width": 4, "interpolation": "nearest",
        "crop_to_aspect_ratio": true, "pad_to_aspect_ratio": false, "fill_mode": "constant",
        "fill_value": 0.0, "antialias": false, "data_format": "channels_last",
    });
    let layer = strata::layers::from_config("Resizing", &keras).unwrap();
    assert_eq!(
        layer.config(),
        strata::layers::from_config("Resizing", &layer.config())
            .unwrap()
            .config()
    );
    assert_eq!(layer.config()["interpolation"], "nearest");
    assert_eq!(layer.output_shapes(&[vec![9, 9, 3]]).unwrap()[0], [6, 4, 3]);
    let crop = strata::layers::from_config("CenterCrop", &serde_json::json!({"height": 2, "width": 3})).unwrap();
    assert_eq!(crop.output_shapes(&[vec![9, 9, 3]]).unwrap()[0], [2, 3, 3]);

    let build = |mut layer: Box<dyn Layer>, shape: &[usize]| {
        layer.set_name("culprit".into());
        layer.build_one(shape, &mut ParamStore::new(), &mut Rng::new(0))
    };
    for (key, value) in [
        ("pad_to_aspect_ratio", serde_json::json!(true)),
        ("antialias", serde_json::json!(true)),
        ("interpolation", serde_json::json!("bicubic")),
    ] {
        let mut config = keras.clone();
        config[key] = value;
        let layer = strata::layers::from_config("Resizing", &config).unwrap();
        match build(layer, &[8, 8, 3]) {
            Err(Error::InvalidArgument { name, reason, .. }) => {
                assert_eq!(name, key);
                assert!(reason.contains("culprit"), "{reason}");
            }
            other => panic!("{key}: expected InvalidArgument, got {other:?}"),
        }
    }
    let error = build(boxed(Resizing::new(0, 4)), &[8, 8, 3]).unwrap_err().to_string();
    assert!(error.contains("height") && error.contains("culprit"), "{error}");
    let error = build(boxed(CenterCrop::new(4, 4)), &[8, 3]).unwrap_err().to_string();
    assert!(error.contains("culprit") && error.contains("(None, 8, 3)"), "{error}");
}
