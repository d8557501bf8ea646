//! Matrix products through the `gemm` crate: the one place that knows its argument order.
//!
//! `gemm::gemm` computes `dst = alpha·dst + beta·lhs·rhs` (the reverse of BLAS's names) and
//! takes a column stride and a row stride for each operand, so transposes cost nothing.

pub use super::transpose::Transpose;
use rayon::prelude::*;
use std::sync::atomic::{AtomicUsize, Ordering};

/// Below this many multiply-adds a product runs on one thread: splitting it costs more than it
/// saves (measured on the MLP's 32×784×128 products, see docs/PERFORMANCE.md).
const PARALLEL_MIN_MACS: usize = 1 << 18;

/// `c (m×n) = a (m×k) · b (k×n)`, or `c += …` when `accumulate`.
///
/// `a` is stored row-major as `m×k`, or as `k×m` when `transpose_a` is `Yes`; likewise `b` as
/// `k×n` or `n×k`.
///
/// # Panics
///
/// If a slice is shorter than its shape says (a bug in the caller: the graph checks shapes
/// before it multiplies).
#[allow(clippy::too_many_arguments)]
pub fn matmul(
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
        "matmul operand too short"
    );
    if is_empty_product(c, m, k, n, accumulate) {
        return;
    }
    if m == 1 && transpose_b == Transpose::No {
        // One row (a single-sample prediction): `a` is `k` contiguous values either way.
        return super::row_product::row_times_matrix(a, b, c, k, n, accumulate);
    }
    if super::batch_products::try_batch_product(a, transpose_a, b, transpose_b, c, (m, k, n), accumulate) {
        // A small batch's Dense products: faster without gemm's packing.
        return;
    }
    if super::skinny_products::try_skinny_product(a, transpose_a, b, transpose_b, c, (m, k, n), accumulate) {
        // A Dense layer on every step of a sequence: likewise.
        return;
    }
    let _in_flight = InFlight::enter();
    let (a_col_stride, a_row_stride) = match transpose_a {
        Transpose::No => (1, k),
        Transpose::Yes => (m, 1),
    };
    let (b_col_stride, b_row_stride) = match transpose_b {
        Transpose::No => (1, n as isize),
        Transpose::Yes => (k as isize, 1),
    };
    let b = Operand {
        data: b,
        col_stride: b_col_stride,
        row_stride: b_row_stride,
    };
    let macs = m * n * k;
    // Before the thread count is looked at: whether a product is split by depth changes its
    // summation order, so it must not depend on the threads.
    if macs >= PARALLEL_MIN_MACS
        && m < MIN_ROWS_PER_THREAD * SPLIT_K_MAX_THREADS
        && k >= SPLIT_K_MIN_DEPTH
        && m * n <= SPLIT_K_MAX_OUTPUTS
    {
        return split_k(a, transpose_a, b, c, m, k, n, accumulate);
    }
    let whole_a = Operand {
        data: a,
        col_stride: a_col_stride as isize,
        row_stride: a_row_stride as isize,
    };
    // Likewise: few rows and many columns are split by columns whatever the thread count.
    if macs >= PARALLEL_MIN_MACS && m < COLUMN_SPLIT_MAX_ROWS && n >= 2 * COLUMN_BLOCK {
        return split_columns(&mut c[..m * n], (m, k, n), whole_a, b, accumulate);
    }
    let threads = rayon::current_num_threads();
    if macs < PARALLEL_MIN_MACS || threads == 1 {
        return gemm_into(
            &mut c[..m * n],
            m,
            n,
            k,
            whole_a,
            b,
            accumulate,
            gemm_common::Parallelism::None,
        );
    }
    if m < MIN_ROWS_PER_THREAD * threads {
        // Too few rows to share out: let gemm split the columns itself.
        return gemm_into(
            &mut c[..m * n],
            m,
            n,
            k,
            whole_a,
            b,
            accumulate,
            gemm_common::Parallelism::Rayon(threads),
        );
    }
    // One block of output rows per thread, each a single-threaded product: measured faster on
    // this project's shapes than gemm's own splitting, which scaled poorly for the CNN's
    // products. Each output value is computed by one call, in the same order, whatever the split.
    let rows_per_block = m.div_ceil(threads);
    c[..m * n]
        .par_chunks_mut(rows_per_block * n)
        .enumerate()
        .for_each(|(block, c_block)| {
            let first_row = block * rows_per_block;
            let rows = c_block.len() / n;
            let a = Operand {
                data: &a[first_row * a_row_stride..],
                col_stride: a_col_stride as isize,
                row_stride: a_row_stride as isize,
            };
            gemm_into(c_block, rows, n, k, a, b, accumulate, gemm_common::Parallelism::None);
        });
}

/// Products running right now, on any thread (see [`products_in_flight`]).
static PRODUCTS_IN_FLIGHT: AtomicUsize = AtomicUsize::new(0);

/// How many matrix products are running right now, on any thread.
///
/// `gemm` 0.19 allocates on every call (its packing buffer and a flag per row panel; there is
/// no way to hand it reusable memory), so a training step cannot be allocation-free inside the
/// products. The allocation test reads this to tell those allocations apart from strata's own.
pub fn products_in_flight() -> usize {
    PRODUCTS_IN_FLIGHT.load(Ordering::SeqCst)
}

/// Counts a product as running while it lives.
struct InFlight;

impl InFlight {
    fn enter() -> Self {
        PRODUCTS_IN_FLIGHT.fetch_add(1, Ordering::SeqCst);
        InFlight
    }
}

impl Drop for InFlight {
    fn drop(&mut self) {
        PRODUCTS_IN_FLIGHT.fetch_sub(1, Ordering::SeqCst);
    }
}

/// Below this many rows per thread, splitting the rows costs more than it gains.
const MIN_ROWS_PER_THREAD: usize = 32;

/// Products with few rows and a long inner dimension (a Dense layer's forward pass at batch
/// 32: 32×784×128) split the inner dimension in two instead, see [`split_k`]: those with
/// fewer rows than [`MIN_ROWS_PER_THREAD`] times this. The test does not depend on the thread
/// count, so neither do the results.
const SPLIT_K_MAX_THREADS: usize = 2;
/// The shortest inner dimension worth splitting.
const SPLIT_K_MIN_DEPTH: usize = 256;
/// The largest output (values) split this way: the second half's output is a scratch buffer.
const SPLIT_K_MAX_OUTPUTS: usize = 1 << 16;
/// Products with fewer rows than this and at least two blocks of columns are split by
/// columns ([`split_columns`]).
const COLUMN_SPLIT_MAX_ROWS: usize = 64;
/// Columns per block of [`split_columns`].
const COLUMN_BLOCK: usize = 512;

/// `c (+)= a·b` as `a[:, ..h]·b[..h, :]` into `c` and `a[:, h..]·b[h.., :]` into a scratch
/// buffer, in parallel, then `c += scratch`.
///
/// Why: the Dense layers of small-batch training are too short in rows to split by rows, and
/// gemm's own column split makes both threads read every row of the kernel. Split by depth,
/// each thread reads only its half of the kernel, the same half whose gradient rows it computes
/// in the backward pass (rows of `aᵀ·dy`, split by rows) and whose weights it updates in the
/// optimizer step: the kernel, its gradient and the optimizer's slots stay in that core's cache
/// instead of crossing between cores every step.
#[allow(clippy::too_many_arguments)]
fn split_k(
    a: &[f32],
    transpose_a: Transpose,
    b: Operand,
    c: &mut [f32],
    m: usize,
    k: usize,
    n: usize,
    accumulate: bool,
) {
    let half = k / 2;
    let operand_a = |offset: usize| match transpose_a {
        Transpose::No => Operand {
            data: &a[offset..],
            col_stride: 1,
            row_stride: k as isize,
        },
        Transpose::Yes => Operand {
            data: &a[offset * m..],
            col_stride: m as isize,
            row_stride: 1,
        },
    };
    let operand_b = |offset: usize| {
        let start = if b.col_stride == 1 {
            offset * b.row_stride as usize
        } else {
            offset
        };
        Operand {
            data: &b.data[start..],
            ..b
        }
    };
    let (a0, a1, b0, b1) = (operand_a(0), operand_a(half), operand_b(0), operand_b(half));
    super::scratch::with_scratch(m * n, |partial| {
        let c = &mut c[..m * n];
        let first = |c: &mut [f32]| gemm_into(c, m, n, half, a0, b0, accumulate, gemm_common::Parallelism::None);
        let second =
            |partial: &mut [f32]| gemm_into(partial, m, n, k - half, a1, b1, false, gemm_common::Parallelism::None);
        if rayon::current_num_threads() > 1 {
            rayon::join(|| first(c), || second(partial));
        } else {
            first(c);
            second(partial);
        }
        c.iter_mut().zip(partial.iter()).for_each(|(c, p)| *c += p);
    });
}

/// A matrix operand: its values and the distance between neighbours along each axis.
#[derive(Clone, Copy)]
struct Operand<'a> {
    data: &'a [f32],
    col_stride: isize,
    row_stride: isize,
}

impl Operand<'_> {
    /// The same values read as the transposed matrix.
    fn transposed(self) -> Self {
        Operand {
            data: self.data,
            col_stride: self.row_stride,
            row_stride: self.col_stride,
        }
    }
}

/// The result of [`split_columns`], which its threads share.
#[derive(Clone, Copy)]
struct SharedResult(*mut f32);
// SAFETY: the threads of `split_columns` write disjoint columns.
unsafe impl Send for SharedResult {}
unsafe impl Sync for SharedResult {}

impl SharedResult {
    /// The first value of column `first` (a method, so closures capture the whole `Send`
    /// struct rather than its pointer field).
    ///
    /// # Safety
    /// `first` must be a column of the result.
    unsafe fn column(self, first: usize) -> *mut f32 {
        // SAFETY: the caller's contract.
        unsafe { self.0.add(first) }
    }
}

/// `c (+)= a·b` as products of blocks of [`COLUMN_BLOCK`] columns of `b` and `c`, each one
/// single-threaded gemm call, the blocks shared out among the threads.
///
/// Why: with few rows (a 1×1 convolution on a 7×7 map at batch 1: 49 rows, 2048 columns)
/// neither the rows nor the depth can be split, and gemm's own parallel split of the columns
/// ran at half the rate of two independent calls (docs/PERFORMANCE.md). The blocks do not
/// depend on the thread count, so neither do the results.
fn split_columns(c: &mut [f32], (m, k, n): (usize, usize, usize), a: Operand, b: Operand, accumulate: bool) {
    let result = SharedResult(c.as_mut_ptr());
    (0..n.div_ceil(COLUMN_BLOCK)).into_par_iter().for_each(|block| {
        let first = block * COLUMN_BLOCK;
        let columns = COLUMN_BLOCK.min(n - first);
        let b_block = Operand {
            data: &b.data[first * b.col_stride as usize..],
            ..b
        };
        // SAFETY: `c` holds m×n values (the caller's slice); this block writes only its
        // columns `first..first + columns` of them, which no other block writes, and reads
        // nothing of `c` but those (when accumulating).
        unsafe {
            gemm_raw(
                (result.column(first), n),
                (m, columns, k),
                a,
                b_block,
                accumulate,
                gemm_common::Parallelism::None,
            )
        }
    });
}

/// `c (m×n, row-major) = a·b`, or `c += a·b`, through `gemm::gemm`.
#[allow(clippy::too_many_arguments)]
fn gemm_into(
    c: &mut [f32],
    m: usize,
    n: usize,
    k: usize,
    a: Operand,
    b: Operand,
    accumulate: bool,
    parallelism: gemm_common::Parallelism,
) {
    // SAFETY: `c` holds the m×n values (the caller's slices are checked by `matmul`).
    unsafe { gemm_raw((c.as_mut_ptr(), n), (m, n, k), a, b, accumulate, parallelism) }
}

/// [`gemm_into`] on a result given as its first value and row stride.
///
/// # Safety
/// Rows `0..m`, columns `0..n` of the result must be valid for writes (and reads when
/// `accumulate`), and written by no one else during the call.
unsafe fn gemm_raw(
    (c, c_row_stride): (*mut f32, usize),
    (m, n, k): (usize, usize, usize),
    a: Operand,
    b: Operand,
    accumulate: bool,
    parallelism: gemm_common::Parallelism,
) {
    let alpha = if accumulate { 1.0 } else { 0.0 };
    // `gemm::gemm` would first make the destination column-major by computing the transposed
    // product, `cᵀ = bᵀ·aᵀ`, then call gemm-f32's kernel. We call that kernel directly (so the
    // build skips gemm's f64 and complex kernels, a large share of compile time) and do the
    // transposition here: a row-major `c` is a column-major `cᵀ` with the same strides swapped.
    let (dst_cs, dst_rs) = (1isize, c_row_stride as isize);
    let transpose = dst_cs.abs() < dst_rs.abs();
    let (rows, cols, dst_cs, dst_rs, lhs, rhs) = if transpose {
        (n, m, dst_rs, dst_cs, b.transposed(), a.transposed())
    } else {
        (m, n, dst_cs, dst_rs, a, b)
    };
    // SAFETY: `matmul` checked that the full operands hold m×k, k×n and m×n values; a row block
    // starts inside `a` at its first row and reads only its own rows with the same strides, so
    // every index gemm computes lies inside the slices (transposing swaps which stride walks which
    // axis, not the addresses). `c` is borrowed mutably, so it does not alias `a` or `b`.
    unsafe {
        gemm_f32::gemm::f32::get_gemm_fn()(
            rows,
            cols,
            k,
            c,
            dst_cs,
            dst_rs,
            accumulate,
            lhs.data.as_ptr(),
            lhs.col_stride,
            lhs.row_stride,
            rhs.data.as_ptr(),
            rhs.col_stride,
            rhs.row_stride,
            alpha,
            1.0,
            false,
            false,
            false,
            parallelism,
        );
    }
}

/// Handles a product with nothing to multiply (an empty output, or `k = 0`, which leaves `c` as
/// it is or zero): true when the caller has nothing left to do.
pub(super) fn is_empty_product(c: &mut [f32], m: usize, k: usize, n: usize, accumulate: bool) -> bool {
    if m == 0 || n == 0 {
        return true;
    }
    if k == 0 {
        if !accumulate {
            c[..m * n].fill(0.0);
        }
        return true;
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    fn naive(a: &[f32], b: &[f32], m: usize, k: usize, n: usize) -> Vec<f32> {
        let mut c = vec![0.0; m * n];
        for i in 0..m {
            for j in 0..n {
                c[i * n + j] = (0..k).map(|p| a[i * k + p] * b[p * n + j]).sum();
            }
        }
        c
    }

    /// The largest `|got − scale·expected|`.
    fn max_error(got: &[f32], expected: &[f32], scale: f32) -> f32 {
        got.iter()
            .zip(expected)
            .map(|(x, y)| (x - scale * y).abs())
            .fold(0.0, f32::max)
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

    /// `matmul` of `(m, k, n)`, with every transpose and accumulation, against the naive
    /// product, and bit for bit the same on one thread as on two.
    fn check_against_naive_on_one_and_two_threads(m: usize, k: usize, n: usize) {
        let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
        let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
        let expected = naive(&a, &b, m, k, n);
        let (at, bt) = (transpose(&a, m, k), transpose(&b, k, n));
        for (lhs, ta) in [(&a, Transpose::No), (&at, Transpose::Yes)] {
            for (rhs, tb) in [(&b, Transpose::No), (&bt, Transpose::Yes)] {
                let run = |threads: usize| {
                    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                    let mut c = vec![1.0; m * n];
                    pool.install(|| {
                        matmul(lhs, ta, rhs, tb, &mut c, m, k, n, false);
                        matmul(lhs, ta, rhs, tb, &mut c, m, k, n, true);
                    });
                    c
                };
                let (one, two) = (run(1), run(2));
                assert!(one.iter().zip(&two).all(|(x, y)| x.to_bits() == y.to_bits()));
                let err = max_error(&one, &expected, 2.0);
                assert!(err < 1e-2, "{m}x{k}x{n} {ta:?} {tb:?}: {err}");
            }
        }
    }

    /// Products split by depth ([`split_k`]): the MLP's forward shape and an odd one.
    #[test]
    fn depth_split_products_match_naive_and_do_not_depend_on_threads() {
        for &(m, k, n) in &[(32, 784, 128), (7, 1001, 41)] {
            assert!(m * k * n >= PARALLEL_MIN_MACS && m < MIN_ROWS_PER_THREAD * SPLIT_K_MAX_THREADS);
            assert!(k >= SPLIT_K_MIN_DEPTH && m * n <= SPLIT_K_MAX_OUTPUTS);
            check_against_naive_on_one_and_two_threads(m, k, n);
        }
    }

    /// Products split by columns ([`split_columns`]): a 1×1 convolution on a 7×7 map at batch
    /// 1 (shallower), and one whose last block of columns is partial.
    #[test]
    fn column_split_products_match_naive_and_do_not_depend_on_threads() {
        for &(m, k, n) in &[(49, 64, 2048), (40, 200, 1100)] {
            assert!(m * k * n >= PARALLEL_MIN_MACS && m < COLUMN_SPLIT_MAX_ROWS && n >= 2 * COLUMN_BLOCK);
            assert!(k < SPLIT_K_MIN_DEPTH || m * n > SPLIT_K_MAX_OUTPUTS);
            check_against_naive_on_one_and_two_threads(m, k, n);
        }
    }

    #[test]
    fn matches_naive_product_with_transposes_and_accumulation() {
        for &(m, k, n) in &[(1, 1, 1), (3, 5, 2), (17, 33, 9), (64, 300, 130)] {
            let a: Vec<f32> = (0..m * k).map(|i| ((i * 7 % 13) as f32 - 6.0) / 7.0).collect();
            let b: Vec<f32> = (0..k * n).map(|i| ((i * 5 % 11) as f32 - 5.0) / 5.0).collect();
            let expected = naive(&a, &b, m, k, n);
            let at = transpose(&a, m, k);
            let bt = transpose(&b, k, n);
            for (lhs, ta) in [(&a, Transpose::No), (&at, Transpose::Yes)] {
                for (rhs, tb) in [(&b, Transpose::No), (&bt, Transpose::Yes)] {
                    let mut c = vec![1.0; m * n];
                    matmul(lhs, ta, rhs, tb, &mut c, m, k, n, false);
                    let err = max_error(&c, &expected, 1.0);
                    assert!(err < 1e-3, "{m}x{k}x{n} {ta:?} {tb:?}: {err}");
                    matmul(lhs, ta, rhs, tb, &mut c, m, k, n, true);
                    let err = max_error(&c, &expected, 2.0);
                    assert!(err < 2e-3, "accumulate {m}x{k}x{n}: {err}");
                }
            }
        }
    }
}
