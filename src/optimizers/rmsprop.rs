//! RMSprop, as `keras.optimizers.RMSprop` (ε inside the square root).

use super::{Clipping, LearningRate, Optimizer, Slots};
use crate::autograd::ParamStore;

/// RMSprop: `v = ρv + (1−ρ)g²; Δ = lr·g/√(v+ε)`; with momentum `mom = momentum·mom + Δ; θ −= mom`,
/// else `θ −= Δ`. Defaults: `learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7`.
#[derive(Clone, Debug)]
pub struct RMSprop {
    /// Step size: a constant or a schedule over steps.
    pub learning_rate: LearningRate,
    /// Decay of the squared-gradient average.
    pub rho: f32,
    /// Momentum (0 disables it).
    pub momentum: f32,
    /// Added to the average inside the square root.
    pub epsilon: f32,
    /// Gradient clipping applied before each update (none by default).
    pub clipping: Clipping,
    pub(crate) slots: Slots,
}

impl RMSprop {
    /// RMSprop with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        RMSprop {
            learning_rate: learning_rate.into(),
            rho: 0.9,
            momentum: 0.0,
            epsilon: 1e-7,
            clipping: Clipping::default(),
            slots: Slots::default(),
        }
    }

    /// Sets the decay of the squared-gradient average (Keras's `rho`); the other fields keep
    /// their values, so `RMSprop::new(0.001).rho(0.95)` needs no struct literal (the optimizer's
    /// state is private).
    pub fn rho(mut self, rho: f32) -> Self {
        self.rho = rho;
        self
    }

    /// Sets the momentum (0 disables it).
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Sets the value added to the average inside the square root.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }
}

impl Default for RMSprop {
    fn default() -> Self {
        RMSprop::new(0.001)
    }
}

impl Optimizer for RMSprop {
    fn class_name(&self) -> &'static str {
        "RMSprop"
    }

    fn learning_rate_schedule(&self) -> &LearningRate {
        &self.learning_rate
    }

    fn set_learning_rate_schedule(&mut self, learning_rate: LearningRate) {
        self.learning_rate = learning_rate;
    }

    fn step(&mut self, params: &mut ParamStore) {
        self.clipping.apply(params);
        let (lr, rho, momentum, epsilon) = (self.learning_rate(), self.rho, self.momentum, self.epsilon);
        self.slots.apply(params, 0.0, |theta, g, v, mom| {
            *v = rho * *v + (1.0 - rho) * g * g;
            let increment = lr * g / (*v + epsilon).sqrt();
            if momentum > 0.0 {
                *mom = momentum * *mom + increment;
                *theta -= *mom;
            } else {
                *theta -= increment;
            }
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
            "rho": self.rho,
            "momentum": self.momentum,
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
        step_with(&mut RMSprop::new(0.5), &mut params, &[1.0, 6.0, 7.0, 2.0]);
        let expected = [-0.5811, 0.4189, 1.4189, 2.4189];
        for (got, want) in params.value(id).data().iter().zip(expected) {
            assert!((got - want).abs() < 1e-4, "{got} vs {want}");
        }
    }

    #[test]
    fn momentum_by_hand() {
        // g = 1, lr = 0.1, momentum 0.5: Δ1 = 0.1/√0.1, Δ2 = 0.1/√0.19; mom2 = 0.5Δ1 + Δ2.
        let (mut params, id) = one_param(&[0.0]);
        let mut rms = RMSprop {
            momentum: 0.5,
            ..RMSprop::new(0.1)
        };
        step_with(&mut rms, &mut params, &[1.0]);
        step_with(&mut rms, &mut params, &[1.0]);
        let d1 = 0.1 / (0.1f64 + 1e-7).sqrt();
        let d2 = 0.1 / (0.19f64 + 1e-7).sqrt();
        let expected = -(d1 + 0.5 * d1 + d2);
        assert!((params.value(id).item() as f64 - expected).abs() < 1e-5);
    }
}
