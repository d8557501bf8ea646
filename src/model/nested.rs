//! Models used as layers of another, as Keras's `Sequential([base, GlobalAveragePooling2D(),
//! Dense(5)])` saves them. strata runs one flat graph (the importer opens nested models up:
//! `io/keras_nested.rs`), and keeps what each nested model was, its Keras name and class and
//! which layers were its, so that the transfer-learning recipe can still address the base by
//! its name: Keras's `model.get_layer("mobilenetv2_1.00_224").trainable = False` is
//! `model.set_nested_trainable("mobilenetv2_1.00_224", false)`.
//!
//! The record is by layer names, so it survives rebuilding and cutting the model (layers no
//! longer there are left out of it), and is saved in the model's config (`nested_models`).

use super::Model;
use crate::error::{Error, Result};
use serde_json::{Value, json};

/// A model used as a layer: its name and class in the file it came from, and its layers.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NestedModel {
    name: String,
    class_name: String,
    layers: Vec<String>,
}

impl NestedModel {
    /// The nested model `name` of Keras class `class_name` (`Functional`, `Sequential`), made of
    /// the layers named `layers` (nested models inside it included).
    pub fn new(name: impl Into<String>, class_name: impl Into<String>, layers: Vec<String>) -> Self {
        NestedModel {
            name: name.into(),
            class_name: class_name.into(),
            layers,
        }
    }

    /// Its Keras name, e.g. `mobilenetv2_1.00_224`.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its Keras class: `Functional` or `Sequential`.
    pub fn class_name(&self) -> &str {
        &self.class_name
    }

    /// The names of its layers, in the outer model's layer order.
    pub fn layer_names(&self) -> &[String] {
        &self.layers
    }

    /// The record as the model config keeps it.
    pub(crate) fn to_json(&self) -> Value {
        json!({"name": self.name, "class_name": self.class_name, "layers": self.layers})
    }

    /// The records of a config's `nested_models` list; a malformed one is an error naming it.
    pub(crate) fn list_from_json(value: &Value) -> Result<Vec<NestedModel>> {
        let bad = |why: &str| Error::Data(format!("\"nested_models\": {why}"));
        let items = value.as_array().ok_or_else(|| bad("must be a list"))?;
        items
            .iter()
            .map(|item| {
                let text = |key: &str| {
                    item.get(key)
                        .and_then(Value::as_str)
                        .map(str::to_string)
                        .ok_or_else(|| bad(&format!("each entry needs \"{key}\", a string")))
                };
                let layers = item
                    .get("layers")
                    .and_then(Value::as_array)
                    .and_then(|names| names.iter().map(|n| n.as_str().map(str::to_string)).collect())
                    .ok_or_else(|| bad("each entry needs \"layers\", a list of layer names"))?;
                Ok(NestedModel::new(text("name")?, text("class_name")?, layers))
            })
            .collect()
    }
}

impl Model {
    /// The models that were layers of this one (outermost first), as imported from a Keras file.
    pub fn nested_models(&self) -> &[NestedModel] {
        &self.network.nested
    }

    /// Records which layers were nested models. Layer names the model does not have are left
    /// out of the records, and a record left without layers is dropped.
    pub fn set_nested_models(&mut self, nested: Vec<NestedModel>) -> &mut Self {
        self.network.nested = nested;
        self.prune_nested_models();
        self
    }

    /// The nested model named `name`; an unknown name is an error listing the nested models.
    pub fn nested_model(&self, name: &str) -> Result<&NestedModel> {
        self.network.nested.iter().find(|n| n.name == name).ok_or_else(|| {
            let names: Vec<&str> = self.network.nested.iter().map(|n| n.name.as_str()).collect();
            Error::Usage(match names.is_empty() {
                true => format!("model '{}' has no nested model '{name}': it has none", self.name),
                false => format!(
                    "model '{}' has no nested model '{name}'; its nested models are: {}",
                    self.name,
                    names.join(", ")
                ),
            })
        })
    }

    /// Freezes (`false`) or unfreezes every layer of the nested model `name`: Keras's
    /// `model.get_layer(name).trainable = False` on a base model used as a layer. Takes effect
    /// at the next `compile`, as every change of `trainable` does.
    pub fn set_nested_trainable(&mut self, name: &str, trainable: bool) -> Result<&mut Self> {
        let nested = self.nested_model(name)?.layers.clone();
        for layer in self
            .network
            .layers
            .iter_mut()
            .filter(|l| nested.iter().any(|n| n == l.name()))
        {
            layer.set_trainable(trainable);
        }
        Ok(self)
    }

    /// Whether any layer of the nested model `name` is trainable.
    pub fn is_nested_trainable(&self, name: &str) -> Result<bool> {
        let nested = self.nested_model(name)?;
        Ok(self
            .network
            .layers
            .iter()
            .any(|l| !l.is_input() && l.is_trainable() && nested.layers.iter().any(|n| n == l.name())))
    }

    /// Drops from the records the layers the model no longer has (after a cut).
    pub(super) fn prune_nested_models(&mut self) {
        let names: std::collections::HashSet<&str> = self.network.layers.iter().map(|l| l.name()).collect();
        for nested in &mut self.network.nested {
            nested.layers.retain(|n| names.contains(n.as_str()));
        }
        self.network.nested.retain(|n| !n.layers.is_empty());
    }

    /// The `nested_models` list of the model's config, `None` without nested models.
    pub(super) fn nested_models_json(&self) -> Option<Value> {
        (!self.network.nested.is_empty())
            .then(|| Value::Array(self.network.nested.iter().map(NestedModel::to_json).collect()))
    }
}
