//! Bilinear upsampling of channels-last images by whole factors (Keras's
//! `UpSampling2D(interpolation="bilinear")`, which calls `ops.image.resize`), and its gradient.
//!
//! Positions follow TensorFlow's `resize_bilinear` with half-pixel centres and no antialiasing,
//! as Keras 3 asks for: output pixel `o` samples the input at `(o + 0.5)·(in/out) − 0.5`,
//! between its floor and ceiling, both clamped to the image. The arithmetic is TensorFlow's too
//! (`top + (bottom − top)·dy` with `top = left + (right − left)·dx`), so results agree to the
//! last bits rather than just to rounding.

use super::spatial::Size;
use rayon::prelude::*;

/// Where one output row (or column) samples the input: the two neighbours and the weight of
/// the second.
#[derive(Clone, Copy, Debug, PartialEq)]
struct Tap {
    low: usize,
    high: usize,
    weight: f32,
}

/// The tap of output position `out` of an axis of `size` input positions grown `factor` times.
fn tap(out: usize, size: usize, factor: usize) -> Tap {
    // TensorFlow's scale is in/out as a float, which for a whole factor is exactly 1/factor's.
    let source = (out as f32 + 0.5) * (1.0 / factor as f32) - 0.5;
    let floor = source.floor();
    // A negative position samples the first pixel (both neighbours clamp to it); `as` clamps
    // the negative floor and ceiling to 0.
    Tap {
        low: (floor as usize).min(size - 1),
        high: (source.ceil() as usize).min(size - 1),
        weight: source - floor,
    }
}

/// Writes into `target` the bilinear upsampling of `source` (`batch` images of `from` pixels
/// with `channels` values each) by `factor` = (rows, columns).
pub(crate) fn upsample_bilinear(
    source: &[f32],
    from: Size,
    target: &mut [f32],
    (batch, channels): (usize, usize),
    factor: Size,
) {
    let (out_h, out_w) = (from.0 * factor.0, from.1 * factor.1);
    let (image, out_image) = (from.0 * from.1 * channels, out_h * out_w * channels);
    debug_assert_eq!(target.len(), batch * out_image);
    target
        .par_chunks_mut(out_image.max(1))
        .zip(source.par_chunks(image.max(1)))
        .for_each(|(out, image)| {
            let pixel = |y: usize, x: usize| &image[(y * from.1 + x) * channels..][..channels];
            for oy in 0..out_h {
                let row = tap(oy, from.0, factor.0);
                for ox in 0..out_w {
                    let col = tap(ox, from.1, factor.1);
                    let (top_left, top_right) = (pixel(row.low, col.low), pixel(row.low, col.high));
                    let (bottom_left, bottom_right) = (pixel(row.high, col.low), pixel(row.high, col.high));
                    let dest = &mut out[(oy * out_w + ox) * channels..][..channels];
                    for (c, value) in dest.iter_mut().enumerate() {
                        let top = top_left[c] + (top_right[c] - top_left[c]) * col.weight;
                        let bottom = bottom_left[c] + (bottom_right[c] - bottom_left[c]) * col.weight;
                        *value = top + (bottom - top) * row.weight;
                    }
                }
            }
        });
}

/// The gradient of [`upsample_bilinear`]: adds to `source_grad` (images of `from` pixels) each
/// output gradient of `grad`, shared among its four neighbours by their weights.
pub(crate) fn upsample_bilinear_backward(
    grad: &[f32],
    source_grad: &mut [f32],
    from: Size,
    channels: usize,
    factor: Size,
) {
    let (out_h, out_w) = (from.0 * factor.0, from.1 * factor.1);
    let (image, out_image) = (from.0 * from.1 * channels, out_h * out_w * channels);
    source_grad
        .par_chunks_mut(image.max(1))
        .zip(grad.par_chunks(out_image.max(1)))
        .for_each(|(image, grad)| {
            let mut add = |y: usize, x: usize, g: &[f32], weight: f32| {
                let dest = &mut image[(y * from.1 + x) * channels..][..channels];
                dest.iter_mut().zip(g).for_each(|(d, g)| *d += g * weight);
            };
            for oy in 0..out_h {
                let row = tap(oy, from.0, factor.0);
                for ox in 0..out_w {
                    let col = tap(ox, from.1, factor.1);
                    let g = &grad[(oy * out_w + ox) * channels..][..channels];
                    let (up, down) = (1.0 - row.weight, row.weight);
                    let (left, right) = (1.0 - col.weight, col.weight);
                    add(row.low, col.low, g, up * left);
                    add(row.low, col.high, g, up * right);
                    add(row.high, col.low, g, down * left);
                    add(row.high, col.high, g, down * right);
                }
            }
        });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn taps_use_half_pixel_centres_clamped_to_the_image() {
        // Factor 2 over 3 pixels: sources -0.25, 0.25, 0.75, 1.25, 1.75, 2.25.
        let taps: Vec<_> = (0..6).map(|o| tap(o, 3, 2)).collect();
        let expected = [
            (0, 0, 0.75),
            (0, 1, 0.25),
            (0, 1, 0.75),
            (1, 2, 0.25),
            (1, 2, 0.75),
            (2, 2, 0.25),
        ];
        for (t, (low, high, weight)) in taps.iter().zip(expected) {
            assert_eq!((t.low, t.high, t.weight), (low, high, weight));
        }
        // Factor 1 samples the pixels themselves.
        assert!((0..4).all(|o| tap(o, 4, 1)
            == Tap {
                low: o,
                high: o,
                weight: 0.0
            }));
    }
}
