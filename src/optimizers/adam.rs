//! Adam, as `keras.optimizers.Adam` (ε is Keras's "epsilon hat", added to √v).

use super::{Clipping, LearningRate, Optimizer, Slots};
use crate::autograd::ParamStore;

/// Adam: `α = lr·√(1−β₂ᵗ)/(1−β₁ᵗ); m += (g−m)(1−β₁); v += (g²−v)(1−β₂); θ −= α·m/(√v+ε)`.
/// Defaults: `learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7`.
#[derive(Clone, Debug)]
pub struct Adam {
    /// Step size: a constant or a schedule over steps.
    pub learning_rate: LearningRate,
    /// Decay of the first-moment average.
    pub beta_1: f32,
    /// Decay of the second-moment average.
    pub beta_2: f32,
    /// Added to √v for stability.
    pub epsilon: f32,
    /// Gradient clipping applied before each update (none by default).
    pub clipping: Clipping,
    pub(crate) slots: Slots,
}

impl Adam {
    /// Adam with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Adam {
            learning_rate: learning_rate.into(),
            beta_1: 0.9,
            beta_2: 0.999,
            epsilon: 1e-7,
            clipping: Clipping::default(),
            slots: Slots::default(),
        }
    }
}

impl Default for Adam {
    fn default() -> Self {
        Adam::new(0.001)
    }
}

impl Optimizer for Adam {
    fn class_name(&self) -> &'static str {
        "Adam"
    }

    fn learning_rate_schedule(&self) -> &LearningRate {
        &self.learning_rate
    }

    fn set_learning_rate_schedule(&mut self, learning_rate: LearningRate) {
        self.learning_rate = learning_rate;
    }

    fn step(&mut self, params: &mut ParamStore) {
        self.clipping.apply(params);
        let t = (self.slots.iterations + 1) as i32;
        let (beta_1, beta_2, epsilon) = (self.beta_1, self.beta_2, self.epsilon);
        let alpha = self.learning_rate() * (1.0 - beta_2.powi(t)).sqrt() / (1.0 - beta_1.powi(t));
        self.slots.apply(params, 0.0, |theta, g, m, v| {
            *m += (g - *m) * (1.0 - beta_1);
            *v += (g * g - *v) * (1.0 - beta_2);
            *theta -= alpha * *m / (v.sqrt() + epsilon);
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
            "beta_1": self.beta_1,
            "beta_2": self.beta_2,
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
    fn keras_golden_single_step() {
        let (mut params, id) = one_param(&[1.0, 2.0, 3.0, 4.0]);
        step_with(&mut Adam::new(0.5), &mut params, &[1.0, 6.0, 7.0, 2.0]);
        let expected = [0.5, 1.5, 2.5, 3.5];
        for (got, want) in params.value(id).data().iter().zip(expected) {
            assert!((got - want).abs() < 1e-5, "{got} vs {want}");
        }
    }

    #[test]
    fn second_step_by_hand() {
        // g = 1 twice, lr = 0.1: m2 = 0.19, v2 = 0.001999, α2 = 0.1·√(1−0.999²)/(1−0.9²).
        let (mut params, id) = one_param(&[0.0]);
        let mut adam = Adam::new(0.1);
        step_with(&mut adam, &mut params, &[1.0]);
        let after_one = params.value(id).item();
        step_with(&mut adam, &mut params, &[1.0]);
        let alpha2 = 0.1 * (1.0f64 - 0.999f64.powi(2)).sqrt() / (1.0 - 0.81);
        let step2 = alpha2 * 0.19 / (0.001999f64.sqrt() + 1e-7);
        assert!((after_one - (-0.1)).abs() < 1e-5);
        assert!(((params.value(id).item() as f64) - (-0.1 - step2)).abs() < 1e-5);
    }
}
