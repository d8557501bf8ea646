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

/// A uniform draw in `[0, 2²⁴)` for position `index` of the noise keyed `key` (dropout's
/// masks): [`Draws`] for the block of 2³² positions holding `index`.
#[inline(always)]
pub fn draw24(key: u64, index: u64) -> u32 {
    Draws::new(key, (index >> 32) as u32).at(index as u32)
}

/// The draws of one block of 2³² positions of the noise keyed `key`: a counter-based hash on
/// 32-bit words, MurmurHash3's finalizer twice, with the key's halves (and the block) mixed in
/// between. For one key and block it is a bijection of the position, so no two positions of a
/// mask share a draw by construction. Why not [`mix`]: its 64-bit multiplies have no AVX2
/// instruction, so a mask filled through it runs one value at a time, where these 32-bit ones
/// fill eight (sixteen with AVX-512) per instruction.
#[derive(Clone, Copy, Debug)]
pub struct Draws {
    low: u32,
    high: u32,
}

impl Draws {
    const GOLDEN: u32 = 0x9e37_79b9;

    /// The draws of positions `block·2³²` to `block·2³² + 2³² − 1` of the noise keyed `key`.
    pub fn new(key: u64, block: u32) -> Self {
        Draws {
            low: key as u32,
            high: (key >> 32) as u32 ^ block.wrapping_mul(Self::GOLDEN),
        }
    }

    /// The draw in `[0, 2²⁴)` of position `index` of the block.
    #[inline(always)]
    pub fn at(self, index: u32) -> u32 {
        #[inline(always)]
        fn finish(mut z: u32) -> u32 {
            z ^= z >> 16;
            z = z.wrapping_mul(0x85eb_ca6b);
            z ^= z >> 13;
            z = z.wrapping_mul(0xc2b2_ae35);
            z ^ (z >> 16)
        }
        finish(finish(index.wrapping_mul(Self::GOLDEN) ^ self.low) ^ self.high) >> 8
    }
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

    /// The draws are spread evenly (16 bins of 2²⁰ draws, each within 1 % of its share, for
    /// keys that differ in one bit), two keys' masks are unrelated (about a quarter of
    /// positions fall below one half for both), and the stream is fixed: these values are
    /// what every machine and version draws.
    #[test]
    fn draw24_is_uniform_independent_across_keys_and_fixed() {
        for key in [0u64, 1, 1 << 32, 0xdead_beef_cafe_f00d] {
            let mut bins = [0usize; 16];
            for i in 0..1u64 << 20 {
                bins[(draw24(key, i) >> 20) as usize] += 1;
            }
            let share = (1usize << 20) / 16;
            for (b, &count) in bins.iter().enumerate() {
                assert!(
                    count.abs_diff(share) * 100 < share,
                    "key {key:#x}: bin {b} holds {count}"
                );
            }
        }
        let both = (0..1u64 << 16)
            .filter(|&i| draw24(5, i) < 1 << 23 && draw24(6, i) < 1 << 23)
            .count();
        assert!(
            both.abs_diff(1 << 14) < 400,
            "{both} of 65536 below one half for both keys"
        );
        assert!(draw24(0, 1 << 32) != draw24(0, 0));
        let golden: Vec<u32> = (0..4).map(|i| draw24(42, i)).collect();
        // Computed independently (Python, the same 32-bit arithmetic).
        assert_eq!(golden, [12_180_161, 12_029_885, 6_042_316, 2_774_321]);
    }
}
