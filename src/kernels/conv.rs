//! Convolution and pooling on channels-last `(N, H, W, C)` batches.
//!
//! A convolution is lowered to one matrix product: `im2col` copies every receptive field into a
//! row of a `(N·OH·OW, KH·KW·C)` matrix whose column order matches the kernel's `(KH, KW, C, F)`
//! layout, so `output = cols · kernel`. `col2im` scatters the rows back for the input gradient.
//! Both run in parallel over the images of the batch; each image's rows are its own, so the
//! results do not depend on the thread count.

use rayon::prelude::*;

/// How a convolution or pooling window covers the border, as Keras's `padding`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Padding {
    /// No padding: windows stay inside the input.
    Valid,
    /// Zero padding so the output has `ceil(input / stride)` positions (TensorFlow's split:
    /// the extra row or column goes at the bottom/right).
    Same,
}

/// Output size and leading padding along one axis, or `None` when the window does not fit
/// (or its span does not fit in a `usize`: sizes come from model files, so no product here
/// may wrap around).
pub(crate) fn output_size(
    input: usize,
    window: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    let span = window.checked_sub(1)?.checked_mul(dilation)?.checked_add(1)?;
    match padding {
        Padding::Valid => (input >= span).then(|| ((input - span) / stride + 1, 0)),
        Padding::Same => {
            let out = input.div_ceil(stride);
            // (out - 1) · stride < input: only the span can make the sum overflow.
            let needed = ((out.checked_sub(1)? * stride).checked_add(span)?).saturating_sub(input);
            Some((out, needed / 2))
        }
    }
}

/// The sizes of one convolution (or pooling) of a batch.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window2d {
    /// Images in the batch.
    pub batch: usize,
    /// Input height.
    pub height: usize,
    /// Input width.
    pub width: usize,
    /// Input channels.
    pub channels: usize,
    /// Window height.
    pub window_h: usize,
    /// Window width.
    pub window_w: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Vertical dilation.
    pub dilation_h: usize,
    /// Horizontal dilation.
    pub dilation_w: usize,
    /// Zero rows above the input.
    pub pad_top: usize,
    /// Zero columns left of the input.
    pub pad_left: usize,
    /// Output height.
    pub out_h: usize,
    /// Output width.
    pub out_w: usize,
}

impl Window2d {
    /// A 1×1 window with stride 1 over `pixels` pixels of `channels` channels (their layout
    /// in images does not matter to it): each output pixel reads its own input pixel.
    pub(crate) fn pointwise(pixels: usize, channels: usize) -> Window2d {
        Window2d {
            batch: pixels,
            height: 1,
            width: 1,
            channels,
            window_h: 1,
            window_w: 1,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: 0,
            pad_left: 0,
            out_h: 1,
            out_w: 1,
        }
    }

    /// Values in one receptive field (`KH·KW·C`): the columns of the im2col matrix.
    pub(crate) fn patch_len(&self) -> usize {
        self.window_h * self.window_w * self.channels
    }

    /// Output positions per image.
    pub(crate) fn positions(&self) -> usize {
        self.out_h * self.out_w
    }

    /// Values of one input image.
    pub(crate) fn image_len(&self) -> usize {
        self.height * self.width * self.channels
    }

    /// Whether every window lies inside the image: no padding, at least one output, and the
    /// last window's last tap within the height and the width (computed without overflow).
    /// Kernels that read windows in place, without bounds checks, require it.
    pub(crate) fn windows_inside(&self) -> bool {
        let inside = |out: usize, stride: usize, window: usize, dilation: usize, size: usize| {
            let last = (out.checked_sub(1)?).checked_mul(stride)?;
            last.checked_add(window.checked_sub(1)?.checked_mul(dilation)?)
                .map(|last| last < size)
        };
        self.pad_top == 0
            && self.pad_left == 0
            && inside(self.out_h, self.stride_h, self.window_h, self.dilation_h, self.height) == Some(true)
            && inside(self.out_w, self.stride_w, self.window_w, self.dilation_w, self.width) == Some(true)
    }

    /// Where output (`oy`, `ox`)'s window starts in an image without padding, in values.
    #[inline(always)]
    pub(crate) fn window_origin(&self, oy: usize, ox: usize) -> usize {
        (oy * self.stride_h * self.width + ox * self.stride_w) * self.channels
    }

    /// The window rows `ky` of output row `oy` that read the input rather than its padding.
    /// Pooling loops over these only, so its cost does not grow with a window larger than the
    /// input (a 30,000-wide window over a 28-wide image reads at most 28 columns).
    pub(crate) fn rows_inside(&self, oy: usize) -> std::ops::Range<usize> {
        taps_inside(
            oy * self.stride_h,
            self.pad_top,
            self.dilation_h,
            self.height,
            self.window_h,
        )
    }

    /// [`Window2d::rows_inside`] for the columns of output column `ox`.
    pub(crate) fn cols_inside(&self, ox: usize) -> std::ops::Range<usize> {
        taps_inside(
            ox * self.stride_w,
            self.pad_left,
            self.dilation_w,
            self.width,
            self.window_w,
        )
    }

    /// The input row and column a window tap reads, or `None` in the padding.
    #[inline]
    pub(crate) fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride_h + ky * self.dilation_h).checked_sub(self.pad_top)?;
        let x = (ox * self.stride_w + kx * self.dilation_w).checked_sub(self.pad_left)?;
        (y < self.height && x < self.width).then_some((y, x))
    }
}

/// The taps `k < window` of a window starting at padded position `start` that land inside an
/// input of `size` behind `pad` padding: those with `pad ≤ start + k·dilation < pad + size`.
fn taps_inside(start: usize, pad: usize, dilation: usize, size: usize, window: usize) -> std::ops::Range<usize> {
    let first = pad.saturating_sub(start).div_ceil(dilation);
    let end = pad.saturating_add(size).saturating_sub(start).div_ceil(dilation);
    first.min(window)..end.min(window)
}

/// Fills `cols` (`N·OH·OW × KH·KW·C`) with the receptive fields of `input` (`N×H×W×C`), in
/// parallel over output rows (so a single image uses every thread too); each value is a copy,
/// the same whatever the split.
pub(crate) fn im2col<T: Copy + Default + Send + Sync>(input: &[T], g: &Window2d, cols: &mut [T]) {
    let patch = g.patch_len();
    if g.out_h == 0 || g.out_w == 0 || patch == 0 {
        return;
    }
    cols[..g.batch * g.positions() * patch]
        .par_chunks_mut(g.out_w * patch)
        .enumerate()
        .for_each(|(row_number, cols)| im2col_rows(input, g, row_number * g.out_w, cols));
}

/// Rows `first..` of [`im2col`]'s matrix (as many as `cols` holds), on this thread: the
/// receptive fields of output positions `first..` counted through the batch.
pub(crate) fn im2col_rows<T: Copy + Default>(input: &[T], g: &Window2d, first: usize, cols: &mut [T]) {
    let patch = g.patch_len();
    if patch == 0 {
        return;
    }
    for (offset, row) in cols.chunks_exact_mut(patch).enumerate() {
        let position = first + offset;
        let (n, within) = (position / g.positions(), position % g.positions());
        let image = &input[n * g.image_len()..][..g.image_len()];
        receptive_field(image, g, (within / g.out_w, within % g.out_w), row);
    }
}

/// The receptive field of output position (`oy`, `ox`) of `image` into `row` (`KH·KW·C`
/// values, zeros for the padding).
#[inline]
fn receptive_field<T: Copy + Default>(image: &[T], g: &Window2d, (oy, ox): (usize, usize), row: &mut [T]) {
    let c = g.channels;
    // With no horizontal dilation a window row is one contiguous run of `KW·C` input values:
    // copy it at once instead of `C` values at a time (C is 1 for grey images).
    let run = g.window_w * c;
    for ky in 0..g.window_h {
        let first = g.source(oy, ox, ky, 0);
        let last = g.source(oy, ox, ky, g.window_w - 1);
        if g.dilation_w == 1
            && let (Some((y, x)), Some(_)) = (first, last)
        {
            row[ky * run..][..run].copy_from_slice(&image[(y * g.width + x) * c..][..run]);
            continue;
        }
        for kx in 0..g.window_w {
            let dest = &mut row[(ky * g.window_w + kx) * c..][..c];
            match g.source(oy, ox, ky, kx) {
                Some((y, x)) => dest.copy_from_slice(&image[(y * g.width + x) * c..][..c]),
                None => dest.fill(T::default()),
            }
        }
    }
}

/// Adds each row of `cols` back onto the input positions it was copied from: the transpose of
/// [`im2col`], used for the input gradient.
pub(crate) fn col2im_accumulate(cols: &[f32], g: &Window2d, input_grad: &mut [f32]) {
    let (patch, c) = (g.patch_len(), g.channels);
    let (run, contiguous) = (g.window_w * c, g.dilation_w == 1);
    input_grad
        .par_chunks_mut(g.image_len())
        .zip(cols.par_chunks(g.positions() * patch))
        .for_each(|(image, cols)| {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let row = &cols[(oy * g.out_w + ox) * patch..][..patch];
                    for ky in 0..g.window_h {
                        let first = g.source(oy, ox, ky, 0);
                        let last = g.source(oy, ox, ky, g.window_w - 1);
                        if contiguous && let (Some((y, x)), Some(_)) = (first, last) {
                            let dest = &mut image[(y * g.width + x) * c..][..run];
                            dest.iter_mut().zip(&row[ky * run..][..run]).for_each(|(d, s)| *d += s);
                            continue;
                        }
                        for kx in 0..g.window_w {
                            if let Some((y, x)) = g.source(oy, ox, ky, kx) {
                                let src = &row[(ky * g.window_w + kx) * c..][..c];
                                let dest = &mut image[(y * g.width + x) * c..][..c];
                                dest.iter_mut().zip(src).for_each(|(d, s)| *d += s);
                            }
                        }
                    }
                }
            }
        });
}

/// Where the backward pass reads the gradient of a convolution's output.
#[derive(Clone, Copy)]
pub(crate) enum OutputGrad<'a> {
    /// The output `y` (for the ReLU's mask) and its gradient `dy`.
    Plain { y: &'a [f32], dy: &'a [f32] },
    /// The output went only into max pooling over disjoint windows inside it (`pool`): its
    /// gradient is the pooling's output gradient `dp`, routed to the tap `argmax` recorded,
    /// and zero elsewhere, rebuilt row by row rather than read from memory. The ReLU's mask
    /// there is the pooled maximum `pooled` being positive.
    Pooled {
        pool: &'a Window2d,
        pooled: &'a [f32],
        argmax: &'a [f32],
        dp: &'a [f32],
    },
}

impl<'a> OutputGrad<'a> {
    /// The part for images `first..first + count` of a convolution `g` with `filters` outputs.
    pub(crate) fn images(&self, g: &Window2d, filters: usize, first: usize, count: usize) -> OutputGrad<'a> {
        match *self {
            OutputGrad::Plain { y, dy } => {
                let len = g.positions() * filters;
                OutputGrad::Plain {
                    y: &y[first * len..][..count * len],
                    dy: &dy[first * len..][..count * len],
                }
            }
            OutputGrad::Pooled {
                pool,
                pooled,
                argmax,
                dp,
            } => {
                let len = pool.positions() * filters;
                OutputGrad::Pooled {
                    pool,
                    pooled: &pooled[first * len..][..count * len],
                    argmax: &argmax[first * len..][..count * len],
                    dp: &dp[first * len..][..count * len],
                }
            }
        }
    }
}

/// Whether max pooling with `pool` over a convolution's output can give the convolution its
/// gradient through [`OutputGrad::Pooled`]: disjoint windows without dilation, every window
/// entirely inside the output (so a window's taps are numbered row by row), and channel
/// counts that are whole vectors.
pub(crate) fn pool_folds(pool: &Window2d) -> bool {
    (pool.dilation_h, pool.dilation_w, pool.pad_top, pool.pad_left) == (1, 1, 0, 0)
        && pool.stride_h >= pool.window_h
        && pool.stride_w >= pool.window_w
        && ((pool.out_h - 1) * pool.stride_h).saturating_add(pool.window_h) <= pool.height
        && ((pool.out_w - 1) * pool.stride_w).saturating_add(pool.window_w) <= pool.width
        && pool.channels.is_multiple_of(8)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_match_keras() {
        assert_eq!(output_size(28, 3, 1, 1, Padding::Valid), Some((26, 0)));
        assert_eq!(output_size(26, 2, 2, 1, Padding::Valid), Some((13, 0)));
        assert_eq!(output_size(11, 2, 2, 1, Padding::Valid), Some((5, 0)));
        assert_eq!(output_size(28, 3, 1, 1, Padding::Same), Some((28, 1)));
        assert_eq!(output_size(5, 2, 2, 1, Padding::Same), Some((3, 0)));
        assert_eq!(output_size(7, 3, 1, 2, Padding::Valid), Some((3, 0)));
        assert_eq!(output_size(2, 3, 1, 1, Padding::Valid), None);
        // Spans beyond 2^64 do not fit, rather than wrapping around to a small window.
        assert_eq!(output_size(28, 1 << 40, 1, 1 << 40, Padding::Valid), None);
        assert_eq!(output_size(28, 1 << 40, 1, 1 << 40, Padding::Same), None);
        assert_eq!(
            output_size(28, usize::MAX, usize::MAX, 1, Padding::Same),
            Some((1, (usize::MAX - 28) / 2))
        );
    }

    #[test]
    fn pooling_visits_only_the_taps_inside_the_input() {
        // Rows 0..5 of a 5-high input, window 1000 with "same" padding, stride 1.
        let (out, pad) = output_size(5, 1000, 1, 1, Padding::Same).unwrap();
        assert_eq!(out, 5);
        for oy in 0..out {
            let inside = taps_inside(oy, pad, 1, 5, 1000);
            assert_eq!(inside.len(), 5, "row {oy}");
            let brute: Vec<usize> = (0..1000usize)
                .filter(|k| (oy + k).checked_sub(pad).is_some_and(|y| y < 5))
                .collect();
            assert_eq!(inside.collect::<Vec<_>>(), brute);
        }
        // Dilation 2, window starting at 3 behind 4 rows of padding, over 4 rows.
        let brute: Vec<usize> = (0..10usize)
            .filter(|k| (3 + 2 * k).checked_sub(4).is_some_and(|y| y < 4))
            .collect();
        assert_eq!(taps_inside(3, 4, 2, 4, 10).collect::<Vec<_>>(), brute);
    }
}
