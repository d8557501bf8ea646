//! Finite-difference checks of every differentiable operation, loss and layer: the gradient
//! `Tape::backward` computes must match central differences of the forward pass.
//!
//! Inputs that meet a kink (relu, abs, leaky_relu, elu, clip) are kept at least 0.1 away from
//! it, so `x ± eps` never crosses it. Non-scalar results are reduced with a fixed random
//! weighting, `sum(y ⊙ w)`, so every output element contributes a different amount and a wrong
//! gradient cannot cancel out.

use strata::Result;
use strata::Tensor;
use strata::autograd::gradcheck::max_gradient_error;
use strata::autograd::{Graph, ParamId, ParamStore, Tape, UnaryOp, Var};
use strata::initializers::Initializer;
use strata::layers::{Dense, Flatten, Layer};
use strata::losses::Loss;
use strata::rng::Rng;

/// Step of the central differences.
const EPS: f32 = 1e-2;
/// Largest accepted error, relative to `max(1, |gradient|)`.
const TOLERANCE: f32 = 1e-2;

/// Values uniform in `[low, high)`.
fn uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
    let mut rng = Rng::new(seed);
    let n: usize = shape.iter().product();
    let data = (0..n).map(|_| rng.uniform(low, high)).collect();
    Tensor::from_vec(shape.to_vec(), data).unwrap()
}

/// Values with `0.1 ≤ |x| < 1` and random sign: clear of every kink at 0 for `EPS = 1e-2`.
fn away_from_zero(shape: &[usize], seed: u64) -> Tensor {
    let mut rng = Rng::new(seed ^ 0x5eed);
    let n: usize = shape.iter().product();
    let data = (0..n)
        .map(|_| {
            let magnitude = rng.uniform(0.1, 1.0);
            if rng.uniform(0.0, 1.0) < 0.5 {
                -magnitude
            } else {
                magnitude
            }
        })
        .collect();
    Tensor::from_vec(shape.to_vec(), data).unwrap()
}

/// `sum(y ⊙ w)` for a fixed random `w` shaped like `y`: a scalar whose gradient with respect to
/// `y` is `w`, so every element of `y` is checked with a distinct weight.
fn project(g: &mut Graph, y: Var, seed: u64) -> Result<Var> {
    let shape = g.shape(y).to_vec();
    let w = g.constant(&uniform(&shape, -1.0, 1.0, seed.wrapping_add(1000)));
    let weighted = g.mul(y, w)?;
    Ok(g.sum(weighted))
}

/// Runs the gradient check and fails with `what` when the worst error exceeds the tolerance.
fn assert_gradients(
    what: &str,
    params: &mut ParamStore,
    eps: f32,
    tolerance: f32,
    loss: impl Fn(&mut Graph) -> Result<Var>,
) {
    let error = max_gradient_error(params, eps, loss).unwrap();
    assert!(error < tolerance, "{what}: gradient error {error} exceeds {tolerance}");
}

/// The gradient `backward` writes for every parameter, after one pass of `loss`.
fn gradients(params: &mut ParamStore, loss: impl Fn(&mut Graph) -> Result<Var>) -> Result<Vec<Tensor>> {
    let mut tape = Tape::new();
    let out = {
        let mut g = Graph::new(&mut tape, params, true);
        loss(&mut g)?
    };
    tape.backward(out, params);
    Ok(params.ids().map(|id| params.grad(id).clone()).collect())
}

/// The value of `op` applied to `x`, read back from a graph.
fn forward_value(x: &Tensor, op: impl Fn(&mut Graph, Var) -> Result<Var>) -> Tensor {
    let params = ParamStore::new();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let x = g.constant(x);
    let y = op(&mut g, x).unwrap();
    g.value(y).clone()
}

fn assert_close(actual: &[f32], expected: &[f32], tolerance: f32, what: &str) {
    assert_eq!(actual.len(), expected.len(), "{what}: lengths differ");
    for (i, (a, e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            (a - e).abs() <= tolerance * 1f32.max(e.abs()),
            "{what}: element {i} is {a}, expected {e}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The checker itself
// ---------------------------------------------------------------------------------------------

#[test]
fn backward_of_sum_of_squares_is_two_w() {
    let mut params = ParamStore::new();
    let w = params.add("w", Tensor::from_slice(&[1.5, -2.0, 0.25, 3.0]), true);
    let loss = |g: &mut Graph| {
        let w = g.param(w);
        let s = g.square(w);
        Ok(g.sum(s))
    };
    let grads = gradients(&mut params, loss).unwrap();
    assert_eq!(grads[0].data(), &[3.0, -4.0, 0.5, 6.0]);
    // And the central difference of the same function agrees with it.
    assert_gradients("sum(square(w))", &mut params, EPS, 1e-3, loss);
}

#[test]
fn backward_of_hand_computed_matmul() {
    // L = sum(A·B ⊙ W): dA = W·Bᵀ, dB = Aᵀ·W.
    let mut params = ParamStore::new();
    let a = params.add("a", Tensor::from_vec(vec![2, 2], vec![1., 2., 3., 4.]).unwrap(), true);
    let b = params.add("b", Tensor::from_vec(vec![2, 2], vec![5., 6., 7., 8.]).unwrap(), true);
    let weights = Tensor::from_vec(vec![2, 2], vec![1., 0., 0., 2.]).unwrap();
    let grads = gradients(&mut params, |g| {
        let (a, b) = (g.param(a), g.param(b));
        let y = g.matmul(a, b)?;
        assert_eq!(g.value(y).data(), &[19., 22., 43., 50.]);
        let w = g.constant(&weights);
        let y = g.mul(y, w)?;
        Ok(g.sum(y))
    })
    .unwrap();
    assert_eq!(grads[0].data(), &[5., 7., 12., 16.]);
    assert_eq!(grads[1].data(), &[1., 6., 2., 8.]);
}

#[test]
fn a_parameter_used_twice_gets_both_contributions() {
    // sum(w · w) through two separate uses of w: gradient 2w, not w.
    let mut params = ParamStore::new();
    let w = params.add("w", Tensor::from_slice(&[0.5, -1.5, 2.0]), true);
    let loss = |g: &mut Graph| {
        let (a, b) = (g.param(w), g.param(w));
        let y = g.mul(a, b)?;
        Ok(g.sum(y))
    };
    assert_eq!(gradients(&mut params, loss).unwrap()[0].data(), &[1.0, -3.0, 4.0]);
    assert_gradients("w·w", &mut params, EPS, 1e-3, loss);
}

#[test]
fn a_dense_kernel_shared_by_two_calls_gets_both_contributions() {
    // sum(x₁·K) + sum(x₂·K): dK[i][u] = Σ_rows x₁[r][i] + Σ_rows x₂[r][i]. The first call's
    // backward rule overwrites the (not yet cleared) gradient, the second adds to it.
    let mut params = ParamStore::new();
    let x1 = Tensor::from_vec(vec![2, 3], vec![1., 2., 3., 4., 5., 6.]).unwrap();
    let x2 = Tensor::from_vec(vec![1, 3], vec![-1., 0.5, 2.]).unwrap();
    let kernel = params.add("k", uniform(&[3, 2], -1.0, 1.0, 7), true);
    let loss = |g: &mut Graph| {
        let (a, b) = (g.constant(&x1), g.constant(&x2));
        let k = g.param(kernel);
        let ya = g.linear(a, k, None)?;
        let k = g.param(kernel);
        let yb = g.linear(b, k, None)?;
        let (sa, sb) = (g.sum(ya), g.sum(yb));
        g.add(sa, sb)
    };
    for _ in 0..2 {
        // Twice: the second pass starts from the first pass's (stale) gradient buffer.
        let grads = gradients(&mut params, loss).unwrap();
        assert_eq!(grads[0].data(), &[4., 4., 7.5, 7.5, 11., 11.]);
    }
    assert_gradients("shared kernel", &mut params, EPS, TOLERANCE, loss);
}

#[test]
fn a_parameter_the_loss_does_not_reach_gets_zeros_not_a_stale_gradient() {
    let mut params = ParamStore::new();
    let w = params.add("w", Tensor::from_slice(&[1.0, 2.0]), true);
    let v = params.add("v", Tensor::from_slice(&[3.0, 4.0]), true);
    let grads = gradients(&mut params, |g| {
        let (w, v) = (g.param(w), g.param(v));
        let y = g.mul(w, v)?;
        Ok(g.sum(y))
    })
    .unwrap();
    assert_eq!(grads[1].data(), &[1.0, 2.0]);
    // Now `v` is recorded but the loss does not depend on it.
    let grads = gradients(&mut params, |g| {
        let (w, _unused) = (g.param(w), g.param(v));
        let y = g.square(w);
        Ok(g.sum(y))
    })
    .unwrap();
    assert_eq!(grads[0].data(), &[2.0, 4.0]);
    assert_eq!(grads[1].data(), &[0.0, 0.0]);
}

#[test]
fn gradients_are_recomputed_not_accumulated() {
    let mut params = ParamStore::new();
    let w = params.add("w", Tensor::from_slice(&[1.0, 2.0]), true);
    let loss = |g: &mut Graph| {
        let w = g.param(w);
        let s = g.square(w);
        Ok(g.sum(s))
    };
    let first = gradients(&mut params, loss).unwrap();
    let second = gradients(&mut params, loss).unwrap();
    assert_eq!(first, second);
    assert_eq!(second[0].data(), &[2.0, 4.0]);
}

#[test]
fn non_trainable_parameters_get_no_gradient() {
    let mut params = ParamStore::new();
    let w = params.add("w", Tensor::from_slice(&[1.0, 2.0]), true);
    let frozen = params.add("frozen", Tensor::from_slice(&[3.0, 4.0]), false);
    let grads = gradients(&mut params, |g| {
        let (w, f) = (g.param(w), g.param(frozen));
        let y = g.mul(w, f)?;
        Ok(g.sum(y))
    })
    .unwrap();
    assert_eq!(grads[0].data(), &[3.0, 4.0]);
    assert_eq!(grads[1].data(), &[0.0, 0.0]);
}

#[test]
fn the_checker_reports_a_gradient_that_disagrees_with_the_function() {
    // At a kink the backward rule picks one side while the central difference averages both:
    // relu'(0) is taken as 0, the difference quotient is 0.5. A checker that returned 0 here
    // would also miss a wrong backward rule.
    let mut params = ParamStore::new();
    params.add("x", Tensor::from_slice(&[0.0]), true);
    let id = params.ids().next().unwrap();
    let error = max_gradient_error(&mut params, EPS, |g| {
        let x = g.param(id);
        let y = g.relu(x);
        Ok(g.sum(y))
    })
    .unwrap();
    assert!((error - 0.5).abs() < 1e-3, "reported error {error}");

    // And a clip exactly at its bound: backward passes the gradient, the quotient halves it.
    let mut params = ParamStore::new();
    let x = params.add("x", Tensor::from_slice(&[1.0]), true);
    let error = max_gradient_error(&mut params, EPS, |g| {
        let x = g.param(x);
        let y = g.clip(x, -1.0, 1.0);
        Ok(g.sum(y))
    })
    .unwrap();
    assert!((error - 0.5).abs() < 1e-3, "reported error {error}");
}

// ---------------------------------------------------------------------------------------------
// Elementwise functions
// ---------------------------------------------------------------------------------------------

/// Every unary function with an input domain clear of its kinks and singularities.
fn unary_cases() -> Vec<(UnaryOp, Tensor)> {
    let shape = [3, 4];
    let general = |seed| away_from_zero(&shape, seed);
    let positive = |seed| uniform(&shape, 0.5, 2.0, seed);
    vec![
        (UnaryOp::Relu, general(1)),
        (UnaryOp::Sigmoid, uniform(&shape, -3.0, 3.0, 2)),
        (UnaryOp::Tanh, uniform(&shape, -2.0, 2.0, 3)),
        (UnaryOp::LeakyRelu(0.2), general(4)),
        (UnaryOp::Elu(1.0), general(5)),
        (UnaryOp::Gelu, uniform(&shape, -3.0, 3.0, 6)),
        (UnaryOp::GeluTanh, uniform(&shape, -3.0, 3.0, 18)),
        (UnaryOp::Exp, uniform(&shape, -2.0, 2.0, 7)),
        (UnaryOp::Log, positive(8)),
        (UnaryOp::Abs, general(9)),
        (UnaryOp::Square, uniform(&shape, -2.0, 2.0, 10)),
        (UnaryOp::Sqrt, positive(11)),
        (UnaryOp::Neg, uniform(&shape, -2.0, 2.0, 12)),
        (UnaryOp::Swish, uniform(&shape, -4.0, 4.0, 13)),
        (UnaryOp::Softplus, uniform(&shape, -4.0, 4.0, 14)),
        (UnaryOp::Selu, general(15)),
        (UnaryOp::Softsign, general(16)),
        (UnaryOp::Mish, uniform(&shape, -4.0, 4.0, 17)),
    ]
}

/// Inputs on every piece of the piecewise-linear functions (kinks at −3 and 3 for the hard
/// sigmoid and hard swish; 0.5 and 6 for the rectifier below), each at least 0.1 from a kink.
fn piecewise_input() -> Tensor {
    Tensor::from_slice(&[
        -4.5, -3.4, -2.9, -1.0, -0.2, 0.2, 0.4, 0.7, 2.2, 2.9, 3.1, 5.0, 5.8, 6.2, 8.0,
    ])
}

/// A rectifier with every argument away from its default, as Keras's `ReLU(6.0, 0.3, 0.5)`.
const RECTIFIER: UnaryOp = UnaryOp::Rectifier {
    max_value: 6.0,
    negative_slope: 0.3,
    threshold: 0.5,
};

#[test]
fn piecewise_linear_unary_ops_have_the_right_gradient_on_every_piece() {
    for op in [UnaryOp::HardSigmoid, UnaryOp::HardSwish, RECTIFIER] {
        let mut params = ParamStore::new();
        let x = params.add("x", piecewise_input(), true);
        assert_gradients(&format!("{op:?}"), &mut params, EPS, TOLERANCE, |g| {
            let x = g.param(x);
            let y = g.unary(op, x);
            project(g, y, 4)
        });
    }
}

#[test]
fn piecewise_linear_unary_ops_compute_keras_values() {
    let input = piecewise_input();
    type Reference = fn(f64) -> f64;
    let hard_sigmoid: Reference = |v| ((v + 3.0).clamp(0.0, 6.0)) / 6.0;
    let cases: [(UnaryOp, Reference); 3] = [
        (UnaryOp::HardSigmoid, hard_sigmoid),
        (UnaryOp::HardSwish, |v| v * ((v + 3.0).clamp(0.0, 6.0)) / 6.0),
        // Keras's ReLU formula: max_value at or above it, x above the threshold, the slope
        // below.
        (RECTIFIER, |v| {
            if v >= 6.0 {
                6.0
            } else if v > 0.5 {
                v
            } else {
                0.3 * (v - 0.5)
            }
        }),
    ];
    for (op, reference) in cases {
        let got = forward_value(&input, |g, x| Ok(g.unary(op, x)));
        let expected: Vec<f32> = input.data().iter().map(|&v| reference(f64::from(v)) as f32).collect();
        assert_close(got.data(), &expected, 1e-6, &format!("{op:?}"));
    }
    // The examples of Keras's ReLU docstring: x = [-10, -5, 0, 5, 10].
    let x = Tensor::from_slice(&[-10.0, -5.0, 0.0, 5.0, 10.0]);
    let relu = |max_value: f32, negative_slope: f32, threshold: f32| UnaryOp::Rectifier {
        max_value,
        negative_slope,
        threshold,
    };
    for (op, expected) in [
        (relu(f32::INFINITY, 0.5, 0.0), [-5.0, -2.5, 0.0, 5.0, 10.0]),
        (relu(5.0, 0.0, 0.0), [0.0, 0.0, 0.0, 5.0, 5.0]),
        (relu(f32::INFINITY, 0.0, 5.0), [0.0, 0.0, 0.0, 0.0, 10.0]),
        (relu(10.0, 0.5, 0.0), [-5.0, -2.5, 0.0, 5.0, 10.0]),
    ] {
        let got = forward_value(&x, |g, x| Ok(g.unary(op, x)));
        assert_eq!(got.data(), &expected, "{op:?}");
    }
}

#[test]
fn every_unary_op_has_the_right_gradient() {
    for (op, input) in unary_cases() {
        let mut params = ParamStore::new();
        let x = params.add("x", input, true);
        assert_gradients(&format!("{op:?}"), &mut params, EPS, TOLERANCE, |g| {
            let x = g.param(x);
            let y = g.unary(op, x);
            project(g, y, 1)
        });
    }
}

#[test]
fn every_unary_op_has_the_right_gradient_on_both_sides_of_its_kink() {
    // Negative inputs of leaky_relu and elu, with a slope other than the default.
    for op in [UnaryOp::Relu, UnaryOp::LeakyRelu(0.01), UnaryOp::Elu(0.5), UnaryOp::Abs] {
        for sign in [-1.0, 1.0] {
            let mut params = ParamStore::new();
            let x = params.add("x", uniform(&[5], 0.1, 1.5, 3).map(|v| sign * v), true);
            assert_gradients(&format!("{op:?} x{sign}"), &mut params, EPS, TOLERANCE, |g| {
                let x = g.param(x);
                let y = g.unary(op, x);
                project(g, y, 2)
            });
        }
    }
}

#[test]
fn unary_ops_compute_their_textbook_values() {
    let x = [-2.0f64, -0.5, 0.3, 1.7];
    type Reference = fn(f64) -> f64;
    let cases: Vec<(UnaryOp, Reference)> = vec![
        (UnaryOp::Relu, |v: f64| v.max(0.0)),
        (UnaryOp::Sigmoid, |v: f64| 1.0 / (1.0 + (-v).exp())),
        (UnaryOp::Tanh, f64::tanh),
        (UnaryOp::LeakyRelu(0.2), |v: f64| if v >= 0.0 { v } else { 0.2 * v }),
        (UnaryOp::Elu(1.0), |v: f64| if v > 0.0 { v } else { v.exp() - 1.0 }),
        (UnaryOp::Gelu, |v: f64| 0.5 * v * (1.0 + libm::erf(v / 2f64.sqrt()))),
        (UnaryOp::GeluTanh, |v: f64| {
            let inner = (2.0 / std::f64::consts::PI).sqrt() * (v + 0.044715 * v.powi(3));
            0.5 * v * (1.0 + inner.tanh())
        }),
        (UnaryOp::Exp, f64::exp),
        (UnaryOp::Abs, f64::abs),
        (UnaryOp::Square, |v: f64| v * v),
        (UnaryOp::Neg, |v: f64| -v),
        (UnaryOp::Swish, |v: f64| v / (1.0 + (-v).exp())),
        (UnaryOp::Softplus, |v: f64| v.exp().ln_1p()),
        // Keras's constants: alpha = 1.67326324, scale = 1.05070098.
        (UnaryOp::Selu, |v: f64| {
            1.05070098 * if v > 0.0 { v } else { 1.67326324 * v.exp_m1() }
        }),
        (UnaryOp::Softsign, |v: f64| v / (1.0 + v.abs())),
        (UnaryOp::Mish, |v: f64| v * v.exp().ln_1p().tanh()),
    ];
    let input = Tensor::from_slice(&x.map(|v| v as f32));
    for (op, reference) in cases {
        let got = forward_value(&input, |g, x| Ok(g.unary(op, x)));
        let expected: Vec<f32> = x.iter().map(|&v| reference(v) as f32).collect();
        assert_close(got.data(), &expected, 1e-5, &format!("{op:?}"));
    }
    let positive = [0.25f64, 1.0, 4.0];
    let input = Tensor::from_slice(&positive.map(|v| v as f32));
    for (op, reference) in [(UnaryOp::Log, f64::ln as fn(f64) -> f64), (UnaryOp::Sqrt, f64::sqrt)] {
        let got = forward_value(&input, |g, x| Ok(g.unary(op, x)));
        let expected: Vec<f32> = positive.iter().map(|&v| reference(v) as f32).collect();
        assert_close(got.data(), &expected, 1e-6, &format!("{op:?}"));
    }
}

#[test]
fn named_elementwise_methods_match_their_unary_ops() {
    type Named = fn(&mut Graph, Var) -> Var;
    let cases: [(&str, Named, UnaryOp); 7] = [
        ("relu", |g, x| g.relu(x), UnaryOp::Relu),
        ("sigmoid", |g, x| g.sigmoid(x), UnaryOp::Sigmoid),
        ("tanh", |g, x| g.tanh(x), UnaryOp::Tanh),
        ("exp", |g, x| g.exp(x), UnaryOp::Exp),
        ("log", |g, x| g.log(x), UnaryOp::Log),
        ("square", |g, x| g.square(x), UnaryOp::Square),
        ("abs", |g, x| g.abs(x), UnaryOp::Abs),
    ];
    for (name, method, op) in cases {
        let input = if name == "log" {
            uniform(&[2, 3], 0.5, 2.0, 20)
        } else {
            away_from_zero(&[2, 3], 20)
        };
        let named = forward_value(&input, |g, x| Ok(method(g, x)));
        let unary = forward_value(&input, |g, x| Ok(g.unary(op, x)));
        assert_eq!(named, unary, "{name}");
        let mut params = ParamStore::new();
        let x = params.add("x", input, true);
        assert_gradients(name, &mut params, EPS, TOLERANCE, |g| {
            let x = g.param(x);
            let y = method(g, x);
            project(g, y, 3)
        });
    }
}

#[test]
fn scale_clip_reshape_sum_and_mean() {
    let mut params = ParamStore::new();
    let x = params.add("x", uniform(&[3, 4], -2.0, 2.0, 30), true);
    assert_gradients("scale", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = g.scale(x, -2.5);
        project(g, y, 4)
    });
    assert_gradients("reshape", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = g.reshape(x, &[2, 6])?;
        assert_eq!(g.shape(y), &[2, 6]);
        project(g, y, 5)
    });
    assert_gradients("sum", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = g.square(x);
        Ok(g.sum(y))
    });
    assert_gradients("mean", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = g.square(x);
        Ok(g.mean(y))
    });

    // Clip: values inside and outside [-0.5, 0.5], none within 0.1 of a bound.
    let values = [-1.2, -0.7, -0.3, 0.0, 0.2, 0.35, 0.8, 1.5];
    let mut params = ParamStore::new();
    let x = params.add("x", Tensor::from_slice(&values), true);
    assert_gradients("clip", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = g.clip(x, -0.5, 0.5);
        project(g, y, 6)
    });
    let clipped = forward_value(&Tensor::from_slice(&values), |g, x| Ok(g.clip(x, -0.5, 0.5)));
    assert_eq!(clipped.data(), &[-0.5, -0.5, -0.3, 0.0, 0.2, 0.35, 0.5, 0.5]);
    let grads = gradients(&mut params, |g| {
        let x = g.param(x);
        let y = g.clip(x, -0.5, 0.5);
        Ok(g.sum(y))
    })
    .unwrap();
    assert_eq!(grads[0].data(), &[0., 0., 1., 1., 1., 1., 0., 0.]);
}

#[test]
fn slice_and_select_pick_blocks_and_return_their_gradients() {
    let mut params = ParamStore::new();
    let x = params.add("x", uniform(&[2, 4, 3], -2.0, 2.0, 31), true);
    assert_gradients("slice", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = g.slice(x, 1, 1, 2)?;
        assert_eq!(g.shape(y), &[2, 2, 3]);
        project(g, y, 7)
    });
    assert_gradients("select", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = g.select(x, 1, 3)?;
        assert_eq!(g.shape(y), &[2, 3]);
        project(g, y, 8)
    });
    let values = Tensor::from_vec(vec![2, 3, 2], (0..12).map(|v| v as f32).collect()).unwrap();
    let middle = forward_value(&values, |g, x| g.slice(x, 1, 1, 2));
    assert_eq!(middle.data(), &[2., 3., 4., 5., 8., 9., 10., 11.]);
    let last_column = forward_value(&values, |g, x| g.select(x, 2, 1));
    assert_eq!(last_column.data(), &[1., 3., 5., 7., 9., 11.]);
    // Out of range: an error naming both, not a panic.
    let params = ParamStore::new();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let x = g.constant(&values);
    assert!(g.slice(x, 1, 2, 2).is_err());
    assert!(g.select(x, 3, 0).is_err());
    assert!(g.slice(x, 1, usize::MAX, 2).is_err());
}

// ---------------------------------------------------------------------------------------------
// Broadcasting binary operations
// ---------------------------------------------------------------------------------------------

type Binary = fn(&mut Graph, Var, Var) -> Result<Var>;

fn binary_ops() -> [(&'static str, Binary); 4] {
    [
        ("add", |g, a, b| g.add(a, b)),
        ("sub", |g, a, b| g.sub(a, b)),
        ("mul", |g, a, b| g.mul(a, b)),
        ("div", |g, a, b| g.div(a, b)),
    ]
}

const BROADCAST_SHAPES: [(&[usize], &[usize]); 8] = [
    (&[3, 4], &[3, 4]),
    (&[3, 4], &[4]),
    (&[4], &[3, 4]),
    (&[2, 1, 3], &[4, 1]),
    (&[3, 1], &[1, 4]),
    (&[2, 3, 4], &[3, 1]),
    (&[5], &[1]),
    (&[2, 3], &[]),
];

#[test]
fn broadcast_binary_ops_have_the_right_gradient_for_both_operands() {
    for (name, op) in binary_ops() {
        for (seed, (sa, sb)) in BROADCAST_SHAPES.iter().enumerate() {
            let seed = seed as u64;
            let mut params = ParamStore::new();
            let a = params.add("a", uniform(sa, -2.0, 2.0, seed), true);
            // Denominators stay at least 0.5 away from zero.
            let b = params.add("b", away_from_zero(sb, seed + 50).map(|v| v * 2.0), true);
            let what = format!("{name} {sa:?} {sb:?}");
            assert_gradients(&what, &mut params, EPS, TOLERANCE, |g| {
                let (a, b) = (g.param(a), g.param(b));
                let y = op(g, a, b)?;
                project(g, y, seed)
            });
        }
    }
}

/// An intermediate value read by several same-shape operations, and by both operands of one:
/// the first backward rule to reach it writes its gradient, the later ones add to it (for
/// `+` and `−` a copy, for `·` one product per operand).
#[test]
fn same_shape_binary_ops_write_then_add_the_gradient_of_a_shared_value() {
    for (name, op) in binary_ops() {
        let mut params = ParamStore::new();
        let w = params.add("w", away_from_zero(&[3, 4], 70), true);
        let x = params.add("x", away_from_zero(&[3, 4], 71).map(|v| v * 2.0), true);
        assert_gradients(&format!("shared {name}"), &mut params, EPS, TOLERANCE, |g| {
            let (w, x) = (g.param(w), g.param(x));
            let shared = g.square(w);
            let first = op(g, shared, x)?;
            let second = op(g, x, shared)?;
            let both = op(g, shared, shared)?;
            let (first, second) = (project(g, first, 72)?, project(g, second, 73)?);
            let both = project(g, both, 74)?;
            let sum = g.add(first, second)?;
            g.add(sum, both)
        });
    }
}

#[test]
fn broadcast_binary_ops_compute_numpy_values() {
    // (2,1,3) ∘ (4,1) → (2,4,3): out[i,j,k] = a[i,0,k] ∘ b[j,0].
    let a = uniform(&[2, 1, 3], -2.0, 2.0, 60);
    let b = away_from_zero(&[4, 1], 61);
    let reference: [fn(f32, f32) -> f32; 4] = [|x, y| x + y, |x, y| x - y, |x, y| x * y, |x, y| x / y];
    for ((name, op), reference) in binary_ops().into_iter().zip(reference) {
        let params = ParamStore::new();
        let mut tape = Tape::new();
        let mut g = Graph::new(&mut tape, &params, false);
        let (va, vb) = (g.constant(&a), g.constant(&b));
        let y = op(&mut g, va, vb).unwrap();
        assert_eq!(g.shape(y), &[2, 4, 3], "{name}");
        let mut expected = Vec::new();
        for i in 0..2 {
            for j in 0..4 {
                for k in 0..3 {
                    expected.push(reference(a.data()[i * 3 + k], b.data()[j]));
                }
            }
        }
        assert_close(g.value(y).data(), &expected, 1e-6, name);
    }
}

#[test]
fn incompatible_shapes_are_a_shape_error() {
    let params = ParamStore::new();
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let a = g.constant(&Tensor::zeros(&[3, 4]));
    let b = g.constant(&Tensor::zeros(&[3]));
    for (name, op) in binary_ops() {
        assert!(
            matches!(op(&mut g, a, b), Err(strata::Error::ShapeMismatch { .. })),
            "{name}"
        );
    }
    assert!(matches!(
        g.matmul(a, a),
        Err(strata::Error::ShapeMismatch { op: "matmul", .. })
    ));
    assert!(matches!(
        g.reshape(a, &[5, 2]),
        Err(strata::Error::ShapeMismatch { .. })
    ));
}

// ---------------------------------------------------------------------------------------------
// Matrix products
// ---------------------------------------------------------------------------------------------

#[test]
fn matmul_has_the_right_gradient_on_random_shapes() {
    let mut rng = Rng::new(70);
    for seed in 0..12u64 {
        let (m, k, n) = (1 + rng.below(5), 1 + rng.below(5), 1 + rng.below(5));
        let mut params = ParamStore::new();
        let a = params.add("a", uniform(&[m, k], -1.0, 1.0, seed), true);
        let b = params.add("b", uniform(&[k, n], -1.0, 1.0, seed + 100), true);
        assert_gradients(&format!("matmul {m}x{k}·{k}x{n}"), &mut params, EPS, TOLERANCE, |g| {
            let (a, b) = (g.param(a), g.param(b));
            let y = g.matmul(a, b)?;
            assert_eq!(g.shape(y), &[m, n]);
            project(g, y, seed)
        });
    }
}

#[test]
fn linear_has_the_right_gradient_with_and_without_bias() {
    let mut rng = Rng::new(80);
    for seed in 0..12u64 {
        let (rows, inner, units) = (1 + rng.below(5), 1 + rng.below(6), 1 + rng.below(5));
        // Every other case feeds a 3-D input (..., inner), which linear maps over its last axis.
        let x_shape = if seed % 2 == 0 {
            vec![rows, inner]
        } else {
            vec![2, rows, inner]
        };
        for with_bias in [false, true] {
            let mut params = ParamStore::new();
            let x = params.add("x", uniform(&x_shape, -1.0, 1.0, seed), true);
            let kernel = params.add("k", uniform(&[inner, units], -1.0, 1.0, seed + 1), true);
            let bias = params.add("b", uniform(&[units], -1.0, 1.0, seed + 2), true);
            let what = format!("linear {x_shape:?}·({inner},{units}) bias={with_bias}");
            assert_gradients(&what, &mut params, EPS, TOLERANCE, |g| {
                let (xv, kv) = (g.param(x), g.param(kernel));
                let bv = with_bias.then(|| g.param(bias));
                let y = g.linear(xv, kv, bv)?;
                project(g, y, seed)
            });
            // And its value is x·kernel (+ bias).
            let params_ref = &params;
            let mut tape = Tape::new();
            let mut g = Graph::new(&mut tape, params_ref, false);
            let (xv, kv) = (g.param(x), g.param(kernel));
            let bv = with_bias.then(|| g.param(bias));
            let y = g.linear(xv, kv, bv).unwrap();
            let (xd, kd, bd) = (
                params_ref.value(x).data(),
                params_ref.value(kernel).data(),
                params_ref.value(bias).data(),
            );
            let total_rows = xd.len() / inner;
            let mut expected = vec![0.0f32; total_rows * units];
            for r in 0..total_rows {
                for u in 0..units {
                    let dot: f32 = (0..inner).map(|i| xd[r * inner + i] * kd[i * units + u]).sum();
                    expected[r * units + u] = dot + if with_bias { bd[u] } else { 0.0 };
                }
            }
            assert_close(g.value(y).data(), &expected, 1e-5, &what);
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Softmax and cross-entropies
// ---------------------------------------------------------------------------------------------

#[test]
fn softmax_and_log_softmax_have_the_right_gradient() {
    for (seed, shape) in [&[4usize, 5][..], &[1, 3], &[2, 3, 4], &[6]].iter().enumerate() {
        let seed = seed as u64;
        let mut params = ParamStore::new();
        let x = params.add("x", uniform(shape, -3.0, 3.0, seed), true);
        assert_gradients(&format!("softmax {shape:?}"), &mut params, EPS, TOLERANCE, |g| {
            let x = g.param(x);
            let y = g.softmax(x);
            project(g, y, seed)
        });
        assert_gradients(&format!("log_softmax {shape:?}"), &mut params, EPS, TOLERANCE, |g| {
            let x = g.param(x);
            let y = g.log_softmax(x);
            project(g, y, seed)
        });
    }
}

#[test]
fn softmax_values_sum_to_one_and_match_log_softmax() {
    let x = uniform(&[3, 5], -4.0, 4.0, 90);
    let probs = forward_value(&x, |g, x| Ok(g.softmax(x)));
    let log_probs = forward_value(&x, |g, x| Ok(g.log_softmax(x)));
    for (row, p) in probs.data().chunks(5).enumerate() {
        let total: f32 = p.iter().sum();
        assert!((total - 1.0).abs() < 1e-6, "row {row} sums to {total}");
        let xs = &x.data()[row * 5..(row + 1) * 5];
        let norm: f64 = xs.iter().map(|&v| (v as f64).exp()).sum();
        let expected: Vec<f32> = xs.iter().map(|&v| ((v as f64).exp() / norm) as f32).collect();
        assert_close(p, &expected, 1e-5, "softmax");
    }
    let exp_log: Vec<f32> = log_probs.data().iter().map(|v| v.exp()).collect();
    assert_close(&exp_log, probs.data(), 1e-5, "exp(log_softmax)");
}

fn one_hot(labels: &[usize], classes: usize) -> Tensor {
    let mut t = Tensor::zeros(&[labels.len(), classes]);
    for (row, &label) in labels.iter().enumerate() {
        t.data_mut()[row * classes + label] = 1.0;
    }
    t
}

fn labels_tensor(labels: &[usize]) -> Tensor {
    Tensor::from_slice(&labels.iter().map(|&l| l as f32).collect::<Vec<_>>())
}

const LABELS: [usize; 4] = [2, 0, 4, 1];

#[test]
fn softmax_cross_entropy_has_the_right_gradient() {
    let onehot = one_hot(&LABELS, 5);
    // Soft targets (rows of probabilities) use the same one-hot code path.
    let soft = uniform(&[4, 5], 0.1, 1.0, 101);
    let soft = {
        let mut s = soft.clone();
        for row in s.data_mut().chunks_mut(5) {
            let total: f32 = row.iter().sum();
            row.iter_mut().for_each(|v| *v /= total);
        }
        s
    };
    let sparse = labels_tensor(&LABELS);
    for (what, target, is_sparse) in [
        ("sparse", &sparse, true),
        ("one-hot", &onehot, false),
        ("soft", &soft, false),
    ] {
        let mut params = ParamStore::new();
        let logits = params.add("logits", uniform(&[4, 5], -3.0, 3.0, 100), true);
        assert_gradients(
            &format!("softmax_cross_entropy {what}"),
            &mut params,
            EPS,
            TOLERANCE,
            |g| {
                let (x, t) = (g.param(logits), g.constant(target));
                let loss = g.softmax_cross_entropy(x, t, is_sparse)?;
                // Scaled so a wrong 1/rows factor stands out against the tolerance.
                Ok(g.scale(loss, 10.0))
            },
        );
    }
}

#[test]
fn sigmoid_cross_entropy_has_the_right_gradient() {
    let mut params = ParamStore::new();
    let logits = params.add("logits", uniform(&[3, 4], -4.0, 4.0, 110), true);
    let mut target = uniform(&[3, 4], 0.0, 1.0, 111);
    target.data_mut()[..4].copy_from_slice(&[0.0, 1.0, 1.0, 0.0]);
    assert_gradients("sigmoid_cross_entropy", &mut params, EPS, TOLERANCE, |g| {
        let (x, t) = (g.param(logits), g.constant(&target));
        let loss = g.sigmoid_cross_entropy(x, t)?;
        Ok(g.scale(loss, 10.0))
    });
}

#[test]
fn cross_entropy_on_probabilities_has_the_right_gradient() {
    // Probabilities well inside (1e-7, 1 − 1e-7), where Keras's clipping is inactive.
    let onehot = one_hot(&LABELS, 5);
    let sparse = labels_tensor(&LABELS);
    for (what, target, is_sparse) in [("sparse", &sparse, true), ("one-hot", &onehot, false)] {
        let mut params = ParamStore::new();
        let probs = params.add("p", uniform(&[4, 5], 0.2, 0.9, 120), true);
        assert_gradients(&format!("cross_entropy {what}"), &mut params, 1e-3, TOLERANCE, |g| {
            let (p, t) = (g.param(probs), g.constant(target));
            g.cross_entropy(p, t, is_sparse)
        });
    }
    // Composed with an explicit softmax (the unfused path), back to the logits.
    for (what, target, is_sparse) in [("sparse", &sparse, true), ("one-hot", &onehot, false)] {
        let mut params = ParamStore::new();
        let logits = params.add("logits", uniform(&[4, 5], -2.0, 2.0, 121), true);
        assert_gradients(
            &format!("cross_entropy(softmax) {what}"),
            &mut params,
            EPS,
            TOLERANCE,
            |g| {
                let x = g.param(logits);
                let p = g.softmax(x);
                let t = g.constant(target);
                let loss = g.cross_entropy(p, t, is_sparse)?;
                Ok(g.scale(loss, 10.0))
            },
        );
    }
}

#[test]
fn binary_cross_entropy_on_probabilities_has_the_right_gradient() {
    let mut params = ParamStore::new();
    let probs = params.add("p", uniform(&[3, 4], 0.15, 0.85, 130), true);
    let target = uniform(&[3, 4], 0.0, 1.0, 131).map(|v| v.round());
    assert_gradients("binary_cross_entropy", &mut params, 1e-3, TOLERANCE, |g| {
        let (p, t) = (g.param(probs), g.constant(&target));
        let loss = g.binary_cross_entropy(p, t)?;
        Ok(g.scale(loss, 10.0))
    });
}

#[test]
fn every_loss_through_loss_compute_has_the_right_gradient() {
    let shape = [4, 3];
    let target = uniform(&shape, -1.0, 1.0, 140);
    // MAE's |output − target| kink is avoided by keeping output − target away from zero.
    let mae_output = {
        let offset = away_from_zero(&shape, 141);
        let mut out = target.clone();
        out.data_mut().iter_mut().zip(offset.data()).for_each(|(o, d)| *o += d);
        out
    };
    let binary_target = uniform(&shape, 0.0, 1.0, 142).map(|v| v.round());
    let onehot = one_hot(&[1, 0, 2, 2], 3);
    let sparse = labels_tensor(&[1, 0, 2, 2]);

    // (loss, prediction, target, how the model output is produced)
    #[derive(Clone, Copy)]
    enum Head {
        Identity,
        Sigmoid,
        Softmax,
    }
    let ce = |from_logits| Loss::CategoricalCrossentropy {
        from_logits,
        label_smoothing: 0.0,
    };
    let sce = |from_logits| Loss::SparseCategoricalCrossentropy { from_logits };
    let bce = |from_logits| Loss::BinaryCrossentropy {
        from_logits,
        label_smoothing: 0.0,
    };
    let logits = uniform(&shape, -2.0, 2.0, 143);
    let probs = uniform(&shape, 0.2, 0.8, 144);
    let cases: Vec<(Loss, &Tensor, &Tensor, Head, f32)> = vec![
        (Loss::MeanSquaredError, &logits, &target, Head::Identity, EPS),
        (Loss::MeanAbsoluteError, &mae_output, &target, Head::Identity, EPS),
        (bce(false), &probs, &binary_target, Head::Identity, 1e-3),
        (bce(false), &logits, &binary_target, Head::Sigmoid, EPS),
        (bce(true), &logits, &binary_target, Head::Identity, EPS),
        (ce(false), &probs, &onehot, Head::Identity, 1e-3),
        (ce(false), &logits, &onehot, Head::Softmax, EPS),
        (ce(true), &logits, &onehot, Head::Identity, EPS),
        (sce(false), &probs, &sparse, Head::Identity, 1e-3),
        (sce(false), &logits, &sparse, Head::Softmax, EPS),
        (sce(true), &logits, &sparse, Head::Identity, EPS),
        // Label smoothing moves the targets; the gradient flows to the prediction only.
        (
            bce(false).with_label_smoothing(0.2).unwrap(),
            &probs,
            &binary_target,
            Head::Identity,
            1e-3,
        ),
        (
            bce(true).with_label_smoothing(0.3).unwrap(),
            &logits,
            &binary_target,
            Head::Identity,
            EPS,
        ),
        (
            ce(false).with_label_smoothing(0.2).unwrap(),
            &logits,
            &onehot,
            Head::Softmax,
            EPS,
        ),
        (
            ce(true).with_label_smoothing(0.1).unwrap(),
            &logits,
            &onehot,
            Head::Identity,
            EPS,
        ),
    ];
    for (loss, prediction, target, head, eps) in cases {
        let mut params = ParamStore::new();
        let p = params.add("prediction", prediction.clone(), true);
        let what = format!(
            "{loss:?} on {}",
            match head {
                Head::Identity => "the prediction",
                Head::Sigmoid => "sigmoid(logits)",
                Head::Softmax => "softmax(logits)",
            }
        );
        assert_gradients(&what, &mut params, eps, TOLERANCE, |g| {
            let x = g.param(p);
            let output = match head {
                Head::Identity => x,
                Head::Sigmoid => g.sigmoid(x),
                Head::Softmax => g.softmax(x),
            };
            let t = g.constant(target);
            let value = loss.compute(g, output, t)?;
            Ok(g.scale(value, 10.0))
        });
    }
}

// ---------------------------------------------------------------------------------------------
// Layers
// ---------------------------------------------------------------------------------------------

/// Builds a Dense layer with a random bias and an input `x` such that every pre-activation is
/// at least 0.1 away from every kink of the activations (0, ±3, 6); returns the layer and x's id.
fn dense_clear_of_kinks(
    activation: &str,
    input_width: usize,
    units: usize,
    rows: usize,
    params: &mut ParamStore,
) -> (Dense, ParamId) {
    for seed in 0..1000u64 {
        let mut candidate = ParamStore::new();
        let mut layer = Dense::new(units)
            .activation(activation)
            .bias_initializer(Initializer::RandomUniform {
                minval: -0.5,
                maxval: 0.5,
            });
        layer.set_name("dense".into());
        let shape = layer
            .build_one(&[input_width], &mut candidate, &mut Rng::new(seed))
            .unwrap();
        assert_eq!(shape, vec![units]);
        let x = away_from_zero(&[rows, input_width], seed);
        let kernel = candidate.value(layer.kernel().unwrap()).data();
        let bias = candidate.value(layer.bias().unwrap()).data();
        let clear = (0..rows).all(|r| {
            (0..units).all(|u| {
                let z: f32 = (0..input_width)
                    .map(|i| x.data()[r * input_width + i] * kernel[i * units + u])
                    .sum::<f32>()
                    + bias[u];
                // Kinks: 0 (relu, elu, ...), ±3 (hard_sigmoid, hard_silu), 6 (relu6).
                [0.0, 3.0, -3.0, 6.0].iter().all(|kink| (z - kink).abs() > 0.1)
            })
        });
        if clear {
            *params = candidate;
            let x = params.add("x", x, true);
            return (layer, x);
        }
    }
    panic!("no seed gives pre-activations clear of zero");
}

#[test]
fn dense_with_every_activation_has_the_right_gradient() {
    for activation in [
        "linear",
        "relu",
        "sigmoid",
        "tanh",
        "softmax",
        "leaky_relu",
        "elu",
        "gelu",
        "gelu_approximate",
        "log_softmax",
        "relu6",
        "silu",
        "hard_sigmoid",
        "hard_silu",
        "softplus",
        "selu",
        "softsign",
        "exponential",
        "mish",
    ] {
        let mut params = ParamStore::new();
        let (layer, x) = dense_clear_of_kinks(activation, 5, 4, 3, &mut params);
        // Kernel, bias and input are all checked.
        assert_eq!(params.len(), 3);
        assert_gradients(&format!("Dense({activation})"), &mut params, EPS, TOLERANCE, |g| {
            let x = g.param(x);
            let y = layer.forward_one(g, x)?;
            assert_eq!(g.shape(y), &[3, 4]);
            project(g, y, 7)
        });
    }
}

#[test]
fn dense_without_bias_has_the_right_gradient() {
    let mut params = ParamStore::new();
    let mut layer = Dense::new(3).activation("tanh").use_bias(false);
    layer.set_name("dense".into());
    layer.build_one(&[4], &mut params, &mut Rng::new(1)).unwrap();
    assert!(layer.bias().is_none());
    let x = params.add("x", uniform(&[2, 4], -1.0, 1.0, 150), true);
    assert_gradients("Dense(no bias)", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = layer.forward_one(g, x)?;
        project(g, y, 8)
    });
}

/// Dense on each pixel of an image (the kernel on the last axis of a rank-4 batch).
#[test]
fn dense_on_images_has_the_right_gradient() {
    let mut params = ParamStore::new();
    let mut layer = Dense::new(3).activation("tanh");
    layer.set_name("dense".into());
    layer.build_one(&[2, 3, 4], &mut params, &mut Rng::new(2)).unwrap();
    let x = params.add("x", uniform(&[2, 2, 3, 4], -1.0, 1.0, 151), true);
    assert_gradients("Dense on images", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let y = layer.forward_one(g, x)?;
        assert_eq!(g.shape(y), [2, 2, 3, 3]);
        project(g, y, 9)
    });
}

#[test]
fn flatten_then_dense_has_the_right_gradient() {
    let mut params = ParamStore::new();
    let mut rng = Rng::new(3);
    let mut flatten = Flatten::new();
    flatten.set_name("flatten".into());
    let flat = flatten.build_one(&[3, 4], &mut params, &mut rng).unwrap();
    assert_eq!(flat, vec![12]);
    let mut dense = Dense::new(5)
        .activation("tanh")
        .bias_initializer(Initializer::RandomUniform {
            minval: -0.5,
            maxval: 0.5,
        });
    dense.set_name("dense".into());
    dense.build_one(&flat, &mut params, &mut rng).unwrap();
    let x = params.add("x", uniform(&[2, 3, 4], -1.0, 1.0, 160), true);
    assert_gradients("Flatten → Dense", &mut params, EPS, TOLERANCE, |g| {
        let x = g.param(x);
        let h = flatten.forward_one(g, x)?;
        assert_eq!(g.shape(h), &[2, 12]);
        let y = dense.forward_one(g, h)?;
        project(g, y, 9)
    });
    // Flatten keeps row-major order: sample 1's values follow each other unchanged.
    let input = uniform(&[2, 3, 4], -1.0, 1.0, 161);
    let flat = forward_value(&input, |g, x| flatten.forward_one(g, x));
    assert_eq!(flat.shape(), &[2, 12]);
    assert_eq!(flat.data(), input.data());
}

#[test]
fn a_two_layer_network_with_a_loss_has_the_right_gradient() {
    // Dense(relu) → Dense(softmax) → sparse cross-entropy: the training path end to end
    // (the loss sees the softmax and fuses it with the cross-entropy).
    let mut params = ParamStore::new();
    let (hidden, x) = dense_clear_of_kinks("relu", 4, 6, 3, &mut params);
    let mut out = Dense::new(3).activation("softmax");
    out.set_name("dense_1".into());
    out.build_one(&[6], &mut params, &mut Rng::new(11)).unwrap();
    let labels = labels_tensor(&[2, 0, 1]);
    let loss = Loss::from_name("sparse_categorical_crossentropy").unwrap();
    assert_gradients("MLP + sparse CE", &mut params, EPS, TOLERANCE, |g| {
        let xv = g.param(x);
        let h = hidden.forward_one(g, xv)?;
        let y = out.forward_one(g, h)?;
        let t = g.constant(&labels);
        let value = loss.compute(g, y, t)?;
        Ok(g.scale(value, 10.0))
    });
}

#[test]
fn activation_aliases_read_as_keras_3_names() {
    use strata::activations::Activation;
    for (alias, keras_name) in [("swish", "silu"), ("hard_swish", "hard_silu"), ("relu6", "relu6")] {
        assert_eq!(Activation::from_name(alias).unwrap().name(), keras_name);
        assert_eq!(Activation::from_name(keras_name).unwrap().name(), keras_name);
    }
}

#[test]
fn every_activation_name_reads_back_and_log_softmax_is_the_log_of_softmax() {
    use strata::activations::{Activation, NAMES};
    for &name in NAMES {
        let activation = Activation::from_name(name).unwrap();
        assert_eq!(Activation::from_name(activation.name()).unwrap(), activation, "{name}");
    }
    let x = Tensor::from_vec(vec![2, 3], vec![0.5, -1.0, 2.0, 3.0, 3.0, -4.0]).unwrap();
    let apply = |name: &str| {
        let activation = Activation::from_name(name).unwrap();
        forward_value(&x, |g, v| Ok(activation.apply(g, v)))
    };
    let logs: Vec<f32> = apply("softmax").data().iter().map(|p| p.ln()).collect();
    assert_close(apply("log_softmax").data(), &logs, 1e-6, "log_softmax");
    // GELU's tanh form stays within 1e-3 of the exact one (its known error).
    let exact = apply("gelu");
    assert_close(apply("gelu_approximate").data(), exact.data(), 1e-3, "gelu_approximate");
}
