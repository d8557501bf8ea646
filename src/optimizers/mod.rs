//! Optimizers with Keras's names, defaults and update formulas.
//!
//! Choose one by name (`"adam"`) or by value (`Adam::new(0.01)`, `Sgd::new(0.1).momentum(0.9)`).
//! The learning rate may be a schedule ([`schedules`]) instead of a number, and each can clip
//! the gradients first, as Keras's `clipnorm`, `clipvalue` and `global_clipnorm` do ([`Clipping`]).
//! Each keeps its per-parameter state ("slots") in dense vectors laid out like the model's
//! [`ParamStore`].

mod adagrad;
mod adam;
mod adamw;
mod clipping;
mod learning_rate;
mod rmsprop;
pub mod schedules;
mod sgd;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use adamw::AdamW;
pub use clipping::Clipping;
pub use learning_rate::{LearningRate, SPEC_NAMES as SCHEDULE_SPEC_NAMES};
pub use rmsprop::RMSprop;
pub use schedules::{CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRateSchedule, PiecewiseConstantDecay};
pub use sgd::Sgd;

use crate::autograd::ParamStore;
use crate::error::{Error, Result};
use serde_json::Value;

/// Updates a model's weights from their gradients.
pub trait Optimizer: Send {
    /// Keras's class name, e.g. `"Adam"`.
    fn class_name(&self) -> &'static str;

    /// The learning rate as given: a constant or a schedule.
    fn learning_rate_schedule(&self) -> &LearningRate;

    /// Replaces the learning rate, constant or schedule.
    fn set_learning_rate_schedule(&mut self, learning_rate: LearningRate);

    /// The learning rate the next update uses: the schedule's value at [`Optimizer::iterations`].
    fn learning_rate(&self) -> f32 {
        self.learning_rate_schedule().at(self.iterations())
    }

    /// Sets a constant learning rate, replacing any schedule (callbacks such as
    /// ReduceLROnPlateau use this).
    fn set_learning_rate(&mut self, learning_rate: f32) {
        self.set_learning_rate_schedule(LearningRate::Constant(learning_rate));
    }

    /// Applies one update to every trainable parameter from its gradient.
    fn step(&mut self, params: &mut ParamStore);

    /// Number of updates applied so far (Keras's `optimizer.iterations`).
    fn iterations(&self) -> u64;

    /// The gradient clipping applied at the start of every [`Optimizer::step`].
    fn clipping(&self) -> &Clipping;

    /// The gradient clipping, writable (the CLI's `--clipnorm` sets it on a named optimizer).
    fn clipping_mut(&mut self) -> &mut Clipping;

    /// The per-parameter state, for saving.
    fn slots(&self) -> &Slots;

    /// The per-parameter state, writable, for restoring a saved model.
    fn slots_mut(&mut self) -> &mut Slots;

    /// The hyperparameters in Keras's `get_config()` vocabulary.
    fn config(&self) -> Value;

    /// Checks the hyperparameters; `compile` calls this.
    fn validate(&self) -> Result<()> {
        self.learning_rate_schedule().validate()?;
        self.clipping().validate()
    }
}

/// The names [`from_name`] accepts.
pub const NAMES: &[&str] = &["sgd", "adam", "adamw", "rmsprop", "adagrad"];

/// An optimizer with Keras's defaults, by name (case-insensitive).
pub fn from_name(name: &str) -> Result<Box<dyn Optimizer>> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(Sgd::default()),
        "adam" => Box::new(Adam::default()),
        "adamw" => Box::new(AdamW::default()),
        "rmsprop" => Box::new(RMSprop::default()),
        "adagrad" => Box::new(Adagrad::default()),
        _ => return Err(Error::unknown("optimizer", name, NAMES)),
    })
}

/// An optimizer from a Keras config: a name, or `{"class_name": "Adam", "config": {...}}`.
pub fn from_config(value: &Value) -> Result<Box<dyn Optimizer>> {
    let (name, config) = match value {
        Value::String(name) => (name.as_str(), None),
        Value::Object(map) => {
            let name = map
                .get("class_name")
                .and_then(Value::as_str)
                .ok_or_else(|| Error::Data("an optimizer object needs a \"class_name\" (e.g. \"Adam\")".into()))?;
            (name, map.get("config"))
        }
        other => {
            return Err(Error::Data(format!(
                "optimizer must be a name or an object, got {other}"
            )));
        }
    };
    // A setting that is present must be a finite number: `"momentum": "0.9"` or a value past
    // f32's range must not fall back to the default.
    let get = |key: &str| -> Result<Option<f32>> {
        match config.and_then(|c| c.get(key)) {
            None | Some(Value::Null) => Ok(None),
            Some(value) => value
                .as_f64()
                .map(|v| v as f32)
                .filter(|v| v.is_finite())
                .map(Some)
                .ok_or_else(|| Error::invalid(key, value, format!("{name}'s {key} must be a finite number"))),
        }
    };
    let mut optimizer = from_name(name)?;
    if let Some(value) = config.and_then(|c| c.get("learning_rate").or_else(|| c.get("lr"))) {
        optimizer.set_learning_rate_schedule(LearningRate::from_config(value)?);
    }
    let Some(config) = config else {
        return Ok(optimizer);
    };
    let flag = |key: &str| config.get(key).and_then(Value::as_bool).unwrap_or(false);
    let lr = optimizer.learning_rate_schedule().clone();
    let clipping = Clipping::from_config(config)?;
    let mut optimizer: Box<dyn Optimizer> = match name.to_ascii_lowercase().as_str() {
        "sgd" => Box::new(
            Sgd::new(lr)
                .momentum(get("momentum")?.unwrap_or(0.0))
                .nesterov(flag("nesterov")),
        ),
        "adam" => Box::new(Adam {
            beta_1: get("beta_1")?.unwrap_or(0.9),
            beta_2: get("beta_2")?.unwrap_or(0.999),
            epsilon: get("epsilon")?.unwrap_or(1e-7),
            ..Adam::new(lr)
        }),
        "adamw" => Box::new(AdamW {
            weight_decay: get("weight_decay")?.unwrap_or(0.004),
            adam: Adam {
                beta_1: get("beta_1")?.unwrap_or(0.9),
                beta_2: get("beta_2")?.unwrap_or(0.999),
                epsilon: get("epsilon")?.unwrap_or(1e-7),
                ..Adam::new(lr)
            },
        }),
        "rmsprop" => Box::new(RMSprop {
            rho: get("rho")?.unwrap_or(0.9),
            momentum: get("momentum")?.unwrap_or(0.0),
            epsilon: get("epsilon")?.unwrap_or(1e-7),
            ..RMSprop::new(lr)
        }),
        "adagrad" => Box::new(Adagrad {
            initial_accumulator_value: get("initial_accumulator_value")?.unwrap_or(0.1),
            epsilon: get("epsilon")?.unwrap_or(1e-7),
            ..Adagrad::new(lr)
        }),
        _ => optimizer,
    };
    *optimizer.clipping_mut() = clipping;
    check_keys(name, config, &optimizer.config())?;
    Ok(optimizer)
}

/// Keys of a Keras optimizer config that change nothing strata computes: bookkeeping, and
/// settings that only matter when another one (`use_ema`) turns them on.
const HARMLESS_KEYS: &[&str] = &[
    "name",
    // Keras 2's name for learning_rate, read above.
    "lr",
    "ema_momentum",
    "ema_overwrite_frequency",
    "is_legacy_optimizer",
    "jit_compile",
];

/// Keras optimizer settings strata does not implement, with the value that means "not used".
fn unused_value(key: &str) -> Option<Value> {
    Some(match key {
        "use_ema" | "amsgrad" | "centered" => Value::Bool(false),
        "decay" => serde_json::json!(0.0),
        "weight_decay" | "loss_scale_factor" | "gradient_accumulation_steps" => Value::Null,
        _ => return None,
    })
}

/// Refuses a key of an optimizer's `config` that strata would otherwise ignore while it changes
/// the updates: a typo (`"momentun"`), or a Keras setting strata lacks (`"amsgrad": true`).
/// `written` is the config the optimizer built from it writes: the keys it reads.
fn check_keys(name: &str, config: &Value, written: &Value) -> Result<()> {
    let Some(given) = config.as_object() else {
        return Ok(());
    };
    for (key, value) in given {
        if written.get(key).is_some() || HARMLESS_KEYS.contains(&key.as_str()) {
            continue;
        }
        let same = |unused: &Value| match (value, unused) {
            (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
            _ => value == unused,
        };
        match unused_value(key) {
            Some(unused) if same(&unused) => {}
            Some(unused) => {
                return Err(Error::Data(format!(
                    "optimizer {name}: \"{key}\" = {value} is not supported by strata (only {unused})"
                )));
            }
            None => {
                let mut known: Vec<&str> = written
                    .as_object()
                    .map(|o| o.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                known.sort_unstable();
                return Err(Error::Data(format!(
                    "optimizer {name}: unknown key \"{key}\"; the keys {name} reads are: {}",
                    known.join(", ")
                )));
            }
        }
    }
    Ok(())
}

fn check_learning_rate(learning_rate: f32) -> Result<()> {
    if !(learning_rate >= 0.0 && learning_rate.is_finite()) {
        return Err(Error::invalid(
            "learning_rate",
            learning_rate,
            "must be a finite number ≥ 0 (Keras's default for Adam is 0.001)",
        ));
    }
    Ok(())
}

/// Per-parameter state shared by the optimizers: up to two slot vectors per weight tensor
/// (Adam's m and v, RMSprop's average and momentum), and the number of steps taken. A
/// trainable weight's slots are allocated on its first step; a frozen weight has none (empty
/// vectors), as Keras makes optimizer variables for trainable weights only. Saved with a model
/// so training can resume exactly.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Slots {
    pub(crate) iterations: u64,
    first: Vec<Vec<f32>>,
    second: Vec<Vec<f32>>,
}

impl Slots {
    /// Steps taken.
    pub fn iterations(&self) -> u64 {
        self.iterations
    }

    /// The first slot of every parameter (empty before the first step, and for a frozen one).
    pub fn first(&self) -> &[Vec<f32>] {
        &self.first
    }

    /// The second slot of every parameter (empty before the first step, and for a frozen one).
    pub fn second(&self) -> &[Vec<f32>] {
        &self.second
    }

    /// Restores saved state.
    pub fn restore(&mut self, iterations: u64, first: Vec<Vec<f32>>, second: Vec<Vec<f32>>) {
        *self = Slots {
            iterations,
            first,
            second,
        };
    }
}

impl Slots {
    /// Runs `update(value, grad, first_slot, second_slot)` on every element of every trainable
    /// parameter, then counts the iteration. Slots start at `initial`; a frozen parameter's are
    /// dropped.
    pub(crate) fn apply(
        &mut self,
        params: &mut ParamStore,
        initial: f32,
        update: impl Fn(&mut f32, f32, &mut f32, &mut f32) + Sync,
    ) {
        let (values, grads, trainable) = params.values_and_grads_mut();
        if self.first.len() != values.len() {
            self.first = vec![Vec::new(); values.len()];
            self.second = vec![Vec::new(); values.len()];
        }
        for (i, value) in values.iter_mut().enumerate() {
            let (first, second) = (&mut self.first[i], &mut self.second[i]);
            if !trainable[i] {
                (*first, *second) = (Vec::new(), Vec::new());
                continue;
            }
            if first.len() != value.len() {
                (*first, *second) = (vec![initial; value.len()], vec![initial; value.len()]);
            }
            crate::kernels::update_slots(value.data_mut(), grads[i].data(), first, second, &update);
        }
        self.iterations += 1;
    }
}

#[cfg(test)]
pub(crate) mod testing {
    use crate::autograd::ParamStore;
    use crate::tensor::Tensor;

    /// Keras's `test_single_step` setup: vars [1, 2, 3, 4], grads [1, 6, 7, 2].
    pub fn one_param(values: &[f32]) -> (ParamStore, crate::autograd::ParamId) {
        let mut params = ParamStore::new();
        let id = params.add("w", Tensor::from_slice(values), true);
        (params, id)
    }

    /// Sets the gradient of the only parameter and runs a step.
    pub fn step_with(optimizer: &mut dyn super::Optimizer, params: &mut ParamStore, grad: &[f32]) {
        params.set_grad_for_test(crate::autograd::ParamId(0), grad);
        optimizer.step(params);
    }
}
