//! Vector `exp` and the row operations of the attention kernel built on it: a softmax over a
//! score row and a dot product, both summed in a fixed order so every vector width gives the
//! same bits.
//!
//! Why a hand-written `exp`: the attention softmax takes `batch × heads × Tq × Tk` of them per
//! step (2.6 million for the `imdb_transformer`), and the library `expf` is a scalar call each.
//! The polynomial below is Cephes' `expf` (range reduction by `ln 2` in two parts, a degree-6
//! polynomial), within two ulps of the correctly rounded value, in straight vector code.
//!
//! Why sixteen lanes whatever the width: a sum across a row is split into sixteen running sums
//! (lane `l` adds the elements `j ≡ l (mod 16)` in order), held in one AVX-512 register or two
//! AVX2 ones, then added in a fixed tree. The AVX-512 and AVX2 paths therefore give the same
//! bits, as the project's kernels must.

use super::simd::{Scalar, Simd, dispatch_simd};

/// The lanes a row sum is split into, on every path.
pub(crate) const SUM_LANES: usize = 16;

/// `2ⁿ` for vectors of whole numbers, the one step of `exp` that needs integer instructions.
pub(crate) trait Pow2: Simd {
    /// `2ⁿ` in each lane, for lanes holding whole numbers `n` in `-126..=127`.
    fn pow2(self, n: Self::V) -> Self::V;

    /// `y·2ⁿ` in each lane, for lanes holding whole numbers `n` in `-126..=127`: one
    /// correctly rounded product either way, so every path gives the same bits.
    #[inline(always)]
    fn times_pow2(self, y: Self::V, n: Self::V) -> Self::V {
        self.mul(y, self.pow2(n))
    }

    /// The sum of sixteen running sums (the first `SUM_LANES / LANES` vectors of `parts`),
    /// added in the fixed tree `l += l + 8`, `l += l + 4`, `l += l + 2`, `l += l + 1`.
    #[inline(always)]
    fn sum_lanes(self, parts: [Self::V; 2]) -> f32 {
        let mut lanes = [0.0f32; SUM_LANES];
        for (u, &part) in parts.iter().enumerate().take(SUM_LANES / Self::LANES) {
            self.store(&mut lanes[u * Self::LANES..], part);
        }
        let mut width = SUM_LANES / 2;
        while width > 0 {
            for l in 0..width {
                lanes[l] += lanes[l + width];
            }
            width /= 2;
        }
        lanes[0]
    }

    /// The largest lane of `v`.
    #[inline(always)]
    fn max_lane(self, v: Self::V) -> f32 {
        let mut lanes = [0.0f32; SUM_LANES];
        self.store(&mut lanes, v);
        lanes[..Self::LANES].iter().copied().fold(f32::NEG_INFINITY, f32::max)
    }
}

impl Pow2 for Scalar {
    #[inline(always)]
    fn pow2(self, n: [f32; 8]) -> [f32; 8] {
        n.map(|n| f32::from_bits(((n as i32 + 127) as u32) << 23))
    }
}

#[cfg(target_arch = "x86_64")]
mod x86 {
    use super::Pow2;
    use crate::kernels::simd::{Avx2, Avx512};
    use std::arch::x86_64::*;

    // The horizontal steps in registers rather than through a stack array, whose stores and
    // dependent scalar adds made each row's reductions a chain of some 60 cycles. The same
    // tree as `Pow2::sum_lanes`'s default (lane `l` plus lane `l + 8`, then `+ 4`, `+ 2`,
    // `+ 1`), so every path keeps its bits.

    /// `l += l + 4`, `l += l + 2`, `l += l + 1` on eight sums; the total.
    #[inline(always)]
    unsafe fn sum_eight(v: __m256) -> f32 {
        unsafe {
            let four = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let two = _mm_add_ps(four, _mm_movehl_ps(four, four));
            _mm_cvtss_f32(_mm_add_ss(two, _mm_shuffle_ps::<1>(two, two)))
        }
    }

    /// The largest of eight lanes.
    #[inline(always)]
    unsafe fn max_eight(v: __m256) -> f32 {
        unsafe {
            let four = _mm_max_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps::<1>(v));
            let two = _mm_max_ps(four, _mm_movehl_ps(four, four));
            _mm_cvtss_f32(_mm_max_ss(two, _mm_shuffle_ps::<1>(two, two)))
        }
    }

    /// The upper eight lanes of a 16-lane vector.
    #[inline(always)]
    unsafe fn upper_eight(v: __m512) -> __m256 {
        unsafe { _mm256_castpd_ps(_mm512_extractf64x4_pd::<1>(_mm512_castps_pd(v))) }
    }

    // SAFETY (both): an `Avx2` or `Avx512` value exists only where the CPU has its features.
    impl Pow2 for Avx2 {
        #[inline(always)]
        fn pow2(self, n: __m256) -> __m256 {
            unsafe {
                let biased = _mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127));
                _mm256_castsi256_ps(_mm256_slli_epi32::<23>(biased))
            }
        }

        #[inline(always)]
        fn sum_lanes(self, parts: [__m256; 2]) -> f32 {
            unsafe { sum_eight(_mm256_add_ps(parts[0], parts[1])) }
        }

        #[inline(always)]
        fn max_lane(self, v: __m256) -> f32 {
            unsafe { max_eight(v) }
        }
    }

    impl Pow2 for Avx512 {
        #[inline(always)]
        fn pow2(self, n: __m512) -> __m512 {
            unsafe {
                let biased = _mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127));
                _mm512_castsi512_ps(_mm512_slli_epi32::<23>(biased))
            }
        }

        /// One `vscalefps` instead of building `2ⁿ` in four instructions.
        #[inline(always)]
        fn times_pow2(self, y: __m512, n: __m512) -> __m512 {
            unsafe { _mm512_scalef_ps(y, n) }
        }

        #[inline(always)]
        fn sum_lanes(self, parts: [__m512; 2]) -> f32 {
            let v = parts[0];
            unsafe { sum_eight(_mm256_add_ps(_mm512_castps512_ps256(v), upper_eight(v))) }
        }

        #[inline(always)]
        fn max_lane(self, v: __m512) -> f32 {
            unsafe { max_eight(_mm256_max_ps(_mm512_castps512_ps256(v), upper_eight(v))) }
        }
    }
}

/// `ln` of the smallest normal f32: below it `exp` returns 0.
const EXP_LOW: f32 = -87.336_54;

/// `eˣ` in each lane, for `x ≤ 88`; exactly 0 below `EXP_LOW` (and for `-∞`).
#[inline(always)]
pub(crate) fn exp<S: Pow2>(s: S, x: S::V) -> S::V {
    let clamped = s.max(x, s.splat(EXP_LOW));
    // n = round(x / ln 2), by the float trick: adding 1.5·2²³ leaves no fraction bits.
    let magic = s.splat(12_582_912.0);
    let n = s.sub(s.add(s.mul(clamped, s.splat(std::f32::consts::LOG2_E)), magic), magic);
    // r = x − n·ln 2, with ln 2 in two parts so r keeps its low bits.
    let r = s.mul_add(n, s.splat(-0.693_359_4), clamped);
    let r = s.mul_add(n, s.splat(2.121_944_4e-4), r);
    let mut p = s.splat(1.987_569_1e-4);
    for c in [1.398_199_9e-3, 8.333_452e-3, 4.166_579_6e-2, 0.166_666_65, 0.5] {
        p = s.mul_add(p, r, s.splat(c));
    }
    let y = s.add(s.mul_add(p, s.mul(r, r), r), s.splat(1.0));
    let y = s.times_pow2(y, n);
    s.and(s.greater(x, s.splat(EXP_LOW)), y)
}

/// `Σ a[j]·b[j]` over the common length, in sixteen running sums (see the module's notes).
#[inline(always)]
pub(crate) fn dot<S: Pow2>(s: S, a: &[f32], b: &[f32]) -> f32 {
    let len = a.len().min(b.len());
    let mut parts = [s.splat(0.0); 2];
    let mut start = 0;
    while start < len {
        for (u, part) in parts.iter_mut().enumerate().take(SUM_LANES / S::LANES) {
            let at = start + u * S::LANES;
            if at < len {
                let width = (len - at).min(S::LANES);
                let (x, y) = (s.load_partial(&a[at..], width), s.load_partial(&b[at..], width));
                *part = s.mul_add(x, y, *part);
            }
        }
        start += SUM_LANES;
    }
    s.sum_lanes(parts)
}

/// `Σ a[j]`, in sixteen running sums (see the module's notes).
#[inline(always)]
pub(crate) fn sum<S: Pow2>(s: S, a: &[f32]) -> f32 {
    let mut parts = [s.splat(0.0); 2];
    let mut start = 0;
    while start < a.len() {
        for (u, part) in parts.iter_mut().enumerate().take(SUM_LANES / S::LANES) {
            let at = start + u * S::LANES;
            if at < a.len() {
                *part = s.add(*part, s.load_partial(&a[at..], (a.len() - at).min(S::LANES)));
            }
        }
        start += SUM_LANES;
    }
    s.sum_lanes(parts)
}

/// Lane numbers, for setting the lanes of a row's last vector that lie past its end.
const LANE_NUMBERS: [f32; SUM_LANES] = [
    0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 11.0, 12.0, 13.0, 14.0, 15.0,
];

/// `row[at..at + LANES]`, its lanes at or past `valid` set to −∞ (whose `exp` is 0). In
/// registers: writing −∞ into the padding first and reading the vector back stalls on the
/// partial store (measured as a quarter of the attention forward's time).
#[inline(always)]
fn valid_lanes<S: Simd>(s: S, row: &[f32], (at, valid): (usize, usize)) -> S::V {
    let x = s.load(&row[at..]);
    if at + S::LANES <= valid {
        return x;
    }
    let inside = s.greater(s.splat(valid.saturating_sub(at) as f32), s.load(&LANE_NUMBERS));
    s.select(inside, x, s.splat(f32::NEG_INFINITY))
}

/// Softmax of `row[..valid]` into `probs[..valid]` (`row.len()` a multiple of
/// [`SUM_LANES`]): the maximum, the exponentials and their sum, then one pass that normalizes
/// them into `probs`. `row` is left holding the exponentials (0 past `valid`). The caller
/// scales the scores beforehand (the attention scales its queries, as Keras does), so no pass
/// multiplies by a scale.
#[inline(always)]
pub(crate) fn softmax_row<S: Pow2>(s: S, row: &mut [f32], valid: usize, probs: &mut [f32]) {
    debug_assert!(row.len().is_multiple_of(SUM_LANES) && valid <= row.len() && valid <= probs.len());
    // Two running maxima in registers, so the pass is not one chain of dependent instructions
    // (an array of them indexed by the loop counter lived on the stack, and each vector's
    // maximum waited on a store and a reload: three times this pass's cost). Whole vectors are
    // read as they are; only a partial last one is masked. The new value is the first operand:
    // `vmaxps` gives its second where either is NaN, so a NaN never enters a maximum, whatever
    // the vector width; `ordered` notes it instead.
    let whole = valid - valid % S::LANES;
    let (mut high_a, mut high_b) = (s.splat(f32::NEG_INFINITY), s.splat(f32::NEG_INFINITY));
    let mut ordered = s.equal(high_a, high_a);
    let mut pairs = row[..whole].chunks_exact(2 * S::LANES);
    for pair in &mut pairs {
        let (x, y) = (s.load(pair), s.load(&pair[S::LANES..]));
        high_a = s.max(x, high_a);
        high_b = s.max(y, high_b);
        ordered = s.and(ordered, s.and(s.equal(x, x), s.equal(y, y)));
    }
    if !pairs.remainder().is_empty() {
        let x = s.load(pairs.remainder());
        high_a = s.max(x, high_a);
        ordered = s.and(ordered, s.equal(x, x));
    }
    if whole < valid {
        let x = valid_lanes(s, row, (whole, valid));
        high_b = s.max(x, high_b);
        ordered = s.and(ordered, s.equal(x, x));
    }
    let mut lanes = [0.0f32; SUM_LANES];
    s.store(&mut lanes, ordered);
    if lanes[..S::LANES].iter().any(|lane| lane.to_bits() == 0) {
        // A NaN score makes the whole row NaN, as in Keras and PyTorch, on every path.
        probs[..valid].fill(f32::NAN);
        row.fill(f32::NAN);
        return;
    }
    let high = s.max(high_a, high_b);
    let max = s.splat(s.max_lane(high));
    let mut parts = [s.splat(0.0); 2];
    for start in (0..row.len()).step_by(SUM_LANES) {
        for (u, part) in parts.iter_mut().enumerate().take(SUM_LANES / S::LANES) {
            let at = start + u * S::LANES;
            let e = exp(s, s.sub(valid_lanes(s, row, (at, valid)), max));
            s.store(&mut row[at..], e);
            *part = s.add(*part, e);
        }
    }
    let inv = s.splat(1.0 / s.sum_lanes(parts));
    for at in (0..valid).step_by(S::LANES) {
        let p = s.mul(s.load(&row[at..]), inv);
        s.store_partial(&mut probs[at..], (valid - at).min(S::LANES), p);
    }
}

dispatch_simd!(softmax_rows_on<> => softmax_rows_body(out: &mut [f32], x: &[f32], cols: usize));

/// Softmax of each row of `cols` values of `x` into `out` (a model's last layer): through the
/// row's maximum, so large logits never overflow, with this module's `exp` and sixteen running
/// sums, so every vector width gives the same bits. A NaN makes its whole row NaN.
pub(crate) fn softmax_rows(out: &mut [f32], x: &[f32], cols: usize) {
    softmax_rows_on(out, x, cols)
}

#[inline(always)]
fn softmax_rows_body<S: Pow2>(s: S, out: &mut [f32], x: &[f32], cols: usize) {
    if cols == 0 {
        return;
    }
    // (No closures here: they would not inherit the caller's target features.)
    for (probs, row) in out.chunks_exact_mut(cols).zip(x.chunks_exact(cols)) {
        // As `softmax_row`: the new value first, so a NaN never enters the maximum.
        let mut high = s.splat(f32::NEG_INFINITY);
        let mut ordered = s.equal(high, high);
        for at in (0..cols).step_by(S::LANES) {
            let v = row_values(s, row, at);
            high = s.max(v, high);
            ordered = s.and(ordered, s.equal(v, v));
        }
        let mut lanes = [0.0f32; SUM_LANES];
        s.store(&mut lanes, ordered);
        if lanes[..S::LANES].iter().any(|lane| lane.to_bits() == 0) {
            probs.fill(f32::NAN);
            continue;
        }
        let max = s.splat(s.max_lane(high));
        let mut parts = [s.splat(0.0); 2];
        for start in (0..cols).step_by(SUM_LANES) {
            for (u, part) in parts.iter_mut().enumerate().take(SUM_LANES / S::LANES) {
                let at = start + u * S::LANES;
                if at < cols {
                    let e = exp(s, s.sub(row_values(s, row, at), max));
                    s.store_partial(&mut probs[at..], (cols - at).min(S::LANES), e);
                    *part = s.add(*part, e);
                }
            }
        }
        let inv = s.splat(1.0 / s.sum_lanes(parts));
        for at in (0..cols).step_by(S::LANES) {
            let width = (cols - at).min(S::LANES);
            let p = s.mul(s.load_partial(&probs[at..], width), inv);
            s.store_partial(&mut probs[at..], width, p);
        }
    }
}

/// `row`'s values from `at`, −∞ (whose `exp` is 0) in the lanes past its end.
#[inline(always)]
fn row_values<S: Simd>(s: S, row: &[f32], at: usize) -> S::V {
    let width = (row.len() - at).min(S::LANES);
    let v = s.load_partial(&row[at..], width);
    if width == S::LANES {
        return v;
    }
    let inside = s.greater(s.splat(width as f32), s.load(&LANE_NUMBERS));
    s.select(inside, v, s.splat(f32::NEG_INFINITY))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_two_ulps_and_zero_far_below() {
        let s = Scalar;
        let mut worst = 0.0f64;
        for i in 0..20_000 {
            let x = -87.0 + i as f32 * 0.0087;
            let got = exp(s, [x; 8])[0] as f64;
            let want = (x as f64).exp();
            worst = worst.max((got - want).abs() / want);
        }
        assert!(worst < 2.5e-7, "relative error {worst}");
        assert_eq!(exp(s, [-1e9; 8])[0], 0.0);
        assert_eq!(exp(s, [f32::NEG_INFINITY; 8])[0], 0.0);
        assert_eq!(exp(s, [0.0; 8])[0], 1.0);
    }

    /// Row sums, dot products and maxima in registers give the bits of the plain tree on
    /// every path, for lengths that are and are not whole vectors.
    #[test]
    fn reductions_agree_on_every_path() {
        #[cfg(target_arch = "x86_64")]
        {
            use crate::kernels::simd::{Avx2, Avx512};
            #[target_feature(enable = "avx2,fma")]
            fn narrow(s: Avx2, a: &[f32], b: &[f32]) -> [f32; 3] {
                [dot(s, a, b), sum(s, a), s.max_lane(s.load(&a[..8]))]
            }
            #[target_feature(enable = "avx512f,avx2,fma")]
            fn wide(s: Avx512, a: &[f32], b: &[f32]) -> [f32; 3] {
                let max = s.max_lane(s.load(&[&a[..8], &[f32::MIN; 8][..]].concat()));
                [dot(s, a, b), sum(s, a), max]
            }
            for len in [8, 16, 19, 32, 200, 333] {
                let a: Vec<f32> = (0..len).map(|i| ((i * 7919) % 1013) as f32 / 97.0 - 5.0).collect();
                let b: Vec<f32> = (0..len).map(|i| ((i * 104_729) % 911) as f32 / 31.0 - 14.0).collect();
                // The scalar path's dot product does not fuse its multiply-adds, so only the
                // sum and the maximum share its bits.
                let scalar = [sum(Scalar, &a), Scalar.max_lane(Scalar.load(&a[..8]))];
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                let Some(s) = Avx2::detect() else { return };
                // SAFETY: `detect` found the features `narrow` is compiled for.
                let avx2 = unsafe { narrow(s, &a, &b) };
                assert_eq!(bits(&avx2[1..]), bits(&scalar), "AVX2 and scalar, length {len}");
                if let Some(s) = Avx512::detect() {
                    // SAFETY: `detect` found the features `wide` is compiled for.
                    assert_eq!(
                        bits(&unsafe { wide(s, &a, &b) }),
                        bits(&avx2),
                        "AVX-512 and AVX2, length {len}"
                    );
                }
            }
        }
    }

    /// `softmax_rows` is within a few ulps of the f64 softmax for rows shorter and longer than
    /// a vector, gives 0 for a −∞ logit and no overflow for huge ones, makes a row with a NaN
    /// NaN, and gives the same bits at the AVX2 and AVX-512 levels.
    #[test]
    fn softmax_rows_match_f64_and_agree_across_levels() {
        use crate::kernels::simd::{SimdLevel, limit_simd_on_this_thread};
        for cols in [1, 3, 8, 10, 16, 17, 40, 1000] {
            let rows = 3;
            let mut x: Vec<f32> = (0..rows * cols)
                .map(|i| ((i * 7919) % 1013) as f32 / 40.0 - 12.0)
                .collect();
            if cols > 1 {
                x[cols - 1] = f32::NEG_INFINITY;
            }
            x[cols] = 1e30;
            x[2 * cols + cols / 2] = f32::NAN;
            let mut out = vec![0.0; rows * cols];
            softmax_rows(&mut out, &x, cols);
            for (r, (probs, row)) in out.chunks(cols).zip(x.chunks(cols)).enumerate() {
                if r == 2 {
                    assert!(probs.iter().all(|p| p.is_nan()), "{cols} columns: a NaN row");
                    continue;
                }
                let max = row.iter().fold(f64::NEG_INFINITY, |m, &v| m.max(v as f64));
                let total: f64 = row.iter().map(|&v| (v as f64 - max).exp()).sum();
                for (&p, &v) in probs.iter().zip(row) {
                    let want = (v as f64 - max).exp() / total;
                    // (`v - max` rounds in f32: a relative error of an ulp of the difference.)
                    assert!(
                        (p as f64 - want).abs() <= 2e-6 * want + 1e-30,
                        "{cols} columns: {p} for {want}"
                    );
                }
            }
            assert_eq!(out[cols - 1], if cols > 1 { 0.0 } else { 1.0 });
            assert_eq!(out[cols], 1.0);
            if SimdLevel::detected() == SimdLevel::Avx512 {
                let mut narrow = vec![0.0; rows * cols];
                limit_simd_on_this_thread(Some(SimdLevel::Avx2));
                softmax_rows(&mut narrow, &x, cols);
                limit_simd_on_this_thread(None);
                let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                assert_eq!(bits(&narrow), bits(&out), "{cols} columns: AVX2 and AVX-512");
            }
        }
    }

    /// A NaN score anywhere in a row (in any lane of any vector, first or last) makes the
    /// row's probabilities NaN on every path.
    #[test]
    fn a_nan_score_makes_the_row_nan_on_every_path() {
        fn run<S: Pow2>(s: S, row: &[f32], valid: usize) -> Vec<f32> {
            let (mut row, mut probs) = (row.to_vec(), vec![0.0; valid]);
            softmax_row(s, &mut row, valid, &mut probs);
            probs
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx2,fma")]
        fn narrow(s: crate::kernels::simd::Avx2, row: &[f32], valid: usize) -> Vec<f32> {
            run(s, row, valid)
        }
        #[cfg(target_arch = "x86_64")]
        #[target_feature(enable = "avx512f,avx2,fma")]
        fn wide(s: crate::kernels::simd::Avx512, row: &[f32], valid: usize) -> Vec<f32> {
            run(s, row, valid)
        }
        for (valid, nan_at) in [(32usize, 31), (32, 15), (32, 7), (32, 0), (40, 38), (19, 18)] {
            let mut row: Vec<f32> = (0..valid.next_multiple_of(SUM_LANES)).map(|j| j as f32 * 0.1).collect();
            row[nan_at] = f32::NAN;
            let mut results = vec![run(Scalar, &row, valid)];
            #[cfg(target_arch = "x86_64")]
            {
                use crate::kernels::simd::{Avx2, Avx512};
                if let Some(s) = Avx2::detect() {
                    // SAFETY: `detect` found the features `narrow` is compiled for.
                    results.push(unsafe { narrow(s, &row, valid) });
                }
                if let Some(s) = Avx512::detect() {
                    // SAFETY: `detect` found the features `wide` is compiled for.
                    results.push(unsafe { wide(s, &row, valid) });
                }
            }
            for probs in results {
                assert!(
                    probs.iter().all(|p| p.is_nan()),
                    "NaN at {nan_at} of {valid}: {probs:?}"
                );
            }
        }
    }

    #[test]
    fn softmax_row_matches_the_definition_and_zeroes_the_padding() {
        let mut row = [7.0f32; 32];
        for (j, v) in row.iter_mut().enumerate().take(19) {
            *v = (j as f32 * 0.37).sin() * 2.0;
        }
        let reference: Vec<f64> = row[..19].iter().map(|&v| (v as f64).exp()).collect();
        let total: f64 = reference.iter().sum();
        let mut probs = [0.0f32; 20];
        softmax_row(Scalar, &mut row, 19, &mut probs);
        for j in 0..19 {
            assert!((probs[j] as f64 - reference[j] / total).abs() < 1e-6);
        }
        assert_eq!(probs[19], 0.0, "nothing written past the valid length");
        assert!(row[19..].iter().all(|&v| v == 0.0), "the padding's exponentials are 0");
        let dots = dot(Scalar, &[1.0, 2.0, 3.0], &[4.0, 5.0, 6.0, 7.0]);
        assert_eq!(dots, 32.0);
    }
}
