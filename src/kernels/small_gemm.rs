//! Products of small matrices that are already in cache, for the Winograd convolution: no
//! packing, a 6×16 block of the result held in registers while the inner dimension runs.
//!
//! The caller lays the operands out so that rows of `b` are contiguous and `a` is read one
//! value at a time (broadcast), at any strides: `a` may be stored as rows or as columns.

use super::simd::Simd;

/// A read-only matrix: element (row, col) is `data[row·row_stride + col·col_stride]`.
#[derive(Clone, Copy)]
pub(crate) struct Strided<'a> {
    pub(crate) data: &'a [f32],
    pub(crate) row_stride: usize,
    pub(crate) col_stride: usize,
}

/// Rows of the result held in registers at once.
const ROWS: usize = 6;

/// `c = a·b` (or `c += a·b` when `accumulate`) for `a` (rows × k), `b` (k × cols, row `p`
/// at `b[p·b_row_stride..]`) and `c` (rows × cols, row `i` at `c[i·c_row_stride..]`). `cols`
/// must be a multiple of 8. Panics if an operand is too short (a bug in the caller).
#[allow(clippy::too_many_arguments)]
#[inline(always)]
pub(crate) fn small_gemm<S: Simd>(
    s: S,
    (rows, k, cols): (usize, usize, usize),
    a: Strided,
    (b, b_row_stride): (&[f32], usize),
    (c, c_row_stride): (&mut [f32], usize),
    accumulate: bool,
) {
    assert!(cols % 8 == 0, "small_gemm works on whole vectors");
    if rows == 0 || cols == 0 || k == 0 {
        assert!(accumulate || rows == 0 || cols == 0, "an empty product must accumulate");
        return;
    }
    // Every unchecked read below lies inside these extents.
    assert!(
        (rows - 1) * a.row_stride + (k - 1) * a.col_stride < a.data.len()
            && (k - 1) * b_row_stride + cols <= b.len()
            && (rows - 1) * c_row_stride + cols <= c.len(),
        "small_gemm operand too short"
    );
    let mut j = 0;
    while j < cols {
        if cols - j >= 16 {
            column_block::<S, 2>(s, (rows, k, j), a, (b, b_row_stride), (c, c_row_stride), accumulate);
            j += 16;
        } else {
            column_block::<S, 1>(s, (rows, k, j), a, (b, b_row_stride), (c, c_row_stride), accumulate);
            j += 8;
        }
    }
}

/// All rows of the result for the `8·V` columns from `first_col`.
#[inline(always)]
fn column_block<S: Simd, const V: usize>(
    s: S,
    (rows, k, first_col): (usize, usize, usize),
    a: Strided,
    b: (&[f32], usize),
    c: (&mut [f32], usize),
    accumulate: bool,
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
        match size {
            1 => block::<S, 1, V>(s, dims, a, b, (&mut *c.0, c.1), accumulate),
            2 => block::<S, 2, V>(s, dims, a, b, (&mut *c.0, c.1), accumulate),
            3 => block::<S, 3, V>(s, dims, a, b, (&mut *c.0, c.1), accumulate),
            4 => block::<S, 4, V>(s, dims, a, b, (&mut *c.0, c.1), accumulate),
            5 => block::<S, 5, V>(s, dims, a, b, (&mut *c.0, c.1), accumulate),
            _ => block::<S, ROWS, V>(s, dims, a, b, (&mut *c.0, c.1), accumulate),
        }
        i += size;
    }
}

/// Rows `first_row..first_row + R`, columns `first_col..first_col + 8·V` of the result.
#[inline(always)]
fn block<S: Simd, const R: usize, const V: usize>(
    s: S,
    (first_row, k, first_col): (usize, usize, usize),
    a: Strided,
    (b, b_row_stride): (&[f32], usize),
    (c, c_row_stride): (&mut [f32], usize),
    accumulate: bool,
) {
    // The block's products start from zero and are added to `c` at the end, so no load of
    // `c` stands between the block's start and its first multiply-adds.
    let mut sums = [[s.splat(0.0); V]; R];
    let a_start = a.data[first_row * a.row_stride..].as_ptr();
    let b_start = b[first_col..].as_ptr();
    for p in 0..k {
        // SAFETY: `small_gemm` checked that row `p` of `b` holds every column and that
        // element (first_row + r, p) of `a` lies inside `a.data` for r < R.
        unsafe {
            let b_row = b_start.add(p * b_row_stride);
            let mut b_values = [s.splat(0.0); V];
            for (v, value) in b_values.iter_mut().enumerate() {
                *value = s.load_ptr(b_row.add(8 * v));
            }
            for (r, row) in sums.iter_mut().enumerate() {
                let a_value = s.splat(*a_start.add(r * a.row_stride + p * a.col_stride));
                for (sum, &b_value) in row.iter_mut().zip(&b_values) {
                    *sum = s.mul_add(a_value, b_value, *sum);
                }
            }
        }
    }
    for (r, row) in sums.iter().enumerate() {
        for (v, &sum) in row.iter().enumerate() {
            let at = &mut c[(first_row + r) * c_row_stride + first_col + 8 * v..];
            let value = if accumulate { s.add(s.load(at), sum) } else { sum };
            s.store(at, value);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::Scalar;

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
}
