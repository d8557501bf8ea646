//! Reductions: sums, argmax, softmax and log-sum-exp over rows.

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

/// `acc[j] += Σ_rows x[row, j]` for a row-major `rows × acc.len()` matrix: a bias gradient.
pub(crate) fn accumulate_column_sums(acc: &mut [f32], x: &[f32]) {
    // Each column sums its rows in order on every path, so the vector width changes no bits.
    super::simd::widest(|| {
        for row in x.chunks(acc.len()) {
            acc.iter_mut().zip(row).for_each(|(a, &v)| *a += v);
        }
    })
}

/// Softmax of each row of length `cols`, through the row maximum so large logits never overflow.
pub(crate) fn softmax_rows(out: &mut [f32], x: &[f32], cols: usize) {
    for (o, x) in out.chunks_mut(cols).zip(x.chunks(cols)) {
        let max = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let mut total = 0.0;
        for (o, &v) in o.iter_mut().zip(x) {
            *o = (v - max).exp();
            total += *o;
        }
        let inv = 1.0 / total;
        o.iter_mut().for_each(|v| *v *= inv);
    }
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
}
