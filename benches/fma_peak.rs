//! This machine's peak f32 throughput: fused multiply-adds on 256-bit AVX2 vectors and, where
//! the CPU has them, 512-bit AVX-512 vectors, on 1 thread and on all threads at once, so kernel
//! results (`cargo bench --bench kernels`) can be read as a fraction of the limit; and, where
//! the CPU has AVX-512 VNNI, the int8 multiply-add peak of the int8 kernels (`vpdpbusd`), whose
//! ratio to the f32 peak bounds what int8 inference can gain over f32.
//!
//! `cargo bench --bench fma_peak`
//!
//! Each thread runs 12 independent chains of `acc = acc·a + b` on 8-lane vectors: more chains
//! than an FMA's latency × throughput on current x86 cores (Zen 1: 5 cycles × 1 per cycle;
//! Skylake: 4 × 2), so the FMA units, not the dependency chains, set the pace. Both widths,
//! because `gemm` picks its AVX-512 kernels at run time where the CPU has them (strata enables
//! its `x86-v4` feature) and strata's own kernels are AVX2; the peak is the larger of the two
//! (on Zen 4 they are equal: it splits a 512-bit FMA in two halves; on Intel's server cores with
//! two 512-bit FMA units AVX-512 doubles it, as on Zen 5).

use std::hint::black_box;
use std::time::Instant;

/// Independent accumulator chains per thread.
const CHAINS: usize = 12;
/// Floating-point operations per loop iteration and lane: CHAINS FMAs × 2 (multiply, add).
const FLOPS_PER_LANE: u64 = (CHAINS * 2) as u64;
/// Loop iterations per timed run (≈ 0.5 s at 40 GFLOP/s).
const ITERATIONS: u64 = 100_000_000;
/// Timed runs per measurement; the fastest counts (the least disturbed by other processes).
const RUNS: usize = 3;

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// Runs `iterations` rounds of CHAINS independent FMAs and returns a value that depends on
    /// all of them (so none can be optimized away).
    ///
    /// # Safety
    /// The CPU must support AVX2 and FMA (checked by the caller at run time).
    #[target_feature(enable = "avx2,fma")]
    pub unsafe fn fma_chains(iterations: u64, seed: f32) -> f32 {
        // acc·a + b with a < 1 converges to b / (1 − a) = 1: no overflow, no subnormals.
        let a = _mm256_set1_ps(0.999_9);
        let b = _mm256_set1_ps(1e-4);
        let mut acc = [_mm256_set1_ps(seed); CHAINS];
        for _ in 0..iterations {
            for chain in acc.iter_mut() {
                *chain = _mm256_fmadd_ps(*chain, a, b);
            }
        }
        let mut total = _mm256_setzero_ps();
        for chain in acc {
            total = _mm256_add_ps(total, chain);
        }
        let mut lanes = [0.0f32; 8];
        // SAFETY: `lanes` holds 8 floats, the width of one unaligned 256-bit store.
        unsafe { _mm256_storeu_ps(lanes.as_mut_ptr(), total) };
        lanes.iter().sum()
    }

    /// Whether this CPU can run [`fma_chains`].
    pub fn supported() -> bool {
        is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma")
    }
}

#[cfg(target_arch = "x86_64")]
mod avx512 {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// [`super::avx2::fma_chains`] on 16-lane vectors.
    ///
    /// # Safety
    /// The CPU must support AVX-512F (checked by the caller at run time).
    #[target_feature(enable = "avx512f")]
    pub unsafe fn fma_chains(iterations: u64, seed: f32) -> f32 {
        let a = _mm512_set1_ps(0.999_9);
        let b = _mm512_set1_ps(1e-4);
        let mut acc = [_mm512_set1_ps(seed); CHAINS];
        for _ in 0..iterations {
            for chain in acc.iter_mut() {
                *chain = _mm512_fmadd_ps(*chain, a, b);
            }
        }
        let mut total = _mm512_setzero_ps();
        for chain in acc {
            total = _mm512_add_ps(total, chain);
        }
        _mm512_reduce_add_ps(total)
    }

    /// Whether this CPU can run [`fma_chains`].
    pub fn supported() -> bool {
        is_x86_feature_detected!("avx512f")
    }
}

#[cfg(target_arch = "x86_64")]
mod vnni {
    use super::CHAINS;
    use std::arch::x86_64::*;

    /// [`super::avx2::fma_chains`] with `vpdpbusd` on 512-bit vectors: 64 int8 multiply-adds
    /// per instruction, the int8 kernels' product (`kernels/int8_matmul.rs`, `int8_conv.rs`).
    ///
    /// # Safety
    /// The CPU must support AVX-512F and AVX-512 VNNI (checked by the caller at run time).
    #[target_feature(enable = "avx512f,avx512vnni")]
    pub unsafe fn dot_chains(iterations: u64, seed: f32) -> f32 {
        let a = _mm512_set1_epi8(3);
        let b = _mm512_set1_epi8(-5);
        let mut acc = [_mm512_set1_epi32(seed as i32); CHAINS];
        for _ in 0..iterations {
            for chain in acc.iter_mut() {
                *chain = _mm512_dpbusd_epi32(*chain, a, b);
            }
        }
        let mut total = _mm512_setzero_si512();
        for chain in acc {
            total = _mm512_add_epi32(total, chain);
        }
        _mm512_reduce_add_epi32(total) as f32
    }

    /// Whether this CPU can run [`dot_chains`].
    pub fn supported() -> bool {
        is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512vnni")
    }
}

/// A vector width (and instruction) to measure.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
enum Width {
    Avx2,
    Avx512,
    /// int8 `vpdpbusd` on 512-bit vectors; a "lane" is one byte product.
    Vnni512,
}

#[cfg(target_arch = "x86_64")]
impl Width {
    fn lanes(self) -> u64 {
        match self {
            Width::Avx2 => 8,
            Width::Avx512 => 16,
            Width::Vnni512 => 64,
        }
    }

    fn name(self) -> &'static str {
        match self {
            Width::Avx2 => "f32 FMA peak (AVX2, 256-bit)",
            Width::Avx512 => "f32 FMA peak (AVX-512, 512-bit)",
            Width::Vnni512 => "int8 VNNI peak (vpdpbusd, 512-bit)",
        }
    }

    /// Operations counted: two per multiply-add, as GFLOP/s count them.
    fn unit(self) -> &'static str {
        match self {
            Width::Vnni512 => "GOP/s",
            _ => "GFLOP/s",
        }
    }

    fn run(self, iterations: u64, seed: f32) -> f32 {
        // SAFETY: main measures a width only after its `supported()` returned true.
        unsafe {
            match self {
                Width::Avx2 => avx2::fma_chains(iterations, seed),
                Width::Avx512 => avx512::fma_chains(iterations, seed),
                Width::Vnni512 => vnni::dot_chains(iterations, seed),
            }
        }
    }
}

/// GFLOP/s (GOP/s) of `threads` threads each running the chains at the same time (best of RUNS).
#[cfg(target_arch = "x86_64")]
fn measure(width: Width, threads: usize) -> f64 {
    let mut best = f64::INFINITY;
    for _ in 0..RUNS {
        let started = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                scope.spawn(move || black_box(width.run(ITERATIONS, black_box(t as f32))));
            }
        });
        best = best.min(started.elapsed().as_secs_f64());
    }
    (threads as u64 * ITERATIONS * FLOPS_PER_LANE * width.lanes()) as f64 / best / 1e9
}

#[cfg(target_arch = "x86_64")]
fn main() {
    if !avx2::supported() {
        println!("fma_peak: this CPU has no AVX2 + FMA; nothing to measure");
        return;
    }
    let all = std::thread::available_parallelism().map_or(1, |n| n.get());
    let widths = [
        Some(Width::Avx2),
        avx512::supported().then_some(Width::Avx512),
        vnni::supported().then_some(Width::Vnni512),
    ];
    for width in widths.into_iter().flatten() {
        let (name, unit) = (width.name(), width.unit());
        let single = measure(width, 1);
        println!("{name}, 1 thread: {single:.1} {unit}");
        if all > 1 {
            let total = measure(width, all);
            println!(
                "{name}, {all} threads: {total:.1} {unit} ({:.1} per thread)",
                total / all as f64
            );
        }
    }
}

#[cfg(not(target_arch = "x86_64"))]
fn main() {
    println!("fma_peak: measures AVX2 FMAs, which only x86-64 has");
}
