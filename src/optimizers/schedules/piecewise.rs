//! Piecewise-constant decay: step decay at explicit boundaries.

use super::{LearningRateSchedule, check_rate, number};
use crate::error::{Error, Result};
use serde_json::{Value, json};

/// `values[0]` while `step ≤ boundaries[0]`, `values[i]` while `boundaries[i−1] < step ≤
/// boundaries[i]`, and `values[last]` after the last boundary: step decay with explicit steps.
#[derive(Clone, Debug, PartialEq)]
pub struct PiecewiseConstantDecay {
    /// Strictly increasing steps at which the value changes.
    pub boundaries: Vec<u64>,
    /// One more value than boundaries.
    pub values: Vec<f32>,
}

impl PiecewiseConstantDecay {
    /// A piecewise-constant schedule; an error unless `values` has one more entry than the
    /// strictly increasing `boundaries` and every value is a finite number ≥ 0.
    pub fn new(boundaries: Vec<u64>, values: Vec<f32>) -> Result<Self> {
        let schedule = PiecewiseConstantDecay { boundaries, values };
        schedule.validate()?;
        Ok(schedule)
    }
}

impl LearningRateSchedule for PiecewiseConstantDecay {
    fn learning_rate_at(&self, iterations: u64) -> f32 {
        // The number of boundaries already passed is the index of the current value.
        let passed = self.boundaries.partition_point(|&boundary| boundary < iterations);
        // `validate` rules out too few values; until it runs, stay on the last one.
        self.values.get(passed).or(self.values.last()).copied().unwrap_or(0.0)
    }

    fn class_name(&self) -> &'static str {
        "PiecewiseConstantDecay"
    }

    fn config(&self) -> Value {
        let values: Vec<Value> = self.values.iter().map(|&v| number(v)).collect();
        json!({"boundaries": self.boundaries, "values": values, "name": "PiecewiseConstant"})
    }

    fn validate(&self) -> Result<()> {
        if self.values.len() != self.boundaries.len() + 1 {
            return Err(Error::invalid(
                "values",
                format!("{:?}", self.values),
                format!(
                    "needs one more entry than boundaries ({} boundaries, {} values)",
                    self.boundaries.len(),
                    self.values.len()
                ),
            ));
        }
        if self.boundaries.windows(2).any(|pair| pair[0] >= pair[1]) {
            return Err(Error::invalid(
                "boundaries",
                format!("{:?}", self.boundaries),
                "must be strictly increasing",
            ));
        }
        self.values.iter().try_for_each(|&value| check_rate("values", value))
    }
}
