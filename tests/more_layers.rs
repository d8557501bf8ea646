//! The layers the classic Keras programs use beyond the core ones: `Softmax`, `LeakyReLU`,
//! `ELU`, `PReLU`, `Identity`, `Masking`, `RepeatVector`, `AveragePooling1D`,
//! `GlobalMaxPooling1D`, `SpatialDropout1D`, `RMSNormalization`, `ZeroPadding1D`: hand-computed
//! values and gradient checks.
//! (Their Keras parity is in `tests/keras_import.rs`.)

mod common;

use common::{TOLERANCE, assert_close, boxed, layer_gradient_error, run_layers, uniform};
use serde_json::json;
use strata::autograd::{Graph, ParamStore, Tape};
use strata::layers::{
    AveragePooling1D, ClassToken, ELU, GlobalMaxPooling1D, Identity, LeakyReLU, Masking, PReLU, RMSNormalization,
    RepeatVector, Softmax, SpatialDropout1D, ZeroPadding1D,
};
use strata::prelude::*;

fn rows(shape: &[usize], data: &[f32]) -> Tensor {
    Tensor::from_vec(shape.to_vec(), data.to_vec()).unwrap()
}

#[test]
fn activation_layers_compute_kerass_values() {
    let x = rows(&[1, 4], &[-2.0, -0.5, 0.0, 3.0]);
    let leaky = run_layers(vec![boxed(LeakyReLU::new(0.3))], &x, false).0;
    assert_close(leaky.data(), &[-0.6, -0.15, 0.0, 3.0], 1e-6, "LeakyReLU");
    let elu = run_layers(vec![boxed(ELU::new(1.5))], &x, false).0;
    let expected: Vec<f32> = [-2.0f32, -0.5]
        .iter()
        .map(|v| 1.5 * (v.exp() - 1.0))
        .chain([0.0, 3.0])
        .collect();
    assert_close(elu.data(), &expected, 1e-6, "ELU");
    let softmax = run_layers(
        vec![boxed(Softmax::new())],
        &rows(&[2, 2], &[0.0, 0.0, 1.0, 3.0]),
        false,
    )
    .0;
    let e = (2.0f32).exp();
    assert_close(
        softmax.data(),
        &[0.5, 0.5, 1.0 / (1.0 + e), e / (1.0 + e)],
        1e-6,
        "Softmax",
    );
    let same = run_layers(vec![boxed(Identity::new())], &x, true).0;
    assert_eq!(same.data(), x.data());
}

#[test]
fn softmax_refuses_an_axis_other_than_the_last() {
    let layer = strata::layers::from_config("Softmax", &json!({"name": "probs", "axis": 1})).unwrap();
    let err = layer.output_shapes(&[vec![3, 4]]).unwrap_err().to_string();
    assert!(err.contains("probs") && err.contains("axis"), "{err}");
    let last = strata::layers::from_config("Softmax", &json!({"name": "probs", "axis": 2})).unwrap();
    assert_eq!(last.output_shapes(&[vec![3, 4]]).unwrap(), [vec![3, 4]]);
}

#[test]
fn leaky_relu_reads_keras_2s_alpha_and_keras_3s_negative_slope() {
    let x = rows(&[1, 2], &[-1.0, 2.0]);
    for (config, slope) in [
        (json!({"name": "a", "alpha": 0.1}), 0.1),
        (json!({"name": "b", "negative_slope": 0.2}), 0.2),
        (json!({"name": "c"}), 0.3),
    ] {
        let layer = strata::layers::from_config("LeakyReLU", &config).unwrap();
        let y = run_layers(vec![layer], &x, false).0;
        assert_close(y.data(), &[-slope, 2.0], 1e-6, "LeakyReLU from config");
    }
}

#[test]
fn prelu_learns_one_slope_per_value_or_per_shared_axis() {
    // Per channel of a (2, 2, 2) image: slopes 0.5 and -1 set by hand.
    let x = rows(&[1, 2, 2, 2], &[-1.0, -2.0, 3.0, -4.0, -5.0, 6.0, 7.0, 8.0]);
    let layer = PReLU::new().shared_axes(&[1, 2]);
    assert_eq!(layer.param_shapes(&[vec![2, 2, 2]]).unwrap()[0].shape, [1, 1, 2]);
    let mut params = ParamStore::new();
    let mut layers = vec![boxed(layer)];
    common::build_stack(&mut layers, x.shape(), &mut params);
    let alpha = params.ids().next().unwrap();
    *params.value_mut(alpha) = rows(&[1, 1, 2], &[0.5, -1.0]);
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let input = g.constant(&x);
    let y = layers[0].forward_one(&mut g, input).unwrap();
    assert_close(
        g.value(y).data(),
        &[-0.5, 2.0, 3.0, 4.0, -2.5, 6.0, 7.0, 8.0],
        1e-6,
        "PReLU",
    );
    // Axes count from 1 (after the batch); 0 or past the sample's rank is refused by name.
    let err = PReLU::new()
        .shared_axes(&[3])
        .name("slopes")
        .output_shapes(&[vec![4, 5]])
        .unwrap_err();
    assert!(err.to_string().contains("slopes"), "{err}");
}

#[test]
fn activation_layers_have_the_right_gradients() {
    // Values kept away from the kinks, where finite differences are not defined.
    let x = rows(&[2, 3], &[-1.3, -0.4, 0.7, 1.1, -2.2, 0.35]);
    let layers: Vec<(&str, Box<dyn Layer>)> = vec![
        ("LeakyReLU", boxed(LeakyReLU::new(0.3))),
        ("ELU", boxed(ELU::new(1.0))),
        ("Softmax", boxed(Softmax::new())),
        ("Identity", boxed(Identity::new())),
    ];
    for (name, layer) in layers {
        let error = layer_gradient_error(vec![layer], x.clone(), |_| {});
        assert!(error < TOLERANCE, "{name}: gradient error {error}");
    }
    let error = layer_gradient_error(vec![boxed(PReLU::new())], x.clone(), |params| {
        let alpha = params.ids().next().unwrap();
        *params.value_mut(alpha) = rows(&[3], &[0.2, -0.6, 0.9]);
    });
    assert!(error < TOLERANCE, "PReLU: gradient error {error}");
}

#[test]
fn repeat_vector_copies_each_row_n_times_and_sums_its_gradient() {
    let x = rows(&[2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let y = run_layers(vec![boxed(RepeatVector::new(3))], &x, false).0;
    assert_eq!(y.shape(), &[2, 3, 2]);
    assert_eq!(y.data(), &[1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 3.0, 4.0, 3.0, 4.0, 3.0, 4.0]);
    let error = layer_gradient_error(
        vec![boxed(RepeatVector::new(3))],
        uniform(&[2, 4], -1.0, 1.0, 3),
        |_| {},
    );
    assert!(error < TOLERANCE, "RepeatVector: gradient error {error}");
    let err = RepeatVector::new(2)
        .name("rep")
        .output_shapes(&[vec![3, 4]])
        .unwrap_err();
    assert!(
        err.to_string().contains("rep") && err.to_string().contains("(None, 3, 4)"),
        "{err}"
    );
}

#[test]
fn sequence_pooling_computes_kerass_values() {
    // Two steps of two features, then three more: AveragePooling1D(2) drops the odd last step
    // ("valid" padding), GlobalMaxPooling1D takes each feature's maximum.
    let x = rows(&[1, 5, 2], &[1.0, -1.0, 3.0, 5.0, -2.0, 0.0, 4.0, 2.0, 9.0, -9.0]);
    let average = run_layers(vec![boxed(AveragePooling1D::new(2))], &x, false).0;
    assert_eq!(average.shape(), &[1, 2, 2]);
    assert_close(average.data(), &[2.0, 2.0, 1.0, 1.0], 1e-6, "AveragePooling1D");
    let maximum = run_layers(vec![boxed(GlobalMaxPooling1D::new())], &x, false).0;
    assert_eq!(maximum.shape(), &[1, 2]);
    assert_eq!(maximum.data(), &[9.0, 5.0]);
    let kept = run_layers(vec![boxed(GlobalMaxPooling1D::new().keepdims(true))], &x, false).0;
    assert_eq!(kept.shape(), &[1, 1, 2]);
    let x = uniform(&[2, 6, 3], -1.0, 1.0, 4);
    for (name, layer) in [
        ("AveragePooling1D", boxed(AveragePooling1D::new(2))),
        ("GlobalMaxPooling1D", boxed(GlobalMaxPooling1D::new())),
    ] {
        let error = layer_gradient_error(vec![layer], x.clone(), |_| {});
        assert!(error < TOLERANCE, "{name}: gradient error {error}");
    }
}

#[test]
fn masking_zeroes_padded_steps_and_the_lstm_skips_them() {
    // A sequence padded with two zero steps at its end gives the LSTM the same final state as
    // the unpadded sequence.
    let steps = uniform(&[1, 3, 2], -1.0, 1.0, 8);
    let mut padded = steps.data().to_vec();
    padded.extend([0.0; 4]);
    let padded = rows(&[1, 5, 2], &padded);
    let masked = run_layers(vec![boxed(Masking::new(0.0))], &padded, false).0;
    assert_eq!(masked.data(), padded.data());
    let lstm = || boxed(LSTM::new(4).seed(11));
    let short = run_layers(vec![lstm()], &steps, false).0;
    let long = run_layers(vec![boxed(Masking::new(0.0)), lstm()], &padded, false).0;
    assert_close(long.data(), short.data(), 1e-6, "LSTM after Masking");
    let unmasked = run_layers(vec![lstm()], &padded, false).0;
    assert!(
        unmasked.data() != short.data(),
        "without Masking the padding changes the state"
    );
    // A step equal to mask_value in only some features is kept.
    let partly = rows(&[1, 2, 2], &[0.0, 1.0, 0.0, 0.0]);
    let y = run_layers(vec![boxed(Masking::new(0.0))], &partly, false).0;
    assert_eq!(y.data(), partly.data());
}

#[test]
fn spatial_dropout_1d_drops_whole_feature_channels() {
    let x = Tensor::from_vec(vec![4, 10, 8], vec![1.0; 320]).unwrap();
    let y = run_layers(vec![boxed(SpatialDropout1D::new(0.5).seed(3))], &x, true).0;
    let mut dropped = 0;
    for sample in y.data().chunks(80) {
        for feature in 0..8 {
            let column: Vec<f32> = (0..10).map(|step| sample[step * 8 + feature]).collect();
            // Every step of a channel is dropped together or kept (scaled by 1/(1 − rate)).
            assert!(column.iter().all(|&v| v == column[0]), "{column:?}");
            assert!(column[0] == 0.0 || column[0] == 2.0, "{column:?}");
            dropped += usize::from(column[0] == 0.0);
        }
    }
    assert!(
        (6..=26).contains(&dropped),
        "{dropped} of 32 channels dropped at rate 0.5"
    );
    let inference = run_layers(vec![boxed(SpatialDropout1D::new(0.5))], &x, false).0;
    assert_eq!(inference.data(), x.data());
}

#[test]
fn class_token_puts_learned_vectors_in_front_of_every_sample() {
    let x = rows(
        &[2, 3, 2],
        &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0],
    );
    let layer = ClassToken::new().tokens(2);
    assert_eq!(layer.param_shapes(&[vec![3, 2]]).unwrap()[0].shape, [1, 2, 2]);
    let mut params = ParamStore::new();
    let mut layers = vec![boxed(layer)];
    common::build_stack(&mut layers, x.shape(), &mut params);
    let cls = params.ids().next().unwrap();
    assert!(
        params.value(cls).data().iter().all(|&v| v == 0.0),
        "zeros at first, as vit-keras"
    );
    *params.value_mut(cls) = rows(&[1, 2, 2], &[10.0, 11.0, 20.0, 21.0]);
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let input = g.constant(&x);
    let y = layers[0].forward_one(&mut g, input).unwrap();
    assert_eq!(g.value(y).shape(), &[2, 5, 2]);
    let expected = [
        10.0, 11.0, 20.0, 21.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, //
        10.0, 11.0, 20.0, 21.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0,
    ];
    assert_eq!(g.value(y).data(), expected);
    let error = layer_gradient_error(
        vec![boxed(ClassToken::new().tokens(2))],
        uniform(&[2, 3, 4], -1.0, 1.0, 5),
        |params| {
            let cls = params.ids().next().unwrap();
            *params.value_mut(cls) = uniform(&[1, 2, 4], -1.0, 1.0, 6);
        },
    );
    assert!(error < TOLERANCE, "ClassToken: gradient error {error}");
    let from_vit_keras = strata::layers::from_config("ClassToken", &json!({"name": "class_token"})).unwrap();
    assert_eq!(from_vit_keras.output_shapes(&[vec![49, 8]]).unwrap(), [vec![50, 8]]);
    let err = ClassToken::new()
        .name("cls")
        .output_shapes(&[vec![4]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("cls") && err.contains("steps, features"), "{err}");
    let err = ClassToken::new()
        .tokens(0)
        .output_shapes(&[vec![3, 4]])
        .unwrap_err()
        .to_string();
    assert!(err.contains("1 token or more"), "{err}");
}

#[test]
fn reshape_infers_one_size_as_kerass_minus_one() {
    use strata::io::config::{Format, parse};
    let description = |target: &str| {
        format!(
            r#"{{"class_name": "Sequential", "config": {{"layers": [
                {{"class_name": "InputLayer", "config": {{"batch_shape": [null, 12]}}}},
                {{"class_name": "Reshape", "config": {{"name": "r", "target_shape": {target}}}}}]}}}}"#
        )
    };
    let mut model = parse(&description("[-1, 2]"), Format::Json, "test").unwrap().model;
    model.compile("sgd", "mse", &[]).unwrap();
    assert_eq!(model.output_shape(), Some(&[6, 2][..]));
    let x = Tensor::from_vec(vec![2, 12], (0..24).map(|v| v as f32).collect()).unwrap();
    let y = model.predict(&x, 2).unwrap();
    assert_eq!((y.shape(), &y.data()[..4]), (&[2, 6, 2][..], &[0.0, 1.0, 2.0, 3.0][..]));
    assert_eq!(
        model.config()["config"]["layers"][1]["config"]["target_shape"],
        json!([-1, 2])
    );
    // A size that does not divide the values, and two sizes to infer, are errors naming them.
    let mut uneven = parse(&description("[-1, 5]"), Format::Json, "test").unwrap().model;
    let message = uneven.compile("sgd", "mse", &[]).unwrap_err().to_string();
    assert!(
        message.contains("a multiple of 5 values") && message.contains("(-1, 5)"),
        "{message}"
    );
    let message = parse(&description("[-1, -1]"), Format::Json, "test")
        .err()
        .unwrap()
        .to_string();
    assert!(message.contains("at most one -1"), "{message}");
}

#[test]
fn rms_normalization_divides_by_the_root_mean_square_and_scales() {
    // Rows (3, 4) and (1, -1) of two samples' sequences: mean squares 12.5 and 1.
    let x = rows(&[1, 2, 2], &[3.0, 4.0, 1.0, -1.0]);
    let epsilon = 1e-6f32;
    let (y, weights) = run_layers(vec![boxed(RMSNormalization::new())], &x, false);
    let (a, b) = ((12.5f32 + epsilon).sqrt(), (1.0f32 + epsilon).sqrt());
    assert_close(
        y.data(),
        &[3.0 / a, 4.0 / a, 1.0 / b, -1.0 / b],
        1e-6,
        "RMSNormalization",
    );
    assert_eq!(weights[0].data(), &[1.0, 1.0], "scale starts at 1");
    let error = layer_gradient_error(vec![boxed(RMSNormalization::new().epsilon(0.1))], x.clone(), |params| {
        let scale = params.ids().next().unwrap();
        *params.value_mut(scale) = rows(&[2], &[0.7, -1.3]);
    });
    assert!(error < TOLERANCE, "RMSNormalization: gradient error {error}");
    let layer = strata::layers::from_config("RMSNormalization", &json!({"name": "norm", "epsilon": 1e-5})).unwrap();
    assert_eq!(layer.config()["epsilon"].as_f64().map(|e| e as f32), Some(1e-5));
    let err = strata::layers::from_config("RMSNormalization", &json!({"axis": 1})).unwrap();
    assert!(err.output_shapes(&[vec![3, 4]]).is_err());
}

#[test]
fn zero_padding_1d_adds_zero_steps_at_both_ends() {
    let x = rows(&[1, 2, 2], &[1.0, 2.0, 3.0, 4.0]);
    let y = run_layers(vec![boxed(ZeroPadding1D::new(1, 2))], &x, false).0;
    assert_eq!(y.shape(), &[1, 5, 2]);
    assert_eq!(y.data(), &[0.0, 0.0, 1.0, 2.0, 3.0, 4.0, 0.0, 0.0, 0.0, 0.0]);
    let error = layer_gradient_error(vec![boxed(ZeroPadding1D::new(2, 1))], x.clone(), |_| {});
    assert!(error < TOLERANCE, "ZeroPadding1D: gradient error {error}");
    // Keras's forms: one number for both ends, or a pair.
    let both = strata::layers::from_config("ZeroPadding1D", &json!({"padding": 3})).unwrap();
    assert_eq!(both.output_shapes(&[vec![4, 2]]).unwrap(), [vec![10, 2]]);
    let pair = strata::layers::from_config("ZeroPadding1D", &json!({"padding": [0, 2]})).unwrap();
    assert_eq!(pair.config()["padding"], json!([0, 2]));
    let err = strata::layers::from_config("ZeroPadding1D", &json!({"padding": -1}))
        .err()
        .unwrap();
    assert!(err.to_string().contains("padding"), "{err}");
    let err = both.output_shapes(&[vec![4, 2, 1]]).unwrap_err();
    assert!(err.to_string().contains("(None, 4, 2, 1)"), "{err}");
}
