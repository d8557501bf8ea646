//! Int8 depthwise convolution, for a quantized `DepthwiseConv2D`: each channel of int8 images
//! under its own int8 filters, summed in exact `i32` and scaled back as the int8 products are
//! ([`Rescale`]).
//!
//! The loop is the `f32` kernel's (`depthwise.rs`): per output pixel and kernel tap, over the
//! contiguous channels of one input pixel, widened to `i32` (a loop the compiler vectorizes for
//! the level [`widest`] allows). The sums are exact integers and the scaling does the same
//! operations per element on every path, so paths and thread counts give the same bits.

use super::Window2d;
use super::depthwise::taps;
use super::int8_matmul::{Rescale, rescale_row};
use super::simd::widest;
use rayon::prelude::*;

/// `out (N, OH, OW, C·M)` = the depthwise convolution of the int8 images `x (N, H, W, C)` with
/// the int8 `kernel (KH, KW, C, M)`, each output pixel's `C·M` sums scaled by `rescale` (its
/// row: the pixel's index in the batch). Panics on inconsistent sizes (a caller bug).
pub(crate) fn int8_depthwise_conv(
    x: &[i8],
    kernel: &[i8],
    w: &Window2d,
    multiplier: usize,
    rescale: &Rescale,
    out: &mut [f32],
) {
    let width = w.channels * multiplier;
    let (image_in, positions) = (w.image_len(), w.positions());
    let image_out = positions * width;
    assert!(x.len() >= w.batch * image_in, "int8 depthwise input too short");
    assert!(
        kernel.len() == w.window_h * w.window_w * width,
        "int8 depthwise kernel of the wrong length"
    );
    assert!(out.len() >= w.batch * image_out, "int8 depthwise output too short");
    if image_out == 0 {
        return;
    }
    out[..w.batch * image_out]
        .par_chunks_mut(image_out)
        .zip(x.par_chunks(image_in.max(1)))
        .enumerate()
        .for_each_init(Vec::new, |sums: &mut Vec<i32>, (image, (out, x))| {
            sums.resize(width, 0);
            widest(|| {
                for (p, pixel) in out.chunks_exact_mut(width).enumerate() {
                    sums.fill(0);
                    for (tap, at) in taps(w, p / w.out_w, p % w.out_w) {
                        multiply_add(
                            sums,
                            &x[at..at + w.channels],
                            &kernel[tap * width..(tap + 1) * width],
                            multiplier,
                        );
                    }
                    let (row_scale, factors) = rescale.for_row(image * positions + p);
                    rescale_row(sums, row_scale, &factors[..width], rescale.bias, rescale.relu, pixel);
                }
            })
        });
}

/// `sums[c·m + j] += x[c] · k[c·m + j]` over the channels of one pixel, in exact integers.
#[inline(always)]
fn multiply_add(sums: &mut [i32], x: &[i8], k: &[i8], multiplier: usize) {
    if multiplier == 1 {
        let (sums, k) = (&mut sums[..x.len()], &k[..x.len()]);
        for i in 0..x.len() {
            sums[i] += i32::from(x[i]) * i32::from(k[i]);
        }
        return;
    }
    for ((sums, &x), k) in sums.chunks_exact_mut(multiplier).zip(x).zip(k.chunks_exact(multiplier)) {
        for (sum, &k) in sums.iter_mut().zip(k) {
            *sum += i32::from(x) * i32::from(k);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::{Scales, SimdLevel, simd_level};

    /// Deterministic int8 values over the whole range, extremes included.
    fn values(len: usize, seed: u64) -> Vec<i8> {
        let mut state = seed;
        (0..len)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match i % 7 {
                    0 => 127,
                    1 => -127,
                    _ => (((state >> 33) % 255) as i32 - 127) as i8,
                }
            })
            .collect()
    }

    /// The plain loops over every output, tap and channel, with zero padding spelled out.
    fn reference(x: &[i8], kernel: &[i8], w: &Window2d, multiplier: usize) -> Vec<i32> {
        let width = w.channels * multiplier;
        let mut out = vec![0i32; w.batch * w.positions() * width];
        for n in 0..w.batch {
            for oy in 0..w.out_h {
                for ox in 0..w.out_w {
                    for c in 0..w.channels {
                        for m in 0..multiplier {
                            let mut sum = 0i32;
                            for ky in 0..w.window_h {
                                for kx in 0..w.window_w {
                                    let iy = (oy * w.stride_h + ky * w.dilation_h) as isize - w.pad_top as isize;
                                    let ix = (ox * w.stride_w + kx * w.dilation_w) as isize - w.pad_left as isize;
                                    if iy < 0 || ix < 0 || iy >= w.height as isize || ix >= w.width as isize {
                                        continue;
                                    }
                                    let xv = x[((n * w.height + iy as usize) * w.width + ix as usize) * w.channels + c];
                                    let kv = kernel[(ky * w.window_w + kx) * width + c * multiplier + m];
                                    sum += i32::from(xv) * i32::from(kv);
                                }
                            }
                            out[((n * w.out_h + oy) * w.out_w + ox) * width + c * multiplier + m] = sum;
                        }
                    }
                }
            }
        }
        out
    }

    fn window(
        batch: usize,
        size: (usize, usize, usize),
        kernel: (usize, usize),
        stride: usize,
        pad: usize,
    ) -> Window2d {
        let (height, width, channels) = size;
        let out = |input: usize, k: usize| (input + 2 * pad - k) / stride + 1;
        Window2d {
            batch,
            height,
            width,
            channels,
            window_h: kernel.0,
            window_w: kernel.1,
            stride_h: stride,
            stride_w: stride,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad,
            pad_left: pad,
            out_h: out(height, kernel.0),
            out_w: out(width, kernel.1),
        }
    }

    /// The kernel's output is the reference sums scaled by Keras's formula, bit for bit, on
    /// every SIMD level and on 1 and 2 threads: multiplier 1 and 2, padding, stride 2, per
    /// image scales and calibrated factors, bias.
    #[test]
    fn int8_depthwise_matches_the_reference_bit_for_bit() {
        for &(batch, size, kernel, multiplier, stride, pad) in &[
            (2, (5, 6, 3), (3, 3), 1, 1, 1),
            (3, (7, 7, 17), (3, 3), 2, 2, 1),
            (1, (4, 9, 33), (2, 3), 1, 1, 0),
        ] {
            let w = window(batch, size, kernel, stride, pad);
            let width = w.channels * multiplier;
            let x = values(batch * w.image_len(), 11 + batch as u64);
            let k = values(kernel.0 * kernel.1 * width, 5 + multiplier as u64);
            let sums = reference(&x, &k, &w, multiplier);
            let row_scales: Vec<f32> = (0..batch).map(|n| 3.5 + n as f32 * 0.75).collect();
            let column_scales: Vec<f32> = (0..width).map(|c| 40.0 + c as f32 * 1.25).collect();
            let bias: Vec<f32> = (0..width).map(|c| c as f32 * 0.1 - 1.0).collect();
            let positions = w.positions();
            for calibrated in [false, true] {
                let scales = if calibrated {
                    Scales::Multiply {
                        factors: &column_scales,
                    }
                } else {
                    Scales::Divide {
                        row_scales: &row_scales,
                        rows_per_scale: positions,
                        column_scales: &column_scales,
                    }
                };
                let rescale = Rescale {
                    scales,
                    bias: Some(&bias),
                    relu: calibrated,
                };
                let want: Vec<u32> = sums
                    .iter()
                    .enumerate()
                    .map(|(i, &sum)| {
                        let (row, column) = (i / width, i % width);
                        let y = if calibrated {
                            sum as f32 * column_scales[column]
                        } else {
                            sum as f32 / (row_scales[row / positions] * column_scales[column])
                        };
                        let y = y + bias[column];
                        (if calibrated { y.max(0.0) } else { y }).to_bits()
                    })
                    .collect();
                let levels = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];
                for level in levels.into_iter().filter(|&level| level <= simd_level()) {
                    for threads in [1, 2] {
                        let pool = crate::kernels::simd::limited_pool(threads, level);
                        let mut out = vec![0.0f32; sums.len()];
                        pool.install(|| int8_depthwise_conv(&x, &k, &w, multiplier, &rescale, &mut out));
                        let got: Vec<u32> = out.iter().map(|v| v.to_bits()).collect();
                        assert_eq!(
                            got, want,
                            "{level:?}, {threads} threads, {size:?}, multiplier {multiplier}"
                        );
                    }
                }
            }
        }
    }
}
