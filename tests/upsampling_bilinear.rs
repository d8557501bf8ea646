//! `UpSampling2D(interpolation="bilinear")` (issue #16): hand-computed values (TensorFlow's
//! half-pixel centres, edges clamped), finite-difference gradients, parity with Keras itself
//! (tests/fixtures/keras/upsampling_bilinear.*, from tools/make_decoder_fixtures.py), and its
//! config.

mod common;

use common::{TOLERANCE, boxed, layer_gradient_error, run_layers, uniform};
use strata::prelude::*;

fn run(layer: UpSampling2D, x: &Tensor) -> Tensor {
    run_layers(vec![boxed(layer)], x, false).0
}

#[test]
fn bilinear_upsampling_interpolates_between_pixel_centres() {
    // One row [0, 4] grown twice across: output centres sit at input positions -0.25 (clamped
    // to the first pixel), 0.25, 0.75 and 1.25 (clamped to the last).
    let row = Tensor::from_vec(vec![1, 1, 2, 1], vec![0.0, 4.0]).unwrap();
    let y = run(UpSampling2D::new((1, 2)).interpolation("bilinear"), &row);
    assert_eq!(y.data(), &[0.0, 1.0, 3.0, 4.0]);
    // [[0, 1], [2, 3]] to 4×4: each axis as above, the rows mixed the same way.
    let square = Tensor::from_vec(vec![1, 2, 2, 1], vec![0.0, 1.0, 2.0, 3.0]).unwrap();
    let y = run(UpSampling2D::new(2).interpolation("bilinear"), &square);
    #[rustfmt::skip]
    let expected = [
        0.0, 0.25, 0.75, 1.0,
        0.5, 0.75, 1.25, 1.5,
        1.5, 1.75, 2.25, 2.5,
        2.0, 2.25, 2.75, 3.0,
    ];
    assert_eq!(y.data(), &expected);
    // Factor 3 on three pixels 0, 3, 6 (a line): the interior follows the line exactly, the
    // outer third of each edge pixel is flat.
    let line = Tensor::from_vec(vec![1, 1, 3, 1], vec![0.0, 3.0, 6.0]).unwrap();
    let y = run(UpSampling2D::new((1, 3)).interpolation("bilinear"), &line);
    let expected = [0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 6.0];
    for (a, e) in y.data().iter().zip(expected) {
        assert!((a - e).abs() < 1e-5, "{:?}", y.data());
    }
    // Channels are interpolated each on its own.
    let two = Tensor::from_vec(vec![1, 1, 2, 2], vec![0.0, 10.0, 4.0, -10.0]).unwrap();
    let y = run(UpSampling2D::new((1, 2)).interpolation("bilinear"), &two);
    assert_eq!(y.data(), &[0.0, 10.0, 1.0, 5.0, 3.0, -5.0, 4.0, -10.0]);
}

#[test]
fn bilinear_upsampling_has_the_right_gradient() {
    let images = uniform(&[2, 3, 4, 2], -1.0, 1.0, 71);
    for size in [(2, 3), (4, 4), (1, 2), (3, 1)] {
        let layer = UpSampling2D::new(size).interpolation("bilinear");
        let error = layer_gradient_error(vec![boxed(layer)], images.clone(), |_| {});
        assert!(error < TOLERANCE, "size {size:?}: gradient error {error}");
    }
}

#[test]
fn imported_keras_bilinear_upsampling_matches_keras() {
    // Three UpSampling2D(interpolation="bilinear") branches side by side: sizes (2, 3), 4,
    // (1, 2), on a 3×4 image of two channels (Keras on TensorFlow).
    let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras");
    let mut model = strata::io::import_keras(format!("{dir}/upsampling_bilinear.keras")).unwrap();
    let text = std::fs::read_to_string(format!("{dir}/upsampling_bilinear.json")).unwrap();
    let json: serde_json::Value = serde_json::from_str(&text).unwrap();
    let tensor = |key: &str| {
        let shape: Vec<usize> = serde_json::from_value(json[format!("{key}_shape")].clone()).unwrap();
        let values: Vec<f32> = serde_json::from_value(json[key].clone()).unwrap();
        Tensor::from_vec(shape, values).unwrap()
    };
    let (x, expected) = (tensor("input"), tensor("output"));
    let y = model.predict(&x, 32).unwrap();
    assert_eq!(y.shape(), expected.shape());
    for (i, (a, e)) in y.data().iter().zip(expected.data()).enumerate() {
        assert!((a - e).abs() <= 1e-5, "output {i}: strata {a}, Keras {e}");
    }
    let config = model
        .layers()
        .iter()
        .find(|l| l.class_name() == "UpSampling2D")
        .unwrap()
        .config();
    assert_eq!(config["interpolation"], "bilinear");
    // Written and read back, the setting survives.
    let again = strata::layers::from_config("UpSampling2D", &config).unwrap();
    assert_eq!(again.config(), config);
}
