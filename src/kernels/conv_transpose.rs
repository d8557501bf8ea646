//! Transposed convolution (Keras's `Conv2DTranspose`) on channels-last batches.
//!
//! A transposed convolution is the input gradient of an ordinary convolution: the one whose
//! input has the transposed convolution's output shape `(N, OH, OW, F)` and whose output has
//! its input shape `(N, H, W, C)`, with the same kernel. That convolution is described by a
//! [`Window2d`] over the *output* (`height = OH`, `channels = F`, `out_h = H`), and the kernel's
//! Keras layout `(KH, KW, F, C)` is then exactly the `(KH·KW·F, C)` matrix its im2col product
//! uses. So the forward pass is one product and a `col2im`, and the backward pass one `im2col`
//! and two products: the same kernels as `Conv2D`, run the other way round.

use super::conv::{Padding, Window2d, col2im_accumulate, im2col};
use super::elementwise::{bias_relu, fill};
use super::matmul::{Transpose, matmul};
use super::reduce::accumulate_column_sums;

/// The output length and the leading padding of the equivalent convolution along one axis,
/// as Keras 3 computes them (`compute_conv_transpose_output_shape`, and TensorFlow's padding
/// for the gradient of a convolution): with `output_padding` `None`, `"valid"` gives
/// `(input − 1)·stride + max(span, stride)` and `"same"` gives `input·stride`; with it,
/// `(input − 1)·stride + span + output_padding` (`"valid"`) or
/// `(input − 1)·stride + span % 2 + output_padding` (`"same"`), where `span` is the dilated
/// window. `None` when a size does not fit in a `usize`.
pub(crate) fn transposed_size(
    input: usize,
    window: usize,
    stride: usize,
    dilation: usize,
    padding: Padding,
    output_padding: Option<usize>,
) -> Option<(usize, usize)> {
    let span = window.checked_sub(1)?.checked_mul(dilation)?.checked_add(1)?;
    let base = input.checked_sub(1)?.checked_mul(stride)?;
    let output = match (padding, output_padding) {
        (Padding::Valid, None) => base.checked_add(span.max(stride))?,
        (Padding::Valid, Some(extra)) => base.checked_add(span)?.checked_add(extra)?,
        (Padding::Same, None) => input.checked_mul(stride)?,
        (Padding::Same, Some(extra)) => base.checked_add(span % 2)?.checked_add(extra)?,
    };
    // The convolution this is the gradient of pads its input (our output) at the top or left
    // by half of what its windows need beyond it, as TensorFlow's "SAME" does; "valid" needs
    // none, and taps beyond the bottom or right fall in its padding there.
    let pad = match padding {
        Padding::Valid => 0,
        Padding::Same => base.checked_add(span)?.saturating_sub(output) / 2,
    };
    Some((output, pad))
}

/// Forward pass: `out` (`N·OH·OW·F`, overwritten) = col2im(`x` · `kernel`ᵀ) plus `bias`, where
/// `x` is `N·H·W × C`, `kernel` is `(KH·KW·F) × C`, and `cols` (`N·H·W × KH·KW·F`) is working
/// memory. `g` is the equivalent convolution (see the module documentation).
pub(crate) fn conv_transpose(
    x: &[f32],
    kernel: &[f32],
    bias: Option<&[f32]>,
    g: &Window2d,
    cols: &mut [f32],
    out: &mut [f32],
) {
    let (rows, patch) = (g.batch * g.positions(), g.patch_len());
    let channels = x.len() / rows.max(1);
    matmul(
        x,
        Transpose::No,
        kernel,
        Transpose::Yes,
        cols,
        rows,
        channels,
        patch,
        false,
    );
    fill(out, 0.0);
    col2im_accumulate(cols, g, out);
    bias_relu(out, bias, false);
}

/// Gradients to add to, each `None` when not wanted: `(input, kernel, bias)`, each paired
/// with whether it is fresh (holding stale values to overwrite rather than add to).
pub(crate) type TransposeGrads<'a> = (
    Option<(&'a mut [f32], bool)>,
    Option<(&'a mut [f32], bool)>,
    Option<(&'a mut [f32], bool)>,
);

/// Backward pass of [`conv_transpose`] for the output gradient `dy` (`N·OH·OW·F`): the input
/// gradient is im2col(`dy`) · `kernel`, the kernel's is im2col(`dy`)ᵀ · `x`, the bias's the
/// column sums of `dy`; `cols` (`N·H·W × KH·KW·F`) is working memory.
pub(crate) fn conv_transpose_backward(
    (x, kernel, dy): (&[f32], &[f32], &[f32]),
    g: &Window2d,
    cols: &mut [f32],
    (dx, dk, db): TransposeGrads,
) {
    let (rows, patch) = (g.batch * g.positions(), g.patch_len());
    let channels = x.len() / rows.max(1);
    if dx.is_some() || dk.is_some() {
        im2col(dy, g, cols);
    }
    if let Some((dx, fresh)) = dx {
        matmul(
            cols,
            Transpose::No,
            kernel,
            Transpose::No,
            dx,
            rows,
            patch,
            channels,
            !fresh,
        );
    }
    if let Some((dk, fresh)) = dk {
        matmul(
            cols,
            Transpose::Yes,
            x,
            Transpose::No,
            dk,
            patch,
            rows,
            channels,
            !fresh,
        );
    }
    if let Some((db, fresh)) = db {
        if fresh {
            fill(db, 0.0);
        }
        accumulate_column_sums(db, dy);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn output_sizes_match_keras() {
        // Keras 3: Conv2DTranspose(k, strides=s, padding=p, output_padding=op) on 5 rows.
        let size = |k, s, d, p, op| transposed_size(5, k, s, d, p, op).map(|(out, _)| out);
        assert_eq!(size(3, 1, 1, Padding::Valid, None), Some(7));
        assert_eq!(size(3, 2, 1, Padding::Valid, None), Some(11));
        assert_eq!(size(2, 3, 1, Padding::Valid, None), Some(15));
        assert_eq!(size(3, 2, 1, Padding::Valid, Some(1)), Some(12));
        assert_eq!(size(3, 2, 1, Padding::Same, None), Some(10));
        assert_eq!(size(3, 2, 1, Padding::Same, Some(1)), Some(10));
        assert_eq!(size(4, 2, 1, Padding::Same, Some(0)), Some(8));
        assert_eq!(size(3, 1, 2, Padding::Valid, None), Some(9));
        // "same" pads the equivalent convolution as TensorFlow does: (3-2)/2 = 0 rows for a
        // 3-wide window at stride 2, and 4/2 = 2 for a 4-wide one with output_padding 0.
        assert_eq!(transposed_size(5, 3, 2, 1, Padding::Same, None), Some((10, 0)));
        assert_eq!(transposed_size(5, 5, 1, 1, Padding::Same, None), Some((5, 2)));
        assert_eq!(transposed_size(5, 4, 2, 1, Padding::Same, Some(0)), Some((8, 2)));
        assert_eq!(transposed_size(usize::MAX, 3, 2, 1, Padding::Valid, None), None);
    }
}
