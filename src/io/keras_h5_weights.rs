//! The weights of a legacy Keras `.h5` file, and loading them into a built model.
//!
//! Layout (both `model.save("m.h5")`'s `model_weights` group and `save_weights("w.h5")`'s root):
//! the attribute `layer_names` lists every layer in Keras's order; each layer's group has the
//! attribute `weight_names`, paths of its datasets relative to the group, in the layer's weight
//! order (`dense/kernel:0` in tf.keras 2.x, `mlp/dense/kernel` in Keras 3). Keras splits an
//! attribute too large for one HDF5 object header into `layer_names0`, `layer_names1`, ...
//!
//! Keras 3's own weights file (`save_weights("x.weights.h5")`, laid out by position, not by
//! name) is read by `keras_weights_file.rs`.
//!
//! A nested model is one group holding all its layers' weights; strata opens nested models up,
//! so such a group's weights are handed to the layers whose names their paths contain
//! (`inner/dense_2/kernel` → `dense_2`), each layer keeping its weights' order.

use super::hdf5::{Dataset, Hdf5File};
use crate::error::{Error, Result};
use crate::model::Model;
use std::collections::HashMap;
use std::path::Path;

/// One group of stored weights: the layer (or nested model) it is named after, and its
/// weights as (name, values) in Keras's order.
pub(super) struct StoredLayer {
    pub name: String,
    pub weights: Vec<(String, Dataset)>,
}

/// The layers listed in `group`'s `layer_names`, with their weights.
pub(super) fn read(hdf5: &Hdf5File, group: u64) -> Result<Vec<StoredLayer>, String> {
    let layer_names = split_attribute(hdf5, group, "layer_names")?.ok_or("no layer_names attribute")?;
    let mut layers = Vec::with_capacity(layer_names.len());
    // Every weight lies in the file once: weights adding up to more than it (names listing one
    // dataset again and again) are refused, so reading allocates no more than the file's size.
    let mut budget = hdf5.size();
    // The group's members read once: looking each name up would read them once per layer.
    let members: HashMap<String, u64> = hdf5.members(group)?.into_iter().collect();
    for name in layer_names {
        let layer = match members.get(&name) {
            Some(&layer) => Some(layer),
            None if name.contains('/') => hdf5.lookup_from(group, &name)?,
            None => None,
        };
        let layer = layer.ok_or_else(|| format!("layer_names lists '{name}', which has no group"))?;
        let weight_names = split_attribute(hdf5, layer, "weight_names")?.unwrap_or_default();
        let mut weights = Vec::with_capacity(weight_names.len());
        for weight in weight_names {
            let address = hdf5
                .lookup_from(layer, &weight)?
                .ok_or_else(|| format!("layer '{name}' lists the weight '{weight}', which is not in the file"))?;
            let values = hdf5
                .read_f32(address)
                .map_err(|e| format!("weight '{weight}' of layer '{name}': {e}"))?;
            budget = budget
                .checked_sub(dataset_bytes(&values))
                .ok_or("the weights listed add up to more bytes than the file holds")?;
            weights.push((weight, values));
        }
        layers.push(StoredLayer { name, weights });
    }
    Ok(layers)
}

/// What a weight read counts against the file's size: its values, and a dataset's least
/// header, so that empty datasets listed over and over (each listing a few bytes, all naming
/// one dataset) use up the budget too.
pub(super) fn dataset_bytes(dataset: &Dataset) -> usize {
    dataset
        .values
        .len()
        .saturating_mul(4)
        .saturating_add(DATASET_HEADER_BYTES)
}

/// The fewest bytes a dataset takes in a file: its object header's prefix and its dataspace,
/// datatype and layout messages.
const DATASET_HEADER_BYTES: usize = 64;

/// A list attribute as Keras writes it: whole, or split over `NAME0`, `NAME1`, ...
fn split_attribute(hdf5: &Hdf5File, object: u64, name: &str) -> Result<Option<Vec<String>>, String> {
    if let Some(whole) = hdf5.attribute_strings(object, name)? {
        return Ok(Some(whole));
    }
    hdf5.numbered_attribute_strings(object, name)
}

/// The stored weights of each of `layers` (names), by name: a group named after a layer is
/// that layer's; the weights of any other group (a nested model) go to the layer named in each
/// weight's path, the last such name before the weight's own. Groups without weights are
/// skipped; a weight that belongs to no layer, or a layer given weights twice, is an error.
pub(super) fn by_layer(stored: Vec<StoredLayer>, layers: &[&str]) -> Result<HashMap<String, Vec<Dataset>>, String> {
    let mut owned: HashMap<String, Vec<Dataset>> = HashMap::new();
    let mut filled_by: HashMap<String, String> = HashMap::new();
    for group in stored.into_iter().filter(|g| !g.weights.is_empty()) {
        let whole = layers.contains(&group.name.as_str());
        for (weight, values) in group.weights {
            let owner = match whole {
                true => group.name.clone(),
                false => owner_of(&weight, layers).ok_or_else(|| {
                    format!(
                        "the weight '{weight}' of '{}' belongs to none of the model's layers",
                        group.name
                    )
                })?,
            };
            let first = filled_by.entry(owner.clone()).or_insert_with(|| group.name.clone());
            if *first != group.name {
                return Err(format!(
                    "both '{first}' and '{}' hold weights for the layer '{owner}'",
                    group.name
                ));
            }
            owned.entry(owner).or_default().push(values);
        }
    }
    Ok(owned)
}

/// The most slash-separated parts a layer name is looked for in (tf.keras 2's longest are three:
/// `expanded_conv_1/squeeze_excite/Conv`).
const MAX_NAME_PARTS: usize = 8;

/// The layer a weight path names: the last run of components before the weight's own name that
/// is one of `layers` (`outer/inner/dense_2/kernel:0` → `dense_2`), the longest run where
/// several end at the same place, as tf.keras 2 names layers with slashes
/// (`expanded_conv/depthwise/depthwise_kernel:0` → `expanded_conv/depthwise`).
fn owner_of(weight: &str, layers: &[&str]) -> Option<String> {
    let parts: Vec<&str> = weight.split('/').collect();
    let scopes = &parts[..parts.len().saturating_sub(1)];
    (1..=scopes.len()).rev().find_map(|end| {
        // Runs of at most MAX_NAME_PARTS components: a hostile path of many may cost no more.
        (end.saturating_sub(MAX_NAME_PARTS)..end)
            .map(|start| scopes[start..end].join("/"))
            .find(|run| layers.contains(&run.as_str()))
    })
}

/// Loads the weights of a legacy `.h5` file (`save_weights("w.h5")`, or a whole model's
/// `model_weights`) into the built `model` (a Keras 3 `x.weights.h5` goes to
/// `keras_weights_file.rs`). As Keras, layers with weights are matched in Keras's layer order;
/// when every stored layer's name is a layer of the model they are matched by name instead
/// (which also places the weights of nested models). Each layer must get exactly its weights,
/// with its shapes; an error names the layer and both shapes.
pub(super) fn load_into(model: &mut Model, bytes: &[u8], path: &Path) -> Result<()> {
    let fail = |reason: String| Error::file(path, reason);
    let hdf5 = Hdf5File::parse(bytes).map_err(&fail)?;
    if super::keras_weights_file::is_keras3_layout(&hdf5).map_err(&fail)? {
        return super::keras_weights_file::load_into(model, &hdf5, path);
    }
    let group = match hdf5.attribute_strings(hdf5.root(), "layer_names").map_err(&fail)? {
        Some(_) => hdf5.root(),
        None => hdf5
            .lookup("model_weights")
            .map_err(&fail)?
            .ok_or_else(|| fail("holds neither layer_names nor model_weights: not a Keras .h5 weights file".into()))?,
    };
    let stored = read(&hdf5, group).map_err(&fail)?;
    // Matched in order, the layers go in Keras's order, which a functional model's file lists
    // them in (by depth from the outputs: a ResNet block's main path before its shortcut, an
    // Inception block's deepest branch first), whatever order strata built them in.
    let order = match model.config()["class_name"] == "Functional" {
        true => super::keras_save::keras_layer_order(model),
        false => (0..model.layers().len()).collect(),
    };
    let targets: Vec<(String, Vec<crate::autograd::ParamId>)> = order
        .iter()
        .map(|&i| &model.layers()[i])
        .filter(|l| !l.is_input() && !l.params().is_empty())
        .map(|l| (l.name().to_string(), l.params()))
        .collect();
    let names: Vec<&str> = targets.iter().map(|(n, _)| n.as_str()).collect();
    let stored: Vec<StoredLayer> = stored.into_iter().filter(|g| !g.weights.is_empty()).collect();
    let by_name = stored
        .iter()
        .all(|g| names.contains(&g.name.as_str()) || g.weights.iter().all(|(w, _)| owner_of(w, &names).is_some()));
    let mut assigned: Vec<(String, Vec<Dataset>)> = if by_name {
        let mut owned = by_layer(stored, &names).map_err(&fail)?;
        names
            .iter()
            .map(|n| (n.to_string(), owned.remove(*n).unwrap_or_default()))
            .collect()
    } else if stored.len() == targets.len() {
        stored
            .into_iter()
            .map(|g| (g.name, g.weights.into_iter().map(|(_, d)| d).collect()))
            .collect()
    } else {
        let listed: Vec<&str> = stored.iter().map(|g| g.name.as_str()).collect();
        return Err(fail(format!(
            "holds weights for {} layers ({}); the model has {} layers with weights ({})",
            listed.len(),
            listed.join(", "),
            names.len(),
            names.join(", ")
        )));
    };
    check_and_copy(model, &targets, &mut assigned).map_err(fail)
}

/// Checks every layer's weights (count and shapes) before copying any, so a mismatch leaves
/// the model as it was.
fn check_and_copy(
    model: &mut Model,
    targets: &[(String, Vec<crate::autograd::ParamId>)],
    assigned: &mut [(String, Vec<Dataset>)],
) -> Result<(), String> {
    for ((layer, ids), (stored_name, weights)) in targets.iter().zip(assigned.iter()) {
        let from = match stored_name == layer {
            true => String::new(),
            false => format!(" (the file's '{stored_name}')"),
        };
        if ids.len() != weights.len() {
            return Err(format!(
                "layer '{layer}'{from}: the file holds {} weights, the model's layer has {}",
                weights.len(),
                ids.len()
            ));
        }
        for (id, weight) in ids.iter().zip(weights.iter()) {
            let expected = model.params().value(*id).shape();
            if weight.shape != expected {
                return Err(format!(
                    "layer '{layer}'{from}: weight '{}' has shape {:?} in the file, the model expects {expected:?}",
                    model.params().name(*id),
                    weight.shape
                ));
            }
        }
    }
    for ((_, ids), (_, weights)) in targets.iter().zip(assigned.iter_mut()) {
        for (id, weight) in ids.iter().zip(weights.drain(..)) {
            model
                .params_mut()
                .value_mut(*id)
                .data_mut()
                .copy_from_slice(&weight.values);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::hdf5::writer::{Attribute, Group};

    /// `layer_names` split over 40,000 attributes: each part used to re-read every attribute
    /// of the header (quadratic: minutes); the header is now read once.
    #[test]
    fn a_list_split_over_many_attributes_is_read_in_one_pass() {
        let mut root = Group::new();
        for i in 0..40_000 {
            root.set_attribute(&format!("layer_names{i}"), Attribute::Texts(vec![format!("L{i}")]));
        }
        let bytes = root.to_bytes().unwrap();
        let hdf5 = Hdf5File::parse(&bytes).unwrap();
        let error = read(&hdf5, hdf5.root()).err().unwrap();
        assert!(error.contains("layer_names lists 'L0', which has no group"), "{error}");
    }

    /// Empty datasets count against the file's size too: a layer listing one empty weight over
    /// and over runs out of budget instead of reading without end.
    #[test]
    fn empty_weights_listed_again_and_again_use_up_the_budget() {
        let mut root = Group::new();
        root.add_array("dense/empty", &[0], &[]).unwrap();
        let listed = vec!["empty".to_string(); 12_000];
        root.group("dense")
            .unwrap()
            .set_attribute("weight_names", Attribute::Texts(listed));
        root.set_attribute("layer_names", Attribute::Texts(vec!["dense".into()]));
        let bytes = root.to_bytes().unwrap();
        let hdf5 = Hdf5File::parse(&bytes).unwrap();
        let error = read(&hdf5, hdf5.root()).err().unwrap();
        assert!(error.contains("more bytes than the file holds"), "{error}");
    }
}
