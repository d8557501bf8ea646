//! Int8 convolutions read where the quantized images lie, and max pooling folded into them.
//!
//! A product needs one row of `K = KH·KW·C` activations per output position. Im2col copies them
//! out (nine copies of every value for a 3×3 window); here, when `C` is a multiple of 4, each
//! group of four activations the VNNI instruction takes ("quad") lies in one input pixel, so a
//! row is its window's origin in the image plus a fixed offset per quad, and the tiles read
//! the image itself. With other channel counts (a grey image's first layer, `C = 1`) each window
//! row's `KW·C` bytes lie side by side in the image (without dilation along the width), so a
//! product row is its window rows, each rounded up to whole quads; the kernel gets zero rows to
//! match ([`widen_int8_kernel`]): a 3×3 window over one channel is 3 quads, not 9 of a channel
//! padded to four. im2col rows remain for a kernel too deep to widen and for such channels with
//! a dilated width.
//!
//! A max pooling of the output (windows of 1, 2 or 4 taps, no padding) can be folded in: a
//! tile computes the taps of its pooled outputs side by side, keeps the largest exact sum of
//! each and scales only that. Scaling with a ReLU after it (`max(sum / d + bias, 0)` or
//! `max(sum · f + bias, 0)`) never decreases as the sum grows, whatever the scales (an infinite
//! or zero one included: NaN becomes 0), and gives no `-0.0`, so the pooled value is the bits
//! pooling the `f32` output would give; quantizing again is monotone too. Only ReLU
//! convolutions are folded ([`Int8Conv::run`] asserts it).
//!
//! The VNNI path runs these tiles; the AVX2 and scalar paths compute each tap's row with the
//! product's own tiles (over im2col rows) and then take the same maxima and the same scaling,
//! so every path gives the same bits, and so does every thread count (tasks split the output
//! rows; sums are exact).

#![allow(clippy::needless_range_loop)] // Indexing the tiles' registers by constants lets the loops unroll.

use super::Window2d;
use super::int8_matmul::{
    Int8Path, Output, PARALLEL_MIN, Sink, no_negative, product_rows, quantize_row, rescale_row, rows_per_task,
};
use rayon::prelude::*;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod lanes;
mod tile_rows;

use tile_rows::Layout;
pub(crate) use tile_rows::{INT8_IMAGE_SLACK, Int8Conv, Int8Rows};

impl Int8Conv<'_> {
    /// Output rows: positions (pooled ones with a pool) over the batch.
    fn output_rows(&self) -> usize {
        self.window.batch * Layout::new(self.window, self.pool).positions
    }

    /// Writes the `(rows, F)` result into `out`. Panics on inconsistent sizes (a caller bug).
    pub(crate) fn run(&self, out: &mut [f32]) {
        self.run_on(Int8Path::best(), Output::F32(out));
    }

    /// Writes the result quantized with `scale`, as [`quantize_row`] would quantize
    /// [`Int8Conv::run`]'s result (the same bits), without the `f32` in memory: the input of
    /// the next int8 layer of a calibrated model.
    pub(crate) fn run_quantized(&self, scale: f32, out: &mut [i8]) {
        self.run_on(Int8Path::best(), Output::Int8(out, scale));
    }

    /// Whether the rows are the images' window rows rounded up to whole quads (channels not in
    /// whole quads, read in place).
    fn window_row_quads(&self) -> bool {
        matches!(self.rows, Int8Rows::Images(_)) && !self.window.channels.is_multiple_of(4)
    }

    /// The product's depth: `KH·KW·C`, or `KH` window rows of whole quads.
    fn depth(&self) -> usize {
        let g = self.window;
        if self.window_row_quads() {
            g.window_h * tile_rows::quads_per_window_row(g.window_w, g.channels) * 4
        } else {
            g.patch_len()
        }
    }

    fn check(&self, out_len: usize) {
        let (g, b) = (self.window, self.kernel);
        self.rescale.check(self.output_rows(), b.width());
        assert_eq!(b.depth(), self.depth(), "int8 convolution kernel of the wrong depth");
        assert!(
            out_len >= self.output_rows() * b.width(),
            "int8 convolution output too short"
        );
        assert!(
            !self.flipped || matches!(self.rows, Int8Rows::Images(_)),
            "flipped im2col rows"
        );
        match self.rows {
            Int8Rows::Images(images) => {
                assert!(
                    g.channels.is_multiple_of(4) || g.dilation_w == 1,
                    "int8 direct convolution of {} channels with a dilated width",
                    g.channels
                );
                assert!(
                    g.pad_top == 0 && g.pad_left == 0,
                    "int8 direct convolution with padding"
                );
                if g.out_h > 0 && g.out_w > 0 {
                    assert!((g.out_h - 1) * g.stride_h + (g.window_h - 1) * g.dilation_h < g.height);
                    assert!((g.out_w - 1) * g.stride_w + (g.window_w - 1) * g.dilation_w < g.width);
                }
                let slack = if self.window_row_quads() { INT8_IMAGE_SLACK } else { 0 };
                assert!(images.len() >= g.batch * g.image_len() + slack, "int8 images too short");
            }
            Int8Rows::Columns(cols) => {
                let rows = g.batch * g.positions();
                assert!(
                    cols.len() >= b.activations_len(rows, g.patch_len()),
                    "int8 columns too short"
                );
            }
        }
        if let Some(p) = self.pool {
            assert!(self.rescale.relu, "a max pooling folds only into a ReLU convolution");
            assert!(
                matches!(p.window_h * p.window_w, 1 | 2 | 4),
                "int8 folded pooling of a window of 3 or more than 4"
            );
            assert!(p.pad_top == 0 && p.pad_left == 0 && p.dilation_h == 1 && p.dilation_w == 1);
            assert!(
                (p.batch, p.height, p.width) == (g.batch, g.out_h, g.out_w),
                "pool over another output"
            );
            if p.out_h > 0 && p.out_w > 0 {
                assert!((p.out_h - 1) * p.stride_h + p.window_h <= p.height);
                assert!((p.out_w - 1) * p.stride_w + p.window_w <= p.width);
            }
        }
    }

    fn run_on(&self, path: Int8Path, out: Output) {
        self.check(out.len());
        let n = self.kernel.width();
        let rows = self.output_rows();
        if rows == 0 || n == 0 {
            return;
        }
        let layout = Layout::new(self.window, self.pool);
        #[cfg(target_arch = "x86_64")]
        let unsigned = path == Int8Path::Avx2
            && !self.flipped
            && no_negative(match self.rows {
                Int8Rows::Images(images) => images,
                Int8Rows::Columns(cols) => cols,
            });
        #[cfg(not(target_arch = "x86_64"))]
        let unsigned = false;
        // Whole tiles per task: 8 product rows per tile at most.
        let small = rows * layout.taps * self.kernel.depth() * n < PARALLEL_MIN;
        let per_task = if small {
            rows
        } else {
            rows_per_task(rows * layout.taps) / layout.taps
        };
        let per_task = per_task.next_multiple_of(8).max(8);
        // Once per call, not per task: a deep kernel's offsets cost two divisions each.
        let offsets = tile_rows::quad_offsets(self);
        let task = |task: usize, out: Output| {
            let first = task * per_task;
            let count = out.len() / n;
            self.task(path, &layout, &offsets, unsigned, first, count, out);
        };
        let len = rows * n;
        if small {
            return task(0, out.prefix(len));
        }
        match out {
            Output::F32(out) => out[..len]
                .par_chunks_mut(per_task * n)
                .enumerate()
                .for_each(|(index, out)| task(index, Output::F32(out))),
            Output::Int8(out, scale) => out[..len]
                .par_chunks_mut(per_task * n)
                .enumerate()
                .for_each(|(index, out)| task(index, Output::Int8(out, scale))),
        }
    }

    /// Output rows `first..first + count` into `out` (those rows only); `offsets` are
    /// [`tile_rows::quad_offsets`].
    #[allow(clippy::too_many_arguments)] // The task's place, its output and what every task shares.
    fn task(
        &self,
        path: Int8Path,
        layout: &Layout,
        offsets: &[usize],
        unsigned: bool,
        first: usize,
        count: usize,
        mut out: Output,
    ) {
        #[cfg(target_arch = "x86_64")]
        if path == Int8Path::Vnni {
            if lanes::fits(self, layout) {
                // SAFETY: as below; `fits` checked the CPU has VBMI too.
                return unsafe { lanes::conv_rows(self, layout, first, count, &mut out) };
            }
            // SAFETY: `Int8Path::best` (or a test) chose VNNI where the CPU has it; `check`
            // checked the sizes the tiles read and write.
            return unsafe { x86::conv_rows(self, layout, offsets, first, count, &mut out) };
        }
        // The AVX2 tiles read a source in place as signed bytes: a flipped one takes the
        // portable rows (gathered and flipped back).
        #[cfg(target_arch = "x86_64")]
        if path == Int8Path::Avx2 && !self.flipped {
            // SAFETY: as above, for AVX2; `run_on` scanned the source for `unsigned`.
            return unsafe { avx2::conv_rows(self, layout, offsets, first, count, unsigned, &mut out) };
        }
        self.portable_rows(path, layout, first, count, &mut out);
    }

    /// The AVX2 and scalar paths: each tap's exact sums from the product's tiles over its
    /// im2col row, the largest kept, then [`rescale_row`] (and [`quantize_row`]): what the VNNI
    /// tiles do lane by lane.
    fn portable_rows(&self, path: Int8Path, layout: &Layout, first: usize, count: usize, out: &mut Output) {
        let (g, b) = (self.window, self.kernel);
        let (n, depth) = (b.width(), self.depth());
        let mut row = vec![0i8; b.padded_depth()];
        let mut sums = vec![0i32; n];
        let mut best = vec![0i32; n];
        let mut scaled = vec![0.0f32; n];
        for o in first..first + count {
            for t in 0..layout.taps {
                let r = layout.product_row(o, t);
                match self.rows {
                    Int8Rows::Columns(cols) => row[..depth].copy_from_slice(&cols[r * depth..][..depth]),
                    Int8Rows::Images(images) if self.window_row_quads() => {
                        gather_window_rows(images, g, r, &mut row[..depth])
                    }
                    Int8Rows::Images(images) => gather(images, g, r, &mut row[..depth]),
                }
                if self.flipped {
                    row[..depth].iter_mut().for_each(|v| *v ^= i8::MIN);
                }
                product_rows(path, &row, 1, depth, b, false, Sink::Sums(&mut sums));
                if t == 0 {
                    best.copy_from_slice(&sums);
                } else {
                    best.iter_mut().zip(&sums).for_each(|(b, &s)| *b = (*b).max(s));
                }
            }
            self.finish_row(o, first, &best, &mut scaled, out);
        }
    }

    /// Output row `o`'s result from the exact sums of its taps' largest `best` into the task's
    /// output (which starts at row `first`): [`rescale_row`], then [`quantize_row`] for an int8
    /// output, `scaled` holding the `f32` row in between. Every path but VNNI ends here.
    fn finish_row(&self, o: usize, first: usize, best: &[i32], scaled: &mut [f32], out: &mut Output) {
        let n = self.kernel.width();
        let (row_scale, factors) = self.rescale.for_row(o);
        let at = (o - first) * n;
        let (bias, relu) = (self.rescale.bias, self.rescale.relu);
        match out {
            Output::F32(out) => rescale_row(&best[..n], row_scale, &factors[..n], bias, relu, &mut out[at..at + n]),
            Output::Int8(out, scale) => {
                rescale_row(&best[..n], row_scale, &factors[..n], bias, relu, &mut scaled[..n]);
                quantize_row(&scaled[..n], *scale, &mut out[at..at + n]);
            }
        }
    }
}

/// Whether this thread's int8 path reads the images of a convolution with `filters` filters
/// flipped in memory ([`Int8Conv::flipped`]): the VNNI tiles of fewer than 4 blocks (48
/// filters or fewer, a first layer's: few products per broadcast) do, sparing a flip of every
/// quad they broadcast; the wider tiles (compiled once, not twice) and the other paths read
/// them signed.
pub(crate) fn int8_reads_flipped(filters: usize) -> bool {
    #[cfg(target_arch = "x86_64")]
    return Int8Path::best() == Int8Path::Vnni && !x86::wide_tiles(filters.div_ceil(16));
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = filters;
        false
    }
}

/// The window `g` as the tiles read it in place: the zero border of a "same" window made part
/// of the image; `g` itself when it has none. [`pad_int8_images`] writes the images to match.
pub(crate) fn direct_window(g: &Window2d) -> Window2d {
    if g.out_h == 0 || g.out_w == 0 {
        return Window2d {
            pad_top: 0,
            pad_left: 0,
            ..*g
        };
    }
    let span =
        |out: usize, stride: usize, window: usize, dilation: usize| (out - 1) * stride + (window - 1) * dilation + 1;
    let height = (g.height + g.pad_top).max(span(g.out_h, g.stride_h, g.window_h, g.dilation_h));
    let width = (g.width + g.pad_left).max(span(g.out_w, g.stride_w, g.window_w, g.dilation_w));
    Window2d {
        height,
        width,
        pad_top: 0,
        pad_left: 0,
        ..*g
    }
}

/// Copies the int8 `images` (`g`'s sizes) into `out` with [`direct_window`]'s sizes `padded`:
/// each pixel at its place behind the border, zeros in the border (quantized zero is 0, as
/// im2col's padding) and in the [`INT8_IMAGE_SLACK`] bytes after the last image. With `flip`,
/// every byte written has its sign bit flipped (`x + 128` as unsigned, a zero 128): the
/// operand the VNNI tiles read without flipping each quad ([`Int8Conv::flipped`]). In
/// parallel over images.
pub(crate) fn pad_int8_images(images: &[i8], g: &Window2d, padded: &Window2d, out: &mut [i8], flip: bool) {
    let c = g.channels;
    let (image, padded_image) = (g.image_len(), padded.image_len());
    let end = g.batch * padded_image;
    assert!(padded.channels == c && images.len() >= g.batch * image && out.len() >= end + INT8_IMAGE_SLACK);
    let zero = if flip { i8::MIN } else { 0 };
    out[end..end + INT8_IMAGE_SLACK].fill(zero);
    if image == 0 || padded_image == 0 {
        return;
    }
    out[..end]
        .par_chunks_mut(padded_image)
        .zip(images.par_chunks(image))
        .for_each(|(out, image)| {
            out.fill(zero);
            let row = g.width * c;
            for y in 0..g.height {
                let at = ((y + g.pad_top) * padded.width + g.pad_left) * c;
                let (out, image) = (&mut out[at..at + row], &image[y * row..][..row]);
                if flip {
                    out.iter_mut().zip(image).for_each(|(out, &v)| *out = v ^ i8::MIN);
                } else {
                    out.copy_from_slice(image);
                }
            }
        });
}

/// A `(KH, KW·C, F)` int8 kernel (row-major; a Conv1D's `(K, C, F)` is `KH = 1`) with each of
/// its `KH` window rows padded with zero rows to whole quads, to match the window rows read in
/// place over channels not in whole quads.
pub(crate) fn widen_int8_kernel(values: &[i8], window_rows: usize, width: usize) -> Vec<i8> {
    let row = values.len() / (window_rows * width).max(1);
    let wide = row.next_multiple_of(4);
    let mut out = vec![0i8; window_rows * wide * width];
    for (ky, source) in values.chunks_exact((row * width).max(1)).take(window_rows).enumerate() {
        out[ky * wide * width..][..row * width].copy_from_slice(source);
    }
    out
}

/// Product row `r` of the padding-free window `g` over `images` in the window-row layout: each
/// window row's `KW·C` bytes, then zeros to a whole quad.
fn gather_window_rows(images: &[i8], g: &Window2d, r: usize, row: &mut [i8]) {
    let (n, p) = (r / g.positions(), r % g.positions());
    let (oy, ox) = (p / g.out_w, p % g.out_w);
    let (c, bytes) = (g.channels, g.window_w * g.channels);
    let wide = row.len() / g.window_h.max(1);
    let image = &images[n * g.image_len()..];
    for (ky, row) in row.chunks_exact_mut(wide.max(1)).enumerate() {
        let y = oy * g.stride_h + ky * g.dilation_h;
        row[..bytes].copy_from_slice(&image[(y * g.width + ox * g.stride_w) * c..][..bytes]);
        row[bytes..].fill(0);
    }
}

/// The im2col row of product row `r` of the padding-free window `g` over `images`.
fn gather(images: &[i8], g: &Window2d, r: usize, row: &mut [i8]) {
    let (n, p) = (r / g.positions(), r % g.positions());
    let (oy, ox) = (p / g.out_w, p % g.out_w);
    let c = g.channels;
    let image = &images[n * g.image_len()..];
    for ky in 0..g.window_h {
        for kx in 0..g.window_w {
            let (y, x) = (oy * g.stride_h + ky * g.dilation_h, ox * g.stride_w + kx * g.dilation_w);
            row[(ky * g.window_w + kx) * c..][..c].copy_from_slice(&image[(y * g.width + x) * c..][..c]);
        }
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::super::int8_matmul::{Output, PackedInt8};
    use super::tile_rows::{Int8Conv, Layout, TileRows, WRAP_FREE_DEPTH};
    use std::arch::x86_64::*;

    /// Columns per block, as the packing.
    const BLOCK: usize = 16;

    /// Whether a kernel of `blocks` blocks runs the wide tiles (4 rows × 4 blocks) rather than
    /// the narrow ones (8 rows × 2 blocks).
    pub(super) fn wide_tiles(blocks: usize) -> bool {
        blocks >= 4
    }

    /// Output rows `first..first + count` on the VNNI tiles, `offsets` the kernel's
    /// `quad_offsets`.
    ///
    /// # Safety
    /// The CPU has AVX-512F/BW and VNNI; `Int8Conv::check` passed.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn conv_rows(
        conv: &Int8Conv,
        layout: &Layout,
        offsets: &[usize],
        first: usize,
        count: usize,
        out: &mut Output,
    ) {
        // SAFETY: as for the whole function.
        unsafe {
            if conv.flipped {
                walk::<false>(conv, layout, offsets, first, count, out)
            } else {
                walk::<true>(conv, layout, offsets, first, count, out)
            }
        }
    }

    /// [`conv_rows`] with the sign bits of the source flipped in the tiles (`FLIP`) or
    /// flipped in memory already. Each tile leaves its outputs' exact sums (their taps'
    /// largest) in `exact`, one row of whole blocks per output; [`finish`] then scales runs of
    /// them outside the tiles, its per-image factors loaded once per run, not per vector.
    ///
    /// # Safety
    /// As [`conv_rows`].
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn walk<const FLIP: bool>(
        conv: &Int8Conv,
        layout: &Layout,
        offsets: &[usize],
        first: usize,
        count: usize,
        out: &mut Output,
    ) {
        let b = conv.kernel;
        let wide = wide_tiles(b.blocks());
        // Flipped sources only for the narrow tiles (`int8_reads_flipped`).
        assert!(FLIP || !wide, "a wide kernel's images flipped");
        let rows_per_tile = if wide { 4 } else { 8 };
        // A kernel of at most `BLOCKS_STAGED` blocks stages the sums of several tiles before
        // they are scaled; a wider one scales each tile's, a part of its columns at a time.
        let one_part = b.blocks() <= BLOCKS_STAGED;
        let mut exact = [0i32; STAGED_OUTPUTS * MAX_STAGED_COLUMNS];
        // The staged outputs: from output row `staged_first`, `staged` of them.
        let (mut staged_first, mut staged) = (first, 0);
        let mut walker = TileRows::new(conv, layout, first, count);
        let mut rows = [std::ptr::null::<i8>(); 8];
        while let Some((o, take)) = walker.next(rows_per_tile, &mut rows) {
            let tile = Tile {
                rows: &rows,
                offsets,
                kernel: b,
            };
            if staged == 0 {
                staged_first = o;
            }
            let mut block = 0;
            while block < b.blocks() {
                let left = b.blocks() - block;
                let part = block / BLOCKS_STAGED * BLOCKS_STAGED;
                let sums = &mut exact[staged * MAX_STAGED_COLUMNS + (block - part) * BLOCK..];
                // SAFETY: as for the whole function; `block + C ≤ blocks`; `sums` holds the
                // tile's outputs' rows of `MAX_STAGED_COLUMNS`.
                unsafe {
                    match (wide && FLIP, left, layout.taps) {
                        (true, 4.., 1) => tile.run::<4, 4, 1, FLIP>(block, sums),
                        (true, 4.., 2) => tile.run::<4, 4, 2, FLIP>(block, sums),
                        (true, 4.., _) => tile.run::<4, 4, 4, FLIP>(block, sums),
                        (true, 2..=3, 1) => tile.run::<4, 2, 1, FLIP>(block, sums),
                        (true, 2..=3, 2) => tile.run::<4, 2, 2, FLIP>(block, sums),
                        (true, 2..=3, _) => tile.run::<4, 2, 4, FLIP>(block, sums),
                        (true, _, 1) => tile.run::<4, 1, 1, FLIP>(block, sums),
                        (true, _, 2) => tile.run::<4, 1, 2, FLIP>(block, sums),
                        (true, _, _) => tile.run::<4, 1, 4, FLIP>(block, sums),
                        (false, 2.., 1) => tile.run::<8, 2, 1, FLIP>(block, sums),
                        (false, 2.., 2) => tile.run::<8, 2, 2, FLIP>(block, sums),
                        (false, 2.., _) => tile.run::<8, 2, 4, FLIP>(block, sums),
                        (false, _, 1) => tile.run::<8, 1, 1, FLIP>(block, sums),
                        (false, _, 2) => tile.run::<8, 1, 2, FLIP>(block, sums),
                        (false, _, _) => tile.run::<8, 1, 4, FLIP>(block, sums),
                    }
                }
                block += match (wide, left) {
                    (true, 4..) => 4,
                    (_, 2..) => 2,
                    _ => 1,
                };
                if !one_part && (block % BLOCKS_STAGED == 0 || block == b.blocks()) {
                    let columns = (part * BLOCK)..(block * BLOCK).min(b.width());
                    // SAFETY: `exact` holds these outputs' sums; the output holds their rows.
                    unsafe { finish(conv, &exact, (o, take), first, columns, out) };
                }
            }
            if one_part {
                staged += take;
                if staged + MAX_TILE_OUTPUTS > STAGED_OUTPUTS || walker.done() {
                    // SAFETY: as above.
                    unsafe { finish(conv, &exact, (staged_first, staged), first, 0..b.width(), out) };
                    staged = 0;
                }
            }
        }
    }

    /// Outputs per tile at most (8 rows of one tap each).
    const MAX_TILE_OUTPUTS: usize = 8;
    /// Outputs whose sums are staged before they are scaled, at most.
    const STAGED_OUTPUTS: usize = 32;
    /// Blocks of sums staged between the tiles and [`finish`].
    const BLOCKS_STAGED: usize = 8;
    const MAX_STAGED_COLUMNS: usize = BLOCKS_STAGED * BLOCK;

    /// Scales the staged exact sums of outputs `first_output..first_output + outputs`, columns
    /// `columns` (within one staged part, whose first column is `exact`'s), into the task's
    /// output (which starts at output row `task_first`): `scale_store`'s operations, with each
    /// run of outputs sharing a row scale (an image's) loading its per-block scales and bias
    /// once.
    ///
    /// # Safety
    /// As [`conv_rows`]; `exact` holds the outputs' rows of `MAX_STAGED_COLUMNS`; `columns`
    /// lies within one part of at most `BLOCKS_STAGED` blocks.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn finish(
        conv: &Int8Conv,
        exact: &[i32],
        (first_output, outputs): (usize, usize),
        task_first: usize,
        columns: std::ops::Range<usize>,
        out: &mut Output,
    ) {
        let n = conv.kernel.width();
        let rescale = &conv.rescale;
        let (part, width) = (columns.start, columns.len());
        let blocks = width.div_ceil(BLOCK);
        assert!(blocks <= BLOCKS_STAGED && exact.len() >= outputs * MAX_STAGED_COLUMNS);
        let mask_of = |c: usize| {
            let count = BLOCK.min(width - c * BLOCK);
            if count == BLOCK {
                u16::MAX
            } else {
                ((1u32 << count) - 1) as u16
            }
        };
        let (out_len, quantize) = match out {
            Output::F32(out) => (out.len(), None),
            Output::Int8(out, scale) => (out.len(), Some(*scale)),
        };
        assert!(outputs == 0 || (first_output + outputs - 1 - task_first) * n + columns.end <= out_len);
        let mut o = 0;
        while o < outputs {
            let row = first_output + o;
            let (row_scale, factors) = rescale.for_row(row);
            let run_end = (rescale.group_end(row) - first_output).min(outputs);
            // Each block's divisor (row scale · column scale) or factor, and bias.
            let mut scales = [_mm512_setzero_ps(); BLOCKS_STAGED];
            let mut biases = [_mm512_setzero_ps(); BLOCKS_STAGED];
            assert!(factors.len() >= columns.end && rescale.bias.is_none_or(|b| b.len() >= columns.end));
            for c in 0..blocks {
                let at = part + c * BLOCK;
                // SAFETY: the masked lanes lie within `columns`, inside `factors` and the bias.
                unsafe {
                    let factors = _mm512_maskz_loadu_ps(mask_of(c), factors.as_ptr().add(at));
                    scales[c] = match row_scale {
                        Some(row_scale) => _mm512_mul_ps(_mm512_set1_ps(row_scale), factors),
                        None => factors,
                    };
                    if let Some(bias) = rescale.bias {
                        biases[c] = _mm512_maskz_loadu_ps(mask_of(c), bias.as_ptr().add(at));
                    }
                }
            }
            for o in o..run_end {
                let at = (first_output + o - task_first) * n + part;
                for c in 0..blocks {
                    // SAFETY: `exact` holds whole staged rows; `at + c·16` plus the masked lanes
                    // lies inside the output (asserted above).
                    unsafe {
                        let sums =
                            _mm512_loadu_si512(exact.as_ptr().add(o * MAX_STAGED_COLUMNS + c * BLOCK) as *const _);
                        let sums = _mm512_cvtepi32_ps(sums);
                        let mut y = match row_scale {
                            Some(_) => _mm512_div_ps(sums, scales[c]),
                            None => _mm512_mul_ps(sums, scales[c]),
                        };
                        if rescale.bias.is_some() {
                            y = _mm512_add_ps(y, biases[c]);
                        }
                        if rescale.relu {
                            // `max(y, 0)` gives 0 for a NaN `y`, as `f32::max` does.
                            y = _mm512_max_ps(y, _mm512_setzero_ps());
                        }
                        store(out, quantize, at + c * BLOCK, mask_of(c), y);
                    }
                }
            }
            o = run_end;
        }
    }

    /// Stores the lanes `mask` of `y` at `out[at..]`, as `f32` or (with `quantize`, the
    /// output's scale) quantized again as `quantize_row` does.
    ///
    /// # Safety
    /// The masked lanes from `at` lie inside `out`.
    #[inline(always)]
    unsafe fn store(out: &mut Output, quantize: Option<f32>, at: usize, mask: u16, y: __m512) {
        // SAFETY: as the caller promises.
        unsafe {
            match (out, quantize) {
                (Output::Int8(out, _), Some(scale)) => {
                    // `quantize_row_body` lane by lane: clip to ±127 (a NaN stays NaN through
                    // these operand orders), NaN to 0, round half to even.
                    let t = _mm512_mul_ps(y, _mm512_set1_ps(scale));
                    let t = _mm512_max_ps(_mm512_set1_ps(-127.0), t);
                    let t = _mm512_min_ps(_mm512_set1_ps(127.0), t);
                    let t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(t, t), t);
                    let q = _mm512_cvtps_epi32(t);
                    _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(at), mask, q);
                }
                (Output::F32(out), _) => _mm512_mask_storeu_ps(out.as_mut_ptr().add(at), mask, y),
                (Output::Int8(..), None) => unreachable!("an int8 output has its scale"),
            }
        }
    }

    /// One tile's rows: `R` product rows (the taps of up to `R / G` outputs), each read at its
    /// start plus the quad's offset.
    struct Tile<'t> {
        rows: &'t [*const i8; 8],
        offsets: &'t [usize],
        kernel: &'t PackedInt8,
    }

    impl Tile<'_> {
        /// `R` rows × `C` blocks from block `block`; `G` taps per output; `FLIP`: flip the
        /// sign bit of each activation quad read (a source not flipped in memory). Writes each
        /// output's exact sums (its taps' largest), `MAX_STAGED_COLUMNS` apart, into `exact`
        /// from the block's first column.
        ///
        /// # Safety
        /// As `conv_rows`; `block + C ≤ blocks`, `G` divides `R`; `exact` holds `R / G` rows.
        #[inline]
        #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
        unsafe fn run<const R: usize, const C: usize, const G: usize, const FLIP: bool>(
            &self,
            block: usize,
            exact: &mut [i32],
        ) {
            let b = self.kernel;
            let mut sums = [[_mm512_setzero_si512(); C]; R];
            let flip = _mm512_set1_epi8(i8::MIN);
            let kernel = b.data.as_ptr();
            let mut rows = [std::ptr::null::<i8>(); R];
            rows.copy_from_slice(&self.rows[..R]);
            for (q, &offset) in self.offsets.iter().enumerate() {
                let mut w = [_mm512_setzero_si512(); C];
                for (c, w) in w.iter_mut().enumerate() {
                    // SAFETY: block + c < blocks and q < quads: inside the packed data.
                    *w = unsafe { _mm512_loadu_si512(kernel.add(((block + c) * b.quads + q) * 64) as *const _) };
                }
                for (r, sums) in sums.iter_mut().enumerate() {
                    // SAFETY: the row's quad lies inside the source (`check`).
                    let x = _mm512_set1_epi32(unsafe { std::ptr::read_unaligned(rows[r].add(offset) as *const i32) });
                    let x = if FLIP { _mm512_xor_si512(x, flip) } else { x };
                    for c in 0..C {
                        sums[c] = _mm512_dpbusd_epi32(sums[c], x, w[c]);
                    }
                }
            }
            let wrap_free = b.depth() <= WRAP_FREE_DEPTH;
            for c in 0..C {
                // SAFETY: column_sums holds whole blocks.
                let column_sums =
                    unsafe { _mm512_loadu_si512(b.column_sums.as_ptr().add((block + c) * BLOCK) as *const _) };
                let correction = _mm512_slli_epi32::<7>(column_sums);
                // Every output of the tile, a repeated row's too (never scaled): constant
                // indices keep the sums in registers.
                for o in 0..R / G {
                    let best = if wrap_free {
                        let mut best = sums[o * G][c];
                        for t in 1..G {
                            best = _mm512_max_epi32(best, sums[o * G + t][c]);
                        }
                        _mm512_sub_epi32(best, correction)
                    } else {
                        // The exact sums first (the biased ones may have wrapped).
                        let mut best = _mm512_sub_epi32(sums[o * G][c], correction);
                        for t in 1..G {
                            best = _mm512_max_epi32(best, _mm512_sub_epi32(sums[o * G + t][c], correction));
                        }
                        best
                    };
                    // SAFETY: `exact` holds `R / G` rows of the staged columns.
                    unsafe {
                        _mm512_storeu_si512(exact[o * MAX_STAGED_COLUMNS + c * BLOCK..].as_mut_ptr() as *mut _, best)
                    };
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::Scales;
    use crate::kernels::int8_matmul::{PackedInt8, Rescale};

    fn values(len: usize, seed: u64) -> Vec<i8> {
        let mut state = seed;
        (0..len)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match i % 13 {
                    0 => 127,
                    1 => -127,
                    _ => (((state >> 33) % 255) as i32 - 127) as i8,
                }
            })
            .collect()
    }

    fn window(
        batch: usize,
        (h, w, c): (usize, usize, usize),
        (kh, kw): (usize, usize),
        strides: (usize, usize),
        dilation: (usize, usize),
    ) -> Window2d {
        Window2d {
            batch,
            height: h,
            width: w,
            channels: c,
            window_h: kh,
            window_w: kw,
            stride_h: strides.0,
            stride_w: strides.1,
            dilation_h: dilation.0,
            dilation_w: dilation.1,
            pad_top: 0,
            pad_left: 0,
            out_h: (h - (kh - 1) * dilation.0 - 1) / strides.0 + 1,
            out_w: (w - (kw - 1) * dilation.1 - 1) / strides.1 + 1,
        }
    }

    /// The plain loops: each position's exact sum, scaled as `rescale_row`, then pooled in
    /// `f32` as the `f32` max pooling does (strictly greater wins), then quantized if asked.
    fn reference(
        images: &[i8],
        g: &Window2d,
        kernel: &[i8],
        rescale: &Rescale,
        pool: Option<&Window2d>,
        per_image_conv: bool,
    ) -> Vec<f32> {
        let f = kernel.len() / g.patch_len();
        let rows = g.batch * g.positions();
        let mut conv = vec![0.0f32; rows * f];
        let mut patch = vec![0i8; g.patch_len()];
        for r in 0..rows {
            gather(images, g, r, &mut patch);
            let sums: Vec<i32> = (0..f)
                .map(|n| {
                    (0..patch.len())
                        .map(|k| i32::from(patch[k]) * i32::from(kernel[k * f + n]))
                        .sum()
                })
                .collect();
            // The row scale of the image (or the one scale), as the caller indexes output rows.
            let (row_scale, factors) = if per_image_conv {
                let image = r / g.positions();
                match rescale.scales {
                    Scales::Divide {
                        row_scales,
                        column_scales,
                        ..
                    } => (Some(row_scales[image.min(row_scales.len() - 1)]), column_scales),
                    Scales::Multiply { factors } => (None, factors),
                    Scales::GroupFactors { factors, width, .. } => {
                        let groups = factors.len() / width;
                        (None, &factors[image.min(groups - 1) * width..][..width])
                    }
                }
            } else {
                rescale.for_row(r)
            };
            rescale_row(
                &sums,
                row_scale,
                &factors[..f],
                rescale.bias,
                rescale.relu,
                &mut conv[r * f..][..f],
            );
        }
        let Some(p) = pool else { return conv };
        let mut pooled = vec![0.0f32; g.batch * p.positions() * f];
        for n in 0..g.batch {
            for py in 0..p.out_h {
                for px in 0..p.out_w {
                    for ch in 0..f {
                        let mut best = f32::NEG_INFINITY;
                        for ty in 0..p.window_h {
                            for tx in 0..p.window_w {
                                let (oy, ox) = (py * p.stride_h + ty, px * p.stride_w + tx);
                                let v = conv[((n * g.positions()) + oy * g.out_w + ox) * f + ch];
                                if v > best {
                                    best = v;
                                }
                            }
                        }
                        pooled[((n * p.positions()) + py * p.out_w + px) * f + ch] = best;
                    }
                }
            }
        }
        pooled
    }

    /// Images of channels not in whole quads read in place as window rows of whole quads, with
    /// the kernel widened to match (1, 2, 3 and 6 channels, "same" padding, strides, a dilated
    /// height, a folded pooling; images narrower and wider than the 16 positions of the
    /// position-lane tiles, filters in and not in whole groups of 4 and 16; calibrated and
    /// per-image factors, a bias, a ReLU; `f32` and int8 output; 1 and 2 threads), give the
    /// bits of im2col rows of the originals on every path.
    #[test]
    fn window_row_quads_match_im2col_rows() {
        let cases = [
            // (channels, window, strides, dilation, pool)
            (1, (3, 3), (1, 1), (1, 1), false),
            (1, (3, 3), (1, 1), (1, 1), true),
            (1, (5, 5), (2, 1), (1, 1), false),
            (2, (2, 2), (1, 1), (2, 1), true),
            (3, (3, 3), (2, 2), (1, 1), false),
            (3, (3, 3), (1, 1), (1, 1), true),
            (6, (3, 2), (1, 2), (1, 1), false),
        ];
        let sizes = [(3, 9, 7, 24), (2, 8, 37, 37)];
        for ((channels, size, strides, dilation, pooled), (batch, h, w, f)) in
            cases.into_iter().flat_map(|case| sizes.map(|size| (case, size)))
        {
            let out = |size: usize, stride: usize| size.div_ceil(stride);
            let (out_h, out_w) = (out(h, strides.0), out(w, strides.1));
            let pad = |size: usize, out: usize, stride: usize, window: usize| {
                ((out - 1) * stride + window).saturating_sub(size) / 2
            };
            let span_h = (size.0 - 1) * dilation.0 + 1;
            let g = Window2d {
                pad_top: pad(h, out_h, strides.0, span_h),
                pad_left: pad(w, out_w, strides.1, size.1),
                out_h,
                out_w,
                ..window(batch, (h, w, channels), size, strides, dilation)
            };
            let p = pooled.then(|| {
                let mut p = window(batch, (g.out_h, g.out_w, f), (2, 2), (2, 2), (1, 1));
                p.channels = f;
                p
            });
            let images = values(batch * g.image_len(), 3 + channels as u64);
            let kernel = values(g.patch_len() * f, 17);
            let packed = PackedInt8::pack(&kernel, g.patch_len(), f);
            let rows = batch * g.positions();
            let mut cols = vec![0i8; packed.activations_len(rows, g.patch_len())];
            crate::kernels::im2col(&images, &g, &mut cols[..rows * g.patch_len()]);
            let wide = direct_window(&g);
            let mut padded = vec![1i8; batch * wide.image_len() + INT8_IMAGE_SLACK];
            pad_int8_images(&images, &g, &wide, &mut padded, false);
            let wide_kernel = widen_int8_kernel(&kernel, size.0, f);
            let wide_packed = PackedInt8::pack(&wide_kernel, wide_kernel.len() / f, f);
            let factors: Vec<f32> = (0..f).map(|n| 0.01 + n as f32 * 1e-4).collect();
            let group_factors: Vec<f32> = (0..batch * f).map(|i| 2e-3 + (i % 29) as f32 * 1e-4).collect();
            let bias: Vec<f32> = (0..f).map(|n| n as f32 * 0.5 - 6.0).collect();
            let out_positions = p.as_ref().map_or(g.positions(), Window2d::positions);
            let out_len = batch * out_positions * f;
            let rescales = [
                Rescale {
                    scales: Scales::Multiply { factors: &factors },
                    bias: None,
                    relu: pooled,
                },
                Rescale {
                    scales: Scales::GroupFactors {
                        factors: &group_factors,
                        rows_per_group: out_positions,
                        width: f,
                    },
                    bias: Some(&bias),
                    relu: true,
                },
            ];
            let mut flipped = vec![1i8; batch * wide.image_len() + INT8_IMAGE_SLACK];
            pad_int8_images(&images, &g, &wide, &mut flipped, true);
            for rescale in rescales {
                let run = |rows: Int8Rows, window: &Window2d, kernel: &PackedInt8, path: Int8Path, threads: usize| {
                    let conv = Int8Conv {
                        rows,
                        flipped: matches!(rows, Int8Rows::Images(source) if std::ptr::eq(source, &flipped[..])),
                        window,
                        pool: p.as_ref(),
                        kernel,
                        rescale,
                    };
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let (mut out, mut quantized) = (vec![0.0f32; out_len], vec![0i8; out_len]);
                    pool.install(|| {
                        conv.run_on(path, Output::F32(&mut out));
                        conv.run_on(path, Output::Int8(&mut quantized, 0.37));
                    });
                    (out.iter().map(|v| v.to_bits()).collect::<Vec<_>>(), quantized)
                };
                let want = run(Int8Rows::Columns(&cols), &g, &packed, Int8Path::Scalar, 1);
                // Twice: the VNNI path's position-lane tiles where the CPU has VBMI, then its
                // filter-lane tiles only (as on a CPU without).
                for tiles_only in [false, true] {
                    #[cfg(target_arch = "x86_64")]
                    lanes::TILES_ONLY.store(tiles_only, std::sync::atomic::Ordering::Relaxed);
                    for path in Int8Path::available() {
                        for threads in [1, 2] {
                            let case = format!(
                                "{channels} channels, {size:?} window, {w} wide, {path:?}, {threads} threads, \
                                 filter-lane tiles only: {tiles_only}"
                            );
                            let got = run(Int8Rows::Images(&padded), &wide, &wide_packed, path, threads);
                            assert!(got == want, "{case}");
                            // The same images with their sign bits flipped in memory (as the VNNI
                            // tiles take them; the other paths flip them back).
                            let got = run(Int8Rows::Images(&flipped), &wide, &wide_packed, path, threads);
                            assert!(got == want, "flipped, {case}");
                        }
                    }
                }
                #[cfg(target_arch = "x86_64")]
                lanes::TILES_ONLY.store(false, std::sync::atomic::Ordering::Relaxed);
            }
        }
    }

    /// Direct (image) and im2col rows, with and without a folded pooling, per-image division and
    /// calibrated factors, `f32` and int8 output: every path equals the plain loops bit for
    /// bit, on 1 and 2 threads.
    #[test]
    fn every_path_matches_the_plain_loops() {
        let cases = [
            // (batch, (h, w, c), window, strides, dilation, filters, pool (size, strides))
            (3, (9, 8, 8), (3, 3), (1, 1), (1, 1), 64, Some(((2, 2), (2, 2)))),
            (2, (11, 11, 32), (3, 3), (1, 1), (1, 1), 64, Some(((2, 2), (2, 2)))),
            (2, (7, 9, 4), (2, 3), (2, 1), (1, 2), 40, Some(((1, 2), (1, 2)))),
            (5, (6, 6, 12), (3, 3), (1, 1), (1, 1), 17, None),
            (2, (10, 10, 1), (3, 3), (1, 1), (1, 1), 32, Some(((2, 2), (2, 2)))),
            (3, (8, 7, 3), (3, 2), (1, 2), (1, 1), 33, None),
            (1, (5, 5, 8), (1, 1), (1, 1), (1, 1), 96, Some(((1, 1), (2, 2)))),
            // More than the 8 blocks staged at once: scaled a part of the columns at a time.
            (2, (6, 6, 4), (3, 3), (1, 1), (1, 1), 136, Some(((2, 2), (2, 2)))),
            (2, (5, 5, 8), (1, 1), (1, 1), (1, 1), 150, None),
        ];
        // Activations of both signs, and none negative (the AVX2 tiles' unsigned products).
        let signs = cases.iter().flat_map(|case| [(*case, false), (*case, true)]);
        for ((batch, image, size, strides, dilation, f, pool), nonnegative) in signs {
            let g = window(batch, image, size, strides, dilation);
            let p = pool.map(|(size, strides)| {
                let mut p = window(batch, (g.out_h, g.out_w, f), size, strides, (1, 1));
                p.channels = f;
                p
            });
            let mut images = values(batch * g.image_len(), 5 + f as u64);
            if nonnegative {
                images.iter_mut().for_each(|v| *v = (*v).max(0));
            }
            let kernel = values(g.patch_len() * f, 11 + g.patch_len() as u64);
            let packed = PackedInt8::pack(&kernel, g.patch_len(), f);
            let rows = g.batch * g.positions();
            let mut cols = vec![0i8; packed.activations_len(rows, g.patch_len())];
            crate::kernels::im2col(&images, &g, &mut cols[..rows * g.patch_len()]);
            let out_positions = p.as_ref().map_or(g.positions(), Window2d::positions);
            let row_scales: Vec<f32> = (0..batch).map(|n| 0.5 + n as f32 * 0.25).collect();
            let column_scales: Vec<f32> = (0..f).map(|n| 40.0 + n as f32 * 0.75).collect();
            let factors: Vec<f32> = (0..f).map(|n| 1e-3 * (1.0 + n as f32 * 0.01)).collect();
            let group_factors: Vec<f32> = row_scales
                .iter()
                .flat_map(|&r| column_scales.iter().map(move |&c| 1.0 / (r * c)))
                .collect();
            let bias: Vec<f32> = (0..f).map(|n| n as f32 * 7.0 - 60.0).collect();
            let scalings = [
                Scales::Divide {
                    row_scales: &row_scales,
                    rows_per_scale: out_positions,
                    column_scales: &column_scales,
                },
                Scales::Multiply { factors: &factors },
                Scales::GroupFactors {
                    factors: &group_factors,
                    rows_per_group: out_positions,
                    width: f,
                },
            ];
            for scales in scalings {
                for relu in [true, false] {
                    if p.is_some() && !relu {
                        continue;
                    }
                    let rescale = Rescale {
                        scales,
                        bias: Some(&bias),
                        relu,
                    };
                    let want = reference(&images, &g, &kernel, &rescale, p.as_ref(), true);
                    let out_len = batch * out_positions * f;
                    let mut sources = vec![Int8Rows::Columns(&cols)];
                    if g.channels.is_multiple_of(4) {
                        sources.push(Int8Rows::Images(&images));
                    }
                    for rows in sources {
                        let conv = Int8Conv {
                            rows,
                            flipped: false,
                            window: &g,
                            pool: p.as_ref(),
                            kernel: &packed,
                            rescale,
                        };
                        for path in Int8Path::available() {
                            for threads in [1, 2] {
                                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                                let mut got = vec![0.0f32; out_len];
                                pool.install(|| conv.run_on(path, Output::F32(&mut got)));
                                let bits = |v: &[f32]| v.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                                assert_eq!(bits(&got), bits(&want), "{path:?}, {threads} threads, {g:?}");
                                let mut quantized = vec![0i8; out_len];
                                pool.install(|| conv.run_on(path, Output::Int8(&mut quantized, 0.37)));
                                let mut want_quantized = vec![0i8; out_len];
                                quantize_row(&want, 0.37, &mut want_quantized);
                                assert_eq!(quantized, want_quantized, "{path:?} int8, {threads} threads");
                            }
                        }
                    }
                }
            }
        }
    }
}
