//! The kernels' vector paths against each other: AVX-512, AVX2 and scalar (`STRATA_SIMD`,
//! here forced per thread pool with `limit_simd_on_this_thread`).
//!
//! Every lane of a kernel does the same operations in the same order whatever the vector
//! width, so the AVX-512 and AVX2 paths must agree bit for bit; the scalar path does not fuse
//! its multiply-adds, so it agrees within rounding (a relative 1e-4 here, the tolerance of
//! `tests/conv_paths.rs`: the largest difference measured is 1.3e-5, in a Winograd output). On a CPU without AVX-512 (or AVX2) the wider paths fall back to the
//! narrower ones and the comparisons still hold. The shapes put channel counts that are
//! multiples of 16 on the AVX-512 kernels (32, 48: whole and partial blocks of two vectors),
//! counts that are only multiples of 8 (24) on their AVX2 fallback, and odd image sizes
//! (partial Winograd tiles, runs of outputs cut short, uncovered pooling rows). Batch
//! normalization's loops, compiled per width by the compiler, must give the same bits on all
//! three paths, and on one and two threads when large enough to split over channels. The
//! recurrent cells' steps (vector tanh and sigmoid, the LSTM and GRU updates and their
//! gradients) follow the kernels' rule: AVX-512 and AVX2 alike, scalar within rounding, one and
//! two threads alike (the shapes split a step's rows over two threads).

mod common;

use common::uniform;
use strata::autograd::{
    Cell, Graph, ParamStore, RecurrentInputs, RecurrentOptions, Squash, Statistics, Tape, WindowOptions,
};
use strata::kernels::{Padding, SimdLevel, limit_simd_on_this_thread};

/// A pool of `threads` threads whose kernels run no wider than `level`.
fn pool(level: SimdLevel, threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .start_handler(move |_| limit_simd_on_this_thread(Some(level)))
        .build()
        .expect("a thread pool")
}

/// An image's height, width and channels.
type Image = (usize, usize, usize);

/// A small CNN's values and gradients: a direct convolution of a grey or colour image (fused
/// ReLU, folded into its max pooling; "same" padding for colour images, as cifar10_cnn's first
/// layer), then two Winograd convolutions with a max pooling between them (the optimizers'
/// update loop has its own test). Returns every output and gradient.
fn run(input: Image, filters: [usize; 3], seed: u64) -> Vec<Vec<f32>> {
    let (h, w, c) = input;
    let [f1, f2, f3] = filters;
    let mut params = ParamStore::new();
    let x = params.add("x", uniform(&[3, h, w, c], -1.0, 1.0, seed), false);
    let k1 = params.add("k1", uniform(&[3, 3, c, f1], -0.5, 0.5, seed + 1), true);
    let b1 = params.add("b1", uniform(&[f1], -0.1, 0.1, seed + 2), true);
    let k2 = params.add("k2", uniform(&[3, 3, f1, f2], -0.2, 0.2, seed + 3), true);
    let b2 = params.add("b2", uniform(&[f2], -0.1, 0.1, seed + 4), true);
    let k3 = params.add("k3", uniform(&[3, 3, f2, f3], -0.2, 0.2, seed + 5), true);
    let pool = WindowOptions {
        strides: (2, 2),
        ..WindowOptions::default()
    };
    let mut tape = Tape::new();
    let mut values = Vec::new();
    let loss = {
        let mut g = Graph::new(&mut tape, &params, true);
        let (x, k1, b1, k2, b2, k3) = (
            g.param(x),
            g.param(k1),
            g.param(b1),
            g.param(k2),
            g.param(b2),
            g.param(k3),
        );
        let first = WindowOptions {
            padding: if c > 1 { Padding::Same } else { Padding::Valid },
            ..WindowOptions::default()
        };
        let y = g.conv2d_relu(x, k1, Some(b1), first).unwrap();
        let y = g.max_pool2d(y, (2, 2), pool).unwrap();
        values.push(g.value(y).data().to_vec());
        let y = g.conv2d_relu(y, k2, Some(b2), WindowOptions::default()).unwrap();
        values.push(g.value(y).data().to_vec());
        let y = g.max_pool2d(y, (2, 2), pool).unwrap();
        let y = g.conv2d(y, k3, None, WindowOptions::default()).unwrap();
        values.push(g.value(y).data().to_vec());
        let shape = g.shape(y).to_vec();
        let weights = g.constant(&uniform(&shape, -1.0, 1.0, seed + 6));
        let weighted = g.mul(y, weights).unwrap();
        g.sum(weighted)
    };
    tape.backward(loss, &mut params);
    values.extend([k1, b1, k2, b2, k3].map(|id| params.grad(id).data().to_vec()));
    values
}

/// `run` on a pool limited to `level`.
fn run_at(level: SimdLevel, threads: usize, input: Image, filters: [usize; 3]) -> Vec<Vec<f32>> {
    pool(level, threads).install(|| run(input, filters, 40))
}

fn bits(values: &[Vec<f32>]) -> Vec<Vec<u32>> {
    values.iter().map(|v| v.iter().map(|x| x.to_bits()).collect()).collect()
}

/// The shapes: (image, filters of the three convolutions) and what each exercises.
const CASES: &[(Image, [usize; 3], &str)] = &[
    // The `cnn`'s layout: 26×26 direct outputs (runs of 4 and a partial one), then F(4) on
    // 11×11 (partial tiles), then F(2) or F(3) on small maps.
    ((28, 28, 1), [32, 64, 64], "cnn-like 32/64/64"),
    // 48 filters: a block of two AVX-512 vectors and one of one; 19×21 images leave pooling
    // rows and columns outside every window, runs of outputs cut short and partial tiles.
    ((19, 21, 1), [48, 32, 48], "odd 48/32/48"),
    // 24 channels: only a multiple of 8, so AVX-512 falls back to AVX2 for these kernels.
    ((20, 22, 1), [24, 16, 24], "multiples of 8 only 24/16/24"),
    // cifar10_cnn's first layer: a colour image's 27 taps over a padded copy, in three chunks
    // of 9 taps (AVX-512) or six of 5 (AVX2, the last one partly unused).
    ((17, 19, 3), [32, 16, 32], "colour, same padding 32/16/32"),
];

#[test]
fn avx512_and_avx2_agree_bit_for_bit_and_scalar_within_rounding() {
    let detected = SimdLevel::detected();
    eprintln!("this CPU's widest path: {}", detected.name());
    for &(input, filters, what) in CASES {
        let wide = run_at(SimdLevel::Avx512, 2, input, filters);
        let avx2 = run_at(SimdLevel::Avx2, 2, input, filters);
        let scalar = run_at(SimdLevel::Scalar, 2, input, filters);
        assert!(bits(&wide) == bits(&avx2), "{what}: AVX-512 and AVX2 differ");
        assert_within_rounding(&avx2, &scalar, what);
    }
}

/// Asserts the scalar path's values within a relative 1e-4 of the vector path's.
fn assert_within_rounding(vector: &[Vec<f32>], scalar: &[Vec<f32>], what: &str) {
    for (i, (a, s)) in vector.iter().zip(scalar).enumerate() {
        let worst = a
            .iter()
            .zip(s)
            .map(|(a, s)| (a - s).abs() / 1f32.max(a.abs()))
            .fold(0.0, f32::max);
        assert!(worst < 1e-4, "{what}: value {i}: scalar differs by {worst}");
    }
}

#[test]
fn each_path_gives_the_same_bits_on_one_and_two_threads() {
    for level in [SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Scalar] {
        let (input, filters, what) = CASES[1];
        let one = run_at(level, 1, input, filters);
        let two = run_at(level, 2, input, filters);
        assert!(
            bits(&one) == bits(&two),
            "{what} on {}: 1 and 2 threads differ",
            level.name()
        );
    }
}

#[test]
fn simd_level_names_round_trip() {
    for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
        assert_eq!(SimdLevel::parse(level.name()), Some(level));
    }
    assert_eq!(SimdLevel::parse(" AVX512 "), Some(SimdLevel::Avx512));
    assert_eq!(SimdLevel::parse("avx"), None);
    // A limited pool reports the limit (or less, on a narrower CPU).
    let level = pool(SimdLevel::Avx2, 1).install(strata::kernels::simd_level);
    assert!(level <= SimdLevel::Avx2);
}

/// Batch normalization (batch statistics, γ and β) forward and backward over 37 channels (two
/// AVX-512 vectors and a tail of 5, four AVX2 vectors and a tail): the same bits on every path,
/// scalar included (no multiply-add is fused anywhere in it).
#[test]
fn batch_normalization_gives_the_same_bits_on_every_path() {
    let run = || {
        let mut params = ParamStore::new();
        let x = params.add("x", uniform(&[6, 5, 3, 37], -2.0, 3.0, 70), true);
        let gamma = params.add("gamma", uniform(&[37], 0.5, 1.5, 71), true);
        let beta = params.add("beta", uniform(&[37], -0.5, 0.5, 72), true);
        let mut tape = Tape::new();
        let (loss, y) = {
            let mut g = Graph::new(&mut tape, &params, true);
            let (xv, gv, bv) = (g.param(x), g.param(gamma), g.param(beta));
            let y = g
                .batch_norm(xv, Some(gv), Some(bv), 1e-3, Statistics::Batch, None)
                .unwrap();
            let weights = g.constant(&uniform(&[6, 5, 3, 37], -1.0, 1.0, 73));
            let weighted = g.mul(y, weights).unwrap();
            (g.sum(weighted), g.value(y).data().to_vec())
        };
        tape.backward(loss, &mut params);
        let mut values = vec![y];
        values.extend([x, gamma, beta].map(|id| params.grad(id).data().to_vec()));
        values
    };
    let at = |level| pool(level, 2).install(run);
    let wide = bits(&at(SimdLevel::Avx512));
    assert!(wide == bits(&at(SimdLevel::Avx2)), "AVX-512 and AVX2 differ");
    assert!(wide == bits(&at(SimdLevel::Scalar)), "AVX-512 and scalar differ");
}

/// Batch normalization large enough to split (64 × 6 × 6 × 40 values: channel blocks of 32
/// and 8 on two threads), training and inference statistics: one and two threads give the
/// same bits on every path.
#[test]
fn batch_normalization_gives_the_same_bits_on_one_and_two_threads() {
    let run = |moving: bool| {
        let mut params = ParamStore::new();
        let shape = [64, 6, 6, 40];
        let x = params.add("x", uniform(&shape, -2.0, 3.0, 80), true);
        let gamma = params.add("gamma", uniform(&[40], 0.5, 1.5, 81), true);
        let beta = params.add("beta", uniform(&[40], -0.5, 0.5, 82), true);
        let mean = params.add("moving_mean", uniform(&[40], -0.2, 0.2, 83), false);
        let variance = params.add("moving_variance", uniform(&[40], 0.5, 2.0, 84), false);
        let statistics = if moving {
            Statistics::Moving { mean, variance }
        } else {
            Statistics::Batch
        };
        let mut tape = Tape::new();
        let (loss, y) = {
            let mut g = Graph::new(&mut tape, &params, true);
            let (xv, gv, bv) = (g.param(x), g.param(gamma), g.param(beta));
            let y = g.batch_norm(xv, Some(gv), Some(bv), 1e-3, statistics, None).unwrap();
            let weights = g.constant(&uniform(&shape, -1.0, 1.0, 85));
            let weighted = g.mul(y, weights).unwrap();
            (g.sum(weighted), g.value(y).data().to_vec())
        };
        tape.backward(loss, &mut params);
        let mut values = vec![y];
        values.extend([x, gamma, beta].map(|id| params.grad(id).data().to_vec()));
        values
    };
    for (moving, what) in [(false, "batch statistics"), (true, "moving statistics")] {
        for level in [SimdLevel::Avx512, SimdLevel::Avx2, SimdLevel::Scalar] {
            let one = bits(&pool(level, 1).install(|| run(moving)));
            let two = bits(&pool(level, 2).install(|| run(moving)));
            assert!(one == two, "{what} on {}: 1 and 2 threads differ", level.name());
        }
    }
}

/// One recurrent layer's output sequence and gradients (x, kernels, bias) through a masked
/// batch: `n` sequences of 5 steps, `units` units (not a multiple of 16: partial vectors).
fn recurrent_run(cell: Cell, n: usize, units: usize, squashes: (Squash, Squash)) -> Vec<Vec<f32>> {
    let (t, features, g) = (5, 7, cell.gates());
    let bias_shape = if cell == Cell::Gru {
        vec![2, g * units]
    } else {
        vec![g * units]
    };
    let mut params = ParamStore::new();
    let x = params.add("x", uniform(&[n, t, features], -1.0, 1.0, 90), true);
    let kernel = params.add("kernel", uniform(&[features, g * units], -0.4, 0.4, 91), true);
    let recurrent_kernel = params.add("recurrent", uniform(&[units, g * units], -0.3, 0.3, 92), true);
    let bias = params.add("bias", uniform(&bias_shape, -0.5, 0.5, 93), true);
    // Every third sample skips its second step.
    let mask: Vec<f32> = (0..n * t).map(|i| if i % (3 * t) == 1 { 0.0 } else { 1.0 }).collect();
    let mask = strata::Tensor::from_vec(vec![n, t], mask).unwrap();
    let options = RecurrentOptions {
        cell,
        units,
        activation: squashes.0,
        recurrent_activation: squashes.1,
        return_sequences: true,
        go_backwards: false,
        align_output: false,
        emit_states: false,
    };
    let mut tape = Tape::new();
    let (loss, y) = {
        let mut g = Graph::new(&mut tape, &params, true);
        let operands = RecurrentInputs {
            x: g.param(x),
            kernel: g.param(kernel),
            recurrent_kernel: g.param(recurrent_kernel),
            bias: Some(g.param(bias)),
            mask: Some(g.constant(&mask)),
            recurrent_mask: None,
        };
        let y = g.recurrent(operands, options).unwrap();
        let weights = g.constant(&uniform(g.shape(y), -1.0, 1.0, 94));
        let weighted = g.mul(y, weights).unwrap();
        (g.sum(weighted), g.value(y).data().to_vec())
    };
    tape.backward(loss, &mut params);
    let mut values = vec![y];
    values.extend([x, kernel, recurrent_kernel, bias].map(|id| params.grad(id).data().to_vec()));
    values
}

/// The cells at shapes whose steps split over two threads (rows × gates above the kernel's
/// threshold) and one that does not, with Keras's functions and the piecewise-linear ones.
const RECURRENT_CASES: &[(Cell, usize, usize, (Squash, Squash))] = &[
    (Cell::Lstm, 40, 130, (Squash::Tanh, Squash::Sigmoid)),
    (Cell::Gru, 60, 100, (Squash::Tanh, Squash::Sigmoid)),
    (Cell::SimpleRnn, 90, 200, (Squash::Tanh, Squash::Sigmoid)),
    (Cell::Lstm, 3, 19, (Squash::Relu, Squash::HardSigmoid)),
    (Cell::Gru, 4, 21, (Squash::Linear, Squash::HardSigmoid)),
];

#[test]
fn recurrent_steps_agree_across_paths_and_thread_counts() {
    for &(cell, n, units, squashes) in RECURRENT_CASES {
        let what = format!("{cell:?} n={n} units={units} {squashes:?}");
        let at = |level, threads| pool(level, threads).install(|| recurrent_run(cell, n, units, squashes));
        let wide = at(SimdLevel::Avx512, 2);
        let avx2 = at(SimdLevel::Avx2, 2);
        assert!(bits(&wide) == bits(&avx2), "{what}: AVX-512 and AVX2 differ");
        assert!(
            bits(&wide) == bits(&at(SimdLevel::Avx512, 1)),
            "{what}: 1 and 2 threads differ"
        );
        assert_within_rounding(&avx2, &at(SimdLevel::Scalar, 2), &what);
    }
}

/// One pooled-convolution case: image, filters, the convolution's padding, dilation and
/// strides, the pooling's window and strides, and what it exercises.
type PooledCase = (
    Image,
    usize,
    (Padding, usize, usize),
    ((usize, usize), (usize, usize)),
    &'static str,
);

const POOLED_CASES: &[PooledCase] = &[
    (
        (28, 28, 1),
        32,
        (Padding::Valid, 1, 1),
        ((2, 2), (2, 2)),
        "the cnn's first layer",
    ),
    (
        (15, 17, 3),
        24,
        (Padding::Same, 1, 1),
        ((2, 2), (2, 2)),
        "padded colour, 24 filters, odd sizes",
    ),
    (
        (13, 14, 2),
        16,
        (Padding::Valid, 1, 2),
        ((1, 2), (1, 2)),
        "strided, one vector, 1×2 windows",
    ),
    (
        (12, 12, 3),
        48,
        (Padding::Valid, 1, 1),
        ((2, 1), (1, 1)),
        "overlapping 2×1 windows, 48 filters",
    ),
    (
        (11, 11, 1),
        8,
        (Padding::Valid, 1, 1),
        ((2, 2), (3, 3)),
        "strides beyond the window",
    ),
    (
        (14, 13, 3),
        32,
        (Padding::Same, 2, 1),
        ((1, 4), (2, 4)),
        "dilated, 1×4 windows",
    ),
    (
        (9, 9, 2),
        16,
        (Padding::Valid, 1, 1),
        ((1, 1), (1, 1)),
        "a one-tap window",
    ),
    // Winograd's: 4×4 tiles, partial ones at the edges (the cnn's second layer: 11×11).
    (
        (13, 13, 32),
        64,
        (Padding::Valid, 1, 1),
        ((2, 2), (2, 2)),
        "Winograd, the cnn's second layer",
    ),
    (
        (12, 14, 16),
        24,
        (Padding::Same, 1, 1),
        ((2, 2), (2, 2)),
        "Winograd, padded, 24 filters",
    ),
    (
        (10, 10, 8),
        16,
        (Padding::Valid, 1, 1),
        ((1, 2), (2, 2)),
        "Winograd, windows narrower than strides",
    ),
    (
        (6, 6, 16),
        32,
        (Padding::Valid, 1, 1),
        ((2, 2), (2, 2)),
        "Winograd, a single tile",
    ),
    (
        (11, 11, 16),
        16,
        (Padding::Valid, 1, 1),
        ((3, 3), (2, 2)),
        "Winograd, overlapping windows: not folded",
    ),
    (
        (4, 4, 16),
        16,
        (Padding::Valid, 1, 1),
        ((2, 2), (2, 2)),
        "Winograd, a 2×2 tile",
    ),
];

/// `conv2d_relu_max_pool` (one pass) and `conv2d_relu` then `max_pool2d` on a pool at `level`.
fn pooled_conv(level: SimdLevel, threads: usize, batch: usize, case: &PooledCase) -> [Vec<u32>; 2] {
    let &((h, w, c), filters, (padding, dilation, stride), (window, pool_strides), _) = case;
    let mut params = ParamStore::new();
    let x = params.add("x", uniform(&[batch, h, w, c], -1.0, 1.0, 70), false);
    let k = params.add("k", uniform(&[3, 3, c, filters], -0.5, 0.5, 71), false);
    let b = params.add("b", uniform(&[filters], -0.2, 0.2, 72), false);
    let conv = WindowOptions {
        strides: (stride, stride),
        dilation: (dilation, dilation),
        padding,
    };
    let pool_options = WindowOptions {
        strides: pool_strides,
        ..WindowOptions::default()
    };
    pool(level, threads).install(|| {
        let mut tape = Tape::new();
        let mut g = Graph::new(&mut tape, &params, false);
        let (x, k, b) = (g.param(x), g.param(k), g.param(b));
        let fused = g
            .conv2d_relu_max_pool(x, (k, Some(b)), conv, (window, pool_options))
            .unwrap();
        let y = g.conv2d_relu(x, k, Some(b), conv).unwrap();
        let plain = g.max_pool2d(y, window, pool_options).unwrap();
        [fused, plain].map(|v| g.value(v).data().iter().map(|x| x.to_bits()).collect())
    })
}

/// A ReLU convolution with the max pooling after it in one pass (`predict`'s path for a
/// `Conv2D` read only by a `MaxPooling2D`) gives the bits of the two operations on every
/// vector path and thread count, at batch 1 (rows split over threads) and 3.
#[test]
fn a_max_pooling_folded_into_the_direct_convolution_keeps_its_bits() {
    for case in POOLED_CASES {
        for batch in [1, 3] {
            let what = format!("{}, batch {batch}", case.4);
            let [fused, plain] = pooled_conv(SimdLevel::Avx512, 2, batch, case);
            assert!(fused == plain, "{what}: fused and plain differ");
            for (level, threads) in [(SimdLevel::Avx512, 1), (SimdLevel::Avx2, 2), (SimdLevel::Scalar, 1)] {
                let [fused_here, plain_here] = pooled_conv(level, threads, batch, case);
                assert!(fused_here == plain_here, "{what}: fused and plain differ on {level:?}");
                if level != SimdLevel::Scalar {
                    assert!(fused_here == fused, "{what}: {level:?} on {threads} threads differs");
                }
            }
        }
    }
}
