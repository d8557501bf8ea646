//! Importing legacy HDF5 Keras models (`model.save("m.h5")`) and weights
//! (`save_weights("w.h5")`). The fixtures under tests/fixtures/keras/h5/ were written by
//! tools/make_keras_h5.py: `k3_*` by Keras 3's legacy writer, `k2_*` by tf.keras 2 (the tf_keras
//! package); each NAME.h5 has random weights, and NAME.json a fixed input batch and what Keras's
//! `predict` returned for it.

use serde_json::Value;
use strata::io::{import_keras_h5, import_keras_h5_bytes};
use strata::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/h5/{name}"))
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
        assert!((a - e).abs() <= 1e-4, "{what}[{i}]: strata {a}, Keras {e}");
    }
}

/// Imports `file` and checks its predictions against Keras's for the fixture `name`.
fn assert_matches_keras(file: &str, name: &str) -> Model {
    let mut model = import_keras_h5(fixture(file)).unwrap_or_else(|e| panic!("{file}: {e}"));
    let (x, expected) = keras_io(name);
    let y = model.predict(&x, 32).unwrap();
    assert_close(&y, &expected, file);
    model
}

#[test]
fn every_fixture_predicts_as_keras_from_both_writers() {
    for writer in ["k2", "k3"] {
        for model in ["mlp", "cnn", "merge", "nested"] {
            let name = format!("{writer}_{model}");
            assert_matches_keras(&format!("{name}.h5"), &name);
        }
    }
}
