//! Batch normalization's loops over a `(rows, channels)` matrix (channels last), split over the
//! thread pool when large: the per-channel sums by blocks of channels, the per-value maps by
//! blocks of rows.
//!
//! Why by channels for the sums: each channel's sum over the rows then runs in row order on
//! one thread whatever the thread count, so one and two threads give the same bits (splitting
//! the rows would add partial sums in an order that depends on the split). Every loop runs on
//! vectors as wide as the CPU has (`widest`), one channel per lane, each value computed as the
//! formula writes it (no multiply-add is fused), so every path gives the same bits too.

use super::simd::widest;
use rayon::prelude::*;

/// Values below which a loop stays on one thread (as `kernels::elementwise`'s chunks).
const PARALLEL_MIN: usize = 1 << 15;

/// Channels per block when the sums are split: a multiple of sixteen (a whole AVX-512 vector
/// and a 64-byte cache line per row), about one block per thread; all channels on one thread
/// below [`PARALLEL_MIN`] values.
fn channel_block(rows: usize, channels: usize) -> usize {
    let threads = rayon::current_num_threads().max(1);
    if rows.saturating_mul(channels) < PARALLEL_MIN || threads == 1 {
        return channels.max(1);
    }
    channels.div_ceil(threads).next_multiple_of(16).min(channels).max(1)
}

/// Rows per task of the per-value loops: about [`PARALLEL_MIN`] values, fixed by the shape.
fn row_block(channels: usize) -> usize {
    (PARALLEL_MIN / channels.max(1)).max(1)
}

/// Per-channel mean and biased variance of `x` (`(rows, channels)`), in two passes (mean, then
/// centred squares) so a large mean does not swallow a small variance.
pub(crate) fn batch_norm_moments(x: &[f32], channels: usize, mean: &mut [f32], var: &mut [f32]) {
    let rows = x.len() / channels.max(1);
    let block = channel_block(rows, channels);
    let run = |first: usize, mean: &mut [f32], var: &mut [f32]| {
        widest(|| moments_block(x, channels, first, mean, var));
    };
    if block >= channels {
        return run(0, mean, var);
    }
    mean.par_chunks_mut(block)
        .zip(var.par_chunks_mut(block))
        .enumerate()
        .for_each(|(b, (mean, var))| run(b * block, mean, var));
}

/// [`batch_norm_moments`] of the channels from `first` on, `mean.len()` of them.
#[inline(always)]
fn moments_block(x: &[f32], channels: usize, first: usize, mean: &mut [f32], var: &mut [f32]) {
    let width = mean.len();
    let rows = x.len() / channels.max(1);
    mean.fill(0.0);
    var.fill(0.0);
    for row in x.chunks_exact(channels) {
        mean.iter_mut()
            .zip(&row[first..first + width])
            .for_each(|(m, v)| *m += v);
    }
    mean.iter_mut().for_each(|m| *m /= rows.max(1) as f32);
    for row in x.chunks_exact(channels) {
        let columns = var.iter_mut().zip(&row[first..first + width]).zip(mean.iter());
        columns.for_each(|((v, &x), &m)| {
            let d = x - m;
            *v += d * d;
        });
    }
    var.iter_mut().for_each(|v| *v /= rows.max(1) as f32);
}

/// The per-channel statistics and affine parameters of one batch normalization.
#[derive(Clone, Copy)]
pub(crate) struct Normalization<'a> {
    /// Mean per channel.
    pub mean: &'a [f32],
    /// `1/√(var + ε)` per channel.
    pub inv_std: &'a [f32],
}

/// `out = (x − mean)·inv_std·γ + β`, each of `γ` and `β` only where given.
pub(crate) fn batch_norm_forward(
    x: &[f32],
    stats: Normalization,
    gamma: Option<&[f32]>,
    beta: Option<&[f32]>,
    out: &mut [f32],
) {
    let channels = stats.mean.len().max(1);
    let run = |out: &mut [f32], x: &[f32]| {
        widest(|| {
            for (out_row, x_row) in out.chunks_exact_mut(channels).zip(x.chunks_exact(channels)) {
                let columns = out_row.iter_mut().zip(x_row).zip(stats.mean.iter().zip(stats.inv_std));
                columns.for_each(|((o, &x), (&m, &s))| *o = (x - m) * s);
                if let Some(gamma) = gamma {
                    out_row.iter_mut().zip(gamma).for_each(|(o, &g)| *o *= g);
                }
                if let Some(beta) = beta {
                    out_row.iter_mut().zip(beta).for_each(|(o, &b)| *o += b);
                }
            }
        })
    };
    by_rows(out.len(), channels, out, x, run);
}

/// Per channel, `sum_dy = Σ dy` and `sum_dy_xhat = Σ dy·x̂` over the rows (`x̂ = (x − mean)·inv_std`).
pub(crate) fn batch_norm_sums(
    dy: &[f32],
    x: &[f32],
    stats: Normalization,
    sum_dy: &mut [f32],
    sum_dy_xhat: &mut [f32],
) {
    let channels = stats.mean.len().max(1);
    let block = channel_block(dy.len() / channels, channels);
    let run = |first: usize, sum_dy: &mut [f32], sum_dy_xhat: &mut [f32]| {
        let width = sum_dy.len();
        let (mean, inv_std) = (&stats.mean[first..first + width], &stats.inv_std[first..first + width]);
        sum_dy.fill(0.0);
        sum_dy_xhat.fill(0.0);
        widest(|| {
            for (dy_row, x_row) in dy.chunks_exact(channels).zip(x.chunks_exact(channels)) {
                let values = dy_row[first..first + width].iter().zip(&x_row[first..first + width]);
                let columns = sum_dy.iter_mut().zip(sum_dy_xhat.iter_mut()).zip(values);
                columns
                    .zip(mean.iter().zip(inv_std))
                    .for_each(|(((s, sx), (&dy, &x)), (&m, &inv_std))| {
                        *s += dy;
                        *sx += dy * (x - m) * inv_std;
                    });
            }
        });
    };
    if block >= channels {
        return run(0, sum_dy, sum_dy_xhat);
    }
    sum_dy
        .par_chunks_mut(block)
        .zip(sum_dy_xhat.par_chunks_mut(block))
        .enumerate()
        .for_each(|(b, (sum_dy, sum_dy_xhat))| run(b * block, sum_dy, sum_dy_xhat));
}

/// `dx += scale·dy` per channel: the input gradient with moving statistics (constants), where
/// `scale = γ·inv_std`.
pub(crate) fn batch_norm_scaled_grad(dx: &mut [f32], dy: &[f32], scale: &[f32]) {
    let channels = scale.len().max(1);
    let run = |dx: &mut [f32], dy: &[f32]| {
        widest(|| {
            for (dx_row, dy_row) in dx.chunks_exact_mut(channels).zip(dy.chunks_exact(channels)) {
                let columns = dx_row.iter_mut().zip(dy_row).zip(scale);
                columns.for_each(|((d, &dy), &scale)| *d += scale * dy);
            }
        })
    };
    by_rows(dx.len(), channels, dx, dy, run);
}

/// `dx += k·(N·dy − Σdy − x̂·Σ(dy·x̂))` per channel: the input gradient with batch statistics,
/// where `k = γ·inv_std/N` (`scale_over_n`) and the sums come from [`batch_norm_sums`].
pub(crate) fn batch_norm_input_grad(
    dx: &mut [f32],
    (dy, x): (&[f32], &[f32]),
    stats: Normalization,
    scale_over_n: &[f32],
    (sum_dy, sum_dy_xhat): (&[f32], &[f32]),
) {
    let channels = stats.mean.len().max(1);
    let n = (dy.len() / channels) as f32;
    let run = |dx: &mut [f32], start: usize| {
        let (dy, x) = (&dy[start..start + dx.len()], &x[start..start + dx.len()]);
        widest(|| {
            let rows = dx.chunks_exact_mut(channels).zip(dy.chunks_exact(channels));
            for ((dx_row, dy_row), x_row) in rows.zip(x.chunks_exact(channels)) {
                let columns = dx_row.iter_mut().zip(dy_row.iter().zip(x_row));
                let channel = scale_over_n
                    .iter()
                    .zip(stats.mean.iter().zip(stats.inv_std))
                    .zip(sum_dy.iter().zip(sum_dy_xhat.iter()));
                columns
                    .zip(channel)
                    .for_each(|((d, (&dy, &x)), ((&k, (&m, &inv_std)), (&sum_dy, &sum_dy_xhat)))| {
                        let x_hat = (x - m) * inv_std;
                        *d += k * (n * dy - sum_dy - x_hat * sum_dy_xhat);
                    });
            }
        })
    };
    let chunk = row_block(channels) * channels;
    if dx.len() < PARALLEL_MIN {
        return run(dx, 0);
    }
    dx.par_chunks_mut(chunk)
        .enumerate()
        .for_each(|(c, dx)| run(dx, c * chunk));
}

/// Runs `run(out, input)` on blocks of whole rows of both, in parallel when large.
fn by_rows(len: usize, channels: usize, out: &mut [f32], input: &[f32], run: impl Fn(&mut [f32], &[f32]) + Sync) {
    if len < PARALLEL_MIN {
        return run(out, input);
    }
    let chunk = row_block(channels) * channels;
    out.par_chunks_mut(chunk)
        .zip(input.par_chunks(chunk))
        .for_each(|(out, input)| run(out, input));
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The moments and the sums on 1 and 2 threads (blocks of 16 channels and a partial one),
    /// against each other to the bit and against plain f64 loops.
    #[test]
    fn split_over_channels_gives_the_same_bits_as_one_thread() {
        let (rows, channels) = (1200, 37);
        let x: Vec<f32> = (0..rows * channels)
            .map(|i| ((i * 7919 % 1000) as f32 / 250.0) - 1.5)
            .collect();
        let dy: Vec<f32> = (0..rows * channels)
            .map(|i| ((i * 104_729 % 997) as f32 / 500.0) - 1.0)
            .collect();
        let on = |threads: usize| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
            pool.install(|| {
                let (mut mean, mut var) = (vec![0.0; channels], vec![0.0; channels]);
                batch_norm_moments(&x, channels, &mut mean, &mut var);
                let inv_std: Vec<f32> = var.iter().map(|v| 1.0 / (v + 1e-3).sqrt()).collect();
                let (mut sum_dy, mut sum_dy_xhat) = (vec![0.0; channels], vec![0.0; channels]);
                let stats = Normalization {
                    mean: &mean,
                    inv_std: &inv_std,
                };
                batch_norm_sums(&dy, &x, stats, &mut sum_dy, &mut sum_dy_xhat);
                [mean, var, sum_dy, sum_dy_xhat].map(|v| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>())
            })
        };
        let one = on(1);
        assert!(one == on(2), "1 and 2 threads differ");
        for c in [0, 17, 36] {
            let column = x.iter().skip(c).step_by(channels).map(|&v| v as f64);
            let mean = column.clone().sum::<f64>() / rows as f64;
            let var = column.map(|v| (v - mean).powi(2)).sum::<f64>() / rows as f64;
            assert!((f32::from_bits(one[0][c]) as f64 - mean).abs() < 1e-4);
            assert!((f32::from_bits(one[1][c]) as f64 - var).abs() < 1e-4);
        }
    }
}
