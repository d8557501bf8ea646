//! Scalar maths the rules share: the clipping epsilon and a sigmoid that does not overflow.
//!
//! It imports nothing of `autograd`, so every rule file can take these without tying itself to
//! another rule file.

/// Keras's fuzz factor for clipping probabilities before a log (`keras.config.epsilon()`).
pub(super) const EPSILON: f32 = 1e-7;

/// `1 / (1 + e^-x)`, through `e^x` for negative `x` so neither branch overflows.
pub(super) fn sigmoid(x: f32) -> f32 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        x.exp() / (1.0 + x.exp())
    }
}
