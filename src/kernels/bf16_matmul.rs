//! Matrix products in bfloat16 with f32 accumulation: the products of Keras's `mixed_bfloat16`
//! policy.
//!
//! Both operands are rounded to bfloat16 (round to nearest, ties to even) while they are packed
//! for the product; the multiply-adds then run on the rounded values and accumulate in f32, and
//! the output is f32. Where the CPU has AVX512_BF16, `vdpbf16ps` does 32 such multiply-adds per
//! instruction (two per f32 lane: depth `2p + 1`, then `2p`); elsewhere the same operations run
//! as f32 arithmetic in the same order. The product of two bfloat16 values is exact in f32 (8 + 8
//! significant bits), so "multiply, then add and round" is what `vdpbf16ps` does and what the
//! fallback does, fused or not: every path gives the same bits, and each output is one sum over
//! the whole depth in one order whatever the thread count. (Bit-identity assumes no value or
//! partial sum falls into f32's subnormal range, which `vdpbf16ps` flushes to zero; the rounding
//! to bfloat16 flushes subnormal inputs on every path.)

use super::Transpose;
use super::simd::{SimdLevel, simd_level};
use rayon::prelude::*;
use std::cell::RefCell;
use std::thread::LocalKey;

/// The dtype a layer's products compute in (Keras's `DTypePolicy.compute_dtype`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash)]
pub enum ComputeDtype {
    /// Products in f32.
    #[default]
    Float32,
    /// Products of bfloat16-rounded operands, accumulated in f32.
    Bfloat16,
}

/// Output rows of one tile.
const TILE_ROWS: usize = 4;
/// Output columns of one tile: four 16-lane vectors.
const TILE_COLS: usize = 64;
/// Below this many multiply-adds a product runs on one thread.
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// `x` rounded to bfloat16 (its upper 16 bits), to nearest with ties to even, as
/// `vcvtneps2bf16` rounds: subnormals become zero of the same sign, a NaN stays a (quiet) NaN.
/// Written without branches so the packing loops vectorize.
#[inline(always)]
pub(crate) fn round_to_bf16(x: f32) -> u16 {
    let bits = x.to_bits();
    let magnitude = bits & 0x7fff_ffff;
    let rounded = (bits.wrapping_add(0x7fff + ((bits >> 16) & 1)) >> 16) as u16;
    let nan = ((bits >> 16) as u16) | 0x0040;
    let zero = ((bits >> 16) as u16) & 0x8000;
    if magnitude > 0x7f80_0000 {
        nan
    } else if magnitude < 0x0080_0000 {
        zero
    } else {
        rounded
    }
}

/// The f32 value of a bfloat16 `bits`.
#[inline(always)]
pub(crate) fn bf16_to_f32(bits: u16) -> f32 {
    f32::from_bits((bits as u32) << 16)
}

/// `x` rounded to bfloat16 and widened back to f32: the value a bfloat16 product reads.
pub fn round_through_bf16(x: f32) -> f32 {
    bf16_to_f32(round_to_bf16(x))
}

/// Two depths of one row or column as one 32-bit lane: depth `2p` in the low half, `2p + 1` in
/// the high half (the layout `vdpbf16ps` reads).
#[inline(always)]
fn pair(even: f32, odd: f32) -> u32 {
    round_to_bf16(even) as u32 | (round_to_bf16(odd) as u32) << 16
}

/// A matrix operand as stored: element `(row, col)` at `row * row_stride + col * col_stride`.
#[derive(Clone, Copy)]
struct Strided<'a> {
    data: &'a [f32],
    row_stride: usize,
    col_stride: usize,
}

impl Strided<'_> {
    #[inline(always)]
    fn at(&self, row: usize, col: usize) -> f32 {
        self.data[row * self.row_stride + col * self.col_stride]
    }
}

/// `c (m×n) = a (m×k) · b (k×n)` in bfloat16 with f32 accumulation, or `c +=` when
/// `accumulate`; operands stored as `kernels::matmul` takes them.
///
/// # Panics
///
/// If a slice is shorter than its shape says (a bug in the caller).
#[allow(clippy::too_many_arguments)]
pub fn matmul_bf16(
    a: &[f32],
    transpose_a: Transpose,
    b: &[f32],
    transpose_b: Transpose,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    assert!(
        a.len() >= m * k && b.len() >= k * n && c.len() >= m * n,
        "matmul_bf16 operand too short"
    );
    if super::matmul::is_empty_product(c, m, k, n, accumulate) {
        return;
    }
    let a = match transpose_a {
        Transpose::No => Strided {
            data: a,
            row_stride: k,
            col_stride: 1,
        },
        Transpose::Yes => Strided {
            data: a,
            row_stride: 1,
            col_stride: m,
        },
    };
    let b = match transpose_b {
        Transpose::No => Strided {
            data: b,
            row_stride: n,
            col_stride: 1,
        },
        Transpose::Yes => Strided {
            data: b,
            row_stride: 1,
            col_stride: k,
        },
    };
    let pairs = k.div_ceil(2);
    let panels = n.div_ceil(TILE_COLS);
    let parallel = m * n * k >= PARALLEL_MIN_MACS && rayon::current_num_threads() > 1;
    with_packed(&PACKED_B, panels * pairs * TILE_COLS, |packed_b| {
        pack_b(b, k, n, pairs, packed_b, parallel);
        product_packed(a, packed_b, c, (m, k, n), accumulate, parallel);
    });
}

/// `c (+)= a · b` with `b` packed by [`pack_b`].
fn product_packed(a: Strided, packed_b: &[u32], c: &mut [f32], dims: Dims, accumulate: bool, parallel: bool) {
    let (m, k, n) = dims;
    let (pairs, panels) = (k.div_ceil(2), n.div_ceil(TILE_COLS));
    let path = Path::chosen();
    let c = &mut c[..m * n];
    let row_tiles = m.div_ceil(TILE_ROWS);
    let threads = if parallel { rayon::current_num_threads() } else { 1 };
    // One block of whole tiles per thread: each output is computed by one tile whatever the
    // split, so the split does not change the results.
    let rows_per_block = row_tiles.div_ceil(threads) * TILE_ROWS;
    let block = |(index, c_block): (usize, &mut [f32])| {
        let first_row = index * rows_per_block;
        let rows = c_block.len() / n;
        with_packed(&PACKED_A, TILE_ROWS * pairs, |packed_a| {
            for tile_row in (0..rows).step_by(TILE_ROWS) {
                let tile_rows = (rows - tile_row).min(TILE_ROWS);
                pack_a_tile(a, first_row + tile_row, tile_rows, k, pairs, packed_a);
                for panel in 0..panels {
                    let panel_b = &packed_b[panel * pairs * TILE_COLS..][..pairs * TILE_COLS];
                    let tile = path.tile(packed_a, panel_b, pairs);
                    let first_col = panel * TILE_COLS;
                    let cols = (n - first_col).min(TILE_COLS);
                    for (r, sums) in tile.iter().enumerate().take(tile_rows) {
                        let out = &mut c_block[(tile_row + r) * n + first_col..][..cols];
                        if accumulate {
                            out.iter_mut().zip(sums).for_each(|(o, s)| *o += s);
                        } else {
                            out.copy_from_slice(&sums[..cols]);
                        }
                    }
                }
            }
        });
    };
    if threads == 1 {
        block((0, c));
    } else {
        c.par_chunks_mut(rows_per_block * n).enumerate().for_each(block);
    }
}

/// `(m, k, n)`: the output's rows, the depth, the output's columns.
type Dims = (usize, usize, usize);

thread_local! {
    /// The calling thread's packed right operand, kept between products so a training step
    /// does not allocate (contents stale: packing writes every value).
    static PACKED_B: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
    /// Each thread's packed tile of the left operand.
    static PACKED_A: RefCell<Vec<u32>> = const { RefCell::new(Vec::new()) };
}

/// Runs `work` on `slot`'s buffer, at least `len` long. The buffer is taken out while `work`
/// runs (a nested use on this thread, by a job stolen while it waits, gets one of its own) and
/// put back after, the larger kept.
fn with_packed<R>(slot: &'static LocalKey<RefCell<Vec<u32>>>, len: usize, work: impl FnOnce(&mut [u32]) -> R) -> R {
    let mut buffer = slot.with(RefCell::take);
    if buffer.len() < len {
        buffer.resize(len, 0);
    }
    let result = work(&mut buffer[..len]);
    slot.with(|kept| {
        let mut kept = kept.borrow_mut();
        if kept.len() < buffer.len() {
            *kept = buffer;
        }
    });
    result
}

/// Packs `b` (k×n) as panels of [`TILE_COLS`] columns, each `pairs` rows of depth pairs
/// (zeros past `k` and past `n`). Stored rows (`b` as is) pack two rows at a time and stored
/// columns (`b` transposed) one column at a time, so the reads are contiguous either way.
fn pack_b(b: Strided, k: usize, n: usize, pairs: usize, packed: &mut [u32], parallel: bool) {
    if b.col_stride != 1 && b.row_stride == 1 {
        return pack_b_columns(b, k, n, pairs, packed, parallel);
    }
    let fill = |(index, row): (usize, &mut [u32])| {
        let (panel, p) = (index / pairs, index % pairs);
        let first_col = panel * TILE_COLS;
        let cols = (n - first_col).min(TILE_COLS);
        let (even, odd) = (2 * p, 2 * p + 1);
        let (row, padding) = row.split_at_mut(cols);
        padding.fill(0);
        if b.col_stride == 1 {
            let evens = &b.data[even * b.row_stride + first_col..][..cols];
            if odd < k {
                let odds = &b.data[odd * b.row_stride + first_col..][..cols];
                super::simd::widest(|| {
                    for ((lane, &e), &o) in row.iter_mut().zip(evens).zip(odds) {
                        *lane = pair(e, o);
                    }
                });
            } else {
                super::simd::widest(|| row.iter_mut().zip(evens).for_each(|(lane, &e)| *lane = pair(e, 0.0)));
            }
            return;
        }
        for (j, lane) in row.iter_mut().enumerate() {
            let odd_value = if odd < k { b.at(odd, first_col + j) } else { 0.0 };
            *lane = pair(b.at(even, first_col + j), odd_value);
        }
    };
    if parallel {
        packed
            .par_chunks_mut(TILE_COLS)
            .enumerate()
            .with_min_len(64)
            .for_each(fill);
    } else {
        packed.chunks_mut(TILE_COLS).enumerate().for_each(fill);
    }
}

/// [`pack_b`] of a `b` stored transposed (each column of `b` contiguous): column by column.
fn pack_b_columns(b: Strided, k: usize, n: usize, pairs: usize, packed: &mut [u32], parallel: bool) {
    let fill = |(panel, out): (usize, &mut [u32])| {
        let first_col = panel * TILE_COLS;
        let cols = (n - first_col).min(TILE_COLS);
        for j in 0..TILE_COLS {
            if j >= cols {
                (0..pairs).for_each(|p| out[p * TILE_COLS + j] = 0);
                continue;
            }
            let column = &b.data[(first_col + j) * b.col_stride..][..k];
            let (whole, rest) = column.split_at(k - k % 2);
            for (p, two) in whole.chunks_exact(2).enumerate() {
                out[p * TILE_COLS + j] = pair(two[0], two[1]);
            }
            if let Some(&last) = rest.first() {
                out[(pairs - 1) * TILE_COLS + j] = pair(last, 0.0);
            }
        }
    };
    if parallel {
        packed.par_chunks_mut(pairs * TILE_COLS).enumerate().for_each(fill);
    } else {
        packed.chunks_mut(pairs * TILE_COLS).enumerate().for_each(fill);
    }
}

/// Packs rows `first..first + rows` of `a` (m×k) as `rows` × `pairs` depth pairs, then zero
/// rows up to [`TILE_ROWS`].
fn pack_a_tile(a: Strided, first: usize, rows: usize, k: usize, pairs: usize, packed: &mut [u32]) {
    for r in 0..rows {
        let out = &mut packed[r * pairs..][..pairs];
        if a.col_stride == 1 {
            // A stored row: pairs of neighbours, a loop the compiler vectorizes.
            let row = &a.data[(first + r) * a.row_stride..][..k];
            let (whole, rest) = row.split_at(k - k % 2);
            super::simd::widest(|| {
                for (lane, two) in out.iter_mut().zip(whole.chunks_exact(2)) {
                    *lane = pair(two[0], two[1]);
                }
            });
            if let Some(&last) = rest.first() {
                out[pairs - 1] = pair(last, 0.0);
            }
            continue;
        }
        for (p, lane) in out.iter_mut().enumerate() {
            let odd = if 2 * p + 1 < k { a.at(first + r, 2 * p + 1) } else { 0.0 };
            *lane = pair(a.at(first + r, 2 * p), odd);
        }
    }
    packed[rows * pairs..].fill(0);
}

/// One tile's sums: [`TILE_ROWS`] rows of [`TILE_COLS`] columns.
type Tile = [[f32; TILE_COLS]; TILE_ROWS];

/// Which instructions compute the tiles.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Path {
    /// AVX512_BF16's `vdpbf16ps`.
    Native,
    /// f32 arithmetic compiled for AVX-512F.
    Avx512,
    /// f32 arithmetic compiled for AVX2.
    Avx2,
    /// f32 arithmetic for the baseline CPU.
    Scalar,
}

impl Path {
    /// The path for this thread: the native one where [`simd_level`] is AVX-512 and
    /// [`super::simd::bf16_dot`] allows it, else the f32 fallback of the level.
    pub(crate) fn chosen() -> Path {
        match simd_level() {
            SimdLevel::Avx512 if super::simd::bf16_dot() => Path::Native,
            SimdLevel::Avx512 => Path::Avx512,
            SimdLevel::Avx2 => Path::Avx2,
            SimdLevel::Scalar => Path::Scalar,
        }
    }

    /// The paths this CPU runs, widest first (for the tests).
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Path> {
        let mut paths = Vec::new();
        #[cfg(target_arch = "x86_64")]
        {
            if native::detect() {
                paths.push(Path::Native);
            }
            if is_x86_feature_detected!("avx512f") {
                paths.push(Path::Avx512);
            }
            if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                paths.push(Path::Avx2);
            }
        }
        paths.push(Path::Scalar);
        paths
    }

    /// The sums of `a` (a packed tile of rows) times `b` (a packed panel), over `pairs`.
    fn tile(self, a: &[u32], b: &[u32], pairs: usize) -> Tile {
        assert!(a.len() >= TILE_ROWS * pairs && b.len() >= pairs * TILE_COLS);
        #[cfg(target_arch = "x86_64")]
        {
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn wide(a: &[u32], b: &[u32], pairs: usize) -> Tile {
                tile_f32::<true>(a, b, pairs)
            }
            #[target_feature(enable = "avx2,fma")]
            fn fast(a: &[u32], b: &[u32], pairs: usize) -> Tile {
                tile_f32::<true>(a, b, pairs)
            }
            match self {
                // SAFETY: `Path::chosen` and `Path::available` name a path only where the CPU
                // has its features; the lengths were checked above.
                Path::Native => return unsafe { native::tile(a, b, pairs) },
                Path::Avx512 => return unsafe { wide(a, b, pairs) },
                Path::Avx2 => return unsafe { fast(a, b, pairs) },
                Path::Scalar => {}
            }
        }
        tile_f32::<false>(a, b, pairs)
    }
}

/// The fallback tile: for each depth pair, `sum += a_odd·b_odd` then `sum += a_even·b_even`
/// in f32, `vdpbf16ps`'s order. The products are exact, so a fused multiply-add (`FUSED`, on
/// the paths compiled with FMA) and a multiply then an add (the baseline, where `mul_add`
/// would be a library call) both give `vdpbf16ps`'s roundings.
#[inline(always)]
fn tile_f32<const FUSED: bool>(a: &[u32], b: &[u32], pairs: usize) -> Tile {
    let mut sums = [[0.0f32; TILE_COLS]; TILE_ROWS];
    for p in 0..pairs {
        let panel: &[u32; TILE_COLS] = b[p * TILE_COLS..][..TILE_COLS].try_into().expect("a panel row");
        let odd_b: [f32; TILE_COLS] = std::array::from_fn(|j| f32::from_bits(panel[j] & 0xffff_0000));
        let even_b: [f32; TILE_COLS] = std::array::from_fn(|j| f32::from_bits(panel[j] << 16));
        for (r, row) in sums.iter_mut().enumerate() {
            let lanes = a[r * pairs + p];
            let (odd_a, even_a) = (f32::from_bits(lanes & 0xffff_0000), f32::from_bits(lanes << 16));
            for ((sum, &odd), &even) in row.iter_mut().zip(&odd_b).zip(&even_b) {
                if FUSED {
                    *sum = odd_a.mul_add(odd, *sum);
                    *sum = even_a.mul_add(even, *sum);
                } else {
                    *sum += odd_a * odd;
                    *sum += even_a * even;
                }
            }
        }
    }
    sums
}

#[cfg(target_arch = "x86_64")]
mod native {
    use super::{TILE_COLS, TILE_ROWS, Tile};
    use std::arch::x86_64::*;

    /// Whether this CPU runs `vdpbf16ps` (AVX512_BF16 with AVX-512F).
    #[cfg(test)]
    pub(super) fn detect() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512bf16")
    }

    /// `super::tile_f32` with `vdpbf16ps`: 16 accumulators, four vectors of the panel and
    /// one broadcast pair per row each depth pair.
    ///
    /// # Safety
    /// The CPU must have AVX512_BF16 (what the tests' `detect` checks); `a` must hold `TILE_ROWS · pairs` values and
    /// `b` `pairs · TILE_COLS`.
    #[target_feature(enable = "avx512f,avx512bf16")]
    pub(super) unsafe fn tile(a: &[u32], b: &[u32], pairs: usize) -> Tile {
        let mut sums = [[_mm512_setzero_ps(); 4]; TILE_ROWS];
        let (a, b) = (a.as_ptr(), b.as_ptr());
        for p in 0..pairs {
            // SAFETY: p < pairs, so each read lies inside the lengths the caller guarantees.
            unsafe {
                let panel = b.add(p * TILE_COLS);
                let columns: [__m512bh; 4] = [
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(panel.cast())),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(panel.add(16).cast())),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(panel.add(32).cast())),
                    std::mem::transmute::<__m512i, __m512bh>(_mm512_loadu_si512(panel.add(48).cast())),
                ];
                for (r, row) in sums.iter_mut().enumerate() {
                    let lanes: __m512bh =
                        std::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(*a.add(r * pairs + p) as i32));
                    for (sum, &column) in row.iter_mut().zip(&columns) {
                        *sum = _mm512_dpbf16_ps(*sum, lanes, column);
                    }
                }
            }
        }
        let mut out = [[0.0f32; TILE_COLS]; TILE_ROWS];
        for (row, sums) in out.iter_mut().zip(&sums) {
            for (v, &sum) in sums.iter().enumerate() {
                // SAFETY: each row holds 64 values, four vectors of 16.
                unsafe { _mm512_storeu_ps(row.as_mut_ptr().add(16 * v), sum) };
            }
        }
        out
    }
}

#[cfg(not(target_arch = "x86_64"))]
mod native {
    use super::Tile;

    #[cfg(test)]
    pub(super) fn detect() -> bool {
        false
    }

    pub(super) unsafe fn tile(a: &[u32], b: &[u32], pairs: usize) -> Tile {
        super::tile_f32::<false>(a, b, pairs)
    }
}

/// `c (+)= a·b` in `dtype`: through [`super::matmul()`] in f32, [`matmul_bf16`] in bfloat16.
#[allow(clippy::too_many_arguments)]
pub(crate) fn product(
    dtype: ComputeDtype,
    a: &[f32],
    transpose_a: Transpose,
    b: &[f32],
    transpose_b: Transpose,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    match dtype {
        ComputeDtype::Float32 => super::matmul(a, transpose_a, b, transpose_b, c, m, k, n, accumulate),
        ComputeDtype::Bfloat16 => matmul_bf16(a, transpose_a, b, transpose_b, c, m, k, n, accumulate),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The reference: each output one loop over the depth pairs, odd depth first, in f64-free
    /// scalar f32 on values rounded one at a time.
    fn reference(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let r = |x: f32| round_through_bf16(x);
        let mut c = vec![0.0f32; m * n];
        for i in 0..m {
            for j in 0..n {
                let mut sum = 0.0f32;
                for p in 0..k.div_ceil(2) {
                    if 2 * p + 1 < k {
                        sum += r(a[i * k + 2 * p + 1]) * r(b[(2 * p + 1) * n + j]);
                    } else {
                        sum += 0.0;
                    }
                    sum += r(a[i * k + 2 * p]) * r(b[2 * p * n + j]);
                }
                c[i * n + j] = sum;
            }
        }
        c
    }

    fn values(len: usize, seed: u64) -> Vec<f32> {
        let mut rng = crate::rng::Rng::new(seed);
        (0..len).map(|_| rng.normal() * 3.0).collect()
    }

    fn transpose(x: &[f32], rows: usize, cols: usize) -> Vec<f32> {
        let mut t = vec![0.0; x.len()];
        for r in 0..rows {
            for c in 0..cols {
                t[c * rows + r] = x[r * cols + c];
            }
        }
        t
    }

    #[test]
    fn rounding_is_to_nearest_even() {
        // 1 + 2^-8 is halfway between bfloat16 1 and 1 + 2^-7: ties go to the even 1.
        assert_eq!(round_through_bf16(1.0 + 1.0 / 256.0), 1.0);
        assert_eq!(round_through_bf16(1.0 + 3.0 / 256.0), 1.0 + 4.0 / 256.0);
        assert_eq!(round_through_bf16(1.0 + 1.0 / 256.0 + 1e-6), 1.0 + 1.0 / 128.0);
        assert_eq!(round_through_bf16(-2.5), -2.5);
        assert_eq!(round_through_bf16(f32::MAX), f32::INFINITY);
        assert_eq!(round_through_bf16(1e-40).to_bits(), 0);
        assert_eq!(round_through_bf16(-1e-40).to_bits(), 0x8000_0000);
        assert!(round_through_bf16(f32::NAN).is_nan());
        assert_eq!(round_through_bf16(f32::NEG_INFINITY), f32::NEG_INFINITY);
    }

    /// Every path on this CPU against the scalar reference, bit for bit, with each transpose,
    /// odd depths and partial tiles, and on one thread as on two.
    #[test]
    fn every_path_matches_the_reference_bit_for_bit() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 2), (7, 33, 70), (32, 784, 128), (65, 300, 130)] {
            let (a, b) = (values(m * k, 1), values(k * n, 2));
            let expected = reference(&a, &b, m, k, n);
            let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
            for path in Path::available() {
                let mut sums = vec![0.0f32; m * n];
                let pairs = k.div_ceil(2);
                let mut packed_b = vec![0u32; n.div_ceil(TILE_COLS) * pairs * TILE_COLS];
                let b_op = Strided {
                    data: &b,
                    row_stride: n,
                    col_stride: 1,
                };
                let a_op = Strided {
                    data: &a,
                    row_stride: k,
                    col_stride: 1,
                };
                pack_b(b_op, k, n, pairs, &mut packed_b, false);
                let mut packed_a = vec![0u32; TILE_ROWS * pairs];
                for row in (0..m).step_by(TILE_ROWS) {
                    let rows = (m - row).min(TILE_ROWS);
                    pack_a_tile(a_op, row, rows, k, pairs, &mut packed_a);
                    for panel in 0..n.div_ceil(TILE_COLS) {
                        let tile = path.tile(&packed_a, &packed_b[panel * pairs * TILE_COLS..], pairs);
                        for r in 0..rows {
                            for j in 0..(n - panel * TILE_COLS).min(TILE_COLS) {
                                sums[(row + r) * n + panel * TILE_COLS + j] = tile[r][j];
                            }
                        }
                    }
                }
                let same = sums.iter().zip(&expected).all(|(x, y)| x.to_bits() == y.to_bits());
                assert!(same, "{path:?} {m}x{k}x{n} differs from the reference");
            }
            for (lhs, ta) in [(&a, Transpose::No), (&at, Transpose::Yes)] {
                for (rhs, tb) in [(&b, Transpose::No), (&bt, Transpose::Yes)] {
                    let run = |threads: usize| {
                        let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                        let mut c = vec![1.0; m * n];
                        pool.install(|| {
                            matmul_bf16(lhs, ta, rhs, tb, &mut c, m, k, n, false);
                            matmul_bf16(lhs, ta, rhs, tb, &mut c, m, k, n, true);
                        });
                        c
                    };
                    let (one, two) = (run(1), run(2));
                    let doubled: Vec<f32> = expected.iter().map(|x| x + x).collect();
                    assert!(one.iter().zip(&doubled).all(|(x, y)| x.to_bits() == y.to_bits()));
                    assert!(one.iter().zip(&two).all(|(x, y)| x.to_bits() == y.to_bits()));
                }
            }
        }
    }
}
