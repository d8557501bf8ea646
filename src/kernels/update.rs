//! The optimizers' per-weight update loop: one pass over a weight, its gradient and two slots.
//!
//! The optimizers write their rule once, as a scalar closure. The loop is compiled three times,
//! for AVX-512, for AVX2 and for the baseline, and picked at run time: the baseline build only
//! has 4-lane SSE, and an Adam step is bound by its square roots and divisions, which wider
//! registers do in fewer instructions. Every path does the same IEEE operations in the same
//! order (no fused multiply-adds are introduced), so results are identical whichever runs.

use rayon::prelude::*;

/// Below this many weights a tensor is updated on one thread.
const PARALLEL_MIN: usize = 1 << 14;

/// Runs `update(value, grad, first, second)` on every element. Panics if a slice is shorter
/// than `value` (a bug in the caller).
pub(crate) fn update_slots<F>(value: &mut [f32], grad: &[f32], first: &mut [f32], second: &mut [f32], update: F)
where
    F: Fn(&mut f32, f32, &mut f32, &mut f32) + Sync,
{
    let n = value.len();
    let (grad, first, second) = (&grad[..n], &mut first[..n], &mut second[..n]);
    let threads = rayon::current_num_threads();
    if n < PARALLEL_MIN || threads == 1 {
        return dispatch(value, grad, first, second, &update);
    }
    // One chunk per thread: each element's update is independent, so any split gives the same
    // values, and fewer tasks cost less to hand out.
    let chunk = n.div_ceil(threads).next_multiple_of(64);
    value
        .par_chunks_mut(chunk)
        .zip(grad.par_chunks(chunk))
        .zip(first.par_chunks_mut(chunk))
        .zip(second.par_chunks_mut(chunk))
        .for_each(|(((v, g), a), b)| dispatch(v, g, a, b, &update));
}

fn dispatch<F>(value: &mut [f32], grad: &[f32], first: &mut [f32], second: &mut [f32], update: &F)
where
    F: Fn(&mut f32, f32, &mut f32, &mut f32),
{
    #[cfg(target_arch = "x86_64")]
    {
        // The level the other kernels use (so `STRATA_SIMD` lowers this loop too), and the
        // CPU check the `unsafe` calls rest on.
        let level = super::simd::simd_level();
        if level == super::simd::SimdLevel::Avx512 && is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { run_avx512(value, grad, first, second, update) };
        }
        if level >= super::simd::SimdLevel::Avx2 && is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { run_avx2(value, grad, first, second, update) };
        }
    }
    run(value, grad, first, second, update);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn run_avx512<F>(value: &mut [f32], grad: &[f32], first: &mut [f32], second: &mut [f32], update: &F)
where
    F: Fn(&mut f32, f32, &mut f32, &mut f32),
{
    run(value, grad, first, second, update);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
unsafe fn run_avx2<F>(value: &mut [f32], grad: &[f32], first: &mut [f32], second: &mut [f32], update: &F)
where
    F: Fn(&mut f32, f32, &mut f32, &mut f32),
{
    run(value, grad, first, second, update);
}

/// The loop itself, inlined into each compiled variant so it vectorizes for that variant.
#[inline(always)]
fn run<F>(value: &mut [f32], grad: &[f32], first: &mut [f32], second: &mut [f32], update: &F)
where
    F: Fn(&mut f32, f32, &mut f32, &mut f32),
{
    // Slices of one length, indexed together, so the bounds checks go and the loop vectorizes.
    let n = value.len();
    let (grad, first, second) = (&grad[..n], &mut first[..n], &mut second[..n]);
    for i in 0..n {
        update(&mut value[i], grad[i], &mut first[i], &mut second[i]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An Adam-like rule (square root and division) gives bit-identical values on every path,
    /// one thread or several, as the plain scalar loop.
    #[test]
    fn every_path_matches_the_scalar_loop() {
        let n = 40_000 + 13;
        let grad: Vec<f32> = (0..n).map(|i| ((i * 7919) % 1000) as f32 / 500.0 - 1.0).collect();
        let rule = |theta: &mut f32, g: f32, m: &mut f32, v: &mut f32| {
            *m += (g - *m) * 0.1;
            *v += (g * g - *v) * 0.001;
            *theta -= 0.01 * *m / (v.sqrt() + 1e-7);
        };
        let fresh = || (vec![0.5f32; n], vec![0.0f32; n], vec![0.0f32; n]);
        let (mut want, mut m, mut v) = fresh();
        for _ in 0..3 {
            for i in 0..n {
                rule(&mut want[i], grad[i], &mut m[i], &mut v[i]);
            }
        }
        let (mut got, mut m, mut v) = fresh();
        for _ in 0..3 {
            update_slots(&mut got, &grad, &mut m, &mut v, rule);
        }
        assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
        let (mut got, mut m, mut v) = fresh();
        for _ in 0..3 {
            run(&mut got, &grad, &mut m, &mut v, &rule);
        }
        assert!(want.iter().zip(&got).all(|(a, b)| a.to_bits() == b.to_bits()));
    }
}
