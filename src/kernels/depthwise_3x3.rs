//! The depthwise convolution's forward pass for 3×3 windows with one filter per channel
//! (MobileNet's, EfficientNet's): one output row at a time, four neighbouring output pixels at
//! a time, all their channels a vector at a time (four independent chains of multiply-adds
//! keep the vector unit busy; one chain would wait on each add). Walking the channels of a few
//! pixels before moving along the row reads the input and writes the output in address order,
//! whole cache lines at once; the kernel's taps (9·C values) stay in the first-level cache.
//! An earlier version held one channel vector's nine taps in registers and walked the whole
//! row for each vector: it touched every cache line of three input rows once per vector and
//! was slower at every MobileNetV2 shape (docs/PERFORMANCE.md). Bias and the activation are
//! applied before the single store, and the zero padding is skipped tap by tap at the edges,
//! so no padded copy of the input is made and no output is written twice.
//!
//! Each output is `bias + Σ x·k` over its taps in row-major tap order, on one chain, whatever
//! the row, the thread or the vector width: the interior and edge loops and the AVX2 and
//! AVX-512 paths give the same bits.

use super::Window2d;
use super::activation::{Activation, activate};
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

dispatch_simd!(row_3x3<> => row_body(
    image: &[f32], kernel: &[f32], bias: Option<&[f32]>, out: &mut [f32], w: &Window2d, oh: usize,
    activation: Activation
) wide: w.channels.is_multiple_of(16));

/// Output row `oh`: the columns whose taps may fall in the padding through [`edge_output`],
/// the interior four columns at a time, then one at a time.
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
    let full = rows == (0..3);
    if !full {
        return edge_columns(s, (image, kernel, bias, activation), out, w, oh, 0..w.out_w);
    }
    edge_columns(s, (image, kernel, bias, activation), out, w, oh, 0..first);
    // Offsets (in values) of the input rows the three kernel rows read (all inside: `full`).
    let row_at = |ky: usize| (oh * w.stride_h + ky * w.dilation_h).saturating_sub(w.pad_top) * w.width * c;
    let row_offsets = [row_at(0), row_at(1), row_at(2)];
    // The input column of tap `kx` of interior output column `ow`, in values.
    let column_at = |ow: usize, kx: usize| (ow * w.stride_w + kx * w.dilation_w - w.pad_left) * c;
    // The farthest value the interior loops read, checked once: every interior tap lies
    // inside the image (rows by `full`, columns by `interior_columns`). No closure below
    // touches a vector: a closure is not compiled for the caller's target features, so the
    // intrinsics inside it would stay calls.
    if end > first {
        let last = row_offsets[2] + column_at(end - 1, 2) + c;
        assert!(last <= w.image_len(), "depthwise interior outside the image");
    }
    let input = (image.as_ptr(), row_offsets, (c * w.stride_w, c * w.dilation_w));
    let mut ow = first;
    while ow + 4 <= end {
        interior::<S, 4>(s, input, (kernel, bias, activation), out, column_at(ow, 0), (ow, c));
        ow += 4;
    }
    for ow in ow..end {
        interior::<S, 1>(s, input, (kernel, bias, activation), out, column_at(ow, 0), (ow, c));
    }
    edge_columns(s, (image, kernel, bias, activation), out, w, oh, end..w.out_w);
}

/// Output columns `ow..ow + J` (every channel) of an interior stretch of a row, from the
/// input `(first value, offsets of the three input rows, (values between neighbouring
/// outputs' windows, between a window's taps))`; `column` is the offset of column `ow`'s
/// window in an input row.
#[inline(always)]
fn interior<S: Simd, const J: usize>(
    s: S,
    (pixels, row_offsets, (step, tap_step)): (*const f32, [usize; 3], (usize, usize)),
    (kernel, bias, activation): (&[f32], Option<&[f32]>, Activation),
    out: &mut [f32],
    column: usize,
    (ow, c): (usize, usize),
) {
    for c0 in (0..c).step_by(S::LANES) {
        let mut sums = [bias_vector(s, bias, c0); J];
        for ky in 0..3 {
            for kx in 0..3 {
                let k = s.load(&kernel[(ky * 3 + kx) * c + c0..]);
                for (j, sum) in sums.iter_mut().enumerate() {
                    // SAFETY: `row_body` checked that the interior's windows lie inside the
                    // image.
                    let value =
                        unsafe { s.load_ptr(pixels.add(row_offsets[ky] + column + j * step + kx * tap_step + c0)) };
                    *sum = s.mul_add(value, k, *sum);
                }
            }
        }
        for (j, sum) in sums.into_iter().enumerate() {
            s.store(&mut out[(ow + j) * c + c0..], activate(s, sum, activation));
        }
    }
}

/// The bias of channels `c0..c0 + LANES`, or zeros.
#[inline(always)]
fn bias_vector<S: Simd>(s: S, bias: Option<&[f32]>, c0: usize) -> S::V {
    match bias {
        Some(bias) => s.load(&bias[c0..]),
        None => s.splat(0.0),
    }
}

/// Output columns `columns` of row `oh` through [`edge_output`].
#[inline(always)]
fn edge_columns<S: Simd>(
    s: S,
    (image, kernel, bias, activation): (&[f32], &[f32], Option<&[f32]>, Activation),
    out: &mut [f32],
    w: &Window2d,
    oh: usize,
    columns: std::ops::Range<usize>,
) {
    for ow in columns {
        for c0 in (0..w.channels).step_by(S::LANES) {
            let edge = (image, kernel, bias_vector(s, bias, c0), activation);
            s.store(&mut out[ow * w.channels + c0..], edge_output(s, edge, w, (oh, ow, c0)));
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

#[cfg(test)]
mod tests {
    use super::super::depthwise::depthwise_conv;
    use super::*;

    /// Reproduces the timings in docs/PERFORMANCE.md: MobileNetV2's depthwise convolutions
    /// (ReLU6, stride 2 as torchvision's export pads it: a valid window over a padded input)
    /// at batch 1 and 32, best of several calls.
    #[test]
    #[ignore]
    fn speed_of_mobilenet_v2_shapes() {
        crate::kernels::join_pool(Some(2));
        // (output size, channels, stride, layers of that shape)
        let shapes = [
            (112, 32, 1, 1),
            (56, 96, 2, 1),
            (56, 144, 1, 1),
            (28, 144, 2, 1),
            (28, 192, 1, 2),
            (14, 192, 2, 1),
            (14, 384, 1, 4),
            (14, 576, 1, 2),
            (7, 576, 2, 1),
            (7, 960, 1, 3),
        ];
        for batch in [1, 32] {
            let mut total = 0.0;
            for (size, channels, stride, layers) in shapes {
                let (input, pad) = if stride == 1 { (size, 1) } else { (2 * size + 1, 0) };
                let w = Window2d {
                    batch,
                    height: input,
                    width: input,
                    channels,
                    window_h: 3,
                    window_w: 3,
                    stride_h: stride,
                    stride_w: stride,
                    dilation_h: 1,
                    dilation_w: 1,
                    pad_top: pad,
                    pad_left: pad,
                    out_h: size,
                    out_w: size,
                };
                let x: Vec<f32> = (0..batch * input * input * channels).map(|i| (i % 7) as f32).collect();
                let kernel: Vec<f32> = (0..9 * channels).map(|i| (i % 5) as f32).collect();
                let bias = vec![0.5; channels];
                let mut out = vec![0.0; batch * size * size * channels];
                let relu6 = Activation::Relu { max_value: 6.0 };
                let best = (0..if batch == 1 { 100 } else { 10 })
                    .map(|_| {
                        let start = std::time::Instant::now();
                        depthwise_conv(&x, &kernel, Some(&bias), &mut out, &w, (1, relu6));
                        start.elapsed().as_secs_f64()
                    })
                    .fold(f64::MAX, f64::min);
                total += best * layers as f64;
                let bytes = 4.0 * (x.len() + out.len()) as f64;
                println!(
                    "batch {batch:>2}, {input:>3}×{input:>3}×{channels:>3} stride {stride}: {:8.1} µs, {:5.1} GB/s",
                    best * 1e6,
                    bytes / best / 1e9
                );
            }
            println!(
                "batch {batch}: {:.2} ms for the network's depthwise layers",
                total * 1e3
            );
        }
    }
}
