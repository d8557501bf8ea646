//! Direct convolution for small receptive fields, such as a grey image's first layer (3×3×1:
//! nine values per output) or a colour image's (3×3×3: 27). Lowered to a matrix product, such
//! a convolution has an inner dimension too short for a product to run fast, and im2col would
//! copy the input nine times over. Here each output's filters are summed in registers straight
//! from the image, with the bias and the ReLU applied before the single store, and the backward
//! pass sums the kernel and bias gradients in registers over all positions.
//!
//! A convolution with zero padding reads a copy of each image with the padding written out
//! (a few kilobytes, made per image in a per-thread buffer), so every window lies inside what
//! the kernels read and none of them needs a bounds check at the border: the zeros add exact
//! zeros to the sums.
//!
//! The kernel and bias gradients are summed in [`PARTIALS`] fixed runs of images, added in
//! order at the end, so the result does not depend on the thread count. The input gradient is
//! not computed here (the first layer needs none); `conv2d` takes it from im2col's products.
//!
//! This is a convolution summed in registers, the one convolution path whose sums do not go
//! through gemm-f32 ([`super::matmul()`]) or the Winograd products. The product alone is faster
//! there, but not what surrounds it: im2col, the bias-and-ReLU pass, the ReLU mask and the
//! column sums each make a trip through the whole output, which for a first layer is the
//! largest tensor of the step (docs/PERFORMANCE.md, "Figures moved from code comments", has the
//! timings for the `cnn`'s conv1, and "cifar10_cnn step" those for the 27-tap conv1 of
//! `cifar10_cnn`). Folded with the max pooling that reads it (as in the `cnn`), the output's
//! gradient never reaches memory at all.

#![allow(clippy::needless_range_loop)] // Indexing by constants is what lets the loops unroll.

use super::activation::{Activation, activate};
use super::conv::{OutputGrad, Window2d};
use super::scratch::with_scratch;
use super::simd::{Simd, dispatch_simd};
use rayon::prelude::*;

/// Largest receptive field (`KH·KW·C`) handled here: a 3×3 window over three colour channels.
/// Its kernel gradient is summed in registers a chunk of taps at a time.
const MAX_PATCH: usize = 27;
/// Largest 1×1 window (its channel count) handled here: a 1×1 convolution's input is already
/// im2col's matrix, so the direct kernel saves no copy there, and wider ones (MobileNet's
/// 16- and 24-channel expansions) stay with the matrix product, as they did before colour
/// images' windows came here.
const MAX_POINTWISE: usize = 12;
/// Partial sums of the kernel gradient, so the backward pass runs on up to this many threads.
const PARTIALS: usize = 4;
/// Outputs computed together in the forward pass (each two vectors of filters wide).
const POSITIONS: usize = 4;
/// The largest padded copy of an image, in values, beside four times the image itself: padding
/// only ever adds a window's span to each side, but a large dilation makes that span large.
const MAX_PADDED_COPY: usize = 1 << 16;

/// How one convolution runs directly.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Direct {
    patch: usize,
    filters: usize,
    batch: usize,
    /// Images per partial sum of the kernel gradient.
    partial_images: usize,
    /// The geometry of the padded copy the kernels read, when the convolution has padding (or
    /// windows past the image's far edges): the same windows over an image with the padding
    /// written out, and none left around it.
    padded: Option<Window2d>,
}

impl Direct {
    /// The plan for `filters` outputs per position, or `None` when the receptive field is
    /// larger than [`MAX_PATCH`] (or [`MAX_POINTWISE`] for a 1×1 window), `filters` is not a
    /// positive multiple of 8, or the padded copy of an image would be out of proportion to it
    /// (see [`MAX_PADDED_COPY`]).
    pub(crate) fn plan(g: &Window2d, filters: usize) -> Option<Direct> {
        let most = if g.window_h * g.window_w == 1 {
            MAX_POINTWISE
        } else {
            MAX_PATCH
        };
        let eligible = g.patch_len() <= most && filters > 0 && filters.is_multiple_of(8) && g.batch > 0;
        if !eligible || g.out_h == 0 || g.out_w == 0 {
            return None;
        }
        // The rows and columns the windows reach, padding included (spans were checked when
        // the output size was worked out, but `Window2d` is plain data: check again).
        let reach = |out: usize, stride: usize, window: usize, dilation: usize| {
            (out - 1)
                .checked_mul(stride)?
                .checked_add((window - 1).checked_mul(dilation)?)?
                .checked_add(1)
        };
        let rows = reach(g.out_h, g.stride_h, g.window_h, g.dilation_h)?;
        let cols = reach(g.out_w, g.stride_w, g.window_w, g.dilation_w)?;
        let padded = if g.pad_top == 0 && g.pad_left == 0 && rows <= g.height && cols <= g.width {
            None
        } else {
            let len = rows.checked_mul(cols)?.checked_mul(g.channels)?;
            if len > g.image_len().saturating_mul(4).max(MAX_PADDED_COPY) {
                return None;
            }
            Some(Window2d {
                height: rows,
                width: cols,
                pad_top: 0,
                pad_left: 0,
                ..*g
            })
        };
        Some(Direct {
            patch: g.patch_len(),
            filters,
            batch: g.batch,
            partial_images: g.batch.div_ceil(PARTIALS),
            padded,
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

    /// Values of an image's padded copy (0 without padding).
    fn padded_len(&self) -> usize {
        self.padded.map_or(0, |p| p.image_len())
    }

    /// Runs `work` on the geometry and values the kernels read for `image` of convolution `g`:
    /// the image itself, or its padded copy in the first [`Direct::padded_len`] values of
    /// `buffer` (the rest of `buffer` is handed to `work`).
    fn with_image<R>(
        &self,
        g: &Window2d,
        image: &[f32],
        buffer: &mut [f32],
        work: impl FnOnce(&Window2d, &[f32], &mut [f32]) -> R,
    ) -> R {
        let (copy, rest) = buffer.split_at_mut(self.padded_len());
        match &self.padded {
            None => work(g, image, rest),
            Some(p) => {
                pad_image(g, p, image, copy);
                work(p, copy, rest)
            }
        }
    }

    /// `y = activation(conv(x, kernel) + bias)`, in parallel over images, and
    /// over bands of output rows when there are fewer images than threads (a single image
    /// still uses every thread). Each output is summed the same way in any band.
    pub(crate) fn forward(
        &self,
        g: &Window2d,
        x: &[f32],
        kernel: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        y: &mut [f32],
    ) {
        self.run_forward(g, None, x, kernel, bias, activation, (y, None));
    }

    /// `y = max_pool(max(conv(x, kernel) + bias, 0))` in one pass, for a `pool` over the
    /// convolution's output that [`max_pool_folds_forward`] accepts: each pooled value is the
    /// largest of its window's outputs, each summed and put through the ReLU as
    /// [`Direct::forward`] does (the same bits as the two steps), and the convolution's own
    /// output is never written. With `argmax` (`y`'s size), each value's tap is recorded as
    /// `kernels::max_pool` records it (the first tap holding the maximum, as an f32), for the
    /// backward pass's [`OutputGrad::Pooled`]. In parallel as `forward`, by pooled rows.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_max_pooled(
        &self,
        g: &Window2d,
        pool: &Window2d,
        x: &[f32],
        kernel: &[f32],
        bias: Option<&[f32]>,
        y: &mut [f32],
        argmax: Option<&mut [f32]>,
    ) {
        assert!(
            max_pool_folds_forward(g, pool),
            "forward_max_pooled called for another pooling"
        );
        let relu = Activation::Relu {
            max_value: f32::INFINITY,
        };
        self.run_forward(g, Some(pool), x, kernel, bias, relu, (y, argmax));
    }

    /// [`Direct::forward`], or [`Direct::forward_max_pooled`] with `pool` (and the argmax
    /// when given): bands of output (or pooled) rows of each image in parallel.
    #[allow(clippy::too_many_arguments)]
    fn run_forward(
        &self,
        g: &Window2d,
        pool: Option<&Window2d>,
        x: &[f32],
        kernel: &[f32],
        bias: Option<&[f32]>,
        activation: Activation,
        (y, argmax): (&mut [f32], Option<&mut [f32]>),
    ) {
        let (rows_per_image, out_w) = pool.map_or((g.out_h, g.out_w), |p| (p.out_h, p.out_w));
        let out_len = rows_per_image * out_w * self.filters;
        assert!(kernel.len() >= self.patch * self.filters && bias.is_none_or(|b| b.len() >= self.filters));
        if out_len == 0 {
            return;
        }
        let band_len = super::row_band(self.batch, rows_per_image) * out_w * self.filters;
        let filters = self.filters;
        let in_len = g.image_len();
        // Band `band` of image `n`: its output (and argmax) rows.
        let band = |n: usize, band: usize, y: &mut [f32], argmax: Option<&mut [f32]>| {
            let image = &x[n * in_len..][..in_len];
            let first = band * band_len / (out_w * filters);
            let rows = first..first + y.len() / (out_w * filters);
            with_scratch(self.padded_len(), |buffer| {
                self.with_image(g, image, buffer, |g, image, _| match pool {
                    None => forward_image(g, image, (kernel, filters), bias, activation, (rows, y)),
                    Some(pool) => forward_pooled_image(g, pool, image, (kernel, filters), bias, (rows, y, argmax)),
                })
            })
        };
        let y = &mut y[..self.batch * out_len];
        assert!(x.len() >= self.batch * in_len);
        match argmax {
            None => y.par_chunks_mut(out_len).enumerate().for_each(|(n, y)| {
                y.par_chunks_mut(band_len)
                    .enumerate()
                    .for_each(|(b, y)| band(n, b, y, None))
            }),
            Some(argmax) => y
                .par_chunks_mut(out_len)
                .zip(argmax[..self.batch * out_len].par_chunks_mut(out_len))
                .enumerate()
                .for_each(|(n, (y, argmax))| {
                    y.par_chunks_mut(band_len)
                        .zip(argmax.par_chunks_mut(band_len))
                        .enumerate()
                        .for_each(|(b, (y, argmax))| band(n, b, y, Some(argmax)))
                }),
        }
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
        let row_len = g.out_w * self.filters;
        let sums = &mut scratch[..self.backward_scratch_len()];
        sums.par_chunks_mut(partial_len).enumerate().for_each(|(p, sum)| {
            sum.fill(0.0);
            let first = p * self.partial_images;
            with_scratch(self.padded_len() + row_len, |buffer| {
                for n in first..(first + self.partial_images).min(self.batch) {
                    let image = &x[n * in_len..][..in_len];
                    let grad = grad.images(g, self.filters, n, 1);
                    self.with_image(g, image, buffer, |g, image, row| {
                        backward_image(g, image, grad, relu, sum, row)
                    });
                }
            });
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

/// Writes `image` (of convolution `g`) into `copy` with its padding as zeros: the image
/// `padded` describes, whose windows all lie inside it. Rows and columns no window reaches
/// are left out.
fn pad_image(g: &Window2d, padded: &Window2d, image: &[f32], copy: &mut [f32]) {
    let c = g.channels;
    copy.fill(0.0);
    // Padding only goes before the image or after it, so the first row and column copied are
    // the image's first: a window reaches past the leading padding.
    let run = g.width.min(padded.width.saturating_sub(g.pad_left)) * c;
    for y in 0..g.height.min(padded.height.saturating_sub(g.pad_top)) {
        let at = ((y + g.pad_top) * padded.width + g.pad_left) * c;
        copy[at..][..run].copy_from_slice(&image[y * g.width * c..][..run]);
    }
}

/// The receptive field of one output position, relative to the input value its top-left tap
/// reads: each tap's offset.
struct Taps {
    offsets: [isize; MAX_PATCH],
    count: usize,
}

impl Taps {
    #[inline(always)]
    fn new(g: &Window2d) -> Self {
        let mut taps = Taps {
            offsets: [0; MAX_PATCH],
            count: g.patch_len(),
        };
        let mut k = 0;
        for ky in 0..g.window_h {
            for kx in 0..g.window_w {
                for c in 0..g.channels {
                    taps.offsets[k] = ((ky * g.dilation_h * g.width + kx * g.dilation_w) * g.channels + c) as isize;
                    k += 1;
                }
            }
        }
        taps
    }
}

/// Asserts that every window of `g` lies inside the image (no padding, none past the far
/// edges): the kernels below read windows without bounds checks.
#[inline(always)]
fn assert_windows_inside(g: &Window2d) {
    assert!(g.windows_inside(), "direct convolution: a window outside the image");
}

/// Where output (oy, ox)'s window starts in an image without padding.
#[inline(always)]
fn window_origin(g: &Window2d, oy: usize, ox: usize) -> isize {
    g.window_origin(oy, ox) as isize
}

// AVX-512 runs filter counts that are multiples of its 16 lanes; other multiples of 8 run on AVX2.
dispatch_simd!(forward_image<> => forward_image_body(
    g: &Window2d, image: &[f32], kernel: (&[f32], usize), bias: Option<&[f32]>, activation: Activation,
    out: (std::ops::Range<usize>, &mut [f32])
) wide: kernel.1.is_multiple_of(16));

/// Output rows `rows` of one image into `y` (those rows only), for `f` filters.
#[inline(always)]
fn forward_image_body<S: Simd>(
    s: S,
    g: &Window2d,
    image: &[f32],
    (kernel, f): (&[f32], usize),
    bias: Option<&[f32]>,
    activation: Activation,
    (rows, y): (std::ops::Range<usize>, &mut [f32]),
) {
    let taps = Taps::new(g);
    assert!(image.len() == g.image_len() && kernel.len() >= taps.count * f && rows.end <= g.out_h);
    assert!(y.len() == rows.len() * g.out_w * f);
    assert_windows_inside(g);
    let step = (g.stride_w * g.channels) as isize;
    let lanes = S::LANES;
    for f0 in (0..f).step_by(2 * lanes) {
        let wide = f - f0 >= 2 * lanes;
        for oy in rows.clone() {
            let mut ox = 0;
            while ox < g.out_w {
                let first = window_origin(g, oy, ox);
                let at = ((oy - rows.start) * g.out_w + ox) * f + f0;
                // Runs of 4 outputs, then 2 or 1 at the end of the row.
                let run = [POSITIONS, 2, 1]
                    .into_iter()
                    .find(|&run| ox + run <= g.out_w)
                    .unwrap_or(1);
                let args = (first, step);
                let y = &mut y[at..];
                match (run, wide) {
                    (POSITIONS, true) => {
                        forward_block::<S, POSITIONS, 2>(s, image, &taps, args, kernel, f, f0, bias, activation, y)
                    }
                    (POSITIONS, false) => {
                        forward_block::<S, POSITIONS, 1>(s, image, &taps, args, kernel, f, f0, bias, activation, y)
                    }
                    (2, true) => forward_block::<S, 2, 2>(s, image, &taps, args, kernel, f, f0, bias, activation, y),
                    (2, false) => forward_block::<S, 2, 1>(s, image, &taps, args, kernel, f, f0, bias, activation, y),
                    (_, true) => forward_block::<S, 1, 2>(s, image, &taps, args, kernel, f, f0, bias, activation, y),
                    (_, false) => forward_block::<S, 1, 1>(s, image, &taps, args, kernel, f, f0, bias, activation, y),
                }
                ox += run;
            }
        }
    }
}

/// Whether [`Direct::forward_max_pooled`] folds `pool` (over the output of convolution `g`):
/// windows of 1, 2 or 4 taps without padding or dilation, each inside the output.
pub(crate) fn max_pool_folds_forward(g: &Window2d, pool: &Window2d) -> bool {
    let inside = |out: usize, stride: usize, window: usize, size: usize| {
        out > 0
            && (out - 1)
                .checked_mul(stride)
                .and_then(|last| last.checked_add(window))
                .is_some_and(|end| end <= size)
    };
    matches!(pool.window_h * pool.window_w, 1 | 2 | 4)
        && (pool.dilation_h, pool.dilation_w, pool.pad_top, pool.pad_left) == (1, 1, 0, 0)
        && (pool.batch, pool.height, pool.width) == (g.batch, g.out_h, g.out_w)
        && inside(pool.out_h, pool.stride_h, pool.window_h, pool.height)
        && inside(pool.out_w, pool.stride_w, pool.window_w, pool.width)
}

dispatch_simd!(forward_pooled_image<> => forward_pooled_image_body(
    g: &Window2d, pool: &Window2d, image: &[f32], kernel: (&[f32], usize), bias: Option<&[f32]>,
    out: (std::ops::Range<usize>, &mut [f32], Option<&mut [f32]>)
) wide: kernel.1.is_multiple_of(16));

/// Pooled rows `rows` of one image into `y` (and their taps into `argmax`, when given; those
/// rows only), for `f` filters: each pooling window's outputs summed together, as
/// [`forward_block`] sums neighbours.
#[inline(always)]
fn forward_pooled_image_body<S: Simd>(
    s: S,
    g: &Window2d,
    pool: &Window2d,
    image: &[f32],
    (kernel, f): (&[f32], usize),
    bias: Option<&[f32]>,
    (rows, y, mut argmax): (std::ops::Range<usize>, &mut [f32], Option<&mut [f32]>),
) {
    let taps = Taps::new(g);
    assert!(image.len() == g.image_len() && kernel.len() >= taps.count * f && rows.end <= pool.out_h);
    assert!(y.len() == rows.len() * pool.out_w * f && argmax.as_ref().is_none_or(|a| a.len() == y.len()));
    assert_windows_inside(g);
    let lanes = S::LANES;
    for f0 in (0..f).step_by(2 * lanes) {
        let wide = f - f0 >= 2 * lanes;
        for py in rows.clone() {
            for px in 0..pool.out_w {
                let (oy, ox) = (py * pool.stride_h, px * pool.stride_w);
                // The window's outputs row by row: within the convolution's output, as
                // `max_pool_folds_forward` checked.
                let origin = |t: usize| window_origin(g, oy + t / pool.window_w, ox + t % pool.window_w);
                let at = ((py - rows.start) * pool.out_w + px) * f + f0;
                let args = (s, image, &taps, (kernel, f, f0), bias);
                let out = (&mut y[at..], argmax.as_deref_mut().map(|a| &mut a[at..]));
                match (pool.window_h * pool.window_w, wide) {
                    (4, true) => pooled_block::<S, 4, 2>(args, std::array::from_fn(origin), out),
                    (4, false) => pooled_block::<S, 4, 1>(args, std::array::from_fn(origin), out),
                    (2, true) => pooled_block::<S, 2, 2>(args, std::array::from_fn(origin), out),
                    (2, false) => pooled_block::<S, 2, 1>(args, std::array::from_fn(origin), out),
                    (_, true) => pooled_block::<S, 1, 2>(args, std::array::from_fn(origin), out),
                    (_, false) => pooled_block::<S, 1, 1>(args, std::array::from_fn(origin), out),
                }
            }
        }
    }
}

/// The ReLU of each of `P` windows' sums, then their maximum, stored: one pooled output. With
/// `argmax`, the first window holding the maximum too, as `kernels::max_pool` picks it
/// (strictly greater replaces), which keeps the same value.
#[inline(always)]
#[allow(clippy::type_complexity)]
fn pooled_block<S: Simd, const P: usize, const V: usize>(
    (s, image, taps, kernel, bias): (S, &[f32], &Taps, (&[f32], usize, usize), Option<&[f32]>),
    origins: [isize; P],
    (y, mut argmax): (&mut [f32], Option<&mut [f32]>),
) {
    let sums = block_sums::<S, P, V>(s, image, taps, origins, kernel, bias);
    let zero = s.splat(0.0);
    for v in 0..V {
        // The ReLU first, as the two steps apply it: a NaN sum becomes 0 before the maximum,
        // so every value compared is a number of at least +0.
        let mut largest = s.max(sums[0][v], zero);
        let mut tap = zero;
        for (t, sum) in sums.iter().enumerate().skip(1) {
            let value = s.max(sum[v], zero);
            let greater = s.greater(value, largest);
            largest = s.select(greater, value, largest);
            tap = s.select(greater, s.splat(t as f32), tap);
        }
        s.store(&mut y[S::LANES * v..], largest);
        if let Some(argmax) = argmax.as_deref_mut() {
            s.store(&mut argmax[S::LANES * v..], tap);
        }
    }
}

/// `P` neighbouring outputs, filters `f0..f0 + V·LANES`.
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
    activation: Activation,
    y: &mut [f32],
) {
    let origins = std::array::from_fn(|p| first + p as isize * step);
    let sums = block_sums::<S, P, V>(s, image, taps, origins, (kernel, f, f0), bias);
    for p in 0..P {
        for v in 0..V {
            s.store(&mut y[p * f + S::LANES * v..], activate(s, sums[p][v], activation));
        }
    }
}

/// The sums (bias first) of the `P` windows that start at `origins`, filters
/// `f0..f0 + V·LANES` of `f`: each over the taps in order, whatever the windows' places.
#[inline(always)]
fn block_sums<S: Simd, const P: usize, const V: usize>(
    s: S,
    image: &[f32],
    taps: &Taps,
    origins: [isize; P],
    (kernel, f, f0): (&[f32], usize, usize),
    bias: Option<&[f32]>,
) -> [[S::V; V]; P] {
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
            // SAFETY: the callers asserted that every window lies inside `image`, and tap
            // offsets stay inside a window.
            let value = unsafe { *base.offset(origins[p] + taps.offsets[k]) };
            let value = s.splat(value);
            for v in 0..V {
                sums[p][v] = s.mul_add(value, weights[v], sums[p][v]);
            }
        }
    }
    sums
}

dispatch_simd!(backward_image<> => backward_image_body(
    g: &Window2d, image: &[f32], grad: OutputGrad, relu: bool, sum: &mut [f32], row: &mut [f32]
) wide: (sum.len() / (g.patch_len() + 1)).is_multiple_of(16));

/// Most taps summed together in the backward pass: with two vectors of filters, 10 sums in
/// AVX2's 16 registers.
const TAP_CHUNK: usize = 5;
/// The same in AVX-512's 32 registers: 20 sums, so a 3×3 grey window's nine taps read each
/// output row's gradients once instead of twice.
const WIDE_TAP_CHUNK: usize = 10;

/// Adds one image's kernel and bias gradients into `sum` (`T·F` kernel values, then `F` bias
/// values), `T` being the receptive field's size, one output row at a time: its gradient
/// (masked by the ReLU) is written once into `row`, a buffer in L1, and every tap's sums then
/// read it from there, two vectors of filters at a time.
#[inline(always)]
fn backward_image_body<S: Simd>(
    s: S,
    g: &Window2d,
    image: &[f32],
    grad: OutputGrad,
    relu: bool,
    sum: &mut [f32],
    row: &mut [f32],
) {
    let taps = Taps::new(g);
    let t = taps.count;
    let f = sum.len() / (t + 1);
    let row_len = g.out_w * f;
    assert!(image.len() == g.image_len() && sum.len() == (t + 1) * f && row.len() >= row_len);
    assert_windows_inside(g);
    let (kernel_sum, bias_sum) = sum.split_at_mut(t * f);
    // The taps in even chunks of at most the registers' worth: 27 taps as 3 × 9 with AVX-512.
    let most = if S::REGISTERS >= 32 { WIDE_TAP_CHUNK } else { TAP_CHUNK };
    let chunk = t.div_ceil(t.div_ceil(most));
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
        // Each kernel-gradient value sums the row's outputs in order whatever the chunk, so
        // every chunk size gives the same bits. The first chunk adds the row into the bias
        // gradient too, in order, beside its products rather than as a chain of its own.
        for f0 in (0..f).step_by(2 * S::LANES) {
            let two = f - f0 >= 2 * S::LANES;
            for k0 in (0..t).step_by(chunk) {
                let at = (g, image, &taps, oy);
                let place = (k0, f0, f);
                let sums = (&mut *kernel_sum, (k0 == 0).then_some(&mut *bias_sum));
                macro_rules! chunks {
                    ($($k:literal)*) => {
                        match (chunk, two) {
                            $(($k, true) => tap_sums::<S, 2, $k>(s, at, row, place, sums),
                              ($k, false) => tap_sums::<S, 1, $k>(s, at, row, place, sums),)*
                            _ => unreachable!("chunks are 1 to WIDE_TAP_CHUNK taps"),
                        }
                    };
                }
                chunks!(1 2 3 4 5 6 7 8 9 10);
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
/// zero elsewhere. Each pooled value is read once for all its window's taps in this row.
#[inline(always)]
fn pooled_row<S: Simd>(
    s: S,
    pool: &Window2d,
    (pooled, argmax, dp): (&[f32], &[f32], &[f32]),
    oy: usize,
    relu: bool,
    row: &mut [f32],
) {
    let (py, ty) = (oy / pool.stride_h, oy % pool.stride_h);
    if py >= pool.out_h || ty >= pool.window_h {
        row.fill(0.0);
        return;
    }
    let f = pool.channels;
    // Where the windows leave positions of the row uncovered, those get no gradient.
    let tiled = pool.stride_w == pool.window_w && pool.out_w * pool.window_w * f == row.len();
    if !tiled {
        row.fill(0.0);
    }
    let first_tap = ty * pool.window_w;
    for px in 0..pool.out_w {
        let at = (py * pool.out_w + px) * f;
        for f0 in (0..f).step_by(S::LANES) {
            let mut grad = s.load(&dp[at + f0..]);
            if relu {
                grad = s.keep_where_positive(grad, s.load(&pooled[at + f0..]));
            }
            let index = s.load(&argmax[at + f0..]);
            for tx in 0..pool.window_w {
                let hit = s.equal(index, s.splat((first_tap + tx) as f32));
                let ox = px * pool.stride_w + tx;
                s.store(&mut row[ox * f + f0..], s.and(hit, grad));
            }
        }
    }
}

/// Adds to the kernel gradient of taps `k0..k0 + K` (those below the receptive field's size)
/// and filters `f0..f0 + V·LANES` the products of output row `oy`'s gradients `row` with the
/// inputs the taps read, and to the bias gradient (when given) the gradients, one after the
/// other.
#[inline(always)]
fn tap_sums<S: Simd, const V: usize, const K: usize>(
    s: S,
    (g, image, taps, oy): (&Window2d, &[f32], &Taps, usize),
    row: &[f32],
    (k0, f0, f): (usize, usize, usize),
    (kernel_sum, bias_sum): (&mut [f32], Option<&mut [f32]>),
) {
    // The chunk's taps; those past the last tap read the window's first value, and their sums
    // are dropped (the loop below stays free of branches).
    let live = K.min(taps.count - k0);
    let mut offsets = [0isize; K];
    offsets[..live].copy_from_slice(&taps.offsets[k0..k0 + live]);
    let mut sums = [[s.splat(0.0); V]; K];
    let base = image.as_ptr();
    let step = (g.stride_w * g.channels) as isize;
    let origin = window_origin(g, oy, 0);
    let mut bias_totals = [s.splat(0.0); V];
    if let Some(bias_sum) = bias_sum.as_deref() {
        for v in 0..V {
            bias_totals[v] = s.load(&bias_sum[f0 + S::LANES * v..]);
        }
    }
    for ox in 0..g.out_w {
        let mut grads = [s.splat(0.0); V];
        for v in 0..V {
            grads[v] = s.load(&row[ox * f + f0 + S::LANES * v..]);
        }
        if bias_sum.is_some() {
            for v in 0..V {
                bias_totals[v] = s.add(bias_totals[v], grads[v]);
            }
        }
        let at = origin + ox as isize * step;
        for k in 0..K {
            // SAFETY: `backward_image_body` asserted that every window lies inside `image`,
            // and tap offsets stay inside a window.
            let value = s.splat(unsafe { *base.offset(at + offsets[k]) });
            for v in 0..V {
                sums[k][v] = s.mul_add(value, grads[v], sums[k][v]);
            }
        }
    }
    for k in 0..live {
        for v in 0..V {
            let at = &mut kernel_sum[(k0 + k) * f + f0 + S::LANES * v..];
            let total = s.add(s.load(at), sums[k][v]);
            s.store(at, total);
        }
    }
    if let Some(bias_sum) = bias_sum {
        for v in 0..V {
            s.store(&mut bias_sum[f0 + S::LANES * v..], bias_totals[v]);
        }
    }
}
