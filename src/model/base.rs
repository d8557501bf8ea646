//! A trained model as the base of another, as Keras's transfer-learning recipe does it:
//! `Model(base.input, base.get_layer(name).output)` is [`Model::truncate_after`], and the new
//! head is added with `add` (Keras's `Sequential([base, ...])`). Rebuilding keeps the weights
//! of the layers that were built, so the base stays pre-trained.

use super::{Call, Model, Source};
use crate::autograd::ParamStore;
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Copies into `new` the value of every weight `old` holds under the same name and shape: the
/// layers that were built keep their weights when a model is rebuilt with more layers.
pub(super) fn keep_built_weights(old: &ParamStore, new: &mut ParamStore) {
    if old.is_empty() {
        return;
    }
    let by_name: HashMap<&str, _> = old.ids().map(|id| (old.name(id), id)).collect();
    for id in new.ids() {
        if let Some(&from) = by_name.get(new.name(id))
            && old.value(from).shape() == new.value(id).shape()
        {
            *new.value_mut(id) = old.value(from).clone();
        }
    }
}

impl Model {
    /// Keeps the layers up to `name` and what they read, and makes `name`'s output the model's
    /// output: Keras's `Model(base.input, base.get_layer(name).output)`, how a classifier's top
    /// is taken off before a new head is added. Kept layers keep their weights. An unknown name
    /// is an error listing the layers; so is a layer called more than once (shared).
    pub fn truncate_after(&mut self, name: &str) -> Result<&mut Self> {
        let layer = self.layer_index(name)?;
        let call = self.only_call(layer)?;
        let keep = self.ancestors(call);
        if let Some(input) = (0..self.network.inputs).find(|&i| !self.reads_input(&keep, i)) {
            return Err(Error::Usage(format!(
                "model '{}' cut after '{name}' would leave its input {input} unused",
                self.name
            )));
        }
        let output = self.network.calls[call].first_output;
        let output = self.keep_calls(&keep, output);
        self.network.outputs = vec![output];
        self.prune_nested_models();
        let shapes = std::mem::take(&mut self.network.input_shapes);
        self.network.output_shapes.clear();
        self.network.names = Default::default();
        if !shapes.is_empty() {
            let shapes: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
            self.build_inputs(&shapes)?;
        }
        Ok(self)
    }

    /// The one call of layer `layer`, or an error for a layer called never or several times.
    fn only_call(&self, layer: usize) -> Result<usize> {
        let calls: Vec<usize> = (0..self.network.calls.len())
            .filter(|&c| self.network.calls[c].layer == layer)
            .collect();
        match calls.as_slice() {
            [one] => Ok(*one),
            _ => Err(Error::Usage(format!(
                "layer '{}' is called {} times in model '{}'; cut after a layer called once",
                self.network.layers[layer].name(),
                calls.len(),
                self.name
            ))),
        }
    }

    /// Per call: whether `call` depends on it (itself included).
    fn ancestors(&self, call: usize) -> Vec<bool> {
        let mut reached = vec![false; self.network.calls.len()];
        let mut stack = vec![call];
        while let Some(c) = stack.pop() {
            if !std::mem::replace(&mut reached[c], true) {
                stack.extend(self.network.calls[c].inputs.iter().filter_map(|s| match *s {
                    Source::Output(o) => Some(self.output_origin(o).0),
                    Source::ModelInput(_) => None,
                }));
            }
        }
        reached
    }

    /// Whether a kept call reads model input `input`.
    fn reads_input(&self, keep: &[bool], input: usize) -> bool {
        let calls = &self.network.calls;
        (0..calls.len()).any(|c| keep[c] && calls[c].inputs.contains(&Source::ModelInput(input)))
    }

    /// Drops the calls not in `keep` and the layers no kept call uses, renumbering the rest;
    /// returns the new index of output `output` (of a kept call).
    fn keep_calls(&mut self, keep: &[bool], output: usize) -> usize {
        let network = &mut self.network;
        let mut used = vec![false; network.layers.len()];
        for (c, call) in network.calls.iter().enumerate() {
            used[call.layer] |= keep[c];
        }
        let mut layer_map = vec![usize::MAX; used.len()];
        let mut kept_layers = Vec::new();
        for (index, layer) in std::mem::take(&mut network.layers).into_iter().enumerate() {
            if used[index] {
                layer_map[index] = kept_layers.len();
                kept_layers.push(layer);
            }
        }
        let mut output_map = HashMap::new();
        let mut calls = Vec::new();
        for (c, call) in std::mem::take(&mut network.calls).into_iter().enumerate() {
            if !keep[c] {
                continue;
            }
            let first_output = calls.last().map_or(0, |last: &Call| {
                last.first_output + kept_layers[last.layer].output_count()
            });
            for k in 0..kept_layers[layer_map[call.layer]].output_count() {
                output_map.insert(call.first_output + k, first_output + k);
            }
            let inputs = call
                .inputs
                .iter()
                .map(|s| match *s {
                    Source::Output(o) => Source::Output(output_map[&o]),
                    input => input,
                })
                .collect();
            calls.push(Call {
                layer: layer_map[call.layer],
                inputs,
                first_output,
            });
        }
        network.layers = kept_layers;
        network.calls = calls;
        output_map[&output]
    }
}
