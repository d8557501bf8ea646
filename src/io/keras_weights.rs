//! The weights of an imported `.keras` archive: where Keras keeps each layer's weights in
//! `model.weights.h5`, and how they are checked against strata's layers.
//!
//! Keras names weights by position, not by name: the `i`-th weight of the `k`-th layer of
//! class `Dense` is `layers/dense_k/vars/i` (`dense`, `dense_1`, `dense_2`, ... counted per class
//! in layer order; a nested model's layers under its group: `keras_nested.rs`). strata declares each layer's weights in
//! Keras's order and layout (`kernel (..window, in, out)` then `bias (out)`), so `vars/i` is the
//! layer's `i`-th weight.

use super::hdf5::{Dataset, Hdf5File};
use super::keras_layer::KerasLayer;
use crate::autograd::ParamStore;
use crate::layers;
use crate::model::{Model, Source};
use crate::rng::Rng;
use serde_json::Value;
use std::collections::HashMap;

/// Each non-input layer's stored weights, in Keras's order (`vars/0`, `vars/1`, ...), from the
/// group the layer's config position gives it (see `keras_nested.rs`).
pub(super) fn read(hdf5: &Hdf5File, layers: &[KerasLayer]) -> Result<Vec<Vec<Dataset>>, String> {
    let mut stored = Vec::new();
    // Every weight lies in the file once: groups that alias one dataset again and again may not
    // make reading allocate more than the file's size.
    let mut budget = hdf5.size();
    for layer in layers.iter().filter(|l| l.class != "InputLayer") {
        let group = layer.group.to_string();
        let mut weights = read_group(hdf5, &group, &mut budget)?;
        // Recurrent layers keep their weights in their cell: `layers/lstm/cell/vars/0`.
        if weights.is_empty() {
            weights = read_group(hdf5, &group.replace("/vars", "/cell/vars"), &mut budget)?;
        }
        // Layers made of Dense sub-layers keep their weights in those, in strata's order.
        if weights.is_empty() {
            for part in sub_layers(layer.class) {
                weights.extend(read_group(
                    hdf5,
                    &group.replace("/vars", &format!("/{part}/vars")),
                    &mut budget,
                )?);
            }
        }
        stored.push(weights);
    }
    Ok(stored)
}

/// The sub-layers whose groups hold a layer's weights, in the order strata declares them:
/// MultiHeadAttention's `query_dense/vars/0` (kernel), `query_dense/vars/1` (bias), `key_dense`...;
/// a Bidirectional's recurrent layers' cells, forward first; a TimeDistributed's layer (its
/// cell, if it is a recurrent layer: only one of the two groups exists).
fn sub_layers(class: &str) -> &'static [&'static str] {
    match class {
        "MultiHeadAttention" => &["query_dense", "key_dense", "value_dense", "output_dense"],
        "Bidirectional" => &["forward_layer/cell", "backward_layer/cell"],
        "TimeDistributed" => &["layer", "layer/cell"],
        _ => &[],
    }
}

/// The datasets `vars/0`, `vars/1`, ... of `group` (none when it is absent), counted against
/// `budget`, the file's bytes not yet read.
fn read_group(hdf5: &Hdf5File, group: &str, budget: &mut usize) -> Result<Vec<Dataset>, String> {
    let members = match hdf5.lookup(group)? {
        Some(vars) => hdf5.members(vars)?,
        None => return Ok(Vec::new()),
    };
    let count = members.len();
    let by_name: HashMap<String, u64> = members.into_iter().collect();
    let mut weights = Vec::new();
    for i in 0..count {
        let address = by_name
            .get(&i.to_string())
            .ok_or_else(|| format!("{group} holds {count} weights but no '{i}'"))?;
        let dataset = hdf5.read_f32(*address).map_err(|e| format!("{group}/{i}: {e}"))?;
        *budget = budget
            .checked_sub(super::keras_h5_weights::dataset_bytes(&dataset))
            .ok_or("the weights add up to more bytes than the file holds")?;
        weights.push(dataset);
    }
    Ok(weights)
}

/// Builds each layer on its own, in the order of the model's calls (`model` as parsed, not
/// built), and checks that it has exactly the stored weights. Before a layer allocates
/// anything, its kernel's shape (which the config and the input shape decide, and a corrupt
/// config could make huge) must be the stored kernel's: so no layer allocates more than the
/// file holds. A layer called several times (shared) is checked at its first call.
pub(super) fn check_shapes(
    layers: &[KerasLayer],
    model: &Model,
    input_shapes: &[Vec<usize>],
    stored: &[Vec<Dataset>],
) -> Result<(), String> {
    let mut rng = Rng::new(0);
    // Stored weights are listed per non-input layer, in layer order.
    let mut stored_index = Vec::with_capacity(layers.len());
    let mut next = 0;
    for layer in layers {
        stored_index.push((layer.class != "InputLayer").then(|| {
            next += 1;
            next - 1
        }));
    }
    let mut shapes: Vec<Vec<usize>> = Vec::with_capacity(model.graph_calls().len());
    let mut first_output: Vec<Option<Vec<Vec<usize>>>> = vec![None; layers.len()];
    for call in model.graph_calls() {
        let inputs: Vec<Vec<usize>> = call
            .inputs
            .iter()
            .map(|source| match *source {
                Source::ModelInput(i) => input_shapes
                    .get(i)
                    .cloned()
                    .ok_or("the model has more inputs than shapes"),
                Source::Output(o) => Ok(shapes[o].clone()),
            })
            .collect::<Result<_, _>>()?;
        let (layer, index) = match (layers.get(call.layer), stored_index.get(call.layer)) {
            (Some(layer), Some(index)) => (layer, *index),
            _ => return Err("the model's layers do not match config.json's".into()),
        };
        let output = match (index, &first_output[call.layer]) {
            (None, _) => vec![inputs.first().cloned().ok_or("an input layer without a shape")?],
            (Some(_), Some(output)) => output.clone(),
            (Some(index), None) => {
                let weights = stored.get(index).ok_or("fewer stored layers than layers")?;
                let output = check_layer_weights(layer, &inputs, weights, &mut rng)?;
                first_output[call.layer] = Some(output.clone());
                output
            }
        };
        shapes.extend(output);
    }
    Ok(())
}

/// Checks one layer's stored weights against its config and input shapes, then builds it on a
/// scratch store to compare its weights' shapes; returns its output shapes.
fn check_layer_weights(
    layer: &KerasLayer,
    inputs: &[Vec<usize>],
    weights: &[Dataset],
    rng: &mut Rng,
) -> Result<Vec<Vec<usize>>, String> {
    let name = layer.config.get("name").and_then(Value::as_str).unwrap_or("(unnamed)");
    let describe = || format!("{} layer '{name}'", layer.class);
    let has_kernel = layer
        .config
        .get("units")
        .or_else(|| layer.config.get("filters"))
        .is_some();
    let mut built =
        layers::from_config(layer.class, layer.config).map_err(|e| format!("{}: {}", describe(), e.reason()))?;
    match (weights.first(), inputs) {
        // Several inputs or kernels (attention layers), or weights shaped by the input (PReLU's
        // slopes): every shape the config and the input shapes give, compared before anything
        // is allocated.
        _ if !sub_layers(layer.class).is_empty() || inputs.len() > 1 || layer.class == "PReLU" => {
            let expected = built.param_shapes(inputs).map_err(|e| format!("{}: {e}", describe()))?;
            let stored: Vec<&[usize]> = weights.iter().map(|w| w.shape.as_slice()).collect();
            let expected: Vec<&[usize]> = expected.iter().map(|p| p.shape.as_slice()).collect();
            if stored != expected {
                return Err(format!(
                    "{} holds weights of shapes {}; its config and inputs give {}",
                    describe(),
                    shape_list(&stored),
                    shape_list(&expected)
                ));
            }
        }
        (Some(kernel), [shape]) => {
            check_kernel(layer, shape, &kernel.shape).map_err(|e| format!("{}: {e}", describe()))?
        }
        (Some(_), _) => return Err(format!("{} holds weights but reads no input", describe())),
        (None, _) if has_kernel => return Err(format!("holds no weights for {}", describe())),
        (None, _) => {}
    }
    let mut params = ParamStore::new();
    let output = built
        .output_shapes(inputs)
        .and_then(|output| built.build(inputs, &mut params, rng).map(|_| output))
        .map_err(|e| format!("{}: {e}", describe()))?;
    let ids = built.params();
    if ids.len() != weights.len() {
        return Err(format!(
            "holds {} weights for {}; strata's layer has {}",
            weights.len(),
            describe(),
            ids.len()
        ));
    }
    for (i, (id, weight)) in ids.into_iter().zip(weights).enumerate() {
        let expected = params.value(id).shape();
        if weight.shape != expected {
            return Err(format!(
                "weight {i} of {} has shape {:?}; strata's '{}' has {expected:?}",
                describe(),
                weight.shape,
                params.name(id)
            ));
        }
    }
    Ok(output)
}

/// Shapes as Keras prints them: `(16, 2, 8), (2, 8)`.
fn shape_list(shapes: &[&[usize]]) -> String {
    let tuples: Vec<String> = shapes
        .iter()
        .map(|shape| {
            let dims: Vec<String> = shape.iter().map(usize::to_string).collect();
            match dims.len() {
                1 => format!("({},)", dims[0]),
                _ => format!("({})", dims.join(", ")),
            }
        })
        .collect();
    tuples.join(", ")
}

/// A Keras kernel is `(..kernel_size, input channels, units or filters)` (a `Conv2DTranspose`'s
/// `(..kernel_size, filters, input channels)`), input channels being the input's last axis
/// (channels last).
fn check_kernel(layer: &KerasLayer, input_shape: &[usize], kernel: &[usize]) -> Result<(), String> {
    let config = layer.config;
    if layer.class == "Embedding" {
        let size = |key: &str| config.get(key).and_then(Value::as_u64);
        return match (kernel, size("input_dim"), size("output_dim")) {
            ([rows, width], Some(r), Some(w)) if *rows as u64 == r && *width as u64 == w => Ok(()),
            _ => Err(format!(
                "config says input_dim {} and output_dim {}, its stored table is {kernel:?}",
                config.get("input_dim").unwrap_or(&Value::Null),
                config.get("output_dim").unwrap_or(&Value::Null)
            )),
        };
    }
    // Recurrent kernels hold every gate: (features, gates·units).
    let gates = match layer.class {
        "LSTM" => 4,
        "GRU" => 3,
        _ => 1,
    };
    // A depthwise kernel (DepthwiseConv2D's, SeparableConv2D's first) is (.., C, depth_multiplier).
    let depth_multiplier = matches!(layer.class, "DepthwiseConv2D" | "SeparableConv2D")
        .then(|| config.get("depth_multiplier").cloned().unwrap_or(Value::from(1)));
    let outputs = depth_multiplier
        .as_ref()
        .or_else(|| config.get("units").or_else(|| config.get("filters")));
    let Some(outputs) = outputs else {
        // Normalization layers hold (C,) vectors, C being the input's last axis.
        if matches!(
            layer.class,
            "BatchNormalization" | "LayerNormalization" | "RMSNormalization" | "GroupNormalization" | "Normalization"
        ) {
            let axis = match config.get("axis") {
                Some(Value::Array(items)) if items.len() == 1 => items[0].as_i64(),
                Some(other) => other.as_i64(),
                None => Some(-1),
            };
            if axis.is_some_and(|axis| axis != -1 && axis != input_shape.len() as i64) {
                return Err(format!(
                    "it normalizes axis {} (Keras counts the batch as axis 0) of inputs of shape {input_shape:?}; strata \
                     normalizes the last axis only (axis=-1)",
                    config.get("axis").unwrap_or(&Value::Null)
                ));
            }
            return match (kernel, input_shape.last()) {
                ([c], Some(last)) if c == last => Ok(()),
                _ => Err(format!(
                    "its input has shape {input_shape:?}, its stored weight {kernel:?} is not one value per channel"
                )),
            };
        }
        return Err("strata does not know this layer's weight layout".into());
    };
    let [window @ .., before_last, last] = kernel else {
        return Err(format!("its stored kernel has shape {kernel:?}, not a kernel's"));
    };
    // A transposed convolution's kernel is (.., filters, input channels): the other way round.
    let (inputs, units) = if layer.class == "Conv2DTranspose" {
        (last, before_last)
    } else {
        (before_last, last)
    };
    if outputs.as_u64().map(|u| u * gates) != Some(*units as u64) {
        return Err(format!(
            "config says {outputs} outputs, its stored kernel {kernel:?} has {units}"
        ));
    }
    if input_shape.last() != Some(inputs) {
        return Err(format!(
            "its input has shape {input_shape:?}, its stored kernel {kernel:?} expects {inputs} channels"
        ));
    }
    let sizes: Option<Vec<u64>> = match config.get("kernel_size") {
        None => Some(Vec::new()),
        Some(Value::Array(items)) => items.iter().map(Value::as_u64).collect(),
        Some(size) => size.as_u64().map(|n| vec![n; window.len()]),
    };
    if sizes != Some(window.iter().map(|&w| w as u64).collect()) {
        return Err(format!(
            "config says kernel_size {}, its stored kernel has {window:?}",
            config.get("kernel_size").unwrap_or(&Value::Null)
        ));
    }
    Ok(())
}

/// Copies the stored weights into the built model's layers, in order.
pub(super) fn assign(model: &mut Model, stored: Vec<Vec<Dataset>>) -> Result<(), String> {
    let ids: Vec<_> = model
        .layers()
        .iter()
        .filter(|l| !l.is_input())
        .map(|l| l.params())
        .collect();
    for (layer_ids, weights) in ids.into_iter().zip(stored) {
        for (id, weight) in layer_ids.into_iter().zip(weights) {
            if model.params().value(id).shape() != weight.shape {
                return Err(format!(
                    "weight '{}' changed shape between checks",
                    model.params().name(id)
                ));
            }
            model
                .params_mut()
                .value_mut(id)
                .data_mut()
                .copy_from_slice(&weight.values);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::io::hdf5::writer::Group;

    /// 30,000 empty weights `vars/0`, `vars/1`, ...: each was found by a scan of all the
    /// members (quadratic), and being empty, never counted against the file's size.
    #[test]
    fn many_empty_weights_are_found_by_name_and_counted() {
        let mut root = Group::new();
        for i in 0..30_000 {
            root.add_array(&format!("layers/dense/vars/{i}"), &[0], &[]).unwrap();
        }
        let bytes = root.to_bytes().unwrap();
        let hdf5 = Hdf5File::parse(&bytes).unwrap();
        let mut budget = hdf5.size();
        assert_eq!(
            read_group(&hdf5, "layers/dense/vars", &mut budget).unwrap().len(),
            30_000
        );
        let mut budget = 64 * 100;
        let error = read_group(&hdf5, "layers/dense/vars", &mut budget).unwrap_err();
        assert!(error.contains("more bytes than the file holds"), "{error}");
    }
}
