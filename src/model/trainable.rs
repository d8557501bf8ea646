//! Freezing and fine-tuning, as Keras's `layer.trainable`: finding a layer by name, freezing
//! all or part of a model, and turning the layers' flags into the weights' flags.
//!
//! A weight is trained when it is a trainable variable (BatchNormalization's moving statistics
//! never are) and its layer is trainable. Layers' flags may change at any time; the weights'
//! flags follow them when the model is built or compiled, so a change after `compile` takes
//! effect at the next `compile`, as in Keras.

use super::base::keep_built_weights;
use super::{Model, Network};
use crate::autograd::ParamStore;
use crate::error::{Error, Result};
use crate::layers::Layer;
use crate::rng::Rng;

/// The layer that made a weight, and whether the weight is a trainable variable at all.
#[derive(Clone, Copy, Debug)]
pub(crate) struct WeightOwner {
    layer: usize,
    variable: bool,
}

/// Builds `layer` as if it were trainable, then restores its flag: the weights' own flags then
/// say which are trainable variables, whatever the layer's flag is now.
fn build_unfrozen(layer: &mut dyn Layer, inputs: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
    let trainable = layer.is_trainable();
    layer.set_trainable(true);
    let built = layer.build(inputs, params, rng);
    layer.set_trainable(trainable);
    built.map_err(|e| e.in_layer(layer.name(), layer.class_name()))
}

/// Records `layer` as the owner of the weights added to `params` since the last call.
fn record_owner(owners: &mut Vec<WeightOwner>, layer: usize, params: &ParamStore) {
    for id in params.ids().skip(owners.len()) {
        owners.push(WeightOwner {
            layer,
            variable: params.is_trainable(id),
        });
    }
}

/// Sets each weight's flag from its layer's: trainable variables of trainable layers are
/// trained, nothing else. Does nothing before the model is built.
fn apply_flags(network: &Network, params: &mut ParamStore) {
    if network.weight_owners.len() != params.len() {
        return;
    }
    for (id, owner) in params.ids().zip(&network.weight_owners) {
        let layer = network.layers[owner.layer].as_ref();
        params.set_trainable(id, owner.variable && layer.is_trainable());
    }
}

impl Model {
    /// Builds each layer on its first call, in call order (the order weights are drawn), into a
    /// new store: records which layer made which weight, sets the weights' flags from the
    /// layers', and keeps the values of the weights already built (a model rebuilt with more
    /// layers keeps its trained ones).
    pub(super) fn build_weights(&mut self, first_inputs: &[Option<Vec<Vec<usize>>>]) -> Result<ParamStore> {
        let mut params = ParamStore::new();
        let mut built = vec![false; self.network.layers.len()];
        let mut owners = Vec::new();
        for call in &self.network.calls {
            if let Some(inputs) = &first_inputs[call.layer]
                && !std::mem::replace(&mut built[call.layer], true)
            {
                let layer = self.network.layers[call.layer].as_mut();
                build_unfrozen(layer, inputs, &mut params, &mut self.training.rng)?;
                record_owner(&mut owners, call.layer, &params);
            }
        }
        self.network.weight_owners = owners;
        apply_flags(&self.network, &mut params);
        keep_built_weights(&self.params, &mut params);
        Ok(params)
    }

    /// The layer named `name`, as Keras's `model.get_layer(name)`; an unknown name is an error
    /// listing the model's layers.
    pub fn get_layer(&self, name: &str) -> Result<&dyn Layer> {
        let index = self.layer_index(name)?;
        Ok(self.network.layers[index].as_ref())
    }

    /// [`Model::get_layer`], to change: `model.get_layer_mut("conv2d")?.set_trainable(false)`
    /// is Keras's `model.get_layer("conv2d").trainable = False` (it takes effect at the next
    /// `compile`).
    pub fn get_layer_mut(&mut self, name: &str) -> Result<&mut dyn Layer> {
        let index = self.layer_index(name)?;
        Ok(self.network.layers[index].as_mut())
    }

    /// The position of the layer named `name` in [`Model::layers`], or an error listing the
    /// names there are.
    pub fn layer_index(&self, name: &str) -> Result<usize> {
        let layers = &self.network.layers;
        layers.iter().position(|l| l.name() == name).ok_or_else(|| {
            if let Some(nested) = self.network.nested.iter().find(|n| n.name() == name) {
                return Error::Usage(format!(
                    "'{name}' in model '{}' is a nested model ({}) of {} layers, not one layer: freeze or unfreeze \
                     it with Model::set_nested_trainable(\"{name}\", ...), list its layers with Model::nested_model",
                    self.name,
                    nested.class_name(),
                    nested.layer_names().len()
                ));
            }
            let names: Vec<&str> = layers.iter().filter(|l| !l.is_input()).map(|l| l.name()).collect();
            Error::Usage(format!(
                "model '{}' has no layer '{name}'; {}its layers are: {}",
                self.name,
                self.nested_names_text(),
                names.join(", ")
            ))
        })
    }

    /// `its nested models are: a, b; ` (empty without nested models), for errors that list names.
    fn nested_names_text(&self) -> String {
        let nested: Vec<&str> = self.network.nested.iter().map(|n| n.name()).collect();
        match nested.is_empty() {
            true => String::new(),
            false => format!("its nested models are: {}; ", nested.join(", ")),
        }
    }

    /// Freezes (`false`) or unfreezes the layer or the nested model named `name`: Keras's
    /// `model.get_layer(name).trainable = flag`, which finds either. An unknown name is an error
    /// listing the nested models and the layers. Takes effect at the next `compile`.
    pub fn set_layer_trainable(&mut self, name: &str, trainable: bool) -> Result<&mut Self> {
        if self.network.nested.iter().any(|n| n.name() == name) {
            return self.set_nested_trainable(name, trainable);
        }
        self.get_layer_mut(name)?.set_trainable(trainable);
        Ok(self)
    }

    /// Freezes (`false`) or unfreezes every layer, as Keras's `model.trainable = False`. Takes
    /// effect at the next `compile`; [`Model::summary`] shows it at once.
    pub fn set_trainable(&mut self, trainable: bool) -> &mut Self {
        for layer in &mut self.network.layers {
            layer.set_trainable(trainable);
        }
        self
    }

    /// Whether any layer is trainable (Keras's `model.trainable` after `model.trainable = False`
    /// reads false).
    pub fn is_trainable(&self) -> bool {
        self.network.layers.iter().any(|l| !l.is_input() && l.is_trainable())
    }

    /// Fine-tuning's freeze: layers before `name` are frozen; `name` and every layer after it
    /// are trainable, except `BatchNormalization` layers, which stay frozen and so keep
    /// normalizing with their moving statistics (Keras's fine-tuning guide keeps them in
    /// inference mode: a few hundred new images would otherwise overwrite statistics learnt on
    /// many). Keras's `for layer in model.layers[:index]: layer.trainable = False`. Takes effect
    /// at the next `compile`, where a smaller learning rate is usual.
    ///
    /// `name` may be a layer inside a nested model (Keras's `base.layers[-20:]` unfrozen, the
    /// head after the base trainable too), or a nested model itself: from its first layer on
    /// (Keras's `base.trainable = True` with the base called in inference mode).
    pub fn fine_tune_from(&mut self, name: &str) -> Result<&mut Self> {
        let nested_first = self
            .network
            .nested
            .iter()
            .find(|n| n.name() == name)
            .and_then(|nested| {
                self.network
                    .layers
                    .iter()
                    .position(|l| nested.layer_names().iter().any(|n| n == l.name()))
            });
        let first = match nested_first {
            Some(first) => first,
            None => self.layer_index(name)?,
        };
        for (index, layer) in self.network.layers.iter_mut().enumerate() {
            let batch_norm = layer.class_name() == "BatchNormalization";
            layer.set_trainable(index >= first && !batch_norm);
        }
        Ok(self)
    }

    /// Whether the weight `id` is trained when its layer is (BatchNormalization's moving
    /// statistics never are), whatever the layer's flag is now.
    pub fn is_trainable_variable(&self, id: crate::autograd::ParamId) -> bool {
        self.network
            .weight_owners
            .get(id.index())
            .is_none_or(|owner| owner.variable)
    }

    /// Brings the weights' flags in line with the layers' (see the module's documentation).
    pub(super) fn apply_trainable_flags(&mut self) {
        apply_flags(&self.network, &mut self.params);
    }
}
