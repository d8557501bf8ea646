//! MobileNetV2's inverted residual block at inference, run a few output rows at a time: the
//! 1×1 expansion, the depthwise convolution and the 1×1 projection (each with its bias and
//! activation, and the residual added last) computed for a group of output rows before the
//! next group starts. The expanded image is the block's largest tensor (six times its input:
//! 4.8 MB at MobileNetV2's 112×112 stage), and run layer by layer it is written to memory by
//! the expansion and read back by the depthwise convolution; here only the rows the group's
//! windows read are expanded, into a buffer that stays in the core's second-level cache, and
//! the rows the next group shares with this one are kept rather than computed again. One
//! parallel region per block instead of three, too.
//!
//! Each pixel is computed by the same loops as the layer-by-layer kernels (`pointwise.rs`,
//! `depthwise.rs`) whatever the group, band or thread, so results on one and two threads keep
//! their bits.

use super::Window2d;
use super::activation::Activation;
use super::depthwise::depthwise_row;
use super::pointwise::{Finish, pixel_block};
use super::scratch::with_scratch;
use super::threads::row_band;
use rayon::prelude::*;

/// Output pixels per group at least (a group is whole output rows): enough rows for the
/// products' register blocks, few enough that the expanded rows stay in cache.
const GROUP_PIXELS: usize = 96;
/// The most values a 1×1 kernel of a block run in one pass may hold (768 KiB): the products
/// read it once per few pixels, so it has to stay in the second-level cache (1 MiB).
const MAX_KERNEL_VALUES: usize = 192 * 1024;
/// The most values a group's expanded rows may hold (1 MiB, a second-level cache), past which
/// the block is run layer by layer.
const MAX_GROUP_VALUES: usize = 256 * 1024;

/// A 1×1 convolution's weights: `kernel` `(channels, filters)`, its bias and its activation.
#[derive(Clone, Copy)]
pub(crate) struct Pointwise<'a> {
    /// `(channels, filters)`, row-major.
    pub(crate) kernel: &'a [f32],
    /// One value per filter.
    pub(crate) bias: Option<&'a [f32]>,
    /// Applied after the bias (and the residual, for the projection).
    pub(crate) activation: Activation,
    /// Input channels.
    pub(crate) channels: usize,
    /// Output channels.
    pub(crate) filters: usize,
}

/// The block's layers: `window` is the depthwise convolution's over the expanded image (one
/// filter per channel, padding and strides included).
#[derive(Clone, Copy)]
pub(crate) struct InvertedResidual<'a> {
    /// The expansion, absent where the block has none (MobileNetV2's first).
    pub(crate) expand: Option<Pointwise<'a>>,
    /// The depthwise kernel `(KH, KW, E, 1)`.
    pub(crate) depthwise_kernel: &'a [f32],
    /// Its bias.
    pub(crate) depthwise_bias: Option<&'a [f32]>,
    /// Its activation.
    pub(crate) depthwise_activation: Activation,
    /// Its window (batch, input size and channels included).
    pub(crate) window: Window2d,
    /// The projection (its activation linear in MobileNetV2).
    pub(crate) project: Pointwise<'a>,
}

impl InvertedResidual<'_> {
    /// Output rows per group.
    fn group_rows(&self) -> usize {
        GROUP_PIXELS
            .div_ceil(self.window.out_w.max(1))
            .min(self.window.out_h.max(1))
    }

    /// Input rows (of the expanded image) a group of `rows` output rows reads at most.
    fn group_input_rows(&self, rows: usize) -> usize {
        let w = &self.window;
        ((rows.max(1) - 1) * w.stride_h + (w.window_h.max(1) - 1) * w.dilation_h + 1).min(w.height)
    }

    /// The expanded rows `start..end` that output rows `first..end_row` read (clipped to the
    /// image).
    fn input_rows(&self, first: usize, end_row: usize) -> std::ops::Range<usize> {
        let w = &self.window;
        // (Both ends clipped: the last windows may lie wholly in a large bottom padding.)
        let start = (first * w.stride_h).saturating_sub(w.pad_top).min(w.height);
        let end = ((end_row - 1) * w.stride_h + (w.window_h - 1) * w.dilation_h + 1)
            .saturating_sub(w.pad_top)
            .min(w.height);
        start..end.max(start)
    }
}

/// Whether [`inverted_residual`] runs this block: one filter per depthwise channel, channels
/// and filters in whole vectors (multiples of 8), matching shapes, and a group's expanded rows
/// small enough to stay in cache.
pub(crate) fn handles(block: &InvertedResidual) -> bool {
    let w = &block.window;
    let expanded = block.expand.map_or(w.channels, |e| e.filters);
    let shapes_match = block
        .expand
        .is_none_or(|e| e.filters.is_multiple_of(8) && e.channels > 0)
        && expanded == w.channels
        && block.project.channels == w.channels
        && block.project.filters.is_multiple_of(8)
        && w.channels.is_multiple_of(8)
        && w.channels > 0
        && [
            w.window_h,
            w.window_w,
            w.stride_h,
            w.stride_w,
            w.out_h,
            w.out_w,
            block.project.filters,
        ]
        .iter()
        .all(|&d| d > 0);
    let group_values = block
        .group_input_rows(block.group_rows())
        .checked_mul(w.width)
        .and_then(|v| v.checked_mul(w.channels));
    shapes_match && group_values.is_some_and(|v| v <= MAX_GROUP_VALUES)
}

/// Whether running the block in one pass is faster than layer by layer (the ignored speed test
/// below measures both): when its 1×1 kernels stay in the second-level cache. A larger kernel
/// (MobileNetV2's last projection, 960×320) would stream from memory once per few pixels,
/// where the layer-by-layer product packs it once.
pub(crate) fn pays(block: &InvertedResidual) -> bool {
    let fits = |p: &Pointwise| {
        p.channels
            .checked_mul(p.filters)
            .is_some_and(|v| v <= MAX_KERNEL_VALUES)
    };
    block.expand.is_none_or(|e| fits(&e)) && fits(&block.project)
}

/// `out` `(N, OH, OW, F)` = the block applied to `x` `(N, H, W, C)`, plus `residual` (shaped
/// as `out`) after the projection's bias and before its activation.
///
/// Panics if [`handles`] is false or a slice is shorter than its shape says (bugs in the
/// caller: the graph checks shapes first).
pub(crate) fn inverted_residual(x: &[f32], block: &InvertedResidual, residual: Option<&[f32]>, out: &mut [f32]) {
    assert!(handles(block), "inverted_residual called for another block");
    let w = &block.window;
    let input_channels = block.expand.map_or(w.channels, |e| e.channels);
    let (image_in, row_out) = (w.height * w.width * input_channels, w.out_w * block.project.filters);
    let image_out = w.out_h * row_out;
    assert!(
        x.len() >= w.batch * image_in && out.len() >= w.batch * image_out,
        "inverted_residual operand too short"
    );
    assert!(
        residual.is_none_or(|r| r.len() >= w.batch * image_out),
        "inverted_residual residual too short"
    );
    let band = row_band(w.batch, w.out_h);
    out[..w.batch * image_out]
        .par_chunks_mut(image_out)
        .enumerate()
        .for_each(|(n, image)| {
            let x = &x[n * image_in..][..image_in];
            let residual = residual.map(|r| &r[n * image_out..][..image_out]);
            image.par_chunks_mut(band * row_out).enumerate().for_each(|(b, rows)| {
                let first = b * band;
                let residual = residual.map(|r| &r[first * row_out..][..rows.len()]);
                run_band(x, block, residual, rows, first);
            });
        });
}

/// Output rows `first..` of one image (as many as `out` holds), group by group.
fn run_band(x: &[f32], block: &InvertedResidual, residual: Option<&[f32]>, out: &mut [f32], first: usize) {
    let w = &block.window;
    let (expanded_channels, filters) = (w.channels, block.project.filters);
    let row_out = w.out_w * filters;
    let end = first + out.len() / row_out;
    let group = block.group_rows();
    let expanded_len = match block.expand {
        Some(_) => block.group_input_rows(group) * w.width * expanded_channels,
        None => 0,
    };
    let depthwise_len = group * w.out_w * expanded_channels;
    let widened = widened_filters(filters);
    let widened_len = match widened {
        Some(wide) => (expanded_channels + group * w.out_w) * wide,
        None => 0,
    };
    with_scratch(expanded_len + depthwise_len + widened_len, |scratch| {
        let (expanded, rest) = scratch.split_at_mut(expanded_len);
        let (depthwise, widened_scratch) = rest.split_at_mut(depthwise_len);
        let mut projection = Projection::new(block.project, widened.map(|wide| (wide, widened_scratch)));
        // The expanded rows held at the start of `expanded`.
        let mut held = 0..0;
        for start in (first..end).step_by(group) {
            let stop = (start + group).min(end);
            let rows = block.input_rows(start, stop);
            // The rows this group's windows read, as an image starting at row `source_row`.
            let (source, source_row) = match block.expand {
                Some(expand) => {
                    expand_rows(x, expand, w.width, expanded, &mut held, rows.clone());
                    (&*expanded, held.start)
                }
                None => (x, 0),
            };
            for (oh, dw_out) in (start..stop).zip(depthwise.chunks_exact_mut(w.out_w * expanded_channels)) {
                depthwise_output_row(block, (source, source_row, rows.end), dw_out, oh);
            }
            let pixels = (stop - start) * w.out_w;
            let residual = residual.map(|r| &r[(start - first) * row_out..][..pixels * filters]);
            let out = &mut out[(start - first) * row_out..][..pixels * filters];
            projection.run(depthwise, pixels, residual, out);
        }
    });
}

/// The filter count a projection of `filters` filters runs at: a count that is not a multiple
/// of 16 (MobileNetV2's 24) would run on 8-wide vectors, so where the CPU has AVX-512 the
/// kernel is widened with zero filters to the next multiple of 16 (`None`: not widened).
fn widened_filters(filters: usize) -> Option<usize> {
    let wide = super::simd::simd_level() == super::simd::SimdLevel::Avx512;
    (wide && !filters.is_multiple_of(16)).then(|| filters.next_multiple_of(16))
}

/// A band's projection: the kernel as given, or widened ([`widened_filters`]) into a buffer
/// beside the widened product's sums, from which the real filters are finished into the
/// output (the same sums, so the same bits).
struct Projection<'a> {
    project: Pointwise<'a>,
    /// The widened filter count, kernel and sums.
    widened: Option<(usize, &'a mut [f32], &'a mut [f32])>,
}

impl<'a> Projection<'a> {
    /// Widens the kernel of `project` into `widened`'s buffer (`(filters, buffer)`) if given.
    fn new(project: Pointwise<'a>, widened: Option<(usize, &'a mut [f32])>) -> Self {
        let widened = widened.map(|(wide, buffer)| {
            let (kernel, sums) = buffer.split_at_mut(project.channels * wide);
            let rows = project.kernel.chunks_exact(project.filters);
            for (wide_row, row) in kernel.chunks_exact_mut(wide).zip(rows) {
                wide_row[..project.filters].copy_from_slice(row);
                wide_row[project.filters..].fill(0.0);
            }
            (wide, kernel, sums)
        });
        Projection { project, widened }
    }

    /// `out` = the projection of `pixels` depthwise outputs, plus `residual`.
    fn run(&mut self, depthwise: &[f32], pixels: usize, residual: Option<&[f32]>, out: &mut [f32]) {
        let p = self.project;
        let finish = Finish {
            bias: p.bias,
            residual,
            activation: p.activation,
        };
        let Some((wide, kernel, sums)) = &mut self.widened else {
            return pixel_block(depthwise, p.kernel, out, (pixels, p.channels, p.filters), finish);
        };
        let plain = Finish {
            bias: None,
            residual: None,
            activation: Activation::Linear,
        };
        pixel_block(depthwise, kernel, sums, (pixels, p.channels, *wide), plain);
        finish_narrow(sums, *wide, out, p.filters, finish);
    }
}

/// `out` (rows of `filters`) = the first `filters` of each row of `sums` (rows of `width`)
/// plus the bias, plus the residual, through the activation: the operations and order of the
/// products' own output pass.
fn finish_narrow(sums: &[f32], width: usize, out: &mut [f32], filters: usize, finish: Finish) {
    for (pixel, (out, sums)) in out.chunks_exact_mut(filters).zip(sums.chunks_exact(width)).enumerate() {
        for (f, (o, &sum)) in out.iter_mut().zip(sums).enumerate() {
            let mut v = sum;
            if let Some(bias) = finish.bias {
                v += bias[f];
            }
            if let Some(residual) = finish.residual {
                v += residual[pixel * filters + f];
            }
            *o = finish.activation.apply(v);
        }
    }
}

/// Makes `expanded` hold the expanded rows `rows` (`held` says which it holds): the rows
/// already held are moved to its start, the others computed after them.
fn expand_rows(
    x: &[f32],
    expand: Pointwise,
    width: usize,
    expanded: &mut [f32],
    held: &mut std::ops::Range<usize>,
    rows: std::ops::Range<usize>,
) {
    let row_len = width * expand.filters;
    let kept = rows.start.max(held.start)..held.end.max(rows.start);
    if kept.is_empty() {
        *held = rows.start..rows.start;
    } else {
        let from = (kept.start - held.start) * row_len..(kept.end - held.start) * row_len;
        expanded.copy_within(from, 0);
        *held = kept;
    }
    let new = held.end..rows.end;
    let pixels = new.len() * width;
    let finish = Finish {
        bias: expand.bias,
        residual: None,
        activation: expand.activation,
    };
    let at = (held.end - held.start) * row_len;
    let x = &x[new.start * width * expand.channels..];
    pixel_block(
        x,
        expand.kernel,
        &mut expanded[at..],
        (pixels, expand.channels, expand.filters),
        finish,
    );
    held.end = rows.end;
}

/// Depthwise output row `oh` into `out`, from `source`: the image's rows from `source_row` to
/// `source_end` (all the rows the row's windows read inside the image).
fn depthwise_output_row(
    block: &InvertedResidual,
    (source, source_row, source_end): (&[f32], usize, usize),
    out: &mut [f32],
    oh: usize,
) {
    let w = &block.window;
    // The row's window as one output row of an image that starts at its first row inside.
    let top = oh * w.stride_h;
    let first_inside = top.max(w.pad_top) - w.pad_top;
    let window = Window2d {
        batch: 1,
        height: source_end.saturating_sub(first_inside),
        pad_top: w.pad_top - (top.min(w.pad_top)),
        out_h: 1,
        ..*w
    };
    // Empty where the window lies wholly in the bottom padding (no row of it is read).
    let image = source
        .get((first_inside - source_row) * w.width * w.channels..)
        .unwrap_or(&[]);
    let (kernel, bias) = (block.depthwise_kernel, block.depthwise_bias);
    depthwise_row(image, kernel, bias, out, &window, 0, (1, block.depthwise_activation));
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::SimdLevel;
    use crate::kernels::{Transpose, depthwise_conv, matmul, pointwise_conv};

    /// A block's operands: `(x, expand kernel, expand bias, depthwise kernel, depthwise bias,
    /// project kernel, project bias)` with values of both signs, some above the ReLU6 cap.
    type Operands = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

    fn operands(w: &Window2d, input_channels: usize, filters: usize) -> Operands {
        let values = |n: usize, seed: usize, scale: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i * 37 + seed * 11) % 23) as f32 / 23.0 * scale - scale / 3.0)
                .collect()
        };
        let e = w.channels;
        (
            values(w.batch * w.height * w.width * input_channels, 1, 8.0),
            values(input_channels * e, 2, 1.0),
            values(e, 3, 1.0),
            values(w.window_h * w.window_w * e, 4, 1.5),
            values(e, 5, 0.5),
            values(e * filters, 6, 0.5),
            values(filters, 7, 0.5),
        )
    }

    /// MobileNetV2's block on `operands`: the expansion (if any) and depthwise convolution
    /// through ReLU6, the projection linear.
    fn mobilenet_block(
        (_, ek, eb, dk, db, pk, pb): &Operands,
        window: Window2d,
        (channels, expansion, filters): (usize, Option<usize>, usize),
    ) -> InvertedResidual<'_> {
        let relu6 = Activation::Relu { max_value: 6.0 };
        InvertedResidual {
            expand: expansion.map(|e| Pointwise {
                kernel: ek,
                bias: Some(eb),
                activation: relu6,
                channels,
                filters: e,
            }),
            depthwise_kernel: dk,
            depthwise_bias: Some(db),
            depthwise_activation: relu6,
            window,
            project: Pointwise {
                kernel: pk,
                bias: Some(pb),
                activation: Activation::Linear,
                channels: expansion.unwrap_or(channels),
                filters,
            },
        }
    }

    /// A depthwise window of `(size, dilation)` taps, `pad` zeros on the top and left and
    /// as many as fit on the bottom and right.
    fn window(
        batch: usize,
        (height, width, channels): (usize, usize, usize),
        stride: usize,
        (size, dilation, pad): (usize, usize, usize),
    ) -> Window2d {
        let out = |length: usize| (length + 2 * pad - (size - 1) * dilation - 1) / stride + 1;
        Window2d {
            batch,
            height,
            width,
            channels,
            window_h: size,
            window_w: size,
            stride_h: stride,
            stride_w: stride,
            dilation_h: dilation,
            dilation_w: dilation,
            pad_top: pad,
            pad_left: pad,
            out_h: out(height),
            out_w: out(width),
        }
    }

    /// The block run layer by layer with the kernels `predict` runs unfused, into `buffers`
    /// (expanded, depthwise, output).
    fn layer_by_layer(block: &InvertedResidual, x: &[f32], residual: Option<&[f32]>, buffers: &mut [Vec<f32>; 3]) {
        let w = &block.window;
        let pixels = w.batch * w.height * w.width;
        let out_pixels = w.batch * w.out_h * w.out_w;
        let [expanded, depthwise, out] = buffers;
        let pointwise = |x: &[f32], p: Pointwise, residual: Option<&[f32]>, out: &mut Vec<f32>, pixels: usize| {
            out.resize(pixels * p.filters, 0.0);
            let finish = Finish {
                bias: p.bias,
                residual,
                activation: p.activation,
            };
            if crate::kernels::pointwise_handles(p.channels, p.filters) {
                return pointwise_conv(x, p.kernel, out, (pixels, p.channels, p.filters), finish);
            }
            matmul(
                x,
                Transpose::No,
                p.kernel,
                Transpose::No,
                out,
                pixels,
                p.channels,
                p.filters,
                false,
            );
            for (pixel, out) in out.chunks_exact_mut(p.filters).enumerate() {
                for (f, o) in out.iter_mut().enumerate() {
                    let sum = *o + p.bias.map_or(0.0, |b| b[f]) + residual.map_or(0.0, |r| r[pixel * p.filters + f]);
                    *o = p.activation.apply(sum);
                }
            }
        };
        let source = match block.expand {
            Some(e) => {
                pointwise(x, e, None, expanded, pixels);
                &expanded[..]
            }
            None => x,
        };
        depthwise.resize(out_pixels * w.channels, 0.0);
        let dw = (block.depthwise_kernel, block.depthwise_bias);
        depthwise_conv(source, dw.0, dw.1, depthwise, w, (1, block.depthwise_activation));
        pointwise(depthwise, block.project, residual, out, out_pixels);
    }

    /// The fused block equals the layers run one by one (within the products' rounding) at
    /// MobileNetV2's kinds of blocks: stride 1 and 2, with and without expansion and residual,
    /// batches of one and three, projections of 16 and 24 filters; and gives the same bits on
    /// one and two threads and on the AVX2 and AVX-512 paths.
    #[test]
    fn matches_the_layers_run_one_by_one() {
        // (batch, input size, input channels, expansion, stride, filters, residual), with a
        // 3×3 window padded by 1 ("same" at stride 1)
        let cases = [
            (1, (13, 11), 8, Some(48), 1, 8, true),
            (1, (16, 16), 16, Some(96), 2, 24, false),
            (3, (9, 7), 24, Some(144), 1, 24, true),
            (2, (12, 10), 32, None, 1, 16, false),
            (1, (7, 9), 16, Some(64), 2, 32, false),
            (1, (2, 40), 8, Some(16), 1, 8, false),
        ]
        .map(|case| (case, (3, 1, 1)));
        // (EfficientNet's 5×5 windows; a dilated one; one without padding)
        let other_windows = [
            ((1, (11, 12), 16, Some(64), 1, 16, true), (5, 1, 2)),
            ((2, (10, 9), 8, Some(32), 2, 24, false), (5, 1, 2)),
            ((1, (12, 12), 8, Some(24), 1, 8, true), (3, 2, 2)),
            ((1, (10, 13), 16, Some(32), 2, 16, false), (3, 1, 0)),
        ];
        for (case, ((batch, (h, width), channels, expansion, stride, filters, with_residual), taps)) in
            cases.into_iter().chain(other_windows).enumerate()
        {
            let expanded = expansion.unwrap_or(channels);
            let mut w = window(batch, (h, width, expanded), stride, taps);
            if case == 0 {
                // A zero padding of four rows and columns below and right folded in: the last
                // windows read no row or column of the image.
                (w.out_h, w.out_w) = (w.out_h + 4, w.out_w + 4);
            }
            let operands = operands(&w, channels, filters);
            let (x, block) = (
                &operands.0,
                mobilenet_block(&operands, w, (channels, expansion, filters)),
            );
            assert!(handles(&block), "case {h}×{width}×{channels}");
            let out_len = batch * w.out_h * w.out_w * filters;
            let residual: Option<Vec<f32>> =
                with_residual.then(|| (0..out_len).map(|i| (i % 7) as f32 - 3.0).collect());
            let mut buffers = [vec![], vec![], vec![]];
            layer_by_layer(&block, x, residual.as_deref(), &mut buffers);
            let expected = &buffers[2];
            let run = |threads: usize, level: SimdLevel| {
                let pool = crate::kernels::simd::limited_pool(threads, level);
                let mut out = vec![f32::NAN; out_len];
                pool.install(|| inverted_residual(x, &block, residual.as_deref(), &mut out));
                out.iter().map(|v| v.to_bits()).collect::<Vec<u32>>()
            };
            let fused = run(2, SimdLevel::Avx512);
            for (i, (a, b)) in fused.iter().map(|&v| f32::from_bits(v)).zip(expected).enumerate() {
                assert!(
                    (a - b).abs() <= 1e-4 * (1.0 + b.abs()),
                    "case {h}×{width}, value {i}: {a} vs {b}"
                );
            }
            assert!(run(1, SimdLevel::Avx512) == fused, "one thread, case {h}×{width}");
            assert!(run(2, SimdLevel::Avx2) == fused, "AVX2, case {h}×{width}");
            assert!(run(3, SimdLevel::Avx512) == fused, "three threads, case {h}×{width}");
        }
    }

    /// Times MobileNetV2's blocks at batch 1, fused and layer by layer (the same kernels
    /// `predict` runs unfused), on two threads: `cargo test --release --lib inverted_residual
    /// -- --ignored --nocapture`.
    #[test]
    #[ignore]
    fn speed_of_mobilenet_v2_blocks() {
        // (input size, input channels, expansion, stride, filters, residual)
        let blocks = [
            (112, 32, None, 1, 16, false),
            (112, 16, Some(96), 2, 24, false),
            (56, 24, Some(144), 1, 24, true),
            (56, 24, Some(144), 2, 32, false),
            (28, 32, Some(192), 1, 32, true),
            (14, 64, Some(384), 1, 64, true),
            (14, 96, Some(576), 1, 96, true),
            (7, 160, Some(960), 1, 160, true),
            (7, 160, Some(960), 1, 320, false),
        ];
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        for (size, channels, expansion, stride, filters, with_residual) in blocks {
            let expanded = expansion.unwrap_or(channels);
            let w = window(1, (size, size, expanded), stride, (3, 1, 1));
            let operands = operands(&w, channels, filters);
            let (x, block) = (
                &operands.0,
                mobilenet_block(&operands, w, (channels, expansion, filters)),
            );
            let out_len = w.out_h * w.out_w * filters;
            let residual: Option<Vec<f32>> = with_residual.then(|| vec![0.5; out_len]);
            let mut out = vec![0.0; out_len];
            let time = |f: &mut dyn FnMut()| {
                (0..300)
                    .map(|_| {
                        let started = std::time::Instant::now();
                        f();
                        started.elapsed().as_secs_f64() * 1e6
                    })
                    .fold(f64::INFINITY, f64::min)
            };
            let fused = pool.install(|| time(&mut || inverted_residual(x, &block, residual.as_deref(), &mut out)));
            let mut buffers = [vec![], vec![], vec![]];
            let layers = pool.install(|| time(&mut || layer_by_layer(&block, x, residual.as_deref(), &mut buffers)));
            println!(
                "{size}²×{channels} → {expanded} s{stride} → {filters}: fused {fused:.1} µs, layer by layer {layers:.1} µs{}",
                if pays(&block) {
                    ""
                } else {
                    " (predict runs it layer by layer)"
                }
            );
        }
    }
}
