//! `GroupNormalization`: Keras 3's values (groups over images, sequences and plain features,
//! one group, one group per channel, without offset or scale, and inside a small classifier),
//! finite-difference gradients, a hand-computed value, configs read and written back, and
//! group counts that do not divide the channels refused by name. The fixtures under
//! tests/fixtures/keras/group_normalization/ were written by
//! tools/make_keras_group_normalization.py (Keras 3.15 on TensorFlow).

mod common;

use common::{TOLERANCE, boxed, layer_gradient_error, uniform};
use strata::autograd::ParamStore;
use strata::io::import_keras_file;
use strata::layers::GroupNormalization;
use strata::prelude::*;
use strata::rng::Rng;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/group_normalization/{name}"))
}

#[test]
fn group_normalization_computes_what_keras_computes() {
    for name in [
        "images",
        "sequences",
        "features",
        "instance",
        "one_group_no_offset",
        "no_scale",
        "classifier",
    ] {
        let mut model = import_keras_file(fixture(&format!("{name}.keras"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let (inputs, expected) = common::keras_io(&fixture(&format!("{name}.json")));
        let output = model.predict(&inputs[0], 32).unwrap();
        assert_eq!(output.shape(), expected[0].shape(), "{name}");
        for (i, (a, e)) in output.data().iter().zip(expected[0].data()).enumerate() {
            assert!(
                (a - e).abs() <= 1e-5 * e.abs().max(1.0),
                "{name}[{i}]: strata {a}, Keras {e}"
            );
        }
    }
}

/// Two samples of two positions and four channels in two groups: each group's four values
/// normalized by their own mean and variance (epsilon 0.001), then `gamma · x + beta`.
#[test]
fn a_hand_computed_example() {
    let mut model: Model = Sequential::new();
    model
        .add(Input::new(&[2, 4]))
        .add(GroupNormalization::new(2).name("norm"));
    model.compile("sgd", "mse", &[]).unwrap();
    let params = model.params_mut();
    for id in params.ids().collect::<Vec<_>>() {
        let values = match params.name(id) {
            "norm/gamma" => [1.0, 2.0, 0.5, -1.0],
            "norm/beta" => [0.0, 1.0, -1.0, 0.5],
            other => panic!("a weight {other}"),
        };
        params.value_mut(id).data_mut().copy_from_slice(&values);
    }
    // Sample 1: group 0 holds channels 0 and 1 at both positions: 1, 3, 5, 7 (mean 4,
    // variance 5); group 1 holds 2, 2, 4, 4 (mean 3, variance 1). Sample 2 is sample 1 doubled.
    let sample = [1.0, 3.0, 2.0, 2.0, 5.0, 7.0, 4.0, 4.0];
    let x: Vec<f32> = sample.iter().chain(&sample.map(|v| 2.0 * v)).copied().collect();
    let y = model.predict(&Tensor::from_vec(vec![2, 2, 4], x).unwrap(), 2).unwrap();
    let expected = |values: [f32; 8], (mean0, var0, mean1, var1): (f32, f32, f32, f32)| -> Vec<f32> {
        let gamma = [1.0, 2.0, 0.5, -1.0];
        let beta = [0.0, 1.0, -1.0, 0.5];
        (0..8)
            .map(|i| {
                let c = i % 4;
                let (mean, var) = if c < 2 { (mean0, var0) } else { (mean1, var1) };
                (values[i] - mean) / (var + 1e-3f32).sqrt() * gamma[c] + beta[c]
            })
            .collect()
    };
    let want: Vec<f32> = expected(sample, (4.0, 5.0, 3.0, 1.0))
        .into_iter()
        .chain(expected(sample.map(|v| 2.0 * v), (8.0, 20.0, 6.0, 4.0)))
        .collect();
    for (got, want) in y.data().iter().zip(&want) {
        assert!((got - want).abs() < 1e-5, "{got} against {want}");
    }
}

#[test]
fn group_normalization_passes_gradients() {
    let cases: Vec<(&str, Vec<usize>, GroupNormalization)> = vec![
        ("images, 3 groups", vec![2, 3, 2, 6], GroupNormalization::new(3)),
        (
            "sequences, one group per channel",
            vec![2, 5, 4],
            GroupNormalization::new(-1),
        ),
        (
            "features, one group",
            vec![3, 6],
            GroupNormalization::new(1).center(false),
        ),
    ];
    for (what, shape, layer) in cases {
        let x = uniform(&shape, -2.0, 2.0, 21);
        let error = layer_gradient_error(vec![boxed(layer)], x, |params| {
            // Scales and offsets away from 1 and 0, so their gradients are checked too.
            for id in params.ids().collect::<Vec<_>>() {
                let len = params.value(id).len();
                let values = uniform(&[len], 0.5, 1.5, 22);
                params.value_mut(id).data_mut().copy_from_slice(values.data());
            }
        });
        assert!(error < TOLERANCE, "{what}: gradient error {error}");
    }
}

/// The error reading `config` as a `GroupNormalization` gives.
fn refusal(config: &serde_json::Value) -> String {
    match strata::layers::from_config("GroupNormalization", config) {
        Ok(_) => panic!("{config} was read"),
        Err(error) => error.to_string(),
    }
}

#[test]
fn configs_are_read_and_written_back_and_groups_that_do_not_divide_are_refused_by_name() {
    let keras = serde_json::json!({
        "name": "norm", "groups": 4, "axis": -1, "epsilon": 1e-5, "center": true, "scale": false,
        "beta_initializer": {"class_name": "Zeros", "config": {}}, "gamma_initializer": "ones",
        "beta_regularizer": null, "gamma_regularizer": null, "beta_constraint": null, "gamma_constraint": null,
    });
    let layer = strata::layers::from_config("GroupNormalization", &keras).unwrap();
    let again = strata::layers::from_config("GroupNormalization", &layer.config()).unwrap();
    assert_eq!(layer.config(), again.config());
    assert_eq!(layer.config()["groups"], 4);
    assert_eq!(layer.config()["scale"], false);
    assert_eq!(layer.param_shapes(&[vec![5, 8]]).unwrap().len(), 1);

    let build = |groups: i64, shape: &[usize]| {
        let mut layer = boxed(GroupNormalization::new(groups));
        layer.set_name("culprit".into());
        layer.build_one(shape, &mut ParamStore::new(), &mut Rng::new(0))
    };
    for (groups, shape) in [(3, vec![4, 4, 8]), (0, vec![6]), (16, vec![3, 8])] {
        let error = build(groups, &shape).unwrap_err().to_string();
        assert!(
            error.contains("culprit") && error.contains(&format!("groups={groups}")),
            "{groups} groups on {shape:?}: {error}"
        );
    }
    // Keras's axis other than the last, and a regularizer strata does not apply, are refused.
    let mut config = keras.clone();
    config["axis"] = serde_json::json!(1);
    let mut layer = strata::layers::from_config("GroupNormalization", &config).unwrap();
    let error = layer
        .build_one(&[4, 4, 8], &mut ParamStore::new(), &mut Rng::new(0))
        .unwrap_err()
        .to_string();
    assert!(error.contains("norm") && error.contains("axis 1"), "{error}");
    let mut config = keras;
    config["gamma_regularizer"] = serde_json::json!({"class_name": "L2", "config": {"l2": 0.01}});
    let error = refusal(&config);
    assert!(error.contains("gamma_regularizer"), "{error}");
}
