//! Elementwise loops: unary and binary maps, with rayon above a size where threads pay. Each
//! chunk's loop runs through [`widest`], so the compiler vectorizes it for AVX-512 or AVX2
//! where the CPU has them (the same bits on every path: each element's operations are the
//! same).

use super::simd::widest;
use rayon::prelude::*;

/// Below this many values a loop stays on one thread; above it, chunks of this size go to rayon.
/// Chunk boundaries are fixed, so results do not depend on the thread count.
const PARALLEL_CHUNK: usize = 1 << 15;

/// `out[i] = f(x[i])`.
pub(crate) fn map_into(out: &mut [f32], x: &[f32], f: impl Fn(f32) -> f32 + Sync) {
    if out.len() > PARALLEL_CHUNK {
        out.par_chunks_mut(PARALLEL_CHUNK)
            .zip(x.par_chunks(PARALLEL_CHUNK))
            .for_each(|(o, x)| widest(|| o.iter_mut().zip(x).for_each(|(o, &x)| *o = f(x))));
    } else {
        widest(|| out.iter_mut().zip(x).for_each(|(o, &x)| *o = f(x)));
    }
}

/// `out[i] = f(a[i], b[i])`.
pub(crate) fn zip_map_into(out: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    if out.len() > PARALLEL_CHUNK {
        out.par_chunks_mut(PARALLEL_CHUNK)
            .zip(a.par_chunks(PARALLEL_CHUNK))
            .zip(b.par_chunks(PARALLEL_CHUNK))
            .for_each(|((o, a), b)| widest(|| o.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o = f(a, b))));
    } else {
        widest(|| out.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o = f(a, b)));
    }
}

/// `acc[i] += f(a[i], b[i])`: the shape of most backward rules (`dx += dy · f'(x)`).
pub(crate) fn accumulate_zip(acc: &mut [f32], a: &[f32], b: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    if acc.len() > PARALLEL_CHUNK {
        acc.par_chunks_mut(PARALLEL_CHUNK)
            .zip(a.par_chunks(PARALLEL_CHUNK))
            .zip(b.par_chunks(PARALLEL_CHUNK))
            .for_each(|((o, a), b)| widest(|| o.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o += f(a, b))));
    } else {
        widest(|| acc.iter_mut().zip(a).zip(b).for_each(|((o, &a), &b)| *o += f(a, b)));
    }
}

/// `acc[i] += f(a[i], b[i], c[i])`.
pub(crate) fn accumulate_zip3(
    acc: &mut [f32],
    a: &[f32],
    b: &[f32],
    c: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Sync,
) {
    let run = |acc: &mut [f32], a: &[f32], b: &[f32], c: &[f32]| {
        widest(|| {
            acc.iter_mut()
                .zip(a)
                .zip(b)
                .zip(c)
                .for_each(|(((o, &a), &b), &c)| *o += f(a, b, c))
        })
    };
    if acc.len() > PARALLEL_CHUNK {
        acc.par_chunks_mut(PARALLEL_CHUNK)
            .zip(a.par_chunks(PARALLEL_CHUNK))
            .zip(b.par_chunks(PARALLEL_CHUNK))
            .zip(c.par_chunks(PARALLEL_CHUNK))
            .for_each(|(((o, a), b), c)| run(o, a, b, c));
    } else {
        run(acc, a, b, c);
    }
}

/// `out[n, t, :] = w[n, t] · y[n, :]` (`+=` when `accumulate`) for `out (N, T, C)`, `y (N, C)`
/// and `w (N, T)`: each sample's vector spread over its steps, weighted (the gradient of a
/// mean over steps). Samples in parallel; each value is computed alike on any thread.
pub(crate) fn spread_over_steps(
    out: &mut [f32],
    y: &[f32],
    w: &[f32],
    (steps, channels): (usize, usize),
    accumulate: bool,
) {
    if out.is_empty() || channels == 0 {
        return;
    }
    let sample = |((out, y), w): ((&mut [f32], &[f32]), &[f32])| {
        widest(|| {
            for (row, &w) in out.chunks_mut(channels).zip(w) {
                match accumulate {
                    true => row.iter_mut().zip(y).for_each(|(o, &g)| *o += w * g),
                    false => row.iter_mut().zip(y).for_each(|(o, &g)| *o = w * g),
                }
            }
        })
    };
    out.par_chunks_mut(steps * channels)
        .zip(y.par_chunks(channels))
        .zip(w.par_chunks(steps))
        .for_each(sample);
}

/// Sets every value of `out` to `value`, in parallel chunks when large.
pub(crate) fn fill(out: &mut [f32], value: f32) {
    if out.len() > PARALLEL_CHUNK {
        out.par_chunks_mut(PARALLEL_CHUNK).for_each(|o| o.fill(value));
    } else {
        out.fill(value);
    }
}

/// A dropout mask: value `i` is 0 (dropped) when the uniform draw `hash(key, i)` falls below
/// `rate`, else `1 / (1 − rate)`. Each value's draw depends on its index alone (a counter-based
/// generator, as the attention kernel's dropout), so the mask is the same on any number of
/// threads and fills in parallel, on vectors, instead of one sequential generator call per value.
pub(crate) fn dropout_mask(out: &mut [f32], rate: f32, key: u64) {
    let scale = 1.0 / (1.0 - rate);
    let fill = |start: usize, chunk: &mut [f32]| {
        widest(|| {
            // Runs of positions in one block of 2³² (all of them, short of a 16 GB mask), so
            // the loop counts on 32 bits and fills whole vectors.
            let (mut first, mut rest) = (start as u64, chunk);
            // Copies, not the captured references, which could alias the mask and so keep the
            // loop from running on vectors.
            let (rate, scale) = (rate, scale);
            while !rest.is_empty() {
                let run = ((1u64 << 32) - (first & 0xffff_ffff)).min(rest.len() as u64) as usize;
                let (now, later) = rest.split_at_mut(run);
                let draws = crate::rng::Draws::new(key, (first >> 32) as u32);
                let offset = first as u32;
                for (i, v) in now.iter_mut().enumerate() {
                    // 24 bits: a float in [0, 1) with every value exactly representable
                    // (converted as i32, which has a vector instruction on AVX2; u32 has not).
                    let draw = draws.at(offset.wrapping_add(i as u32)) as i32 as f32 / (1u32 << 24) as f32;
                    *v = if draw >= rate { scale } else { 0.0 };
                }
                first += run as u64;
                rest = later;
            }
        })
    };
    if out.len() > PARALLEL_CHUNK {
        out.par_chunks_mut(PARALLEL_CHUNK)
            .enumerate()
            .for_each(|(k, chunk)| fill(k * PARALLEL_CHUNK, chunk));
    } else {
        fill(0, out);
    }
}

/// Copies rows `indices` of `source` (rows of `row` values) into `out`, in that order: a
/// shuffled batch. Split over threads when large: the rows come from all over a large dataset,
/// so the copy waits on memory, and two threads keep twice as many reads in flight (and keep
/// the pool's other thread awake for the step's first product).
pub(crate) fn gather_rows(source: &[f32], row: usize, indices: &[usize], out: &mut [f32]) {
    let copy = |out: &mut [f32], indices: &[usize]| {
        for (out, &i) in out.chunks_exact_mut(row.max(1)).zip(indices) {
            out.copy_from_slice(&source[i * row..(i + 1) * row]);
        }
    };
    let threads = rayon::current_num_threads();
    if out.len() < PARALLEL_CHUNK / 2 || threads == 1 || row == 0 {
        return copy(out, indices);
    }
    let rows_per_thread = indices.len().div_ceil(threads);
    out.par_chunks_mut(rows_per_thread * row)
        .zip(indices.par_chunks(rows_per_thread))
        .for_each(|(out, indices)| copy(out, indices));
}

/// Asks the CPU to start loading rows `indices` of `source` (rows of `row` values) into its
/// caches, without waiting for them: the next training batch's rows, scattered over a data set
/// far larger than the caches, arrive while the current step computes instead of stalling the
/// gather of the next one. A hint only: rows out of range are skipped, nothing is read.
pub(crate) fn prefetch_rows(source: &[f32], row: usize, indices: &[usize]) {
    #[cfg(target_arch = "x86_64")]
    for &i in indices {
        let Some(values) = source.get(i.saturating_mul(row)..i.saturating_add(1).saturating_mul(row)) else {
            continue;
        };
        // One request per 64-byte cache line (16 values).
        for line in values.chunks(16) {
            // SAFETY: a prefetch never faults and changes no memory; the address lies in `source`.
            unsafe {
                std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(line.as_ptr().cast::<i8>())
            };
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (source, row, indices);
}

/// `out = source` (one length), split over the threads when large, like [`gather_rows`]: an
/// evaluation batch sliced from a dataset in memory.
pub(crate) fn copy(out: &mut [f32], source: &[f32]) {
    let threads = rayon::current_num_threads();
    if out.len() < PARALLEL_CHUNK / 2 || threads == 1 {
        return out.copy_from_slice(source);
    }
    let chunk = out.len().div_ceil(threads);
    out.par_chunks_mut(chunk)
        .zip(source.par_chunks(chunk))
        .for_each(|(out, source)| out.copy_from_slice(source));
}

/// `first = source` and `second = source` in one pass over `source` (the two gradients of a
/// sum), split over the threads like [`copy`].
pub(crate) fn copy_to_both(first: &mut [f32], second: &mut [f32], source: &[f32]) {
    let both = |first: &mut [f32], second: &mut [f32], source: &[f32]| {
        first.copy_from_slice(source);
        second.copy_from_slice(source);
    };
    let threads = rayon::current_num_threads();
    if source.len() < PARALLEL_CHUNK / 2 || threads == 1 {
        return both(first, second, source);
    }
    // Pieces of a few cache-sized blocks, so each piece of `source` is read from memory once
    // and copied twice from the cache.
    let chunk = PARALLEL_CHUNK / 4;
    first
        .par_chunks_mut(chunk)
        .zip(second.par_chunks_mut(chunk))
        .zip(source.par_chunks(chunk))
        .for_each(|((first, second), source)| both(first, second, source));
}

/// `acc[i] += scale · x[i]`.
pub(crate) fn axpy(acc: &mut [f32], scale: f32, x: &[f32]) {
    let run = |acc: &mut [f32], x: &[f32]| widest(|| acc.iter_mut().zip(x).for_each(|(o, &x)| *o += scale * x));
    if acc.len() > PARALLEL_CHUNK {
        acc.par_chunks_mut(PARALLEL_CHUNK)
            .zip(x.par_chunks(PARALLEL_CHUNK))
            .for_each(|(o, x)| run(o, x));
    } else {
        run(acc, x);
    }
}

/// Adds `bias` (length `cols`) to every row of `out` (`rows × cols`).
pub(crate) fn add_row_vector(out: &mut [f32], bias: &[f32]) {
    let width = bias.len().max(1);
    let run = |rows: &mut [f32]| {
        widest(|| {
            for row in rows.chunks_mut(width) {
                row.iter_mut().zip(bias).for_each(|(o, &b)| *o += b);
            }
        })
    };
    if out.len() > PARALLEL_CHUNK {
        out.par_chunks_mut((PARALLEL_CHUNK / width).max(1) * width)
            .for_each(run);
    } else {
        run(out);
    }
}

/// Adds `bias` (when given) to every row of `out` and, when `relu`, clamps it at zero: a
/// convolution's epilogue in one pass.
pub(crate) fn bias_relu(out: &mut [f32], bias: Option<&[f32]>, relu: bool) {
    match (bias, relu) {
        (Some(bias), false) => add_row_vector(out, bias),
        (Some(bias), true) => {
            let width = bias.len().max(1);
            out.par_chunks_mut((PARALLEL_CHUNK / width).max(1) * width)
                .for_each(|rows| {
                    widest(|| {
                        for row in rows.chunks_mut(width) {
                            row.iter_mut().zip(bias).for_each(|(o, &b)| *o = (*o + b).max(0.0));
                        }
                    })
                });
        }
        (None, true) => out
            .par_chunks_mut(PARALLEL_CHUNK)
            .for_each(|o| widest(|| o.iter_mut().for_each(|v| *v = v.max(0.0)))),
        (None, false) => {}
    }
}

/// [`bias_relu`] with a residual added before the ReLU: `out = max((out + bias) + residual, 0)`
/// (without the max when not `relu`), one pass where a convolution, an `Add` and a ReLU would
/// make three. The sums are taken in the unfused order, so the result is bit for bit the
/// unfused one's. `residual` has `out`'s length.
pub(crate) fn bias_residual_relu(out: &mut [f32], bias: Option<&[f32]>, residual: Option<&[f32]>, relu: bool) {
    let Some(residual) = residual else {
        return bias_relu(out, bias, relu);
    };
    assert!(residual.len() >= out.len(), "bias_residual_relu: residual too short");
    let width = bias.map_or(1, |b| b.len().max(1));
    let chunk = (PARALLEL_CHUNK / width).max(1) * width;
    // A branch rather than `max(-∞)`, which would turn NaN into -∞ where the unfused Add keeps it.
    let finish = |v: f32| if relu { v.max(0.0) } else { v };
    let residual = &residual[..out.len()];
    out.par_chunks_mut(chunk)
        .zip(residual.par_chunks(chunk))
        .for_each(|(out, residual)| {
            widest(|| match bias {
                Some(bias) => {
                    for (row, residual) in out.chunks_mut(width).zip(residual.chunks(width)) {
                        row.iter_mut()
                            .zip(bias)
                            .zip(residual)
                            .for_each(|((o, &b), &r)| *o = finish((*o + b) + r));
                    }
                }
                None => out.iter_mut().zip(residual).for_each(|(o, &r)| *o = finish(*o + r)),
            })
        });
}

/// `masked[i] = dy[i]` where `y[i] > 0`, else 0: the gradient through a ReLU from its output.
pub(crate) fn relu_mask(masked: &mut [f32], dy: &[f32], y: &[f32]) {
    zip_map_into(masked, dy, y, |dy, y| if y > 0.0 { dy } else { 0.0 });
}

/// Visits every element of a broadcast binary operation: `visit(out_index, a_index, b_index)`.
pub(crate) fn for_each_broadcast(
    out_shape: &[usize],
    a_strides: &[usize],
    b_strides: &[usize],
    mut visit: impl FnMut(usize, usize, usize),
) {
    let rank = out_shape.len();
    let total: usize = out_shape.iter().product();
    // On the stack up to rank 6, as the tensor's own shapes are.
    let mut counter = smallvec::SmallVec::<[usize; 6]>::from_elem(0, rank);
    let (mut ia, mut ib) = (0usize, 0usize);
    for flat in 0..total {
        visit(flat, ia, ib);
        // Advance the multi-index like an odometer, updating both offsets incrementally.
        for axis in (0..rank).rev() {
            counter[axis] += 1;
            ia += a_strides[axis];
            ib += b_strides[axis];
            if counter[axis] < out_shape[axis] {
                break;
            }
            ia -= a_strides[axis] * out_shape[axis];
            ib -= b_strides[axis] * out_shape[axis];
            counter[axis] = 0;
        }
    }
}

/// `erf`, from libm: std has no stable `f32::erf`.
pub(crate) fn erf(x: f32) -> f32 {
    libm::erff(x)
}

/// `out[r·w + j] = f(full[r·w + j], row[j])` with `w = row.len()`: an operand repeated over
/// the leading axes of the other (a position table over a batch), without an odometer.
pub(crate) fn zip_rows_into(out: &mut [f32], full: &[f32], row: &[f32], f: impl Fn(f32, f32) -> f32 + Sync) {
    let width = row.len().max(1);
    let run = |out: &mut [f32], full: &[f32]| {
        widest(|| {
            for (out, full) in out.chunks_mut(width).zip(full.chunks(width)) {
                out.iter_mut().zip(full).zip(row).for_each(|((o, &x), &r)| *o = f(x, r));
            }
        })
    };
    if out.len() > PARALLEL_CHUNK {
        let chunk = (PARALLEL_CHUNK / width).max(1) * width;
        out.par_chunks_mut(chunk)
            .zip(full.par_chunks(chunk))
            .for_each(|(out, full)| run(out, full));
    } else {
        run(out, full);
    }
}

/// `acc[r·w + j] += f(dy[r·w + j], full[r·w + j], row[j])` with `w = row.len()`.
pub(crate) fn accumulate_zip_rows(
    acc: &mut [f32],
    dy: &[f32],
    full: &[f32],
    row: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Sync,
) {
    let width = row.len().max(1);
    let run = |acc: &mut [f32], dy: &[f32], full: &[f32]| {
        widest(|| {
            for ((acc, dy), full) in acc.chunks_mut(width).zip(dy.chunks(width)).zip(full.chunks(width)) {
                let rows = acc.iter_mut().zip(dy).zip(full.iter().zip(row));
                rows.for_each(|((o, &g), (&x, &r))| *o += f(g, x, r));
            }
        })
    };
    if acc.len() > PARALLEL_CHUNK {
        let chunk = (PARALLEL_CHUNK / width).max(1) * width;
        acc.par_chunks_mut(chunk)
            .zip(dy.par_chunks(chunk))
            .zip(full.par_chunks(chunk))
            .for_each(|((acc, dy), full)| run(acc, dy, full));
    } else {
        run(acc, dy, full);
    }
}

/// `acc[j] += Σ_r f(dy[r·w + j], full[r·w + j], row[j])` with `w = acc.len()`: the gradient of
/// an operand repeated over the rows of the other, summed as [`super::accumulate_columns`]
/// sums (no thread count changes the bits).
pub(crate) fn accumulate_row_sums(
    acc: &mut [f32],
    dy: &[f32],
    full: &[f32],
    row: &[f32],
    f: impl Fn(f32, f32, f32) -> f32 + Sync,
) {
    let width = acc.len().max(1);
    super::accumulate_columns(acc, dy.len() / width, |r, sums| {
        let (dy, full) = (&dy[r * width..][..sums.len()], &full[r * width..][..sums.len()]);
        let columns = sums.iter_mut().zip(dy).zip(full.iter().zip(row));
        columns.for_each(|((o, &g), (&x, &r))| *o += f(g, x, r));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Both copies equal the source, in pieces over two threads and in one piece.
    #[test]
    fn copy_to_both_writes_the_source_twice() {
        for len in [3 * PARALLEL_CHUNK + 5, 10] {
            let source: Vec<f32> = (0..len).map(|i| i as f32 * 0.5 - 7.0).collect();
            let (mut first, mut second) = (vec![f32::NAN; len], vec![1.0; len]);
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
            pool.install(|| copy_to_both(&mut first, &mut second, &source));
            assert!(first == source && second == source, "length {len}");
        }
    }

    /// The mask filled on vectors, in parallel chunks, equals one draw at a time through the
    /// scalar hash, and keeps about `1 − rate` of the values at `1 / (1 − rate)`.
    #[test]
    fn dropout_mask_matches_the_scalar_draws() {
        let (rate, key) = (0.3f32, 0x1234_5678_9abc_def0);
        let mut mask = vec![0.0; 3 * PARALLEL_CHUNK + 17];
        dropout_mask(&mut mask, rate, key);
        let scale = 1.0 / (1.0 - rate);
        for (i, &m) in mask.iter().enumerate() {
            let draw = crate::rng::draw24(key, i as u64) as f32 / (1u32 << 24) as f32;
            let expected = if draw >= rate { scale } else { 0.0 };
            assert_eq!(m.to_bits(), expected.to_bits(), "value {i}");
        }
        let kept = mask.iter().filter(|&&m| m > 0.0).count() as f64 / mask.len() as f64;
        assert!((kept - 0.7).abs() < 0.01, "kept {kept}");
    }
}
