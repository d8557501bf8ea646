//! The depthwise convolution's forward pass for 3×3 windows with one filter per channel
//! (MobileNet's, EfficientNet's): one output row at a time, a group of neighbouring output
//! pixels at a time (eight at stride 1, four at stride 2), all their channels a vector at a
//! time. A kernel row's windows in a group overlap, so each input pixel of the row is loaded
//! once and multiplied into every window that holds it, with the group's independent chains of
//! multiply-adds in flight (one chain would wait on each add). Walking the channels of a few
//! pixels before moving along the row reads the input and writes the output in address order,
//! whole cache lines at once; the kernel's taps (9·C values) stay in the first-level cache.
//! An earlier version held one channel vector's nine taps in registers and walked the whole
//! row for each vector: it touched every cache line of three input rows once per vector and
//! was slower at every MobileNetV2 shape (docs/PERFORMANCE.md). Bias and the activation are
//! applied before the single store, and the taps in the zero padding are skipped (kernel rows
//! above and below the image for every column, columns at the left and right edges pixel by
//! pixel), so no padded copy of the input is made and no output is written twice.
//!
//! Each output is `bias + Σ x·k` over its taps in row-major tap order, on one chain, whatever
//! the row, the group, the thread or the vector width: the group and edge loops and the AVX2
//! and AVX-512 paths give the same bits.

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

/// Output row `oh`: the columns whose taps may fall in the padding (left and right) through
/// [`single_columns`], the others in groups of neighbouring columns; rows of the window that fall
/// in the padding (top and bottom) are skipped.
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
    // Offsets (in values) of the input rows the kernel rows `rows` read.
    let row_at = |ky: usize| (oh * w.stride_h + ky * w.dilation_h).saturating_sub(w.pad_top) * w.width * c;
    let input = Input {
        pixels: image.as_ptr(),
        row_offsets: [row_at(0), row_at(1), row_at(2)],
        rows: (rows.start, rows.end),
        tap_step: c * w.dilation_w,
    };
    let finish = (kernel, bias, activation);
    single_columns(s, &input, finish, out, w, 0..first);
    // Column 0's window in an input row (below zero with left padding, wrapping: only the
    // interior columns' windows are read).
    let column_zero = w.pad_left.wrapping_neg().wrapping_mul(c);
    // The farthest value the interior loops read, checked once: every interior tap lies
    // inside the image (rows by `rows_inside`, columns by `interior_columns`). No closure
    // below touches a vector: a closure is not compiled for the caller's target features, so
    // the intrinsics inside it would stay calls.
    if end > first && !rows.is_empty() {
        let last = input.row_offsets[rows.end - 1] + ((end - 1) * w.stride_w + 2 * w.dilation_w - w.pad_left) * c + c;
        assert!(last <= w.image_len(), "depthwise interior outside the image");
    }
    match (w.stride_w, w.dilation_w) {
        (1, 1) => shared_columns::<S, 1>(s, &input, finish, out, (first, end), (column_zero, c)),
        (2, 1) => shared_columns::<S, 2>(s, &input, finish, out, (first, end), (column_zero, c)),
        _ => single_columns(s, &input, finish, out, w, first..end),
    }
    single_columns(s, &input, finish, out, w, end..w.out_w);
}

/// Where a row's windows read: the input's first value, the offsets (in values) of the three
/// input rows the kernel rows read, the kernel rows `rows.0..rows.1` inside the image, and the
/// values between a window's neighbouring taps in a row.
struct Input {
    pixels: *const f32,
    row_offsets: [usize; 3],
    rows: (usize, usize),
    tap_step: usize,
}

/// Interior columns `first..end` in groups of eight (four, one on short rows) neighbouring
/// columns through [`shared`]; the last group overlaps the one before it rather than falling
/// back to single columns (an output computed twice gets the same bits both times).
/// `column_zero` is column 0's window offset in an input row (wrapping below zero).
#[inline(always)]
fn shared_columns<S: Simd, const STRIDE: usize>(
    s: S,
    input: &Input,
    finish: (&[f32], Option<&[f32]>, Activation),
    out: &mut [f32],
    (first, end): (usize, usize),
    (column_zero, c): (usize, usize),
) {
    let widest = if STRIDE == 1 { 8 } else { 4 };
    let mut ow = first;
    while ow < end {
        let left = end - ow;
        let group = if left >= widest {
            widest
        } else if left >= 4 {
            4
        } else {
            1
        };
        let column = column_zero.wrapping_add(ow * STRIDE * c);
        match group {
            8 => shared::<S, 8, STRIDE>(s, input, finish, out, column, (ow, c)),
            4 => shared::<S, 4, STRIDE>(s, input, finish, out, column, (ow, c)),
            _ => shared::<S, 1, STRIDE>(s, input, finish, out, column, (ow, c)),
        }
        ow += group;
    }
}

/// Output columns `ow..ow + J` (every channel) with taps one pixel apart and windows `STRIDE`
/// pixels apart: a kernel row's `J` windows cover `(J − 1)·STRIDE + 3` input pixels, each
/// loaded once and multiplied into every window holding it, `J` independent chains at a time
/// (a chain of nine dependent multiply-adds alone would leave the vector unit waiting). Each
/// output still sums its taps in row-major order. `column` is column `ow`'s window offset.
#[inline(always)]
fn shared<S: Simd, const J: usize, const STRIDE: usize>(
    s: S,
    input: &Input,
    (kernel, bias, activation): (&[f32], Option<&[f32]>, Activation),
    out: &mut [f32],
    column: usize,
    (ow, c): (usize, usize),
) {
    for c0 in (0..c).step_by(S::LANES) {
        let mut sums = [bias_vector(s, bias, c0); J];
        for ky in input.rows.0..input.rows.1 {
            let mut taps = [s.splat(0.0); 3];
            for (kx, tap) in taps.iter_mut().enumerate() {
                *tap = s.load(&kernel[(ky * 3 + kx) * c + c0..]);
            }
            let mut pixel = input.pixels.wrapping_add(input.row_offsets[ky] + column + c0);
            for m in 0..(J - 1) * STRIDE + 3 {
                // SAFETY: `row_body` checked that the interior's windows lie inside the image.
                let value = unsafe { s.load_ptr(pixel) };
                pixel = pixel.wrapping_add(c);
                for (kx, tap) in taps.iter().enumerate() {
                    if m >= kx && (m - kx) % STRIDE == 0 && (m - kx) / STRIDE < J {
                        let j = (m - kx) / STRIDE;
                        sums[j] = s.mul_add(value, *tap, sums[j]);
                    }
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

/// Output columns `columns` one at a time, any stride and dilation, each window's taps in the
/// padding skipped: the left and right edges, and the interior of rows [`shared`] does not
/// take.
#[inline(always)]
fn single_columns<S: Simd>(
    s: S,
    input: &Input,
    (kernel, bias, activation): (&[f32], Option<&[f32]>, Activation),
    out: &mut [f32],
    w: &Window2d,
    columns: std::ops::Range<usize>,
) {
    let c = w.channels;
    for ow in columns {
        let taps = w.cols_inside(ow);
        // The input column of the first tap inside (unused when there is none).
        let column = (ow * w.stride_w + taps.start * w.dilation_w).wrapping_sub(w.pad_left) * c;
        if !taps.is_empty() && input.rows.1 > input.rows.0 {
            let last = input.row_offsets[input.rows.1 - 1] + column + (taps.len() - 1) * input.tap_step + c;
            assert!(last <= w.image_len(), "depthwise window outside the image");
        }
        for c0 in (0..c).step_by(S::LANES) {
            let mut sum = bias_vector(s, bias, c0);
            for ky in input.rows.0..input.rows.1 {
                let mut pixel = input.pixels.wrapping_add(input.row_offsets[ky] + column + c0);
                for kx in taps.clone() {
                    // SAFETY: the window's last tap inside was checked above.
                    let value = unsafe { s.load_ptr(pixel) };
                    sum = s.mul_add(value, s.load(&kernel[(ky * 3 + kx) * c + c0..]), sum);
                    pixel = pixel.wrapping_add(input.tap_step);
                }
            }
            s.store(&mut out[ow * c + c0..], activate(s, sum, activation));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::depthwise::depthwise_conv;
    use super::*;

    /// Reproduces the timings in docs/PERFORMANCE.md: MobileNetV2's depthwise convolutions
    /// (ReLU6, stride 2 as torchvision's export pads it: a valid window over a padded input)
    /// at batch 1 and 32, best of several calls, on `RAYON_NUM_THREADS` threads (default one
    /// per core).
    #[test]
    #[ignore]
    fn speed_of_mobilenet_v2_shapes() {
        // A pool of the test's own: joining the global one made this thread its worker 0, which
        // deadlocked beside the other kernels' speed tests run in the same process.
        let pool = rayon::ThreadPoolBuilder::new().num_threads(0).build().unwrap();
        pool.install(|| {
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
        });
    }
}
