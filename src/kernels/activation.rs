//! An activation applied by a convolution as it writes its outputs (inference fuses the ReLU or
//! ReLU6 after a convolution into it, saving a pass over an image-sized tensor), and the output
//! pass of a product that adds the bias and applies it.

use super::simd::{Simd, widest};
use rayon::prelude::*;

/// The activation applied to each output of a convolution as it is written (inference fuses
/// the ReLU after a convolution into it).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(crate) enum Activation {
    /// None: `bias + Σ x·k`.
    Linear,
    /// Keras's `ReLU(max_value)` without a threshold or slope: the value capped at
    /// `max_value` where it is above 0, else 0 (`max_value` infinite for a plain ReLU, 6 for
    /// ReLU6).
    Relu {
        /// The cap.
        max_value: f32,
    },
}

impl Activation {
    /// The activation of one value, as the vector paths compute it.
    #[inline(always)]
    pub(crate) fn apply(self, v: f32) -> f32 {
        match self {
            Activation::Linear => v,
            Activation::Relu { max_value } if v > 0.0 => {
                if v > max_value {
                    max_value
                } else {
                    v
                }
            }
            Activation::Relu { .. } => 0.0,
        }
    }

    /// Where the activation passes the gradient, from its output `y`: everywhere when linear,
    /// else where `0 < y < max_value` (the unfused ReLU's derivative).
    #[inline(always)]
    pub(crate) fn passes(self, y: f32) -> bool {
        match self {
            Activation::Linear => true,
            Activation::Relu { max_value } => y > 0.0 && y < max_value,
        }
    }
}

/// `activation(v)`: for a ReLU, `v` capped at `max_value` where `v > 0`, else 0 (the
/// unfused ReLU's values; NaN gives 0, as `f32::max(NaN, 0)` does).
#[inline(always)]
pub(super) fn activate<S: Simd>(s: S, v: S::V, activation: Activation) -> S::V {
    match activation {
        Activation::Linear => v,
        // `max(v, 0)` returns its second operand for NaN and for −0, so both give +0, as the
        // scalar `apply` does; then `min(·, cap)` keeps `cap` where equal. Two instructions
        // where compares and blends took eight on AVX-512.
        Activation::Relu { max_value } => s.min(s.max(v, s.splat(0.0)), s.splat(max_value)),
    }
}

/// Values per parallel task of [`bias_activation`].
const CHUNK: usize = 1 << 15;

/// Adds the bias (`width` values) and the residual (rows `residual_stride` apart) to each of
/// the `rows` rows of `sums` (`stride` apart) and applies the activation, in place: the output
/// pass of the 1×1 and packed products, run while their block is in the first-level cache.
#[inline(always)]
pub(crate) fn finish_rows<S: Simd>(
    s: S,
    sums: &mut [f32],
    (rows, width, stride, residual_stride): (usize, usize, usize, usize),
    bias: Option<&[f32]>,
    residual: Option<&[f32]>,
    activation: Activation,
) {
    for row in 0..rows {
        let sums = &mut sums[row * stride..][..width];
        for f in (0..width).step_by(S::LANES) {
            let mut v = s.load(&sums[f..]);
            if let Some(bias) = bias {
                v = s.add(v, s.load(&bias[f..]));
            }
            if let Some(residual) = residual {
                v = s.add(v, s.load(&residual[row * residual_stride + f..]));
            }
            s.store(&mut sums[f..], activate(s, v, activation));
        }
    }
}

/// `out[r·width + f] = activation(out[r·width + f] + bias[f])`: the output pass of a product
/// whose rows are `width` long. Each value gets the same operations whatever the split.
pub(crate) fn bias_activation(out: &mut [f32], width: usize, bias: Option<&[f32]>, activation: Activation) {
    let width = width.max(1);
    assert!(bias.is_none_or(|b| b.len() == width), "bias of the wrong length");
    out.par_chunks_mut((CHUNK / width).max(1) * width).for_each(|rows| {
        widest(|| {
            for row in rows.chunks_mut(width) {
                match bias {
                    Some(bias) => row
                        .iter_mut()
                        .zip(bias)
                        .for_each(|(o, &b)| *o = activation.apply(*o + b)),
                    None => row.iter_mut().for_each(|o| *o = activation.apply(*o)),
                }
            }
        })
    });
}
