//! The depthwise convolution's forward pass for 3×3 windows with one filter per channel
//! (MobileNet's, EfficientNet's): one output row at a time, a vector of channels at a time,
//! with that vector's nine kernel taps held in registers while the loop walks along the row
//! and four neighbouring outputs are summed at once (four independent chains of multiply-adds
//! keep the vector unit busy; one chain would wait on each add). Bias and the activation are
//! applied before the single store, and the zero padding is skipped tap by tap at the edges,
//! so no padded copy of the input is made and no output is written twice.
//!
//! Each output is `bias + Σ x·k` over its taps in row-major tap order, on one chain, whatever
//! the row, the thread or the vector width: the interior and edge loops and the AVX2 and
//! AVX-512 paths give the same bits.

use super::Window2d;
use super::activation::Activation;
use super::simd::{Simd, dispatch_simd};

/// Whether [`row`] handles this convolution: a 3×3 window, one filter per channel and a
/// channel count that fills whole vectors (a multiple of 8).
pub(super) fn handles(w: &Window2d, multiplier: usize) -> bool {
    multiplier == 1 && w.window_h == 3 && w.window_w == 3 && w.channels.is_multiple_of(8) && w.channels > 0
}

/// The output columns whose three taps all read the input (no padding): `first..end`.
fn interior_columns(w: &Window2d) -> (usize, usize) {
    let first = w.pad_left.div_ceil(w.stride_w).min(w.out_w);
    // Column `ow` is inside when `ow·stride + 2·dilation − pad_left ≤ width − 1`.
    let end = (w.width - 1 + w.pad_left)
        .checked_sub(2 * w.dilation_w)
        .map_or(0, |last| (last / w.stride_w + 1).min(w.out_w));
    (first, end.max(first))
}

dispatch_simd!(row_3x3<> => row_body(
    image: &[f32], kernel: &[f32], bias: Option<&[f32]>, out: &mut [f32], w: &Window2d, oh: usize,
    activation: Activation
) wide: w.channels.is_multiple_of(16));

/// Output row `oh` (`OW·C` values in `out`) of the depthwise convolution of one `image`
/// `(H, W, C)` with `kernel` `(3, 3, C, 1)`, plus `bias`, through `activation`.
pub(super) fn row(
    image: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    w: &Window2d,
    oh: usize,
    activation: Activation,
) {
    assert!(handles(w, 1), "depthwise_3x3 called for another shape");
    assert!(image.len() >= w.image_len(), "depthwise input too short");
    assert!(kernel.len() >= 9 * w.channels, "depthwise kernel too short");
    assert!(out.len() >= w.out_w * w.channels, "depthwise output too short");
    assert!(bias.is_none_or(|b| b.len() >= w.channels), "depthwise bias too short");
    row_3x3(image, kernel, bias, out, w, oh, activation);
}

/// `activation(v)`: for a ReLU, `v` capped at `max_value` where `v > 0`, else 0 (the
/// unfused ReLU's values; NaN gives 0, as `f32::max(NaN, 0)` does).
#[inline(always)]
fn activate<S: Simd>(s: S, v: S::V, activation: Activation) -> S::V {
    match activation {
        Activation::Linear => v,
        Activation::Relu { max_value } => {
            let (zero, cap) = (s.splat(0.0), s.splat(max_value));
            let capped = s.select(s.greater(v, cap), cap, v);
            s.select(s.greater(v, zero), capped, zero)
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn row_body<S: Simd>(
    s: S,
    image: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    out: &mut [f32],
    w: &Window2d,
    oh: usize,
    activation: Activation,
) {
    let c = w.channels;
    let rows = w.rows_inside(oh);
    let (first, end) = interior_columns(w);
    // Offsets (in values) of the input rows the three kernel rows read, when all are inside.
    let full = rows == (0..3);
    let row_at = |ky: usize| (oh * w.stride_h + ky * w.dilation_h).saturating_sub(w.pad_top) * w.width * c;
    let row_offsets = [row_at(0), row_at(1), row_at(2)];
    // The input column of tap `kx` of interior output column `ow`, in values.
    let column_at = |ow: usize, kx: usize| (ow * w.stride_w + kx * w.dilation_w - w.pad_left) * c;
    // No closure below touches a vector: a closure is not compiled for the caller's target
    // features, so the intrinsics inside it would stay calls.
    for c0 in (0..c).step_by(S::LANES) {
        let b = match bias {
            Some(bias) => s.load(&bias[c0..]),
            None => s.splat(0.0),
        };
        let edge = (image, kernel, b, activation);
        if !full {
            for ow in 0..w.out_w {
                s.store(&mut out[ow * c + c0..], edge_output(s, edge, w, (oh, ow, c0)));
            }
            continue;
        }
        let mut k = [b; 9];
        for (t, tap) in k.iter_mut().enumerate() {
            *tap = s.load(&kernel[t * c + c0..]);
        }
        for ow in 0..first {
            s.store(&mut out[ow * c + c0..], edge_output(s, edge, w, (oh, ow, c0)));
        }
        // The farthest value the interior loop reads, checked once: every interior tap lies
        // inside the image (rows by `full`, columns by `interior_columns`).
        if end > first {
            let last = row_offsets[2] + column_at(end - 1, 2) + c0 + S::LANES;
            assert!(last <= w.image_len(), "depthwise interior outside the image");
        }
        let pixels = image.as_ptr();
        let mut ow = first;
        while ow + 4 <= end {
            let mut sums = [b; 4];
            for ky in 0..3 {
                for kx in 0..3 {
                    for (j, sum) in sums.iter_mut().enumerate() {
                        // SAFETY: inside the image, as checked above.
                        let value = unsafe { s.load_ptr(pixels.add(row_offsets[ky] + column_at(ow + j, kx) + c0)) };
                        *sum = s.mul_add(value, k[ky * 3 + kx], *sum);
                    }
                }
            }
            for (j, sum) in sums.into_iter().enumerate() {
                s.store(&mut out[(ow + j) * c + c0..], activate(s, sum, activation));
            }
            ow += 4;
        }
        while ow < end {
            let mut sum = b;
            for ky in 0..3 {
                for kx in 0..3 {
                    // SAFETY: inside the image, as checked above.
                    let value = unsafe { s.load_ptr(pixels.add(row_offsets[ky] + column_at(ow, kx) + c0)) };
                    sum = s.mul_add(value, k[ky * 3 + kx], sum);
                }
            }
            s.store(&mut out[ow * c + c0..], activate(s, sum, activation));
            ow += 1;
        }
        for ow in end..w.out_w {
            s.store(&mut out[ow * c + c0..], edge_output(s, edge, w, (oh, ow, c0)));
        }
    }
}

/// The output at row `oh`, column `ow`, channels `c0..` from `(image, kernel, bias vector,
/// activation)`, skipping the taps in the padding.
#[inline(always)]
fn edge_output<S: Simd>(
    s: S,
    (image, kernel, bias, activation): (&[f32], &[f32], S::V, Activation),
    w: &Window2d,
    (oh, ow, c0): (usize, usize, usize),
) -> S::V {
    let c = w.channels;
    let mut sum = bias;
    for ky in w.rows_inside(oh) {
        for kx in w.cols_inside(ow) {
            if let Some((y, x)) = w.source(oh, ow, ky, kx) {
                let value = s.load(&image[(y * w.width + x) * c + c0..]);
                sum = s.mul_add(value, s.load(&kernel[(ky * 3 + kx) * c + c0..]), sum);
            }
        }
    }
    activate(s, sum, activation)
}
