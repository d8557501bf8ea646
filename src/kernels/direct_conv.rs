//! Direct convolution for small receptive fields, such as a grey image's first layer (3×3×1:
//! nine values per output). Lowered to a matrix product, such a convolution has an inner
//! dimension of nine, too short for a product to run fast, and im2col would copy the input
//! nine times over. Here each output's filters are summed in registers straight from the
//! image, with the bias and the ReLU applied before the single store, and the backward pass
//! sums the kernel and bias gradients in registers over all positions.
//!
//! The kernel and bias gradients are summed in [`PARTIALS`] fixed runs of images, added in
//! order at the end, so the result does not depend on the thread count. The input gradient is
//! not computed here (the first layer needs none); `conv2d` takes it from im2col's products.
//!
//! This is a 9-tap convolution summed in registers, the one convolution path whose sums do
//! not go through gemm-f32 ([`super::matmul`]). The product alone is faster there, but not
//! what surrounds it: im2col, the bias-and-ReLU pass, the ReLU mask and the column sums each
//! make a trip through the whole output, which for a first layer is the largest tensor of the
//! step (docs/PERFORMANCE.md, "Figures moved from code comments", has the timings for the
//! `cnn`'s conv1). Folded with the max pooling that reads it (as in the `cnn`), the output's
//! gradient never reaches memory at all.

#![allow(clippy::needless_range_loop)] // Indexing by constants is what lets the loops unroll.

use super::conv::{OutputGrad, Window2d};
use super::scratch::with_scratch;
use super::simd::{Simd, dispatch_simd};
use rayon::prelude::*;

/// Largest receptive field (`KH·KW·C`) handled here: its kernel gradient is held in registers.
const MAX_PATCH: usize = 12;
/// Partial sums of the kernel gradient, so the backward pass runs on up to this many threads.
const PARTIALS: usize = 4;
/// Outputs computed together in the forward pass (each two vectors of filters wide).
const POSITIONS: usize = 4;

/// How one convolution runs directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Direct {
    patch: usize,
    filters: usize,
    batch: usize,
    /// Images per partial sum of the kernel gradient.
    partial_images: usize,
}

impl Direct {
    /// The plan for `filters` outputs per position, or `None` when the receptive field is
    /// larger than [`MAX_PATCH`] or `filters` is not a positive multiple of 8.
    pub(crate) fn plan(g: &Window2d, filters: usize) -> Option<Direct> {
        let eligible = g.patch_len() <= MAX_PATCH && filters > 0 && filters.is_multiple_of(8) && g.batch > 0;
        eligible.then(|| Direct {
            patch: g.patch_len(),
            filters,
            batch: g.batch,
            partial_images: g.batch.div_ceil(PARTIALS),
        })
    }

    fn partials(&self) -> usize {
        self.batch.div_ceil(self.partial_images)
    }

    fn partial_len(&self) -> usize {
        (self.patch + 1) * self.filters
    }

    /// Working memory of [`Direct::backward`]: the partial sums.
    pub(crate) fn backward_scratch_len(&self) -> usize {
        self.partials() * self.partial_len()
    }

    /// `y = conv(x, kernel) + bias`, then `max(y, 0)` when `relu`, in parallel over images.
    pub(crate) fn forward(
        &self,
        g: &Window2d,
        x: &[f32],
        kernel: &[f32],
        bias: Option<&[f32]>,
        relu: bool,
        y: &mut [f32],
    ) {
        let out_len = g.positions() * self.filters;
        assert!(kernel.len() >= self.patch * self.filters && bias.is_none_or(|b| b.len() >= self.filters));
        y[..self.batch * out_len]
            .par_chunks_mut(out_len)
            .zip(x[..self.batch * g.image_len()].par_chunks(g.image_len()))
            .for_each(|(y, image)| forward_image(g, image, kernel, bias, relu, y));
    }

    /// Adds the kernel and bias gradients to `dk` and `db` (each when given) from the input `x`
    /// and the output's gradient (masked by the ReLU when `relu`), given as `grad`.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &self,
        g: &Window2d,
        x: &[f32],
        grad: OutputGrad,
        relu: bool,
        scratch: &mut [f32],
        dk: Option<&mut [f32]>,
        db: Option<&mut [f32]>,
    ) {
        if dk.is_none() && db.is_none() {
            return;
        }
        let (in_len, partial_len) = (g.image_len(), self.partial_len());
        let sums = &mut scratch[..self.backward_scratch_len()];
        sums.par_chunks_mut(partial_len).enumerate().for_each(|(p, sum)| {
            sum.fill(0.0);
            let first = p * self.partial_images;
            for n in first..(first + self.partial_images).min(self.batch) {
                let image = &x[n * in_len..][..in_len];
                let grad = grad.images(g, self.filters, n, 1);
                macro_rules! taps {
                    ($($taps:literal)*) => {
                        match self.patch {
                            $($taps => backward_image::<$taps>(g, image, grad, relu, sum),)*
                            _ => unreachable!("patch sizes are 1 to MAX_PATCH"),
                        }
                    };
                }
                taps!(1 2 3 4 5 6 7 8 9 10 11 12);
            }
        });
        let (total, rest) = sums.split_at_mut(partial_len);
        for sum in rest.chunks_exact(partial_len) {
            total.iter_mut().zip(sum).for_each(|(t, s)| *t += s);
        }
        let (kernel_total, bias_total) = total.split_at(self.patch * self.filters);
        if let Some(dk) = dk {
            dk.iter_mut().zip(kernel_total).for_each(|(d, s)| *d += s);
        }
        if let Some(db) = db {
            db.iter_mut().zip(bias_total).for_each(|(d, s)| *d += s);
        }
    }
}

/// The receptive field of one output position, relative to the input value its top-left tap
/// reads: each tap's offset, and its row and column within the window.
struct Taps {
    offsets: [isize; MAX_PATCH],
    rows: [usize; MAX_PATCH],
    cols: [usize; MAX_PATCH],
    count: usize,
}

impl Taps {
    #[inline(always)]
    fn new(g: &Window2d) -> Self {
        let mut taps = Taps {
            offsets: [0; MAX_PATCH],
            rows: [0; MAX_PATCH],
            cols: [0; MAX_PATCH],
            count: g.patch_len(),
        };
        let mut k = 0;
        for ky in 0..g.window_h {
            for kx in 0..g.window_w {
                for c in 0..g.channels {
                    taps.offsets[k] = ((ky * g.dilation_h * g.width + kx * g.dilation_w) * g.channels + c) as isize;
                    (taps.rows[k], taps.cols[k]) = (ky, kx);
                    k += 1;
                }
            }
        }
        taps
    }
}

/// The input row or column of tap `k` of the window at output `o` along one axis, if inside.
#[inline(always)]
fn tap_at(o: usize, stride: usize, k: usize, dilation: usize, pad: usize, size: usize) -> Option<usize> {
    (o * stride + k * dilation).checked_sub(pad).filter(|&i| i < size)
}

/// Where output (oy, ox)'s window starts in the image (may be negative in the padding), and
/// whether the whole window is inside the image.
#[inline(always)]
fn window_origin(g: &Window2d, oy: usize, ox: usize) -> (isize, bool) {
    let y0 = (oy * g.stride_h) as isize - g.pad_top as isize;
    let x0 = (ox * g.stride_w) as isize - g.pad_left as isize;
    let inside = y0 >= 0
        && x0 >= 0
        && y0 as usize + (g.window_h - 1) * g.dilation_h < g.height
        && x0 as usize + (g.window_w - 1) * g.dilation_w < g.width;
    ((y0 * g.width as isize + x0) * g.channels as isize, inside)
}

// AVX-512 runs filter counts that are multiples of its 16 lanes; other multiples of 8 run on AVX2.
dispatch_simd!(forward_image<> => forward_image_body(
    g: &Window2d, image: &[f32], kernel: &[f32], bias: Option<&[f32]>, relu: bool, y: &mut [f32]
) wide: y.len().is_multiple_of(16 * g.positions().max(1)));

#[inline(always)]
fn forward_image_body<S: Simd>(
    s: S,
    g: &Window2d,
    image: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    let taps = Taps::new(g);
    let f = y.len() / g.positions();
    assert!(image.len() == g.image_len() && y.len() == g.positions() * f && kernel.len() >= taps.count * f);
    let step = (g.stride_w * g.channels) as isize;
    let lanes = S::LANES;
    for f0 in (0..f).step_by(2 * lanes) {
        let wide = f - f0 >= 2 * lanes;
        for oy in 0..g.out_h {
            let mut ox = 0;
            while ox < g.out_w {
                let (first, inside) = window_origin(g, oy, ox);
                let at = (oy * g.out_w + ox) * f + f0;
                // Runs of 4, 2 or 1 outputs whose windows all lie inside the image.
                let run = [POSITIONS, 2, 1]
                    .into_iter()
                    .find(|&run| ox + run <= g.out_w && inside && window_origin(g, oy, ox + run - 1).1)
                    .unwrap_or(0);
                let args = (first, step);
                let y = &mut y[at..];
                match (run, wide) {
                    (POSITIONS, true) => {
                        forward_block::<S, POSITIONS, 2>(s, image, &taps, args, kernel, f, f0, bias, relu, y)
                    }
                    (POSITIONS, false) => {
                        forward_block::<S, POSITIONS, 1>(s, image, &taps, args, kernel, f, f0, bias, relu, y)
                    }
                    (2, true) => forward_block::<S, 2, 2>(s, image, &taps, args, kernel, f, f0, bias, relu, y),
                    (2, false) => forward_block::<S, 2, 1>(s, image, &taps, args, kernel, f, f0, bias, relu, y),
                    (1, true) => forward_block::<S, 1, 2>(s, image, &taps, args, kernel, f, f0, bias, relu, y),
                    (1, false) => forward_block::<S, 1, 1>(s, image, &taps, args, kernel, f, f0, bias, relu, y),
                    _ => forward_border(s, g, image, &taps, (oy, ox), kernel, f, f0, wide, bias, relu, y),
                }
                ox += run.max(1);
            }
        }
    }
}

/// `P` neighbouring outputs whose windows lie inside the image, filters `f0..f0 + V·LANES`.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_block<S: Simd, const P: usize, const V: usize>(
    s: S,
    image: &[f32],
    taps: &Taps,
    (first, step): (isize, isize),
    kernel: &[f32],
    f: usize,
    f0: usize,
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    let mut sums = [[s.splat(0.0); V]; P];
    if let Some(bias) = bias {
        for v in 0..V {
            let b = s.load(&bias[f0 + S::LANES * v..]);
            for sum in &mut sums {
                sum[v] = b;
            }
        }
    }
    let base = image.as_ptr();
    for k in 0..taps.count {
        let row = &kernel[k * f + f0..][..S::LANES * V];
        let mut weights = [s.splat(0.0); V];
        for v in 0..V {
            weights[v] = s.load(&row[S::LANES * v..]);
        }
        for p in 0..P {
            // SAFETY: the caller checked that the windows of all P outputs lie inside `image`,
            // and tap offsets stay inside a window.
            let value = unsafe { *base.offset(first + p as isize * step + taps.offsets[k]) };
            let value = s.splat(value);
            for v in 0..V {
                sums[p][v] = s.mul_add(value, weights[v], sums[p][v]);
            }
        }
    }
    for p in 0..P {
        for v in 0..V {
            let sum = if relu {
                s.max(sums[p][v], s.splat(0.0))
            } else {
                sums[p][v]
            };
            s.store(&mut y[p * f + S::LANES * v..], sum);
        }
    }
}

/// One output whose window may reach into the padding, filters `f0..f0 + 2·LANES` (or
/// `+ LANES`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_border<S: Simd>(
    s: S,
    g: &Window2d,
    image: &[f32],
    taps: &Taps,
    (oy, ox): (usize, usize),
    kernel: &[f32],
    f: usize,
    f0: usize,
    wide: bool,
    bias: Option<&[f32]>,
    relu: bool,
    y: &mut [f32],
) {
    let vectors = if wide { 2 } else { 1 };
    for v in 0..vectors {
        let mut sum = bias.map_or(s.splat(0.0), |b| s.load(&b[f0 + S::LANES * v..]));
        for k in 0..taps.count {
            let row = tap_at(oy, g.stride_h, taps.rows[k], g.dilation_h, g.pad_top, g.height);
            let col = tap_at(ox, g.stride_w, taps.cols[k], g.dilation_w, g.pad_left, g.width);
            if let (Some(row), Some(col)) = (row, col) {
                let c = k % g.channels;
                let value = s.splat(image[(row * g.width + col) * g.channels + c]);
                sum = s.mul_add(value, s.load(&kernel[k * f + f0 + S::LANES * v..]), sum);
            }
        }
        let sum = if relu { s.max(sum, s.splat(0.0)) } else { sum };
        s.store(&mut y[S::LANES * v..], sum);
    }
}

/// Adds one image's kernel and bias gradients into `sum` (`T·F` kernel values, then `F` bias
/// values), `T` being the receptive field's size.
fn backward_image<const T: usize>(g: &Window2d, image: &[f32], grad: OutputGrad, relu: bool, sum: &mut [f32]) {
    let f = sum.len() / (T + 1);
    with_scratch(g.out_w * f, |row| {
        backward_image_simd::<T>(g, image, grad, relu, sum, row)
    })
}

dispatch_simd!(backward_image_simd<T> => backward_image_body(
    g: &Window2d, image: &[f32], grad: OutputGrad, relu: bool, sum: &mut [f32], row: &mut [f32]
) wide: sum.len().is_multiple_of(16 * (T + 1)));

/// Taps summed together in the backward pass: with two vectors of filters, 10 sums in AVX2's 16
/// registers.
const TAP_CHUNK: usize = 5;
/// The same in AVX-512's 32 registers: 20 sums, so a 3×3 grey window's nine taps read each
/// output row's gradients once instead of twice.
const WIDE_TAP_CHUNK: usize = 10;

/// One output row at a time: its gradient (masked by the ReLU) is written once into `row`, a
/// buffer in L1, and every tap's sums then read it from there, two vectors of filters at a time.
#[inline(always)]
fn backward_image_body<S: Simd, const T: usize>(
    s: S,
    g: &Window2d,
    image: &[f32],
    grad: OutputGrad,
    relu: bool,
    sum: &mut [f32],
    row: &mut [f32],
) {
    let taps = Taps::new(g);
    let f = sum.len() / (T + 1);
    let row_len = g.out_w * f;
    assert!(taps.count == T && image.len() == g.image_len() && sum.len() == (T + 1) * f && row.len() >= row_len);
    let (kernel_sum, bias_sum) = sum.split_at_mut(T * f);
    for oy in 0..g.out_h {
        let row = &mut row[..row_len];
        match grad {
            OutputGrad::Plain { y, dy } => plain_row(
                s,
                (&y[oy * row_len..][..row_len], &dy[oy * row_len..][..row_len]),
                relu,
                row,
            ),
            OutputGrad::Pooled {
                pool,
                pooled,
                argmax,
                dp,
            } => pooled_row(s, pool, (pooled, argmax, dp), oy, relu, row),
        }
        for f0 in (0..f).step_by(S::LANES) {
            let mut total = s.load(&bias_sum[f0..]);
            for ox in 0..g.out_w {
                total = s.add(total, s.load(&row[ox * f + f0..]));
            }
            s.store(&mut bias_sum[f0..], total);
        }
        // The outputs whose windows lie inside the image: a run of this row.
        let mut inside = (0..g.out_w).filter(|&ox| window_origin(g, oy, ox).1);
        let inner = match inside.next() {
            Some(start) => start..inside.next_back().map_or(start + 1, |last| last + 1),
            None => 0..0,
        };
        // Each kernel-gradient value sums the row's outputs in order whatever the chunk, so
        // both chunk sizes give the same bits.
        let wide = S::REGISTERS >= 32;
        for f0 in (0..f).step_by(2 * S::LANES) {
            let two = f - f0 >= 2 * S::LANES;
            for k0 in (0..T).step_by(if wide { WIDE_TAP_CHUNK } else { TAP_CHUNK }) {
                let (at, sources, place) = ((oy, inner.clone()), (image, &taps), (k0, f0, f));
                match (wide, two) {
                    (true, true) => tap_sums::<S, T, 2, WIDE_TAP_CHUNK>(s, g, sources, row, at, place, kernel_sum),
                    (true, false) => tap_sums::<S, T, 1, WIDE_TAP_CHUNK>(s, g, sources, row, at, place, kernel_sum),
                    (false, true) => tap_sums::<S, T, 2, TAP_CHUNK>(s, g, sources, row, at, place, kernel_sum),
                    (false, false) => tap_sums::<S, T, 1, TAP_CHUNK>(s, g, sources, row, at, place, kernel_sum),
                }
            }
        }
    }
}

/// `row = dy` of one output row, masked where `y` is not positive when `relu`.
#[inline(always)]
fn plain_row<S: Simd>(s: S, (y, dy): (&[f32], &[f32]), relu: bool, row: &mut [f32]) {
    for f0 in (0..row.len()).step_by(S::LANES) {
        let mut grad = s.load(&dy[f0..]);
        if relu {
            grad = s.keep_where_positive(grad, s.load(&y[f0..]));
        }
        s.store(&mut row[f0..], grad);
    }
}

/// Output row `oy`'s gradient rebuilt from the max pooling over it (see
/// [`OutputGrad::Pooled`]): the pooling's gradient where its argmax is this position's tap,
/// zero elsewhere.
#[inline(always)]
fn pooled_row<S: Simd>(
    s: S,
    pool: &Window2d,
    (pooled, argmax, dp): (&[f32], &[f32], &[f32]),
    oy: usize,
    relu: bool,
    row: &mut [f32],
) {
    row.fill(0.0);
    let (py, ty) = (oy / pool.stride_h, oy % pool.stride_h);
    if py >= pool.out_h || ty >= pool.window_h {
        return;
    }
    let f = pool.channels;
    for px in 0..pool.out_w {
        let at = (py * pool.out_w + px) * f;
        for tx in 0..pool.window_w {
            let tap = s.splat((ty * pool.window_w + tx) as f32);
            let ox = px * pool.stride_w + tx;
            for f0 in (0..f).step_by(S::LANES) {
                let mut hit = s.equal(s.load(&argmax[at + f0..]), tap);
                if relu {
                    hit = s.and(hit, s.greater(s.load(&pooled[at + f0..]), s.splat(0.0)));
                }
                s.store(&mut row[ox * f + f0..], s.and(hit, s.load(&dp[at + f0..])));
            }
        }
    }
}

/// Adds to the kernel gradient of taps `k0..k0 + K` (those below `T`) and filters
/// `f0..f0 + V·LANES` the products of one output row's gradients `row` with the inputs the taps
/// read; `inner` is the run of outputs whose windows lie inside the image.
#[inline(always)]
fn tap_sums<S: Simd, const T: usize, const V: usize, const K: usize>(
    s: S,
    g: &Window2d,
    (image, taps): (&[f32], &Taps),
    row: &[f32],
    (oy, inner): (usize, std::ops::Range<usize>),
    (k0, f0, f): (usize, usize, usize),
    kernel_sum: &mut [f32],
) {
    let mut sums = [[s.splat(0.0); V]; K];
    let base = image.as_ptr();
    let step = (g.stride_w * g.channels) as isize;
    let origin = window_origin(g, oy, inner.start).0;
    for ox in inner.clone() {
        let mut grads = [s.splat(0.0); V];
        for v in 0..V {
            grads[v] = s.load(&row[ox * f + f0 + S::LANES * v..]);
        }
        let at = origin + (ox - inner.start) as isize * step;
        for k in 0..K {
            if k0 + k < T {
                // SAFETY: the window of output `ox` lies inside `image`, and tap offsets stay
                // inside a window.
                let value = s.splat(unsafe { *base.offset(at + taps.offsets[k0 + k]) });
                for v in 0..V {
                    sums[k][v] = s.mul_add(value, grads[v], sums[k][v]);
                }
            }
        }
    }
    for ox in (0..g.out_w).filter(|ox| !inner.contains(ox)) {
        for k in 0..K {
            let tap = k0 + k;
            if tap >= T {
                continue;
            }
            let row_at = tap_at(oy, g.stride_h, taps.rows[tap], g.dilation_h, g.pad_top, g.height);
            let col_at = tap_at(ox, g.stride_w, taps.cols[tap], g.dilation_w, g.pad_left, g.width);
            if let (Some(r), Some(c)) = (row_at, col_at) {
                let value = s.splat(image[(r * g.width + c) * g.channels + tap % g.channels]);
                for v in 0..V {
                    sums[k][v] = s.mul_add(value, s.load(&row[ox * f + f0 + S::LANES * v..]), sums[k][v]);
                }
            }
        }
    }
    for k in 0..K {
        if k0 + k < T {
            for v in 0..V {
                let at = &mut kernel_sum[(k0 + k) * f + f0 + S::LANES * v..];
                let total = s.add(s.load(at), sums[k][v]);
                s.store(at, total);
            }
        }
    }
}
