//! The VNNI path for convolutions read as window rows (channels not in whole quads: a grey or
//! RGB first layer) with output positions in the lanes instead of filters.
//!
//! The tiles of `int8_conv.rs` put 16 filters in a register's lanes and broadcast one quad of
//! one position at a time. A first layer's product is shallow (a 3×3 window over one channel
//! is 3 quads), so per multiply-add those tiles spend most of their time finding each
//! position's row, broadcasting, and scaling. Here a register holds the same quad of 16
//! neighbouring output positions of one output row, gathered from the image row with one
//! byte permutation (`vpermt2b`, AVX512_VBMI); each filter's quad is broadcast from the packed
//! kernel as the instruction's memory operand. A folded max pooling's taps are separate
//! registers (a pooling window's columns are every other position, so each tap column gets
//! its own permutation), maxed lane by lane. The scaled results (16 positions × 16 filters)
//! are transposed in registers into the `(position, filter)` rows of the output.
//!
//! Every step is the other paths' operation on the same value (the exact sums, their largest,
//! the correction, `sum · factor + bias`, the ReLU, the quantizing), so the bits are theirs.

use super::super::int8_matmul::{Output, Scales};
use super::tile_rows::{Int8Conv, Int8Rows, Layout, WRAP_FREE_DEPTH, quads_per_window_row};
use std::arch::x86_64::*;

/// Output positions per register.
const LANES: usize = 16;
/// The most gathered registers per group of positions (taps × window rows × quads per row).
const MAX_GATHERED: usize = 36;
/// The most permutations (tap columns × quads per window row).
const MAX_PERMUTATIONS: usize = 16;
/// Filters whose sums are accumulated together (4 filters × up to 4 taps: 16 registers).
const FILTER_GROUP: usize = 4;

/// The shape of the walk, from the convolution and its pooling.
struct Plan {
    /// Pool window columns (1 without a pool) and the pool's strides (rows, columns).
    pool_w: usize,
    pool_strides: (usize, usize),
    /// Quads per window row.
    quads_per_row: usize,
}

impl Plan {
    fn new(conv: &Int8Conv, layout: &Layout) -> Self {
        Plan {
            pool_w: layout.pool_w,
            pool_strides: layout.pool_strides,
            quads_per_row: quads_per_window_row(conv.window.window_w, conv.window.channels),
        }
    }

    /// The furthest byte a group's gather reads from its first position's window row, plus
    /// one.
    fn span(&self, conv: &Int8Conv) -> usize {
        let g = conv.window;
        ((LANES - 1) * self.pool_strides.1 + self.pool_w - 1) * g.stride_w * g.channels + 4 * self.quads_per_row
    }
}

/// Set by the tests to run the filter-lane tiles instead (as on a CPU without VBMI): both give
/// the same bits, so other tests running meanwhile are unaffected.
#[cfg(test)]
pub(super) static TILES_ONLY: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);

/// Whether these tiles run `conv` on this CPU: window rows read in place, AVX512_VBMI, a
/// group's bytes within two registers' 128, few enough registers to gather, a scaling by
/// factors (the convolutions' way, not a division) and a kernel shallow enough for the
/// pooling's shortcut.
pub(super) fn fits(conv: &Int8Conv, layout: &Layout) -> bool {
    #[cfg(test)]
    if TILES_ONLY.load(std::sync::atomic::Ordering::Relaxed) {
        return false;
    }
    if !conv.window_row_quads() || !std::arch::is_x86_feature_detected!("avx512vbmi") {
        return false;
    }
    let plan = Plan::new(conv, layout);
    let taps = layout.taps;
    matches!(taps, 1 | 2 | 4)
        && !matches!(conv.rescale.scales, Scales::Divide { .. })
        && plan.span(conv) <= 128
        && taps * conv.window.window_h * plan.quads_per_row <= MAX_GATHERED
        && plan.pool_w * plan.quads_per_row <= MAX_PERMUTATIONS
        && conv.kernel.depth() <= WRAP_FREE_DEPTH
}

/// Output rows `first..first + count` into `out` (those rows only).
///
/// # Safety
/// The CPU has AVX-512F/BW, VNNI and VBMI; `Int8Conv::check` passed; [`fits`] is true.
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
pub(super) unsafe fn conv_rows(conv: &Int8Conv, layout: &Layout, first: usize, count: usize, out: &mut Output) {
    // SAFETY: as for the whole function.
    unsafe {
        match layout.taps {
            1 => walk::<1>(conv, layout, first, count, out),
            2 => walk::<2>(conv, layout, first, count, out),
            _ => walk::<4>(conv, layout, first, count, out),
        }
    }
}

/// [`conv_rows`] for `TAPS` taps per output, a group of up to 16 positions of one output row
/// at a time.
///
/// # Safety
/// As [`conv_rows`], with `TAPS` the layout's taps.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
unsafe fn walk<const TAPS: usize>(conv: &Int8Conv, layout: &Layout, first: usize, count: usize, out: &mut Output) {
    let Int8Rows::Images(images) = conv.rows else {
        unreachable!("`fits` checked the rows are read in place")
    };
    let plan = Plan::new(conv, layout);
    let permutations = permutations(conv, &plan);
    let mut gathered = [_mm512_setzero_si512(); MAX_GATHERED];
    let end = first + count;
    let (mut o, mut n) = (first, first / layout.positions);
    let (mut py, mut px) = (first % layout.positions / layout.out_w, first % layout.out_w);
    while o < end {
        let valid = (layout.out_w - px).min(end - o).min(LANES);
        gather::<TAPS>(conv, &plan, &permutations, images, (n, py, px), &mut gathered);
        // SAFETY: as for the whole function; the output holds the task's rows.
        unsafe { filters::<TAPS>(conv, &gathered, (o, valid), first, out) };
        o += valid;
        px += valid;
        if px == layout.out_w {
            px = 0;
            py += 1;
            if py * layout.out_w == layout.positions {
                py = 0;
                n += 1;
            }
        }
    }
}

/// The byte permutations of a group: for tap column `dx` and quad `q`, lane `i` takes the 4
/// bytes of position `i`'s window row from quad `q`, relative to position 0's tap 0.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
fn permutations(conv: &Int8Conv, plan: &Plan) -> [__m512i; MAX_PERMUTATIONS] {
    let g = conv.window;
    let step = g.stride_w * g.channels;
    let mut all = [_mm512_setzero_si512(); MAX_PERMUTATIONS];
    for dx in 0..plan.pool_w {
        for q in 0..plan.quads_per_row {
            let mut bytes = [0u8; 64];
            for (i, lane) in bytes.chunks_exact_mut(4).enumerate() {
                for (b, byte) in lane.iter_mut().enumerate() {
                    // Below 128 (`fits`): a byte of one of the two registers read.
                    *byte = ((i * plan.pool_strides.1 + dx) * step + 4 * q + b) as u8;
                }
            }
            // SAFETY: 64 bytes.
            all[dx * plan.quads_per_row + q] = unsafe { _mm512_loadu_si512(bytes.as_ptr() as *const _) };
        }
    }
    all
}

/// Gathers into `gathered` the quads of the group of positions from `(py, px)` of image `n`:
/// register `(t · KH + ky) · quads_per_row + q` holds quad `q` of window row `ky` of tap `t`
/// for each position, as unsigned bytes (`x + 128`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
fn gather<const TAPS: usize>(
    conv: &Int8Conv,
    plan: &Plan,
    permutations: &[__m512i; MAX_PERMUTATIONS],
    images: &[i8],
    (n, py, px): (usize, usize, usize),
    gathered: &mut [__m512i; MAX_GATHERED],
) {
    let g = conv.window;
    let row_bytes = g.width * g.channels;
    let flip = _mm512_set1_epi8(if conv.flipped { 0 } else { i8::MIN });
    let first_column = px * plan.pool_strides.1 * g.stride_w * g.channels;
    for t in 0..TAPS {
        let (dy, dx) = (t / plan.pool_w, t % plan.pool_w);
        for ky in 0..g.window_h {
            let row = (py * plan.pool_strides.0 + dy) * g.stride_h + ky * g.dilation_h;
            let start = n * g.image_len() + row * row_bytes + first_column;
            let (low, high) = (load_within(images, start), load_within(images, start + 64));
            for q in 0..plan.quads_per_row {
                let bytes = _mm512_permutex2var_epi8(low, permutations[dx * plan.quads_per_row + q], high);
                gathered[(t * g.window_h + ky) * plan.quads_per_row + q] = _mm512_xor_si512(bytes, flip);
            }
        }
    }
}

/// The 64 bytes of `images` from `start`, zeros past its end (never read).
#[inline(always)]
fn load_within(images: &[i8], start: usize) -> __m512i {
    let available = images.len().saturating_sub(start);
    let mask = if available >= 64 {
        u64::MAX
    } else {
        (1u64 << available) - 1
    };
    // SAFETY: the masked load touches only the bytes `mask` selects, all inside `images`;
    // the pointer itself is never dereferenced outside it. The callers have AVX-512BW.
    unsafe { _mm512_maskz_loadu_epi8(mask, images.as_ptr().wrapping_add(start)) }
}

/// Every filter's results for the `valid` positions from output row `o`, 16 filters at a
/// time: sums of `FILTER_GROUP` filters over every tap and their largest, the 16 filters'
/// registers transposed into the positions' rows, then scaled (each filter's correction,
/// factor and bias a lane of one register) into the task's output (which starts at output
/// row `first`).
///
/// # Safety
/// As [`conv_rows`]; rows `o..o + valid` lie in the task's output.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
unsafe fn filters<const TAPS: usize>(
    conv: &Int8Conv,
    gathered: &[__m512i; MAX_GATHERED],
    (o, valid): (usize, usize),
    first: usize,
    out: &mut Output,
) {
    let b = conv.kernel;
    let (n, quads) = (b.width(), b.quads);
    let kernel = b.data.as_ptr();
    for chunk in (0..n).step_by(LANES) {
        // Each filter's largest sums, as `f32` bits for the transpose's shuffles.
        let mut best = [_mm512_setzero_ps(); LANES];
        for group in (0..(n - chunk).min(LANES)).step_by(FILTER_GROUP) {
            let mut sums = [[_mm512_setzero_si512(); TAPS]; FILTER_GROUP];
            for quad in 0..quads {
                let mut weights = [_mm512_setzero_si512(); FILTER_GROUP];
                for (j, weight) in weights.iter_mut().enumerate() {
                    // Filter `chunk + group + j` of the chunk's block (padding columns hold
                    // zeros), quad `quad`.
                    let at = ((chunk / LANES * quads + quad) * LANES + group + j) * 4;
                    // SAFETY: inside the packed data: the chunk is a whole block of it.
                    *weight = _mm512_set1_epi32(unsafe { std::ptr::read_unaligned(kernel.add(at) as *const i32) });
                }
                for t in 0..TAPS {
                    let x = gathered[t * quads + quad];
                    for j in 0..FILTER_GROUP {
                        sums[j][t] = _mm512_dpbusd_epi32(sums[j][t], x, weights[j]);
                    }
                }
            }
            // The biased sums cannot wrap (`fits`): their largest, corrected after.
            for j in 0..FILTER_GROUP {
                let mut largest = sums[j][0];
                for t in 1..TAPS {
                    largest = _mm512_max_epi32(largest, sums[j][t]);
                }
                best[group + j] = _mm512_castsi512_ps(largest);
            }
        }
        transpose(&mut best);
        let columns = (n - chunk).min(LANES);
        // SAFETY: as for the whole function.
        unsafe { scale_store(conv, &best, (o, valid), first, (chunk, columns), out) };
    }
}

/// Scales the transposed largest sums `rows` (position `o + i` in register `i`, filters
/// `chunk..chunk + columns` in its lanes) and stores them as the positions' rows of the task's
/// output: `(sum − correction) · factor + bias`, the ReLU, then `f32` or quantized as the
/// other paths' `store` does.
///
/// # Safety
/// The CPU has AVX-512F/BW; the task's output holds those rows of the kernel's columns.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vnni,avx512vbmi")]
unsafe fn scale_store(
    conv: &Int8Conv,
    rows: &[__m512; LANES],
    (o, valid): (usize, usize),
    first: usize,
    (chunk, columns): (usize, usize),
    out: &mut Output,
) {
    let (b, rescale) = (conv.kernel, &conv.rescale);
    let n = b.width();
    let mask = if columns == LANES {
        u16::MAX
    } else {
        ((1u32 << columns) - 1) as u16
    };
    let (_, factors) = rescale.for_row(o);
    assert!(factors.len() >= chunk + columns && rescale.bias.is_none_or(|bias| bias.len() >= chunk + columns));
    assert!(b.column_sums.len() >= chunk + LANES);
    // SAFETY: the masked lanes lie inside `factors` and the bias (asserted), the column sums
    // hold whole blocks.
    let (correction, factors, bias) = unsafe {
        let column_sums = _mm512_loadu_si512(b.column_sums.as_ptr().add(chunk) as *const _);
        let bias = rescale
            .bias
            .map(|bias| _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(chunk)));
        let factors = _mm512_maskz_loadu_ps(mask, factors.as_ptr().add(chunk));
        (_mm512_slli_epi32::<7>(column_sums), factors, bias)
    };
    let at = |lane: usize| (o + lane - first) * n + chunk;
    let scaling = Scaling {
        correction,
        factors,
        bias,
        relu: rescale.relu,
    };
    match out {
        Output::F32(out) => {
            assert!(at(valid - 1) + columns <= out.len());
            for lane in 0..valid {
                // SAFETY: asserted above, for the masked lanes.
                unsafe { _mm512_mask_storeu_ps(out.as_mut_ptr().add(at(lane)), mask, scaling.apply(rows[lane])) };
            }
        }
        Output::Int8(out, scale) => {
            assert!(at(valid - 1) + columns <= out.len());
            for lane in 0..valid {
                // `quantize_row_body` lane by lane: clip to ±127 (a NaN stays NaN through
                // these operand orders), NaN to 0, round half to even.
                let t = _mm512_mul_ps(scaling.apply(rows[lane]), _mm512_set1_ps(*scale));
                let t = _mm512_max_ps(_mm512_set1_ps(-127.0), t);
                let t = _mm512_min_ps(_mm512_set1_ps(127.0), t);
                let t = _mm512_maskz_mov_ps(_mm512_cmp_ps_mask::<_CMP_ORD_Q>(t, t), t);
                // SAFETY: asserted above, for the masked lanes.
                unsafe {
                    _mm512_mask_cvtepi32_storeu_epi8(out.as_mut_ptr().add(at(lane)), mask, _mm512_cvtps_epi32(t))
                };
            }
        }
    }
}

/// One chunk's scaling, a filter per lane.
struct Scaling {
    correction: __m512i,
    factors: __m512,
    bias: Option<__m512>,
    relu: bool,
}

impl Scaling {
    /// `(sum − correction) · factor + bias`, then the ReLU, of one position's largest sums.
    /// (A method, not a closure: closures do not inherit their caller's target features.)
    #[inline(always)]
    fn apply(&self, sums: __m512) -> __m512 {
        // SAFETY (the intrinsics): the callers have AVX-512F.
        unsafe {
            let exact = _mm512_sub_epi32(_mm512_castps_si512(sums), self.correction);
            let mut y = _mm512_mul_ps(_mm512_cvtepi32_ps(exact), self.factors);
            if let Some(bias) = self.bias {
                y = _mm512_add_ps(y, bias);
            }
            if self.relu {
                // `max(y, 0)` gives 0 for a NaN `y`, as `f32::max` does.
                y = _mm512_max_ps(y, _mm512_setzero_ps());
            }
            y
        }
    }
}

/// Transposes 16 registers of 16 lanes in place: lane `j` of register `i` moves to lane `i`
/// of register `j`.
#[inline(always)]
fn transpose(rows: &mut [__m512; LANES]) {
    // SAFETY (every intrinsic here): the callers have AVX-512F.
    unsafe {
        let mut t = [_mm512_setzero_ps(); LANES];
        // Pairs of rows interleaved, then pairs of pairs, then 128-bit quarters twice.
        for k in 0..8 {
            t[2 * k] = _mm512_unpacklo_ps(rows[2 * k], rows[2 * k + 1]);
            t[2 * k + 1] = _mm512_unpackhi_ps(rows[2 * k], rows[2 * k + 1]);
        }
        for k in 0..4 {
            let a = _mm512_castps_pd(t[4 * k]);
            let b = _mm512_castps_pd(t[4 * k + 1]);
            let c = _mm512_castps_pd(t[4 * k + 2]);
            let d = _mm512_castps_pd(t[4 * k + 3]);
            rows[4 * k] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
            rows[4 * k + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
            rows[4 * k + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
            rows[4 * k + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
        }
        for h in 0..2 {
            for k in 0..4 {
                let (a, b) = (rows[8 * h + k], rows[8 * h + k + 4]);
                t[8 * h + k] = _mm512_shuffle_f32x4::<0x88>(a, b);
                t[8 * h + k + 4] = _mm512_shuffle_f32x4::<0xdd>(a, b);
            }
        }
        for k in 0..8 {
            rows[k] = _mm512_shuffle_f32x4::<0x88>(t[k], t[k + 8]);
            rows[k + 8] = _mm512_shuffle_f32x4::<0xdd>(t[k], t[k + 8]);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transpose moves lane `j` of register `i` to lane `i` of register `j`.
    #[test]
    fn transpose_swaps_registers_and_lanes() {
        if !std::arch::is_x86_feature_detected!("avx512f") {
            return;
        }
        #[target_feature(enable = "avx512f")]
        fn run(values: &[f32; 256]) -> [f32; 256] {
            let mut rows = [_mm512_setzero_ps(); LANES];
            for (i, row) in rows.iter_mut().enumerate() {
                // SAFETY: 16 values from `i · 16`.
                *row = unsafe { _mm512_loadu_ps(values[i * LANES..].as_ptr()) };
            }
            transpose(&mut rows);
            let mut out = [0.0; 256];
            for (i, row) in rows.iter().enumerate() {
                // SAFETY: 16 values from `i · 16`.
                unsafe { _mm512_storeu_ps(out[i * LANES..].as_mut_ptr(), *row) };
            }
            out
        }
        let values: [f32; 256] = std::array::from_fn(|k| k as f32);
        // SAFETY: the CPU has AVX-512F (checked above).
        let out = unsafe { run(&values) };
        for i in 0..LANES {
            for j in 0..LANES {
                assert_eq!(out[j * LANES + i], values[i * LANES + j], "lane {j} of register {i}");
            }
        }
    }
}
