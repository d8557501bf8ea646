//! numpy's `np.random.RandomState(seed).shuffle`, which Keras's IMDB, Reuters and Boston Housing
//! loaders use (seed 113), so strata's splits hold the same samples in the same order.
//!
//! `RandomState` is the 32-bit Mersenne Twister seeded with `init_genrand(seed)` (the `rand_mt`
//! crate's `Mt::new`); its legacy `shuffle` is Fisher–Yates from the last element down, drawing
//! each index with numpy's `random_interval`: 32-bit words masked to the smallest power of two
//! above the bound, redrawn while they exceed it.

use rand_mt::Mt;

/// numpy's `RandomState(seed)`.
pub struct RandomState(Mt);

impl RandomState {
    /// `np.random.RandomState(seed)`.
    pub fn new(seed: u32) -> Self {
        RandomState(Mt::new(seed))
    }

    /// `indices = np.arange(n); rng.shuffle(indices)`: the order of `n` samples.
    pub fn permutation(&mut self, n: usize) -> Vec<usize> {
        let mut indices: Vec<usize> = (0..n).collect();
        for i in (1..n).rev() {
            let j = self.interval(i as u64) as usize;
            indices.swap(i, j);
        }
        indices
    }

    /// numpy's `random_interval(max)`: uniform in `0..=max`.
    fn interval(&mut self, max: u64) -> u64 {
        if max == 0 {
            return 0;
        }
        let mask = u64::MAX >> max.leading_zeros();
        loop {
            let value = if max <= u64::from(u32::MAX) {
                u64::from(self.0.next_u32()) & mask
            } else {
                self.0.next_u64() & mask
            };
            if value <= max {
                return value;
            }
        }
    }
}

/// `items` in the order `order` gives (`x[indices]`).
pub fn reorder<T: Clone>(items: &[T], order: &[usize]) -> Vec<T> {
    order.iter().map(|&i| items[i].clone()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn permutations_match_numpy() {
        // np.random.RandomState(113): shuffle(arange(10)), then shuffle(arange(7)).
        let mut rng = RandomState::new(113);
        assert_eq!(rng.permutation(10), [9, 3, 6, 1, 0, 7, 4, 8, 2, 5]);
        assert_eq!(rng.permutation(7), [5, 1, 0, 3, 6, 4, 2]);
        // shuffle(arange(25000)), IMDB's training set: its first five and last three.
        let order = RandomState::new(113).permutation(25000);
        assert_eq!(order[..5], [7798, 13226, 18078, 793, 17499]);
        assert_eq!(order[24997..], [22690, 4828, 14501]);
    }
}
