//! Where an int8 convolution's product rows lie: the convolution's description, how its output
//! rows map to taps and product rows, and the walker that gives the tiles each row's start.
//! Shared by the VNNI tiles (in `int8_conv.rs`) and the AVX2 ones (`avx2.rs`).

use super::super::Window2d;
use super::super::int8_matmul::{PackedInt8, Rescale};

/// Where a convolution's product rows are read from.
#[derive(Clone, Copy)]
pub(crate) enum Int8Rows<'a> {
    /// The quantized images `(N, H, W, C)` themselves, read with a window without padding (pad
    /// the images first). With `C` a multiple of 4 each quad lies in one pixel; otherwise
    /// (no dilation along the width then) each window row's `KW·C` bytes are read as whole
    /// quads from its first pixel, up to 3 bytes beyond the row (against zero kernel rows): the
    /// images are followed by [`INT8_IMAGE_SLACK`] bytes.
    Images(&'a [i8]),
    /// Im2col rows, one of `KH·KW·C` bytes per output position (as `kernels::im2col` writes
    /// them), long enough for the product ([`PackedInt8::activations_len`]).
    Columns(&'a [i8]),
}

/// One int8 convolution, optionally with a max pooling folded in.
pub(crate) struct Int8Conv<'a> {
    /// The rows' source.
    pub rows: Int8Rows<'a>,
    /// The convolution's sizes.
    pub window: &'a Window2d,
    /// A max pooling of the convolution's `(N, OH, OW, F)` output: its window has 1, 2 or 4
    /// taps, no padding and no dilation. Needs `rescale.relu`.
    pub pool: Option<&'a Window2d>,
    /// Whether the source's bytes are stored with their sign bits flipped (`x + 128` as
    /// unsigned bytes, the operand `vpdpbusd` takes, as [`pad_int8_images`] writes them for the
    /// VNNI tiles): only with [`Int8Rows::Images`].
    ///
    /// [`pad_int8_images`]: super::pad_int8_images
    pub flipped: bool,
    /// The packed `(KH·KW·C, F)` kernel.
    pub kernel: &'a PackedInt8,
    /// How the sums become the output; its rows are the output's rows (pooled ones with a
    /// pool), so `rows_per_scale` counts output positions.
    pub rescale: Rescale<'a>,
}

/// How output row `o`'s taps map to product rows, and those to bytes.
#[derive(Clone, Copy)]
pub(super) struct Layout {
    /// Output positions per image.
    pub(super) positions: usize,
    /// Output columns.
    pub(super) out_w: usize,
    /// Taps per output row (pool window height · width; 1 without a pool).
    pub(super) taps: usize,
    /// Pool window width, and pool strides (rows, columns); (1, 1, 1) without a pool.
    pub(super) pool_w: usize,
    pub(super) pool_strides: (usize, usize),
    /// Convolution output columns.
    pub(super) conv_w: usize,
    /// Convolution positions per image.
    pub(super) conv_positions: usize,
}

impl Layout {
    pub(super) fn new(conv: &Window2d, pool: Option<&Window2d>) -> Self {
        match pool {
            Some(p) => Layout {
                positions: p.positions(),
                out_w: p.out_w,
                taps: p.window_h * p.window_w,
                pool_w: p.window_w,
                pool_strides: (p.stride_h, p.stride_w),
                conv_w: conv.out_w,
                conv_positions: conv.positions(),
            },
            None => Layout {
                positions: conv.positions(),
                out_w: conv.out_w,
                taps: 1,
                pool_w: 1,
                pool_strides: (1, 1),
                conv_w: conv.out_w,
                conv_positions: conv.positions(),
            },
        }
    }

    /// The image and convolution output position `(oy, ox)` of tap `t` of output row `o`.
    #[inline(always)]
    pub(super) fn tap(&self, o: usize, t: usize) -> (usize, usize, usize) {
        let (n, p) = (o / self.positions, o % self.positions);
        let (py, px) = (p / self.out_w, p % self.out_w);
        let oy = py * self.pool_strides.0 + t / self.pool_w;
        let ox = px * self.pool_strides.1 + t % self.pool_w;
        (n, oy, ox)
    }

    /// The product row (im2col row) of tap `t` of output row `o`.
    #[inline(always)]
    pub(super) fn product_row(&self, o: usize, t: usize) -> usize {
        let (n, oy, ox) = self.tap(o, t);
        n * self.conv_positions + oy * self.conv_w + ox
    }
}

/// The deepest kernel whose biased sums `Σ (x + 128) · w` (the VNNI tiles') cannot wrap
/// (`255 · 127 · K < 2³¹`): their largest is then the largest exact sum plus the same
/// correction, so a pooling takes the maximum first and corrects once.
pub(super) const WRAP_FREE_DEPTH: usize = 1 << 16;

/// Bytes the images read in place are followed by: a window row of `KW·C` bytes is read as
/// whole quads, up to 3 bytes more.
pub(crate) const INT8_IMAGE_SLACK: usize = 3;

/// Quads per window row when the channels are not in whole quads: its `KW·C` bytes rounded up.
pub(crate) fn quads_per_window_row(window_w: usize, channels: usize) -> usize {
    (window_w * channels).div_ceil(4)
}

/// Where each quad of a product row lies relative to the row's start: consecutive in an im2col
/// row; in the image, tap `(ky, kx)`'s pixel plus the quad's channels, or with channels not in
/// whole quads, window row `ky` plus the quad's bytes.
pub(super) fn quad_offsets(conv: &Int8Conv) -> Vec<usize> {
    let (g, b) = (conv.window, conv.kernel);
    let row_bytes = g.dilation_h * g.width * g.channels;
    match conv.rows {
        Int8Rows::Columns(_) => (0..b.quads).map(|q| q * 4).collect(),
        Int8Rows::Images(_) if !g.channels.is_multiple_of(4) => {
            let per_row = quads_per_window_row(g.window_w, g.channels);
            (0..b.quads)
                .map(|q| q / per_row * row_bytes + q % per_row * 4)
                .collect()
        }
        Int8Rows::Images(_) => (0..b.quads)
            .map(|q| {
                let (tap, channel) = (q * 4 / g.channels, q * 4 % g.channels);
                let (ky, kx) = (tap / g.window_w, tap % g.window_w);
                ky * row_bytes + kx * g.dilation_w * g.channels + channel
            })
            .collect(),
    }
}

/// Walks a task's output rows a tile at a time, giving the start of each tap's product row:
/// its window's origin in the image, or its im2col row.
pub(super) struct TileRows<'c> {
    conv: &'c Int8Conv<'c>,
    layout: &'c Layout,
    base: *const i8,
    /// The next output row, and the end of the task's rows.
    next: usize,
    end: usize,
    /// The next output row's image and (pooled) position, stepped along with it: a division per
    /// row costs as much as a first layer's multiply-adds.
    image: usize,
    py: usize,
    px: usize,
    /// Output rows per image.
    out_h: usize,
    /// Each tap's product row relative to its output's first tap's, in bytes (for the same
    /// reason: no division per tap).
    tap_offsets: [usize; 4],
}

impl<'c> TileRows<'c> {
    pub(super) fn new(conv: &'c Int8Conv<'c>, layout: &'c Layout, first: usize, count: usize) -> Self {
        let base = match conv.rows {
            Int8Rows::Columns(cols) => cols.as_ptr(),
            Int8Rows::Images(images) => images.as_ptr(),
        };
        let position = first % layout.positions;
        let g = conv.window;
        let mut tap_offsets = [0; 4];
        for (t, offset) in tap_offsets.iter_mut().enumerate().take(layout.taps) {
            let (dy, dx) = (t / layout.pool_w, t % layout.pool_w);
            *offset = match conv.rows {
                Int8Rows::Images(_) => (dy * g.stride_h * g.width + dx * g.stride_w) * g.channels,
                Int8Rows::Columns(_) => (dy * g.out_w + dx) * g.patch_len(),
            };
        }
        TileRows {
            conv,
            layout,
            base,
            next: first,
            end: first + count,
            image: first / layout.positions,
            py: position / layout.out_w,
            px: position % layout.out_w,
            out_h: layout.positions / layout.out_w,
            tap_offsets,
        }
    }

    /// Where the window of convolution position `(oy, ox)` of the current image starts.
    #[inline(always)]
    pub(super) fn start_of(&self, oy: usize, ox: usize) -> usize {
        let g = self.conv.window;
        match self.conv.rows {
            Int8Rows::Images(_) => {
                self.image * g.image_len() + (oy * g.stride_h * g.width + ox * g.stride_w) * g.channels
            }
            Int8Rows::Columns(_) => (self.image * g.positions() + oy * g.out_w + ox) * g.patch_len(),
        }
    }

    /// True when every output row of the task has been given out.
    #[inline(always)]
    pub(super) fn done(&self) -> bool {
        self.next >= self.end
    }

    /// Fills `rows[..tile_rows]` with the product rows of the taps of the next
    /// `tile_rows / taps` outputs (fewer at the task's end: the first row repeats, computed
    /// and never stored); returns the first of those outputs and how many there are.
    #[inline(always)]
    pub(super) fn next(&mut self, tile_rows: usize, rows: &mut [*const i8; 8]) -> Option<(usize, usize)> {
        let layout = self.layout;
        if self.next >= self.end {
            return None;
        }
        let first = self.next;
        let take = (self.end - first).min(tile_rows / layout.taps);
        let mut filled = 0;
        for _ in 0..take {
            let origin = self.start_of(self.py * layout.pool_strides.0, self.px * layout.pool_strides.1);
            for &offset in &self.tap_offsets[..layout.taps] {
                // SAFETY: the window lies inside the source (`Int8Conv::check`).
                rows[filled] = unsafe { self.base.add(origin + offset) };
                filled += 1;
            }
            self.px += 1;
            if self.px == layout.out_w {
                self.px = 0;
                self.py += 1;
                if self.py == self.out_h {
                    self.py = 0;
                    self.image += 1;
                }
            }
        }
        let first_row = rows[0];
        rows[filled..tile_rows].fill(first_row);
        self.next += take;
        Some((first, take))
    }
}
