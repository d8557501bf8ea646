//! The 1×1 convolution with stride 1 (MobileNet's expansion and projection layers, ResNet's
//! bottleneck ends) as blocks of pixels, each multiplied by the whole kernel and finished (bias,
//! residual, activation) while the block is still in the core's first-level cache.
//!
//! Why not gemm-f32: these products have many rows (the pixels: 12,544 at 112×112) and a short
//! inner dimension (16 to 64 channels), so they move far more data than they compute. Through
//! gemm each output value is written by the product and then read and written again by the
//! output pass (bias, residual, activation), and the inputs are packed first: three passes
//! over image-sized tensors where one suffices. Here the kernel (at most
//! [`MAX_KERNEL_VALUES`] values) stays in cache, the pixels are read once in place, and each
//! output is written once. Products with a larger kernel (a long inner dimension, where the
//! arithmetic dominates) keep gemm-f32. The timings are in docs/PERFORMANCE.md; the ignored
//! test `cargo test --release --lib pointwise -- --ignored --nocapture` reproduces them.
//!
//! Every output is `((Σ x·k) + bias) + residual` through the activation, the sum over the
//! channels in order on one chain, whatever the block, the thread or the vector width: the
//! AVX-512, AVX2 and scalar paths give the same bits, and so do 1 and 2 threads.

use super::activation::Activation;
use super::simd::{Simd, dispatch_simd};
use super::small_gemm::{Store, Strided, small_gemm_stored};
use super::threads::even_blocks;
use rayon::prelude::*;

/// The largest kernel (`channels × filters` values) this module multiplies: 64 KiB, which
/// stays in a core's cache beside a block of pixels and their outputs.
const MAX_KERNEL_VALUES: usize = 16 * 1024;
/// Pixels per block at most.
const BLOCK_PIXELS: usize = 96;

/// What is added and applied to each output pixel after the product.
#[derive(Clone, Copy)]
pub(crate) struct Finish<'a> {
    /// One value per filter, added first.
    pub(crate) bias: Option<&'a [f32]>,
    /// A tensor of the output's shape, added next (a residual connection).
    pub(crate) residual: Option<&'a [f32]>,
    /// Applied last.
    pub(crate) activation: Activation,
}

/// Whether [`pointwise_conv`] handles a `channels → filters` convolution: whole 16-wide vectors
/// of filters and a kernel small enough to stay in cache. (24 filters ran the AVX2 path here at
/// 0.65–0.69× gemm-f32 plus the output pass on AVX-512 machines: see the ignored speed test.)
pub(crate) fn handles(channels: usize, filters: usize) -> bool {
    channels > 0 && filters > 0 && filters.is_multiple_of(16) && channels * filters <= MAX_KERNEL_VALUES
}

/// `out (pixels, filters) = finish(x (pixels, channels) · kernel (channels, filters))`.
///
/// Panics if [`handles`] is false or a slice is shorter than its shape says (bugs in the
/// caller: the graph checks shapes first).
pub(crate) fn pointwise_conv(
    x: &[f32],
    kernel: &[f32],
    out: &mut [f32],
    (pixels, channels, filters): (usize, usize, usize),
    finish: Finish,
) {
    assert!(handles(channels, filters), "pointwise_conv called for another shape");
    assert!(
        x.len() >= pixels * channels && kernel.len() >= channels * filters && out.len() >= pixels * filters,
        "pointwise_conv operand too short"
    );
    assert!(
        finish.bias.is_none_or(|b| b.len() >= filters),
        "pointwise_conv bias too short"
    );
    assert!(
        finish.residual.is_none_or(|r| r.len() >= pixels * filters),
        "pointwise_conv residual too short"
    );
    let block_pixels = pixels.div_ceil(even_blocks(pixels, BLOCK_PIXELS)).max(1);
    out[..pixels * filters]
        .par_chunks_mut(block_pixels * filters)
        .enumerate()
        .for_each(|(block, out)| {
            let first = block * block_pixels;
            let rows = out.len() / filters;
            let x = &x[first * channels..(first + rows) * channels];
            let residual = finish.residual.map(|r| &r[first * filters..(first + rows) * filters]);
            block_product(
                x,
                kernel,
                out,
                (rows, channels, filters),
                (finish.bias, residual, finish.activation),
            );
        });
}

/// One block of `rows` pixels of [`pointwise_conv`] (`x` `(rows, channels)`, `out`
/// `(rows, filters)`, `residual` as `out`), on the calling thread: the same bits as
/// [`pointwise_conv`] gives those pixels. `filters` must be a multiple of 8.
pub(super) fn pixel_block(
    x: &[f32],
    kernel: &[f32],
    out: &mut [f32],
    (rows, channels, filters): (usize, usize, usize),
    finish: Finish,
) {
    assert!(
        filters.is_multiple_of(8),
        "pointwise pixel_block works on whole vectors"
    );
    let residual = finish.residual.map(|r| &r[..rows * filters]);
    block_product(
        &x[..rows * channels],
        &kernel[..channels * filters],
        &mut out[..rows * filters],
        (rows, channels, filters),
        (finish.bias, residual, finish.activation),
    );
}

dispatch_simd!(block_product<> => block_body(
    x: &[f32], kernel: &[f32], out: &mut [f32], dims: (usize, usize, usize),
    finish: (Option<&[f32]>, Option<&[f32]>, Activation)
) wide: dims.2.is_multiple_of(16));

/// One block of `rows` pixels: the product into `out`, each output finished (bias, residual,
/// activation) while its sum is still in a register.
#[inline(always)]
fn block_body<S: Simd>(
    s: S,
    x: &[f32],
    kernel: &[f32],
    out: &mut [f32],
    (rows, channels, filters): (usize, usize, usize),
    (bias, residual, activation): (Option<&[f32]>, Option<&[f32]>, Activation),
) {
    let pixels = Strided {
        data: x,
        row_stride: channels,
        col_stride: 1,
    };
    let store = Store::Finished {
        bias,
        residual: residual.map(|r| (r, filters)),
        activation,
    };
    small_gemm_stored(
        s,
        (rows, channels, filters),
        pixels,
        (kernel, filters),
        (out, filters),
        store,
    );
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Transpose, matmul};

    /// `(pixels, channels, filters)` values of a deterministic pattern.
    fn operands(pixels: usize, channels: usize, filters: usize) -> (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>) {
        let value = |i: usize, m: usize| ((i * 7919 % m) as f32 - m as f32 / 2.0) / m as f32;
        let x = (0..pixels * channels).map(|i| value(i, 13)).collect();
        let kernel = (0..channels * filters).map(|i| value(i, 11)).collect();
        let bias = (0..filters).map(|i| value(i, 5)).collect();
        let residual = (0..pixels * filters).map(|i| value(i, 17)).collect();
        (x, kernel, bias, residual)
    }

    #[test]
    fn matches_the_product_then_the_output_pass() {
        // A partial last block, one and two 16-wide vectors of filters, a ReLU6 and a plain ReLU.
        for &(pixels, channels, filters) in &[(1, 3, 16), (97, 16, 32), (200, 32, 16), (250, 24, 144)] {
            let (x, kernel, bias, residual) = operands(pixels, channels, filters);
            let mut expected = vec![0.0; pixels * filters];
            matmul(
                &x,
                Transpose::No,
                &kernel,
                Transpose::No,
                &mut expected,
                pixels,
                channels,
                filters,
                false,
            );
            for activation in [
                Activation::Linear,
                Activation::Relu { max_value: 6.0 },
                Activation::Relu {
                    max_value: f32::INFINITY,
                },
            ] {
                let finish = Finish {
                    bias: Some(&bias),
                    residual: Some(&residual),
                    activation,
                };
                let mut out = vec![f32::NAN; pixels * filters];
                pointwise_conv(&x, &kernel, &mut out, (pixels, channels, filters), finish);
                for (i, (&got, &product)) in out.iter().zip(&expected).enumerate() {
                    let want = activation.apply(product + bias[i % filters] + residual[i]);
                    assert!(
                        (got - want).abs() < 1e-5,
                        "{pixels}x{channels}x{filters} at {i}: {got} vs {want}"
                    );
                }
            }
        }
    }

    /// AVX-512 and AVX2 on one or two threads give the same bits (one chain of fused
    /// multiply-adds per output); the scalar path, which rounds each product before its add,
    /// agrees within rounding and gives the same bits on one thread as on two.
    #[test]
    fn gives_the_same_bits_on_one_and_two_threads_and_every_vector_width() {
        use crate::kernels::simd::SimdLevel;
        let (pixels, channels, filters) = (300, 24, 48);
        let (x, kernel, bias, _) = operands(pixels, channels, filters);
        let run = |level: SimdLevel, threads: usize| -> Vec<u32> {
            let mut out = vec![0.0; pixels * filters];
            let finish = Finish {
                bias: Some(&bias),
                residual: None,
                activation: Activation::Relu { max_value: 6.0 },
            };
            let pool = crate::kernels::simd::limited_pool(threads, level);
            pool.install(|| pointwise_conv(&x, &kernel, &mut out, (pixels, channels, filters), finish));
            out.iter().map(|v| v.to_bits()).collect()
        };
        let reference = run(SimdLevel::Avx512, 2);
        for (level, threads) in [(SimdLevel::Avx512, 1), (SimdLevel::Avx2, 2), (SimdLevel::Avx2, 1)] {
            assert!(run(level, threads) == reference, "{level:?} on {threads} threads");
        }
        let scalar = run(SimdLevel::Scalar, 2);
        assert!(run(SimdLevel::Scalar, 1) == scalar, "scalar on 1 thread");
        for (&x, &y) in scalar.iter().zip(&reference) {
            let (x, y) = (f32::from_bits(x), f32::from_bits(y));
            assert!((x - y).abs() <= 1e-5 * (1.0 + y.abs()), "scalar {x} against {y}");
        }
    }

    /// Reproduces the timings in docs/PERFORMANCE.md: MobileNetV2's 1×1 convolutions at batch 1
    /// through this module and through gemm-f32 followed by the output pass.
    #[test]
    #[ignore]
    fn speed_of_mobilenet_v2_shapes() {
        // A pool of the test's own: joining the global one made this thread its worker 0, which
        // deadlocked beside the other kernels' speed tests run in the same process.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        pool.install(|| {
            let shapes = [
                (12544, 32, 16),
                (12544, 16, 96),
                (3136, 96, 24),
                (3136, 24, 144),
                (3136, 144, 24),
                (784, 144, 32),
                (784, 32, 192),
                (784, 192, 32),
                (196, 192, 64),
                (196, 64, 384),
                (196, 384, 64),
                (196, 96, 576),
            ];
            let best_of = |mut run: Box<dyn FnMut() + '_>| {
                (0..100)
                    .map(|_| {
                        let start = std::time::Instant::now();
                        run();
                        start.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min)
            };
            for (pixels, channels, filters) in shapes {
                let (x, kernel, bias, _) = operands(pixels, channels, filters);
                let mut out = vec![0.0; pixels * filters];
                let activation = Activation::Relu { max_value: 6.0 };
                if !handles(channels, filters) {
                    continue;
                }
                let here = best_of(Box::new(|| {
                    let finish = Finish {
                        bias: Some(&bias),
                        residual: None,
                        activation,
                    };
                    pointwise_conv(&x, &kernel, &mut out, (pixels, channels, filters), finish)
                }));
                let mut out = vec![0.0; pixels * filters];
                let gemm = best_of(Box::new(|| {
                    matmul(
                        &x,
                        Transpose::No,
                        &kernel,
                        Transpose::No,
                        &mut out,
                        pixels,
                        channels,
                        filters,
                        false,
                    );
                    crate::kernels::bias_activation(&mut out, filters, Some(&bias), activation);
                }));
                println!(
                    "{pixels:>6}×{channels:>4}×{filters:>4}: {:7.1} µs here, {:7.1} µs gemm + output pass ({:.2}×)",
                    here * 1e6,
                    gemm * 1e6,
                    gemm / here
                );
            }
        });
    }
}
