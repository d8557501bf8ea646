//! Products of small matrices that are already in cache, for the Winograd convolution: no
//! packing, a block of the result (6 rows by two vectors, or four with AVX-512's 32 registers)
//! held in registers while the inner dimension runs. Every element is summed over the inner
//! dimension in order, one multiply-add at a time, whatever the vector width and blocking, so
//! the AVX-512 and AVX2 paths give bit-identical results.
//!
//! The caller lays the operands out so that rows of `b` are contiguous and `a` is read one
//! value at a time (broadcast), at any strides: `a` may be stored as rows or as columns.
//!
//! # Why not gemm-f32
//!
//! Matrix products otherwise go through gemm-f32 ([`super::matmul()`]); this module is the
//! exception, because the Winograd products are many and tiny: a cache-resident block of the
//! `cnn`'s conv2 makes 3 × 36 products of 18×32×64-sized shapes, conv3's 3 × 25 of 16×64×64,
//! thousands of calls per training step. At these shapes gemm-f32's cost per call (dispatch,
//! blocking decisions, a packing buffer allocated on every call) outweighs the product, and it
//! would make an otherwise allocation-free step allocate on every call. The timings, per block
//! and for a whole step with gemm-f32 swapped in, are in docs/PERFORMANCE.md, "Why the Winograd
//! products use a hand-written kernel" and "Figures moved from code comments"; the ignored test
//! `cargo test --release --lib small_gemm -- --ignored --nocapture` reproduces them.

use super::activation::{Activation, activate};
use super::simd::{Simd, dispatch_simd};

/// A read-only matrix: element (row, col) is `data[row·row_stride + col·col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) row_stride: usize,
    pub(crate) col_stride: usize,
}

/// How a block of the result reads its left operand: each row from its own start, and the
/// inner dimension in runs of evenly spaced values. [`Strided`] is one run per row; a
/// convolution's receptive fields read in place are one run per kernel row
/// (`packed_product::Fields`).
pub(crate) trait LeftOperand: Copy {
    /// Panics unless elements `(row, p)` for rows `first_row..first_row + rows` and
    /// `p < k` all lie inside the operand (the block kernel then reads them unchecked).
    fn check(&self, first_row: usize, rows: usize, k: usize);
    /// Where row `row` starts (only offset by [`LeftOperand::run_at`]'s offsets, never read
    /// itself unless offset 0 is).
    fn row_start(&self, row: usize) -> *const f32;
    /// The run of the inner dimension from `p` (below `k`): the offset of element `p` from its
    /// row's start, the run's length (at most `k − p`, at least 1) and the step between
    /// its values.
    fn run_at(&self, p: usize, k: usize) -> (usize, usize, usize);
}

impl LeftOperand for Strided<'_> {
    fn check(&self, first_row: usize, rows: usize, k: usize) {
        assert!(
            rows == 0
                || k == 0
                || (first_row + rows - 1) * self.row_stride + (k - 1) * self.col_stride < self.data.len(),
            "small_gemm operand too short"
        );
    }

    #[inline(always)]
    fn row_start(&self, row: usize) -> *const f32 {
        self.data.as_ptr().wrapping_add(row * self.row_stride)
    }

    #[inline(always)]
    fn run_at(&self, p: usize, k: usize) -> (usize, usize, usize) {
        (p * self.col_stride, k - p, self.col_stride)
    }
}

/// Rows of the result held in registers at once.
const ROWS: usize = 6;

/// Memory a product will read after this one (the next depth block of a kernel streamed from
/// memory), fetched into the cache while this one computes: two lines at each inner step of
/// the first blocks of rows, so the fetches overlap the multiply-adds instead of stalling the
/// block of rows that reads them first. Only a hint: nothing is read, whatever the address.
#[derive(Clone, Copy)]
pub(crate) struct Ahead {
    /// The first byte to fetch.
    pub(crate) start: *const u8,
    /// How many bytes from `start`.
    pub(crate) len: usize,
}

/// Bytes per cache line.
const LINE: usize = 64;

/// Asks for the cache line holding `at`.
#[inline(always)]
fn prefetch_line(at: *const u8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: a prefetch is a hint that never faults, whatever the address.
    unsafe {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        _mm_prefetch::<_MM_HINT_T0>(at as *const i8)
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = at;
}

/// What a block of the result does with its sums.
#[derive(Clone, Copy)]
pub(crate) enum Store<'a> {
    /// Writes them, or adds them to the result when `accumulate`.
    Sums {
        /// Whether to add to the result rather than overwrite it.
        accumulate: bool,
    },
    /// Writes them after the output pass of `activation.rs`'s `finish_rows`, done while they
    /// are still in registers: plus `bias[col]`, plus `residual[row·stride + col]`, through
    /// `activation` (the same operations in the same order, so the same bits).
    Finished {
        /// One value per column of the product.
        bias: Option<&'a [f32]>,
        /// A matrix of the result's rows and columns, rows `stride` apart.
        residual: Option<(&'a [f32], usize)>,
        /// Applied last.
        activation: Activation,
    },
}

/// `c = a·b` (or `c += a·b` when `accumulate`) for `a` (rows × k), `b` (k × cols, row `p`
/// at `b[p·b_row_stride..]`) and `c` (rows × cols, row `i` at `c[i·c_row_stride..]`). `cols`
/// must be a multiple of the vector width `S::LANES`. Panics if an operand is too short (a bug
/// in the caller).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn small_gemm<S: Simd, A: LeftOperand>(
    s: S,
    dims: (usize, usize, usize),
    a: A,
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    accumulate: bool,
) {
    small_gemm_stored(s, dims, a, b, c, Store::Sums { accumulate });
}

/// [`small_gemm`] with the sums stored as `store` says.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn small_gemm_stored<S: Simd, A: LeftOperand>(
    s: S,
    dims: (usize, usize, usize),
    a: A,
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    store: Store,
) {
    small_gemm_ahead(s, dims, a, b, c, store, None);
}

/// [`small_gemm_stored`] that also fetches `ahead` into the cache as it goes.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn small_gemm_ahead<S: Simd, A: LeftOperand>(
    s: S,
    (rows, k, cols): (usize, usize, usize),
    a: A,
    (b, b_row_stride): (&[f32], usize),
    (c, c_row_stride): (&mut [f32], usize),
    store: Store,
    ahead: Option<Ahead>,
) {
    let lanes = S::LANES;
    assert!(cols % lanes == 0, "small_gemm works on whole vectors");
    if rows == 0 || cols == 0 || k == 0 {
        let writes_nothing = rows == 0 || cols == 0 || matches!(store, Store::Sums { accumulate: true });
        assert!(writes_nothing, "an empty product must accumulate");
        return;
    }
    // Every unchecked read below lies inside these extents.
    a.check(0, rows, k);
    assert!(
        (k - 1) * b_row_stride + cols <= b.len() && (rows - 1) * c_row_stride + cols <= c.len(),
        "small_gemm operand too short"
    );
    if let Store::Finished { bias, residual, .. } = store {
        assert!(
            bias.is_none_or(|b| b.len() >= cols)
                && residual.is_none_or(|(r, stride)| (rows - 1) * stride + cols <= r.len()),
            "small_gemm output pass operand too short"
        );
    }
    // Four vectors a row where 32 registers hold 6 × 4 sums (fewer loads per multiply-add),
    // two where 16 registers hold 6 × 2.
    let widest = if S::REGISTERS >= 32 { 4 } else { 2 };
    // The lines to fetch, shared out over the column blocks' whole blocks of rows (only those
    // fetch: they have the multiply-adds to hide it behind). `rows / ROWS` counts one block too
    // many where `column_block` balances the last two (16 rows: one block of 6, two of 5), so
    // there part of `ahead` is not asked for; counting them right, with four lines a step so
    // that all of it was, measured no faster (docs/PERFORMANCE.md, "F(4×4) by panels").
    let row_blocks = (rows / ROWS).max(1) * cols.div_ceil(widest * lanes);
    let lines = ahead.map_or(0, |ahead| ahead.len.div_ceil(LINE));
    let mut fetch = ahead.map(|ahead| Fetch {
        next: ahead.start,
        left: lines,
        per_block: lines.div_ceil(row_blocks).min(2 * k),
    });
    let mut j = 0;
    while j < cols {
        let (b, c) = ((b, b_row_stride), (&mut *c, c_row_stride));
        let fetch = fetch.as_mut();
        if widest == 4 && cols - j >= 4 * lanes {
            column_block::<S, 4, A>(s, (rows, k, j), a, b, c, store, fetch);
            j += 4 * lanes;
        } else if cols - j >= 2 * lanes {
            column_block::<S, 2, A>(s, (rows, k, j), a, b, c, store, fetch);
            j += 2 * lanes;
        } else {
            column_block::<S, 1, A>(s, (rows, k, j), a, b, c, store, fetch);
            j += lanes;
        }
    }
}

/// The lines of an [`Ahead`] still to fetch, and how many each block of rows fetches (two at
/// each of its inner steps).
struct Fetch {
    next: *const u8,
    left: usize,
    per_block: usize,
}

impl Fetch {
    /// The next block of rows' share: where it starts and how many lines.
    fn share(&mut self) -> (*const u8, usize) {
        let lines = self.per_block.min(self.left);
        let start = self.next;
        self.next = self.next.wrapping_add(lines * LINE);
        self.left -= lines;
        (start, lines)
    }
}

dispatch_simd!(small_gemm_on_widest<> => small_gemm_body(
    dims: (usize, usize, usize),
    a: Strided,
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    accumulate: bool
));

#[inline(always)]
fn small_gemm_body<S: Simd>(
    s: S,
    dims: (usize, usize, usize),
    a: Strided,
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    accumulate: bool,
) {
    small_gemm(s, dims, a, b, c, accumulate);
}

/// [`small_gemm`] on the widest vector path this thread may use (`cols` a multiple of 16, so
/// every path takes it), for callers outside a dispatched kernel of their own.
pub(crate) fn small_gemm_dispatched(
    dims: (usize, usize, usize),
    a: Strided,
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    accumulate: bool,
) {
    small_gemm_on_widest(dims, a, b, c, accumulate);
}

/// All rows of the result for the `V·LANES` columns from `first_col`.
#[inline(always)]
fn column_block<S: Simd, const V: usize, A: LeftOperand>(
    s: S,
    (rows, k, first_col): (usize, usize, usize),
    a: A,
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    store: Store,
    mut fetch: Option<&mut Fetch>,
) {
    let mut i = 0;
    while i < rows {
        let dims = (i, k, first_col);
        // Blocks of 6 rows, but the last two balanced (32 rows: 6, 6, 6, 6, 4, 4, not …, 6, 2):
        // a block of few rows has too few sums to hide the multiply-add latency.
        let left = rows - i;
        let size = if left > ROWS && left < 2 * ROWS {
            left.div_ceil(2)
        } else {
            left.min(ROWS)
        };
        let c = (&mut *c.0, c.1);
        let share = if size == ROWS {
            fetch.as_mut().map(|fetch| fetch.share())
        } else {
            None
        };
        match (size, share) {
            (1, _) => block::<S, 1, V, A, false>(s, dims, a, b, c, store, NO_FETCH),
            (2, _) => block::<S, 2, V, A, false>(s, dims, a, b, c, store, NO_FETCH),
            (3, _) => block::<S, 3, V, A, false>(s, dims, a, b, c, store, NO_FETCH),
            (4, _) => block::<S, 4, V, A, false>(s, dims, a, b, c, store, NO_FETCH),
            (5, _) => block::<S, 5, V, A, false>(s, dims, a, b, c, store, NO_FETCH),
            (_, Some(share)) => block::<S, ROWS, V, A, true>(s, dims, a, b, c, store, share),
            (_, None) => block::<S, ROWS, V, A, false>(s, dims, a, b, c, store, NO_FETCH),
        }
        i += size;
    }
}

/// No lines to fetch.
const NO_FETCH: (*const u8, usize) = (std::ptr::null(), 0);

/// Rows `first_row..first_row + R`, columns `first_col..first_col + V·LANES` of the result;
/// when `FETCH`, asking for the `lines` lines from `fetch_start` too, two at each inner step.
#[inline(always)]
#[allow(clippy::too_many_arguments)]
fn block<S: Simd, const R: usize, const V: usize, A: LeftOperand, const FETCH: bool>(
    s: S,
    (first_row, k, first_col): (usize, usize, usize),
    a: A,
    (b, b_row_stride): (&[f32], usize),
    (c, c_row_stride): (&mut [f32], usize),
    store: Store,
    (fetch_start, lines): (*const u8, usize),
) {
    // The block's products start from zero and are added to `c` at the end, so no load of
    // `c` stands between the block's start and its first multiply-adds.
    let mut sums = [[s.splat(0.0); V]; R];
    let a_rows: [*const f32; R] = std::array::from_fn(|r| a.row_start(first_row + r));
    let b_start = b[first_col..].as_ptr();
    let mut p = 0;
    while p < k {
        let (offset, run, step) = a.run_at(p, k);
        for q in 0..run {
            if FETCH && 2 * (p + q) < lines {
                let line = fetch_start.wrapping_add(2 * (p + q) * LINE);
                prefetch_line(line);
                prefetch_line(line.wrapping_add(LINE));
            }
            // SAFETY: `small_gemm` checked that row `p + q` of `b` holds every column and
            // that element (first_row + r, p + q) of `a`, `offset + q·step` from its row's
            // start, lies inside `a` for r < R.
            unsafe {
                let b_row = b_start.add((p + q) * b_row_stride);
                let mut b_values = [s.splat(0.0); V];
                for (v, value) in b_values.iter_mut().enumerate() {
                    *value = s.load_ptr(b_row.add(S::LANES * v));
                }
                for (row, a_row) in sums.iter_mut().zip(a_rows) {
                    let a_value = s.splat(*a_row.add(offset + q * step));
                    for (sum, &b_value) in row.iter_mut().zip(&b_values) {
                        *sum = s.mul_add(a_value, b_value, *sum);
                    }
                }
            }
        }
        p += run;
    }
    // One bounds check for the whole block, then stores through a pointer: with a checked
    // slice per store the compiler kept the row loop rolled, which forced the sums through
    // the stack (zeroed by a call to memset before the loop, spilled after it).
    let last = (first_row + R - 1) * c_row_stride + first_col + S::LANES * V;
    assert!(last <= c.len(), "small_gemm result too short");
    let c_start = c[first_row * c_row_stride + first_col..].as_mut_ptr();
    let finish = match store {
        Store::Sums { accumulate } => {
            for (r, row) in sums.iter().enumerate() {
                for (v, &sum) in row.iter().enumerate() {
                    // SAFETY: inside the extent checked above.
                    unsafe {
                        let at = c_start.add(r * c_row_stride + S::LANES * v);
                        let value = if accumulate { s.add(s.load_ptr(at), sum) } else { sum };
                        s.store_ptr(at, value);
                    }
                }
            }
            return;
        }
        Store::Finished {
            bias,
            residual,
            activation,
        } => (bias, residual, activation),
    };
    let (bias, residual, activation) = finish;
    for (r, row) in sums.iter().enumerate() {
        for (v, &sum) in row.iter().enumerate() {
            let col = first_col + S::LANES * v;
            // SAFETY: inside the extents checked above and by `small_gemm_stored`.
            unsafe {
                let mut value = sum;
                if let Some(bias) = bias {
                    value = s.add(value, s.load_ptr(bias.as_ptr().add(col)));
                }
                if let Some((residual, stride)) = residual {
                    let from = residual.as_ptr().add((first_row + r) * stride + col);
                    value = s.add(value, s.load_ptr(from));
                }
                s.store_ptr(
                    c_start.add(r * c_row_stride + S::LANES * v),
                    activate(s, value, activation),
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::{Scalar, SimdLevel};

    #[test]
    fn matches_a_naive_product_for_rows_and_columns_layouts() {
        for &(rows, k, cols) in &[(1, 1, 8), (7, 5, 24), (13, 32, 64), (6, 3, 16)] {
            let a: Vec<f32> = (0..rows * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let b: Vec<f32> = (0..k * cols).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
            let naive = |i: usize, j: usize| (0..k).map(|p| a[i * k + p] * b[p * cols + j]).sum::<f32>();
            // `a` stored as rows, then the same matrix stored as columns.
            let columns: Vec<f32> = (0..k * rows).map(|i| a[(i % rows) * k + i / rows]).collect();
            let layouts = [
                Strided {
                    data: &a,
                    row_stride: k,
                    col_stride: 1,
                },
                Strided {
                    data: &columns,
                    row_stride: 1,
                    col_stride: rows,
                },
            ];
            for a_layout in layouts {
                let mut c = vec![1.0; rows * cols];
                small_gemm(Scalar, (rows, k, cols), a_layout, (&b, cols), (&mut c, cols), true);
                for i in 0..rows {
                    for j in 0..cols {
                        assert!(
                            (c[i * cols + j] - 1.0 - naive(i, j)).abs() < 1e-4,
                            "{rows}x{k}x{cols} ({i}, {j})"
                        );
                    }
                }
            }
        }
    }

    /// One block of the Winograd convolution's products, as `winograd.rs` lays them out:
    /// `count` products `c[ξ] = a[ξ]·b[ξ]` (each `rows×k` by `k×cols`), operand `ξ` starting
    /// `step` values after operand `ξ - 1`, with the row and column strides given.
    struct BlockProducts {
        name: &'static str,
        count: usize,
        dims: (usize, usize, usize),
        /// (step, row stride, column stride) of `a`.
        a: (usize, usize, usize),
        /// (step, row stride) of `b` and of `c`.
        b: (usize, usize),
        c: (usize, usize),
        accumulate: bool,
    }

    /// The `cnn`'s Winograd products: conv2 (13×13×32 → 11×11×64, m = 4, α² = 36, 18 tiles a
    /// block) and conv3 (5×5×64 → 3×3×64, m = 3, α² = 25, 16 tiles a block); forward
    /// `M = V·U`, kernel gradient `dU += Vᵀ·dM`, input gradient `dV = dM·Uᵀ`.
    fn cnn_blocks() -> Vec<BlockProducts> {
        let mut blocks = Vec::new();
        for (layer, a2, t, c, f) in [("conv2", 36, 18, 32, 64), ("conv3", 25, 16, 64, 64)] {
            let name = |pass: &str| -> &'static str { format!("{layer} {pass}").leak() };
            blocks.push(BlockProducts {
                name: name("forward"),
                count: a2,
                dims: (t, c, f),
                a: (c, a2 * c, 1),
                b: (c * f, f),
                c: (f, a2 * f),
                accumulate: false,
            });
            blocks.push(BlockProducts {
                name: name("kernel grad"),
                count: a2,
                dims: (c, t, f),
                a: (c, 1, a2 * c),
                b: (f, a2 * f),
                c: (c * f, f),
                accumulate: true,
            });
            blocks.push(BlockProducts {
                name: name("input grad"),
                count: a2,
                dims: (t, f, c),
                a: (f, a2 * f, 1),
                b: (c * f, c),
                c: (c, a2 * c),
                accumulate: false,
            });
        }
        blocks
    }

    impl BlockProducts {
        /// Operands of the block's extent, filled with small varied values.
        fn operands(&self) -> (Vec<f32>, Vec<f32>, Vec<f32>) {
            let ((rows, k, cols), last) = (self.dims, self.count - 1);
            let a_len = last * self.a.0 + (rows - 1) * self.a.1 + (k - 1) * self.a.2 + 1;
            let b_len = last * self.b.0 + (k - 1) * self.b.1 + cols;
            let c_len = last * self.c.0 + (rows - 1) * self.c.1 + cols;
            let a = (0..a_len).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let b = (0..b_len).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
            (a, b, vec![0.5; c_len])
        }

        #[inline(always)]
        fn run_small_gemm<S: Simd>(&self, s: S, a: &[f32], b: &[f32], c: &mut [f32]) {
            for xi in 0..self.count {
                let a = Strided {
                    data: &a[xi * self.a.0..],
                    row_stride: self.a.1,
                    col_stride: self.a.2,
                };
                let (b, c) = ((&b[xi * self.b.0..], self.b.1), (&mut c[xi * self.c.0..], self.c.1));
                small_gemm(s, self.dims, a, b, c, self.accumulate);
            }
        }

        /// The same products through gemm-f32, as `matmul` would call it (row-major `c` as the
        /// column-major `cᵀ = bᵀ·aᵀ`), single-threaded.
        fn run_gemm_f32(&self, a: &[f32], b: &[f32], c: &mut [f32]) {
            let (rows, k, cols) = self.dims;
            let gemm = gemm_f32::gemm::f32::get_gemm_fn();
            for xi in 0..self.count {
                let (a, b, c) = (&a[xi * self.a.0..], &b[xi * self.b.0..], &mut c[xi * self.c.0..]);
                assert!((rows - 1) * self.a.1 + (k - 1) * self.a.2 < a.len());
                assert!((k - 1) * self.b.1 + cols <= b.len() && (rows - 1) * self.c.1 + cols <= c.len());
                let beta = if self.accumulate { 1.0 } else { 0.0 };
                let (a_rs, a_cs, b_rs, c_rs) = (self.a.1, self.a.2, self.b.1, self.c.1);
                // SAFETY: the extents were checked above; `c` does not alias `a` or `b`.
                unsafe {
                    gemm(
                        cols,
                        rows,
                        k,
                        c.as_mut_ptr(),
                        c_rs as isize,
                        1,
                        self.accumulate,
                        b.as_ptr(),
                        b_rs as isize,
                        1,
                        a.as_ptr(),
                        a_rs as isize,
                        a_cs as isize,
                        beta,
                        1.0,
                        false,
                        false,
                        false,
                        gemm_common::Parallelism::None,
                    )
                };
            }
        }
    }

    /// [`BlockProducts::run_small_gemm`] on the path `level` (or the widest below it the CPU
    /// runs).
    fn run_at(level: SimdLevel, block: &BlockProducts, a: &[f32], b: &[f32], c: &mut [f32]) {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::kernels::simd::{Avx2, Avx512};
            if level == SimdLevel::Avx512
                && let Some(simd) = Avx512::detect()
            {
                #[target_feature(enable = "avx512f,avx2,fma")]
                fn wide(s: Avx512, block: &BlockProducts, a: &[f32], b: &[f32], c: &mut [f32]) {
                    block.run_small_gemm(s, a, b, c)
                }
                // SAFETY: `detect` found the features `wide` is compiled for.
                return unsafe { wide(simd, block, a, b, c) };
            }
            if level >= SimdLevel::Avx2
                && let Some(simd) = Avx2::detect()
            {
                #[target_feature(enable = "avx2,fma")]
                fn fast(s: Avx2, block: &BlockProducts, a: &[f32], b: &[f32], c: &mut [f32]) {
                    block.run_small_gemm(s, a, b, c)
                }
                // SAFETY: `detect` found the features `fast` is compiled for.
                return unsafe { fast(simd, block, a, b, c) };
            }
        }
        block.run_small_gemm(Scalar, a, b, c)
    }

    /// [`run_at`] on the widest path.
    fn run_fastest(block: &BlockProducts, a: &[f32], b: &[f32], c: &mut [f32]) {
        run_at(SimdLevel::detected(), block, a, b, c)
    }

    /// The AVX-512 and AVX2 paths sum every element in the same order, so they agree bit for
    /// bit; the scalar path's multiply-adds are not fused, so it agrees within rounding. Shapes
    /// include odd row counts, column counts of 1, 3 and 5 AVX-512 vectors (the 4-, 2- and
    /// 1-vector blocks) and the `cnn`'s Winograd blocks.
    #[test]
    fn every_path_gives_the_same_products() {
        let odd = |name, dims: (usize, usize, usize), accumulate| BlockProducts {
            name,
            count: 2,
            dims,
            a: (dims.0 * dims.1 + 3, dims.1, 1),
            b: (dims.1 * dims.2 + 16, dims.2),
            c: (dims.0 * dims.2 + 16, dims.2),
            accumulate,
        };
        let shapes = [
            odd("7×5×16", (7, 5, 16), false),
            odd("13×9×48", (13, 9, 48), true),
            odd("1×3×80", (1, 3, 80), false),
            odd("11×17×112", (11, 17, 112), true),
        ];
        for block in shapes.into_iter().chain(cnn_blocks()) {
            let (a, b, c) = block.operands();
            let run = |level| {
                let mut c = c.clone();
                run_at(level, &block, &a, &b, &mut c);
                c
            };
            let (wide, avx2, scalar) = (run(SimdLevel::Avx512), run(SimdLevel::Avx2), run(SimdLevel::Scalar));
            assert!(
                wide.iter().zip(&avx2).all(|(x, y)| x.to_bits() == y.to_bits()),
                "{}: AVX-512 and AVX2 differ",
                block.name
            );
            let worst = avx2.iter().zip(&scalar).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-4, "{}: scalar differs by {worst}", block.name);
        }
    }

    #[test]
    fn agrees_with_gemm_f32_at_the_cnn_winograd_shapes() {
        for block in cnn_blocks() {
            let (a, b, mut c) = block.operands();
            let mut reference = c.clone();
            run_fastest(&block, &a, &b, &mut c);
            block.run_gemm_f32(&a, &b, &mut reference);
            let worst = c.iter().zip(&reference).map(|(x, y)| (x - y).abs()).fold(0.0, f32::max);
            assert!(worst < 1e-4, "{}: differs from gemm-f32 by {worst}", block.name);
        }
    }

    /// The timings in the module's documentation.
    #[test]
    #[ignore = "a timing, not a check: cargo test --release --lib small_gemm -- --ignored --nocapture"]
    fn timing_against_gemm_f32() {
        /// The fastest of 15 runs of `work`, each the mean of 200 calls, in µs.
        fn fastest(mut work: impl FnMut()) -> f64 {
            let runs = (0..15).map(|_| {
                let started = std::time::Instant::now();
                (0..200).for_each(|_| work());
                started.elapsed().as_secs_f64() * 1e6 / 200.0
            });
            runs.fold(f64::MAX, f64::min)
        }
        // 16 columns: one whole vector on every path (8 would not be one on AVX-512's).
        let tiny = BlockProducts {
            name: "8×8×16 (per-call cost)",
            count: 1,
            dims: (8, 8, 16),
            a: (0, 8, 1),
            b: (0, 16),
            c: (0, 16),
            accumulate: false,
        };
        for block in cnn_blocks().into_iter().chain([tiny]) {
            let (a, b, mut c) = block.operands();
            let (rows, k, cols) = block.dims;
            let mflop = 2.0 * (block.count * rows * k * cols) as f64 * 1e-6;
            let small = fastest(|| run_fastest(&block, &a, &b, &mut c));
            let avx2 = fastest(|| run_at(SimdLevel::Avx2, &block, &a, &b, &mut c));
            let gemm = fastest(|| block.run_gemm_f32(&a, &b, &mut c));
            println!(
                "{:<22} {:>2} × {rows}×{k}×{cols}: small_gemm {small:6.2} µs ({:5.1} GFLOP/s; AVX2 {:5.1}), \
                 gemm-f32 {gemm:6.2} µs ({:5.1} GFLOP/s), gemm-f32 / small_gemm {:.2}",
                block.name,
                block.count,
                mflop / small * 1e3,
                mflop / avx2 * 1e3,
                mflop / gemm * 1e3,
                gemm / small
            );
        }
    }
}
