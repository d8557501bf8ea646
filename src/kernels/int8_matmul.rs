//! Int8 matrix products with exact `i32` sums, for quantized inference.
//!
//! `out = a · b` with `a` an `(M, K)` matrix of activations in `[-127, 127]` and `b` a
//! `(K, N)` kernel in `[-127, 127]`, packed once by [`PackedInt8::pack`]. The sums are exact
//! integers (any order of addition gives the same value), so every path and every thread count
//! gives bit-identical results. Three paths, picked at run time as `update.rs` does:
//!
//! - AVX-512 VNNI: `vpdpbusd` multiplies 64 unsigned by 64 signed bytes and adds each group of
//!   four into an `i32` lane. The activations are made unsigned by flipping their sign bit
//!   (`a + 128`); `128 · Σₖ b[k][n]`, computed when packing, is taken off at the end.
//! - AVX2: `vpmaddubsw` (unsigned × signed bytes, pairs summed into saturating `i16`) on
//!   `|a|` and `b·sign(a)`: each product is at most `127 · 127`, a pair at most 32,258, so it
//!   never saturates; `vpmaddwd` by ones then sums the pairs into `i32`.
//! - Scalar: the same sums, one at a time.
//!
//! The path follows [`simd_level`] (so `STRATA_SIMD=avx2` or `scalar` forces the narrower
//! paths): VNNI at the AVX-512 level where the CPU has VNNI, AVX2 at the AVX2 level (or AVX-512
//! without VNNI). On the VNNI path the tile scales its sums into the `f32` output itself (no
//! `i32` buffer); the other paths write the sums and scale them in a second pass, with the
//! same operations per element, so every path gives the same bits.
//!
//! Packing: the kernel's columns in blocks of 16; within a block, for each group of four rows
//! `k..k+4` ("quad"), 16 columns × 4 bytes (64 bytes, one AVX-512 register), the layout
//! `vpdpbusd` reads. Rows past `K` and columns past `N` are zero, so whatever the activations
//! hold there adds nothing.
//!
//! The sums are exact while they fit an `i32`: `K · 127 · 127 < 2³¹`, so `K ≤` [`MAX_DEPTH`]
//! (the VNNI path's intermediate `Σ (a+128)·b` may wrap, but wrapping arithmetic is exact
//! modulo 2³², and the true result fits).

use super::simd::{SimdLevel, simd_level};
use rayon::prelude::*;
use std::cell::RefCell;

/// Columns per packed block (one AVX-512 register of `i32` sums).
const BLOCK: usize = 16;
/// Bytes of one quad of a block: 16 columns × 4 rows.
const QUAD_BYTES: usize = BLOCK * 4;
/// The deepest product whose exact sum always fits an `i32` (`127² · K < 2³¹`).
pub(crate) const MAX_DEPTH: usize = 1 << 17;
/// Below this many values (activations to quantize, or multiply-adds of a product) the work
/// stays on the calling thread.
pub(super) const PARALLEL_MIN: usize = 1 << 16;
/// The fewest rows of activations one task takes (a multiple of the micro-tile's 4 rows).
const MIN_ROWS_PER_TASK: usize = 16;

/// Rows per task for `rows` rows: about four tasks per thread (so a slow thread does not hold
/// the others up), each of at least [`MIN_ROWS_PER_TASK`] and a multiple of 4. The sums are
/// exact, so the split never changes a result.
pub(super) fn rows_per_task(rows: usize) -> usize {
    rows.div_ceil(4 * rayon::current_num_threads())
        .next_multiple_of(4)
        .max(MIN_ROWS_PER_TASK)
}

/// A `(K, N)` int8 kernel in the layout the products read (see the module comment).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedInt8 {
    depth: usize,
    width: usize,
    pub(super) quads: usize,
    pub(super) data: Vec<i8>,
    /// `Σₖ b[k][n]` per column, padded to whole blocks with zeros.
    pub(super) column_sums: Vec<i32>,
}

impl PackedInt8 {
    /// Packs `values`, a row-major `(depth, width)` matrix. Panics if `values` has another
    /// length or `depth` exceeds [`MAX_DEPTH`] (the caller checks both).
    pub(crate) fn pack(values: &[i8], depth: usize, width: usize) -> Self {
        assert_eq!(values.len(), depth * width, "int8 kernel of the wrong length");
        assert!(depth <= MAX_DEPTH, "int8 product deeper than {MAX_DEPTH}");
        let quads = depth.div_ceil(4);
        let blocks = width.div_ceil(BLOCK);
        let mut data = vec![0i8; blocks * quads * QUAD_BYTES];
        let mut column_sums = vec![0i32; blocks * BLOCK];
        for k in 0..depth {
            for n in 0..width {
                let value = values[k * width + n];
                let (block, column) = (n / BLOCK, n % BLOCK);
                data[(block * quads + k / 4) * QUAD_BYTES + column * 4 + k % 4] = value;
                column_sums[n] += i32::from(value);
            }
        }
        PackedInt8 {
            depth,
            width,
            quads,
            data,
            column_sums,
        }
    }

    /// `K`, the rows of the kernel.
    pub(crate) fn depth(&self) -> usize {
        self.depth
    }

    /// `N`, the columns of the kernel.
    pub(crate) fn width(&self) -> usize {
        self.width
    }

    /// The bytes one row of activations must give the products: `K` rounded up to whole quads.
    /// A row may be followed directly by the next (a row stride of `K`); only the last row
    /// needs this many bytes from its start.
    pub(crate) fn padded_depth(&self) -> usize {
        self.quads * 4
    }

    /// How long an activation buffer of `rows` rows `stride` apart must be.
    pub(crate) fn activations_len(&self, rows: usize, stride: usize) -> usize {
        if rows == 0 {
            0
        } else {
            (rows - 1) * stride + self.padded_depth()
        }
    }

    pub(super) fn blocks(&self) -> usize {
        self.width.div_ceil(BLOCK)
    }
}

/// Which instructions run the product.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Int8Path {
    Scalar,
    #[cfg(target_arch = "x86_64")]
    Avx2,
    #[cfg(target_arch = "x86_64")]
    Vnni,
}

impl Int8Path {
    /// The path for this thread's [`simd_level`]: VNNI at the AVX-512 level where the CPU
    /// has it, AVX2 at the AVX2 level (or AVX-512 without VNNI), scalar at the scalar level.
    pub(crate) fn best() -> Self {
        match simd_level() {
            SimdLevel::Scalar => Int8Path::Scalar,
            #[cfg(target_arch = "x86_64")]
            SimdLevel::Avx512 if vnni_detected() => Int8Path::Vnni,
            // `simd_level` reports AVX2 or AVX-512 only where the CPU has AVX2.
            #[cfg(target_arch = "x86_64")]
            _ => Int8Path::Avx2,
            #[cfg(not(target_arch = "x86_64"))]
            _ => Int8Path::Scalar,
        }
    }

    /// Every path this CPU can run, for the tests that compare them.
    #[cfg(test)]
    pub(crate) fn available() -> Vec<Self> {
        let mut paths = vec![Int8Path::Scalar];
        #[cfg(target_arch = "x86_64")]
        {
            if is_x86_feature_detected!("avx2") {
                paths.push(Int8Path::Avx2);
            }
            if vnni_detected() {
                paths.push(Int8Path::Vnni);
            }
        }
        paths
    }
}

/// True when the CPU runs AVX-512 VNNI (with the F and BW parts its loads and stores need).
#[cfg(target_arch = "x86_64")]
pub(super) fn vnni_detected() -> bool {
    is_x86_feature_detected!("avx512f")
        && is_x86_feature_detected!("avx512bw")
        && is_x86_feature_detected!("avx512vnni")
}

/// `out (rows, N) = a · b` in exact `i32` on a chosen path, `a`'s rows `stride` bytes apart
/// (`stride ≥ K`): the products of [`Int8Linear`] without the quantizing and scaling, for the tests. Parallel
/// over blocks of rows; the sums are exact, so the thread count changes nothing.
#[cfg(test)]
pub(crate) fn int8_matmul_on(path: Int8Path, a: &[i8], rows: usize, stride: usize, b: &PackedInt8, out: &mut [i32]) {
    check_sizes(a, rows, stride, b, out.len());
    let n = b.width;
    if n == 0 || rows == 0 {
        return;
    }
    let per_task = rows_per_task(rows);
    let unsigned = no_negative(&a[..b.activations_len(rows, stride)]);
    out[..rows * n]
        .par_chunks_mut(per_task * n)
        .enumerate()
        .for_each(|(task, out)| {
            let first = task * per_task;
            let count = out.len() / n;
            product_rows(path, &a[first * stride..], count, stride, b, unsigned, Sink::Sums(out));
        });
}

/// How a product's exact sums become its `f32` output, element by element: divided by
/// `row scale · column scale` (Keras's int8 `Dense`) or multiplied by one factor per column (a
/// calibrated layer, whose input scale is the same for every row and folded into the factors);
/// then `+ bias`, then `max(·, 0)` for a fused ReLU.
#[derive(Clone, Copy)]
pub(crate) struct Rescale<'a> {
    /// The scales the sums are divided by or multiplied with.
    pub scales: Scales<'a>,
    /// Added after scaling, one per column.
    pub bias: Option<&'a [f32]>,
    /// `max(·, 0)` on the result in the same pass (a layer's ReLU, as the f32 convolution fuses it).
    pub relu: bool,
}

/// The ways of [`Rescale`].
#[derive(Clone, Copy)]
pub(crate) enum Scales<'a> {
    /// `sum / (row_scales[r / rows_per_scale] · column_scales[n])`: one activation scale per
    /// row, per image of a convolution (its positions' rows) or for the whole tensor.
    Divide {
        /// The activations' scales.
        row_scales: &'a [f32],
        /// Consecutive rows sharing one activation scale.
        rows_per_scale: usize,
        /// One scale per kernel column.
        column_scales: &'a [f32],
    },
    /// `sum · factors[n]`.
    Multiply {
        /// One factor per kernel column.
        factors: &'a [f32],
    },
    /// `sum · factors[(r / rows_per_group) · width + n]`: a factor per column for each group
    /// of rows (an int8 convolution's image: `1 / (row scale · column scale)` computed once
    /// per image and column, instead of a division per output).
    GroupFactors {
        /// `width` factors for each group, group after group.
        factors: &'a [f32],
        /// Consecutive rows sharing one group's factors.
        rows_per_group: usize,
        /// Factors per group (the kernel's columns).
        width: usize,
    },
}

impl Rescale<'_> {
    /// The row scale row `row` divides by (`None`: multiply by the factors) and the per-column
    /// scales or factors.
    #[inline(always)]
    pub(super) fn for_row(&self, row: usize) -> (Option<f32>, &[f32]) {
        match self.scales {
            Scales::Divide {
                row_scales,
                rows_per_scale,
                column_scales,
            } => (Some(row_scales[row / rows_per_scale]), column_scales),
            Scales::Multiply { factors } => (None, factors),
            Scales::GroupFactors {
                factors,
                rows_per_group,
                width,
            } => (None, &factors[row / rows_per_group * width..][..width]),
        }
    }

    /// Panics unless the scales, factors and bias cover `rows` rows of `n` columns (a caller
    /// bug).
    pub(super) fn check(&self, rows: usize, n: usize) {
        match self.scales {
            Scales::Divide {
                row_scales,
                rows_per_scale,
                column_scales,
            } => {
                assert!(column_scales.len() >= n && rows_per_scale > 0);
                assert!(row_scales.len() >= rows.div_ceil(rows_per_scale));
            }
            Scales::Multiply { factors } => assert!(factors.len() >= n),
            Scales::GroupFactors {
                factors,
                rows_per_group,
                width,
            } => {
                assert!(width >= n && rows_per_group > 0);
                assert!(factors.len() >= rows.div_ceil(rows_per_group) * width);
            }
        }
        assert!(self.bias.is_none_or(|bias| bias.len() >= n));
    }

    /// The first row after `row` whose [`Rescale::for_row`] may differ from `row`'s: the end
    /// of its group of rows.
    #[inline]
    pub(super) fn group_end(&self, row: usize) -> usize {
        match self.scales {
            Scales::Divide {
                rows_per_scale: rows, ..
            }
            | Scales::GroupFactors {
                rows_per_group: rows, ..
            } => (row / rows + 1) * rows,
            Scales::Multiply { .. } => usize::MAX,
        }
    }
}

/// The quantized linear map of `rows` rows of `f32`: Keras's int8 `Dense` (quantize each row or
/// the batch, multiply in exact integers, scale back). Each task quantizes its own rows with
/// [`quantize_rows`]'s operations (into its thread's scratch) right before multiplying them, so
/// the quantizing is split over the threads as the product is, in the same parallel region;
/// every split gives the same bits.
pub(crate) struct Int8Linear<'a> {
    /// `rows` rows of the kernel's depth.
    pub x: &'a [f32],
    /// Rows of `x`.
    pub rows: usize,
    /// How the rows are quantized.
    pub scaling: RowScaling,
    /// The packed kernel.
    pub kernel: &'a PackedInt8,
    /// Keras's division by `row scale · column scale` (these are the column scales), or, with
    /// `factors`, a multiplication by one factor per column (a calibrated layer).
    pub column_scales: &'a [f32],
    /// The calibrated factors, if any.
    pub factors: Option<&'a [f32]>,
    /// Added after scaling, one per column.
    pub bias: Option<&'a [f32]>,
    /// `max(·, 0)` on the result.
    pub relu: bool,
}

impl Int8Linear<'_> {
    /// Writes the `(rows, N)` result into `out`; `row_scales` (one per row) gets each row's
    /// activation scale. Panics on inconsistent sizes (a caller bug).
    pub(crate) fn run(&self, row_scales: &mut [f32], out: &mut [f32]) {
        self.run_on(Int8Path::best(), row_scales, out)
    }

    fn run_on(&self, path: Int8Path, row_scales: &mut [f32], out: &mut [f32]) {
        let (b, rows) = (self.kernel, self.rows);
        let (depth, n) = (b.depth, b.width);
        assert!(self.x.len() >= rows * depth, "int8 linear input too short");
        assert!(
            row_scales.len() >= rows && out.len() >= rows * n,
            "int8 linear output too short"
        );
        assert!(self.column_scales.len() >= n && self.factors.is_none_or(|f| f.len() >= n));
        if n == 0 || rows == 0 {
            return;
        }
        // A scale for the whole batch is measured before the tasks start.
        let fixed = match self.scaling {
            RowScaling::PerRow => None,
            RowScaling::PerTensor => Some(scale_of(abs_max(&self.x[..rows * depth]))),
            RowScaling::Fixed(scale) => Some(scale),
        };
        let small = rows * depth * n < PARALLEL_MIN;
        let per_task = if small { rows } else { rows_per_task(rows) };
        // `sums`: the `i32` sums the paths that scale in a second pass reuse within a task.
        let task = |task: usize, out: &mut [f32], scales: &mut [f32], sums: &mut Vec<i32>| {
            let (first, count) = (task * per_task, scales.len());
            let x = &self.x[first * depth..][..count * depth];
            // A reused buffer: the bytes past the last row, read against the kernel's zero
            // rows, may hold anything.
            with_int8_scratch(b.activations_len(count, depth), 0, |a, _| {
                for ((x, a), scale) in x.chunks(depth).zip(a.chunks_mut(depth)).zip(scales.iter_mut()) {
                    *scale = fixed.unwrap_or_else(|| scale_of(abs_max(x)));
                    quantize_row(x, *scale, a);
                }
                let rescale = Rescale {
                    scales: match self.factors {
                        Some(factors) => Scales::Multiply { factors },
                        None => Scales::Divide {
                            row_scales: scales,
                            rows_per_scale: 1,
                            column_scales: self.column_scales,
                        },
                    },
                    bias: self.bias,
                    relu: self.relu,
                };
                #[cfg(target_arch = "x86_64")]
                let unsigned = path == Int8Path::Avx2 && no_negative(a);
                #[cfg(not(target_arch = "x86_64"))]
                let unsigned = false;
                check_sizes(a, count, depth, b, out.len());
                if path.scales_in_tile() {
                    let sink = Sink::Scaled { out, rescale: &rescale };
                    return product_rows(path, a, count, depth, b, unsigned, sink);
                }
                // Every element is overwritten by the product below.
                sums.resize(count * n, 0);
                product_rows(path, a, count, depth, b, unsigned, Sink::Sums(sums));
                for (r, (sums, out)) in sums.chunks_exact(n).zip(out.chunks_exact_mut(n)).enumerate() {
                    let (row_scale, factors) = rescale.for_row(r);
                    rescale_row(sums, row_scale, &factors[..n], rescale.bias, rescale.relu, out);
                }
            });
        };
        if small {
            // Too little to pay for handing out tasks.
            return task(0, &mut out[..rows * n], &mut row_scales[..rows], &mut Vec::new());
        }
        out[..rows * n]
            .par_chunks_mut(per_task * n)
            .zip(row_scales[..rows].par_chunks_mut(per_task))
            .enumerate()
            .for_each_init(Vec::new, |sums, (index, (out, scales))| task(index, out, scales, sums));
    }
}

/// Where a product's scaled result goes: `f32`, or quantized again with a scale.
pub(super) enum Output<'s> {
    F32(&'s mut [f32]),
    Int8(&'s mut [i8], f32),
}

impl<'s> Output<'s> {
    pub(super) fn len(&self) -> usize {
        match self {
            Output::F32(out) => out.len(),
            Output::Int8(out, _) => out.len(),
        }
    }

    /// The first `len` values.
    pub(super) fn prefix(self, len: usize) -> Output<'s> {
        match self {
            Output::F32(out) => Output::F32(&mut out[..len]),
            Output::Int8(out, scale) => Output::Int8(&mut out[..len], scale),
        }
    }
}

impl Int8Path {
    /// True for the path whose tiles scale their sums into the output themselves (VNNI); the
    /// others write `i32` sums and scale them in a second pass.
    pub(super) fn scales_in_tile(self) -> bool {
        match self {
            #[cfg(target_arch = "x86_64")]
            Int8Path::Vnni => true,
            _ => false,
        }
    }
}

/// Where a tile's exact sums go: an `i32` buffer, or scaled straight into the output.
pub(super) enum Sink<'s> {
    /// The sums themselves, `(rows, N)`.
    Sums(&'s mut [i32]),
    /// `rescale(sums)` into `(rows, N)` of `f32` (the rows are `rescale`'s from 0).
    Scaled {
        out: &'s mut [f32],
        rescale: &'s Rescale<'s>,
    },
}

fn check_sizes(a: &[i8], rows: usize, stride: usize, b: &PackedInt8, out_len: usize) {
    assert!(stride >= b.depth, "int8 activations: a row stride below the depth");
    assert!(a.len() >= b.activations_len(rows, stride), "int8 activations too short");
    assert!(out_len >= rows * b.width, "int8 product output too short");
}

/// One task's rows: tiles of 4 rows (then the 1–3 left) on the chosen path. Only the VNNI
/// path takes a [`Sink::Scaled`]. `unsigned`: no byte of `a` is negative ([`no_negative`]),
/// which spares the AVX2 path its sign handling.
pub(super) fn product_rows(
    path: Int8Path,
    a: &[i8],
    rows: usize,
    stride: usize,
    b: &PackedInt8,
    unsigned: bool,
    sink: Sink,
) {
    match (path, sink) {
        (Int8Path::Scalar, Sink::Sums(out)) => scalar_rows(a, rows, stride, b, out),
        #[cfg(target_arch = "x86_64")]
        // SAFETY: `Int8Path::best` or `available` chose this path after checking the CPU has
        // AVX2; the buffer lengths were checked by `check_sizes`; the caller checked `unsigned`.
        (Int8Path::Avx2, Sink::Sums(out)) => unsafe { x86::avx2_rows(a, rows, stride, b, unsigned, out) },
        #[cfg(target_arch = "x86_64")]
        // SAFETY: as above, for AVX-512F/BW and VNNI.
        (Int8Path::Vnni, mut sink) => unsafe { x86::vnni_rows(a, rows, stride, b, &mut sink) },
        _ => unreachable!("only the VNNI tiles scale their sums"),
    }
}

/// True when no byte of `a` is negative: a scan, small next to the products that read each
/// byte many times.
pub(super) fn no_negative(a: &[i8]) -> bool {
    // An OR of sign bits per chunk, which vectorizes where `any`, stopping early, does not.
    a.chunks(256)
        .all(|chunk| chunk.iter().fold(0u8, |bits, &v| bits | v as u8) & 0x80 == 0)
}

/// The scalar path, reading the packed layout (so the tests check the packing too).
fn scalar_rows(a: &[i8], rows: usize, stride: usize, b: &PackedInt8, out: &mut [i32]) {
    let n = b.width;
    for r in 0..rows {
        let row = &a[r * stride..][..b.depth];
        for col in 0..n {
            let (block, column) = (col / BLOCK, col % BLOCK);
            let mut sum = 0i32;
            for (k, &x) in row.iter().enumerate() {
                let w = b.data[(block * b.quads + k / 4) * QUAD_BYTES + column * 4 + k % 4];
                sum += i32::from(x) * i32::from(w);
            }
            out[r * n + col] = sum;
        }
    }
}

#[cfg(target_arch = "x86_64")]
pub(super) mod x86 {
    use super::{BLOCK, PackedInt8, QUAD_BYTES, Sink};
    use std::arch::x86_64::*;

    /// Reads the 4 activation bytes of quad `q` of the row at `row` as one `i32`.
    #[inline(always)]
    unsafe fn quad(row: *const i8, q: usize) -> i32 {
        // SAFETY: the caller keeps `row + 4q + 4` inside the activations (`check_sizes`).
        unsafe { std::ptr::read_unaligned(row.add(q * 4) as *const i32) }
    }

    /// Copies the valid columns of a 16-column block of sums into the output row.
    #[inline(always)]
    fn store(sums: &[i32; BLOCK], out: &mut [i32], n: usize, row: usize, block: usize) {
        let start = block * BLOCK;
        let count = BLOCK.min(n - start);
        out[row * n + start..][..count].copy_from_slice(&sums[..count]);
    }

    /// # Safety
    /// The CPU has AVX-512F/BW and VNNI, and the buffers passed `check_sizes`.
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    pub(super) unsafe fn vnni_rows(a: &[i8], rows: usize, stride: usize, b: &PackedInt8, out: &mut Sink) {
        let mut r = 0;
        while r < rows {
            let take = (rows - r).min(4);
            let mut block = 0;
            while block < b.blocks() {
                // Four blocks where there are: 16 sums in flight hide `vpdpbusd`'s latency,
                // and each broadcast feeds four of them.
                // (The last rows, fewer than 4, take two blocks at a time: fewer tiles to
                // compile.)
                let width = match (b.blocks() - block, take) {
                    (4.., 4) => 4,
                    (2.., _) => 2,
                    _ => 1,
                };
                // SAFETY: rows r..r+take and blocks block..block+width exist (loop bounds);
                // the activation bytes were checked by `check_sizes`.
                unsafe {
                    match (take, width) {
                        (4, 4) => vnni_tile::<4, 4>(a, r, stride, b, block, out),
                        (4, 2) => vnni_tile::<4, 2>(a, r, stride, b, block, out),
                        (4, _) => vnni_tile::<4, 1>(a, r, stride, b, block, out),
                        (3, 2) => vnni_tile::<3, 2>(a, r, stride, b, block, out),
                        (3, _) => vnni_tile::<3, 1>(a, r, stride, b, block, out),
                        (2, 2) => vnni_tile::<2, 2>(a, r, stride, b, block, out),
                        (2, _) => vnni_tile::<2, 1>(a, r, stride, b, block, out),
                        (_, 2) => vnni_tile::<1, 2>(a, r, stride, b, block, out),
                        (_, _) => vnni_tile::<1, 1>(a, r, stride, b, block, out),
                    }
                }
                block += width;
            }
            r += take;
        }
    }

    /// `R` rows × `C` blocks of 16 columns: `R·C` registers of sums, each kernel load used by
    /// `R` rows and each activation broadcast by `C` blocks.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    unsafe fn vnni_tile<const R: usize, const C: usize>(
        a: &[i8],
        first_row: usize,
        stride: usize,
        b: &PackedInt8,
        block: usize,
        out: &mut Sink,
    ) {
        let mut sums = [[_mm512_setzero_si512(); C]; R];
        let flip = _mm512_set1_epi8(i8::MIN);
        let kernel = b.data.as_ptr();
        let rows = a.as_ptr();
        for q in 0..b.quads {
            let mut w = [_mm512_setzero_si512(); C];
            for (c, w) in w.iter_mut().enumerate() {
                // SAFETY: block + c < blocks and q < quads: inside the packed data.
                *w = unsafe { _mm512_loadu_si512(kernel.add(((block + c) * b.quads + q) * QUAD_BYTES) as *const _) };
            }
            for (r, sums) in sums.iter_mut().enumerate() {
                // SAFETY: see `quad`.
                let x = unsafe { quad(rows.add((first_row + r) * stride), q) };
                let x = _mm512_xor_si512(_mm512_set1_epi32(x), flip);
                for c in 0..C {
                    sums[c] = _mm512_dpbusd_epi32(sums[c], x, w[c]);
                }
            }
        }
        let n = b.width;
        for (r, sums) in sums.iter().enumerate() {
            for (c, &sum) in sums.iter().enumerate() {
                // SAFETY: column_sums holds whole blocks.
                let column_sums =
                    unsafe { _mm512_loadu_si512(b.column_sums.as_ptr().add((block + c) * BLOCK) as *const _) };
                let exact = _mm512_sub_epi32(sum, _mm512_slli_epi32::<7>(column_sums));
                // The block's valid columns, stored straight into the output row (masked
                // loads and stores for a last, partial block).
                let start = (block + c) * BLOCK;
                let count = BLOCK.min(n - start);
                let mask = if count == BLOCK {
                    u16::MAX
                } else {
                    ((1u32 << count) - 1) as u16
                };
                let row = first_row + r;
                // SAFETY: row `row` of the task's output holds columns `start..start + count`
                // (`check_sizes`), and the masks touch only those; the scales, factors and bias
                // hold `n` values (checked by the callers).
                unsafe {
                    match out {
                        Sink::Sums(out) => {
                            _mm512_mask_storeu_epi32(out[row * n + start..].as_mut_ptr(), mask, exact);
                        }
                        Sink::Scaled { out, rescale } => {
                            let (row_scale, factors) = rescale.for_row(row);
                            scale_store(exact, rescale, row_scale, factors, start, mask, out, row * n + start)
                        }
                    }
                }
            }
        }
    }

    /// Scales one block's exact sums as `rescale` says for a row whose scale and factors
    /// ([`super::Rescale::for_row`]) are `row_scale` and `factors`, columns `start..` of the
    /// lanes in `mask`, and stores them at `out[at..]`: the scalar pass's operations
    /// (`rescale_row_body`) lane by lane, so the same bits.
    ///
    /// # Safety
    /// The CPU has AVX-512F/BW; `out` holds the masked lanes from `at`; the scales, factors and
    /// bias hold the masked columns from `start`.
    #[inline]
    #[target_feature(enable = "avx512f,avx512bw,avx512vnni")]
    #[allow(clippy::too_many_arguments)] // One block's sums, their scaling and their place.
    unsafe fn scale_store(
        exact: __m512i,
        rescale: &super::Rescale,
        row_scale: Option<f32>,
        factors: &[f32],
        start: usize,
        mask: u16,
        out: &mut [f32],
        at: usize,
    ) {
        // SAFETY: the caller keeps the masked lanes inside the slices (see above).
        unsafe {
            let factors = _mm512_maskz_loadu_ps(mask, factors[start..].as_ptr());
            let sums = _mm512_cvtepi32_ps(exact);
            let mut y = match row_scale {
                Some(row_scale) => _mm512_div_ps(sums, _mm512_mul_ps(_mm512_set1_ps(row_scale), factors)),
                None => _mm512_mul_ps(sums, factors),
            };
            if let Some(bias) = rescale.bias {
                y = _mm512_add_ps(y, _mm512_maskz_loadu_ps(mask, bias[start..].as_ptr()));
            }
            if rescale.relu {
                // `max(y, 0)` gives 0 for a NaN `y`, as `f32::max` does.
                y = _mm512_max_ps(y, _mm512_setzero_ps());
            }
            _mm512_mask_storeu_ps(out[at..].as_mut_ptr(), mask, y);
        }
    }

    /// # Safety
    /// The CPU has AVX2, and the buffers passed `check_sizes`; with `unsigned`, no byte of `a`
    /// is negative.
    #[target_feature(enable = "avx2")]
    pub(super) unsafe fn avx2_rows(
        a: &[i8],
        rows: usize,
        stride: usize,
        b: &PackedInt8,
        unsigned: bool,
        out: &mut [i32],
    ) {
        let mut r = 0;
        while r < rows {
            let take = (rows - r).min(4);
            for block in 0..b.blocks() {
                // SAFETY: rows r..r+take and the block exist; activations checked by the caller.
                unsafe {
                    match (take, unsigned) {
                        (4, true) => avx2_tile::<4, true>(a, r, stride, b, block, out),
                        (3, true) => avx2_tile::<3, true>(a, r, stride, b, block, out),
                        (2, true) => avx2_tile::<2, true>(a, r, stride, b, block, out),
                        (_, true) => avx2_tile::<1, true>(a, r, stride, b, block, out),
                        (4, false) => avx2_tile::<4, false>(a, r, stride, b, block, out),
                        (3, false) => avx2_tile::<3, false>(a, r, stride, b, block, out),
                        (2, false) => avx2_tile::<2, false>(a, r, stride, b, block, out),
                        (_, false) => avx2_tile::<1, false>(a, r, stride, b, block, out),
                    }
                }
            }
            r += take;
        }
    }

    /// `R` rows × one block (two 8-column halves). `UNSIGNED` activations are their own
    /// unsigned bytes (a pair of products is at most `2 · 127²`, inside an `i16`); others go in
    /// as `|a|` and `b · sign(a)`.
    #[inline]
    #[target_feature(enable = "avx2")]
    unsafe fn avx2_tile<const R: usize, const UNSIGNED: bool>(
        a: &[i8],
        first_row: usize,
        stride: usize,
        b: &PackedInt8,
        block: usize,
        out: &mut [i32],
    ) {
        let mut sums = [[_mm256_setzero_si256(); 2]; R];
        let ones = _mm256_set1_epi16(1);
        let kernel = b.data.as_ptr();
        let rows = a.as_ptr();
        for q in 0..b.quads {
            // SAFETY: block < blocks and q < quads: inside the packed data.
            let base = unsafe { kernel.add((block * b.quads + q) * QUAD_BYTES) };
            // SAFETY: a quad is 64 bytes: two loads of 32.
            let w = unsafe {
                [
                    _mm256_loadu_si256(base as *const _),
                    _mm256_loadu_si256(base.add(32) as *const _),
                ]
            };
            for (r, sums) in sums.iter_mut().enumerate() {
                // SAFETY: see `quad`.
                let x = _mm256_set1_epi32(unsafe { quad(rows.add((first_row + r) * stride), q) });
                for half in 0..2 {
                    let pairs = if UNSIGNED {
                        _mm256_maddubs_epi16(x, w[half])
                    } else {
                        _mm256_maddubs_epi16(_mm256_abs_epi8(x), _mm256_sign_epi8(w[half], x))
                    };
                    sums[half] = _mm256_add_epi32(sums[half], _mm256_madd_epi16(pairs, ones));
                }
            }
        }
        let mut lanes = [0i32; BLOCK];
        for (r, sums) in sums.iter().enumerate() {
            // SAFETY: `lanes` holds 16 i32, two stores of 8.
            unsafe {
                _mm256_storeu_si256(lanes.as_mut_ptr() as *mut _, sums[0]);
                _mm256_storeu_si256(lanes.as_mut_ptr().add(8) as *mut _, sums[1]);
            }
            store(&lanes, out, b.width, first_row + r, block);
        }
    }
}

/// How [`quantize_rows`] scales the rows it quantizes.
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum RowScaling {
    /// Each row its own abs-max scale (Keras's `AbsMaxQuantizer(axis=-1)`).
    PerRow,
    /// One abs-max scale over all the rows.
    PerTensor,
    /// A scale fixed beforehand (a calibrated layer's): no pass over the values to find it.
    Fixed(f32),
}

/// Keras's `abs_max_quantize` of `rows` rows of `depth` values (`x` row-major):
/// `scale = 127 / (max|x| + 1e-7)`, `q = clip(round_half_even(x · scale), -127, 127)`.
/// Rows land `stride` bytes apart in `out`. `scales` gets one scale per row for
/// [`RowScaling::PerRow`], the one scale in `scales[0]` otherwise.
pub(crate) fn quantize_rows(
    x: &[f32],
    rows: usize,
    depth: usize,
    stride: usize,
    scaling: RowScaling,
    out: &mut [i8],
    scales: &mut [f32],
) {
    if rows == 0 || depth == 0 {
        return;
    }
    let x = &x[..rows * depth];
    let fixed = match scaling {
        RowScaling::PerRow => None,
        RowScaling::PerTensor => Some(scale_of(abs_max(x))),
        RowScaling::Fixed(scale) => Some(scale),
    };
    if let Some(scale) = fixed {
        scales[0] = scale;
    }
    if rows * depth < PARALLEL_MIN {
        // Too little to pay for handing out tasks.
        for (r, (out, row)) in out.chunks_mut(stride).zip(x.chunks(depth)).enumerate() {
            let scale = fixed.unwrap_or_else(|| scale_of(abs_max(row)));
            if fixed.is_none() {
                scales[r] = scale;
            }
            quantize_row(row, scale, out);
        }
        return;
    }
    let rows_out = out.par_chunks_mut(stride).zip(x.par_chunks(depth));
    match fixed {
        Some(scale) => rows_out.for_each(|(out, row)| quantize_row(row, scale, out)),
        None => rows_out
            .zip(scales[..rows].par_iter_mut())
            .for_each(|((out, row), scale)| {
                *scale = scale_of(abs_max(row));
                quantize_row(row, *scale, out);
            }),
    }
}

thread_local! {
    /// Each thread's two int8 working buffers (see [`with_int8_scratch`]).
    static SCRATCH: RefCell<[Vec<i8>; 2]> = const { RefCell::new([Vec::new(), Vec::new()]) };
}

/// Runs `work` on this thread's two int8 working buffers, at least `first` and `second` long
/// (contents unspecified): an int8 layer's quantized input and its gathered patches, reused
/// between batches so a layer neither allocates nor faults in fresh memory each time. As
/// `kernels::scratch`, the buffers are taken out of their slot while `work` runs, so a nested
/// call gets buffers of its own.
pub(crate) fn with_int8_scratch<R>(first: usize, second: usize, work: impl FnOnce(&mut [i8], &mut [i8]) -> R) -> R {
    let [mut a, mut b] = SCRATCH.with(RefCell::take);
    if a.len() < first {
        a.resize(first, 0);
    }
    if b.len() < second {
        b.resize(second, 0);
    }
    let result = work(&mut a[..first], &mut b[..second]);
    SCRATCH.with(|slot| {
        let mut slot = slot.borrow_mut();
        // Keep the larger buffers when a nested call left some behind.
        if slot[0].len() < a.len() {
            slot[0] = a;
        }
        if slot[1].len() < b.len() {
            slot[1] = b;
        }
    });
    result
}

/// Keras's `abs_max_quantize` scale for a largest magnitude `max` (its epsilon is 1e-7).
pub(crate) fn scale_of(max: f32) -> f32 {
    127.0f32 / (max + 1e-7)
}

/// Compiles `$body` (an `#[inline(always)]` function) for AVX-512 and for AVX2 as well as the
/// baseline, and calls the one [`simd_level`] names, as `update.rs` does: the baseline has no
/// vector rounding, minimum or maximum, which these loops are made of. Every variant does the
/// same IEEE operations, so the results are identical.
macro_rules! dispatched {
    ($(#[$doc:meta])* $name:ident($($arg:ident: $ty:ty),*) $(-> $ret:ty)?, $body:ident) => {
        $(#[$doc])*
        pub(crate) fn $name($($arg: $ty),*) $(-> $ret)? {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                fn wide($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                #[target_feature(enable = "avx2")]
                fn narrow($($arg: $ty),*) $(-> $ret)? {
                    $body($($arg),*)
                }
                match simd_level() {
                    // SAFETY: `simd_level` reports a level only where the CPU has its features.
                    SimdLevel::Avx512 => return unsafe { wide($($arg),*) },
                    // SAFETY: as above.
                    SimdLevel::Avx2 => return unsafe { narrow($($arg),*) },
                    SimdLevel::Scalar => {}
                }
            }
            $body($($arg),*)
        }
    };
}

dispatched!(
    /// The largest magnitude in `values` (0 for none; NaN if one is NaN, as NumPy's `max`).
    abs_max(values: &[f32]) -> f32,
    abs_max_body
);

dispatched!(
    /// `clip(round_half_even(v · scale), -127, 127)` of each value (NumPy's `round` rounds half
    /// to even, as Keras's `ops.round` does).
    quantize_row(row: &[f32], scale: f32, out: &mut [i8]),
    quantize_row_body
);

dispatched!(
    /// One output row: `sum / (row_scale · factor) + bias` (Keras's int8 `Dense` order), or
    /// `sum · factor + bias` without a row scale; then `max(·, 0)` with `relu`.
    rescale_row(sums: &[i32], row_scale: Option<f32>, factors: &[f32], bias: Option<&[f32]>, relu: bool, out: &mut [f32]),
    rescale_row_body
);

dispatched!(
    /// `out[g · W + n] = 1 / (row_scales[g] · column_scales[n])` for `W` column scales: an
    /// int8 convolution's factors for each image (or the one scale), computed once per call
    /// instead of a division per output ([`Scales::GroupFactors`]).
    group_factors(row_scales: &[f32], column_scales: &[f32], out: &mut [f32]),
    group_factors_body
);

#[inline(always)]
fn group_factors_body(row_scales: &[f32], column_scales: &[f32], out: &mut [f32]) {
    let width = column_scales.len().max(1);
    for (out, &row_scale) in out.chunks_exact_mut(width).zip(row_scales) {
        for (factor, &column_scale) in out.iter_mut().zip(column_scales) {
            *factor = 1.0 / (row_scale * column_scale);
        }
    }
}

#[inline(always)]
fn abs_max_body(values: &[f32]) -> f32 {
    // The magnitude's bits order as the magnitudes do (NaN's above infinity's), and integer
    // maxima vectorize where `f32::max`, with its NaN rule, does not.
    let bits = values.iter().fold(0u32, |m, v| m.max(v.to_bits() & 0x7fff_ffff));
    f32::from_bits(bits)
}

#[inline(always)]
fn quantize_row_body(row: &[f32], scale: f32, out: &mut [i8]) {
    /// 1.5 · 2²³: adding and taking it off rounds any `|y| < 2²²` to an integer, half to even
    /// (the default IEEE rounding), the same as `round_ties_even` but in vector registers.
    const ROUND: f32 = 12_582_912.0;
    let out = &mut out[..row.len()];
    for i in 0..row.len() {
        // Clipping first, to the integers ±127, gives the same integer as clipping after.
        let y = (row[i] * scale).clamp(-127.0, 127.0);
        let y = if y.is_nan() { 0.0 } else { y };
        // `y + ROUND` lies in [2²³, 2²⁴), where one unit of the last place is 1: its bits
        // minus ROUND's are the rounded integer, with no float-to-int conversion.
        out[i] = ((y + ROUND).to_bits() as i32 - ROUND.to_bits() as i32) as i8;
    }
}

#[inline(always)]
fn rescale_row_body(
    sums: &[i32],
    row_scale: Option<f32>,
    factors: &[f32],
    bias: Option<&[f32]>,
    relu: bool,
    out: &mut [f32],
) {
    let n = out.len();
    let (sums, factors) = (&sums[..n], &factors[..n]);
    match row_scale {
        Some(row_scale) => {
            for i in 0..n {
                out[i] = sums[i] as f32 / (row_scale * factors[i]);
            }
        }
        None => {
            for i in 0..n {
                out[i] = sums[i] as f32 * factors[i];
            }
        }
    }
    if let Some(bias) = bias {
        let bias = &bias[..n];
        for i in 0..n {
            out[i] += bias[i];
        }
    }
    if relu {
        // As the graph's ReLU: `max(x, 0)`.
        for value in out.iter_mut() {
            *value = value.max(0.0);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The plain triple loop on the unpacked matrices: the reference every path must equal.
    fn reference(a: &[i8], rows: usize, stride: usize, b: &[i8], depth: usize, width: usize) -> Vec<i32> {
        let mut out = vec![0i32; rows * width];
        for r in 0..rows {
            for n in 0..width {
                out[r * width + n] = (0..depth)
                    .map(|k| i32::from(a[r * stride + k]) * i32::from(b[k * width + n]))
                    .sum();
            }
        }
        out
    }

    /// Deterministic values over the whole range [-127, 127], extremes included.
    fn values(len: usize, seed: u64) -> Vec<i8> {
        let mut state = seed;
        (0..len)
            .map(|i| {
                state = state
                    .wrapping_mul(6364136223846793005)
                    .wrapping_add(1442695040888963407);
                match i % 11 {
                    0 => 127,
                    1 => -127,
                    _ => (((state >> 33) % 255) as i32 - 127) as i8,
                }
            })
            .collect()
    }

    /// Every path gives the reference's integers on odd sizes (partial quads, partial blocks,
    /// 1–3 leftover rows, a row stride longer than the depth), and so does the thread count.
    #[test]
    fn every_path_matches_the_reference_bit_for_bit() {
        for &(rows, depth, width, stride) in &[
            (1, 1, 1, 1),
            (3, 5, 17, 5),
            (7, 13, 33, 16),
            (18, 64, 16, 64),
            (37, 131, 50, 131),
            (5, 784, 10, 787),
        ] {
            let b = values(depth * width, 7 + depth as u64);
            let packed = PackedInt8::pack(&b, depth, width);
            let mut signed = values(rows * stride, 3 + rows as u64);
            signed.resize(packed.activations_len(rows, stride).max(signed.len()), 0);
            // And none negative: the AVX2 path's unsigned products.
            let nonnegative: Vec<i8> = signed.iter().map(|v| (*v).max(0)).collect();
            for (a, path) in [&signed, &nonnegative]
                .into_iter()
                .flat_map(|a| Int8Path::available().into_iter().map(move |path| (a, path)))
            {
                let want = reference(a, rows, stride, &b, depth, width);
                let mut got = vec![0i32; rows * width];
                int8_matmul_on(path, a, rows, stride, &packed, &mut got);
                assert_eq!(got, want, "{path:?} on rows {rows}, depth {depth}, width {width}");
                for threads in [1, 2] {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let mut got = vec![0i32; rows * width];
                    pool.install(|| int8_matmul_on(path, a, rows, stride, &packed, &mut got));
                    assert_eq!(got, want, "{path:?} on {threads} threads");
                }
            }
        }
    }

    /// The extremes: every product 127·127 or -127·127 over a deep sum stays exact.
    #[test]
    fn extreme_values_sum_exactly() {
        let (rows, depth, width) = (4, 4099, 3);
        let b: Vec<i8> = (0..depth * width)
            .map(|i| if i % 3 == 0 { -127 } else { 127 })
            .collect();
        let signed: Vec<i8> = (0..rows * depth + 3)
            .map(|i| if i % 2 == 0 { 127 } else { -127 })
            .collect();
        // All 127: the unsigned products' largest pairs, 2 · 127², just inside an `i16`.
        let nonnegative = vec![127i8; rows * depth + 3];
        let packed = PackedInt8::pack(&b, depth, width);
        for a in [&signed, &nonnegative] {
            let want = reference(a, rows, depth, &b, depth, width);
            for path in Int8Path::available() {
                let mut got = vec![0i32; rows * width];
                int8_matmul_on(path, a, rows, depth, &packed, &mut got);
                assert_eq!(got, want, "{path:?}");
            }
        }
    }

    /// The vector rounding equals `round_ties_even` (halves to even: 0.5 → 0, 1.5 → 2,
    /// -2.5 → -2), clipping and NaN included, and the abs-max is exact.
    #[test]
    fn quantizing_rounds_half_to_even_and_clips() {
        let row: Vec<f32> = (-700..=700)
            .map(|i| i as f32 * 0.25)
            .chain([
                0.5,
                1.5,
                2.5,
                -0.5,
                -2.5,
                126.5,
                -126.5,
                127.49,
                300.0,
                -1e30,
                f32::NAN,
                -0.0,
            ])
            .collect();
        let mut got = vec![0i8; row.len()];
        quantize_row(&row, 1.0, &mut got);
        for (v, q) in row.iter().zip(&got) {
            let want = if v.is_nan() {
                0
            } else {
                v.round_ties_even().clamp(-127.0, 127.0) as i8
            };
            assert_eq!(*q, want, "{v}");
        }
        assert_eq!(abs_max(&[0.5, -3.25, 2.0]), 3.25);
        assert_eq!(abs_max(&[]), 0.0);
    }

    /// The scaled `f32` output is the plain loops' bits (quantizing the whole input, the
    /// reference product, `rescale_row` per row) on every path (the VNNI tiles scale in the
    /// tile, the others in a second pass) and at every SIMD level `STRATA_SIMD` can force
    /// (quantizing included, in tasks of 16, 16 and 5 rows), for the three ways of scaling,
    /// with a bias and a ReLU, on 1 and 2 threads.
    #[test]
    fn every_path_and_level_gives_the_same_scaled_bits() {
        use crate::kernels::SimdLevel;
        let (rows, depth, width) = (37, 131, 50);
        let b = values(depth * width, 9);
        let packed = PackedInt8::pack(&b, depth, width);
        let x: Vec<f32> = (0..rows * depth)
            .map(|i| ((i * 7919) % 1000) as f32 / 250.0 - 2.0)
            .collect();
        let column_scales: Vec<f32> = (0..width).map(|n| 30.0 + n as f32 * 0.5).collect();
        let bias: Vec<f32> = (0..width).map(|n| n as f32 * 0.01 - 0.2).collect();
        let run = |scaling: RowScaling, path: Option<Int8Path>| -> Vec<u32> {
            let linear = Int8Linear {
                x: &x,
                rows,
                scaling,
                kernel: &packed,
                column_scales: &column_scales,
                factors: matches!(scaling, RowScaling::Fixed(_)).then_some(column_scales.as_slice()),
                bias: Some(&bias),
                relu: true,
            };
            let (mut out, mut row_scales) = (vec![0.0f32; rows * width], vec![0.0f32; rows]);
            match path {
                Some(path) => linear.run_on(path, &mut row_scales, &mut out),
                None => linear.run(&mut row_scales, &mut out),
            }
            out.iter().map(|v| v.to_bits()).collect()
        };
        // The plain loops: quantized all at once, multiplied, scaled row by row.
        let plain = |scaling: RowScaling| -> Vec<u32> {
            let (mut a, mut scales) = (vec![0i8; rows * depth], vec![0.0f32; rows]);
            quantize_rows(&x, rows, depth, depth, scaling, &mut a, &mut scales);
            let sums = reference(&a, rows, depth, &b, depth, width);
            let mut out = vec![0.0f32; rows * width];
            for r in 0..rows {
                let row_scale = match scaling {
                    RowScaling::PerRow => Some(scales[r]),
                    RowScaling::PerTensor => Some(scales[0]),
                    RowScaling::Fixed(_) => None,
                };
                let row = &mut out[r * width..][..width];
                rescale_row_body(&sums[r * width..], row_scale, &column_scales, Some(&bias), true, row);
            }
            out.iter().map(|v| v.to_bits()).collect()
        };
        for scaling in [RowScaling::PerRow, RowScaling::PerTensor, RowScaling::Fixed(0.02)] {
            let want = plain(scaling);
            for path in Int8Path::available() {
                assert_eq!(run(scaling, Some(path)), want, "{path:?}, {scaling:?}");
            }
            let levels = [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512];
            for level in levels.into_iter().filter(|&level| level <= SimdLevel::detected()) {
                for threads in [1, 2] {
                    let pool = crate::kernels::simd::limited_pool(threads, level);
                    let got = pool.install(|| {
                        assert!(crate::kernels::simd_level() <= level);
                        run(scaling, None)
                    });
                    assert_eq!(got, want, "{level:?}, {threads} threads, {scaling:?}");
                }
            }
        }
    }

    /// Each group's factors are `1 / (row scale · column scale)`, bit for bit, at every SIMD
    /// level (19 columns: whole vectors and a remainder).
    #[test]
    fn group_factors_are_the_reciprocal_products_at_every_level() {
        use crate::kernels::{SimdLevel, limit_simd_on_this_thread};
        let rows = [0.5f32, 3.0, 1e-7, 127.0];
        let columns: Vec<f32> = (0..19).map(|n| 40.0 + n as f32 * 0.3).collect();
        for level in [SimdLevel::Scalar, SimdLevel::Avx2, SimdLevel::Avx512] {
            limit_simd_on_this_thread(Some(level));
            let mut out = vec![0.0f32; rows.len() * columns.len()];
            group_factors(&rows, &columns, &mut out);
            for (g, &r) in rows.iter().enumerate() {
                for (n, &c) in columns.iter().enumerate() {
                    assert_eq!(
                        out[g * columns.len() + n].to_bits(),
                        (1.0 / (r * c)).to_bits(),
                        "{level:?}"
                    );
                }
            }
        }
        limit_simd_on_this_thread(None);
    }

    /// The path follows the SIMD level: scalar at the scalar level, AVX2 at the AVX2 level.
    #[test]
    fn the_path_follows_the_simd_level() {
        use crate::kernels::{SimdLevel, limit_simd_on_this_thread};
        limit_simd_on_this_thread(Some(SimdLevel::Scalar));
        assert_eq!(Int8Path::best(), Int8Path::Scalar);
        #[cfg(target_arch = "x86_64")]
        if SimdLevel::detected() >= SimdLevel::Avx2 {
            limit_simd_on_this_thread(Some(SimdLevel::Avx2));
            assert_eq!(Int8Path::best(), Int8Path::Avx2);
        }
        limit_simd_on_this_thread(None);
    }
}
