//! Exponential and inverse-time decay: functions of `step / decay_steps`, floored for a staircase.

use super::{LearningRateSchedule, check_decay_steps, check_rate, number, progress};
use crate::error::Result;
use serde_json::{Value, json};

/// `initial_learning_rate · decay_rate^(step / decay_steps)`, the exponent floored when
/// `staircase` is set. Defaults: `staircase=false`.
#[derive(Clone, Debug, PartialEq)]
pub struct ExponentialDecay {
    /// The learning rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps over which the rate is multiplied by `decay_rate` once (must be > 0).
    pub decay_steps: u64,
    /// Factor per `decay_steps` steps.
    pub decay_rate: f32,
    /// Whether to decay in whole steps of `decay_steps` only.
    pub staircase: bool,
}

impl ExponentialDecay {
    /// A smooth exponential decay; an error for `decay_steps = 0` or a negative rate.
    pub fn new(initial_learning_rate: f32, decay_steps: u64, decay_rate: f32) -> Result<Self> {
        let schedule = ExponentialDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase: false,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Decays only every `decay_steps` steps ("step decay").
    pub fn staircase(mut self, staircase: bool) -> Self {
        self.staircase = staircase;
        self
    }
}

impl LearningRateSchedule for ExponentialDecay {
    fn learning_rate_at(&self, iterations: u64) -> f32 {
        let factor = f64::from(self.decay_rate).powf(progress(iterations, self.decay_steps, self.staircase));
        (f64::from(self.initial_learning_rate) * factor) as f32
    }

    fn class_name(&self) -> &'static str {
        "ExponentialDecay"
    }

    fn config(&self) -> Value {
        json!({
            "initial_learning_rate": number(self.initial_learning_rate),
            "decay_steps": self.decay_steps,
            "decay_rate": number(self.decay_rate),
            "staircase": self.staircase,
            "name": "ExponentialDecay",
        })
    }

    fn validate(&self) -> Result<()> {
        check_rate("initial_learning_rate", self.initial_learning_rate)?;
        check_decay_steps(self.decay_steps)?;
        check_rate("decay_rate", self.decay_rate)
    }
}

/// `initial_learning_rate / (1 + decay_rate · step / decay_steps)`, the quotient floored when
/// `staircase` is set. Defaults: `staircase=false`.
#[derive(Clone, Debug, PartialEq)]
pub struct InverseTimeDecay {
    /// The learning rate at step 0.
    pub initial_learning_rate: f32,
    /// The step unit of the decay (must be > 0).
    pub decay_steps: u64,
    /// How fast the rate falls.
    pub decay_rate: f32,
    /// Whether to decay in whole steps of `decay_steps` only.
    pub staircase: bool,
}

impl InverseTimeDecay {
    /// A smooth inverse-time decay; an error for `decay_steps = 0` or a negative rate.
    pub fn new(initial_learning_rate: f32, decay_steps: u64, decay_rate: f32) -> Result<Self> {
        let schedule = InverseTimeDecay {
            initial_learning_rate,
            decay_steps,
            decay_rate,
            staircase: false,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Decays only every `decay_steps` steps.
    pub fn staircase(mut self, staircase: bool) -> Self {
        self.staircase = staircase;
        self
    }
}

impl LearningRateSchedule for InverseTimeDecay {
    fn learning_rate_at(&self, iterations: u64) -> f32 {
        let p = progress(iterations, self.decay_steps, self.staircase);
        (f64::from(self.initial_learning_rate) / (1.0 + f64::from(self.decay_rate) * p)) as f32
    }

    fn class_name(&self) -> &'static str {
        "InverseTimeDecay"
    }

    fn config(&self) -> Value {
        json!({
            "initial_learning_rate": number(self.initial_learning_rate),
            "decay_steps": self.decay_steps,
            "decay_rate": number(self.decay_rate),
            "staircase": self.staircase,
            "name": "InverseTimeDecay",
        })
    }

    fn validate(&self) -> Result<()> {
        check_rate("initial_learning_rate", self.initial_learning_rate)?;
        check_decay_steps(self.decay_steps)?;
        check_rate("decay_rate", self.decay_rate)
    }
}
