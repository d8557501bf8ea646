//! `Normalization.adapt` (issue #16): each channel's mean and population variance over every
//! other axis, as Keras's `Normalization(axis=-1).adapt(x)`, on a layer of its own and on one
//! inside a model (before and after it is built), kept through saving and training, and the
//! errors for what cannot be adapted.
mod common;

use strata::Error;
use strata::autograd::{Graph, ParamStore, Tape};
use strata::prelude::*;
use strata::rng::Rng;

/// Four samples of two features: means 4 and 15, variances (9+1+1+9)/4 = 5 and
/// (25+25+625+225)/4 = 225 (population variances, NumPy's `var`).
fn table() -> Tensor {
    Tensor::from_vec(vec![4, 2], vec![1.0, 10.0, 3.0, 10.0, 5.0, 40.0, 7.0, 0.0]).unwrap()
}

/// `layer` (built for `x`'s per-sample shape on `params`) applied to `x`.
fn apply(layer: &mut Normalization, params: &mut ParamStore, x: &Tensor) -> Tensor {
    layer.build_one(&x.shape()[1..], params, &mut Rng::new(0)).unwrap();
    let mut tape = Tape::new();
    let mut graph = Graph::new(&mut tape, params, false);
    let input = graph.constant(x);
    let y = layer.forward_one(&mut graph, input).unwrap();
    graph.value(y).clone()
}

#[test]
fn adapt_takes_each_channels_mean_and_population_variance() {
    let mut norm = Normalization::new().name("norm");
    let values = norm.adapt(&table()).unwrap();
    assert_eq!(values[0].data(), &[4.0, 15.0]);
    assert_eq!(values[1].data(), &[5.0, 225.0]);
    assert_eq!(values[2].data(), &[4.0]);
    // Built afterwards, the layer starts from them: (x − mean) / √variance.
    let mut params = ParamStore::new();
    let x = Tensor::from_vec(vec![1, 2], vec![4.0 + 5f32.sqrt(), 30.0]).unwrap();
    let y = apply(&mut norm, &mut params, &x);
    assert!(
        (y.data()[0] - 1.0).abs() < 1e-6 && (y.data()[1] - 1.0).abs() < 1e-6,
        "{y:?}"
    );
    // Images (N, H, W, C): statistics over samples, rows and columns, one per channel.
    let images = Tensor::from_vec(vec![2, 1, 2, 2], vec![0.0, 1.0, 2.0, 1.0, 4.0, 1.0, 6.0, 5.0]).unwrap();
    let values = Normalization::new().adapt(&images).unwrap();
    assert_eq!(values[0].data(), &[3.0, 2.0]);
    assert_eq!(values[1].data(), &[5.0, 3.0]);
    assert_eq!(values[2].data(), &[4.0]);
}

#[test]
fn a_normalization_inside_a_model_adapts_before_and_after_it_is_built() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[2]))
        .add(Normalization::new().name("norm"))
        .add(Dense::new(1).name("out"));
    // Not built yet: the layer keeps the statistics for its build.
    model.adapt("norm", &table()).unwrap();
    model.compile("sgd", "mse", &[]).unwrap();
    assert_eq!(model.weights()["norm/mean"].data(), &[4.0, 15.0]);
    assert_eq!(model.weights()["norm/variance"].data(), &[5.0, 225.0]);
    // Built: the weights change at once, and training leaves them alone (non-trainable).
    let shifted = Tensor::from_vec(vec![2, 2], vec![0.0, 0.0, 2.0, 4.0]).unwrap();
    model.adapt("norm", &shifted).unwrap();
    assert_eq!(model.weights()["norm/mean"].data(), &[1.0, 2.0]);
    assert_eq!(model.weights()["norm/variance"].data(), &[1.0, 4.0]);
    let y = Tensor::from_vec(vec![2, 1], vec![0.0, 1.0]).unwrap();
    model
        .fit(&shifted, &y, FitOptions::default().epochs(2).batch_size(2).verbose(0))
        .unwrap();
    assert_eq!(model.weights()["norm/mean"].data(), &[1.0, 2.0]);
    // Saved and loaded: the adapted statistics are weights, and travel with the model.
    let path = std::env::temp_dir().join(format!("strata-adapt-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut restored = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(restored.weights()["norm/variance"].data(), &[1.0, 4.0]);
    assert_eq!(
        restored.predict(&shifted, 2).unwrap(),
        model.predict(&shifted, 2).unwrap()
    );
}

#[test]
fn what_cannot_be_adapted_is_an_error_naming_the_layer() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[2]))
        .add(Normalization::new().name("norm"))
        .add(Dense::new(1).name("out"));
    let message = model.adapt("out", &table()).unwrap_err().to_string();
    assert!(message.contains("'out' (Dense)"), "{message}");
    let message = model.adapt("nope", &table()).unwrap_err().to_string();
    assert!(message.contains("norm, out"), "{message}");
    // Built for two features, adapted to three: both shapes named.
    model.compile("sgd", "mse", &[]).unwrap();
    let three = Tensor::from_vec(vec![1, 3], vec![1.0, 2.0, 3.0]).unwrap();
    match model.adapt("norm", &three) {
        Err(Error::LayerShape {
            layer,
            expected,
            received,
        }) => {
            assert_eq!(layer, "norm");
            assert!(
                expected.contains("[2]") && received.contains("[1, 3]"),
                "{expected} / {received}"
            );
        }
        other => panic!("expected LayerShape, got {other:?}"),
    }
    // One sample axis and nothing else, no values, or statistics given at construction.
    for data in [Tensor::from_slice(&[1.0, 2.0]), Tensor::zeros(&[0, 2])] {
        match Normalization::new().name("n").adapt(&data) {
            Err(Error::LayerShape { layer, .. }) => assert_eq!(layer, "n"),
            other => panic!("{:?}: expected LayerShape, got {other:?}", data.shape()),
        }
    }
    let fixed = Normalization::with_statistics(vec![0.0], vec![1.0])
        .name("fixed")
        .adapt(&table());
    assert!(fixed.unwrap_err().to_string().contains("'fixed'"));
    // Adapted to two channels, built for three: the build says so.
    let mut norm = Normalization::new().name("norm");
    norm.adapt(&table()).unwrap();
    let built = norm.build_one(&[3], &mut ParamStore::new(), &mut Rng::new(0));
    assert!(matches!(built, Err(Error::LayerShape { .. })), "{built:?}");
}
