//! `Permute`: values moved as Keras's `ops.transpose(x, (0,) + dims)` moves them, the gradient
//! by finite differences, its config read and written back, bad `dims` and ranks refused with
//! the layer named. Keras's own outputs are compared in tests/keras_operations.rs.

mod common;

use common::{TOLERANCE, boxed, layer_gradient_error, run_layers, uniform};
use strata::autograd::ParamStore;
use strata::layers::{Layer, Permute};
use strata::rng::Rng;

#[test]
fn permute_moves_each_value_as_keras_transposes() {
    let x = uniform(&[2, 3, 4, 5], -1.0, 1.0, 9);
    let (y, _) = run_layers(vec![boxed(Permute::new(&[3, 1, 2]))], &x, false);
    assert_eq!(y.shape(), [2, 5, 3, 4]);
    for n in 0..2 {
        for a in 0..3 {
            for b in 0..4 {
                for c in 0..5 {
                    assert_eq!(
                        y.data()[((n * 5 + c) * 3 + a) * 4 + b],
                        x.data()[((n * 3 + a) * 4 + b) * 5 + c]
                    );
                }
            }
        }
    }
    let (same, _) = run_layers(vec![boxed(Permute::new(&[1, 2, 3]))], &x, false);
    assert_eq!(same.data(), x.data());
}

#[test]
fn permute_passes_gradients_and_reads_its_config() {
    for dims in [vec![2, 1], vec![3, 1, 2]] {
        let shape: Vec<usize> = std::iter::once(2).chain((0..dims.len()).map(|i| i + 3)).collect();
        let error = layer_gradient_error(vec![boxed(Permute::new(&dims))], uniform(&shape, -1.0, 1.0, 4), |_| {});
        assert!(error < TOLERANCE, "{dims:?}: gradient error {error}");
    }
    let config = serde_json::json!({"name": "swap", "dims": [2, 1], "trainable": true, "dtype": "float32"});
    let layer = strata::layers::from_config("Permute", &config).unwrap();
    assert_eq!(layer.config()["dims"], serde_json::json!([2, 1]));
    assert_eq!(layer.output_shapes(&[vec![7, 3]]).unwrap()[0], [3, 7]);
}

#[test]
fn bad_dims_and_ranks_name_the_layer() {
    let build = |dims: &[usize], shape: &[usize]| {
        let mut layer: Box<dyn Layer> = boxed(Permute::new(dims));
        layer.set_name("culprit".into());
        layer
            .build_one(shape, &mut ParamStore::new(), &mut Rng::new(0))
            .unwrap_err()
            .to_string()
    };
    for dims in [&[1, 1][..], &[0, 1], &[2, 3]] {
        let error = build(dims, &[3, 4]);
        assert!(error.contains("dims") && error.contains("culprit"), "{dims:?}: {error}");
    }
    let error = build(&[2, 1], &[3, 4, 5]);
    assert!(
        error.contains("culprit") && error.contains("(None, 3, 4, 5)"),
        "{error}"
    );
}
