//! Max and average pooling on channels-last `(N, H, W, C)` batches, in parallel over images.
//!
//! Max pooling records where each maximum was (its argmax: the index of the first window tap,
//! in TensorFlow's row-by-row scan order, that holds it, stored as an f32), so the backward
//! pass reads that instead of the input. Channel counts that are multiples of 8 run on
//! vectors (`Simd`: sixteen lanes with AVX-512 where the count is a multiple of 16, eight
//! otherwise); others on plain loops.

use super::conv::Window2d;
use super::simd::{Simd, dispatch_simd};
use rayon::prelude::*;

/// The image offsets of a window's taps inside the input (padding skipped), in the order
/// TensorFlow scans them (row by row), and how many there are.
#[inline(always)]
fn window_taps(g: &Window2d, oy: usize, ox: usize, taps: &mut [usize; MAX_TAPS]) -> usize {
    let mut count = 0;
    for ky in g.rows_inside(oy) {
        for kx in g.cols_inside(ox) {
            if let Some((y, x)) = g.source(oy, ox, ky, kx) {
                taps[count] = (y * g.width + x) * g.channels;
                count += 1;
            }
        }
    }
    count
}

/// [`window_taps`] made cheap: the offsets of a whole window's taps from its first, computed
/// once per image (or band of rows) and used where the window lies inside the input (all of
/// "valid" pooling, and all but the border of "same"), so only border windows pay for the
/// per-tap padding checks.
struct Taps {
    whole: [usize; MAX_TAPS],
    count: usize,
}

impl Taps {
    fn new(g: &Window2d) -> Self {
        let mut whole = [0; MAX_TAPS];
        let mut count = 0;
        for ky in 0..g.window_h {
            for kx in 0..g.window_w {
                whole[count] = (ky * g.dilation_h * g.width + kx * g.dilation_w) * g.channels;
                count += 1;
            }
        }
        Taps { whole, count }
    }

    /// The taps of output `(oy, ox)` into `taps`, and how many there are.
    #[inline(always)]
    fn at(&self, g: &Window2d, (oy, ox): (usize, usize), full_rows: bool, taps: &mut [usize; MAX_TAPS]) -> usize {
        if full_rows && g.cols_inside(ox).len() == g.window_w {
            let (y, x) = (oy * g.stride_h - g.pad_top, ox * g.stride_w - g.pad_left);
            let first = (y * g.width + x) * g.channels;
            for (tap, offset) in taps.iter_mut().zip(&self.whole[..self.count]) {
                *tap = first + offset;
            }
            self.count
        } else {
            window_taps(g, oy, ox, taps)
        }
    }
}

/// Largest window the vector kernels handle; larger ones take the plain loops.
const MAX_TAPS: usize = 16;

/// Max pooling into `out` (`N×OH×OW×C`), with each maximum's tap index in `argmax` (same
/// shape), in parallel over images, and over bands of output rows when there are fewer images
/// than threads.
pub(crate) fn max_pool(input: &[f32], g: &Window2d, out: &mut [f32], argmax: &mut [f32]) {
    max_pool_from(input, g, out, argmax, f32::NEG_INFINITY);
}

/// [`max_pool`] of the input zero-padded as `g`'s padding says (a `ZeroPadding2D` folded in):
/// a window with taps in the padding has 0 among its values. Its `argmax` then names the
/// largest tap inside the input, or tap 0 where the padding's 0 is larger: no gradient may be
/// routed by it.
pub(crate) fn max_pool_zero_padded(input: &[f32], g: &Window2d, out: &mut [f32], argmax: &mut [f32]) {
    max_pool_from(input, g, out, argmax, 0.0);
}

/// The value a window's maximum starts from: `padded` (the value the padding holds) when only
/// `taps_inside` of its taps read the input, else below every value.
#[inline(always)]
fn window_start(g: &Window2d, taps_inside: usize, padded: f32) -> f32 {
    if taps_inside < g.window_h * g.window_w {
        padded
    } else {
        f32::NEG_INFINITY
    }
}

/// Max pooling where each window with taps in the padding starts from `padded` (the value the
/// padding holds) rather than below every value.
fn max_pool_from(input: &[f32], g: &Window2d, out: &mut [f32], argmax: &mut [f32], padded: f32) {
    let out_len = g.positions() * g.channels;
    if out_len == 0 {
        return;
    }
    let row_len = g.out_w * g.channels;
    let band_rows = super::row_band(g.batch, g.out_h);
    out.par_chunks_mut(out_len)
        .zip(argmax.par_chunks_mut(out_len))
        .zip(input.par_chunks(g.image_len()))
        .for_each(|((out, argmax), image)| {
            out.par_chunks_mut(band_rows * row_len)
                .zip(argmax.par_chunks_mut(band_rows * row_len))
                .enumerate()
                .for_each(|(band, (out, argmax))| {
                    let first = band * band_rows;
                    let rows = first..first + out.len() / row_len;
                    if g.channels.is_multiple_of(8) && g.window_h.saturating_mul(g.window_w) <= MAX_TAPS {
                        max_pool_image(g, image, rows, out, argmax, padded);
                    } else {
                        max_pool_image_plain(g, image, rows, out, argmax, padded);
                    }
                })
        });
}

dispatch_simd!(max_pool_image<> => max_pool_image_body(
    g: &Window2d, image: &[f32], rows: std::ops::Range<usize>, out: &mut [f32], argmax: &mut [f32], padded: f32
) wide: g.channels.is_multiple_of(16));

/// Output rows `rows` of one image into `out` and `argmax` (those rows only).
#[inline(always)]
fn max_pool_image_body<S: Simd>(
    s: S,
    g: &Window2d,
    image: &[f32],
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    argmax: &mut [f32],
    padded: f32,
) {
    let c = g.channels;
    let (mut taps, whole) = ([0; MAX_TAPS], Taps::new(g));
    for oy in rows.clone() {
        let full_rows = g.rows_inside(oy).len() == g.window_h;
        for ox in 0..g.out_w {
            let count = whole.at(g, (oy, ox), full_rows, &mut taps);
            let (taps, at) = (&taps[..count], ((oy - rows.start) * g.out_w + ox) * c);
            let start = s.splat(window_start(g, count, padded));
            let mut c0 = 0;
            while c0 + 4 * S::LANES <= c {
                max_of_taps::<S, 4>(s, image, (taps, start), c0, (&mut out[at..], &mut argmax[at..]));
                c0 += 4 * S::LANES;
            }
            if c0 + 2 * S::LANES <= c {
                max_of_taps::<S, 2>(s, image, (taps, start), c0, (&mut out[at..], &mut argmax[at..]));
                c0 += 2 * S::LANES;
            }
            while c0 < c {
                max_of_taps::<S, 1>(s, image, (taps, start), c0, (&mut out[at..], &mut argmax[at..]));
                c0 += S::LANES;
            }
        }
    }
}

/// The maximum over `taps` (and `start`) of `V` vectors of channels from `c0`, and the first
/// tap holding it (0 where none beats `start`), into `out` and `argmax` at `c0`. Several
/// vectors at once: each vector's comparisons form a chain, and interleaved chains keep the
/// CPU busy while each waits on the last.
#[inline(always)]
fn max_of_taps<S: Simd, const V: usize>(
    s: S,
    image: &[f32],
    (taps, start): (&[usize], S::V),
    c0: usize,
    (out, argmax): (&mut [f32], &mut [f32]),
) {
    let (mut best, mut index) = ([start; V], [s.splat(0.0); V]);
    for (t, &tap) in taps.iter().enumerate() {
        let t = s.splat(t as f32);
        for v in 0..V {
            // Strictly greater: the first of equal maxima wins, and NaN loses (as `f32::max`
            // does).
            let value = s.load(&image[tap + c0 + v * S::LANES..]);
            let greater = s.greater(value, best[v]);
            best[v] = s.select(greater, value, best[v]);
            index[v] = s.select(greater, t, index[v]);
        }
    }
    for v in 0..V {
        s.store(&mut out[c0 + v * S::LANES..], best[v]);
        s.store(&mut argmax[c0 + v * S::LANES..], index[v]);
    }
}

fn max_pool_image_plain(
    g: &Window2d,
    image: &[f32],
    rows: std::ops::Range<usize>,
    out: &mut [f32],
    argmax: &mut [f32],
    padded: f32,
) {
    let c = g.channels;
    for oy in rows.clone() {
        for ox in 0..g.out_w {
            let at = ((oy - rows.start) * g.out_w + ox) * c;
            let (best, index) = (&mut out[at..][..c], &mut argmax[at..][..c]);
            let taps_inside = g.rows_inside(oy).len() * g.cols_inside(ox).len();
            best.fill(window_start(g, taps_inside, padded));
            index.fill(0.0);
            let mut t = 0;
            for ky in g.rows_inside(oy) {
                for kx in g.cols_inside(ox) {
                    let Some((y, x)) = g.source(oy, ox, ky, kx) else {
                        continue;
                    };
                    let values = &image[(y * g.width + x) * c..][..c];
                    for ((b, i), &v) in best.iter_mut().zip(index.iter_mut()).zip(values) {
                        if v > *b {
                            *b = v;
                            *i = t as f32;
                        }
                    }
                    t += 1;
                }
            }
        }
    }
}

/// Routes each output gradient to the window tap `argmax` recorded for it.
///
/// With `overwrite`, `input_grad` holds stale values and is overwritten: where windows do not
/// overlap, each input position is written once (zero where no window routes to it) instead
/// of being cleared and then added to.
pub(crate) fn max_pool_backward(
    argmax: &[f32],
    out_grad: &[f32],
    g: &Window2d,
    input_grad: &mut [f32],
    overwrite: bool,
) {
    let out_len = g.positions() * g.channels;
    let write = overwrite && g.windows_are_disjoint();
    input_grad
        .par_chunks_mut(g.image_len())
        .zip(argmax.par_chunks(out_len).zip(out_grad.par_chunks(out_len)))
        .for_each(|(image_grad, (argmax, dy))| {
            if write {
                g.clear_uncovered(image_grad);
            } else if overwrite {
                image_grad.fill(0.0);
            }
            if g.channels.is_multiple_of(8) && g.window_h.saturating_mul(g.window_w) <= MAX_TAPS {
                max_pool_backward_image(g, (argmax, dy), write, image_grad);
            } else {
                max_pool_backward_image_plain(g, (argmax, dy), write, image_grad);
            }
        });
}

dispatch_simd!(max_pool_backward_image<> => max_pool_backward_image_body(
    g: &Window2d, values: (&[f32], &[f32]), write: bool, image_grad: &mut [f32]
) wide: g.channels.is_multiple_of(16));

#[inline(always)]
fn max_pool_backward_image_body<S: Simd>(
    s: S,
    g: &Window2d,
    (argmax, dy): (&[f32], &[f32]),
    write: bool,
    image_grad: &mut [f32],
) {
    let c = g.channels;
    let (mut taps, whole) = ([0; MAX_TAPS], Taps::new(g));
    for oy in 0..g.out_h {
        let full_rows = g.rows_inside(oy).len() == g.window_h;
        for ox in 0..g.out_w {
            let count = whole.at(g, (oy, ox), full_rows, &mut taps);
            let at = (oy * g.out_w + ox) * c;
            for c0 in (0..c).step_by(S::LANES) {
                let (index, grad) = (s.load(&argmax[at + c0..]), s.load(&dy[at + c0..]));
                for (t, &tap) in taps[..count].iter().enumerate() {
                    let routed = s.and(s.equal(index, s.splat(t as f32)), grad);
                    let target = &mut image_grad[tap + c0..];
                    let value = if write { routed } else { s.add(s.load(target), routed) };
                    s.store(target, value);
                }
            }
        }
    }
}

fn max_pool_backward_image_plain(g: &Window2d, (argmax, dy): (&[f32], &[f32]), write: bool, image_grad: &mut [f32]) {
    let c = g.channels;
    for oy in 0..g.out_h {
        for ox in 0..g.out_w {
            let at = (oy * g.out_w + ox) * c;
            let (index, grad) = (&argmax[at..][..c], &dy[at..][..c]);
            let mut t = 0.0;
            for ky in g.rows_inside(oy) {
                for kx in g.cols_inside(ox) {
                    let Some((y, x)) = g.source(oy, ox, ky, kx) else {
                        continue;
                    };
                    let target = &mut image_grad[(y * g.width + x) * c..][..c];
                    for ((target, &i), &grad) in target.iter_mut().zip(index).zip(grad) {
                        let routed = if i == t { grad } else { 0.0 };
                        if write {
                            *target = routed;
                        } else {
                            *target += routed;
                        }
                    }
                    t += 1.0;
                }
            }
        }
    }
}

impl Window2d {
    /// Whether no input position lies in two windows (strides at least the window, no
    /// dilation): then a pooling's backward pass can write each position once.
    fn windows_are_disjoint(&self) -> bool {
        self.dilation_h == 1 && self.dilation_w == 1 && self.stride_h >= self.window_h && self.stride_w >= self.window_w
    }

    /// Whether input row (or column) `i` lies in a window along an axis of disjoint windows.
    fn covered(i: usize, pad: usize, stride: usize, window: usize, out: usize) -> bool {
        let at = i + pad;
        at / stride < out && at % stride < window
    }

    /// Zeros the positions of one image that no window covers (disjoint windows only).
    fn clear_uncovered(&self, image: &mut [f32]) {
        let row_len = self.width * self.channels;
        for (y, row) in image.chunks_exact_mut(row_len).enumerate() {
            if !Self::covered(y, self.pad_top, self.stride_h, self.window_h, self.out_h) {
                row.fill(0.0);
                continue;
            }
            for (x, position) in row.chunks_exact_mut(self.channels).enumerate() {
                if !Self::covered(x, self.pad_left, self.stride_w, self.window_w, self.out_w) {
                    position.fill(0.0);
                }
            }
        }
    }
}

/// Average pooling over the window's positions inside the input (padding is not counted, as
/// in Keras).
pub(crate) fn avg_pool(input: &[f32], g: &Window2d, out: &mut [f32]) {
    let (c, out_len) = (g.channels, g.positions() * g.channels);
    out.par_chunks_mut(out_len)
        .zip(input.par_chunks(g.image_len()))
        .for_each(|(out, image)| {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let at = (oy * g.out_w + ox) * c;
                    let sum = &mut out[at..at + c];
                    sum.fill(0.0);
                    let mut count = 0;
                    for ky in g.rows_inside(oy) {
                        for kx in g.cols_inside(ox) {
                            let Some((y, x)) = g.source(oy, ox, ky, kx) else {
                                continue;
                            };
                            count += 1;
                            let base = (y * g.width + x) * c;
                            sum.iter_mut().zip(&image[base..base + c]).for_each(|(s, v)| *s += v);
                        }
                    }
                    let inv = 1.0 / count.max(1) as f32;
                    sum.iter_mut().for_each(|s| *s *= inv);
                }
            }
        });
}

/// Spreads each output gradient evenly over its window's positions inside the input. With
/// `overwrite`, `input_grad` holds stale values: each image is cleared first.
pub(crate) fn avg_pool_backward(out_grad: &[f32], g: &Window2d, input_grad: &mut [f32], overwrite: bool) {
    let (c, out_len) = (g.channels, g.positions() * g.channels);
    input_grad
        .par_chunks_mut(g.image_len())
        .zip(out_grad.par_chunks(out_len))
        .for_each(|(image, dy)| {
            if overwrite {
                image.fill(0.0);
            }
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let mut count = 0;
                    for ky in g.rows_inside(oy) {
                        for kx in g.cols_inside(ox) {
                            count += g.source(oy, ox, ky, kx).is_some() as usize;
                        }
                    }
                    let scale = 1.0 / count.max(1) as f32;
                    let grad = &dy[(oy * g.out_w + ox) * c..][..c];
                    for ky in g.rows_inside(oy) {
                        for kx in g.cols_inside(ox) {
                            let Some((y, x)) = g.source(oy, ox, ky, kx) else {
                                continue;
                            };
                            let dest = &mut image[(y * g.width + x) * c..][..c];
                            dest.iter_mut().zip(grad).for_each(|(d, g)| *d += g * scale);
                        }
                    }
                }
            }
        });
}
