//! Mixed precision (Keras's `mixed_bfloat16`): a bfloat16 Dense layer and convolution against
//! hand-computed values on rounded inputs, the global policy and its errors, `mixed_float16`
//! computed in f32 with a warning, and the MLP and
//! CNN trained under it reaching the accuracy of f32 training on the same data and seed.
mod common;

use std::sync::{Mutex, OnceLock};
use strata::autograd::{Graph, ParamStore, Tape, WindowOptions};
use strata::data::{mnist, scale, to_categorical};
use strata::kernels::{ComputeDtype, round_through_bf16};
use strata::mixed_precision::{self, DTypePolicy};
use strata::prelude::*;
use strata::rng::Rng;

/// Tests that construct layers hold this: the global policy is read at construction, and one
/// test changes it.
static POLICY: Mutex<()> = Mutex::new(());

fn values(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.normal()).collect()
}

/// Values bfloat16 represents exactly (so the rounding of an output gradient changes nothing).
fn bf16_values(len: usize, seed: u64) -> Vec<f32> {
    values(len, seed).into_iter().map(round_through_bf16).collect()
}

fn close(got: &[f32], expected: &[f64], scale: &[f64], what: &str) {
    assert_eq!(got.len(), expected.len(), "{what}");
    for (i, ((&g, &e), &s)) in got.iter().zip(expected).zip(scale).enumerate() {
        // f32 accumulation of exact products: a few ulps of the sum of magnitudes.
        assert!((g as f64 - e).abs() <= 1e-6 * s + 1e-12, "{what}[{i}]: {g} vs {e}");
    }
}

/// A bfloat16 Dense layer computes `round(x)·round(W) + b` and, for an output gradient `R`
/// that bfloat16 holds exactly, the gradients `round(x)ᵀ·R` and `R·round(W)ᵀ` with f32
/// accumulation: checked against sums in f64 over the rounded values.
#[test]
fn a_bfloat16_dense_layer_matches_hand_computed_values_on_rounded_inputs() {
    let (m, k, n) = (5, 37, 19);
    let (x, w, b, r) = (values(m * k, 1), values(k * n, 2), values(n, 3), bf16_values(m * n, 4));
    let mut params = ParamStore::new();
    let xid = params.add("x", Tensor::from_vec(vec![m, k], x.clone()).unwrap(), true);
    let wid = params.add("w", Tensor::from_vec(vec![k, n], w.clone()).unwrap(), true);
    let bid = params.add("b", Tensor::from_vec(vec![n], b.clone()).unwrap(), true);
    let mut tape = Tape::new();
    let (y, loss) = {
        let mut g = Graph::new(&mut tape, &params, true);
        let (xv, wv, bv) = (g.param(xid), g.param(wid), g.param(bid));
        let y = g.linear_in(xv, wv, Some(bv), ComputeDtype::Bfloat16).unwrap();
        let rv = g.constant(&Tensor::from_vec(vec![m, n], r.clone()).unwrap());
        let weighted = g.mul(y, rv).unwrap();
        (y, g.sum(weighted))
    };
    let y = tape.value(y, &params).data().to_vec();
    tape.backward(loss, &mut params);
    let rx: Vec<f64> = x.iter().map(|&v| round_through_bf16(v) as f64).collect();
    let rw: Vec<f64> = w.iter().map(|&v| round_through_bf16(v) as f64).collect();
    let (mut want_y, mut scale_y) = (vec![0.0; m * n], vec![0.0; m * n]);
    let (mut want_dw, mut scale_dw) = (vec![0.0; k * n], vec![0.0; k * n]);
    let (mut want_dx, mut scale_dx) = (vec![0.0; m * k], vec![0.0; m * k]);
    for i in 0..m {
        for j in 0..n {
            want_y[i * n + j] = b[j] as f64;
            scale_y[i * n + j] = (b[j] as f64).abs();
            for p in 0..k {
                let (xr, wr, rr) = (rx[i * k + p], rw[p * n + j], r[i * n + j] as f64);
                want_y[i * n + j] += xr * wr;
                scale_y[i * n + j] += (xr * wr).abs();
                want_dw[p * n + j] += xr * rr;
                scale_dw[p * n + j] += (xr * rr).abs();
                want_dx[i * k + p] += rr * wr;
                scale_dx[i * k + p] += (rr * wr).abs();
            }
        }
    }
    close(&y, &want_y, &scale_y, "y");
    close(params.grad(wid).data(), &want_dw, &scale_dw, "dW");
    close(params.grad(xid).data(), &want_dx, &scale_dx, "dx");
    // The bias gradient is f32: the column sums of R.
    for j in 0..n {
        let sum: f32 = (0..m).map(|i| r[i * n + j]).sum();
        assert!((params.grad(bid).data()[j] - sum).abs() < 1e-5);
    }
    // And it is not the f32 layer: the rounding shows in the output.
    let mut tape = Tape::new();
    let mut g = Graph::new(&mut tape, &params, false);
    let (xv, wv, bv) = (g.param(xid), g.param(wid), g.param(bid));
    let f32_y = g.linear(xv, wv, Some(bv)).unwrap();
    assert!(g.value(f32_y).data().iter().zip(&y).any(|(a, b)| (a - b).abs() > 1e-4));
}

/// A bfloat16 convolution (through im2col) equals the f32 convolution (Winograd's here) of the
/// rounded input and kernel, and so do its gradients for an output gradient bfloat16 holds.
#[test]
fn a_bfloat16_convolution_matches_the_f32_one_on_rounded_inputs() {
    let (x_shape, k_shape) = ([2, 7, 7, 8], [3, 3, 8, 16]);
    let x = values(2 * 7 * 7 * 8, 5);
    let w = values(3 * 3 * 8 * 16, 6);
    let r = bf16_values(2 * 5 * 5 * 16, 7);
    let run = |x: &[f32], w: &[f32], dtype: ComputeDtype| {
        let mut params = ParamStore::new();
        let xid = params.add("x", Tensor::from_vec(x_shape.to_vec(), x.to_vec()).unwrap(), true);
        let wid = params.add("w", Tensor::from_vec(k_shape.to_vec(), w.to_vec()).unwrap(), true);
        let mut tape = Tape::new();
        let (y, loss) = {
            let mut g = Graph::new(&mut tape, &params, true);
            let (xv, wv) = (g.param(xid), g.param(wid));
            let y = g
                .conv2d_in(xv, wv, None, WindowOptions::default(), false, dtype)
                .unwrap();
            let rv = g.constant(&Tensor::from_vec(vec![2, 5, 5, 16], r.clone()).unwrap());
            let weighted = g.mul(y, rv).unwrap();
            (y, g.sum(weighted))
        };
        let y = tape.value(y, &params).data().to_vec();
        tape.backward(loss, &mut params);
        (y, params.grad(wid).data().to_vec(), params.grad(xid).data().to_vec())
    };
    let rounded = |v: &[f32]| v.iter().map(|&x| round_through_bf16(x)).collect::<Vec<_>>();
    let mixed = run(&x, &w, ComputeDtype::Bfloat16);
    let reference = run(&rounded(&x), &rounded(&w), ComputeDtype::Float32);
    for (what, got, want) in [
        ("y", &mixed.0, &reference.0),
        ("dW", &mixed.1, &reference.1),
        ("dx", &mixed.2, &reference.2),
    ] {
        let largest = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
        let error = got.iter().zip(want).fold(0.0f32, |m, (a, b)| m.max((a - b).abs()));
        assert!(
            error <= 1e-5 * largest.max(1.0),
            "{what}: error {error}, largest {largest}"
        );
    }
}

#[test]
fn the_global_policy_reaches_layers_built_after_it_and_names_are_checked() {
    let _lock = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    assert_eq!(mixed_precision::global_policy(), DTypePolicy::Float32);
    let error = mixed_precision::set_global_policy("float16").unwrap_err().to_string();
    assert!(error.contains("float32") && error.contains("mixed_bfloat16"), "{error}");
    mixed_precision::set_global_policy("mixed_bfloat16").unwrap();
    let (dense, conv) = (Dense::new(4), Conv2D::new(8, 3));
    let kept = Dense::new(4).dtype_policy(DTypePolicy::Float32);
    mixed_precision::set_global_policy("float32").unwrap();
    assert_eq!(dense.policy(), DTypePolicy::MixedBfloat16);
    assert_eq!(conv.policy().compute_dtype(), "bfloat16");
    assert_eq!(conv.policy().variable_dtype(), "float32");
    assert_eq!(kept.policy(), DTypePolicy::Float32);
    assert_eq!(Dense::new(4).policy(), DTypePolicy::Float32);
    // The policy is saved with the layer and read back.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[3]))
        .add(Dense::new(2).dtype_policy(DTypePolicy::MixedBfloat16));
    model.compile("sgd", "mse", &[]).unwrap();
    let path = std::env::temp_dir().join(format!("strata-mixed-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let loaded = strata::load_model(&path).unwrap();
    let _ = std::fs::remove_file(&path);
    let config = loaded.layers().iter().map(|l| l.config()).collect::<Vec<_>>();
    let name = config
        .iter()
        .find_map(|c| c.pointer("/dtype/config/name").and_then(|v| v.as_str()));
    assert_eq!(name, Some("mixed_bfloat16"), "{config:?}");
}

/// Keras's `mixed_float16` runs, in f32 (strata has no float16 kernels), with one warning:
/// the outputs are those of the f32 model, and the policy's name is saved with the layer.
#[test]
fn mixed_float16_computes_in_f32_keeps_its_name_and_warns() {
    let _lock = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    let build = || {
        let mut model = Sequential::new();
        model.seed(3);
        model
            .add(Input::new(&[6]))
            .add(Dense::new(5).activation("relu"))
            .add(Dense::new(3).activation("softmax"));
        model.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
        model
    };
    let mut plain = build();
    mixed_precision::set_global_policy("mixed_float16").unwrap();
    assert!(mixed_precision::float16_warning_printed());
    let mut half = build();
    mixed_precision::set_global_policy("float32").unwrap();
    let names: Vec<_> = half
        .layers()
        .iter()
        .filter_map(|l| l.config().pointer("/dtype/config/name")?.as_str().map(String::from))
        .collect();
    assert_eq!(names, ["mixed_float16", "mixed_float16"]);
    assert_eq!(DTypePolicy::MixedFloat16.compute_dtype(), "float32");
    let x = Tensor::from_vec(vec![4, 6], values(24, 9)).unwrap();
    let bits = |t: Tensor| t.data().iter().map(|v| v.to_bits()).collect::<Vec<_>>();
    assert_eq!(bits(plain.predict(&x, 4).unwrap()), bits(half.predict(&x, 4).unwrap()));
}

/// MNIST scaled to [0, 1], loaded once.
fn mnist_scaled() -> &'static ((Tensor, Tensor), (Tensor, Tensor)) {
    static DATA: OnceLock<((Tensor, Tensor), (Tensor, Tensor))> = OnceLock::new();
    DATA.get_or_init(|| {
        let ((x_train, y_train), (x_test, y_test)) = mnist::load_data().unwrap();
        (
            (scale(&x_train, 1.0 / 255.0), y_train),
            (scale(&x_test, 1.0 / 255.0), y_test),
        )
    })
}

/// Test accuracy of the model `build` makes under `policy`, trained on the first `train`
/// images for `epochs` with seed 7; `images`: the CNN's `(28, 28, 1)` inputs and one-hot
/// labels.
fn accuracy(build: fn(DTypePolicy) -> Model, policy: DTypePolicy, train: usize, epochs: usize, images: bool) -> f32 {
    let ((x, y), (x_test, y_test)) = mnist_scaled();
    let (mut x, y, mut x_test) = (x.slice_rows(0, train), y.slice_rows(0, train), x_test.clone());
    if images {
        x = x.reshape(&[train, 28, 28, 1]).unwrap();
        x_test = x_test.reshape(&[10_000, 28, 28, 1]).unwrap();
    }
    let mut model = build(policy);
    model.seed(7);
    let (loss, y, y_test) = if images {
        (
            "categorical_crossentropy",
            to_categorical(&y, 10).unwrap(),
            to_categorical(y_test, 10).unwrap(),
        )
    } else {
        ("sparse_categorical_crossentropy", y, y_test.clone())
    };
    model.compile("adam", loss, &["accuracy"]).unwrap();
    let options = FitOptions::default().verbose(0).epochs(epochs).batch_size(64);
    model.fit(&x, &y, options).unwrap();
    model.evaluate(&x_test, &y_test, 256).unwrap().accuracy.unwrap()
}

fn mlp(policy: DTypePolicy) -> Model {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28]))
        .add(Flatten::new())
        .add(Dense::new(128).activation("relu").dtype_policy(policy))
        .add(Dense::new(10).activation("softmax").dtype_policy(policy));
    model
}

fn cnn(policy: DTypePolicy) -> Model {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(16, 3).activation("relu").dtype_policy(policy))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(32, 3).activation("relu").dtype_policy(policy))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dense::new(10).activation("softmax").dtype_policy(policy));
    model
}

#[test]
fn the_mlp_trained_in_bfloat16_is_as_accurate_as_in_f32() {
    let _lock = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    let f32_accuracy = accuracy(mlp, DTypePolicy::Float32, 60_000, 1, false);
    let bf16_accuracy = accuracy(mlp, DTypePolicy::MixedBfloat16, 60_000, 1, false);
    eprintln!("mlp test accuracy: f32 {f32_accuracy}, mixed_bfloat16 {bf16_accuracy}");
    assert!(f32_accuracy > 0.95, "f32 {f32_accuracy}");
    assert!(
        (f32_accuracy - bf16_accuracy).abs() <= 0.003,
        "f32 {f32_accuracy}, bf16 {bf16_accuracy}"
    );
}

#[test]
fn the_cnn_trained_in_bfloat16_is_as_accurate_as_in_f32() {
    let _lock = POLICY.lock().unwrap_or_else(|e| e.into_inner());
    let f32_accuracy = accuracy(cnn, DTypePolicy::Float32, 20_000, 1, true);
    let bf16_accuracy = accuracy(cnn, DTypePolicy::MixedBfloat16, 20_000, 1, true);
    eprintln!("cnn test accuracy: f32 {f32_accuracy}, mixed_bfloat16 {bf16_accuracy}");
    assert!(f32_accuracy > 0.95, "f32 {f32_accuracy}");
    assert!(
        (f32_accuracy - bf16_accuracy).abs() <= 0.003,
        "f32 {f32_accuracy}, bf16 {bf16_accuracy}"
    );
}

/// Not a check: prints the f32 and bfloat16 products' speed on the MLP's and CNN's shapes, in
/// one run (`cargo test --release --test mixed_precision -- --ignored --nocapture`).
#[test]
#[ignore]
fn product_speed() {
    use std::time::Instant;
    use strata::kernels::{Transpose, matmul, matmul_bf16};
    eprintln!("vdpbf16ps: {}", strata::kernels::bf16_dot());
    let shapes = [
        ("mlp forward 32x784x128", 32, 784, 128, Transpose::No, Transpose::No),
        (
            "mlp kernel grad 784x32x128",
            784,
            32,
            128,
            Transpose::Yes,
            Transpose::No,
        ),
        ("mlp input grad 32x128x784", 32, 128, 784, Transpose::No, Transpose::Yes),
        (
            "cnn conv2 im2col 7744x288x64",
            7744,
            288,
            64,
            Transpose::No,
            Transpose::No,
        ),
        (
            "cnn conv2 kernel grad 288x7744x64",
            288,
            7744,
            64,
            Transpose::Yes,
            Transpose::No,
        ),
        ("square 512", 512, 512, 512, Transpose::No, Transpose::No),
    ];
    for (name, m, k, n, ta, tb) in shapes {
        let (a, b) = (values(m * k, 1), values(k * n, 2));
        let mut c = vec![0.0f32; m * n];
        let flops = 2.0 * (m * k * n) as f64;
        let reps = (2e9 / flops).clamp(3.0, 2000.0) as usize;
        let mut time = |bf16: bool| {
            let mut best = f64::MAX;
            for _ in 0..3 {
                let start = Instant::now();
                for _ in 0..reps {
                    if bf16 {
                        matmul_bf16(&a, ta, &b, tb, &mut c, m, k, n, false);
                    } else {
                        matmul(&a, ta, &b, tb, &mut c, m, k, n, false);
                    }
                }
                best = best.min(start.elapsed().as_secs_f64() / reps as f64);
            }
            best
        };
        let (f32_time, bf16_time) = (time(false), time(true));
        eprintln!(
            "{name}: f32 {:.1} us ({:.0} GFLOP/s), bf16 {:.1} us ({:.0} GFLOP/s), bf16/f32 time {:.2}",
            f32_time * 1e6,
            flops / f32_time / 1e9,
            bf16_time * 1e6,
            flops / bf16_time / 1e9,
            bf16_time / f32_time
        );
    }
}
