//! Adagrad, as `keras.optimizers.Adagrad`.

use super::{Clipping, LearningRate, Optimizer, Slots};
use crate::autograd::ParamStore;

/// Adagrad: `acc += g²; θ −= lr·g/√(acc+ε)`, with `acc` starting at
/// `initial_accumulator_value`. Defaults: `learning_rate=0.001, initial_accumulator_value=0.1,
/// epsilon=1e-7`.
#[derive(Clone, Debug)]
pub struct Adagrad {
    /// Step size: a constant or a schedule over steps.
    pub learning_rate: LearningRate,
    /// Starting value of every accumulator.
    pub initial_accumulator_value: f32,
    /// Added inside the square root.
    pub epsilon: f32,
    /// Gradient clipping applied before each update (none by default).
    pub clipping: Clipping,
    pub(crate) slots: Slots,
}

impl Adagrad {
    /// Adagrad with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adagrad {
            learning_rate: learning_rate.into(),
            initial_accumulator_value: 0.1,
            epsilon: 1e-7,
            clipping: Clipping::default(),
            slots: Slots::default(),
        }
    }
}

impl Default for Adagrad {
    fn default() -> Self {
        Adagrad::new(0.001)
    }
}

impl Optimizer for Adagrad {
    fn class_name(&self) -> &'static str {
        "Adagrad"
    }

    fn learning_rate_schedule(&self) -> &LearningRate {
        &self.learning_rate
    }

    fn set_learning_rate_schedule(&mut self, learning_rate: LearningRate) {
        self.learning_rate = learning_rate;
    }

    fn step(&mut self, params: &mut ParamStore) {
        self.clipping.apply(params);
        let (lr, epsilon) = (self.learning_rate(), self.epsilon);
        self.slots
            .apply(params, self.initial_accumulator_value, |theta, g, acc, _| {
                *acc += g * g;
                *theta -= lr * g / (*acc + epsilon).sqrt();
            });
    }

    fn iterations(&self) -> u64 {
        self.slots.iterations
    }

    fn clipping(&self) -> &Clipping {
        &self.clipping
    }

    fn clipping_mut(&mut self) -> &mut Clipping {
        &mut self.clipping
    }

    fn slots(&self) -> &Slots {
        &self.slots
    }

    fn slots_mut(&mut self) -> &mut Slots {
        &mut self.slots
    }

    fn config(&self) -> serde_json::Value {
        let mut config = serde_json::json!({
            "learning_rate": self.learning_rate.config(),
            "initial_accumulator_value": self.initial_accumulator_value,
            "epsilon": self.epsilon,
        });
        self.clipping.write_config(&mut config);
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizers::testing::{one_param, step_with};

    #[test]
    fn two_steps_by_hand() {
        // lr 0.5, g = 1 then 2: acc 1.1 then 5.1.
        let (mut params, id) = one_param(&[1.0]);
        let mut adagrad = Adagrad::new(0.5);
        step_with(&mut adagrad, &mut params, &[1.0]);
        step_with(&mut adagrad, &mut params, &[2.0]);
        let expected = 1.0 - 0.5 / (1.1f64 + 1e-7).sqrt() - 1.0 / (5.1f64 + 1e-7).sqrt();
        assert!((params.value(id).item() as f64 - expected).abs() < 1e-5);
    }
}
