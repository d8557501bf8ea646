//! AdamW: Adam with decoupled weight decay, as `keras.optimizers.AdamW`.

use super::{Adam, Clipping, LearningRate, Optimizer, Slots};
use crate::autograd::ParamStore;

/// AdamW: before each Adam step, `θ −= θ·weight_decay·lr`.
/// Defaults: `learning_rate=0.001, weight_decay=0.004`, Adam's betas and ε.
#[derive(Clone, Debug)]
pub struct AdamW {
    /// Fraction of each weight removed per step, times the learning rate.
    pub weight_decay: f32,
    /// The Adam update applied after the decay.
    pub adam: Adam,
}

impl AdamW {
    /// AdamW with this learning rate and Keras's other defaults.
    pub fn new(learning_rate: impl Into<LearningRate>) -> Self {
        AdamW {
            weight_decay: 0.004,
            adam: Adam::new(learning_rate),
        }
    }

    /// Sets the weight decay.
    pub fn weight_decay(mut self, weight_decay: f32) -> Self {
        self.weight_decay = weight_decay;
        self
    }
}

impl Default for AdamW {
    fn default() -> Self {
        AdamW::new(0.001)
    }
}

impl Optimizer for AdamW {
    fn class_name(&self) -> &'static str {
        "AdamW"
    }

    fn learning_rate_schedule(&self) -> &LearningRate {
        &self.adam.learning_rate
    }

    fn set_learning_rate_schedule(&mut self, learning_rate: LearningRate) {
        self.adam.learning_rate = learning_rate;
    }

    fn step(&mut self, params: &mut ParamStore) {
        let decay = 1.0 - self.weight_decay * self.learning_rate();
        let (values, _, trainable) = params.values_and_grads_mut();
        for (value, _) in values.iter_mut().zip(trainable).filter(|(_, t)| **t) {
            value.data_mut().iter_mut().for_each(|v| *v *= decay);
        }
        // Adam's step clips the gradients; the decay above does not read them, so the order
        // matches Keras's (clip, decay, update).
        self.adam.step(params);
    }

    fn iterations(&self) -> u64 {
        self.adam.iterations()
    }

    fn clipping(&self) -> &Clipping {
        &self.adam.clipping
    }

    fn clipping_mut(&mut self) -> &mut Clipping {
        &mut self.adam.clipping
    }

    fn slots(&self) -> &Slots {
        &self.adam.slots
    }

    fn slots_mut(&mut self) -> &mut Slots {
        &mut self.adam.slots
    }

    fn config(&self) -> serde_json::Value {
        let mut config = self.adam.config();
        config["weight_decay"] = self.weight_decay.into();
        config
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::optimizers::testing::{one_param, step_with};

    #[test]
    fn decays_then_steps_like_adam() {
        // θ = 2, lr = 0.5, wd = 0.1: decay to 2·(1 − 0.05) = 1.9, then Adam's first step of 0.5.
        let (mut params, id) = one_param(&[2.0]);
        step_with(&mut AdamW::new(0.5).weight_decay(0.1), &mut params, &[3.0]);
        assert!((params.value(id).item() - 1.4).abs() < 1e-5);
    }
}
