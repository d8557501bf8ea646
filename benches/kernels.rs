//! Criterion benchmarks of the kernels a training step spends its time in: the matrix product at
//! the classic models' shapes and at 512³ and 1024³, the `cnn`'s convolutions and max poolings
//! forward and backward (each on the AVX-512 and the AVX2 path, where the CPU has them), the
//! recurrent layers of `rnn_mnist` and `imdb_lstm` and a batch normalization forward and
//! backward (on both paths too), softmax cross-entropy, and the Adam and RMSprop updates.
//!
//! `cargo bench --bench kernels` (all), or with a filter: `cargo bench --bench kernels -- matmul`.
//! Throughput is given in elements per second where an element is one floating-point operation
//! (a multiply-add counts 2), so criterion's `Gelem/s` reads as GFLOP/s; compare it with the
//! per-core peak from `cargo bench --bench fma_peak`.

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use std::hint::black_box;
use std::time::Duration;
use strata::Tensor;
use strata::autograd::{
    Cell, Graph, ParamStore, RecurrentInputs, RecurrentOptions, Squash, Statistics, Tape, WindowOptions,
};
use strata::kernels::{SimdLevel, Transpose, limit_simd_on_this_thread, matmul};
use strata::optimizers::{Adam, Optimizer, RMSprop};
use strata::rng::Rng;

/// Values uniform in [-1, 1).
fn random(len: usize, seed: u64) -> Vec<f32> {
    let mut rng = Rng::new(seed);
    (0..len).map(|_| rng.uniform(-1.0, 1.0)).collect()
}

fn random_tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::from_vec(shape.to_vec(), random(shape.iter().product(), seed)).expect("length matches shape")
}

/// A product `c (m×n) = op(a) · op(b)` with the operands' layouts as the model uses them.
struct Product {
    label: &'static str,
    m: usize,
    k: usize,
    n: usize,
    transpose_a: Transpose,
    transpose_b: Transpose,
}

const fn product(label: &'static str, (m, k, n): (usize, usize, usize), ta: Transpose, tb: Transpose) -> Product {
    Product {
        label,
        m,
        k,
        n,
        transpose_a: ta,
        transpose_b: tb,
    }
}

use Transpose::{No, Yes};

/// The products of one training step of `mlp` (batch 32) and `cnn` (batch 64), as the layers
/// call them: forward `x·W`, kernel gradient `xᵀ·dy`, input gradient `dy·Wᵀ`.
const PRODUCTS: &[Product] = &[
    product("mlp dense1 fwd", (32, 784, 128), No, No),
    product("mlp dense1 dW", (784, 32, 128), Yes, No),
    product("mlp dense2 fwd", (32, 128, 10), No, No),
    product("mlp dense2 dW", (128, 32, 10), Yes, No),
    product("mlp dense2 dx", (32, 10, 128), No, Yes),
    product("cnn conv1 fwd", (64 * 26 * 26, 9, 32), No, No),
    product("cnn conv1 dW", (9, 64 * 26 * 26, 32), Yes, No),
    product("cnn conv2 fwd", (64 * 11 * 11, 288, 64), No, No),
    product("cnn conv2 dW", (288, 64 * 11 * 11, 64), Yes, No),
    product("cnn conv2 dcols", (64 * 11 * 11, 64, 288), No, Yes),
    product("cnn conv3 fwd", (64 * 3 * 3, 576, 64), No, No),
    product("cnn conv3 dW", (576, 64 * 3 * 3, 64), Yes, No),
    product("cnn conv3 dcols", (64 * 3 * 3, 64, 576), No, Yes),
    product("cnn dense1 fwd", (64, 576, 64), No, No),
    product("square 512", (512, 512, 512), No, No),
    product("square 1024", (1024, 1024, 1024), No, No),
];

/// The thread counts to time: 1 and all of rayon's default pool (if more than 1).
fn thread_counts() -> Vec<usize> {
    let all = rayon::current_num_threads();
    if all > 1 { vec![1, all] } else { vec![1] }
}

fn bench_matmul(c: &mut Criterion) {
    let mut group = c.benchmark_group("matmul");
    for threads in thread_counts() {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .expect("a thread pool");
        for p in PRODUCTS {
            let a = random(p.m * p.k, 1);
            let b = random(p.k * p.n, 2);
            let mut out = vec![0.0; p.m * p.n];
            group.throughput(Throughput::Elements((2 * p.m * p.k * p.n) as u64));
            let id = BenchmarkId::new(format!("{}t", threads), format!("{} {}x{}x{}", p.label, p.m, p.k, p.n));
            group.bench_function(id, |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        matmul(&a, p.transpose_a, &b, p.transpose_b, &mut out, p.m, p.k, p.n, false);
                        black_box(&mut out);
                    })
                })
            });
        }
    }
    group.finish();
}

/// One convolution of `cnn` at batch 64: input `(64, h, w, channels)`, 3×3 kernel, `filters`.
struct ConvLayer {
    name: &'static str,
    input: [usize; 4],
    filters: usize,
    /// Whether the input needs a gradient (every conv layer but the first).
    input_grad: bool,
}

const CNN_CONVS: &[ConvLayer] = &[
    ConvLayer {
        name: "conv1",
        input: [64, 28, 28, 1],
        filters: 32,
        input_grad: false,
    },
    ConvLayer {
        name: "conv2",
        input: [64, 13, 13, 32],
        filters: 64,
        input_grad: true,
    },
    ConvLayer {
        name: "conv3",
        input: [64, 5, 5, 64],
        filters: 64,
        input_grad: true,
    },
];

fn bench_conv(c: &mut Criterion) {
    let mut group = c.benchmark_group("conv2d");
    for layer in CNN_CONVS {
        let [n, h, w, channels] = layer.input;
        let mut params = ParamStore::new();
        let x_value = random_tensor(&layer.input, 3);
        // An input that needs a gradient is held as a trainable parameter, so backward computes it.
        let x_param = layer.input_grad.then(|| params.add("x", x_value.clone(), true));
        let kernel = params.add("kernel", random_tensor(&[3, 3, channels, layer.filters], 4), true);
        let bias = params.add("bias", Tensor::zeros(&[layer.filters]), true);
        let mut tape = Tape::new();
        // The convolution, summed into a scalar loss when `with_loss` (for backward).
        let record = |tape: &mut Tape, params: &ParamStore, with_loss: bool| {
            let mut g = Graph::new(tape, params, true);
            let x = match x_param {
                Some(id) => g.param(id),
                None => g.constant(&x_value),
            };
            let (kernel, bias) = (g.param(kernel), g.param(bias));
            let y = g
                .conv2d(x, kernel, Some(bias), WindowOptions::default())
                .expect("valid shapes");
            if with_loss { g.sum(y) } else { y }
        };
        let macs = n * (h - 2) * (w - 2) * layer.filters * 9 * channels;
        // Backward computes the kernel gradient and, past the first layer, the input gradient.
        let backward_products = if layer.input_grad { 2 } else { 1 };
        for (level, pool) in simd_pools() {
            let level = level.name();
            group.throughput(Throughput::Elements(2 * macs as u64));
            group.bench_function(format!("{} forward {level}", layer.name), |bench| {
                pool.install(|| bench.iter(|| black_box(record(&mut tape, &params, false))))
            });
            group.throughput(Throughput::Elements(2 * (1 + backward_products) * macs as u64));
            group.bench_function(format!("{} forward+backward {level}", layer.name), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        let loss = record(&mut tape, &params, true);
                        tape.backward(loss, &mut params);
                    })
                })
            });
        }
    }
    group.finish();
}

/// The `cnn`'s max poolings at batch 64 (26×26×32 → 13×13, 11×11×64 → 5×5), forward and
/// backward, on each vector path. Throughput counts one operation per input value read.
fn bench_pool(c: &mut Criterion) {
    let mut group = c.benchmark_group("max_pool2d");
    for (name, input) in [("pool1", [64, 26, 26, 32]), ("pool2", [64, 11, 11, 64])] {
        let mut params = ParamStore::new();
        let x = params.add("x", random_tensor(&input, 7), true);
        let mut tape = Tape::new();
        let options = WindowOptions {
            strides: (2, 2),
            ..WindowOptions::default()
        };
        group.throughput(Throughput::Elements(input.iter().product::<usize>() as u64));
        for (level, pool) in simd_pools() {
            group.bench_function(format!("{name} forward+backward {}", level.name()), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        let loss = {
                            let mut g = Graph::new(&mut tape, &params, true);
                            let x = g.param(x);
                            let y = g.max_pool2d(x, (2, 2), options).expect("valid shapes");
                            g.sum(y)
                        };
                        tape.backward(loss, &mut params);
                    })
                })
            });
        }
    }
    group.finish();
}

/// A pool of rayon's default size per vector path to compare, widest first: AVX-512 (where
/// the CPU has it) and AVX2, so one run gives both columns of docs/PERFORMANCE.md's table.
fn simd_pools() -> Vec<(SimdLevel, rayon::ThreadPool)> {
    let detected = SimdLevel::detected();
    [SimdLevel::Avx512, SimdLevel::Avx2]
        .into_iter()
        .filter(|&level| level <= detected)
        .map(|level| {
            let pool = rayon::ThreadPoolBuilder::new()
                .start_handler(move |_| limit_simd_on_this_thread(Some(level)))
                .build()
                .expect("a thread pool");
            (level, pool)
        })
        .collect()
}

/// The LSTM layers of `rnn_mnist` (batch 64, 28 steps of 28 features, 128 units) and
/// `imdb_lstm` (batch 32, 200 steps of 128 features, 64 units), forward and forward+backward
/// on each vector path. Throughput counts the products' operations (forward `2·N·T·(F+U)·4U`,
/// backward twice that); the gates' elementwise work (five sigmoids and tanhs per unit and
/// step) comes on top.
fn bench_recurrent(c: &mut Criterion) {
    let mut group = c.benchmark_group("lstm");
    for (name, [n, t, features, units]) in [("rnn_mnist", [64, 28, 28, 128]), ("imdb_lstm", [32, 200, 128, 64])] {
        let gu = 4 * units;
        let mut params = ParamStore::new();
        let x = params.add("x", random_tensor(&[n, t, features], 11), false);
        let kernel = params.add("kernel", random_tensor(&[features, gu], 12), true);
        let recurrent_kernel = params.add("recurrent_kernel", random_tensor(&[units, gu], 13), true);
        let bias = params.add("bias", Tensor::zeros(&[gu]), true);
        let options = RecurrentOptions {
            cell: Cell::Lstm,
            units,
            activation: Squash::Tanh,
            recurrent_activation: Squash::Sigmoid,
            return_sequences: false,
            go_backwards: false,
            align_output: false,
            emit_states: false,
        };
        let mut tape = Tape::new();
        let record = |tape: &mut Tape, params: &ParamStore, with_loss: bool| {
            let mut g = Graph::new(tape, params, true);
            let operands = RecurrentInputs {
                x: g.param(x),
                kernel: g.param(kernel),
                recurrent_kernel: g.param(recurrent_kernel),
                bias: Some(g.param(bias)),
                mask: None,
                recurrent_mask: None,
            };
            let y = g.recurrent(operands, options).expect("valid shapes");
            if with_loss { g.sum(y) } else { y }
        };
        let forward_flops = 2 * n * t * (features + units) * gu;
        for (level, pool) in simd_pools() {
            let level = level.name();
            group.throughput(Throughput::Elements(forward_flops as u64));
            group.bench_function(format!("{name} forward {level}"), |bench| {
                pool.install(|| bench.iter(|| black_box(record(&mut tape, &params, false))))
            });
            group.throughput(Throughput::Elements(3 * forward_flops as u64));
            group.bench_function(format!("{name} forward+backward {level}"), |bench| {
                pool.install(|| {
                    bench.iter(|| {
                        let loss = record(&mut tape, &params, true);
                        tape.backward(loss, &mut params);
                    })
                })
            });
        }
    }
    group.finish();
}

/// Batch normalization (batch statistics, γ and β) forward+backward over the `cnn`'s first
/// activation at batch 64 (26×26×32), on each vector path. Throughput counts 21 operations
/// per value (moments 5, normalization 4, gradient sums 4, input gradient 8).
fn bench_batch_norm(c: &mut Criterion) {
    let mut group = c.benchmark_group("batch_norm");
    let shape = [64, 26, 26, 32];
    let mut params = ParamStore::new();
    let x = params.add("x", random_tensor(&shape, 14), true);
    let gamma = params.add("gamma", random_tensor(&[32], 15), true);
    let beta = params.add("beta", random_tensor(&[32], 16), true);
    let mut tape = Tape::new();
    group.throughput(Throughput::Elements(21 * shape.iter().product::<usize>() as u64));
    for (level, pool) in simd_pools() {
        group.bench_function(format!("64x26x26x32 forward+backward {}", level.name()), |bench| {
            pool.install(|| {
                bench.iter(|| {
                    let loss = {
                        let mut g = Graph::new(&mut tape, &params, true);
                        let (x, gamma, beta) = (g.param(x), g.param(gamma), g.param(beta));
                        let y = g
                            .batch_norm(x, Some(gamma), Some(beta), 1e-3, Statistics::Batch, None)
                            .expect("valid shapes");
                        g.sum(y)
                    };
                    tape.backward(loss, &mut params);
                })
            })
        });
    }
    group.finish();
}

fn bench_softmax_cross_entropy(c: &mut Criterion) {
    let mut group = c.benchmark_group("softmax_cross_entropy");
    for (model, rows, sparse) in [("mlp", 32, true), ("cnn", 64, false)] {
        let classes = 10;
        let mut params = ParamStore::new();
        let logits = params.add("logits", random_tensor(&[rows, classes], 5), true);
        let mut rng = Rng::new(6);
        let labels: Vec<usize> = (0..rows).map(|_| rng.below(classes)).collect();
        let target = if sparse {
            Tensor::from_vec(vec![rows], labels.iter().map(|&l| l as f32).collect())
        } else {
            let mut one_hot = vec![0.0; rows * classes];
            labels
                .iter()
                .enumerate()
                .for_each(|(r, &l)| one_hot[r * classes + l] = 1.0);
            Tensor::from_vec(vec![rows, classes], one_hot)
        }
        .expect("length matches shape");
        let mut tape = Tape::new();
        group.bench_function(format!("{model} {rows}x{classes} forward+backward"), |bench| {
            bench.iter(|| {
                let loss = {
                    let mut g = Graph::new(&mut tape, &params, true);
                    let (logits, target) = (g.param(logits), g.constant(&target));
                    g.softmax_cross_entropy(logits, target, sparse).expect("valid shapes")
                };
                tape.backward(loss, &mut params);
            })
        });
    }
    group.finish();
}

fn bench_optimizers(c: &mut Criterion) {
    let mut group = c.benchmark_group("optimizer");
    // The `mlp`'s weights: 101,770 values in four tensors.
    let shapes: [&[usize]; 4] = [&[784, 128], &[128], &[128, 10], &[10]];
    let mut params = ParamStore::new();
    for (i, shape) in shapes.iter().enumerate() {
        let id = params.add(format!("w{i}"), random_tensor(shape, 10 + i as u64), true);
        params.set_grad_for_test(id, &random(shape.iter().product(), 20 + i as u64));
    }
    let values: usize = shapes.iter().map(|s| s.iter().product::<usize>()).sum();
    group.throughput(Throughput::Elements(values as u64));
    let optimizers: [(&str, Box<dyn Optimizer>); 2] = [
        ("adam", Box::new(Adam::new(1e-3))),
        ("rmsprop", Box::new(RMSprop::new(1e-3))),
    ];
    for (name, mut optimizer) in optimizers {
        group.bench_function(format!("{name} {values} weights"), |bench| {
            bench.iter(|| optimizer.step(&mut params))
        });
    }
    group.finish();
}

criterion_group! {
    name = kernels;
    // Short runs: the suite times ~45 cases and should finish in a few minutes.
    config = Criterion::default()
        .sample_size(15)
        .warm_up_time(Duration::from_millis(300))
        .measurement_time(Duration::from_millis(1500));
    targets = bench_matmul, bench_conv, bench_pool, bench_recurrent, bench_batch_norm, bench_softmax_cross_entropy,
        bench_optimizers
}
criterion_main!(kernels);
