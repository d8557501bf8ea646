//! Rearrangements of channels-last images `(N, H, W, C)` that move whole pixels: placing one
//! image inside another (zero padding and cropping, and each one's gradient) and nearest-
//! neighbour upsampling. A pixel's `C` values are contiguous, so every loop copies or adds
//! runs of whole rows.

/// The height and width of an image.
pub(crate) type Size = (usize, usize);

/// Where the overlap of a source axis of `from` entries shifted by `offset` lies in a target
/// axis of `to` entries: `(first source index, first target index, length)`.
fn overlap(from: usize, to: usize, offset: isize) -> (usize, usize, usize) {
    let source_start = offset.min(0).unsigned_abs();
    let target_start = offset.max(0).unsigned_abs();
    let len = from.saturating_sub(source_start).min(to.saturating_sub(target_start));
    (source_start, target_start, len)
}

/// Writes (or with `accumulate`, adds) `source`, `batch` images of `from` pixels, into
/// `target`, images of `to` pixels, with the source's pixel (0, 0) at `offset` = (row, column)
/// of the target (negative: the source's first rows or columns fall outside and are dropped).
/// Pixels of `target` outside the overlap are left as they are.
pub(crate) fn place(
    source: &[f32],
    from: Size,
    target: &mut [f32],
    to: Size,
    (batch, channels): (usize, usize),
    offset: (isize, isize),
    accumulate: bool,
) {
    let (src_row, dst_row, rows) = overlap(from.0, to.0, offset.0);
    let (src_col, dst_col, cols) = overlap(from.1, to.1, offset.1);
    let run = cols * channels;
    for n in 0..batch {
        for r in 0..rows {
            let s = ((n * from.0 + src_row + r) * from.1 + src_col) * channels;
            let t = ((n * to.0 + dst_row + r) * to.1 + dst_col) * channels;
            let (s, t) = (&source[s..s + run], &mut target[t..t + run]);
            if accumulate {
                t.iter_mut().zip(s).for_each(|(t, s)| *t += s);
            } else {
                t.copy_from_slice(s);
            }
        }
    }
}

/// Writes `source`, `batch` images of `from` pixels, into `target`, images of `to` pixels, with
/// the source's pixel (0, 0) at `offset` as [`place`] does, and zeros in every target pixel
/// outside the overlap: each target value written once (zero padding, cropping), rows shared
/// out over the threads when the target is large.
pub(crate) fn frame(
    source: &[f32],
    from: Size,
    target: &mut [f32],
    to: Size,
    (batch, channels): (usize, usize),
    offset: (isize, isize),
) {
    use rayon::prelude::*;
    let (src_row, dst_row, rows) = overlap(from.0, to.0, offset.0);
    let (src_col, dst_col, cols) = overlap(from.1, to.1, offset.1);
    let target_row = to.1 * channels;
    if target_row == 0 {
        return;
    }
    let (left, run) = (dst_col * channels, cols * channels);
    let write_row = |(index, out): (usize, &mut [f32])| {
        let (n, r) = (index / to.0, index % to.0);
        if r < dst_row || r >= dst_row + rows {
            return out.fill(0.0);
        }
        let s = ((n * from.0 + src_row + r - dst_row) * from.1 + src_col) * channels;
        out[..left].fill(0.0);
        out[left..left + run].copy_from_slice(&source[s..s + run]);
        out[left + run..].fill(0.0);
    };
    let target = &mut target[..batch * to.0 * target_row];
    // Rows of at least 32 Ki values a task: smaller copies cost less than a hand-off.
    let rows_per_task = (1usize << 15).div_ceil(target_row);
    let write_task = |(task, rows): (usize, &mut [f32])| {
        for (i, out) in rows.chunks_exact_mut(target_row).enumerate() {
            write_row((task * rows_per_task + i, out));
        }
    };
    let task_len = rows_per_task * target_row;
    if target.len() <= 1 << 16 || rayon::current_num_threads() == 1 {
        target.chunks_mut(task_len).enumerate().for_each(write_task);
    } else {
        target.par_chunks_mut(task_len).enumerate().for_each(write_task);
    }
}

/// Nearest-neighbour upsampling: each pixel of `source` (`batch` images of `from` pixels)
/// repeated `factor` = (rows, columns) times in `target`.
pub(crate) fn upsample_nearest(
    source: &[f32],
    from: Size,
    target: &mut [f32],
    (batch, channels): (usize, usize),
    factor: Size,
) {
    let out_w = from.1 * factor.1;
    let out_row = out_w * channels;
    for (n_row, target_rows) in target.chunks_exact_mut(out_row * factor.0).enumerate() {
        // The first copy of the row is written from the source, the others copied from it.
        let (first, rest) = target_rows.split_at_mut(out_row);
        let source_row = &source[n_row * from.1 * channels..(n_row + 1) * from.1 * channels];
        for (pixel, out) in source_row
            .chunks_exact(channels)
            .zip(first.chunks_exact_mut(channels * factor.1))
        {
            out.chunks_exact_mut(channels)
                .for_each(|copy| copy.copy_from_slice(pixel));
        }
        rest.chunks_exact_mut(out_row)
            .for_each(|copy| copy.copy_from_slice(first));
    }
    debug_assert_eq!(target.len(), batch * from.0 * factor.0 * out_row);
}

/// The gradient of [`upsample_nearest`]: adds to each pixel of `source_grad` the gradients of
/// its `factor.0 × factor.1` copies in `grad`.
pub(crate) fn upsample_nearest_backward(
    grad: &[f32],
    source_grad: &mut [f32],
    from: Size,
    channels: usize,
    factor: Size,
) {
    let out_row = from.1 * factor.1 * channels;
    let source_rows = source_grad.chunks_exact_mut(from.1 * channels);
    for (source_row, grad_rows) in source_rows.zip(grad.chunks_exact(out_row * factor.0)) {
        for grad_row in grad_rows.chunks_exact(out_row) {
            for (pixel, copies) in source_row
                .chunks_exact_mut(channels)
                .zip(grad_row.chunks_exact(channels * factor.1))
            {
                for copy in copies.chunks_exact(channels) {
                    pixel.iter_mut().zip(copy).for_each(|(p, g)| *p += g);
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `frame` equals clearing the target and placing the source, for padding, cropping and
    /// both at once, on one thread and on two (targets large enough to be split into tasks).
    #[test]
    fn frame_is_a_cleared_target_with_the_source_placed() {
        let cases: [(Size, Size, (isize, isize), usize); 4] = [
            ((5, 4), (8, 7), (2, 1), 3),
            ((6, 6), (4, 3), (-1, -2), 2),
            ((5, 9), (7, 6), (1, -3), 1),
            ((112, 112), (114, 114), (1, 1), 16),
        ];
        for (from, to, offset, channels) in cases {
            let batch = 2;
            let source: Vec<f32> = (0..batch * from.0 * from.1 * channels)
                .map(|i| i as f32 + 1.0)
                .collect();
            let mut expected = vec![0.0; batch * to.0 * to.1 * channels];
            place(&source, from, &mut expected, to, (batch, channels), offset, false);
            for threads in [1, 2] {
                let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
                let mut got = vec![f32::NAN; expected.len()];
                pool.install(|| frame(&source, from, &mut got, to, (batch, channels), offset));
                assert_eq!(got, expected, "{from:?} → {to:?} at {offset:?}, {threads} threads");
            }
        }
    }
}
