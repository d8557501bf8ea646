//! Learning-rate schedules: Keras's formulas at chosen steps (values worked out by hand in the
//! comments), optimizers using the scheduled rate at each step, configs that round-trip through
//! JSON and model files, and the command-line spec parser.
mod common;

use serde_json::json;
use strata::autograd::ParamStore;
use strata::optimizers;
use strata::prelude::*;
use strata::rng::Rng;

fn close(got: f32, want: f64) {
    assert!((f64::from(got) - want).abs() < 1e-6, "got {got}, want {want}");
}

fn values_at(schedule: &dyn LearningRateSchedule, steps: &[u64], want: &[f64]) {
    for (&step, &want) in steps.iter().zip(want) {
        let got = schedule.learning_rate_at(step);
        assert!(
            (f64::from(got) - want).abs() < 1e-6,
            "step {step}: got {got}, want {want}"
        );
    }
}

#[test]
fn exponential_decay_follows_keras_formula() {
    // 0.1 · 0.5^(step/10): step 5 → 0.1/√2, step 25 → 0.1 · 0.5^2.5 = 0.01767767.
    let smooth = ExponentialDecay::new(0.1, 10, 0.5).unwrap();
    values_at(&smooth, &[0, 5, 10, 25], &[0.1, 0.070_710_678, 0.05, 0.017_677_670]);
    // Staircase: the exponent is floored, so the rate halves at 10, 20, ...
    let stairs = smooth.staircase(true);
    values_at(&stairs, &[0, 9, 10, 19, 25], &[0.1, 0.1, 0.05, 0.05, 0.025]);
}

#[test]
fn inverse_time_decay_follows_keras_formula() {
    // 0.1 / (1 + 0.5 · step/10): step 10 → 0.1/1.5, 15 → 0.1/1.75, 30 → 0.1/2.5.
    let smooth = InverseTimeDecay::new(0.1, 10, 0.5).unwrap();
    values_at(&smooth, &[0, 10, 15, 30], &[0.1, 0.066_666_667, 0.057_142_857, 0.04]);
    values_at(&smooth.staircase(true), &[15], &[0.066_666_667]);
}

#[test]
fn piecewise_constant_changes_value_after_each_boundary() {
    // values[0] up to and including boundaries[0], as Keras.
    let schedule = PiecewiseConstantDecay::new(vec![10, 20], vec![1.0, 0.5, 0.1]).unwrap();
    values_at(&schedule, &[0, 10, 11, 20, 21, 1000], &[1.0, 1.0, 0.5, 0.5, 0.1, 0.1]);
}

#[test]
fn cosine_decay_without_warmup() {
    // ½(1 + cos(π·step/100)): step 25 → ½(1 + √½) = 0.85355339; clamped at 0 after step 100.
    let schedule = CosineDecay::new(1.0, 100).unwrap();
    values_at(&schedule, &[0, 25, 50, 100, 200], &[1.0, 0.853_553_39, 0.5, 0.0, 0.0]);
    // alpha = 0.1: 0.9 · cosine + 0.1, so 0.55 halfway and 0.1 from step 100 on.
    values_at(&schedule.alpha(0.1), &[50, 100, 1000], &[0.55, 0.1, 0.1]);
}

#[test]
fn cosine_decay_warms_up_linearly_then_decays_from_the_target() {
    // From 0 to 1 over 10 steps, then the cosine over 100 steps from 1.
    let schedule = CosineDecay::new(0.0, 100).unwrap().warmup(1.0, 10);
    values_at(
        &schedule,
        &[0, 5, 9, 10, 35, 60, 110, 500],
        &[0.0, 0.5, 0.9, 1.0, 0.853_553_39, 0.5, 0.0, 0.0],
    );
    // The rise starts at initial_learning_rate: 0.1 + (1.1 − 0.1) · 4/10 = 0.5.
    values_at(&CosineDecay::new(0.1, 100).unwrap().warmup(1.1, 10), &[4], &[0.5]);
    // A target with no warm-up steps decays from the target; steps without a target are ignored.
    values_at(
        &CosineDecay::new(0.1, 100).unwrap().warmup(2.0, 0),
        &[0, 50],
        &[2.0, 1.0],
    );
    let ignored = CosineDecay {
        warmup_steps: 10,
        ..CosineDecay::new(0.4, 100).unwrap()
    };
    values_at(&ignored, &[0, 50], &[0.4, 0.2]);
}

#[test]
fn invalid_arguments_are_typed_errors() {
    let name_of = |result: Result<()>| match result {
        Err(Error::InvalidArgument { name, .. }) => name,
        other => panic!("expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(name_of(ExponentialDecay::new(0.1, 0, 0.9).map(drop)), "decay_steps");
    assert_eq!(name_of(ExponentialDecay::new(0.1, 10, -0.9).map(drop)), "decay_rate");
    assert_eq!(
        name_of(InverseTimeDecay::new(f32::NAN, 10, 0.5).map(drop)),
        "initial_learning_rate"
    );
    assert_eq!(name_of(CosineDecay::new(-1.0, 10).map(drop)), "initial_learning_rate");
    assert_eq!(name_of(CosineDecay::new(1.0, 0).map(drop)), "decay_steps");
    assert_eq!(
        name_of(PiecewiseConstantDecay::new(vec![5, 5], vec![1.0; 3]).map(drop)),
        "boundaries"
    );
    assert_eq!(
        name_of(PiecewiseConstantDecay::new(vec![9, 5], vec![1.0; 3]).map(drop)),
        "boundaries"
    );
    assert_eq!(
        name_of(PiecewiseConstantDecay::new(vec![5], vec![1.0; 3]).map(drop)),
        "values"
    );
    assert_eq!(
        name_of(PiecewiseConstantDecay::new(vec![5], vec![1.0, -1.0]).map(drop)),
        "values"
    );
    // Fields changed after construction are checked by compile.
    let bad = CosineDecay::new(1.0, 10).unwrap().warmup(-2.0, 5);
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Dense::new(1));
    assert_eq!(name_of(model.compile(Sgd::new(bad), "mse", &[])), "warmup_target");
    assert!(model.optimizer().is_none());
}

/// One weight at 1 with gradient `grad` at every step, updated `steps` times; returns the
/// weight and the learning rate reported before each step.
fn run(optimizer: &mut dyn Optimizer, grad: f32, steps: usize) -> (f32, Vec<f32>) {
    let mut params = ParamStore::new();
    let id = params.add("w", Tensor::from_slice(&[1.0]), true);
    let mut rates = Vec::new();
    for _ in 0..steps {
        rates.push(optimizer.learning_rate());
        params.set_grad_for_test(id, &[grad]);
        optimizer.step(&mut params);
    }
    (params.value(id).item(), rates)
}

fn halving() -> PiecewiseConstantDecay {
    PiecewiseConstantDecay::new(vec![0, 1], vec![0.5, 0.25, 0.125]).unwrap()
}

#[test]
fn sgd_steps_by_the_scheduled_rate() {
    // Rates 0.5, 0.25, 0.125 at steps 0, 1, 2 with g = 2: w = 1 − 1 − 0.5 − 0.25 = −0.75.
    let mut sgd = Sgd::new(halving());
    let (weight, rates) = run(&mut sgd, 2.0, 3);
    assert_eq!(rates, [0.5, 0.25, 0.125]);
    assert_eq!(weight, -0.75);
    assert_eq!(sgd.learning_rate(), 0.125);
    // Adagrad, lr 0.5 then 0.25 with g = 1 then 1: acc 1.1 then 2.1.
    let (weight, _) = run(&mut Adagrad::new(halving()), 1.0, 2);
    close(
        weight,
        1.0 - 0.5 / (1.1f64 + 1e-7).sqrt() - 0.25 / (2.1f64 + 1e-7).sqrt(),
    );
}

#[test]
fn every_optimizer_uses_the_rate_of_the_current_step() {
    // Each optimizer with the schedule must match the same optimizer given the schedule's value
    // as a constant before each step.
    type Make = fn(LearningRate) -> Box<dyn Optimizer>;
    let makers: [(&str, Make); 5] = [
        ("sgd", |lr| Box::new(Sgd::new(lr).momentum(0.9))),
        ("adam", |lr| Box::new(Adam::new(lr))),
        ("adamw", |lr| Box::new(AdamW::new(lr).weight_decay(0.1))),
        ("rmsprop", |lr| Box::new(RMSprop::new(lr))),
        ("adagrad", |lr| Box::new(Adagrad::new(lr))),
    ];
    let schedule = ExponentialDecay::new(0.3, 1, 0.5).unwrap();
    for (name, make) in makers {
        let (scheduled, rates) = run(make(schedule.clone().into()).as_mut(), 1.5, 4);
        assert_eq!(rates, [0.3, 0.15, 0.075, 0.0375], "{name}");
        let mut by_hand = make(LearningRate::Constant(0.0));
        let mut params = ParamStore::new();
        let id = params.add("w", Tensor::from_slice(&[1.0]), true);
        for step in 0..4 {
            by_hand.set_learning_rate(schedule.learning_rate_at(step));
            params.set_grad_for_test(id, &[1.5]);
            by_hand.step(&mut params);
        }
        assert_eq!(scheduled, params.value(id).item(), "{name}");
    }
}

#[test]
fn set_learning_rate_replaces_the_schedule() {
    let mut adam = Adam::new(halving());
    adam.set_learning_rate(0.01);
    let (_, rates) = run(&mut adam, 1.0, 3);
    assert_eq!(rates, [0.01; 3]);
    assert_eq!(adam.config()["learning_rate"], json!(0.01));
}

#[test]
fn configs_are_keras_shaped_and_round_trip() {
    let sgd = Sgd::new(ExponentialDecay::new(0.1, 1000, 0.96).unwrap().staircase(true)).momentum(0.9);
    let expected = json!({
        "class_name": "ExponentialDecay",
        "config": {"initial_learning_rate": 0.1, "decay_steps": 1000, "decay_rate": 0.96, "staircase": true,
                   "name": "ExponentialDecay"},
    });
    assert_eq!(sgd.config()["learning_rate"], expected);
    let restored = optimizers::from_config(&json!({"class_name": "SGD", "config": sgd.config()})).unwrap();
    assert_eq!(restored.config(), sgd.config());

    let all: Vec<LearningRate> = vec![
        0.01.into(),
        ExponentialDecay::new(0.1, 7, 0.5).unwrap().into(),
        InverseTimeDecay::new(0.2, 3, 1.5).unwrap().staircase(true).into(),
        PiecewiseConstantDecay::new(vec![4, 9], vec![0.3, 0.2, 0.1])
            .unwrap()
            .into(),
        CosineDecay::new(0.0, 20).unwrap().alpha(0.05).warmup(0.4, 5).into(),
        CosineDecay::new(0.3, 20).unwrap().into(),
    ];
    for learning_rate in all {
        let restored = LearningRate::from_config(&learning_rate.config()).unwrap();
        assert_eq!(restored.config(), learning_rate.config());
        for step in [0, 3, 5, 8, 13, 30] {
            assert_eq!(restored.at(step), learning_rate.at(step), "{learning_rate:?} at {step}");
        }
    }
}

#[test]
fn keras_serialized_schedules_load() {
    // As Keras 3 writes an optimizer config: extra "module" and "registered_name" keys.
    let config = json!({"class_name": "Adam", "config": {"learning_rate": {
        "module": "keras.optimizers.schedules", "class_name": "CosineDecay", "registered_name": null,
        "config": {"initial_learning_rate": 0.0, "decay_steps": 1000, "alpha": 0.0, "name": "CosineDecay",
                   "warmup_target": 0.1, "warmup_steps": 100},
    }}});
    let adam = optimizers::from_config(&config).unwrap();
    assert_eq!(adam.class_name(), "Adam");
    assert_eq!(adam.learning_rate(), 0.0);
    let schedule = adam.learning_rate_schedule();
    close(schedule.at(50), 0.05);
    close(schedule.at(600), 0.05);
    // Unknown classes and arguments are named in the error.
    let unknown = json!({"class_name": "Polynomial", "config": {}});
    assert!(matches!(
        LearningRate::from_config(&unknown),
        Err(Error::UnknownName { .. })
    ));
    let extra = json!({"class_name": "CosineDecay", "config": {"initial_learning_rate": 0.1, "decay_steps": 5,
                                                             "beta": 1}});
    assert!(
        matches!(LearningRate::from_config(&extra), Err(Error::UnknownName { name, .. }) if name.ends_with("beta"))
    );
}

#[test]
fn a_saved_model_keeps_its_schedule_and_position() {
    let mut rng = Rng::new(3);
    let x = Tensor::from_vec(vec![32, 4], (0..128).map(|_| rng.uniform(-1.0, 1.0)).collect()).unwrap();
    let y = Tensor::from_vec(vec![32, 1], (0..32).map(|_| rng.uniform(-1.0, 1.0)).collect()).unwrap();
    let mut model = Sequential::new();
    model.seed(1);
    model.add(Input::new(&[4])).add(Dense::new(1));
    model
        .compile(Sgd::new(ExponentialDecay::new(0.1, 2, 0.5).unwrap()), "mse", &[])
        .unwrap();
    model
        .fit(&x, &y, FitOptions::default().epochs(1).batch_size(8).verbose(0))
        .unwrap();
    let path = std::env::temp_dir().join(format!("strata-schedules-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let restored = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let (saved, loaded) = (model.optimizer().unwrap(), restored.optimizer().unwrap());
    assert_eq!(loaded.config(), saved.config());
    // Four batches taken: 0.1 · 0.5^(4/2) = 0.025.
    assert_eq!(loaded.iterations(), 4);
    close(loaded.learning_rate(), 0.025);
}

#[test]
fn command_line_specs_parse_into_keras_schedules() {
    let parse = |spec: &str| LearningRate::parse_schedule(spec, 0.1).unwrap().config();
    let expected: LearningRate = ExponentialDecay::new(0.1, 1000, 0.96).unwrap().into();
    assert_eq!(parse("exponential:decay_steps=1000,decay_rate=0.96"), expected.config());
    let expected: LearningRate = ExponentialDecay::new(0.1, 10, 0.5).unwrap().staircase(true).into();
    assert_eq!(
        parse(" exponential : decay_steps = 10, decay_rate=0.5, staircase=true"),
        expected.config()
    );
    let expected: LearningRate = PiecewiseConstantDecay::new(vec![1000, 2000], vec![0.1, 0.01, 0.001])
        .unwrap()
        .into();
    assert_eq!(
        parse("step:boundaries=1000;2000,values=0.1;0.01;0.001"),
        expected.config()
    );
    assert_eq!(
        parse("piecewise:boundaries=5,values=1;0.5"),
        parse("PiecewiseConstantDecay:boundaries=5,values=1;0.5")
    );
    let expected: LearningRate = InverseTimeDecay::new(0.1, 5, 2.0).unwrap().into();
    assert_eq!(parse("inverse_time:decay_steps=5,decay_rate=2"), expected.config());
    let expected: LearningRate = CosineDecay::new(0.1, 5000).unwrap().alpha(0.01).warmup(0.5, 500).into();
    assert_eq!(
        parse("cosine:decay_steps=5000,alpha=0.01,warmup_target=0.5,warmup_steps=500"),
        expected.config()
    );
    // Warm-up steps alone warm up from 0 to the given learning rate.
    let expected: LearningRate = CosineDecay::new(0.0, 5000).unwrap().warmup(0.1, 500).into();
    assert_eq!(parse("cosine:decay_steps=5000,warmup_steps=500"), expected.config());
    assert_eq!(parse("constant"), json!(0.1));
}

#[test]
fn bad_command_line_specs_are_typed_errors() {
    let error = |spec: &str| LearningRate::parse_schedule(spec, 0.1).unwrap_err();
    assert!(matches!(error("linear:decay_steps=5"), Error::UnknownName { name, .. } if name == "linear"));
    assert!(matches!(
        error("exponential:decay_steps=5,decay_rat=0.5"),
        Error::UnknownName { name, .. } if name == "ExponentialDecay.decay_rat"
    ));
    let invalid = |spec: &str| match error(spec) {
        Error::InvalidArgument { name, .. } => name,
        other => panic!("{spec}: expected InvalidArgument, got {other:?}"),
    };
    assert_eq!(invalid("exponential:decay_steps=abc,decay_rate=0.5"), "decay_steps");
    assert_eq!(invalid("exponential:decay_steps=1.5,decay_rate=0.5"), "decay_steps");
    assert_eq!(invalid("exponential:decay_steps=-10,decay_rate=0.5"), "decay_steps");
    assert_eq!(invalid("exponential:decay_steps=0,decay_rate=0.5"), "decay_steps");
    assert_eq!(invalid("exponential:decay_steps=10,decay_rate=-0.5"), "decay_rate");
    assert_eq!(
        invalid("exponential:decay_steps=10,decay_steps=20,decay_rate=0.5"),
        "decay_steps"
    );
    assert_eq!(
        invalid("exponential:decay_steps=10,decay_rate=0.5,staircase=yes"),
        "staircase"
    );
    assert_eq!(invalid("step:boundaries=2000;1000,values=1;2;3"), "boundaries");
    assert_eq!(invalid("step:boundaries=1000,values=1;x"), "values");
    assert_eq!(invalid("step:boundaries=1000,values=1"), "values");
    assert_eq!(invalid("cosine:decay_steps"), "schedule");
    assert_eq!(invalid("constant:decay_steps=4"), "schedule");
    assert!(matches!(error("exponential:decay_steps=10"), Error::Data(message) if message.contains("decay_rate")));
    assert!(matches!(error("cosine"), Error::Data(message) if message.contains("decay_steps")));
}

#[test]
fn model_files_can_give_a_schedule() {
    let text = r#"
        name = "scheduled"
        [compile]
        optimizer = { class_name = "SGD", config = { learning_rate = { class_name = "PiecewiseConstantDecay",
                      config = { boundaries = [100], values = [0.1, 0.01] } } } }
        loss = "mse"
        [[layers]]
        class_name = "InputLayer"
        config = { shape = [3] }
        [[layers]]
        class_name = "Dense"
        config = { units = 1 }
    "#;
    let spec = strata::io::config::parse(text, strata::io::config::Format::Toml, "scheduled.toml").unwrap();
    let schedule = spec.optimizer.learning_rate_schedule();
    assert_eq!((schedule.at(100), schedule.at(101)), (0.1, 0.01));
}
