//! [`ThreadGroup`]: ranks as threads of one process, exchanging buffers through shared memory.

use super::collective::Collective;
use crate::error::Result;
use std::sync::{Arc, Barrier, Mutex};

/// One rank of a group of threads that act as the ranks of a distributed run: the same
/// [`Collective`] as `Mpi` (the `mpi` feature) without MPI, for tests and for trying data-parallel
/// training in one process. Sums are taken in rank order, so every rank gets the same bits.
///
/// Every rank's thread must make the same collective calls; a thread that stops calling leaves
/// the others waiting (there is no time-out: it is meant for tests).
#[derive(Clone, Debug)]
pub struct ThreadGroup {
    rank: usize,
    shared: Arc<Shared>,
}

/// Each rank's contribution to the collective in progress, by element type.
#[derive(Debug)]
struct Shared {
    size: usize,
    barrier: Barrier,
    f32s: Mutex<Vec<Vec<f32>>>,
    f64s: Mutex<Vec<Vec<f64>>>,
    u64s: Mutex<Vec<Vec<u64>>>,
}

impl ThreadGroup {
    /// A group of `size` ranks (at least 1): hand element `r` to the thread that plays rank `r`.
    pub fn new(size: usize) -> Vec<ThreadGroup> {
        let size = size.max(1);
        let shared = Arc::new(Shared {
            size,
            barrier: Barrier::new(size),
            f32s: Mutex::new(vec![Vec::new(); size]),
            f64s: Mutex::new(vec![Vec::new(); size]),
            u64s: Mutex::new(vec![Vec::new(); size]),
        });
        (0..size)
            .map(|rank| ThreadGroup {
                rank,
                shared: shared.clone(),
            })
            .collect()
    }

    /// Posts this rank's `values`, waits for every rank's, and returns them all in rank order.
    fn exchange<T: Clone>(&self, slots: &Mutex<Vec<Vec<T>>>, values: &[T]) -> Vec<Vec<T>> {
        // A poisoned lock means another rank's thread panicked: the test fails through it anyway.
        slots.lock().unwrap_or_else(|e| e.into_inner())[self.rank] = values.to_vec();
        self.shared.barrier.wait();
        let all = slots.lock().unwrap_or_else(|e| e.into_inner()).clone();
        // No rank may post the next call's values before every rank has read these.
        self.shared.barrier.wait();
        all
    }
}

impl Collective for ThreadGroup {
    fn rank(&self) -> usize {
        self.rank
    }

    fn size(&self) -> usize {
        self.shared.size
    }

    fn broadcast_f32(&self, buffer: &mut [f32], root: usize) -> Result<()> {
        let all = self.exchange(&self.shared.f32s, buffer);
        buffer.copy_from_slice(&all[root]);
        Ok(())
    }

    fn all_reduce_sum_f32(&self, buffer: &mut [f32]) -> Result<()> {
        let all = self.exchange(&self.shared.f32s, buffer);
        buffer.fill(0.0);
        for values in &all {
            buffer.iter_mut().zip(values).for_each(|(sum, v)| *sum += v);
        }
        Ok(())
    }

    fn all_reduce_sum_f64(&self, buffer: &mut [f64]) -> Result<()> {
        let all = self.exchange(&self.shared.f64s, buffer);
        buffer.fill(0.0);
        for values in &all {
            buffer.iter_mut().zip(values).for_each(|(sum, v)| *sum += v);
        }
        Ok(())
    }

    fn all_gather_u64(&self, values: &[u64]) -> Result<Vec<u64>> {
        Ok(self.exchange(&self.shared.u64s, values).concat())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Runs `body` on every rank of a group of `size` threads and returns the results by rank.
    fn on_ranks<T: Send + 'static>(size: usize, body: fn(&ThreadGroup) -> T) -> Vec<T> {
        let handles: Vec<_> = ThreadGroup::new(size)
            .into_iter()
            .map(|group| std::thread::spawn(move || body(&group)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn all_reduce_sums_over_the_ranks() {
        let sums = on_ranks(3, |g| {
            let mut buffer = vec![g.rank() as f32, 1.0];
            g.all_reduce_sum_f32(&mut buffer).unwrap();
            let mut wide = vec![0.5 * g.rank() as f64];
            g.all_reduce_sum_f64(&mut wide).unwrap();
            (buffer, wide)
        });
        for (buffer, wide) in sums {
            assert_eq!(buffer, vec![3.0, 3.0]); // 0 + 1 + 2, 1 + 1 + 1
            assert_eq!(wide, vec![1.5]);
        }
    }

    #[test]
    fn broadcast_copies_the_roots_buffer_and_gather_concatenates() {
        let results = on_ranks(2, |g| {
            let mut buffer = vec![10.0 * (g.rank() + 1) as f32; 2];
            g.broadcast_f32(&mut buffer, 1).unwrap();
            let gathered = g.all_gather_u64(&[g.rank() as u64, 7]).unwrap();
            (buffer, gathered)
        });
        for (buffer, gathered) in results {
            assert_eq!(buffer, vec![20.0, 20.0]);
            assert_eq!(gathered, vec![0, 7, 1, 7]);
        }
    }
}
