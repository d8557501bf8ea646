//! Axes of a row-major tensor put in another order (Keras's `Permute`, `keras.ops.transpose`),
//! and the same copy adding into its target, for the gradient.

use rayon::prelude::*;

/// The most axes a permuted tensor may have.
pub(crate) const MAX_PERMUTED_AXES: usize = 6;

/// Writes (or with `accumulate`, adds) into `target` the tensor `source` of `shape` with its
/// axes in the order `axes` (output axis `i` is input axis `axes[i]`). The first axis must stay
/// first (the batch): each of its entries is copied on its own, split over the threads. Panics
/// if the slices or `axes` do not fit `shape` (a bug in the caller).
pub(crate) fn permute(source: &[f32], shape: &[usize], axes: &[usize], target: &mut [f32], accumulate: bool) {
    let rank = shape.len();
    assert!(rank <= MAX_PERMUTED_AXES && axes.len() == rank && axes.first() == Some(&0));
    let len: usize = shape.iter().product();
    assert!(source.len() >= len && target.len() >= len);
    if len == 0 {
        return;
    }
    let sample = len / shape[0];
    // Where one step along each output axis moves in the source.
    let mut source_strides = [0usize; MAX_PERMUTED_AXES];
    let mut stride = 1;
    for axis in (0..rank).rev() {
        source_strides[axis] = stride;
        stride *= shape[axis];
    }
    let out_shape: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
    let steps: Vec<usize> = axes.iter().map(|&a| source_strides[a]).collect();
    target[..len]
        .par_chunks_mut(sample)
        .zip(source[..len].par_chunks(sample))
        .for_each(|(out, image)| {
            let mut index = [0usize; MAX_PERMUTED_AXES];
            let mut from = 0usize;
            for value in out.iter_mut() {
                if accumulate {
                    *value += image[from];
                } else {
                    *value = image[from];
                }
                // The next output position, as an odometer over the axes after the batch's.
                for axis in (1..rank).rev() {
                    index[axis] += 1;
                    from += steps[axis];
                    if index[axis] < out_shape[axis] {
                        break;
                    }
                    from -= steps[axis] * out_shape[axis];
                    index[axis] = 0;
                }
            }
        });
}

/// The order that undoes `axes`: `inverse(axes)[axes[i]] = i`.
pub(crate) fn inverse_axes(axes: &[usize]) -> Vec<usize> {
    let mut inverse = vec![0; axes.len()];
    for (i, &a) in axes.iter().enumerate() {
        inverse[a] = i;
    }
    inverse
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn moves_each_value_to_its_permuted_place_and_back() {
        // (2, 2, 3, 4) with axes (0, 3, 1, 2): out[n, d, b, c] = in[n, b, c, d].
        let shape = [2, 2, 3, 4];
        let source: Vec<f32> = (0..48).map(|v| v as f32).collect();
        let mut out = vec![0.0; 48];
        permute(&source, &shape, &[0, 3, 1, 2], &mut out, false);
        for n in 0..2 {
            for b in 0..2 {
                for c in 0..3 {
                    for d in 0..4 {
                        let input = ((n * 2 + b) * 3 + c) * 4 + d;
                        let output = ((n * 4 + d) * 2 + b) * 3 + c;
                        assert_eq!(out[output], source[input]);
                    }
                }
            }
        }
        let inverse = inverse_axes(&[0, 3, 1, 2]);
        assert_eq!(inverse, [0, 2, 3, 1]);
        let mut back = vec![1.0; 48];
        permute(&out, &[2, 4, 2, 3], &inverse, &mut back, true);
        assert!(back.iter().zip(&source).all(|(b, s)| *b == s + 1.0));
    }
}
