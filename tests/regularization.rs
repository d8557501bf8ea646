//! The cures for overfitting: Dropout, SpatialDropout2D, GaussianNoise, GaussianDropout,
//! AlphaDropout, BatchNormalization,
//! LayerNormalization and weight regularizers. Gradients are checked by finite differences,
//! noise layers against their expected statistics, and moving statistics against hand-computed
//! updates.

mod common;

use common::{EPS, TOLERANCE, assert_close, boxed, layer_gradient_error, project, run_layers, uniform};
use strata::autograd::gradcheck::max_gradient_error;
use strata::autograd::{Graph, ParamStore, Tape};
use strata::prelude::*;

#[test]
fn batch_normalization_gradients_match_finite_differences() {
    // Dense-like (N, features) and channels-last images (N, H, W, C), with and without γ/β.
    let cases: Vec<(Vec<usize>, bool, bool)> = vec![
        (vec![6, 4], true, true),
        (vec![2, 3, 3, 2], true, true),
        (vec![5, 3], false, true),
        (vec![4, 3], true, false),
    ];
    for (shape, scale, center) in cases {
        let layer = BatchNormalization::new().scale(scale).center(center);
        let error = layer_gradient_error(vec![boxed(layer)], uniform(&shape, -2.0, 2.0, 3), |params| {
            // γ and β away from their initial 1 and 0, so a transposed use of them would show.
            for id in params.ids().collect::<Vec<_>>() {
                if params.is_trainable(id) {
                    let n = params.value(id).len();
                    *params.value_mut(id) = uniform(&[n], 0.5, 1.5, id.index() as u64);
                }
            }
        });
        assert!(
            error < TOLERANCE,
            "BatchNormalization {shape:?} scale={scale} center={center}: error {error}"
        );
    }
}

#[test]
fn layer_normalization_gradients_match_finite_differences() {
    for shape in [vec![3, 5], vec![2, 3, 4]] {
        let error = layer_gradient_error(
            vec![boxed(LayerNormalization::new())],
            uniform(&shape, -2.0, 2.0, 5),
            |params| {
                for id in params.ids().collect::<Vec<_>>() {
                    let n = params.value(id).len();
                    *params.value_mut(id) = uniform(&[n], 0.5, 1.5, 9 + id.index() as u64);
                }
            },
        );
        assert!(error < TOLERANCE, "LayerNormalization {shape:?}: error {error}");
    }
}

#[test]
fn normalizations_compute_hand_checked_values() {
    // Batch statistics per column: mean (2, 4), biased variance (1, 4).
    let x = Tensor::from_vec(vec![2, 2], vec![1.0, 2.0, 3.0, 6.0]).unwrap();
    let (y, _) = run_layers(vec![boxed(BatchNormalization::new())], &x, true);
    let (a, b) = (1.0 / (1.0f32 + 1e-3).sqrt(), 2.0 / (4.0f32 + 1e-3).sqrt());
    assert_close(y.data(), &[-a, -b, a, b], 1e-6, "batch-normalized");
    // At inference the fresh moving statistics (mean 0, variance 1) are used.
    let (y, _) = run_layers(vec![boxed(BatchNormalization::new())], &x, false);
    let s = 1.0 / (1.0f32 + 1e-3).sqrt();
    assert_close(y.data(), &[s, 2.0 * s, 3.0 * s, 6.0 * s], 1e-6, "inference");
    // Layer normalization: row (1, 2) has mean 1.5 and variance 0.25.
    let (y, _) = run_layers(vec![boxed(LayerNormalization::new())], &x, false);
    let r = 0.5 / (0.25f32 + 1e-3).sqrt();
    let q = 1.5 / (2.25f32 + 1e-3).sqrt();
    assert_close(y.data(), &[-r, r, -q, q], 1e-6, "layer-normalized");
}

#[test]
fn moving_statistics_follow_keras_update_and_count_as_non_trainable() {
    let mut model = Sequential::new();
    model.add(Input::new(&[2])).add(BatchNormalization::new().momentum(0.9));
    model.compile(Sgd::new(1e-3), "mse", &[]).unwrap();
    let summary = model.summary().unwrap();
    assert!(summary.contains("Trainable params: 4 "), "{summary}");
    assert!(summary.contains("Non-trainable params: 4 "), "{summary}");
    let x = Tensor::from_vec(vec![2, 2], vec![1.0, 2.0, 3.0, 6.0]).unwrap();
    let options = FitOptions::default().batch_size(2).shuffle(false).verbose(0);
    model.fit(&x, &x, options).unwrap();
    let weights = model.weights();
    // moving = moving·0.9 + batch·0.1 with batch mean (2, 4) and biased variance (1, 4).
    assert_close(
        weights["batch_normalization/moving_mean"].data(),
        &[0.2, 0.4],
        1e-6,
        "moving mean",
    );
    assert_close(
        weights["batch_normalization/moving_variance"].data(),
        &[1.0, 1.3],
        1e-6,
        "moving variance",
    );
    // Inference uses them: (x − mean) / √(var + ε) · γ + β.
    let (gamma, beta) = (
        &weights["batch_normalization/gamma"],
        &weights["batch_normalization/beta"],
    );
    let predicted = model.predict(&x, 2).unwrap();
    let (mean, var) = ([0.2f32, 0.4], [1.0f32, 1.3]);
    let expected: Vec<f32> = (0..4)
        .map(|i| {
            let c = i % 2;
            (x.data()[i] - mean[c]) / (var[c] + 1e-3).sqrt() * gamma.data()[c] + beta.data()[c]
        })
        .collect();
    assert_close(predicted.data(), &expected, 1e-5, "inference output");
}

#[test]
fn dropout_keeps_the_expected_value_in_training_and_is_the_identity_at_inference() {
    let x = Tensor::ones(&[200, 500]);
    let (y, _) = run_layers(vec![boxed(Dropout::new(0.3))], &x, true);
    let zeros = y.data().iter().filter(|&&v| v == 0.0).count() as f32 / y.len() as f32;
    assert!((zeros - 0.3).abs() < 0.01, "dropped fraction {zeros}");
    assert!(y.data().iter().all(|&v| v == 0.0 || (v - 1.0 / 0.7).abs() < 1e-6));
    let mean = y.data().iter().sum::<f32>() / y.len() as f32;
    assert!((mean - 1.0).abs() < 0.01, "mean {mean}");
    let (y, _) = run_layers(vec![boxed(Dropout::new(0.3))], &x, false);
    assert_eq!(y.data(), x.data());

    // Spatial dropout zeroes whole channels: each (sample, channel) is all kept or all dropped.
    let images = Tensor::ones(&[8, 5, 5, 16]);
    let (y, _) = run_layers(vec![boxed(SpatialDropout2D::new(0.5))], &images, true);
    let mut dropped = 0;
    for n in 0..8 {
        for c in 0..16 {
            let values: Vec<f32> = (0..25).map(|p| y.data()[n * 400 + p * 16 + c]).collect();
            assert!(
                values.iter().all(|&v| v == values[0]),
                "sample {n} channel {c}: {values:?}"
            );
            dropped += (values[0] == 0.0) as usize;
        }
    }
    assert!(
        (32..=96).contains(&dropped),
        "{dropped} of 128 channels dropped at rate 0.5"
    );

    // noise_shape (None, 1, 1, 1), EfficientNet's drop-connect: whole samples kept or dropped.
    let drop_connect = || boxed(Dropout::new(0.5).noise_shape(&[None, Some(1), Some(1), Some(1)]));
    let (y, _) = run_layers(vec![drop_connect()], &images, true);
    let samples: Vec<f32> = y.data().chunks(400).map(|sample| sample[0]).collect();
    for (n, sample) in y.data().chunks(400).enumerate() {
        assert!(sample.iter().all(|&v| v == samples[n]), "sample {n}");
    }
    assert!(samples.contains(&0.0) && samples.contains(&2.0), "{samples:?}");
    // A size that neither is 1 nor matches the input names the argument.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[5, 5, 16]))
        .add(Dropout::new(0.5).noise_shape(&[None, Some(2), Some(1), Some(1)]));
    let error = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
    assert!(
        error.contains("noise_shape") && error.contains("(None, 5, 5, 16)"),
        "{error}"
    );

    // Gaussian noise: zero mean, the asked standard deviation; none at inference.
    let zeros = Tensor::zeros(&[100, 1000]);
    let (y, _) = run_layers(vec![boxed(GaussianNoise::new(0.5))], &zeros, true);
    let n = y.len() as f32;
    let mean = y.data().iter().sum::<f32>() / n;
    let std = (y.data().iter().map(|v| v * v).sum::<f32>() / n).sqrt();
    assert!(mean.abs() < 0.01 && (std - 0.5).abs() < 0.01, "mean {mean}, std {std}");
    let (y, _) = run_layers(vec![boxed(GaussianNoise::new(0.5))], &zeros, false);
    assert!(y.data().iter().all(|&v| v == 0.0));
}

/// GaussianDropout multiplies by noise of mean 1 and variance `rate / (1 − rate)`; AlphaDropout
/// keeps a standardized input's mean 0 and variance 1 and maps values to Keras's `a·x + b` (kept)
/// or `a·α' + b` (dropped); both are the identity at inference and pass gradients.
#[test]
fn gaussian_and_alpha_dropout_follow_keras_statistics_and_values() {
    let ones = Tensor::ones(&[100, 1000]);
    let (y, _) = run_layers(vec![boxed(GaussianDropout::new(0.2))], &ones, true);
    let n = y.len() as f32;
    let mean = y.data().iter().sum::<f32>() / n;
    let variance = y.data().iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    assert!(
        (mean - 1.0).abs() < 0.01 && (variance - 0.25).abs() < 0.01,
        "mean {mean}, variance {variance}"
    );

    let rate = 0.1f64;
    let saturation = -1.050_700_987_355_480_5 * 1.673_263_242_354_377_3;
    let a = ((1.0 - rate) * (1.0 + rate * saturation * saturation)).powf(-0.5);
    let b = -a * saturation * rate;
    let x = uniform(&[200, 500], -2.0, 2.0, 7);
    let (y, _) = run_layers(vec![boxed(AlphaDropout::new(rate as f32))], &x, true);
    let dropped = (a * saturation + b) as f32;
    let mut dropped_count = 0;
    for (&xv, &yv) in x.data().iter().zip(y.data()) {
        let kept = (a as f32) * xv + b as f32;
        if (yv - dropped).abs() < 1e-5 && (yv - kept).abs() > 1e-5 {
            dropped_count += 1;
        } else {
            assert!((yv - kept).abs() < 1e-5, "x {xv}: {yv}, kept would be {kept}");
        }
    }
    let share = dropped_count as f32 / x.len() as f32;
    assert!((share - 0.1).abs() < 0.01, "dropped {share}");
    let standard = common::normal(&[200, 500], 3);
    let (y, _) = run_layers(vec![boxed(AlphaDropout::new(0.2))], &standard, true);
    let n = y.len() as f32;
    let mean = y.data().iter().sum::<f32>() / n;
    let variance = y.data().iter().map(|v| (v - mean) * (v - mean)).sum::<f32>() / n;
    assert!(
        mean.abs() < 0.02 && (variance - 1.0).abs() < 0.03,
        "mean {mean}, variance {variance}"
    );

    for layer in [GaussianDropout::new(0.3), AlphaDropout::new(0.3)] {
        let class = layer.class_name();
        let (y, _) = run_layers(vec![boxed(layer.clone())], &x, false);
        assert_eq!(y.data(), x.data(), "{class} at inference");
        let error = layer_gradient_error(vec![boxed(layer.clone())], uniform(&[4, 6], -1.0, 1.0, 1), |_| {});
        assert!(error < TOLERANCE, "{class} gradient error {error}");
        let config = layer.config();
        let rebuilt = strata::layers::from_config(class, &config).unwrap();
        assert_eq!(rebuilt.config(), config, "{class}");
    }
    for layer in [GaussianDropout::new(1.0), AlphaDropout::new(-0.1)] {
        let mut model = Sequential::new();
        model.add(Input::new(&[4])).add(layer);
        let error = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
        assert!(error.contains("rate"), "{error}");
    }
}

#[test]
fn dropout_masks_follow_the_noise_seed_and_gradients_flow_through_kept_values() {
    let params = ParamStore::new();
    let mask = |seed: u64| {
        let mut layer = Dropout::new(0.5);
        layer.set_name("dropout".into());
        let mut tape = Tape::new();
        let mut g = Graph::new(&mut tape, &params, true).with_noise_seed(seed);
        let x = g.constant(&Tensor::ones(&[64]));
        let y = layer.forward_one(&mut g, x).unwrap();
        g.value(y).clone()
    };
    assert_eq!(mask(1).data(), mask(1).data());
    assert_ne!(mask(1).data(), mask(2).data());
    let error = layer_gradient_error(vec![boxed(Dropout::new(0.4))], uniform(&[4, 6], -1.0, 1.0, 1), |_| {});
    assert!(error < TOLERANCE, "dropout gradient error {error}");
}

#[test]
fn out_of_range_rates_and_factors_are_refused_with_the_argument_named() {
    for layer in [
        Dropout::new(1.0),
        Dropout::new(-0.1),
        SpatialDropout2D::new(1.5),
        GaussianNoise::new(-1.0),
    ] {
        let mut model = Sequential::new();
        model.add(Input::new(&[4, 4, 2])).add(layer);
        let error = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
        assert!(error.contains("rate") || error.contains("stddev"), "{error}");
    }
    let mut model = Sequential::new();
    model
        .add(Input::new(&[3]))
        .add(Dense::new(2).kernel_regularizer(l2(-0.5)));
    let error = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
    assert!(error.contains("l2"), "{error}");
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(SpatialDropout2D::new(0.1));
    let error = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
    assert!(
        error.contains("spatial_dropout2d") && error.contains("(None, 3)"),
        "{error}"
    );
}

#[test]
fn regularizer_penalties_enter_the_loss_and_its_gradient() {
    // mse on a zero input is (0 − 1)² = 1; the L2 penalty adds 0.1·(1 + 4 + 9) = 1.4.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[3]))
        .add(Dense::new(1).use_bias(false).kernel_regularizer(l2(0.1)));
    model.compile("sgd", "mse", &[]).unwrap();
    let kernel = model.params().ids().next().unwrap();
    *model.params_mut().value_mut(kernel) = Tensor::from_vec(vec![3, 1], vec![1.0, 2.0, -3.0]).unwrap();
    let scores = model
        .evaluate(&Tensor::zeros(&[1, 3]), &Tensor::ones(&[1, 1]), 1)
        .unwrap();
    assert!((scores.loss - 2.4).abs() < 1e-5, "loss {}", scores.loss);

    let mut params = ParamStore::new();
    let w = params.add("w", Tensor::from_slice(&[0.5, -1.5, 2.0, -0.25]), true);
    let error = max_gradient_error(&mut params, EPS, |g| {
        let w = g.param(w);
        let penalty = g.penalty(w, 0.3, 0.2);
        let doubled = g.scale(w, 2.0);
        let projected = project(g, doubled, 1)?;
        g.add(penalty, projected)
    })
    .unwrap();
    assert!(error < TOLERANCE, "penalty gradient error {error}");
}

#[test]
fn models_with_new_layers_save_load_and_predict_identically() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[6, 6, 1]))
        .add(
            Conv2D::new(4, 3)
                .activation("relu")
                .kernel_regularizer(l1_l2(0.01, 0.01)),
        )
        .add(BatchNormalization::new())
        .add(SpatialDropout2D::new(0.2))
        .add(Flatten::new())
        .add(GaussianNoise::new(0.1))
        .add(Dense::new(8).kernel_regularizer(l2(0.01)))
        .add(LayerNormalization::new())
        .add(Dropout::new(0.5).seed(3))
        .add(Dense::new(2).activation("softmax"));
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    let x = uniform(&[16, 6, 6, 1], 0.0, 1.0, 4);
    let y = Tensor::from_vec(vec![16], (0..16).map(|i| (i % 2) as f32).collect()).unwrap();
    model
        .fit(&x, &y, FitOptions::default().epochs(2).batch_size(4).verbose(0))
        .unwrap();
    let path = std::env::temp_dir().join(format!("strata-regularized-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    assert_eq!(
        model.predict(&x, 8).unwrap().data(),
        loaded.predict(&x, 8).unwrap().data()
    );
    assert_eq!(model.evaluate(&x, &y, 8).unwrap(), loaded.evaluate(&x, &y, 8).unwrap());
    assert_eq!(loaded.config(), model.config());
}
