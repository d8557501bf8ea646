//! Keras 3's weights file, `model.save_weights("x.weights.h5")`, loaded into a model strata
//! built (a Rust-built application, or any model of Keras's layers) by [`Model::load_weights`].
//!
//! Keras 3 finds weights by position, not by layer name: the `i`-th weight of the `k`-th layer
//! of class `Conv2D` in Keras's layer order is `layers/conv2d_k/vars/i` (a `.keras` archive's
//! `model.weights.h5` has the same layout). The place of each of the model's weights is the one
//! [`Model::save_keras`] writes it to (`keras_save.rs`); so, as in Keras, layer names do not
//! matter here, the layers' classes, order and shapes do. Every place must hold a weight of the
//! model's shape and the file may hold no other layer weight, else the error names the first
//! mismatch and the model is left as it was.

use super::hdf5::{Dataset, Hdf5File};
use crate::error::{Error, Result};
use crate::model::Model;
use std::collections::HashSet;
use std::path::Path;

/// The group Keras 3 keeps a model's layers under.
const LAYERS: &str = "layers";

/// How deep below [`LAYERS`] a weight may lie (nested models and sub-layers add two levels
/// each); deeper groups are not searched for weights the model lacks.
const MAX_DEPTH: usize = 32;

/// Whether `hdf5` is laid out as Keras 3 writes weights: a `layers` group at the root, and not
/// the legacy `layer_names` attribute.
pub(super) fn is_keras3_layout(hdf5: &Hdf5File) -> Result<bool, String> {
    if hdf5.attribute_strings(hdf5.root(), "layer_names")?.is_some() {
        return Ok(false);
    }
    Ok(hdf5.lookup(LAYERS)?.is_some())
}

/// Loads the Keras 3 weights file `hdf5` (read from `path`) into the built `model`.
pub(super) fn load_into(model: &mut Model, hdf5: &Hdf5File, path: &Path) -> Result<()> {
    let fail = |reason: String| Error::file(path, reason);
    let cannot = |e: Error| fail(format!("is a Keras 3 weights file, which this model cannot take: {e}"));
    let mut places = super::keras_save::keras_weight_paths(model).map_err(cannot)?;
    // A model with nested models takes Keras's file of the same nesting (its nested models'
    // layers under their own groups), and the flat one strata wrote before it kept the nesting.
    if let Some(flat) = super::keras_save::flat_keras_weight_paths(model).map_err(cannot)?
        && let Some(first) = places.iter().flat_map(|(_, paths)| paths).next()
        && hdf5.lookup(first).map_err(&fail)?.is_none()
        && let Some(first) = flat.iter().flat_map(|(_, paths)| paths).next()
        && hdf5.lookup(first).map_err(&fail)?.is_some()
    {
        places = flat;
    }
    // Every weight lies in the file once: places that alias one dataset again and again may not
    // make reading allocate more than the file's size.
    let mut budget = hdf5.size();
    let mut loaded: Vec<(crate::autograd::ParamId, Dataset)> = Vec::new();
    let mut used = HashSet::new();
    // Per class, how many layers of it came before: to say "the 3rd Conv2D" in errors.
    let mut seen: Vec<(&str, usize)> = Vec::new();
    for (index, paths) in places {
        let layer = &model.layers()[index];
        let class = layer.class_name();
        let ordinal = match seen.iter_mut().find(|(c, _)| *c == class) {
            Some((_, count)) => {
                *count += 1;
                *count
            }
            None => {
                seen.push((class, 1));
                1
            }
        };
        for (id, place) in layer.params().into_iter().zip(paths) {
            let weight = model.params().name(id);
            let expected = model.params().value(id).shape();
            let which = || {
                format!(
                    "weight '{weight}' of layer '{}' (the {} {class} in Keras's layer order)",
                    layer.name(),
                    ordinal_text(ordinal)
                )
            };
            let address = hdf5.lookup(&place).map_err(&fail)?.ok_or_else(|| {
                fail(format!(
                    "has no '{place}', where Keras 3 keeps the {}: the file is of another architecture",
                    which()
                ))
            })?;
            let dataset = hdf5.read_f32(address).map_err(|e| fail(format!("{place}: {e}")))?;
            budget = budget
                .checked_sub(dataset.values.len() * 4)
                .ok_or_else(|| fail("the weights add up to more bytes than the file holds".into()))?;
            if dataset.shape != expected {
                return Err(fail(format!(
                    "holds '{place}' of shape {:?} for the {}, which has shape {expected:?}",
                    dataset.shape,
                    which()
                )));
            }
            used.insert(place);
            loaded.push((id, dataset));
        }
    }
    if let Some(extra) = first_unused(hdf5, &used).map_err(&fail)? {
        return Err(fail(format!(
            "holds '{extra}', a weight no layer of model '{}' takes: the file is of another architecture",
            model.name()
        )));
    }
    for (id, dataset) in loaded {
        model
            .params_mut()
            .value_mut(id)
            .data_mut()
            .copy_from_slice(&dataset.values);
    }
    Ok(())
}

/// `1st`, `2nd`, `3rd`, `4th`, ..., `11th`, `21st`.
fn ordinal_text(n: usize) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The first weight below [`LAYERS`] (a member of a `vars` group) that is not in `used`, in the
/// file's name order; groups are searched breadth first, each once (links may repeat them).
fn first_unused(hdf5: &Hdf5File, used: &HashSet<String>) -> Result<Option<String>, String> {
    let Some(layers) = hdf5.lookup(LAYERS)? else {
        return Ok(None);
    };
    let mut visited = HashSet::from([layers]);
    let mut queue = std::collections::VecDeque::from([(LAYERS.to_string(), layers, 0usize)]);
    while let Some((path, group, depth)) = queue.pop_front() {
        // Only groups can hold weights: a dataset outside a `vars` group is no layer weight.
        let members = match hdf5.members(group) {
            Ok(members) => members,
            Err(_) if depth > 0 => continue,
            Err(e) => return Err(e),
        };
        for (name, address) in members {
            let member = format!("{path}/{name}");
            if path.ends_with("/vars") {
                if !used.contains(&member) {
                    return Ok(Some(member));
                }
            } else if depth < MAX_DEPTH && visited.insert(address) {
                queue.push_back((member, address, depth + 1));
            }
        }
    }
    Ok(None)
}

#[cfg(test)]
mod tests {
    use super::ordinal_text;

    #[test]
    fn ordinals_read_as_english() {
        let texts: Vec<String> = [1, 2, 3, 4, 11, 12, 13, 21, 22, 101, 111].map(ordinal_text).to_vec();
        assert_eq!(
            texts,
            [
                "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "101st", "111th"
            ]
        );
    }
}
