//! An optimizer's learning rate as given: a constant or a schedule, as Keras's optimizers take
//! `learning_rate=0.001` or `learning_rate=ExponentialDecay(...)`.

use super::schedules::{self, LearningRateSchedule, number};
use crate::error::{Error, Result};
use serde_json::{Map, Value};
use std::fmt;
use std::sync::Arc;

/// A constant learning rate or a schedule over optimizer steps. Optimizers take `impl
/// Into<LearningRate>`: an `f32`/`f64`, a schedule, or an `Arc<dyn LearningRateSchedule>`.
#[derive(Clone)]
pub enum LearningRate {
    /// The same rate at every step.
    Constant(f32),
    /// A rate that depends on the optimizer step.
    Schedule(Arc<dyn LearningRateSchedule>),
}

/// The names [`LearningRate::parse_schedule`] accepts before the `:`.
pub const SPEC_NAMES: &[&str] = &["constant", "exponential", "inverse_time", "step", "piecewise", "cosine"];

/// Arguments of a spec that hold lists, written `a;b;c`.
const LIST_ARGUMENTS: &[&str] = &["boundaries", "values"];

impl LearningRate {
    /// The rate for the update at optimizer step `iterations` (0 for the first update).
    pub fn at(&self, iterations: u64) -> f32 {
        match self {
            LearningRate::Constant(rate) => *rate,
            LearningRate::Schedule(schedule) => schedule.learning_rate_at(iterations),
        }
    }

    /// Checks a constant rate, or the schedule's arguments.
    pub fn validate(&self) -> Result<()> {
        match self {
            LearningRate::Constant(rate) => super::check_learning_rate(*rate),
            LearningRate::Schedule(schedule) => schedule.validate(),
        }
    }

    /// The value of an optimizer config's `"learning_rate"`: a number, or a schedule as Keras
    /// serializes it, `{"class_name": "ExponentialDecay", "config": {...}}`.
    pub fn config(&self) -> Value {
        match self {
            LearningRate::Constant(rate) => number(*rate),
            LearningRate::Schedule(schedule) => serde_json::json!({
                "class_name": schedule.class_name(),
                "config": schedule.config(),
            }),
        }
    }

    /// Reads what [`LearningRate::config`] writes (and what Keras writes: extra keys such as
    /// `"module"` beside `"class_name"` are ignored).
    pub fn from_config(value: &Value) -> Result<Self> {
        match value {
            Value::Number(rate) => Ok(LearningRate::Constant(rate.as_f64().unwrap_or(f64::NAN) as f32)),
            Value::Object(map) => {
                let class_name = map.get("class_name").and_then(Value::as_str).ok_or_else(|| {
                    Error::Data("a learning-rate schedule needs a \"class_name\" (e.g. \"ExponentialDecay\")".into())
                })?;
                let empty = Map::new();
                let config = match map.get("config") {
                    None => &empty,
                    Some(Value::Object(config)) => config,
                    Some(other) => {
                        return Err(Error::Data(format!(
                            "{class_name}'s \"config\" must be an object, got {other}"
                        )));
                    }
                };
                Ok(LearningRate::Schedule(schedules::from_config(class_name, config)?))
            }
            other => Err(Error::invalid(
                "learning_rate",
                other,
                "must be a number or a schedule {\"class_name\": ..., \"config\": {...}}",
            )),
        }
    }

    /// A learning rate from a command-line spec: `NAME` or `NAME:KEY=VALUE,KEY=VALUE,...`, where
    /// a list is written `a;b;c` (quote the spec in a shell). `initial_lr` is the schedule's
    /// `initial_learning_rate` unless the spec gives one. Names and their Keras classes:
    ///
    /// - `constant`: `initial_lr` at every step.
    /// - `exponential`: `ExponentialDecay` — `decay_steps`, `decay_rate`, `staircase` (default
    ///   false). `exponential:decay_steps=1000,decay_rate=0.5,staircase=true` halves the rate
    ///   every 1000 steps.
    /// - `inverse_time`: `InverseTimeDecay` — `decay_steps`, `decay_rate`, `staircase`.
    /// - `step` or `piecewise`: `PiecewiseConstantDecay` — `boundaries`, `values` (one more
    ///   value than boundaries; `initial_lr` is not used), e.g.
    ///   `step:boundaries=1000;2000,values=0.1;0.01;0.001`.
    /// - `cosine`: `CosineDecay` — `decay_steps`, `alpha` (default 0), `warmup_target`,
    ///   `warmup_steps` (default 0). Unlike Keras, `warmup_steps` without `warmup_target` warms
    ///   up from 0 (or the spec's `initial_learning_rate`) to `initial_lr`:
    ///   `cosine:decay_steps=5000,warmup_steps=500` rises to `initial_lr` over 500 steps, then
    ///   decays over 5000.
    ///
    /// Keras's class names are accepted as names too. Unknown names and arguments, repeated
    /// arguments, values that are not numbers and invalid schedules are errors.
    pub fn parse_schedule(spec: &str, initial_lr: f32) -> Result<Self> {
        let (name, arguments) = spec.split_once(':').unwrap_or((spec, ""));
        let name = name.trim();
        let class_name = match name.to_ascii_lowercase().as_str() {
            "constant" => {
                if !arguments.trim().is_empty() {
                    return Err(Error::invalid("schedule", spec, "'constant' takes no arguments"));
                }
                return Ok(LearningRate::Constant(initial_lr));
            }
            "exponential" | "exponentialdecay" => "ExponentialDecay",
            "inverse_time" | "inversetimedecay" => "InverseTimeDecay",
            "step" | "piecewise" | "piecewiseconstantdecay" => "PiecewiseConstantDecay",
            "cosine" | "cosinedecay" => "CosineDecay",
            _ => return Err(Error::unknown("learning-rate schedule", name, SPEC_NAMES)),
        };
        let mut config = Map::new();
        if class_name != "PiecewiseConstantDecay" {
            config.insert("initial_learning_rate".into(), number(initial_lr));
        }
        let mut given = Vec::new();
        for argument in arguments.split(',').map(str::trim).filter(|a| !a.is_empty()) {
            let (key, text) = argument
                .split_once('=')
                .map(|(key, text)| (key.trim(), text.trim()))
                .ok_or_else(|| Error::invalid("schedule", argument, "each argument is written KEY=VALUE"))?;
            if given.contains(&key) {
                return Err(Error::invalid(key, text, "is given twice"));
            }
            given.push(key);
            config.insert(key.to_string(), parse_value(key, text)?);
        }
        // Keras ignores warm-up steps without a target; on a command line they mean "warm up to
        // the learning rate", so read them that way.
        if class_name == "CosineDecay" && given.contains(&"warmup_steps") && !given.contains(&"warmup_target") {
            config.insert("warmup_target".into(), number(initial_lr));
            if !given.contains(&"initial_learning_rate") {
                config.insert("initial_learning_rate".into(), number(0.0));
            }
        }
        Ok(LearningRate::Schedule(schedules::from_config(class_name, &config)?))
    }
}

/// `true`/`false`, a number, or for a list argument numbers separated by `;`.
fn parse_value(key: &str, text: &str) -> Result<Value> {
    let parse_number = |item: &str| {
        item.trim()
            .parse::<f64>()
            .ok()
            .filter(|v| v.is_finite())
            .and_then(serde_json::Number::from_f64)
            .map(Value::Number)
            .ok_or_else(|| Error::invalid(key, text, format!("'{}' is not a number", item.trim())))
    };
    if LIST_ARGUMENTS.contains(&key) {
        return text
            .split(';')
            .map(parse_number)
            .collect::<Result<_>>()
            .map(Value::Array);
    }
    match text {
        "true" => Ok(Value::Bool(true)),
        "false" => Ok(Value::Bool(false)),
        _ => parse_number(text),
    }
}

impl fmt::Debug for LearningRate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LearningRate::Constant(rate) => write!(f, "Constant({rate})"),
            LearningRate::Schedule(schedule) => write!(f, "{}({})", schedule.class_name(), schedule.config()),
        }
    }
}

impl From<f32> for LearningRate {
    fn from(rate: f32) -> Self {
        LearningRate::Constant(rate)
    }
}

/// So that a literal (`Adam::new(0.001)`), which Rust types as `f64` here, works.
impl From<f64> for LearningRate {
    fn from(rate: f64) -> Self {
        LearningRate::Constant(rate as f32)
    }
}

impl From<Arc<dyn LearningRateSchedule>> for LearningRate {
    fn from(schedule: Arc<dyn LearningRateSchedule>) -> Self {
        LearningRate::Schedule(schedule)
    }
}

impl<S: LearningRateSchedule + 'static> From<S> for LearningRate {
    fn from(schedule: S) -> Self {
        LearningRate::Schedule(Arc::new(schedule))
    }
}
