//! Keeping the ranks' model replicas identical: the start-up agreement check, the initial
//! broadcast, the fused per-step gradient all-reduce and the epoch-end synchronisation.

use super::collective::Collective;
use crate::autograd::ParamStore;
use crate::error::{Error, Result};
use std::cell::RefCell;

thread_local! {
    /// The fused gradient buffer, kept between steps so a step allocates nothing.
    static FUSED: RefCell<Vec<f32>> = const { RefCell::new(Vec::new()) };
}

/// One value every rank must have the same of, with what it means for the error message.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Agreed<'a> {
    /// What the value is, e.g. `"parameters"`.
    pub(crate) what: &'a str,
    /// This rank's value.
    pub(crate) value: u64,
    /// Whether the value is a hash (printed in hex: only equality means anything).
    pub(crate) hash: bool,
}

/// Compares every rank's `values` with rank 0's: on any difference every rank returns the same
/// error, naming the first value that differs and the ranks' values, so no rank goes on to wait
/// for a collective that the others never make.
pub(crate) fn check_agreement(world: &dyn Collective, values: &[Agreed]) -> Result<()> {
    let mine: Vec<u64> = values.iter().map(|v| v.value).collect();
    let all = world.all_gather_u64(&mine)?;
    let ranks: Vec<&[u64]> = all.chunks(mine.len().max(1)).collect();
    for (i, agreed) in values.iter().enumerate() {
        let differing: Vec<usize> = (1..ranks.len()).filter(|&r| ranks[r][i] != ranks[0][i]).collect();
        if let Some(&rank) = differing.first() {
            let show = |v: u64| {
                if agreed.hash {
                    format!("{v:#018x}")
                } else {
                    v.to_string()
                }
            };
            return Err(Error::Usage(format!(
                "the {} ranks disagree on the {}: rank 0 has {}, rank {rank} has {}{}; start every rank with the same model, data and options",
                ranks.len(),
                agreed.what,
                show(ranks[0][i]),
                show(ranks[rank][i]),
                match differing.len() {
                    1 => String::new(),
                    n => format!(" ({n} ranks differ from rank 0)"),
                }
            )));
        }
    }
    Ok(())
}

/// Overwrites every rank's weights (trainable or not) with rank 0's, in one broadcast.
pub(crate) fn weights_from_chief(world: &dyn Collective, params: &mut ParamStore) -> Result<()> {
    let mut buffer: Vec<f32> = params.values_slice().iter().flat_map(|v| v.data()).copied().collect();
    world.broadcast_f32(&mut buffer, 0)?;
    let mut at = 0;
    for id in params.ids() {
        let value = params.value_mut(id).data_mut();
        value.copy_from_slice(&buffer[at..at + value.len()]);
        at += value.len();
    }
    Ok(())
}

/// Replaces each trainable gradient with `Σ_ranks weight × gradient`, and `extras` (the step's
/// loss and metric sums) with their sums over the ranks, in one all-reduce of one buffer.
///
/// With `weight` = this rank's rows / the global batch's rows, the result is the gradient of the
/// mean loss over the whole global batch, whatever the shards' sizes; a rank with no rows passes
/// `weight` 0 and its gradients count as zeros, whatever they held.
pub(crate) fn reduce_gradients(
    world: &dyn Collective,
    params: &mut ParamStore,
    weight: f32,
    extras: &mut [f32],
) -> Result<()> {
    let trainable: Vec<bool> = params.ids().map(|id| params.is_trainable(id)).collect();
    let (_, grads) = params.split_for_backward();
    FUSED.with_borrow_mut(|buffer| {
        buffer.clear();
        for (grad, _) in grads.iter().zip(&trainable).filter(|(_, t)| **t) {
            if weight == 0.0 {
                buffer.extend(std::iter::repeat_n(0.0, grad.len()));
            } else {
                buffer.extend(grad.data().iter().map(|g| g * weight));
            }
        }
        buffer.extend_from_slice(extras);
        world.all_reduce_sum_f32(buffer)?;
        let mut at = 0;
        for (grad, _) in grads.iter_mut().zip(&trainable).filter(|(_, t)| **t) {
            let data = grad.data_mut();
            data.copy_from_slice(&buffer[at..at + data.len()]);
            at += data.len();
        }
        extras.copy_from_slice(&buffer[at..]);
        Ok(())
    })
}

/// Makes the replicas one model again at an epoch end, in one all-reduce: non-trainable weights
/// (BatchNormalization's moving statistics, updated from each rank's own shard) become their
/// mean over the ranks, trainable ones rank 0's (they are equal already when the all-reduce
/// gives every rank the same bits, as MPI's algorithms do; this bounds any drift to one epoch).
pub(crate) fn sync_replicas(world: &dyn Collective, params: &mut ParamStore) -> Result<()> {
    let chief = world.is_chief();
    let share = 1.0 / world.size() as f32;
    let mut buffer = Vec::with_capacity(params.counts().0);
    for id in params.ids() {
        let value = params.value(id).data();
        match (params.is_trainable(id), chief) {
            (true, true) => buffer.extend_from_slice(value),
            (true, false) => buffer.extend(std::iter::repeat_n(0.0, value.len())),
            (false, _) => buffer.extend(value.iter().map(|v| v * share)),
        }
    }
    world.all_reduce_sum_f32(&mut buffer)?;
    let mut at = 0;
    for id in params.ids() {
        let value = params.value_mut(id).data_mut();
        value.copy_from_slice(&buffer[at..at + value.len()]);
        at += value.len();
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::distributed::ThreadGroup;
    use crate::tensor::Tensor;

    /// A store with a trainable `w` of `[rank + 1, 2 (rank + 1)]` (gradient the same) and a
    /// non-trainable `moving` of `[rank]`.
    fn store(rank: usize) -> ParamStore {
        let mut params = ParamStore::new();
        let r = rank as f32 + 1.0;
        let w = params.add("w", Tensor::from_vec(vec![2], vec![r, 2.0 * r]).unwrap(), true);
        params.set_grad_for_test(w, &[r, 2.0 * r]);
        params.add("moving", Tensor::from_vec(vec![1], vec![rank as f32]).unwrap(), false);
        params
    }

    fn run<T: Send + 'static>(size: usize, body: fn(ThreadGroup) -> T) -> Vec<T> {
        let handles: Vec<_> = ThreadGroup::new(size)
            .into_iter()
            .map(|g| std::thread::spawn(move || body(g)))
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    }

    #[test]
    fn gradients_are_weighted_by_rows_and_summed_with_the_metrics() {
        let results = run(2, |g| {
            let mut params = store(g.rank());
            // Rank 0 had 3 of 4 rows, rank 1 one: weights 3/4 and 1/4.
            let weight = if g.rank() == 0 { 0.75 } else { 0.25 };
            let mut extras = [1.0 + g.rank() as f32];
            reduce_gradients(&g, &mut params, weight, &mut extras).unwrap();
            let w = params.ids().next().unwrap();
            (params.grad(w).data().to_vec(), extras)
        });
        for (grad, extras) in results {
            // 0.75 × [1, 2] + 0.25 × [2, 4] = [1.25, 2.5]
            assert_eq!(grad, vec![1.25, 2.5]);
            assert_eq!(extras, [3.0]);
        }
    }

    #[test]
    fn a_rank_without_rows_contributes_zeros_even_over_a_nan_gradient() {
        let results = run(2, |g| {
            let mut params = store(g.rank());
            let w = params.ids().next().unwrap();
            if g.rank() == 1 {
                params.set_grad_for_test(w, &[f32::NAN, 1.0]);
            }
            let weight = if g.rank() == 0 { 1.0 } else { 0.0 };
            reduce_gradients(&g, &mut params, weight, &mut []).unwrap();
            params.grad(w).data().to_vec()
        });
        assert_eq!(results, vec![vec![1.0, 2.0]; 2]);
    }

    #[test]
    fn sync_takes_rank_0s_weights_and_averages_the_moving_statistics() {
        let results = run(3, |g| {
            let mut params = store(g.rank());
            sync_replicas(&g, &mut params).unwrap();
            params
                .values_slice()
                .iter()
                .map(|v| v.data().to_vec())
                .collect::<Vec<_>>()
        });
        for values in results {
            assert_eq!(values[0], vec![1.0, 2.0]);
            assert_eq!(values[1], vec![1.0]); // (0 + 1 + 2) / 3
        }
    }

    #[test]
    fn broadcast_gives_every_rank_rank_0s_weights() {
        let results = run(2, |g| {
            let mut params = store(g.rank());
            weights_from_chief(&g, &mut params).unwrap();
            params
                .values_slice()
                .iter()
                .map(|v| v.data().to_vec())
                .collect::<Vec<_>>()
        });
        assert_eq!(results, vec![vec![vec![1.0, 2.0], vec![0.0]]; 2]);
    }

    #[test]
    fn disagreement_is_the_same_error_on_every_rank() {
        let results = run(3, |g| {
            let parameters = if g.rank() == 2 { 50 } else { 100 };
            let values = [
                Agreed {
                    what: "samples",
                    value: 60,
                    hash: false,
                },
                Agreed {
                    what: "parameters",
                    value: parameters,
                    hash: false,
                },
            ];
            check_agreement(&g, &values).unwrap_err().to_string()
        });
        for message in &results {
            assert_eq!(
                message,
                "the 3 ranks disagree on the parameters: rank 0 has 100, rank 2 has 50; start every rank with the same model, data and options"
            );
        }
        let agreed = run(2, |g| {
            let values = [Agreed {
                what: "architecture",
                value: 7,
                hash: true,
            }];
            check_agreement(&g, &values).is_ok()
        });
        assert_eq!(agreed, vec![true, true]);
    }
}
