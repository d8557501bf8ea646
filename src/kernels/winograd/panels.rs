//! Winograd's forward pass for few tiles, in passes no gradient is asked of (inference on a
//! single image: ResNet's 28×28, 14×14 and 7×7 maps at batch 1).
//!
//! The blocked forward pass cuts the tiles into cache-sized blocks and multiplies each block
//! by the whole transformed kernel. With few tiles the blocks are short, and each one reads the
//! kernel again, rows a power of two apart that crowd a few cache sets. Here the work runs in
//! three passes over the threads instead:
//!
//! - every tile is transformed, into `V[ξ]` (tiles × in);
//! - each product `M[ξ] = V[ξ]·U[ξ]` runs as `packed_product` runs one: the transformed
//!   kernel packed once into 64-column panels (kept with the node, like the blocked pass's), one
//!   task per panel of one position, the next panel fetched while one computes;
//! - every tile's outputs are transformed back, with the bias, residual and ReLU.
//!
//! Each output is computed the same way whatever the thread count (a task's sums run in depth
//! blocks, in order), so 1 and 2 threads, and the AVX2 and AVX-512 paths, give the same bits.
//! The rounding differs from the blocked pass's, which sums each product in one chain.

use super::{
    InputTile, PANEL, SharedOutput, Winograd, kernel_forward, output_tile, transform_input_tile, transform_output_tile,
};
use crate::kernels::packed_product::{pack_columns, panel_product};
use crate::kernels::simd::{Simd, dispatch_simd};
use rayon::prelude::*;

/// Values between the starts of two transformed tiles' rows beyond the channels: rows a power
/// of two apart would share a few cache sets.
const ROW_PAD: usize = 16;
/// Fewest tiles a thread transforms at a time.
const MIN_TILES_PER_TASK: usize = 4;

impl Winograd {
    /// Whether the forward pass runs by panels: [`Winograd::plan_inference`] said so.
    pub(crate) fn runs_by_panels(&self) -> bool {
        self.by_panels
    }

    /// The batch's tiles.
    fn tiles(&self) -> usize {
        self.batch * self.tiles_per_image()
    }

    /// Values [`Winograd::forward_by_panels`] keeps in `saved`: the packed transformed kernel,
    /// then room for the transformed tiles and the products.
    pub(crate) fn by_panels_len(&self) -> usize {
        self.kernel_len() + self.alpha2() * self.tiles() * (self.channels + ROW_PAD + self.filters)
    }

    /// [`Winograd::forward`] by panels (see the module's notes), `saved` holding
    /// [`Winograd::by_panels_len`] values: when `transformed`, an earlier call with the same
    /// weights left the packed transformed kernel at its start and `kernel` is not read.
    ///
    /// Panics unless [`Winograd::runs_by_panels`], or if a slice is shorter than the shapes say
    /// (bugs in the caller).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn forward_by_panels(
        &self,
        g: &super::Window2d,
        x: &[f32],
        (kernel, saved, transformed): (&[f32], &mut [f32], bool),
        bias: Option<&[f32]>,
        residual: Option<&[f32]>,
        relu: bool,
        y: &mut [f32],
    ) {
        assert!(
            self.runs_by_panels(),
            "winograd: forward by panels of a convolution it does not take"
        );
        let (tiles, c, f) = (self.tiles(), self.channels, self.filters);
        let out_len = self.batch * g.positions() * f;
        assert!(saved.len() >= self.by_panels_len() && x.len() >= self.batch * g.image_len() && y.len() >= out_len);
        assert!(bias.is_none_or(|b| b.len() >= f) && residual.is_none_or(|r| r.len() >= out_len));
        let (u, rest) = saved.split_at_mut(self.kernel_len());
        let row_stride = c + ROW_PAD;
        let (v, m) = rest.split_at_mut(self.alpha2() * tiles * row_stride);
        let m = &mut m[..self.alpha2() * tiles * f];
        if !transformed {
            self.pack_transformed_kernel(kernel, u);
        }
        let x = &x[..self.batch * g.image_len()];
        let chunk = tiles.div_ceil(2 * rayon::current_num_threads()).max(MIN_TILES_PER_TASK);
        let chunks = tiles.div_ceil(chunk);
        let tile_run = |i: usize| i * chunk..((i + 1) * chunk).min(tiles);
        let v_out = SharedOutput(v.as_mut_ptr());
        (0..chunks).into_par_iter().for_each(|i| {
            for_tile!(self.m, transform_tiles(self, g, x, tile_run(i), &v_out));
        });
        let panels = f / PANEL;
        let (v, u) = (&*v, &*u);
        m.par_chunks_mut(tiles * PANEL).enumerate().for_each(|(task, sums)| {
            let (xi, panel) = (task / panels, task % panels);
            let rows = &v[xi * tiles * row_stride..][..tiles * row_stride];
            let panel_values = &u[xi * c * f + panel * PANEL * c..][..c * PANEL];
            panel_product((rows, row_stride), panel_values, sums, (tiles, c, PANEL));
        });
        let (m, y_out) = (&*m, SharedOutput(y.as_mut_ptr()));
        (0..chunks).into_par_iter().for_each(|i| {
            for_tile!(
                self.m,
                output_tiles(self, g, tile_run(i), m, (bias, residual), relu, &y_out)
            );
        });
    }

    /// `U[ξ] = G g Gᵀ` for every position, each `U[ξ]` (in × out) then packed into panels as
    /// `packed_product` reads them.
    fn pack_transformed_kernel(&self, kernel: &[f32], u: &mut [f32]) {
        let pairs = self.channels * self.filters;
        assert!(
            kernel.len() >= 9 * pairs && u.len() >= self.kernel_len(),
            "winograd: kernel too short"
        );
        // Made once per change of the weights, so an allocation here costs nothing per call.
        let mut plain = vec![0.0; self.kernel_len()];
        for_tile!(self.m, kernel_forward(kernel, pairs, &mut plain));
        for (plain, packed) in plain.chunks_exact(pairs).zip(u.chunks_exact_mut(pairs)) {
            pack_columns(plain, (self.channels, self.filters), packed);
        }
    }
}

dispatch_simd!(transform_tiles<A, M> => transform_tiles_body(
    w: &Winograd, g: &super::Window2d, x: &[f32], tiles: std::ops::Range<usize>, v: &SharedOutput
));
dispatch_simd!(output_tiles<A, M> => output_tiles_body(
    w: &Winograd, g: &super::Window2d, tiles: std::ops::Range<usize>, m: &[f32],
    shifts: (Option<&[f32]>, Option<&[f32]>), relu: bool, y: &SharedOutput
));

/// `V[ξ][t] = Bᵀ d B` for the batch's tiles `tiles` (numbered over the batch), written into
/// `v` (α² × tiles rows of `channels + ROW_PAD` values, which `forward_by_panels` checked).
#[inline(always)]
fn transform_tiles_body<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &super::Window2d,
    x: &[f32],
    tiles: std::ops::Range<usize>,
    v: &SharedOutput,
) {
    let (c, per_image, total) = (w.channels, w.tiles_per_image(), w.tiles());
    assert!(c.is_multiple_of(S::LANES) && tiles.end <= total && x.len() >= w.batch * g.image_len());
    let steps = ((g.width * c) as isize, c as isize);
    for t in tiles {
        let image = &x[(t / per_image) * g.image_len()..][..g.image_len()];
        let tile = InputTile::<A>::new(w, g, t % per_image, M);
        for c0 in (0..c).step_by(S::LANES) {
            // SAFETY: taps inside the image read LANES channels from `c0 + LANES ≤ c`; `v`
            // holds α² blocks of `total` rows, and tile `t`'s channels `c0..c0 + LANES` of
            // each are written by this task alone.
            unsafe {
                let dst = v.0.add(t * (c + ROW_PAD) + c0);
                transform_input_tile::<S, A, M>(s, image[c0..].as_ptr(), &tile, steps, dst, total * (c + ROW_PAD));
            }
        }
    }
}

/// The outputs of tiles `tiles`: `Y = Aᵀ M A`, plus the bias and the residual, through the
/// ReLU when `relu`, from the products `m` (`[ξ][panel][tile][64]`).
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn output_tiles_body<S: Simd, const A: usize, const M: usize>(
    s: S,
    w: &Winograd,
    g: &super::Window2d,
    tiles: std::ops::Range<usize>,
    m: &[f32],
    (bias, residual): (Option<&[f32]>, Option<&[f32]>),
    relu: bool,
    y: &SharedOutput,
) {
    let (f, per_image, total) = (w.filters, w.tiles_per_image(), w.tiles());
    assert!(f.is_multiple_of(PANEL) && tiles.end <= total && m.len() >= A * A * total * f);
    let out_len = g.positions() * f;
    let steps = (g.out_w * f, f);
    for t in tiles {
        let (n, tile) = (t / per_image, t % per_image);
        let (offset, rows, cols) = output_tile(w, g, tile, M);
        // SAFETY: image n's outputs lie in `y` (`forward_by_panels` checked its length), and
        // this task alone writes tile `t`'s.
        let dst = unsafe { y.0.add(n * out_len + offset) };
        let residual = residual.map(|r| r[n * out_len + offset..].as_ptr());
        for c0 in (0..f).step_by(S::LANES) {
            let shift = bias.map_or(s.splat(0.0), |b| s.load(&b[c0..]));
            let src = m[(c0 / PANEL) * total * PANEL + t * PANEL + c0 % PANEL..].as_ptr();
            // SAFETY: position ξ's products of this tile lie `ξ · total · f` on from `src`,
            // inside `m` (checked above); the outputs (and residual values) the tile covers
            // lie inside the image's, `c0 + LANES ≤ f`.
            unsafe {
                let residual = residual.map(|r| r.add(c0));
                transform_output_tile::<S, A, M>(
                    s,
                    src,
                    total * f,
                    (dst.add(c0), residual),
                    steps,
                    (rows, cols),
                    shift,
                    relu,
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::padded_3x3;
    use super::*;
    use crate::kernels::Window2d;
    use crate::kernels::simd::SimdLevel;

    fn values(len: usize, modulus: usize, scale: f32) -> Vec<f32> {
        (0..len).map(|i| ((i * 7919) % modulus) as f32 * scale - 0.5).collect()
    }

    /// The blocked pass's output and this module's, on a pool of `threads` threads limited to
    /// `level`.
    fn both(w: &Winograd, g: &Window2d, threads: usize, level: SimdLevel) -> (Vec<f32>, Vec<f32>) {
        let (c, f) = (g.channels, w.filters);
        let x = values(g.batch * g.image_len(), 101, 0.01);
        let kernel = values(9 * c * f, 37, 0.03);
        let bias = values(f, 11, 0.1);
        let out_len = g.batch * g.positions() * f;
        let residual = values(out_len, 23, 0.05);
        let pool = crate::kernels::simd::limited_pool(threads, level);
        pool.install(|| {
            let blocked_plan = Winograd { by_panels: false, ..*w };
            let mut u = vec![0.0; w.kernel_len()];
            let mut blocked = vec![f32::NAN; out_len];
            let shifts = (Some(&bias[..]), Some(&residual[..]));
            blocked_plan.forward(g, &x, (&kernel, &mut u, false), shifts.0, shifts.1, true, &mut blocked);
            let mut saved = vec![f32::NAN; w.by_panels_len()];
            let mut panels = vec![f32::NAN; out_len];
            w.forward_by_panels(
                g,
                &x,
                (&kernel, &mut saved, false),
                shifts.0,
                shifts.1,
                true,
                &mut panels,
            );
            // A second call reads the packed kernel the first one left.
            let mut again = vec![f32::NAN; out_len];
            w.forward_by_panels(g, &x, (&[], &mut saved, true), shifts.0, shifts.1, true, &mut again);
            assert_eq!(panels, again, "the kept kernel gives other outputs");
            (blocked, panels)
        })
    }

    /// Every tile size (partial tiles at the edges included), padding or none, one image and
    /// several, filters in one panel and several: the outputs of the blocked pass within
    /// rounding, the same bits on 1 and 2 threads and on the AVX2 and AVX-512 paths.
    #[test]
    fn matches_the_blocked_pass_and_gives_the_same_bits_everywhere() {
        // (batch, side, channels, filters, pad, tile side)
        let cases = [
            (1, 7, 32, 64, 1, 2),
            (1, 7, 16, 128, 1, 4),
            (2, 9, 48, 64, 0, 3),
            (1, 14, 64, 64, 1, 2),
            (3, 5, 16, 192, 1, 4),
        ];
        for (batch, side, channels, filters, pad, m) in cases {
            let g = padded_3x3(batch, side, channels, pad);
            let (tiles_h, tiles_w) = (g.out_h.div_ceil(m), g.out_w.div_ceil(m));
            let w = Winograd {
                m,
                tiles_h,
                tiles_w,
                batch,
                channels,
                filters,
                block_images: 1,
                partial_images: batch,
                by_panels: true,
            };
            let (blocked, reference) = both(&w, &g, 1, SimdLevel::Avx512);
            let scale = blocked.iter().fold(1.0f32, |most, v| most.max(v.abs()));
            for (i, (a, b)) in blocked.iter().zip(&reference).enumerate() {
                assert!(
                    (a - b).abs() <= 2e-5 * scale,
                    "{g:?} m={m}: output {i} is {b}, blocked {a}"
                );
            }
            for (threads, level) in [(2, SimdLevel::Avx512), (3, SimdLevel::Avx2), (2, SimdLevel::Avx2)] {
                let (_, panels) = both(&w, &g, threads, level);
                let same = panels.iter().zip(&reference).all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(same, "{g:?} m={m}: {threads} threads, {level:?} give other bits");
            }
        }
    }

    /// The inference plan runs by panels where the kernel streams from memory for few tiles
    /// (ResNet50's 28×28, 14×14 and 7×7 stages at batch 1), and not in training, nor where
    /// the kernel stays in cache or the tiles are many.
    #[test]
    fn runs_by_panels_where_the_plan_says() {
        let plan = |batch, side, channels| {
            let g = padded_3x3(batch, side, channels, 1);
            Winograd::plan_inference(&g, channels).map(|w| (w.m, w.tiles(), w.runs_by_panels()))
        };
        assert_eq!(plan(1, 7, 512), Some((2, 16, true)));
        assert_eq!(plan(1, 14, 256), Some((2, 49, true)));
        assert_eq!(plan(4, 7, 512), Some((2, 64, true)));
        assert_eq!(plan(2, 14, 256), Some((4, 32, true)));
        assert_eq!(plan(1, 28, 128), Some((4, 49, true)));
        assert_eq!(plan(1, 56, 64), Some((4, 196, false)));
        assert_eq!(plan(8, 14, 256), Some((4, 128, true)));
        assert_eq!(plan(16, 14, 256), Some((4, 256, false)));
        assert_eq!(
            Winograd::plan(&padded_3x3(1, 14, 256, 1), 256).map(|w| w.runs_by_panels()),
            Some(false)
        );
    }
}
