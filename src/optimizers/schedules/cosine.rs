//! Cosine decay with Keras 3's optional linear warm-up.

use super::{LearningRateSchedule, check_decay_steps, check_rate, number};
use crate::error::Result;
use serde_json::{Value, json};
use std::f64::consts::PI;

/// Cosine decay with an optional linear warm-up, as Keras 3's `CosineDecay`. Defaults:
/// `alpha=0.0, warmup_target=None, warmup_steps=0`.
///
/// Without `warmup_target`: `initial_learning_rate · ((1−alpha)·½(1+cos(π·s/decay_steps)) +
/// alpha)` with `s = min(step, decay_steps)`. With it, the rate first rises linearly from
/// `initial_learning_rate` to `warmup_target` over `warmup_steps` steps (`initial + (target −
/// initial)·step/warmup_steps`), then decays from `warmup_target` as above with `s = min(step −
/// warmup_steps, decay_steps)`. Keras ignores `warmup_steps` without a `warmup_target`, and so
/// does strata.
#[derive(Clone, Debug, PartialEq)]
pub struct CosineDecay {
    /// The learning rate at step 0.
    pub initial_learning_rate: f32,
    /// Steps to decay over (must be > 0).
    pub decay_steps: u64,
    /// The final rate as a fraction of the rate the decay starts from.
    pub alpha: f32,
    /// The rate reached at the end of the warm-up; `None` skips the warm-up.
    pub warmup_target: Option<f32>,
    /// Steps of linear warm-up.
    pub warmup_steps: u64,
}

impl CosineDecay {
    /// A cosine decay to 0 without warm-up; an error for `decay_steps = 0` or a negative rate.
    pub fn new(initial_learning_rate: f32, decay_steps: u64) -> Result<Self> {
        let schedule = CosineDecay {
            initial_learning_rate,
            decay_steps,
            alpha: 0.0,
            warmup_target: None,
            warmup_steps: 0,
        };
        schedule.validate()?;
        Ok(schedule)
    }

    /// Sets the final rate as a fraction of the starting one.
    pub fn alpha(mut self, alpha: f32) -> Self {
        self.alpha = alpha;
        self
    }

    /// Adds a linear warm-up from `initial_learning_rate` to `warmup_target` over
    /// `warmup_steps` steps, before the decay.
    pub fn warmup(mut self, warmup_target: f32, warmup_steps: u64) -> Self {
        self.warmup_target = Some(warmup_target);
        self.warmup_steps = warmup_steps;
        self
    }

    fn decayed(&self, steps_into_decay: f64, decay_from: f64) -> f64 {
        let alpha = f64::from(self.alpha);
        let cosine = 0.5 * (1.0 + (PI * steps_into_decay / self.decay_steps as f64).cos());
        decay_from * ((1.0 - alpha) * cosine + alpha)
    }
}

impl LearningRateSchedule for CosineDecay {
    fn learning_rate_at(&self, iterations: u64) -> f32 {
        let (initial, step, decay_steps) = (
            f64::from(self.initial_learning_rate),
            iterations as f64,
            self.decay_steps as f64,
        );
        let Some(target) = self.warmup_target.map(f64::from) else {
            return self.decayed(step.min(decay_steps), initial) as f32;
        };
        let warmup_steps = self.warmup_steps as f64;
        let step = step.min(decay_steps + warmup_steps);
        let rate = if step < warmup_steps {
            initial + (target - initial) * step / warmup_steps
        } else {
            self.decayed(step - warmup_steps, target)
        };
        rate as f32
    }

    fn class_name(&self) -> &'static str {
        "CosineDecay"
    }

    fn config(&self) -> Value {
        json!({
            "initial_learning_rate": number(self.initial_learning_rate),
            "decay_steps": self.decay_steps,
            "alpha": number(self.alpha),
            "name": "CosineDecay",
            "warmup_target": self.warmup_target.map(number),
            "warmup_steps": self.warmup_steps,
        })
    }

    fn validate(&self) -> Result<()> {
        check_rate("initial_learning_rate", self.initial_learning_rate)?;
        check_decay_steps(self.decay_steps)?;
        check_rate("alpha", self.alpha)?;
        self.warmup_target
            .map_or(Ok(()), |target| check_rate("warmup_target", target))
    }
}
