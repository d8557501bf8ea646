//! Learning-rate schedules, as `keras.optimizers.schedules`: the learning rate as a function of
//! the optimizer step, with Keras's class names, arguments, defaults and formulas.
//!
//! An optimizer evaluates its schedule at `iterations`, the number of updates already applied
//! (0 for the first update), before counting the update, as Keras evaluates
//! `schedule(optimizer.iterations)`. Give a schedule wherever a learning rate goes:
//!
//! ```
//! use strata::optimizers::{schedules::ExponentialDecay, Sgd};
//! # fn main() -> strata::Result<()> {
//! let sgd = Sgd::new(ExponentialDecay::new(0.1, 1000, 0.96)?.staircase(true));
//! # Ok(()) }
//! ```
//!
//! "Step decay" is [`PiecewiseConstantDecay`] (explicit boundaries and values), or
//! [`ExponentialDecay`] with `staircase=true` (multiply by `decay_rate` every `decay_steps`);
//! strata adds no class of its own for it, so every schedule stays loadable by Keras.

mod config;
mod cosine;
mod exponential;
mod piecewise;

pub use config::from_config;
pub use cosine::CosineDecay;
pub use exponential::{ExponentialDecay, InverseTimeDecay};
pub use piecewise::PiecewiseConstantDecay;

use crate::error::{Error, Result};
use serde_json::Value;

/// A learning rate that depends on the optimizer step (Keras's `LearningRateSchedule`).
pub trait LearningRateSchedule: Send + Sync {
    /// The learning rate for the update at optimizer step `iterations` (0-based: the number of
    /// updates already applied).
    fn learning_rate_at(&self, iterations: u64) -> f32;

    /// Keras's class name, e.g. `"ExponentialDecay"`.
    fn class_name(&self) -> &'static str;

    /// The arguments in Keras's `get_config()` vocabulary.
    fn config(&self) -> Value;

    /// Checks the arguments; constructors and `compile` call this.
    fn validate(&self) -> Result<()> {
        Ok(())
    }
}

/// The class names [`from_config`] accepts.
pub const NAMES: &[&str] = &[
    "ExponentialDecay",
    "InverseTimeDecay",
    "PiecewiseConstantDecay",
    "CosineDecay",
];

/// The schedule's position: `step / decay_steps`, floored for a staircase.
pub(super) fn progress(iterations: u64, decay_steps: u64, staircase: bool) -> f64 {
    if staircase {
        (iterations / decay_steps) as f64
    } else {
        iterations as f64 / decay_steps as f64
    }
}

/// An f32 as the shortest decimal that reads back as the same f32, so configs say `0.1` rather
/// than `0.10000000149011612`.
pub(crate) fn number(value: f32) -> Value {
    value
        .to_string()
        .parse::<f64>()
        .ok()
        .and_then(serde_json::Number::from_f64)
        .map_or(Value::Null, Value::Number)
}

/// Rates and fractions of rates: a negative or non-finite one would make the optimizer diverge.
pub(super) fn check_rate(name: &str, value: f32) -> Result<()> {
    if value >= 0.0 && value.is_finite() {
        return Ok(());
    }
    Err(Error::invalid(name, value, "must be a finite number ≥ 0"))
}

/// Every decay divides by `decay_steps`.
pub(super) fn check_decay_steps(decay_steps: u64) -> Result<()> {
    if decay_steps == 0 {
        return Err(Error::invalid("decay_steps", 0, "must be > 0"));
    }
    Ok(())
}
