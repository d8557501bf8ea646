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

/// Output size and leading padding along one axis, or `None` when the window does not fit.
pub(crate) fn output_size(
    input: usize,
    window: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
) -> Option<(usize, usize)> {
    let span = (window - 1) * dilation + 1;
    match padding {
        Padding::Valid => (input >= span).then(|| ((input - span) / stride + 1, 0)),
        Padding::Same => {
            let out = input.div_ceil(stride);
            let needed = ((out - 1) * stride + span).saturating_sub(input);
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

    /// The input row and column a window tap reads, or `None` in the padding.
    #[inline]
    fn source(&self, oy: usize, ox: usize, ky: usize, kx: usize) -> Option<(usize, usize)> {
        let y = (oy * self.stride_h + ky * self.dilation_h).checked_sub(self.pad_top)?;
        let x = (ox * self.stride_w + kx * self.dilation_w).checked_sub(self.pad_left)?;
        (y < self.height && x < self.width).then_some((y, x))
    }
}

/// Fills `cols` (`N·OH·OW × KH·KW·C`) with the receptive fields of `input` (`N×H×W×C`).
pub(crate) fn im2col(input: &[f32], g: &Window2d, cols: &mut [f32]) {
    let (patch, c) = (g.patch_len(), g.channels);
    // With no horizontal dilation a window row is one contiguous run of `KW·C` input values:
    // copy it at once instead of `C` values at a time (C is 1 for grey images).
    let run = g.window_w * c;
    let contiguous = g.dilation_w == 1;
    cols.par_chunks_mut(g.positions() * patch)
        .zip(input.par_chunks(g.image_len()))
        .for_each(|(cols, image)| {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let row = &mut cols[(oy * g.out_w + ox) * patch..][..patch];
                    for ky in 0..g.window_h {
                        let first = g.source(oy, ox, ky, 0);
                        let last = g.source(oy, ox, ky, g.window_w - 1);
                        if contiguous && let (Some((y, x)), Some(_)) = (first, last) {
                            row[ky * run..][..run].copy_from_slice(&image[(y * g.width + x) * c..][..run]);
                            continue;
                        }
                        for kx in 0..g.window_w {
                            let dest = &mut row[(ky * g.window_w + kx) * c..][..c];
                            match g.source(oy, ox, ky, kx) {
                                Some((y, x)) => dest.copy_from_slice(&image[(y * g.width + x) * c..][..c]),
                                None => dest.fill(0.0),
                            }
                        }
                    }
                }
            }
        });
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

/// Max pooling into `out` (`N×OH×OW×C`): a plain `max` over each window, vectorized over
/// channels. The backward pass finds the maxima again rather than storing their indices.
pub(crate) fn max_pool(input: &[f32], g: &Window2d, out: &mut [f32]) {
    let (c, out_len) = (g.channels, g.positions() * g.channels);
    out.par_chunks_mut(out_len)
        .zip(input.par_chunks(g.image_len()))
        .for_each(|(out, image)| {
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let best = &mut out[(oy * g.out_w + ox) * c..][..c];
                    best.fill(f32::NEG_INFINITY);
                    for ky in 0..g.window_h {
                        for kx in 0..g.window_w {
                            let Some((y, x)) = g.source(oy, ox, ky, kx) else {
                                continue;
                            };
                            let values = &image[(y * g.width + x) * c..][..c];
                            best.iter_mut().zip(values).for_each(|(b, &v)| *b = b.max(v));
                        }
                    }
                }
            }
        });
}

/// Channels handled together by the max-pooling backward pass (its mask lives on the stack).
const CHANNEL_BLOCK: usize = 64;

/// Routes each output gradient to the first window position that holds the maximum (the
/// position TensorFlow picks on ties), found again by comparing the input with the output.
///
/// With `overwrite`, `input_grad` holds stale values and is overwritten: where windows do not
/// overlap, each input position is written once (zero where no window routes to it) instead
/// of being cleared and then added to.
pub(crate) fn max_pool_backward(
    input: &[f32],
    out: &[f32],
    out_grad: &[f32],
    g: &Window2d,
    input_grad: &mut [f32],
    overwrite: bool,
) {
    let (c, out_len) = (g.channels, g.positions() * g.channels);
    let write = overwrite && g.windows_are_disjoint();
    input_grad
        .par_chunks_mut(g.image_len())
        .zip(input.par_chunks(g.image_len()))
        .zip(out.par_chunks(out_len).zip(out_grad.par_chunks(out_len)))
        .for_each(|((image_grad, image), (out, dy))| {
            if write {
                g.clear_uncovered(image_grad);
            } else if overwrite {
                image_grad.fill(0.0);
            }
            for oy in 0..g.out_h {
                for ox in 0..g.out_w {
                    let at = (oy * g.out_w + ox) * c;
                    for block in (0..c).step_by(CHANNEL_BLOCK) {
                        let width = CHANNEL_BLOCK.min(c - block);
                        let (best, grad) = (&out[at + block..][..width], &dy[at + block..][..width]);
                        // 1.0 while a channel's maximum has not been found yet.
                        let mut pending = [1.0f32; CHANNEL_BLOCK];
                        for ky in 0..g.window_h {
                            for kx in 0..g.window_w {
                                let Some((y, x)) = g.source(oy, ox, ky, kx) else {
                                    continue;
                                };
                                let base = (y * g.width + x) * c + block;
                                let (values, target) = (&image[base..][..width], &mut image_grad[base..][..width]);
                                for i in 0..width {
                                    let hit = if values[i] == best[i] { pending[i] } else { 0.0 };
                                    if write {
                                        target[i] = hit * grad[i];
                                    } else {
                                        target[i] += hit * grad[i];
                                    }
                                    pending[i] -= hit;
                                }
                            }
                        }
                    }
                }
            }
        });
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
                    for ky in 0..g.window_h {
                        for kx in 0..g.window_w {
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
                    for ky in 0..g.window_h {
                        for kx in 0..g.window_w {
                            count += g.source(oy, ox, ky, kx).is_some() as usize;
                        }
                    }
                    let scale = 1.0 / count.max(1) as f32;
                    let grad = &dy[(oy * g.out_w + ox) * c..][..c];
                    for ky in 0..g.window_h {
                        for kx in 0..g.window_w {
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
    }
}
