//! Reductions: sums, argmax and log-sum-exp over rows (the softmax is in `softmax.rs`).

/// Index of the largest value (the first one on ties; 0 for an empty slice).
pub(crate) fn argmax(values: &[f32]) -> usize {
    let mut best = 0;
    for (i, &v) in values.iter().enumerate() {
        if v > values[best] {
            best = i;
        }
    }
    best
}

/// Sum in f64, so long reductions do not drift.
pub(crate) fn sum(values: &[f32]) -> f32 {
    values.iter().map(|&v| v as f64).sum::<f64>() as f32
}

/// Below this many terms a column reduction stays one sum per column, on one thread.
const PARALLEL_TERMS: usize = 1 << 15;
/// Terms per partial sum of a larger reduction (rounded to whole rows).
const CHUNK_TERMS: usize = 1 << 13;

/// `acc[j] += Σ_rows x[row, j]` for a row-major `rows × acc.len()` matrix: a bias gradient.
pub(crate) fn accumulate_column_sums(acc: &mut [f32], x: &[f32]) {
    let width = acc.len().max(1);
    accumulate_columns(acc, x.len() / width, |row, acc| {
        let values = &x[row * width..][..acc.len()];
        acc.iter_mut().zip(values).for_each(|(a, &v)| *a += v);
    });
}

/// `acc[j] += Σ_rows term(row, j)`, where `add_row(row, sums)` adds row `row`'s terms into
/// `sums` (as long as `acc`).
///
/// A large reduction (a Transformer's 6,400 rows of a bias gradient) sums chunks of rows
/// into partial sums in parallel, then adds the partials to `acc` in order: on one thread it
/// was one of a step's longest stretches with the pool's other thread idle. The chunks depend
/// on the sizes alone, and each value is summed in the same order on every vector width, so
/// neither the thread count nor the CPU changes any bits.
pub(crate) fn accumulate_columns(acc: &mut [f32], rows: usize, add_row: impl Fn(usize, &mut [f32]) + Sync) {
    use rayon::prelude::*;
    let width = acc.len();
    let add_rows = |rows: std::ops::Range<usize>, sums: &mut [f32]| {
        super::simd::widest(|| rows.for_each(|row| add_row(row, sums)))
    };
    if rows.saturating_mul(width) < PARALLEL_TERMS {
        return add_rows(0..rows, acc);
    }
    let chunk_rows = (CHUNK_TERMS / width).max(1);
    let chunks = rows.div_ceil(chunk_rows);
    super::scratch::with_scratch(chunks * width, |partials| {
        partials.par_chunks_mut(width).enumerate().for_each(|(chunk, sums)| {
            sums.fill(0.0);
            let first = chunk * chunk_rows;
            add_rows(first..rows.min(first + chunk_rows), sums);
        });
        super::simd::widest(|| {
            for sums in partials.chunks_exact(width) {
                acc.iter_mut().zip(sums).for_each(|(a, &s)| *a += s);
            }
        });
    });
}

/// Log-softmax of each row: `x - max - log Σ exp(x - max)`.
pub(crate) fn log_softmax_rows(out: &mut [f32], x: &[f32], cols: usize) {
    for (o, x) in out.chunks_mut(cols).zip(x.chunks(cols)) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let log_total = x.iter().map(|&v| (v - max).exp()).sum::<f32>().ln();
        o.iter_mut().zip(x).for_each(|(o, &v)| *o = v - max - log_total);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::softmax_rows;

    #[test]
    fn softmax_of_huge_logits_is_finite_and_normalized() {
        let mut out = [0.0; 3];
        softmax_rows(&mut out, &[1000.0, -1000.0, 1000.0], 3);
        assert_eq!(out, [0.5, 0.0, 0.5]);
        log_softmax_rows(&mut out, &[1000.0, -1000.0, 1000.0], 3);
        assert!((out[0] + std::f32::consts::LN_2).abs() < 1e-6 && out[1] == -2000.0 - std::f32::consts::LN_2);
    }

    #[test]
    fn argmax_and_column_sums() {
        assert_eq!(argmax(&[0.1, 0.7, 0.7, 0.2]), 1);
        let mut acc = [1.0, 1.0];
        accumulate_column_sums(&mut acc, &[1.0, 2.0, 3.0, 4.0]);
        assert_eq!(acc, [5.0, 7.0]);
    }

    /// Large enough to be summed in partial sums over threads (rows not a whole number of
    /// chunks, a width not a whole number of vectors): the sums of an f64 reference, and the
    /// same bits on one thread as on two.
    #[test]
    fn column_sums_of_many_rows_match_a_plain_sum_on_any_thread_count() {
        let (rows, width) = (5_003, 48);
        let x: Vec<f32> = (0..rows * width)
            .map(|i| ((i * 7919) % 2001) as f32 / 1000.0 - 1.0)
            .collect();
        let sums_on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            let mut acc = vec![0.5f32; width];
            pool.install(|| accumulate_column_sums(&mut acc, &x));
            acc
        };
        let one = sums_on(1);
        for (j, &sum) in one.iter().enumerate() {
            let want = 0.5 + (0..rows).map(|r| x[r * width + j] as f64).sum::<f64>();
            assert!((sum as f64 - want).abs() < 1e-3, "column {j}: {sum} against {want}");
        }
        let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&one), bits(&sums_on(2)));
        assert_eq!(bits(&one), bits(&sums_on(3)));
    }
}
