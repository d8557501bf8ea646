//! [`with_preprocessing`]: a model with preprocessing layers inserted right after its input, the
//! way `--augment` adds [`ImageAugmentation::layers`](super::ImageAugmentation::layers).

use crate::error::{Error, Result};
use crate::layers::{Input, Layer, from_config};
use crate::model::Model;
use serde_json::Value;

/// The config keys that declare a layer's input shape, moved onto an `Input` when the first layer
/// of a stack declares it.
const INPUT_SHAPE_KEYS: &[&str] = &["input_shape", "batch_shape", "batch_input_shape", "shape"];

/// `model` with `layers` inserted right after its input, in order, rebuilt from its config.
///
/// For a model not yet built: the rebuilt one draws its weights anew, and takes its name but not
/// its seed or compile settings (set those after). A `Sequential` stack only, for now: a
/// functional model is an error (call the layers on its `Input` instead).
///
/// ```
/// use strata::data::augment::with_preprocessing;
/// use strata::prelude::*;
///
/// # fn main() -> strata::Result<()> {
/// let mut model = Sequential::new();
/// model.add(Input::new(&[28, 28, 1])).add(Flatten::new()).add(Dense::new(10));
/// let flip: Box<dyn Layer> = Box::new(RandomFlip::new("horizontal"));
/// let model = with_preprocessing(model, vec![flip])?;
/// assert_eq!(model.layers()[1].class_name(), "RandomFlip");
/// # Ok(()) }
/// ```
pub fn with_preprocessing(model: Model, layers: Vec<Box<dyn Layer>>) -> Result<Model> {
    if layers.is_empty() {
        return Ok(model);
    }
    let config = model.config();
    if config["class_name"] != "Sequential" {
        return Err(Error::Usage(format!(
            "preprocessing layers can be inserted into a Sequential model only; '{}' is functional: \
             call the layers on its Input instead",
            model.name()
        )));
    }
    let mut entries = config["config"]["layers"].as_array().cloned().unwrap_or_default();
    let mut rebuilt = Model::new();
    rebuilt.set_name(model.name());
    match entries.first_mut() {
        Some(first) if first["class_name"] == "InputLayer" => {
            rebuilt.add_boxed(from_config("InputLayer", &first["config"])?);
            entries.remove(0);
        }
        Some(first) => {
            let shape = model.layers()[0].declared_input_shape().ok_or_else(|| {
                Error::Usage(format!(
                    "model '{}' declares no input shape, so there is no input to insert preprocessing layers after",
                    model.name()
                ))
            })?;
            rebuilt.add(Input::new(shape));
            if let Value::Object(first_config) = &mut first["config"] {
                INPUT_SHAPE_KEYS.iter().for_each(|key| {
                    first_config.remove(*key);
                });
            }
        }
        None => return Err(Error::Usage(format!("model '{}' has no layers", model.name()))),
    }
    for layer in layers {
        rebuilt.add_boxed(layer);
    }
    for entry in &entries {
        let class = entry["class_name"].as_str().unwrap_or_default();
        rebuilt.add_boxed(from_config(class, &entry["config"])?);
    }
    Ok(rebuilt)
}
