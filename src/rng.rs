//! [`Rng`]: the one seeded random generator behind initializers, shuffling and dropout.
//!
//! PCG-64 (MCG variant) from `rand_pcg`: its output for a seed is fixed by its specification,
//! so the same seed gives the same weights on every machine and every version of strata.

use rand::seq::SliceRandom;
use rand::{RngExt, SeedableRng};
use rand_distr::{Distribution, StandardNormal};
use rand_pcg::Pcg64Mcg;

/// A seeded random generator.
#[derive(Clone, Debug)]
pub struct Rng(Pcg64Mcg);

impl Rng {
    /// A generator whose whole sequence is fixed by `seed`.
    pub fn new(seed: u64) -> Self {
        Rng(Pcg64Mcg::seed_from_u64(seed))
    }

    /// A new generator seeded from this one, for an independent stream (one per layer).
    pub fn fork(&mut self) -> Rng {
        Rng::new(self.0.random::<u64>())
    }

    /// Uniform in `[low, high)`.
    pub fn uniform(&mut self, low: f32, high: f32) -> f32 {
        low + (high - low) * self.0.random::<f32>()
    }

    /// Standard normal (mean 0, standard deviation 1).
    pub fn normal(&mut self) -> f32 {
        StandardNormal.sample(&mut self.0)
    }

    /// Normal with `stddev`, redrawn until within two standard deviations (Keras's
    /// `TruncatedNormal`).
    pub fn truncated_normal(&mut self, stddev: f32) -> f32 {
        loop {
            let value = self.normal();
            if value.abs() <= 2.0 {
                return value * stddev;
            }
        }
    }

    /// A uniform integer in `0..bound`.
    pub fn below(&mut self, bound: usize) -> usize {
        self.0.random_range(0..bound)
    }

    /// Shuffles `items` in place.
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        items.shuffle(&mut self.0);
    }
}

/// Mixes two numbers into a well-spread seed (SplitMix64's finalizer), so nearby inputs
/// (consecutive steps, similar names) give unrelated streams.
pub fn mix(a: u64, b: u64) -> u64 {
    let mut z = a ^ b.rotate_left(32) ^ 0x9e37_79b9_7f4a_7c15;
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a name (FNV-1a), the same on every machine and version.
pub fn hash_name(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| {
        (h ^ b as u64).wrapping_mul(0x0000_0100_0000_01b3)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn same_seed_same_sequence_and_truncation_holds() {
        let (mut a, mut b) = (Rng::new(7), Rng::new(7));
        for _ in 0..100 {
            assert_eq!(a.uniform(-1.0, 1.0), b.uniform(-1.0, 1.0));
            let t = a.truncated_normal(0.5);
            assert_eq!(t, b.truncated_normal(0.5));
            assert!(t.abs() <= 1.0);
        }
        let mut items: Vec<usize> = (0..50).collect();
        a.shuffle(&mut items);
        let mut sorted = items.clone();
        sorted.sort();
        assert_eq!(sorted, (0..50).collect::<Vec<_>>());
        assert_ne!(items, sorted);
    }
}
