//! Loss values against closed forms worked out here, Keras's clipping of probabilities, the
//! stability of the cross-entropies on huge logits, and the fused softmax/sigmoid paths.

use strata::Tensor;
use strata::autograd::{Graph, ParamStore, Tape, Var};
use strata::layers::{Dense, Layer};
use strata::losses::Loss;
use strata::prelude::{FitOptions, Sequential};
use strata::rng::Rng;

const CCE: Loss = Loss::CategoricalCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};
const CCE_LOGITS: Loss = Loss::CategoricalCrossentropy {
    from_logits: true,
    label_smoothing: 0.0,
};
const SCCE: Loss = Loss::SparseCategoricalCrossentropy { from_logits: false };
const SCCE_LOGITS: Loss = Loss::SparseCategoricalCrossentropy { from_logits: true };
const BCE: Loss = Loss::BinaryCrossentropy {
    from_logits: false,
    label_smoothing: 0.0,
};
const BCE_LOGITS: Loss = Loss::BinaryCrossentropy {
    from_logits: true,
    label_smoothing: 0.0,
};

fn t2(rows: usize, cols: usize, values: &[f32]) -> Tensor {
    Tensor::from_vec(vec![rows, cols], values.to_vec()).unwrap()
}

/// The loss of a constant prediction (no fusion: the prediction is not a softmax or sigmoid).
fn loss_of(loss: Loss, prediction: &Tensor, target: &Tensor) -> f32 {
    loss_through(loss, prediction, target, |_, x| x)
}

/// The loss of `head(prediction)`, where `head` records e.g. a softmax on the graph.
fn loss_through(loss: Loss, prediction: &Tensor, target: &Tensor, head: impl Fn(&mut Graph, Var) -> Var) -> f32 {
    let params = ParamStore::new();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let x = g.constant(prediction);
    let output = head(&mut g, x);
    let t = g.constant(target);
    let value = loss.compute(&mut g, output, t).unwrap();
    assert!(g.shape(value).iter().product::<usize>() == 1, "loss is a scalar");
    g.value(value).item()
}

fn assert_near(actual: f32, expected: f64, tolerance: f64, what: &str) {
    assert!(
        (actual as f64 - expected).abs() <= tolerance * 1f64.max(expected.abs()),
        "{what}: got {actual}, expected {expected}"
    );
}

/// Keras's clipping of probabilities before a log, done in float32 as Keras does: the upper
/// bound `1 − 1e-7` rounds to 0.99999988, so `1 − clip(1)` is 1.19e-7.
fn clip(p: f64) -> f64 {
    (p as f32).clamp(1e-7, 1.0 - 1e-7) as f64
}

/// `log(softmax(row))` in f64.
fn log_softmax(row: &[f32]) -> Vec<f64> {
    let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let log_total = row.iter().map(|&v| (v as f64 - max).exp()).sum::<f64>().ln();
    row.iter().map(|&v| v as f64 - max - log_total).collect()
}

#[test]
fn mean_squared_and_absolute_error_match_their_formulas() {
    let prediction = t2(2, 3, &[1.0, 2.0, 3.0, -1.0, 0.5, 4.0]);
    let target = t2(2, 3, &[1.5, 2.0, 1.0, 1.0, 0.0, 4.5]);
    // Squared differences 0.25, 0, 4, 4, 0.25, 0.25 → mean 8.75 / 6.
    assert_near(
        loss_of(Loss::MeanSquaredError, &prediction, &target),
        8.75 / 6.0,
        1e-6,
        "mse",
    );
    // Absolute differences 0.5, 0, 2, 2, 0.5, 0.5 → mean 5.5 / 6.
    assert_near(
        loss_of(Loss::MeanAbsoluteError, &prediction, &target),
        5.5 / 6.0,
        1e-6,
        "mae",
    );
    assert_eq!(loss_of(Loss::MeanSquaredError, &target, &target), 0.0);
    assert_eq!(loss_of(Loss::MeanAbsoluteError, &target, &target), 0.0);
}

#[test]
fn categorical_cross_entropy_on_probabilities_matches_the_formula() {
    let probs = t2(3, 3, &[0.7, 0.2, 0.1, 0.1, 0.8, 0.1, 0.25, 0.25, 0.5]);
    let onehot = t2(3, 3, &[1., 0., 0., 0., 0., 1., 0., 0., 1.]);
    let labels = Tensor::from_slice(&[0.0, 2.0, 2.0]);
    let expected = -(0.7f64.ln() + 0.1f64.ln() + 0.5f64.ln()) / 3.0;
    assert_near(loss_of(CCE, &probs, &onehot), expected, 1e-6, "categorical");
    assert_near(loss_of(SCCE, &probs, &labels), expected, 1e-6, "sparse");

    // Soft targets weight every log-probability.
    let soft = t2(1, 3, &[0.5, 0.3, 0.2]);
    let p = t2(1, 3, &[0.6, 0.3, 0.1]);
    let expected = -(0.5 * 0.6f64.ln() + 0.3 * 0.3f64.ln() + 0.2 * 0.1f64.ln());
    assert_near(loss_of(CCE, &p, &soft), expected, 1e-6, "soft targets");
}

#[test]
fn probabilities_are_clipped_to_keras_epsilon_before_the_log() {
    // A certain wrong prediction costs -log(1e-7) ≈ 16.118, not infinity; a certain right one
    // costs -log(1 - 1e-7) ≈ 1e-7, not exactly 0.
    let probs = t2(2, 2, &[0.0, 1.0, 1.0, 0.0]);
    let onehot = t2(2, 2, &[1., 0., 1., 0.]);
    let labels = Tensor::from_slice(&[0.0, 0.0]);
    let expected = -(clip(0.0).ln() + clip(1.0).ln()) / 2.0;
    assert!((expected - 16.118_095_6 / 2.0).abs() < 1e-4);
    for (what, value) in [
        ("categorical", loss_of(CCE, &probs, &onehot)),
        ("sparse", loss_of(SCCE, &probs, &labels)),
    ] {
        assert!(value.is_finite(), "{what}: {value}");
        assert_near(value, expected, 1e-5, what);
    }
    // Binary: p = 0 with t = 1 and p = 1 with t = 0 each cost -log(1e-7).
    let p = Tensor::from_vec(vec![4, 1], vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    let t = Tensor::from_vec(vec![4, 1], vec![1.0, 0.0, 1.0, 0.0]).unwrap();
    let expected = -(clip(0.0).ln() + (1.0 - clip(1.0)).ln() + clip(1.0).ln() + (1.0 - clip(0.0)).ln()) / 4.0;
    assert_near(loss_of(BCE, &p, &t), expected, 1e-5, "binary");
}

#[test]
fn binary_cross_entropy_matches_the_formula() {
    let p = [0.9f32, 0.2, 0.6, 0.35, 0.05, 0.999];
    let t = [1.0f32, 0.0, 0.0, 1.0, 0.0, 1.0];
    let expected = p
        .iter()
        .zip(&t)
        .map(|(&p, &t)| {
            let (p, t) = (p as f64, t as f64);
            -(t * p.ln() + (1.0 - t) * (1.0 - p).ln())
        })
        .sum::<f64>()
        / 6.0;
    let probs = t2(3, 2, &p);
    let targets = t2(3, 2, &t);
    assert_near(loss_of(BCE, &probs, &targets), expected, 1e-6, "bce");
    // The same on logits: p = sigmoid(x) ⇔ x = log(p / (1 − p)).
    let logits = probs.map(|p| (p / (1.0 - p)).ln());
    assert_near(loss_of(BCE_LOGITS, &logits, &targets), expected, 1e-5, "bce logits");
}

#[test]
fn cross_entropy_from_logits_matches_the_formula() {
    let logits = t2(3, 4, &[2.0, -1.0, 0.5, 0.0, -3.0, 1.0, 1.0, 2.5, 0.1, 0.2, 0.3, 0.4]);
    let labels = [0usize, 3, 1];
    let expected = labels
        .iter()
        .enumerate()
        .map(|(row, &label)| -log_softmax(&logits.data()[row * 4..row * 4 + 4])[label])
        .sum::<f64>()
        / 3.0;
    let sparse = Tensor::from_slice(&labels.map(|l| l as f32));
    let mut onehot = Tensor::zeros(&[3, 4]);
    for (row, &label) in labels.iter().enumerate() {
        onehot.data_mut()[row * 4 + label] = 1.0;
    }
    assert_near(loss_of(SCCE_LOGITS, &logits, &sparse), expected, 1e-6, "sparse");
    assert_near(loss_of(CCE_LOGITS, &logits, &onehot), expected, 1e-6, "one-hot");
    // On probabilities, through an explicit softmax of the same logits: the same value.
    assert_near(
        loss_through(SCCE, &logits, &sparse, |g, x| g.softmax(x)),
        expected,
        1e-6,
        "sparse on softmax",
    );
    assert_near(
        loss_through(CCE, &logits, &onehot, |g, x| g.softmax(x)),
        expected,
        1e-6,
        "one-hot on softmax",
    );
}

#[test]
fn softmax_cross_entropy_is_finite_for_huge_logits() {
    let logits = t2(2, 2, &[1000.0, -1000.0, -1000.0, 1000.0]);
    // Row 0 favours class 0 and row 1 class 1, each by 2000: a right label costs 0, a wrong
    // one 2000.
    for (label_0, label_1) in [(0.0f32, 1.0f32), (1.0, 0.0), (0.0, 0.0), (1.0, 1.0)] {
        let sparse = Tensor::from_slice(&[label_0, label_1]);
        let onehot = strata::data::to_categorical(&sparse, 2).unwrap();
        let row_0 = if label_0 == 0.0 { 0.0 } else { 2000.0 };
        let row_1 = if label_1 == 1.0 { 0.0 } else { 2000.0 };
        let expected = (row_0 + row_1) / 2.0;
        for (what, value) in [
            ("sparse logits", loss_of(SCCE_LOGITS, &logits, &sparse)),
            ("one-hot logits", loss_of(CCE_LOGITS, &logits, &onehot)),
            (
                "sparse on softmax",
                loss_through(SCCE, &logits, &sparse, |g, x| g.softmax(x)),
            ),
            (
                "one-hot on softmax",
                loss_through(CCE, &logits, &onehot, |g, x| g.softmax(x)),
            ),
        ] {
            assert!(value.is_finite(), "{what}: {value}");
            assert_near(value, expected, 1e-6, what);
        }
    }
    // One row, the example from the brief: [1000, -1000].
    let one = t2(1, 2, &[1000.0, -1000.0]);
    assert!(loss_of(SCCE_LOGITS, &one, &Tensor::from_slice(&[0.0])).abs() < 1e-6);
    assert_near(
        loss_of(SCCE_LOGITS, &one, &Tensor::from_slice(&[1.0])),
        2000.0,
        1e-6,
        "label 1",
    );
    // Without fusion, the probabilities [1, 0] are clipped: the loss saturates at -log(1e-7).
    let probs = t2(1, 2, &[1.0, 0.0]);
    assert_near(
        loss_of(SCCE, &probs, &Tensor::from_slice(&[1.0])),
        -clip(0.0).ln(),
        1e-5,
        "clipped",
    );
}

#[test]
fn gradients_of_huge_logits_are_finite() {
    let mut params = ParamStore::new();
    let id = params.add("logits", t2(2, 2, &[1000.0, -1000.0, -1000.0, 1000.0]), true);
    let labels = Tensor::from_slice(&[1.0, 1.0]);
    let mut tape = Tape::new();
    let loss = {
        let mut g = Graph::new(&mut tape, &params, true);
        let x = g.param(id);
        let p = g.softmax(x);
        let t = g.constant(&labels);
        SCCE.compute(&mut g, p, t).unwrap()
    };
    tape.backward(loss, &mut params);
    // d/dx of mean CE = (softmax − onehot) / rows: row 0 is [1, -1]/2, row 1 is [0, 0].
    assert_eq!(params.grad(id).data(), &[0.5, -0.5, 0.0, 0.0]);
}

#[test]
fn binary_cross_entropy_is_finite_for_huge_logits() {
    let logits = Tensor::from_vec(vec![4, 1], vec![1000.0, -1000.0, 1000.0, -1000.0]).unwrap();
    let targets = Tensor::from_vec(vec![4, 1], vec![0.0, 1.0, 1.0, 0.0]).unwrap();
    // Two certain mistakes costing 1000 each, two certain hits costing 0.
    for (what, value) in [
        ("logits", loss_of(BCE_LOGITS, &logits, &targets)),
        ("on sigmoid", loss_through(BCE, &logits, &targets, |g, x| g.sigmoid(x))),
    ] {
        assert!(value.is_finite(), "{what}: {value}");
        assert_near(value, 500.0, 1e-6, what);
    }
}

/// A Dense layer with `activation` on a random batch: returns its loss computed by
/// `Loss::compute` on the layer's output (fused where the output is a softmax or sigmoid), the
/// loss computed on the output's values as a constant (never fused), and the kernel gradients
/// of the fused path and of the explicit `cross_entropy(softmax(·))` composition.
fn fused_and_unfused(activation: &str, loss: Loss, target: &Tensor, units: usize) -> (f32, f32, Tensor, Tensor) {
    let mut params = ParamStore::new();
    let mut layer = Dense::new(units).activation(activation);
    layer.set_name("dense".into());
    layer.build_one(&[5], &mut params, &mut Rng::new(4)).unwrap();
    let mut rng = Rng::new(5);
    let rows = target.rows();
    let x = Tensor::from_vec(vec![rows, 5], (0..rows * 5).map(|_| rng.uniform(-2.0, 2.0)).collect()).unwrap();
    let kernel = layer.kernel().unwrap();

    let mut tape = Tape::new();
    let (fused, output) = {
        let mut g = Graph::new(&mut tape, &params, true);
        let xv = g.constant(&x);
        let y = layer.forward_one(&mut g, xv).unwrap();
        let t = g.constant(target);
        let value = loss.compute(&mut g, y, t).unwrap();
        (value, g.value(y).clone())
    };
    let fused_value = tape.value(fused, &params).item();
    tape.backward(fused, &mut params);
    let fused_grad = params.grad(kernel).clone();

    let unfused_value = loss_of(loss, &output, target);

    let explicit = {
        let mut g = Graph::new(&mut tape, &params, true);
        let xv = g.constant(&x);
        let k = g.param(kernel);
        let b = g.param(layer.bias().unwrap());
        let z = g.linear(xv, k, Some(b)).unwrap();
        let t = g.constant(target);
        match loss {
            Loss::BinaryCrossentropy { .. } => {
                let p = g.sigmoid(z);
                g.binary_cross_entropy(p, t).unwrap()
            }
            _ => {
                let p = g.softmax(z);
                g.cross_entropy(p, t, loss.sparse_targets()).unwrap()
            }
        }
    };
    tape.backward(explicit, &mut params);
    let explicit_grad = params.grad(kernel).clone();
    (fused_value, unfused_value, fused_grad, explicit_grad)
}

#[test]
fn fused_softmax_cross_entropy_equals_the_loss_on_the_softmax_output() {
    let labels = Tensor::from_slice(&[0.0, 2.0, 1.0, 3.0, 3.0, 0.0]);
    let onehot = strata::data::to_categorical(&labels, 4).unwrap();
    for (loss, target) in [(SCCE, &labels), (CCE, &onehot)] {
        let (fused, unfused, fused_grad, explicit_grad) = fused_and_unfused("softmax", loss, target, 4);
        assert!(fused > 0.1, "{loss:?}: a nontrivial loss, got {fused}");
        assert_near(fused, unfused as f64, 1e-5, &format!("{loss:?}"));
        let diff = fused_grad.max_abs_diff(&explicit_grad);
        assert!(diff < 1e-5, "{loss:?}: kernel gradients differ by {diff}");
    }
}

#[test]
fn fused_sigmoid_cross_entropy_equals_the_loss_on_the_sigmoid_output() {
    let target = Tensor::from_vec(vec![6, 2], vec![1., 0., 0., 0., 1., 1., 0., 1., 1., 0., 0., 1.]).unwrap();
    let (fused, unfused, fused_grad, explicit_grad) = fused_and_unfused("sigmoid", BCE, &target, 2);
    assert!(fused > 0.1, "a nontrivial loss, got {fused}");
    assert_near(fused, unfused as f64, 1e-5, "bce");
    let diff = fused_grad.max_abs_diff(&explicit_grad);
    assert!(diff < 1e-5, "kernel gradients differ by {diff}");
}

#[test]
fn loss_names_resolve_like_keras() {
    let cases = [
        ("mse", Loss::MeanSquaredError),
        ("mean_squared_error", Loss::MeanSquaredError),
        ("MeanSquaredError", Loss::MeanSquaredError),
        ("mae", Loss::MeanAbsoluteError),
        ("mean_absolute_error", Loss::MeanAbsoluteError),
        ("binary_crossentropy", BCE),
        ("BinaryCrossentropy", BCE),
        ("categorical_crossentropy", CCE),
        ("sparse_categorical_crossentropy", SCCE),
        ("SparseCategoricalCrossentropy", SCCE),
    ];
    for (name, loss) in cases {
        assert_eq!(Loss::from_name(name).unwrap(), loss, "{name}");
        assert!(!loss.from_logits());
    }
    assert_eq!(SCCE.with_logits(), SCCE_LOGITS);
    assert_eq!(CCE.with_logits(), CCE_LOGITS);
    assert_eq!(BCE.with_logits(), BCE_LOGITS);
    assert_eq!(Loss::MeanSquaredError.with_logits(), Loss::MeanSquaredError);
    assert!(SCCE.sparse_targets() && !CCE.sparse_targets());
    for loss in [Loss::MeanSquaredError, BCE, CCE, SCCE] {
        assert_eq!(Loss::from_name(loss.name()).unwrap(), loss);
    }
}

/// Keras 3.15's values (`keras.losses.CategoricalCrossentropy(label_smoothing=0.2)(y_true,
/// y_pred)` and the like, computed in float32) for targets moved toward uniform: `y·(1 − ε) +
/// ε/K` over K classes, `y·(1 − ε) + ε/2` for binary targets.
#[test]
fn label_smoothing_gives_kerass_values() {
    let onehot = t2(2, 3, &[0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
    let probs = t2(2, 3, &[0.05, 0.95, 0.0, 0.1, 0.8, 0.1]);
    let logits = t2(2, 3, &[1.0, 2.0, -1.0, 0.5, -0.5, 2.5]);
    let binary = t2(2, 2, &[0.0, 1.0, 1.0, 0.0]);
    let binary_probs = t2(2, 2, &[0.6, 0.4, 0.3, 0.7]);
    let binary_logits = t2(2, 2, &[0.5, -1.0, 2.0, 0.25]);
    let smooth = |loss: Loss, epsilon| loss.with_label_smoothing(epsilon).unwrap();
    let cases = [
        (smooth(CCE, 0.2), &probs, &onehot, 1.7413325309753418),
        (smooth(CCE_LOGITS, 0.1), &logits, &onehot, 0.409429132938385),
        (smooth(BCE, 0.2), &binary_probs, &binary, 0.9974936842918396),
        (smooth(BCE_LOGITS, 0.3), &binary_logits, &binary, 0.8194265365600586),
    ];
    for (loss, prediction, target, keras) in cases {
        assert_near(loss_of(loss, prediction, target), keras, 1e-5, &format!("{loss:?}"));
    }
    // The softmax and sigmoid fusions smooth the same targets.
    let fused = loss_through(smooth(CCE, 0.1), &logits, &onehot, |g, x| g.softmax(x));
    assert_near(
        fused,
        0.409429132938385,
        1e-5,
        "softmax then smoothed categorical cross-entropy",
    );
    let fused = loss_through(smooth(BCE, 0.3), &binary_logits, &binary, |g, x| g.sigmoid(x));
    assert_near(
        fused,
        0.8194265365600586,
        1e-5,
        "sigmoid then smoothed binary cross-entropy",
    );
    // 0 changes nothing; the sparse loss has no smoothing (as in Keras); ε outside [0, 1] is refused.
    assert_eq!(smooth(CCE, 0.0), CCE);
    assert_eq!(SCCE.with_label_smoothing(0.0).unwrap(), SCCE);
    let error = SCCE.with_label_smoothing(0.1).unwrap_err().to_string();
    assert!(
        error.contains("sparse_categorical_crossentropy has no label smoothing"),
        "{error}"
    );
    assert!(CCE.with_label_smoothing(1.5).is_err() && CCE.with_label_smoothing(f32::NAN).is_err());
    // `from_logits` keeps the smoothing.
    assert_eq!(smooth(CCE, 0.1).with_logits().label_smoothing(), 0.1);
}

#[test]
fn evaluate_averages_the_loss_over_samples_not_batches() {
    // y = 2x + 1 fixed by hand; the MSE over 7 samples in uneven batches of 3, 3 and 1 must be
    // the plain mean over samples.
    let mut model = Sequential::new();
    model.add(Dense::new(1).input_shape(&[1]));
    model.compile("sgd", "mse", &[]).unwrap();
    let ids: Vec<_> = model.params().ids().collect();
    model.params_mut().value_mut(ids[0]).data_mut()[0] = 2.0;
    model.params_mut().value_mut(ids[1]).data_mut()[0] = 1.0;
    let xs = [0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0];
    let ys = [1.0f32, 3.5, 5.0, 6.0, 9.0, 11.0, 20.0];
    let x = Tensor::from_vec(vec![7, 1], xs.to_vec()).unwrap();
    let y = Tensor::from_vec(vec![7, 1], ys.to_vec()).unwrap();
    let expected = xs
        .iter()
        .zip(&ys)
        .map(|(&x, &y)| ((2.0 * x + 1.0 - y) as f64).powi(2))
        .sum::<f64>()
        / 7.0;
    for batch_size in [1, 3, 7, 32] {
        let scores = model.evaluate(&x, &y, batch_size).unwrap();
        assert_near(scores.loss, expected, 1e-6, &format!("batch {batch_size}"));
        assert!(scores.accuracy.is_none());
    }
    // The loss fit reports for an epoch with learning rate 0 is the same mean.
    model.optimizer_mut().unwrap().set_learning_rate(0.0);
    let history = model
        .fit(&x, &y, FitOptions::default().batch_size(3).verbose(0))
        .unwrap();
    assert_near(history.get("loss")[0], expected, 1e-6, "fit loss");
}

/// `--loss` takes Keras's call syntax with both settings, and says what is wrong otherwise.
#[test]
fn the_loss_flag_takes_label_smoothing() {
    let parsed = strata::run::loss_flag(Some("BinaryCrossentropy(from_logits=True, label_smoothing=0.25)"))
        .unwrap()
        .unwrap();
    assert_eq!(parsed, BCE_LOGITS.with_label_smoothing(0.25).unwrap());
    for (flag, says) in [
        (
            "SparseCategoricalCrossentropy(label_smoothing=0.1)",
            "has no label smoothing",
        ),
        ("CategoricalCrossentropy(label_smoothing=2)", "between 0 and 1"),
        ("CategoricalCrossentropy(label_smoothing=lots)", "takes a number"),
        ("CategoricalCrossentropy(axis=-1)", "not 'axis=-1'"),
    ] {
        let error = strata::run::loss_flag(Some(flag)).unwrap_err().to_string();
        assert!(error.contains(flag) && error.contains(says), "{flag}: {error}");
    }
}
