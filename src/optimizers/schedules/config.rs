//! Schedules from Keras configs (`{"class_name": ..., "config": {...}}`'s two halves).

use super::{CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, NAMES, PiecewiseConstantDecay};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::sync::Arc;

/// A schedule from its Keras class name and `get_config()` arguments; unknown arguments are
/// errors, as they are for Keras's `from_config`.
pub fn from_config(class_name: &str, config: &Map<String, Value>) -> Result<Arc<dyn LearningRateSchedule>> {
    let args = Args { class_name, config };
    let schedule: Arc<dyn LearningRateSchedule> = match class_name {
        "ExponentialDecay" | "InverseTimeDecay" => {
            args.only(&[
                "initial_learning_rate",
                "decay_steps",
                "decay_rate",
                "staircase",
                "name",
            ])?;
            let (initial, decay_steps) = (args.rate("initial_learning_rate")?, args.steps("decay_steps")?);
            let (decay_rate, staircase) = (args.rate("decay_rate")?, args.flag("staircase")?);
            if class_name == "ExponentialDecay" {
                Arc::new(ExponentialDecay::new(initial, decay_steps, decay_rate)?.staircase(staircase))
            } else {
                Arc::new(InverseTimeDecay::new(initial, decay_steps, decay_rate)?.staircase(staircase))
            }
        }
        "PiecewiseConstantDecay" => {
            args.only(&["boundaries", "values", "name"])?;
            let boundaries = args.list("boundaries", "a list of whole numbers of steps", as_steps)?;
            let values = args.list("values", "a list of numbers", as_rate)?;
            Arc::new(PiecewiseConstantDecay::new(boundaries, values)?)
        }
        "CosineDecay" => {
            args.only(&[
                "initial_learning_rate",
                "decay_steps",
                "alpha",
                "warmup_target",
                "warmup_steps",
                "name",
            ])?;
            let mut schedule = CosineDecay::new(args.rate("initial_learning_rate")?, args.steps("decay_steps")?)?;
            schedule.alpha = args.optional_rate("alpha")?.unwrap_or(0.0);
            schedule.warmup_target = args.optional_rate("warmup_target")?;
            schedule.warmup_steps = args.optional("warmup_steps", STEPS, as_steps)?.unwrap_or(0);
            schedule.validate()?;
            Arc::new(schedule)
        }
        _ => return Err(Error::unknown("learning-rate schedule", class_name, NAMES)),
    };
    Ok(schedule)
}

/// A schedule's config being read, for error messages that name the schedule and argument.
struct Args<'a> {
    class_name: &'a str,
    config: &'a Map<String, Value>,
}

impl Args<'_> {
    fn only(&self, known: &[&str]) -> Result<()> {
        match self.config.keys().find(|key| !known.contains(&key.as_str())) {
            Some(key) => Err(Error::unknown(
                "schedule argument",
                &format!("{}.{key}", self.class_name),
                known,
            )),
            None => Ok(()),
        }
    }

    /// `None` when absent or `null` (TOML cannot write `null`, so absent means the default).
    fn optional<T>(&self, key: &str, expected: &str, read: impl Fn(&Value) -> Option<T>) -> Result<Option<T>> {
        match self.config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => read(value)
                .map(Some)
                .ok_or_else(|| Error::invalid(key, value, format!("{}'s {key} must be {expected}", self.class_name))),
        }
    }

    fn required<T>(&self, key: &str, expected: &str, read: impl Fn(&Value) -> Option<T>) -> Result<T> {
        self.optional(key, expected, read)?
            .ok_or_else(|| Error::Data(format!("{} needs the argument '{key}'", self.class_name)))
    }

    fn rate(&self, key: &str) -> Result<f32> {
        self.required(key, "a number", as_rate)
    }

    fn optional_rate(&self, key: &str) -> Result<Option<f32>> {
        self.optional(key, "a number", as_rate)
    }

    fn steps(&self, key: &str) -> Result<u64> {
        self.required(key, STEPS, as_steps)
    }

    fn flag(&self, key: &str) -> Result<bool> {
        Ok(self.optional(key, "true or false", Value::as_bool)?.unwrap_or(false))
    }

    fn list<T>(&self, key: &str, expected: &str, read: impl Fn(&Value) -> Option<T>) -> Result<Vec<T>> {
        self.required(key, expected, |value| value.as_array()?.iter().map(&read).collect())
    }
}

const STEPS: &str = "a whole number of steps ≥ 0";

fn as_rate(value: &Value) -> Option<f32> {
    value.as_f64().map(|v| v as f32)
}

/// A step count: a whole number ≥ 0, written as an integer or as a float with no fraction
/// (Keras configs hold either).
fn as_steps(value: &Value) -> Option<u64> {
    value.as_u64().or_else(|| {
        let v = value.as_f64()?;
        (v >= 0.0 && v.fract() == 0.0 && v <= u64::MAX as f64).then_some(v as u64)
    })
}
