//! Gradient clipping (`clipnorm`, `global_clipnorm`, `clipvalue`): Keras's formulas on gradients
//! worked out by hand, only trainable gradients touched, validation, and configs that round-trip
//! through JSON, model files and saved models.
mod common;

use serde_json::json;
use strata::autograd::{ParamId, ParamStore};
use strata::optimizers::{self, Clipping};
use strata::prelude::*;

/// Two trainable parameters at zero with gradients `a` and `b`, and a frozen one whose gradient
/// (norm 20) would change every result if clipping looked at it.
fn store(a: &[f32], b: &[f32]) -> (ParamStore, [ParamId; 3]) {
    let mut params = ParamStore::new();
    let first = params.add("a", Tensor::zeros(&[a.len()]), true);
    let frozen = params.add("frozen", Tensor::zeros(&[2]), false);
    let second = params.add("b", Tensor::zeros(&[b.len()]), true);
    params.set_grad_for_test(first, a);
    params.set_grad_for_test(frozen, &[12.0, 16.0]);
    params.set_grad_for_test(second, b);
    (params, [first, second, frozen])
}

/// One SGD step with learning rate 1 from zero weights, so each weight ends as −(clipped gradient).
fn clipped(sgd: Sgd, a: &[f32], b: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let (mut params, [first, second, frozen]) = store(a, b);
    let mut sgd = sgd;
    sgd.step(&mut params);
    assert_eq!(
        params.grad(frozen).data(),
        &[12.0, 16.0],
        "a frozen gradient was clipped"
    );
    assert_eq!(params.value(frozen).data(), &[0.0, 0.0]);
    let negate = |id| params.value(id).data().iter().map(|v: &f32| -v).collect::<Vec<f32>>();
    (negate(first), negate(second))
}

fn assert_close(got: &[f32], want: &[f64]) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        assert!((f64::from(*g) - w).abs() < 1e-6, "got {got:?}, want {want:?}");
    }
}

#[test]
fn clipnorm_clips_each_tensor_to_the_norm_separately() {
    // ‖(3, 4)‖ = 5 > 2: scaled by 2/5 to (1.2, 1.6). ‖(0.6, 0.8)‖ = 1 ≤ 2: unchanged.
    let (a, b) = clipped(Sgd::new(1.0).clipnorm(2.0), &[3.0, 4.0], &[0.6, 0.8]);
    assert_close(&a, &[1.2, 1.6]);
    assert_close(&b, &[0.6, 0.8]);
    // Keras's test_clip_norm: clipnorm 1 on (100, 100) gives (√2/2, √2/2).
    let (a, _) = clipped(Sgd::new(1.0).clipnorm(1.0), &[100.0, 100.0], &[0.0]);
    assert_close(&a, &[0.5f64.sqrt(), 0.5f64.sqrt()]);
}

#[test]
fn global_clipnorm_scales_all_gradients_together() {
    // Global norm √(3² + 4² + 0.6² + 0.8²) = √26 > 2: everything scaled by 2/√26.
    let (a, b) = clipped(Sgd::new(1.0).global_clipnorm(2.0), &[3.0, 4.0], &[0.6, 0.8]);
    let factor = 2.0 / 26f64.sqrt();
    assert_close(&a, &[3.0 * factor, 4.0 * factor]);
    assert_close(&b, &[0.6 * factor, 0.8 * factor]);
    // Below the limit (√26 ≤ 6) nothing changes; a zero gradient stays zero (no 0/0).
    let (a, b) = clipped(Sgd::new(1.0).global_clipnorm(6.0), &[3.0, 4.0], &[0.6, 0.8]);
    assert_close(&a, &[3.0, 4.0]);
    assert_close(&b, &[0.6, 0.8]);
    let (a, _) = clipped(Sgd::new(1.0).global_clipnorm(1.0), &[0.0, 0.0], &[0.0]);
    assert_close(&a, &[0.0, 0.0]);
}

#[test]
fn global_clipnorm_of_a_non_finite_norm_gives_nan_like_keras() {
    let (a, b) = clipped(Sgd::new(1.0).global_clipnorm(1.0), &[f32::INFINITY, 1.0], &[1.0]);
    assert!(a.iter().chain(&b).all(|v| v.is_nan()), "{a:?} {b:?}");
}

#[test]
fn clipvalue_clamps_each_element() {
    let (a, b) = clipped(Sgd::new(1.0).clipvalue(0.7), &[3.0, -4.0], &[0.6, -0.5]);
    assert_close(&a, &[0.7, -0.7]);
    assert_close(&b, &[0.6, -0.5]);
}

#[test]
fn every_optimizer_clips_before_its_update() {
    // Adam's, RMSprop's and Adagrad's first steps barely depend on the gradient's scale, so read
    // the gradients back: clipping rewrites them in place before the update.
    let cases: Vec<Box<dyn Optimizer>> = vec![
        Box::new(Adam::new(0.1).clipvalue(0.5)),
        Box::new(AdamW::new(0.1).clipvalue(0.5)),
        Box::new(RMSprop::new(0.1).clipvalue(0.5)),
        Box::new(Adagrad::new(0.1).clipvalue(0.5)),
        Box::new(Sgd::new(0.1).clipvalue(0.5)),
    ];
    for mut optimizer in cases {
        let (mut params, [first, second, _]) = store(&[3.0, -0.25], &[-9.0]);
        optimizer.step(&mut params);
        let name = optimizer.class_name();
        assert_eq!(params.grad(first).data(), &[0.5, -0.25], "{name}");
        assert_eq!(params.grad(second).data(), &[-0.5], "{name}");
        assert_eq!(optimizer.clipping().clipvalue, Some(0.5), "{name}");
    }
}

#[test]
fn bad_settings_are_errors_naming_the_argument() {
    let name_of = |clipping: Clipping| match clipping.validate().unwrap_err() {
        Error::InvalidArgument { name, reason, .. } => (name, reason),
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    let only = |clipnorm, clipvalue, global_clipnorm| Clipping {
        clipnorm,
        clipvalue,
        global_clipnorm,
    };
    assert_eq!(name_of(only(Some(-1.0), None, None)).0, "clipnorm");
    assert_eq!(name_of(only(Some(0.0), None, None)).0, "clipnorm");
    assert_eq!(name_of(only(None, Some(f32::NAN), None)).0, "clipvalue");
    assert_eq!(name_of(only(None, None, Some(f32::INFINITY))).0, "global_clipnorm");
    let (name, reason) = name_of(only(Some(1.0), None, Some(2.0)));
    assert_eq!(name, "global_clipnorm");
    assert!(reason.contains("only one") && reason.contains("clipnorm=1"), "{reason}");
    // Checked in Keras's config order (clipnorm, global_clipnorm, clipvalue): the later one is named.
    let (name, reason) = name_of(only(None, Some(1.0), Some(2.0)));
    assert_eq!(name, "clipvalue");
    assert!(reason.contains("global_clipnorm=2"), "{reason}");
    assert!(only(None, Some(0.5), None).validate().is_ok());
    assert!(Clipping::default().validate().is_ok());

    // compile checks it, and so does reading a config.
    let mut model = Sequential::new();
    model.add(Input::new(&[2])).add(Dense::new(1));
    let error = model.compile(Sgd::new(0.1).clipnorm(-2.0), "mse", &[]).unwrap_err();
    assert!(error.to_string().contains("clipnorm"), "{error}");
    for config in [
        json!({"clipnorm": 1.0, "global_clipnorm": 1.0}),
        json!({"clipvalue": -0.5}),
        json!({"clipnorm": "big"}),
    ] {
        let Err(error) = optimizers::from_config(&json!({"class_name": "Adam", "config": config})) else {
            panic!("{config} was accepted");
        };
        assert!(error.to_string().contains("clip"), "{error}");
    }
}

#[test]
fn configs_round_trip_with_keras_keys() {
    let optimizers: Vec<Box<dyn Optimizer>> = vec![
        Box::new(Sgd::new(0.1).momentum(0.9).clipnorm(1.5)),
        Box::new(Adam::new(0.01).global_clipnorm(2.5)),
        Box::new(AdamW::new(0.01).weight_decay(0.1).clipvalue(0.25)),
        Box::new(RMSprop::new(0.01).clipnorm(3.0)),
        Box::new(Adagrad::new(0.01).global_clipnorm(0.5)),
        Box::new(Adam::new(0.01)),
    ];
    for optimizer in optimizers {
        let config = optimizer.config();
        // Keras writes all three keys, null where unset.
        for key in ["clipnorm", "clipvalue", "global_clipnorm"] {
            assert!(config.get(key).is_some(), "{key} missing from {config}");
        }
        let serialized = json!({"class_name": optimizer.class_name(), "config": config});
        let text = serde_json::to_string(&serialized).unwrap();
        let restored = optimizers::from_config(&serde_json::from_str(&text).unwrap()).unwrap();
        assert_eq!(restored.class_name(), optimizer.class_name());
        assert_eq!(restored.clipping(), optimizer.clipping());
        assert_eq!(restored.config(), config);
    }
    let config = Sgd::new(0.1).clipnorm(1.5).config();
    assert_eq!(
        (&config["clipnorm"], &config["clipvalue"], &config["global_clipnorm"]),
        (&json!(1.5), &json!(null), &json!(null))
    );
}

#[test]
fn model_files_and_saved_models_keep_the_clipping() {
    let text = r#"
        name = "clipped"
        [compile]
        optimizer = { class_name = "Adam", config = { learning_rate = 0.01, global_clipnorm = 1.0 } }
        loss = "mse"
        [[layers]]
        class_name = "InputLayer"
        config = { shape = [2] }
        [[layers]]
        class_name = "Dense"
        config = { units = 1 }
    "#;
    let spec = strata::io::config::parse(text, strata::io::config::Format::Toml, "clipped.toml").unwrap();
    assert_eq!(spec.optimizer.clipping().global_clipnorm, Some(1.0));

    let x = Tensor::from_vec(vec![4, 2], vec![1.0, 2.0, -1.0, 0.5, 3.0, -2.0, 0.0, 1.0]).unwrap();
    let y = Tensor::from_vec(vec![4, 1], vec![10.0, -10.0, 20.0, 5.0]).unwrap();
    let mut model = Sequential::new();
    model.seed(1);
    model.add(Input::new(&[2])).add(Dense::new(1));
    model.compile(RMSprop::new(0.01).clipvalue(0.1), "mse", &[]).unwrap();
    model
        .fit(&x, &y, FitOptions::default().epochs(1).batch_size(2).verbose(0))
        .unwrap();
    let path = std::env::temp_dir().join(format!("strata-clipping-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let restored = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let (saved, loaded) = (model.optimizer().unwrap(), restored.optimizer().unwrap());
    assert_eq!(loaded.clipping().clipvalue, Some(0.1));
    assert_eq!(loaded.config(), saved.config());
}

#[test]
fn the_command_line_sets_and_checks_clipping() {
    let strata = |args: &[&str]| {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
            .args(args)
            .output()
            .expect("the binary runs");
        (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
    };
    let train = ["train", "--model", "linreg", "--epochs", "2", "--verbose", "0"];
    let (code, stderr) = strata(&[&train[..], &["--global-clipnorm", "0.5"]].concat());
    assert_eq!(code, Some(0), "{stderr}");
    let (code, stderr) = strata(&[&train[..], &["--clipnorm", "-1"]].concat());
    assert_eq!(code, Some(1));
    assert!(stderr.contains("clipnorm=-1"), "{stderr}");
    let (code, stderr) = strata(&[&train[..], &["--clipnorm", "1", "--clipvalue", "0.5"]].concat());
    assert_eq!(code, Some(1));
    assert!(stderr.contains("only one of clipnorm"), "{stderr}");
}
