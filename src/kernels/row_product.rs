//! The product of one row and a matrix, `c (1×n) = a (1×k) · b (k×n)`: a single-sample `predict`
//! of a Dense layer. `gemm` runs it through its general path (packing, blocking, a dispatch per
//! call) at about a third of the speed of this loop, which streams `b` once, row by row, into
//! a block of sums held in registers.

use super::scratch::with_scratch;
use super::simd::{Simd, dispatch_simd};

/// Vector registers of sums per pass over `b`: 8 × 16 lanes cover the mlp's 128 units in one
/// pass on AVX-512 (two on AVX2), leaving registers for the loads.
const BLOCK_VECTORS: usize = 8;

/// `c = a · b`, or `c += a · b` when `accumulate`; `a` holds `k` values, `b` is `k×n`
/// row-major, `c` holds `n`. Each output is one multiply-add chain over `k` in order (one per
/// half of the rows for a large matrix, see below), on every vector width (so AVX-512 and AVX2
/// give the same bits; the scalar fallback rounds each product before adding it, on every
/// column alike), and the sum is added to `c` after it is complete, as `gemm` adds its product. A matrix too large for the core's first-level cache
/// is summed in two halves of its rows, one chain each, added after: the pass is bound by
/// reading `b`, so two threads each read one half, and one thread sums the same halves in
/// turn (the same bits on any thread count).
pub(super) fn row_times_matrix(a: &[f32], b: &[f32], c: &mut [f32], k: usize, n: usize, accumulate: bool) {
    let (a, b, c) = (&a[..k], &b[..k * n], &mut c[..n]);
    if k < 2 || k * n < SPLIT_MIN_VALUES {
        return row_times_matrix_simd(a, b, c, accumulate);
    }
    // Halves of the rows, not of the columns: half of each row's columns takes as long to
    // read as the whole row (see docs/PERFORMANCE.md).
    let half = k / 2;
    let (a_low, a_high) = a.split_at(half);
    let (b_low, b_high) = b.split_at(half * n);
    with_scratch(2 * n, |sums| {
        let (low, high) = sums.split_at_mut(n);
        if rayon::current_num_threads() > 1 {
            rayon::join(
                || row_times_matrix_simd(a_low, b_low, low, false),
                || row_times_matrix_simd(a_high, b_high, high, false),
            );
        } else {
            row_times_matrix_simd(a_low, b_low, low, false);
            row_times_matrix_simd(a_high, b_high, high, false);
        }
        for ((c, &low), &high) in c.iter_mut().zip(low.iter()).zip(high.iter()) {
            let sum = low + high;
            *c = if accumulate { *c + sum } else { sum };
        }
    });
}

/// Values of `b` from which its rows are summed in two halves (256 KiB, the mlp's 784×128
/// kernel; the cnn's 576×64 gained nothing from a split, see docs/PERFORMANCE.md).
const SPLIT_MIN_VALUES: usize = 64 * 1024;

dispatch_simd!(row_times_matrix_simd<> => row_times_matrix_body(
    a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool
));

/// The product into `c`, whose length is `b`'s column count.
#[inline(always)]
fn row_times_matrix_body<S: Simd>(s: S, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    let n = c.len();
    let vectors = c.len() / S::LANES;
    let mut first = 0;
    while first < vectors {
        let count = (vectors - first).min(BLOCK_VECTORS);
        let block = Block {
            a,
            b,
            n,
            first: first * S::LANES,
            accumulate,
        };
        // A block size known at compile time: the loop over its vectors unrolls, the sums
        // stay in registers and the row slice is checked once (with the size a variable, the
        // sums went through the stack and each load had its own check: half the speed).
        match count {
            1 => block.run::<S, 1>(s, c),
            2 => block.run::<S, 2>(s, c),
            3 => block.run::<S, 3>(s, c),
            4 => block.run::<S, 4>(s, c),
            5 => block.run::<S, 5>(s, c),
            6 => block.run::<S, 6>(s, c),
            7 => block.run::<S, 7>(s, c),
            _ => block.run::<S, BLOCK_VECTORS>(s, c),
        }
        first += count;
    }
    // The columns past the last whole vector (the mlp's 10 outputs): one more vector of sums,
    // each lane still one column's chain over `k` in order. Summed one column after the other
    // they were latency-bound (10 chains of 128 dependent multiply-adds, a microsecond).
    let (at, width) = (vectors * S::LANES, c.len() - vectors * S::LANES);
    if width > 0 {
        let mut sum = s.splat(0.0);
        for (&x, row) in a.iter().zip(b.chunks_exact(n)) {
            sum = s.mul_add(s.splat(x), s.load_partial(&row[at..], width), sum);
        }
        let out = &mut c[at..];
        let sum = if accumulate {
            s.add(s.load_partial(out, width), sum)
        } else {
            sum
        };
        s.store_partial(out, width, sum);
    }
}

/// One pass over `b` for the columns from `first` on, `COUNT` vectors of them.
struct Block<'a> {
    a: &'a [f32],
    b: &'a [f32],
    /// Columns of `b`.
    n: usize,
    /// The block's first column.
    first: usize,
    accumulate: bool,
}

impl Block<'_> {
    #[inline(always)]
    fn run<S: Simd, const COUNT: usize>(&self, s: S, c: &mut [f32]) {
        let width = COUNT * S::LANES;
        let mut sums = [s.splat(0.0); COUNT];
        let start = self.first;
        for (&x, row) in self.a.iter().zip(self.b.chunks_exact(self.n)) {
            let x = s.splat(x);
            let row = &row[start..start + width];
            for (v, sum) in sums.iter_mut().enumerate() {
                *sum = s.mul_add(x, s.load(&row[v * S::LANES..]), *sum);
            }
        }
        let out = &mut c[self.first..self.first + width];
        for (v, sum) in sums.into_iter().enumerate() {
            let out = &mut out[v * S::LANES..];
            let sum = if self.accumulate { s.add(s.load(out), sum) } else { sum };
            s.store(out, sum);
        }
    }
}
