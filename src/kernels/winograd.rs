//! Winograd convolution `F(m×m, 3×3)` for 3×3 kernels with stride 1 and no dilation.
//!
//! An `m×m` tile of outputs is computed from the `α×α` input tile around it (`α = m + 2`) as
//! `Y = Aᵀ[(G g Gᵀ) ⊙ (Bᵀ d B)]A` (Lavin & Gray, 2016). Summed over input channels, the
//! elementwise product becomes `α²` independent matrix products `M[ξ] = V[ξ]·U[ξ]` of the
//! transformed input tiles `V[ξ]` (tiles × in) and the transformed kernel `U[ξ]` (in × out):
//! `α²` multiply-adds per tile and channel pair instead of `9·m²`. For `m = 4` that is 36
//! instead of 144, so the CNN's second convolution needs a quarter of im2col's products.
//!
//! The backward pass reuses the transforms: with `dM = A dY Aᵀ` (each tile's output gradient,
//! transformed), the kernel gradient is `Gᵀ(Σ_tiles V ⊙ dM)G`, from the products
//! `dU[ξ] = V[ξ]ᵀ·dM[ξ]`, and the input gradient is `B(U ⊙ dM)Bᵀ` summed over the overlapping
//! tiles, from `dV[ξ] = dM[ξ]·U[ξ]ᵀ`.
//!
//! The transformed tiles are several times larger than the images, and memory is slow next to
//! the arithmetic on the CPUs measured (docs/PERFORMANCE.md), so nothing tile-sized leaves the
//! cache: the batch is cut into blocks of a few
//! images, and each block is transformed, multiplied and transformed back in one go in a
//! per-thread buffer. The backward pass recomputes `V` from the input rather than storing it.
//! Each block's kernel-gradient products add into one of [`PARTIALS`] sums, each summing a
//! fixed run of blocks in order; the sums are added in a fixed order at the end, so the result
//! does not depend on the thread count.
//!
//! The result equals the direct convolution in exact arithmetic; in f32 the transforms round
//! differently, more so with more channels (relative errors for m = 4 of about 2e-5 with 8
//! channels and 2e-4 with 64, see `tests/conv_paths.rs`).

#![allow(clippy::needless_range_loop)] // Indexing by constants is what lets the tile loops unroll.

use super::conv::{OutputGrad, Window2d};
use super::scratch::with_scratch;
use super::simd::{Simd, dispatch_simd, widest};
use super::small_gemm::{Strided, small_gemm};
use super::winograd_tiles::{Partial, Tile, mix, mix_t, sandwich, sandwich_t};
use rayon::prelude::*;

/// Where a backward pass adds the kernel, bias and input gradients (each when wanted). The
/// input gradient comes with `true` when its contents are stale: it is then overwritten.
pub(crate) type Gradients<'a> = (
    Option<&'a mut [f32]>,
    Option<&'a mut [f32]>,
    Option<(&'a mut [f32], bool)>,
);

/// A block's share of a partial sum: the kernel-gradient products (and whether to add to
/// them rather than overwrite them) and the bias gradient.
type BlockSums<'a> = (Option<(&'a mut [f32], bool)>, Option<&'a mut [f32]>);

/// Calls `$f::<α, m>(args)` for the tile size `m`.
macro_rules! for_tile {
    ($m:expr, $f:ident($($arg:expr),*)) => {
        match $m {
            2 => $f::<4, 2>($($arg),*),
            3 => $f::<5, 3>($($arg),*),
            _ => $f::<6, 4>($($arg),*),
        }
    };
}

mod panels;

/// How one convolution runs through Winograd's algorithm.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Winograd {
    /// Outputs per tile side (2, 3 or 4).
    m: usize,
    tiles_h: usize,
    tiles_w: usize,
    batch: usize,
    channels: usize,
    filters: usize,
    /// Images transformed and multiplied together in one cache-resident block.
    block_images: usize,
    /// Images whose kernel-gradient products go into one partial sum (a multiple of
    /// `block_images`).
    partial_images: usize,
    /// Whether the forward pass runs by panels (`panels.rs`; passes without gradients only).
    by_panels: bool,
}

/// Channel counts must be multiples of this (the AVX2 vector width; AVX-512 runs the layers
/// whose counts are multiples of 16); smaller layers leave too little work per transform to
/// pay for it.
const CHANNEL_MULTIPLE: usize = 8;
/// Tiles per block: enough rows for the products to run near full speed, few enough for a
/// block's transformed tiles to stay in a 512 KiB L2 cache.
const BLOCK_TILES: usize = 24;
/// Fewest tiles in a block cut for the threads' sake (see `Winograd::even_split_tiles`): fewer
/// rows leave the products too short to run near full speed.
const MIN_SPLIT_TILES: usize = 4;
/// A transformed kernel larger than this is taken to come from memory on every call.
const STREAMED_KERNEL_BYTES: usize = 1 << 20;
/// Fewest tiles in one call that pay for streaming a transformed kernel from memory
/// (docs/PERFORMANCE.md, "ResNet50 at batch 1 on AVX2").
const STREAMED_KERNEL_MIN_TILES: usize = 16;
/// Below this many tiles of the cheapest size, a streamed transformed kernel is made with
/// F(2×2) tiles instead, if they are at least [`SMALL_TILES_MIN`] (docs/PERFORMANCE.md,
/// "Kernels packed once for inference").
const FEW_STREAMED_TILES: usize = 64;
/// Fewest F(2×2) tiles that pay for streaming their transformed kernel in place of a larger
/// one in the blocked pass (a 7×7 map at batch 1 has 16: the plain product is faster there;
/// by panels, [`PANELS_SMALL_TILES_MIN`] holds).
const SMALL_TILES_MIN: usize = 32;
/// Filters per panel when the forward pass runs by panels (`packed_product`'s panel width).
const PANEL: usize = 64;
/// Most tiles, over the batch, that run by panels: measured faster up to 196 tiles of 2×2
/// (ResNet50's 28×28 stage at batch 1; docs/PERFORMANCE.md, "Winograd by panels for few
/// tiles") and 128 of 4×4 (its 14×14 stage at batch 8, as fast as blocked); with many more,
/// the blocked pass's blocks are long.
const PANELS_MOST_TILES: usize = 196;
/// Fewest tiles of 2×2 that pay for streaming their transformed kernel when they run by
/// panels (the blocked pass needs [`SMALL_TILES_MIN`]).
const PANELS_SMALL_TILES_MIN: usize = 16;
/// Fewest tiles of the cheapest size that pay for streaming its transformed kernel when they
/// run by panels, rather than 2×2 tiles' smaller one: ResNet50's 28×28 stage at batch 1 has 49
/// tiles of 4×4 (36 positions, 2.25 MiB), which took two thirds of the time of its 196 tiles of
/// 2×2; its 14×14 stage's 16 tiles of 4×4 took 1.4 times as long as its 49 of 2×2
/// (docs/PERFORMANCE.md, "F(4×4) by panels").
const PANELS_LARGE_TILES_MIN: usize = 32;
/// Partial sums of the kernel gradient: the backward pass runs on up to this many threads.
const PARTIALS: usize = 4;

impl Winograd {
    /// The plan for convolving with `filters` 3×3 kernels, or `None` when the convolution is
    /// not one this module handles: a window other than 3×3, a stride or dilation above 1, or
    /// channel counts that are not positive multiples of 8; or a transformed kernel larger than
    /// the caches for fewer tiles than pay for reading it.
    pub(crate) fn plan(g: &Window2d, filters: usize) -> Option<Winograd> {
        Self::plan_for(g, filters, false)
    }

    /// [`Winograd::plan`] for a pass no gradient is asked of: there a transformed kernel
    /// streamed from memory for few tiles runs by panels (`panels.rs`), which pays for fewer
    /// tiles than the blocked pass (a 7×7 map with 512 channels at batch 1: 16 tiles of 2×2).
    pub(crate) fn plan_inference(g: &Window2d, filters: usize) -> Option<Winograd> {
        Self::plan_for(g, filters, true)
    }

    fn plan_for(g: &Window2d, filters: usize, inference: bool) -> Option<Winograd> {
        let eligible = (g.window_h, g.window_w) == (3, 3)
            && (g.stride_h, g.stride_w, g.dilation_h, g.dilation_w) == (1, 1, 1, 1)
            && g.channels > 0
            && filters > 0
            && g.channels.is_multiple_of(CHANNEL_MULTIPLE)
            && filters.is_multiple_of(CHANNEL_MULTIPLE)
            && g.batch > 0;
        if !eligible {
            return None;
        }
        // The tile size with the fewest transformed values per image (partial tiles at the
        // edges count in full); larger tiles first, so ties go to fewer, larger tiles.
        let cost = |m: usize| g.out_h.div_ceil(m) * g.out_w.div_ceil(m) * (m + 2) * (m + 2);
        let tiles = |m: usize| g.batch.saturating_mul(g.out_h.div_ceil(m) * g.out_w.div_ceil(m));
        // The transformed kernel is (m + 2)²/9 times the size of the kernel. When it is larger
        // than the caches it comes from memory on every call.
        let transformed_bytes = |m: usize| {
            [(m + 2) * (m + 2), g.channels, filters, std::mem::size_of::<f32>()]
                .into_iter()
                .fold(1usize, usize::saturating_mul)
        };
        // By panels: filters in whole panels, channels in whole AVX-512 vectors.
        let panels = inference && g.channels.is_multiple_of(16) && filters.is_multiple_of(PANEL);
        let small_tiles_min = if panels {
            PANELS_SMALL_TILES_MIN
        } else {
            SMALL_TILES_MIN
        };
        let mut m = [4, 3, 2].into_iter().min_by_key(|&m| cost(m))?;
        // With few tiles to use it on, streaming that kernel costs more than the multiply-adds
        // that larger tiles save: the smallest tiles' kernel is 16/36 the size of F(4×4)'s (a
        // 14×14 map with 256 channels at batch 1: 16 tiles of 4×4 or 49 of 2×2).
        let few_tiles = if panels {
            PANELS_LARGE_TILES_MIN
        } else {
            FEW_STREAMED_TILES
        };
        if transformed_bytes(m) > STREAMED_KERNEL_BYTES && tiles(m) < few_tiles && tiles(2) >= small_tiles_min {
            m = 2;
        }
        let (tiles_h, tiles_w) = (g.out_h.div_ceil(m), g.out_w.div_ceil(m));
        // With fewer tiles still (a 7×7 map at batch 1: four tiles of 4×4), the plain product
        // is faster.
        if transformed_bytes(m) > STREAMED_KERNEL_BYTES && tiles(m) < STREAMED_KERNEL_MIN_TILES {
            return None;
        }
        let per_partial = g.batch.div_ceil(PARTIALS);
        let block_images = (BLOCK_TILES / (tiles_h * tiles_w)).clamp(1, per_partial);
        Some(Winograd {
            // A kernel of 1 MiB (the 28×28 stage's with 2×2 tiles) already runs faster by
            // panels; smaller ones, read from the cache (the 56×56 stage's), by blocks.
            by_panels: panels && transformed_bytes(m) >= STREAMED_KERNEL_BYTES && tiles(m) <= PANELS_MOST_TILES,
            m,
            tiles_h,
            tiles_w,
            batch: g.batch,
            channels: g.channels,
            filters,
            block_images,
            partial_images: per_partial.next_multiple_of(block_images),
        })
    }

    /// Whether both channel counts are multiples of AVX-512's sixteen lanes.
    fn fits_wide_vectors(&self) -> bool {
        self.channels.is_multiple_of(16) && self.filters.is_multiple_of(16)
    }

    fn alpha2(&self) -> usize {
        (self.m + 2) * (self.m + 2)
    }

    fn tiles_per_image(&self) -> usize {
        self.tiles_h * self.tiles_w
    }

    /// Values of a transformed kernel `U` (and of its gradient): `[ξ][in][out]`.
    pub(crate) fn kernel_len(&self) -> usize {
        self.alpha2() * self.channels * self.filters
    }

    fn partials(&self) -> usize {
        self.batch.div_ceil(self.partial_images)
    }

    /// Working memory of [`Winograd::backward`]: the transposed kernel and the partial sums
    /// of the kernel and bias gradients.
    pub(crate) fn backward_scratch_len(&self) -> usize {
        self.kernel_len() + self.partials() * self.partial_len()
    }

    /// One partial sum: a transformed kernel gradient, then a bias gradient.
    fn partial_len(&self) -> usize {
        self.kernel_len() + self.filters
    }

    /// Per-thread buffer length for one block: its transformed inputs and products.
    fn block_scratch_len(&self) -> usize {
        self.alpha2() * self.block_images * self.tiles_per_image() * (self.channels + self.filters)
    }

    /// `y = conv(x, kernel) + bias`, plus `residual` (`y`'s shape) when given, then `max(y, 0)`
    /// when `relu`: the residual connection's `Add` and ReLU are fused into the output
    /// transform, summed in the unfused order (same bits). Leaves the transformed
    /// kernel in `u` (`kernel_len` values) for the backward pass; when `transformed`, `u`
    /// already holds it (an earlier pass with the same weights left it) and `kernel` is not
    /// read.
    ///
    /// The work is cut into blocks of tiles (a band of tile rows of one image, several small
    /// images, or an even share of a small batch's tiles per thread) and, when there are fewer
    /// blocks than threads, each block into groups of filters, so a single image keeps every
    /// thread busy. Each output is summed the same way
    /// whatever the cut (`small_gemm` sums each element in order), so the result does not
    /// depend on the thread count.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward(
        &self,
        g: &Window2d,
        x: &[f32],
        kernel: (&[f32], &mut [f32], bool),
        bias: Option<&[f32]>,
        residual: Option<&[f32]>,
        relu: bool,
        y: &mut [f32],
    ) {
        let out_len = self.batch * g.positions() * self.filters;
        assert!(residual.is_none_or(|r| r.len() >= out_len));
        self.run_forward(g, None, x, kernel, (bias, residual), relu, y);
    }

    /// Whether [`Winograd::forward_max_pooled`] folds `pool` (a max pooling over this
    /// convolution's output): windows that do not overlap and never cross a tile's edge (the
    /// strides divide the tile's side), without padding or dilation.
    pub(crate) fn max_pool_folds(&self, g: &Window2d, pool: &Window2d) -> bool {
        (pool.dilation_h, pool.dilation_w, pool.pad_top, pool.pad_left) == (1, 1, 0, 0)
            && (pool.batch, pool.height, pool.width, pool.channels) == (g.batch, g.out_h, g.out_w, self.filters)
            && pool.window_h <= pool.stride_h
            && pool.window_w <= pool.stride_w
            && self.m.is_multiple_of(pool.stride_h)
            && self.m.is_multiple_of(pool.stride_w)
            && pool.out_h * pool.stride_h <= g.out_h + pool.stride_h - pool.window_h
            && pool.out_w * pool.stride_w <= g.out_w + pool.stride_w - pool.window_w
    }

    /// `y = max_pool(max(conv(x, kernel) + bias, 0))` in one pass, for a `pool` that
    /// [`Winograd::max_pool_folds`] accepts: each tile's outputs are put through the ReLU as
    /// [`Winograd::forward`] does and the largest of each pooling window is stored (the bits
    /// of the two steps); the convolution's own output is never written. `kernel`, `u` and
    /// `transformed` as in `forward`; split over threads as `forward` is.
    pub(crate) fn forward_max_pooled(
        &self,
        g: &Window2d,
        pool: &Window2d,
        x: &[f32],
        kernel: (&[f32], &mut [f32], bool),
        bias: Option<&[f32]>,
        y: &mut [f32],
    ) {
        assert!(self.max_pool_folds(g, pool), "winograd: a pooling that does not fold");
        self.run_forward(g, Some(pool), x, kernel, (bias, None), true, y);
    }

    /// [`Winograd::forward`], or [`Winograd::forward_max_pooled`] with `pool`.
    #[allow(clippy::too_many_arguments)]
    fn run_forward(
        &self,
        g: &Window2d,
        pool: Option<&Window2d>,
        x: &[f32],
        (kernel, u, transformed): (&[f32], &mut [f32], bool),
        shifts: (Option<&[f32]>, Option<&[f32]>),
        relu: bool,
        y: &mut [f32],
    ) {
        let pairs = self.channels * self.filters;
        assert!(u.len() >= self.kernel_len(), "winograd: transformed kernel too short");
        if !transformed {
            assert!(kernel.len() >= 9 * pairs, "winograd: kernel too short");
            for_tile!(self.m, kernel_forward(kernel, pairs, u));
        }
        let u = &u[..self.kernel_len()];
        let positions = pool.map_or(g.positions(), Window2d::positions);
        assert!(x.len() >= self.batch * g.image_len() && y.len() >= self.batch * positions * self.filters);
        assert!(shifts.0.is_none_or(|b| b.len() >= self.filters));
        let x = &x[..self.batch * g.image_len()];
        let blocks = self.forward_blocks();
        let groups = self.filter_groups(blocks);
        let output = SharedOutput(y.as_mut_ptr());
        let scratch_len = self.forward_scratch_len();
        (0..blocks * groups).into_par_iter().for_each(|item| {
            let tiles = self.forward_block_tiles(item / groups);
            let filters = self.filter_group(item % groups, groups);
            let output = &output;
            with_scratch(scratch_len, |scratch| {
                for_tile!(
                    self.m,
                    forward_block(self, g, x, tiles, filters, u, shifts, relu, pool, scratch, output)
                )
            })
        });
    }

    /// Tile rows per forward block when one image's tiles fill several blocks.
    fn band_rows(&self) -> usize {
        (BLOCK_TILES / self.tiles_w).max(1)
    }

    /// Blocks per image (bands of tile rows), or 0 when a block holds whole images.
    fn bands_per_image(&self) -> usize {
        if self.tiles_per_image() >= BLOCK_TILES {
            self.tiles_h.div_ceil(self.band_rows())
        } else {
            0
        }
    }

    /// Whole images per forward block when a block holds whole images.
    fn images_per_block(&self) -> usize {
        (BLOCK_TILES / self.tiles_per_image()).max(1)
    }

    /// Tiles per forward block when bands and whole images would give some thread nothing to
    /// do (a single small image: the MNIST CNN's 11×11 map is 9 tiles of 4×4): the batch's
    /// tiles numbered in order and cut evenly, one run per thread, as long as each run has
    /// [`MIN_SPLIT_TILES`]. Each tile's outputs are computed the same way in any run (its own
    /// transforms, rows of the products summed in order), so the cut does not change them.
    fn even_split_tiles(&self) -> Option<usize> {
        let threads = rayon::current_num_threads();
        let total = self.batch * self.tiles_per_image();
        let per_block = total.div_ceil(threads).max(MIN_SPLIT_TILES);
        (self.band_or_image_blocks() < threads && per_block < total).then_some(per_block)
    }

    /// How many blocks the forward pass cuts the batch's tiles into.
    fn forward_blocks(&self) -> usize {
        match self.even_split_tiles() {
            Some(per_block) => (self.batch * self.tiles_per_image()).div_ceil(per_block),
            None => self.band_or_image_blocks(),
        }
    }

    /// Blocks of bands of tile rows, or of whole images.
    fn band_or_image_blocks(&self) -> usize {
        match self.bands_per_image() {
            0 => self.batch.div_ceil(self.images_per_block()),
            bands => self.batch * bands,
        }
    }

    /// The tiles of forward block `b`, numbered over the batch (`image · tiles per image +
    /// tile`): a contiguous run inside one image, or whole images.
    fn forward_block_tiles(&self, b: usize) -> std::ops::Range<usize> {
        let per_image = self.tiles_per_image();
        if let Some(per_block) = self.even_split_tiles() {
            let first = b * per_block;
            return first..(first + per_block).min(self.batch * per_image);
        }
        match self.bands_per_image() {
            0 => {
                let first = b * self.images_per_block();
                let images = self.images_per_block().min(self.batch - first);
                first * per_image..(first + images) * per_image
            }
            bands => {
                let (image, band) = (b / bands, b % bands);
                let first_row = band * self.band_rows();
                let rows = self.band_rows().min(self.tiles_h - first_row);
                let start = image * per_image + first_row * self.tiles_w;
                start..start + rows * self.tiles_w
            }
        }
    }

    /// Most tiles in one forward block.
    fn forward_block_max_tiles(&self) -> usize {
        if let Some(per_block) = self.even_split_tiles() {
            return per_block;
        }
        match self.bands_per_image() {
            0 => self.images_per_block().min(self.batch) * self.tiles_per_image(),
            _ => self.band_rows().min(self.tiles_h) * self.tiles_w,
        }
    }

    /// Per-thread buffer length for one forward block: its transformed inputs and products.
    fn forward_scratch_len(&self) -> usize {
        self.alpha2() * self.forward_block_max_tiles() * (self.channels + self.filters)
    }

    /// Filters go in groups of whole AVX-512 vectors (AVX2's where the count is not a
    /// multiple of 16), at least this many filters a group: fewer would leave the products
    /// too narrow to pay for the input transform each group repeats.
    const MIN_GROUP_FILTERS: usize = 64;
    /// The narrowest group when there are fewer blocks than threads.
    const MIN_IDLE_GROUP_FILTERS: usize = 32;

    /// Filter groups per block: one when the blocks alone give every thread two or more to
    /// do, else enough groups for that (batch 1 on small feature maps).
    fn filter_groups(&self, blocks: usize) -> usize {
        let threads = rayon::current_num_threads();
        let wanted = (2 * threads).div_ceil(blocks.max(1));
        let unit = if self.filters.is_multiple_of(16) { 16 } else { 8 };
        // Fewer blocks than threads (a single tile of a small map): a thread left idle costs
        // more than repeating the few input transforms, so groups may be narrower.
        let narrowest = if blocks < threads {
            Self::MIN_IDLE_GROUP_FILTERS
        } else {
            Self::MIN_GROUP_FILTERS
        };
        let most = (self.filters / narrowest.max(unit)).max(1);
        wanted.clamp(1, most)
    }

    /// The filters of group `i` of `groups`: whole vectors, as even as they divide.
    fn filter_group(&self, i: usize, groups: usize) -> std::ops::Range<usize> {
        let unit = if self.filters.is_multiple_of(16) { 16 } else { 8 };
        let units = self.filters / unit;
        (i * units / groups * unit)..((i + 1) * units / groups * unit)
    }

    /// Adds the kernel, bias and input gradients to `dk`, `db` and `dx` (each when given),
    /// from the input `x`, the output's gradient (masked by the ReLU when `relu`) given as
    /// `grad`, and the transformed kernel `u` the forward pass left.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn backward(
        &self,
        g: &Window2d,
        (x, grad): (&[f32], OutputGrad),
        relu: bool,
        u: &[f32],
        scratch: &mut [f32],
        (dk, db, dx): Gradients,
    ) {
        let (kernel_len, partial_len, pairs) = (self.kernel_len(), self.partial_len(), self.channels * self.filters);
        let (ut, sums) = scratch[..self.backward_scratch_len()].split_at_mut(kernel_len);
        transpose_kernel(&u[..kernel_len], self.channels, self.filters, ut);
        let ut = &*ut;
        let wanted = (dk.is_some(), db.is_some());
        let in_len = g.image_len();
        let partial = |p: usize, sum: &mut [f32], dx: Option<(&mut [f32], bool)>| {
            let first = p * self.partial_images;
            let images = self.partial_images.min(self.batch - first);
            let inputs = (
                &x[first * in_len..][..images * in_len],
                grad.images(g, self.filters, first, images),
            );
            let (kernel_sum, bias_sum) = sum.split_at_mut(kernel_len);
            let sums = (wanted.0.then_some(kernel_sum), wanted.1.then_some(bias_sum));
            for_tile!(self.m, backward_partial(self, g, inputs, relu, ut, sums, dx));
        };
        match dx {
            Some((dx, fresh)) => sums
                .par_chunks_mut(partial_len)
                .zip(dx[..self.batch * in_len].par_chunks_mut(self.partial_images * in_len))
                .enumerate()
                .for_each(|(p, (sum, dx))| partial(p, sum, Some((dx, fresh)))),
            None => sums
                .par_chunks_mut(partial_len)
                .enumerate()
                .for_each(|(p, sum)| partial(p, sum, None)),
        }
        // The partial sums, added in order (in parallel over stretches of values).
        let (total, rest) = sums.split_at_mut(partial_len);
        const STRETCH: usize = 4096;
        total.par_chunks_mut(STRETCH).enumerate().for_each(|(i, total)| {
            for sum in rest.chunks_exact(partial_len) {
                let sum = &sum[i * STRETCH..][..total.len()];
                widest(|| total.iter_mut().zip(sum).for_each(|(t, s)| *t += s));
            }
        });
        let (kernel_total, bias_total) = total.split_at(kernel_len);
        if let Some(dk) = dk {
            assert!(dk.len() >= 9 * pairs, "winograd: kernel gradient too short");
            for_tile!(self.m, kernel_backward(kernel_total, pairs, dk));
        }
        if let Some(db) = db {
            db.iter_mut().zip(bias_total).for_each(|(d, s)| *d += s);
        }
    }
}

/// One partial sum's run of images, block after block: the transformed output gradient, then
/// the kernel-gradient products and bias sums (into `sums`, written by the first block) and
/// the input gradient (added into `dx`).
#[allow(clippy::too_many_arguments)]
fn backward_partial<const A: usize, const M: usize>(
    w: &Winograd,
    g: &Window2d,
    (x, grad): (&[f32], OutputGrad),
    relu: bool,
    ut: &[f32],
    (mut kernel_sum, mut bias_sum): (Option<&mut [f32]>, Option<&mut [f32]>),
    mut dx: Option<(&mut [f32], bool)>,
) {
    let in_len = g.image_len();
    let images = x.len() / in_len;
    if let Some(bias_sum) = bias_sum.as_deref_mut() {
        bias_sum.fill(0.0);
    }
    with_scratch(w.block_scratch_len(), |scratch| {
        for (block, first) in (0..images).step_by(w.block_images).enumerate() {
            let count = w.block_images.min(images - first);
            let block_inputs = (
                &x[first * in_len..][..count * in_len],
                grad.images(g, w.filters, first, count),
            );
            let sums = (
                kernel_sum.as_deref_mut().map(|s| (s, block > 0)),
                bias_sum.as_deref_mut(),
            );
            let dx = dx
                .as_mut()
                .map(|(d, fresh)| (&mut d[first * in_len..][..count * in_len], *fresh));
            backward_block::<A, M>(w, g, block_inputs, relu, ut, scratch, sums, dx);
        }
    });
}

/// `ut[ξ][out][in] = u[ξ][in][out]`.
fn transpose_kernel(u: &[f32], channels: usize, filters: usize, ut: &mut [f32]) {
    let pairs = channels * filters;
    ut.par_chunks_mut(pairs).zip(u.par_chunks(pairs)).for_each(|(ut, u)| {
        for (c, row) in u.chunks_exact(filters).enumerate() {
            for (f, &value) in row.iter().enumerate() {
                ut[f * channels + c] = value;
            }
        }
    });
}

dispatch_simd!(kernel_forward<A, M> => kernel_forward_body(kernel: &[f32], pairs: usize, u: &mut [f32]));
dispatch_simd!(kernel_backward<A, M> => kernel_backward_body(du: &[f32], pairs: usize, dk: &mut [f32]));
// AVX-512's sixteen lanes need channel and filter counts that are multiples of 16; other
// multiples of 8 run on AVX2.
dispatch_simd!(forward_block<A, M> => forward_block_body(
    w: &Winograd, g: &Window2d, x: &[f32], tiles: std::ops::Range<usize>,
    filters: std::ops::Range<usize>, u: &[f32], shifts: (Option<&[f32]>, Option<&[f32]>), relu: bool,
    pool: Option<&Window2d>, scratch: &mut [f32], y: &SharedOutput
) wide: w.fits_wide_vectors());

/// The output of a forward pass, written by several blocks at once: each block writes the
/// outputs of its own tiles and filters only, so no two threads write the same value.
struct SharedOutput(*mut f32);

// SAFETY: the blocks write disjoint parts of the output (see `Winograd::forward`).
unsafe impl Sync for SharedOutput {}
dispatch_simd!(backward_block<A, M> => backward_block_body(
    w: &Winograd, g: &Window2d, inputs: (&[f32], OutputGrad), relu: bool, ut: &[f32],
    scratch: &mut [f32], sums: BlockSums, dx: Option<(&mut [f32], bool)>
) wide: w.fits_wide_vectors());

#[inline(always)]
fn kernel_forward_body<S: Simd, const A: usize, const M: usize>(s: S, kernel: &[f32], pairs: usize, u: &mut [f32]) {
    let tile = &Tile::<A, M>::MATRICES;
    for p in (0..pairs).step_by(S::LANES) {
        let width = S::LANES.min(pairs - p);
        let mut taps = [[s.splat(0.0); 3]; 3];
        for ky in 0..3 {
            for kx in 0..3 {
                taps[ky][kx] = s.load_partial(&kernel[(ky * 3 + kx) * pairs + p..], width);
            }
        }
        let transformed: [[S::V; A]; A] = sandwich(s, &tile.g, &taps);
        for i in 0..A {
            for j in 0..A {
                s.store_partial(&mut u[(i * A + j) * pairs + p..], width, transformed[i][j]);
            }
        }
    }
}

#[inline(always)]
fn kernel_backward_body<S: Simd, const A: usize, const M: usize>(s: S, du: &[f32], pairs: usize, dk: &mut [f32]) {
    let tile = &Tile::<A, M>::MATRICES;
    for p in (0..pairs).step_by(S::LANES) {
        let width = S::LANES.min(pairs - p);
        let mut grads = [[s.splat(0.0); A]; A];
        for i in 0..A {
            for j in 0..A {
                grads[i][j] = s.load_partial(&du[(i * A + j) * pairs + p..], width);
            }
        }
        let taps: [[S::V; 3]; 3] = sandwich_t(s, &tile.g, &grads);
        for ky in 0..3 {
            for kx in 0..3 {
                let at = &mut dk[(ky * 3 + kx) * pairs + p..];
                let value = s.add(s.load_partial(at, width), taps[ky][kx]);
                s.store_partial(at, width, value);
            }
        }
    }
}

/// Where an input tile lies in its image: the offset of its top-left value (negative in the
/// padding) and which of its α rows and columns are inside the image.
struct InputTile<const A: usize> {
    offset: isize,
    rows: [bool; A],
    cols: [bool; A],
    interior: bool,
}

impl<const A: usize> InputTile<A> {
    /// Tile `t` (row-major over the tile grid) of an image, for tiles `m` outputs wide.
    #[inline(always)]
    fn new(w: &Winograd, g: &Window2d, t: usize, m: usize) -> Self {
        let y0 = ((t / w.tiles_w) * m) as isize - g.pad_top as isize;
        let x0 = ((t % w.tiles_w) * m) as isize - g.pad_left as isize;
        let inside = |origin: isize, size: usize| {
            let mut flags = [false; A];
            for (a, flag) in flags.iter_mut().enumerate() {
                *flag = (0..size as isize).contains(&(origin + a as isize));
            }
            flags
        };
        let (rows, cols) = (inside(y0, g.height), inside(x0, g.width));
        InputTile {
            offset: (y0 * g.width as isize + x0) * g.channels as isize,
            rows,
            cols,
            interior: rows.iter().chain(&cols).all(|&inside| inside),
        }
    }

    /// Whether tap (a, b) of the tile reads the image (rather than the zero padding).
    #[inline(always)]
    fn reads(&self, a: usize, b: usize) -> bool {
        self.interior || (self.rows[a] && self.cols[b])
    }
}

/// The output positions a tile covers: its top-left offset and how many of its m rows and
/// columns are inside the output.
#[inline(always)]
fn output_tile(w: &Winograd, g: &Window2d, t: usize, m: usize) -> (usize, usize, usize) {
    let (oy, ox) = ((t / w.tiles_w) * m, (t % w.tiles_w) * m);
    (
        (oy * g.out_w + ox) * w.filters,
        m.min(g.out_h - oy),
        m.min(g.out_w - ox),
    )
}

// The tile transforms below each apply a matrix to the columns of a tile, then to the rows
// of the result, loading inputs column by column in the first pass and storing outputs row by
// row in the second: only one intermediate tile is live, so fewer values spill from registers.

/// `V = Bᵀ d B` for `LANES` channels of one input tile, `d` read from `image` (zeros in the
/// padding), `V[ξ]` written at `dst + ξ·stride`.
///
/// # Safety
/// Every tap `reads` says is inside lies inside `image` (with `LANES` channels from `image`),
/// and `dst + ξ·stride .. + LANES` is writable for every ξ < α².
#[inline(always)]
unsafe fn transform_input_tile<S: Simd, const A: usize, const M: usize>(
    s: S,
    image: *const f32,
    tile: &InputTile<A>,
    (row_step, col_step): (isize, isize),
    dst: *mut f32,
    stride: usize,
) {
    let bt = &Tile::<A, M>::MATRICES.bt;
    let origin = image.wrapping_offset(tile.offset);
    let mut left = Partial::<S::V, A, A>::new();
    for b in 0..A {
        let mut column = [s.splat(0.0); A];
        for a in 0..A {
            if tile.reads(a, b) {
                let at = origin.wrapping_offset(a as isize * row_step + b as isize * col_step);
                // SAFETY: the caller's contract for taps inside the image.
                column[a] = unsafe { s.load_ptr(at) };
            }
        }
        let mixed = mix(s, bt, &column);
        for i in 0..A {
            left.set(i, b, mixed[i]);
        }
    }
    // SAFETY: the loop above set every element.
    let left = unsafe { left.finished() };
    for i in 0..A {
        let row = mix(s, bt, &left[i]);
        for j in 0..A {
            // SAFETY: the caller's contract.
            unsafe { s.store_ptr(dst.add((i * A + j) * stride), row[j]) };
        }
    }
}

/// The first pass of an output transform, `Aᵀ M` (the tile's columns mixed), for `LANES`
/// channels: `M[ξ]` read at `src + ξ·stride`.
///
/// # Safety
/// Every read must be in bounds, `LANES` values each.
#[inline(always)]
unsafe fn output_columns<S: Simd, const A: usize, const M: usize>(
    s: S,
    src: *const f32,
    stride: usize,
) -> Partial<S::V, M, A> {
    let at = &Tile::<A, M>::MATRICES.at;
    let mut left = Partial::<S::V, M, A>::new();
    for b in 0..A {
        let mut column = [s.splat(0.0); A];
        for a in 0..A {
            // SAFETY: the caller's contract.
            column[a] = unsafe { s.load_ptr(src.add((a * A + b) * stride)) };
        }
        let mixed = mix(s, at, &column);
        for i in 0..M {
            left.set(i, b, mixed[i]);
        }
    }
    left
}

/// `Y = Aᵀ M A (+ shift) (+ residual)`, then `max(Y, 0)` when `relu`, for `LANES` channels of
/// one output tile: `M[ξ]` read at `src + ξ·stride`, output (i, j) written at
/// `dst + i·row_step + j·col_step` (and the residual, when given, read at the same offset from
/// its pointer) for the `rows × cols` outputs inside the image.
///
/// # Safety
/// Reads and writes as described must be in bounds, `LANES` values each.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn transform_output_tile<S: Simd, const A: usize, const M: usize>(
    s: S,
    src: *const f32,
    stride: usize,
    (dst, residual): (*mut f32, Option<*const f32>),
    (row_step, col_step): (usize, usize),
    (rows, cols): (usize, usize),
    shift: S::V,
    relu: bool,
) {
    let at = &Tile::<A, M>::MATRICES.at;
    // SAFETY: the caller's contract.
    let left = unsafe { output_columns::<S, A, M>(s, src, stride) };
    // SAFETY: `output_columns` set every element.
    let left = unsafe { left.finished() };
    for i in 0..rows {
        let row = mix(s, at, &left[i]);
        for j in 0..cols {
            let at = i * row_step + j * col_step;
            let mut value = s.add(row[j], shift);
            if let Some(residual) = residual {
                // SAFETY: the caller's contract (the residual has the output's layout).
                value = s.add(value, unsafe { s.load_ptr(residual.add(at)) });
            }
            if relu {
                value = s.max(value, s.splat(0.0));
            }
            // SAFETY: the caller's contract.
            unsafe { s.store_ptr(dst.add(at), value) };
        }
    }
}

/// `dM = A dY Aᵀ` for `LANES` channels of one output tile: `dY` (i, j) read at
/// `dy + i·row_step + j·col_step` for the `rows × cols` outputs inside the image (zero
/// beyond), masked where `y` (same offsets) is not positive when `relu`; `dM[ξ]` written at
/// `dst + ξ·stride`. Returns the sum of the (masked) gradients read: the tile's bias gradient.
///
/// # Safety
/// Reads and writes as described must be in bounds, `LANES` values each.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
unsafe fn transform_grad_tile<S: Simd, const A: usize, const M: usize>(
    s: S,
    (dy, y): (*const f32, *const f32),
    (row_step, col_step): (usize, usize),
    (rows, cols): (usize, usize),
    relu: bool,
    dst: *mut f32,
    stride: usize,
) -> S::V {
    let at = &Tile::<A, M>::MATRICES.at;
    let mut total = s.splat(0.0);
    let mut left = Partial::<S::V, A, M>::new();
    for b in 0..M {
        let mut column = [s.splat(0.0); M];
        if b < cols {
            for a in 0..rows {
                let offset = a * row_step + b * col_step;
                // SAFETY: the caller's contract.
                let mut grad = unsafe { s.load_ptr(dy.add(offset)) };
                if relu {
                    grad = s.keep_where_positive(grad, unsafe { s.load_ptr(y.add(offset)) });
                }
                total = s.add(total, grad);
                column[a] = grad;
            }
        }
        let mixed = mix_t(s, at, &column);
        for i in 0..A {
            left.set(i, b, mixed[i]);
        }
    }
    // SAFETY: the loop above set every element.
    let left = unsafe { left.finished() };
    for i in 0..A {
        let row = mix_t(s, at, &left[i]);
        for j in 0..A {
            // SAFETY: the caller's contract.
            unsafe { s.store_ptr(dst.add((i * A + j) * stride), row[j]) };
        }
    }
    total
}

/// `dx += B dV Bᵀ` for `LANES` channels of one input tile: `dV[ξ]` read at `src + ξ·stride`,
/// added into the taps of `image` inside the image (as [`transform_input_tile`] reads them).
///
/// # Safety
/// As for [`transform_input_tile`], with `image` writable and `src` readable.
#[inline(always)]
unsafe fn transform_input_grad_tile<S: Simd, const A: usize, const M: usize>(
    s: S,
    src: *const f32,
    stride: usize,
    image: *mut f32,
    tile: &InputTile<A>,
    (row_step, col_step): (isize, isize),
) {
    let bt = &Tile::<A, M>::MATRICES.bt;
    let origin = image.wrapping_offset(tile.offset);
    let mut left = Partial::<S::V, A, A>::new();
    for b in 0..A {
        let mut column = [s.splat(0.0); A];
        for a in 0..A {
            // SAFETY: the caller's contract.
            column[a] = unsafe { s.load_ptr(src.add((a * A + b) * stride)) };
        }
        let mixed = mix_t(s, bt, &column);
        for i in 0..A {
            left.set(i, b, mixed[i]);
        }
    }
    // SAFETY: the loop above set every element.
    let left = unsafe { left.finished() };
    for i in 0..A {
        let row = mix_t(s, bt, &left[i]);
        for j in 0..A {
            if tile.reads(i, j) {
                let at = origin.wrapping_offset(i as isize * row_step + j as isize * col_step);
                // SAFETY: the caller's contract for taps inside the image.
                unsafe { s.store_ptr(at, s.add(s.load_ptr(at), row[j])) };
            }
        }
    }
}

/// `V = Bᵀ d B` for the tiles `tiles` (numbered over the images of `x`, see
/// [`Winograd::forward`]), into `v` (`[tile][ξ][channel]`).
#[inline(always)]
fn transform_inputs<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &Window2d,
    x: &[f32],
    tiles: std::ops::Range<usize>,
    v: &mut [f32],
) {
    let (c, per_image) = (w.channels, w.tiles_per_image());
    let images = x.len() / g.image_len();
    assert!(c % S::LANES == 0 && x.len() == images * g.image_len() && tiles.end <= images * per_image);
    assert!(v.len() >= tiles.len() * A * A * c);
    let steps = ((g.width * c) as isize, c as isize);
    for (i, tile_number) in tiles.enumerate() {
        let (n, t) = (tile_number / per_image, tile_number % per_image);
        let image = &x[n * g.image_len()..][..g.image_len()];
        let tile = InputTile::<A>::new(w, g, t, M);
        let dst = v[i * A * A * c..].as_mut_ptr();
        for c0 in (0..c).step_by(S::LANES) {
            // SAFETY: taps inside the image read LANES of its `c` channels from
            // `c0 + LANES ≤ c`,
            // and the tile's α²·c values of `v` were checked above.
            unsafe { transform_input_tile::<S, A, M>(s, image[c0..].as_ptr(), &tile, steps, dst.add(c0), c) };
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn forward_block_body<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &Window2d,
    x: &[f32],
    tiles: std::ops::Range<usize>,
    filters: std::ops::Range<usize>,
    u: &[f32],
    (bias, residual): (Option<&[f32]>, Option<&[f32]>),
    relu: bool,
    pool: Option<&Window2d>,
    scratch: &mut [f32],
    y: &SharedOutput,
) {
    let (c, f, per_image) = (w.channels, w.filters, w.tiles_per_image());
    let count = tiles.len();
    let (f0, width) = (filters.start, filters.len());
    assert!(f % S::LANES == 0 && f0 % S::LANES == 0 && width % S::LANES == 0 && filters.end <= f);
    let (v, products) = scratch.split_at_mut(A * A * count * c);
    assert!(products.len() >= count * A * A * f);
    transform_inputs::<S, A, M>(s, w, g, x, tiles.clone(), v);
    for xi in 0..A * A {
        let a = Strided {
            data: &v[xi * c..],
            row_stride: A * A * c,
            col_stride: 1,
        };
        let b = (&u[xi * c * f + f0..], f);
        small_gemm(
            s,
            (count, c, width),
            a,
            b,
            (&mut products[xi * f + f0..], A * A * f),
            false,
        );
    }
    if let Some(pool) = pool {
        pooled_outputs::<S, A, M>(s, w, g, pool, tiles, filters, products, bias, y);
        return;
    }
    let out_len = g.positions() * f;
    let steps = (g.out_w * f, f);
    for (i, tile_number) in tiles.enumerate() {
        let (n, t) = (tile_number / per_image, tile_number % per_image);
        assert!(n < w.batch);
        let (offset, rows, cols) = output_tile(w, g, t, M);
        let src = products[i * A * A * f..].as_ptr();
        // SAFETY: image n's outputs lie in the caller's `y` (`Winograd::forward` checked its
        // length); this block alone writes its tiles' outputs of these filters.
        let dst = unsafe { y.0.add(n * out_len + offset) };
        // The residual's values at the same positions (`Winograd::forward` checked its length).
        let residual = residual.map(|r| r[n * out_len + offset..].as_ptr());
        for c0 in filters.clone().step_by(S::LANES) {
            let shift = bias.map_or(s.splat(0.0), |b| s.load(&b[c0..]));
            // SAFETY: the tile's α²·f products were checked above, and outputs
            // (oy + i, ox + j) with i < rows, j < cols lie inside this image; c0 + LANES ≤ f.
            unsafe {
                let (src, dst) = (src.add(c0), dst.add(c0));
                let residual = residual.map(|r| r.add(c0));
                transform_output_tile::<S, A, M>(s, src, f, (dst, residual), steps, (rows, cols), shift, relu);
            }
        }
    }
}

/// The output transforms of [`forward_block_body`] with a max pooling folded in: each tile's
/// pooling windows (whole, as [`Winograd::max_pool_folds`] ensures) reduced to their largest
/// output after the ReLU, stored in the pooled image.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pooled_outputs<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &Window2d,
    pool: &Window2d,
    tiles: std::ops::Range<usize>,
    filters: std::ops::Range<usize>,
    products: &[f32],
    bias: Option<&[f32]>,
    y: &SharedOutput,
) {
    let (f, per_image) = (w.filters, w.tiles_per_image());
    let pooled_len = pool.positions() * f;
    let steps = (pool.out_w * f, f);
    for (i, tile_number) in tiles.enumerate() {
        let (n, t) = (tile_number / per_image, tile_number % per_image);
        assert!(n < w.batch);
        let (oy, ox) = ((t / w.tiles_w) * M, (t % w.tiles_w) * M);
        let (py, px) = (oy / pool.stride_h, ox / pool.stride_w);
        // Each output row and column's window, counted from the tile's first.
        let local = |places: [Option<(usize, usize)>; M], first: usize| places.map(|p| p.map(|(p, _)| p - first));
        let rows = pool_places::<M>(oy, M.min(g.out_h - oy), (pool.stride_h, pool.window_h, pool.out_h));
        let cols = pool_places::<M>(ox, M.min(g.out_w - ox), (pool.stride_w, pool.window_w, pool.out_w));
        let (rows, cols) = (local(rows, py), local(cols, px));
        if rows.iter().all(Option::is_none) || cols.iter().all(Option::is_none) {
            continue; // Rows or columns the pooling leaves out.
        }
        let src = products[i * A * A * f..].as_ptr();
        // SAFETY: a window of this tile exists, so (py, px) is a pooled position of image n,
        // inside the caller's `y` (`Winograd::forward_max_pooled` checked its length); this
        // block alone writes its tiles' windows of these filters.
        let dst = unsafe { y.0.add(n * pooled_len + (py * pool.out_w + px) * f) };
        for c0 in filters.clone().step_by(S::LANES) {
            let shift = bias.map_or(s.splat(0.0), |b| s.load(&b[c0..]));
            // SAFETY: the tile's α²·f products were checked by the caller, and each window
            // (py + r, px + c) with a place lies inside the pooled image; c0 + LANES ≤ f.
            unsafe {
                transform_pooled_tile::<S, A, M>(s, src.add(c0), f, dst.add(c0), steps, (rows, cols), shift);
            }
        }
    }
}

/// [`transform_output_tile`] with the ReLU, then the largest output of each pooling window:
/// output (i, j) falls in window (`rows[i]`, `cols[j]`) counted from the tile's first, or in
/// none; window (r, c) written at `dst + r·row_step + c·col_step`.
///
/// # Safety
/// Reads at `src + ξ·stride` and writes for every window with a place must be in bounds,
/// `LANES` values each.
#[inline(always)]
unsafe fn transform_pooled_tile<S: Simd, const A: usize, const M: usize>(
    s: S,
    src: *const f32,
    stride: usize,
    dst: *mut f32,
    (row_step, col_step): (usize, usize),
    (rows, cols): ([Option<usize>; M], [Option<usize>; M]),
    shift: S::V,
) {
    let at = &Tile::<A, M>::MATRICES.at;
    // SAFETY: the caller's contract.
    let left = unsafe { output_columns::<S, A, M>(s, src, stride) };
    // SAFETY: `output_columns` set every element.
    let left = unsafe { left.finished() };
    let mut largest: [[Option<S::V>; M]; M] = [[None; M]; M];
    for i in 0..M {
        let Some(r) = rows[i] else { continue };
        let row = mix(s, at, &left[i]);
        for j in 0..M {
            let Some(c) = cols[j] else { continue };
            // The ReLU of each output first, as the unpooled pass stores it.
            let value = s.max(s.add(row[j], shift), s.splat(0.0));
            largest[r][c] = Some(largest[r][c].map_or(value, |so_far| s.max(so_far, value)));
        }
    }
    for (r, windows) in largest.iter().enumerate() {
        for (c, window) in windows.iter().enumerate() {
            if let Some(value) = window {
                // SAFETY: the caller's contract.
                unsafe { s.store_ptr(dst.add(r * row_step + c * col_step), *value) };
            }
        }
    }
}

/// `dM` of tile `t` of image `n` (all channels; `dM[ξ]` of channel `c` written at
/// `dst + ξ·f + c`), from the output gradient `dy` (masked where `y` is not positive when
/// `relu`); adds the tile's gradients to `bias_sum` when given.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn plain_grad_tile<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &Window2d,
    (y, dy): (&[f32], &[f32]),
    (n, t): (usize, usize),
    relu: bool,
    dst: &mut [f32],
    mut bias_sum: Option<&mut [f32]>,
) {
    let f = w.filters;
    let out_len = g.positions() * f;
    let (offset, rows, cols) = output_tile(w, g, t, M);
    let start = n * out_len + offset;
    // The tile's outputs lie inside image n's: the last one's vectors end by (n + 1)·out_len.
    assert!(start + ((rows - 1) * g.out_w + cols - 1) * f + f <= (n + 1) * out_len);
    assert!(y.len() >= (n + 1) * out_len && dy.len() >= (n + 1) * out_len && dst.len() >= A * A * f);
    assert!(bias_sum.as_ref().is_none_or(|b| b.len() >= f));
    let steps = (g.out_w * f, f);
    let (dy, y, dst) = (dy.as_ptr(), y.as_ptr(), dst.as_mut_ptr());
    for c0 in (0..f).step_by(S::LANES) {
        // SAFETY: the reads stay inside image n's outputs and the writes inside the tile's
        // α²·f values of `dm` (asserted above), with c0 + LANES ≤ f.
        let total = unsafe {
            let at = start + c0;
            transform_grad_tile::<S, A, M>(s, (dy.add(at), y.add(at)), steps, (rows, cols), relu, dst.add(c0), f)
        };
        if let Some(bias_sum) = bias_sum.as_deref_mut() {
            let sum = s.add(s.load(&bias_sum[c0..]), total);
            s.store(&mut bias_sum[c0..], sum);
        }
    }
}

/// Which pooling window and which tap of it each of a tile's `M` output rows (or columns)
/// falls in, if any: the first of them at `first`, `inside` of them inside the output.
#[inline(always)]
fn pool_places<const M: usize>(
    first: usize,
    inside: usize,
    (stride, window, out): (usize, usize, usize),
) -> [Option<(usize, usize)>; M] {
    let mut places = [None; M];
    for (i, place) in places.iter_mut().enumerate().take(inside) {
        let (p, tap) = ((first + i) / stride, (first + i) % stride);
        *place = (p < out && tap < window).then_some((p, tap));
    }
    places
}

/// [`plain_grad_tile`] with the output gradient rebuilt from a max pooling folded into this
/// convolution (see [`OutputGrad::Pooled`]). Where each output falls in the pooling is worked
/// out once for the tile, not once per vector of channels.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn pooled_grad_tile<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &Window2d,
    pool: &Window2d,
    (pooled, argmax, dp): (&[f32], &[f32], &[f32]),
    (n, t): (usize, usize),
    relu: bool,
    dst: &mut [f32],
    mut bias_sum: Option<&mut [f32]>,
) {
    let f = w.filters;
    let (oy, ox) = ((t / w.tiles_w) * M, (t % w.tiles_w) * M);
    let (rows, cols) = (M.min(g.out_h - oy), M.min(g.out_w - ox));
    let row_places = pool_places::<M>(oy, rows, (pool.stride_h, pool.window_h, pool.out_h));
    let col_places = pool_places::<M>(ox, cols, (pool.stride_w, pool.window_w, pool.out_w));
    // For each output of the tile that a pooling window reads: where its window's values
    // start, and its tap's number (as the argmax records it).
    let image = n * pool.positions() * f;
    let mut sources = [[None; M]; M];
    for i in 0..M {
        for j in 0..M {
            if let (Some((py, ty)), Some((px, tx))) = (row_places[i], col_places[j]) {
                let at = image + (py * pool.out_w + px) * f;
                assert!(at + f <= pooled.len() && at + f <= argmax.len() && at + f <= dp.len());
                sources[i][j] = Some((at, (ty * pool.window_w + tx) as f32));
            }
        }
    }
    assert!(dst.len() >= A * A * f && bias_sum.as_ref().is_none_or(|b| b.len() >= f));
    let matrices = &Tile::<A, M>::MATRICES;
    for c0 in (0..f).step_by(S::LANES) {
        let mut grads = [[s.splat(0.0); M]; M];
        let mut total = s.splat(0.0);
        // Column by column, as `transform_grad_tile` sums: the bias gradient is then bit for
        // bit that of the unfolded rules (the values skipped here are zeros there).
        for j in 0..M {
            for i in 0..M {
                let Some((at, tap)) = sources[i][j] else {
                    continue;
                };
                // SAFETY: `at + f` lies inside the three arrays (asserted above), c0 + LANES ≤ f.
                let (argmax, pooled, dp) = unsafe {
                    let at = at + c0;
                    (
                        s.load_ptr(argmax.as_ptr().add(at)),
                        s.load_ptr(pooled.as_ptr().add(at)),
                        s.load_ptr(dp.as_ptr().add(at)),
                    )
                };
                let mut hit = s.equal(argmax, s.splat(tap));
                if relu {
                    hit = s.and(hit, s.greater(pooled, s.splat(0.0)));
                }
                grads[i][j] = s.and(hit, dp);
                total = s.add(total, grads[i][j]);
            }
        }
        let transformed: [[S::V; A]; A] = sandwich_t(s, &matrices.at, &grads);
        for i in 0..A {
            for j in 0..A {
                s.store(&mut dst[(i * A + j) * f + c0..], transformed[i][j]);
            }
        }
        if let Some(bias_sum) = bias_sum.as_deref_mut() {
            let sum = s.add(s.load(&bias_sum[c0..]), total);
            s.store(&mut bias_sum[c0..], sum);
        }
    }
}

#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn backward_block_body<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &Window2d,
    (x, grad): (&[f32], OutputGrad),
    relu: bool,
    ut: &[f32],
    scratch: &mut [f32],
    (kernel_sum, mut bias_sum): BlockSums,
    dx: Option<(&mut [f32], bool)>,
) {
    let (c, f, per_image) = (w.channels, w.filters, w.tiles_per_image());
    let images = x.len() / g.image_len();
    let tiles = images * per_image;
    let (v, dm) = scratch.split_at_mut(A * A * tiles * c);
    assert!(f % S::LANES == 0 && dm.len() >= tiles * A * A * f);
    assert!(bias_sum.as_ref().is_none_or(|b| b.len() >= f));
    // dM = A dY Aᵀ, with dY masked by the ReLU when it is fused.
    for n in 0..images {
        for t in 0..per_image {
            let dst = &mut dm[(n * per_image + t) * A * A * f..][..A * A * f];
            let bias_sum = bias_sum.as_deref_mut();
            match grad {
                OutputGrad::Plain { y, dy } => {
                    plain_grad_tile::<S, A, M>(s, w, g, (y, dy), (n, t), relu, dst, bias_sum)
                }
                OutputGrad::Pooled {
                    pool,
                    pooled,
                    argmax,
                    dp,
                } => pooled_grad_tile::<S, A, M>(s, w, g, pool, (pooled, argmax, dp), (n, t), relu, dst, bias_sum),
            }
        }
    }
    if let Some((sum, accumulate)) = kernel_sum {
        transform_inputs::<S, A, M>(s, w, g, x, 0..tiles, v);
        for xi in 0..A * A {
            let a = Strided {
                data: &v[xi * c..],
                row_stride: 1,
                col_stride: A * A * c,
            };
            let b = (&dm[xi * f..], A * A * f);
            small_gemm(s, (c, tiles, f), a, b, (&mut sum[xi * c * f..][..c * f], f), accumulate);
        }
    }
    let Some((dx, fresh)) = dx else { return };
    if fresh {
        // Cleared here, while this block's images are about to be in cache anyway.
        dx.fill(0.0);
    }
    // dV = dM·Uᵀ, into the buffer V used.
    let dv = v;
    for xi in 0..A * A {
        let a = Strided {
            data: &dm[xi * f..],
            row_stride: A * A * f,
            col_stride: 1,
        };
        let b = (&ut[xi * c * f..][..c * f], c);
        small_gemm(s, (tiles, f, c), a, b, (&mut dv[xi * c..], A * A * c), false);
    }
    assert!(c % S::LANES == 0 && dx.len() == x.len() && dv.len() >= tiles * A * A * c);
    let steps = ((g.width * c) as isize, c as isize);
    for (n, dx) in dx.chunks_exact_mut(g.image_len()).enumerate() {
        for t in 0..per_image {
            let tile = InputTile::<A>::new(w, g, t, M);
            let src = dv[(n * per_image + t) * A * A * c..].as_ptr();
            for c0 in (0..c).step_by(S::LANES) {
                // SAFETY: the tile's α²·c values of `dv` were checked above; taps inside the
                // image address LANES of its channels from c0 + LANES ≤ c.
                unsafe {
                    let image = dx[c0..].as_mut_ptr();
                    transform_input_grad_tile::<S, A, M>(s, src.add(c0), c, image, &tile, steps);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A 3×3 convolution with stride 1 and "same" padding on `batch` images of `side`².
    fn same_3x3(batch: usize, side: usize, channels: usize) -> Window2d {
        padded_3x3(batch, side, channels, 1)
    }

    /// A 3×3 convolution with stride 1 on `batch` images of `side`², padded by `pad` on
    /// each side.
    pub(super) fn padded_3x3(batch: usize, side: usize, channels: usize, pad: usize) -> Window2d {
        Window2d {
            batch,
            height: side,
            width: side,
            channels,
            window_h: 3,
            window_w: 3,
            stride_h: 1,
            stride_w: 1,
            dilation_h: 1,
            dilation_w: 1,
            pad_top: pad,
            pad_left: pad,
            out_h: side + 2 * pad - 2,
            out_w: side + 2 * pad - 2,
        }
    }

    /// ResNet50's last stage at batch 1 (7×7 maps, 512 channels: four 4×4 tiles, a 37 MB
    /// transformed kernel, or 16 tiles of 2×2) is left to the plain product; the same layer on
    /// four images and the 14×14 stage at batch 1 stream the smaller kernel of 2×2 tiles (64 and
    /// 49 of them); the 14×14 stage on eight images (128 tiles of 4×4) and a small layer whose
    /// transformed kernel stays in cache (the MNIST cnn's, one tile) keep the cheapest tiles.
    #[test]
    fn a_transformed_kernel_from_memory_needs_enough_tiles() {
        let tiles = |plan: Winograd| (plan.m, plan.batch * plan.tiles_per_image());
        assert_eq!(Winograd::plan(&same_3x3(1, 7, 512), 512), None);
        assert_eq!(Winograd::plan(&same_3x3(4, 7, 512), 512).map(tiles), Some((2, 64)));
        assert_eq!(Winograd::plan(&same_3x3(1, 14, 256), 256).map(tiles), Some((2, 49)));
        assert_eq!(Winograd::plan(&same_3x3(8, 14, 256), 256).map(tiles), Some((4, 128)));
        assert_eq!(Winograd::plan(&same_3x3(1, 3, 64), 64).map(tiles), Some((3, 1)));
    }
}
