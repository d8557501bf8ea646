//! Stochastic gradient descent with optional (Nesterov) momentum, as `keras.optimizers.SGD`.

use super::{Clipping, LearningRate, Optimizer, Slots};
use crate::autograd::ParamStore;

/// SGD: `m = momentum·m − lr·g; θ += m` (Nesterov: `θ += momentum·m − lr·g`).
/// Defaults: `learning_rate=0.01, momentum=0.0, nesterov=false`.
#[derive(Clone, Debug)]
pub struct Sgd {
    /// Step size: a constant or a schedule over steps.
    pub learning_rate: LearningRate,
    /// Fraction of the previous step kept (0 disables momentum).
    pub momentum: f32,
    /// Whether to use Nesterov momentum.
    pub nesterov: bool,
    /// Gradient clipping applied before each update (none by default).
    pub clipping: Clipping,
    pub(crate) slots: Slots,
}

impl Sgd {
    /// SGD with this learning rate and no momentum.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        Sgd {
            learning_rate: learning_rate.into(),
            momentum: 0.0,
            nesterov: false,
            clipping: Clipping::default(),
            slots: Slots::default(),
        }
    }

    /// Sets the momentum.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Turns Nesterov momentum on or off.
    pub fn nesterov(mut self, nesterov: bool) -> Self {
        self.nesterov = nesterov;
        self
    }
}

impl Default for Sgd {
    fn default() -> Self {
        Sgd::new(0.01)
    }
}

impl Optimizer for Sgd {
    fn class_name(&self) -> &'static str {
        "SGD"
    }

    fn learning_rate_schedule(&self) -> &LearningRate {
        &self.learning_rate
    }

    fn set_learning_rate_schedule(&mut self, learning_rate: LearningRate) {
        self.learning_rate = learning_rate;
    }

    fn step(&mut self, params: &mut ParamStore) {
        self.clipping.apply(params);
        let (lr, momentum, nesterov) = (self.learning_rate(), self.momentum, self.nesterov);
        if momentum == 0.0 {
            self.slots.apply(params, 0.0, |theta, g, _, _| *theta -= lr * g);
        } else {
            self.slots.apply(params, 0.0, |theta, g, m, _| {
                *m = momentum * *m - lr * g;
                *theta += if nesterov { momentum * *m - lr * g } else { *m };
            });
        }
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
            "momentum": self.momentum,
            "nesterov": self.nesterov,
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
        step_with(&mut Sgd::new(0.5), &mut params, &[1.0, 6.0, 7.0, 2.0]);
        assert_eq!(params.value(id).data(), &[0.5, -1.0, -0.5, 3.0]);
    }

    #[test]
    fn momentum_and_nesterov_by_hand() {
        // Two steps with g = 1, lr = 0.1, momentum = 0.9: m1 = -0.1, m2 = -0.19.
        let (mut params, id) = one_param(&[0.0]);
        let mut sgd = Sgd::new(0.1).momentum(0.9);
        step_with(&mut sgd, &mut params, &[1.0]);
        step_with(&mut sgd, &mut params, &[1.0]);
        assert!((params.value(id).item() - (-0.29)).abs() < 1e-6);
        // Nesterov: θ += 0.9·m − 0.1·g → -0.19, then -0.19 + (0.9·-0.19 − 0.1) = -0.461.
        let (mut params, id) = one_param(&[0.0]);
        let mut sgd = Sgd::new(0.1).momentum(0.9).nesterov(true);
        step_with(&mut sgd, &mut params, &[1.0]);
        step_with(&mut sgd, &mut params, &[1.0]);
        assert!((params.value(id).item() - (-0.461)).abs() < 1e-6);
    }
}
