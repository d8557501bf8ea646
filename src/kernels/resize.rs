//! Resizing channels-last images to any size, bilinear or nearest-neighbour (Keras's
//! `Resizing` and `UpSampling2D(interpolation="bilinear")`, which call `ops.image.resize`), and
//! the gradients.
//!
//! Positions follow TensorFlow's `resize_bilinear` and `resize_nearest_neighbor` with half-pixel
//! centres and no antialiasing, as Keras 3 asks for, with TensorFlow's `float` scale `in/out`:
//! bilinear output pixel `o` samples the input at `(o + 0.5)·scale − 0.5`, between its floor and
//! ceiling, both clamped to the image; nearest takes pixel `floor((o + 0.5)·scale)`, clamped. The
//! arithmetic is TensorFlow's too (`top + (bottom − top)·dy` with `top = left + (right − left)·dx`),
//! so results agree to the last bits rather than just to rounding.

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

/// TensorFlow's scale of an axis resized from `size` to `out_size` positions: `in/out` as a
/// `float` (for a whole factor exactly `1/factor`, the division being correctly rounded).
fn scale(size: usize, out_size: usize) -> f32 {
    size as f32 / out_size as f32
}

/// The bilinear tap of output position `out` of an axis resized from `size` to `out_size`.
fn tap(out: usize, size: usize, out_size: usize) -> Tap {
    let source = (out as f32 + 0.5) * scale(size, out_size) - 0.5;
    let floor = source.floor();
    // A negative position samples the first pixel (both neighbours clamp to it); `as` clamps
    // the negative floor and ceiling to 0.
    Tap {
        low: (floor as usize).min(size - 1),
        high: (source.ceil() as usize).min(size - 1),
        weight: source - floor,
    }
}

/// The nearest-neighbour source of output position `out` of an axis resized from `size` to
/// `out_size`.
fn nearest(out: usize, size: usize, out_size: usize) -> usize {
    (((out as f32 + 0.5) * scale(size, out_size)).floor() as usize).min(size - 1)
}

/// Writes into `target` the bilinear resizing of `source` (`batch` images of `from` pixels
/// with `channels` values each) to `to` = (rows, columns).
pub(crate) fn resize_bilinear(
    source: &[f32],
    from: Size,
    target: &mut [f32],
    (batch, channels): (usize, usize),
    to: Size,
) {
    let (out_h, out_w) = to;
    let (image, out_image) = (from.0 * from.1 * channels, out_h * out_w * channels);
    debug_assert_eq!(target.len(), batch * out_image);
    target
        .par_chunks_mut(out_image.max(1))
        .zip(source.par_chunks(image.max(1)))
        .for_each(|(out, image)| {
            let pixel = |y: usize, x: usize| &image[(y * from.1 + x) * channels..][..channels];
            for oy in 0..out_h {
                let row = tap(oy, from.0, out_h);
                for ox in 0..out_w {
                    let col = tap(ox, from.1, out_w);
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

/// The gradient of [`resize_bilinear`]: adds to `source_grad` (images of `from` pixels) each
/// output gradient of `grad` (images of `to` pixels), shared among its four neighbours by their
/// weights.
pub(crate) fn resize_bilinear_backward(grad: &[f32], source_grad: &mut [f32], from: Size, channels: usize, to: Size) {
    let (out_h, out_w) = to;
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
                let row = tap(oy, from.0, out_h);
                for ox in 0..out_w {
                    let col = tap(ox, from.1, out_w);
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

/// Writes into `target` the nearest-neighbour resizing of `source` (`batch` images of `from`
/// pixels with `channels` values each) to `to` = (rows, columns).
pub(crate) fn resize_nearest(
    source: &[f32],
    from: Size,
    target: &mut [f32],
    (batch, channels): (usize, usize),
    to: Size,
) {
    let (image, out_image) = (from.0 * from.1 * channels, to.0 * to.1 * channels);
    debug_assert_eq!(target.len(), batch * out_image);
    target
        .par_chunks_mut(out_image.max(1))
        .zip(source.par_chunks(image.max(1)))
        .for_each(|(out, image)| {
            for oy in 0..to.0 {
                let y = nearest(oy, from.0, to.0);
                for ox in 0..to.1 {
                    let x = nearest(ox, from.1, to.1);
                    out[(oy * to.1 + ox) * channels..][..channels]
                        .copy_from_slice(&image[(y * from.1 + x) * channels..][..channels]);
                }
            }
        });
}

/// The gradient of [`resize_nearest`]: adds each output gradient of `grad` (images of `to`
/// pixels) to the source pixel it copied, in `source_grad` (images of `from` pixels).
pub(crate) fn resize_nearest_backward(grad: &[f32], source_grad: &mut [f32], from: Size, channels: usize, to: Size) {
    let (image, out_image) = (from.0 * from.1 * channels, to.0 * to.1 * channels);
    source_grad
        .par_chunks_mut(image.max(1))
        .zip(grad.par_chunks(out_image.max(1)))
        .for_each(|(image, grad)| {
            for oy in 0..to.0 {
                let y = nearest(oy, from.0, to.0);
                for ox in 0..to.1 {
                    let x = nearest(ox, from.1, to.1);
                    let dest = &mut image[(y * from.1 + x) * channels..][..channels];
                    let g = &grad[(oy * to.1 + ox) * channels..][..channels];
                    dest.iter_mut().zip(g).for_each(|(d, g)| *d += g);
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
        let taps: Vec<_> = (0..6).map(|o| tap(o, 3, 6)).collect();
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
        assert!((0..4).all(|o| tap(o, 4, 4)
            == Tap {
                low: o,
                high: o,
                weight: 0.0
            }));
    }

    #[test]
    fn nearest_sources_follow_tensorflows_half_pixel_floor() {
        // 3 → 5 pixels: scale 0.6, sources floor(0.3, 0.9, 1.5, 2.1, 2.7).
        assert_eq!((0..5).map(|o| nearest(o, 3, 5)).collect::<Vec<_>>(), [0, 0, 1, 2, 2]);
        // 5 → 2 pixels: scale 2.5, sources floor(1.25, 3.75).
        assert_eq!((0..2).map(|o| nearest(o, 5, 2)).collect::<Vec<_>>(), [1, 3]);
        // Downsampling 4 → 3 bilinear: scale 4/3, sources 0.1667, 1.5, 2.8333.
        let taps: Vec<_> = (0..3).map(|o| tap(o, 4, 3)).collect();
        assert_eq!((taps[1].low, taps[1].high, taps[1].weight), (1, 2, 0.5));
        assert_eq!((taps[2].low, taps[2].high), (2, 3));
    }
}
