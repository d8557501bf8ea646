//! Depthwise convolution on channels-last batches: each input channel convolved with its own
//! `depth_multiplier` filters, as TensorFlow's `depthwise_conv2d` (output channel
//! `c·multiplier + m` is input channel `c` under filter `m`; kernel `(KH, KW, C, multiplier)`).
//!
//! A direct loop, not a lowering to matrix products: 3×3 windows with one filter per channel
//! (the common case) run in `depthwise_3x3.rs` with the taps in registers; other shapes, per
//! output pixel and kernel tap, loop over the contiguous channels of one input pixel and one
//! tap of the kernel, a loop the compiler vectorizes. An activation after the convolution can
//! be applied as the outputs are written (`activation.rs`). The forward pass runs in parallel over output rows, the input gradient
//! over the images of the batch, the kernel gradient over the taps, so no two threads write the same value and the
//! results do not depend on the thread count.

use super::Window2d;
use super::activation::Activation;
use super::depthwise_3x3;
use super::simd::widest;
use rayon::prelude::*;

/// The input pixel a tap of an output position reads, or `None` in the zero padding.
fn source(out: usize, tap: usize, stride: usize, dilation: usize, pad: usize, size: usize) -> Option<usize> {
    (out * stride + tap * dilation).checked_sub(pad).filter(|&i| i < size)
}

/// `out[c·m + j] += x[c] · k[c·m + j]` over the channels of one pixel.
#[inline(always)]
fn multiply_add(out: &mut [f32], x: &[f32], k: &[f32], multiplier: usize) {
    if multiplier == 1 {
        out.iter_mut().zip(x).zip(k).for_each(|((o, x), k)| *o += x * k);
        return;
    }
    for ((o, &x), k) in out.chunks_exact_mut(multiplier).zip(x).zip(k.chunks_exact(multiplier)) {
        o.iter_mut().zip(k).for_each(|(o, k)| *o += x * k);
    }
}

/// Every `(tap row, tap column, input pixel offset)` an output position reads.
pub(super) fn taps(w: &Window2d, oh: usize, ow: usize) -> impl Iterator<Item = (usize, usize)> + '_ {
    (0..w.window_h).flat_map(move |kh| {
        let ih = source(oh, kh, w.stride_h, w.dilation_h, w.pad_top, w.height);
        (0..w.window_w).filter_map(move |kw| {
            let iw = source(ow, kw, w.stride_w, w.dilation_w, w.pad_left, w.width)?;
            Some((kh * w.window_w + kw, (ih? * w.width + iw) * w.channels))
        })
    })
}

/// `(output channels, values per input image, values per output image)`.
fn sizes(w: &Window2d, multiplier: usize) -> (usize, usize, usize) {
    let width = w.channels * multiplier;
    (width, w.height * w.width * w.channels, w.out_h * w.out_w * width)
}

/// `out` `(N, OH, OW, C·multiplier)` = the depthwise convolution of `x` `(N, H, W, C)` with
/// `kernel` `(KH, KW, C, multiplier)`, plus `bias` `(C·multiplier)`, through `activation`.
pub(crate) fn depthwise_conv(
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    w: &Window2d,
    (multiplier, activation): (usize, Activation),
) {
    let (width, image_in, _) = sizes(w, multiplier);
    let row_len = w.out_w * width;
    if row_len == 0 || w.out_h == 0 {
        return;
    }
    // In parallel over output rows, so a single image uses every thread; each output is summed
    // over its taps in the same order whatever the split. The channel loops run on the widest
    // vectors the CPU has (the same bits on every width: no multiply-add is fused).
    out[..w.batch * w.out_h * row_len]
        .par_chunks_mut(row_len)
        .enumerate()
        .for_each(|(row_number, out)| {
            let (n, oh) = (row_number / w.out_h, row_number % w.out_h);
            let x = &x[n * image_in..][..image_in];
            depthwise_row(x, kernel, bias, out, w, oh, (multiplier, activation));
        });
}

/// Output row `oh` (`OW·C·multiplier` values in `out`) of [`depthwise_conv`] of one `image`
/// `(H, W, C)`: the same bits whichever caller computes it.
pub(super) fn depthwise_row(
    image: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    w: &Window2d,
    oh: usize,
    (multiplier, activation): (usize, Activation),
) {
    if depthwise_3x3::handles(w, multiplier) {
        return depthwise_3x3::row(image, kernel, bias, out, w, oh, activation);
    }
    let width = w.channels * multiplier;
    widest(|| {
        for (ow, pixel) in out[..w.out_w * width].chunks_exact_mut(width).enumerate() {
            match bias {
                Some(b) => pixel.copy_from_slice(&b[..width]),
                None => pixel.fill(0.0),
            }
            for (tap, at) in taps(w, oh, ow) {
                multiply_add(
                    pixel,
                    &image[at..at + w.channels],
                    &kernel[tap * width..(tap + 1) * width],
                    multiplier,
                );
            }
            if activation != Activation::Linear {
                pixel.iter_mut().for_each(|v| *v = activation.apply(*v));
            }
        }
    })
}

/// Adds the input gradient of [`depthwise_conv`] for the output gradient `dy` to `dx`.
pub(crate) fn depthwise_conv_input_grad(dy: &[f32], kernel: &[f32], dx: &mut [f32], w: &Window2d, multiplier: usize) {
    let (width, image_in, image_out) = sizes(w, multiplier);
    dx.par_chunks_mut(image_in.max(1))
        .zip(dy.par_chunks(image_out.max(1)))
        .for_each(|(dx, dy)| {
            for (p, grad) in dy.chunks_exact(width).enumerate() {
                for (tap, at) in taps(w, p / w.out_w, p % w.out_w) {
                    let k = &kernel[tap * width..(tap + 1) * width];
                    let dx = &mut dx[at..at + w.channels];
                    if multiplier == 1 {
                        dx.iter_mut().zip(grad).zip(k).for_each(|((d, g), k)| *d += g * k);
                    } else {
                        for ((d, g), k) in dx
                            .iter_mut()
                            .zip(grad.chunks_exact(multiplier))
                            .zip(k.chunks_exact(multiplier))
                        {
                            *d += g.iter().zip(k).map(|(g, k)| g * k).sum::<f32>();
                        }
                    }
                }
            }
        });
}

/// Adds the kernel gradient of [`depthwise_conv`] for the output gradient `dy` to `dk`.
pub(crate) fn depthwise_conv_kernel_grad(x: &[f32], dy: &[f32], dk: &mut [f32], w: &Window2d, multiplier: usize) {
    let width = w.channels * multiplier;
    let positions = w.out_h * w.out_w;
    dk.par_chunks_mut(width.max(1)).enumerate().for_each(|(tap, dk)| {
        let (kh, kw) = (tap / w.window_w, tap % w.window_w);
        for n in 0..w.batch {
            for p in 0..positions {
                let (oh, ow) = (p / w.out_w, p % w.out_w);
                let ih = source(oh, kh, w.stride_h, w.dilation_h, w.pad_top, w.height);
                let iw = source(ow, kw, w.stride_w, w.dilation_w, w.pad_left, w.width);
                let (Some(ih), Some(iw)) = (ih, iw) else { continue };
                let at = ((n * w.height + ih) * w.width + iw) * w.channels;
                let grad = &dy[(n * positions + p) * width..(n * positions + p + 1) * width];
                multiply_add(dk, &x[at..at + w.channels], grad, multiplier);
            }
        }
    });
}
