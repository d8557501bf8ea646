//! The squashing functions of the recurrent cells on vectors: tanh and the logistic sigmoid
//! built on `kernels::softmax`'s vector `exp`, the piecewise-linear ones, and each one's slope
//! read from its output (what backpropagation through time keeps).
//!
//! Why not libm: an LSTM step takes five of them per unit (1.1 million in one forward pass of
//! `rnn_mnist`: 64 sequences × 28 steps × 128 units × 5), and libm's `tanhf` and `expf` are a
//! scalar call each. The functions below are written once over [`Simd`], so the AVX-512 and
//! AVX2 paths compute the same function lane for lane and give the same bits; the scalar path
//! differs from them by the rounding of its unfused multiply-adds only.
//!
//! - tanh is Cephes' `tanhf`: an odd polynomial for `|x| ≤ 0.625`, `1 − 2/(e^{2|x|} + 1)`
//!   (with the sign of `x`) above it; within a few ulps of the correctly rounded value.
//! - The sigmoid is `1/(1 + e^{−|x|})` for `x ≥ 0` and `e^{x}/(1 + e^{x})` below, as the scalar
//!   `sigmoid` of `autograd` computes it, so neither branch overflows or loses its relative
//!   precision far below zero.

use super::simd::Simd;
use super::softmax::{Pow2, exp};

/// An elementwise function of a recurrent cell whose slope can be read from its output.
///
/// The layers name it by its Keras name (`Squash::from_name`, in `autograd`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Squash {
    /// Hyperbolic tangent (slope `1 − y²`).
    Tanh,
    /// Logistic sigmoid (slope `y·(1 − y)`).
    Sigmoid,
    /// Keras 3's hard sigmoid, `relu6(x + 3) / 6` (slope 1/6 inside (0, 1)).
    HardSigmoid,
    /// `max(x, 0)`.
    Relu,
    /// Identity.
    Linear,
}

/// All bits but the sign: `x & ABS` is `|x|`.
const ABS: u32 = 0x7fff_ffff;

impl Squash {
    /// The function in each lane of `x`.
    #[inline(always)]
    pub(crate) fn apply<S: Pow2>(self, s: S, x: S::V) -> S::V {
        match self {
            Squash::Tanh => tanh(s, x),
            Squash::Sigmoid => sigmoid(s, x),
            Squash::HardSigmoid => {
                let y = s.max(s.div(s.add(x, s.splat(3.0)), s.splat(6.0)), s.splat(0.0));
                s.select(s.greater(y, s.splat(1.0)), s.splat(1.0), y)
            }
            Squash::Relu => s.max(x, s.splat(0.0)),
            Squash::Linear => x,
        }
    }

    /// The slope in each lane, at the input whose output is `y`.
    #[inline(always)]
    pub(crate) fn slope<S: Simd>(self, s: S, y: S::V) -> S::V {
        let one = s.splat(1.0);
        match self {
            Squash::Tanh => s.sub(one, s.mul(y, y)),
            Squash::Sigmoid => s.mul(y, s.sub(one, y)),
            Squash::HardSigmoid => {
                let inside = s.and(s.greater(y, s.splat(0.0)), s.greater(one, y));
                s.and(inside, s.splat(1.0 / 6.0))
            }
            Squash::Relu => s.and(s.greater(y, s.splat(0.0)), one),
            Squash::Linear => one,
        }
    }
}

/// `tanh x` in each lane (Cephes' `tanhf`; see the module's notes). NaN stays NaN.
#[inline(always)]
pub(crate) fn tanh<S: Pow2>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let abs = s.and(x, s.splat(f32::from_bits(ABS)));
    // Above |x| = 44, tanh is 1 in f32 many times over; the cap keeps `exp` in its range.
    let twice = s.add(abs, abs);
    let twice = s.select(s.greater(twice, s.splat(88.0)), s.splat(88.0), twice);
    let large = s.sub(one, s.div(s.splat(2.0), s.add(exp(s, twice), one)));
    let large = s.select(s.greater(s.splat(0.0), x), s.sub(s.splat(0.0), large), large);
    let square = s.mul(x, x);
    let mut p = s.splat(-5.704_988_7e-3);
    for c in [2.063_908_8e-2, -5.373_971_6e-2, 0.133_314_42, -0.333_332_8] {
        p = s.mul_add(p, square, s.splat(c));
    }
    let small = s.mul_add(s.mul(p, square), x, x);
    // A NaN fails the comparison and takes the polynomial, which keeps it NaN.
    s.select(s.greater(abs, s.splat(0.625)), large, small)
}

/// The logistic sigmoid `1/(1 + e^{−x})` in each lane (see the module's notes). NaN stays NaN.
#[inline(always)]
pub(crate) fn sigmoid<S: Pow2>(s: S, x: S::V) -> S::V {
    let one = s.splat(1.0);
    let abs = s.and(x, s.splat(f32::from_bits(ABS)));
    let e = exp(s, s.sub(s.splat(0.0), abs));
    let positive = s.div(one, s.add(one, e));
    let negative = s.div(e, s.add(one, e));
    let y = s.select(s.greater(s.splat(0.0), x), negative, positive);
    // `exp` maps NaN to 0; give the NaN back rather than a plausible 1.
    s.select(s.equal(x, x), y, x)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::kernels::simd::Scalar;

    /// The largest error of `f` against `reference` over `[-range, range]`, relative to
    /// `max(|reference|, floor)`.
    fn worst(f: impl Fn([f32; 8]) -> [f32; 8], reference: impl Fn(f64) -> f64, range: f32, floor: f64) -> f64 {
        let steps = 40_000;
        (0..=steps)
            .map(|i| -range + 2.0 * range * i as f32 / steps as f32)
            .map(|x| {
                let want = reference(x as f64);
                (f([x; 8])[0] as f64 - want).abs() / want.abs().max(floor)
            })
            .fold(0.0, f64::max)
    }

    #[test]
    fn tanh_and_sigmoid_are_within_a_few_ulps() {
        let tanh_error = worst(|x| tanh(Scalar, x), f64::tanh, 12.0, 1e-30);
        assert!(tanh_error < 4e-7, "tanh relative error {tanh_error}");
        let sigmoid_error = worst(|x| sigmoid(Scalar, x), |x| 1.0 / (1.0 + (-x).exp()), 80.0, 1e-30);
        assert!(sigmoid_error < 4e-7, "sigmoid relative error {sigmoid_error}");
        // Tiny arguments keep their relative precision (no 1 − e^{−2x} cancellation).
        assert_eq!(tanh(Scalar, [1e-20; 8])[0], 1e-20);
    }

    #[test]
    fn limits_and_nan() {
        for (x, t, s) in [
            (1e9, 1.0, 1.0),
            (-1e9, -1.0, 0.0),
            (f32::INFINITY, 1.0, 1.0),
            (0.0, 0.0, 0.5),
        ] {
            assert_eq!(tanh(Scalar, [x; 8])[0], t, "tanh({x})");
            assert_eq!(sigmoid(Scalar, [x; 8])[0], s, "sigmoid({x})");
        }
        assert!(tanh(Scalar, [f32::NAN; 8])[0].is_nan());
        assert!(sigmoid(Scalar, [f32::NAN; 8])[0].is_nan());
        assert_eq!(sigmoid(Scalar, [f32::NEG_INFINITY; 8])[0], 0.0);
    }

    #[test]
    fn piecewise_functions_and_slopes_match_their_definitions() {
        let at = |squash: Squash, x: f32| squash.apply(Scalar, [x; 8])[0];
        let slope = |squash: Squash, y: f32| squash.slope(Scalar, [y; 8])[0];
        assert_eq!(at(Squash::HardSigmoid, 0.0), 0.5);
        assert_eq!(at(Squash::HardSigmoid, -4.0), 0.0);
        assert_eq!(at(Squash::HardSigmoid, 4.0), 1.0);
        assert_eq!(at(Squash::Relu, -2.0), 0.0);
        assert_eq!(at(Squash::Relu, 2.5), 2.5);
        assert_eq!(at(Squash::Linear, -2.5), -2.5);
        assert_eq!(slope(Squash::HardSigmoid, 0.5), 1.0 / 6.0);
        assert_eq!(slope(Squash::HardSigmoid, 1.0), 0.0);
        assert_eq!(slope(Squash::Relu, 0.0), 0.0);
        assert_eq!(slope(Squash::Relu, 3.0), 1.0);
        assert_eq!(slope(Squash::Tanh, 0.5), 0.75);
        assert_eq!(slope(Squash::Sigmoid, 0.5), 0.25);
        assert_eq!(slope(Squash::Linear, 7.0), 1.0);
    }
}
