//! Reading a model's layers and, for a functional model, its graph from a config's layer list.
//!
//! Each entry is `{"class_name": ..., "config": {...}}`; a functional model's entries also have
//! Keras 2's `"inbound_nodes"`: `[[["dense", 0, 0, {}], ...], ...]`, one list per call of the
//! layer, naming the outputs it reads (layer name, call index of that layer, output index).
//! Keras 3's layout is rewritten into this one before it gets here (see `keras.rs`). What comes
//! out is plain layers and calls, which [`Model::from_parts`] assembles: the model never reads a
//! config.

use super::legacy_state::{self as legacy, Alias};
use crate::error::{Error, Result};
use crate::layers::{self, Layer};
use crate::model::{Model, Source};
use serde_json::Value;
use std::cmp::Reverse;
use std::collections::{BinaryHeap, HashMap};

/// Keras's `[layer name, node index, tensor index]`: output `tensor` of call `node` of a layer.
type Reference = (String, usize, usize);

/// The layer of `layers[i]`: `{"class_name": ..., "config": {...}}`.
pub(super) fn layer_from_entry(i: usize, entry: &Value) -> Result<Box<dyn Layer>> {
    let class = entry
        .get("class_name")
        .and_then(Value::as_str)
        .ok_or_else(|| Error::Data(format!("layers[{i}] has no \"class_name\"")))?;
    let empty = Value::Object(Default::default());
    let config = entry.get("config").unwrap_or(&empty);
    layers::from_config(class, config).map_err(|e| Error::Data(format!("layers[{i}] ({class}): {}", e.reason())))
}

/// The layers of every entry, or one error listing every entry's problem (a file with several
/// settings strata lacks says so at once, not one per attempt).
pub(super) fn layers_from_entries(entries: &[Value]) -> Result<Vec<Box<dyn Layer>>> {
    let (mut layers, mut problems) = (Vec::new(), Vec::new());
    for (i, entry) in entries.iter().enumerate() {
        match layer_from_entry(i, entry) {
            Ok(layer) => layers.push(layer),
            Err(error) => problems.push(error.reason()),
        }
    }
    match problems.len() {
        0 => Ok(layers),
        1 => Err(Error::Data(problems.remove(0))),
        n => Err(Error::Data(format!(
            "{n} layers cannot be read:\n  {}",
            problems.join("\n  ")
        ))),
    }
}

/// A functional model from a config's layer list. Calls are ordered so each comes after its
/// inputs; a cycle or a reference to a missing layer is an error naming the layers involved.
/// `input_layers` and `output_layers` (`[["name", node, 0], ...]`) order the model's inputs and
/// outputs; without them, the InputLayers in the list's order and the last layer.
pub(super) fn graph_from_config(
    entries: &[Value],
    input_layers: Option<&Value>,
    output_layers: Option<&Value>,
) -> Result<Model> {
    let (entries, aliases) = legacy::without_state_layers(entries);
    let mut graph = GraphReader::read_layers(&entries, aliases)?;
    let inputs = graph.inputs(input_layers)?;
    for (i, &layer) in inputs.iter().enumerate() {
        graph.place((layer, 0), vec![Source::ModelInput(i)]);
    }
    graph.place_pending()?;
    let outputs = graph.outputs(output_layers)?;
    if outputs.is_empty() {
        return Err(Error::Data("output_layers is empty: a model needs an output".into()));
    }
    Model::from_parts(graph.layers, graph.calls, inputs.len(), outputs)
}

/// A call read from a config, waiting for its inputs.
struct PendingCall {
    layer: usize,
    /// Which call of its layer this is (Keras's node index).
    node: usize,
    reads: Vec<Reference>,
}

/// The graph being read: layers, the calls placed so far (each after its inputs) and those
/// still waiting for theirs.
struct GraphReader {
    layers: Vec<Box<dyn Layer>>,
    /// `RecurrentState` layers of old configs, and the outputs they stand for.
    aliases: Vec<Alias>,
    pending: Vec<PendingCall>,
    /// The placed calls: their layer and inputs, as [`Model::from_parts`] takes them.
    calls: Vec<(usize, Vec<Source>)>,
    /// The index of the first output of each placed call, by (layer, node index).
    placed: HashMap<(usize, usize), usize>,
    /// Each layer's index by its name.
    names: HashMap<String, usize>,
    /// How many outputs the placed calls yield in all.
    output_count: usize,
}

impl GraphReader {
    /// Every entry's layer, named as its entry says, and the calls it makes (not yet placed).
    fn read_layers(entries: &[Value], aliases: Vec<Alias>) -> Result<Self> {
        let mut graph = GraphReader {
            layers: Vec::new(),
            aliases,
            pending: Vec::new(),
            calls: Vec::new(),
            placed: HashMap::new(),
            names: HashMap::new(),
            output_count: 0,
        };
        let layers = layers_from_entries(entries)?;
        for (i, (entry, mut layer)) in entries.iter().zip(layers).enumerate() {
            let name = entry
                .get("name")
                .and_then(Value::as_str)
                .unwrap_or(layer.name())
                .to_string();
            layer.set_name(name.clone());
            if graph.names.insert(name.clone(), i).is_some() {
                return Err(Error::Data(format!("layers[{i}]: two layers are named '{name}'")));
            }
            let nodes = entry
                .get("inbound_nodes")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default();
            if layer.is_input() != nodes.is_empty() {
                let why = if layer.is_input() {
                    "an InputLayer reads no other layer"
                } else {
                    "needs \"inbound_nodes\": the layers it is called on"
                };
                return Err(Error::Data(format!("layers[{i}] ('{name}'): {why}")));
            }
            graph.layers.push(layer);
            for (node, references) in nodes.iter().enumerate() {
                let reads = graph
                    .inbound(references)
                    .map_err(|why| Error::Data(format!("layers[{i}] ('{name}'): {why}")))?;
                let layer = graph.layers.len() - 1;
                graph.pending.push(PendingCall { layer, node, reads });
            }
        }
        Ok(graph)
    }

    /// The references of one inbound node: `[["dense", 0, 0, {}], ...]`.
    fn inbound(&self, node: &Value) -> std::result::Result<Vec<Reference>, &'static str> {
        let references = node.as_array().ok_or("an inbound node must be a list")?;
        self.references(references)
            .ok_or("an inbound reference is not [layer_name, node_index, tensor_index]")
    }

    /// Each of `values` read as a reference, old state layers resolved to what they stand for.
    fn references(&self, values: &[Value]) -> Option<Vec<Reference>> {
        let read = |r: &Value| layer_reference(r).map(|r| legacy::resolve(&self.aliases, &r));
        values.iter().map(read).collect()
    }

    /// The references listed under `key` (`input_layers`, `output_layers`), if given.
    fn named(&self, key: &str, value: Option<&Value>) -> Result<Option<Vec<Reference>>> {
        let Some(value) = value else { return Ok(None) };
        let references = value.as_array().and_then(|all| self.references(all));
        references
            .map(Some)
            .ok_or_else(|| Error::Data(format!("\"{key}\" must be a list of [layer_name, node_index, 0]")))
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.names.get(name).copied()
    }

    /// The model's input layers: those `input_layers` names, in its order, or every InputLayer.
    fn inputs(&self, input_layers: Option<&Value>) -> Result<Vec<usize>> {
        let is_input = |i: usize| self.layers[i].is_input();
        let inputs: Vec<usize> = match self.named("input_layers", input_layers)? {
            Some(references) => references
                .iter()
                .map(|(name, _, _)| match self.position(name) {
                    Some(i) if is_input(i) => Ok(i),
                    _ => Err(Error::Data(format!(
                        "input_layers names '{name}', which is not an InputLayer here"
                    ))),
                })
                .collect::<Result<_>>()?,
            None => (0..self.layers.len()).filter(|&i| is_input(i)).collect(),
        };
        if inputs.is_empty() {
            return Err(Error::Data("a functional model needs an InputLayer".into()));
        }
        if let Some(unused) = (0..self.layers.len()).find(|&i| is_input(i) && !inputs.contains(&i)) {
            return Err(Error::Data(format!(
                "the InputLayer '{}' is not among input_layers",
                self.layers[unused].name()
            )));
        }
        Ok(inputs)
    }

    /// Appends call `node` of `layer`, reading `inputs`.
    fn place(&mut self, (layer, node): (usize, usize), inputs: Vec<Source>) {
        self.calls.push((layer, inputs));
        self.placed.entry((layer, node)).or_insert(self.output_count);
        self.output_count += self.layers[layer].output_count();
    }

    /// The output a reference names, once its call is placed.
    fn find(&self, (name, node, tensor): &Reference) -> Option<usize> {
        let layer = self.position(name)?;
        let first = *self.placed.get(&(layer, *node))?;
        (*tensor < self.layers[layer].output_count()).then_some(first + tensor)
    }

    /// The call a reference waits for, `None` when no call can ever give it (a missing layer,
    /// an output the layer does not have).
    fn awaited(&self, (name, node, tensor): &Reference) -> Option<(usize, usize)> {
        let layer = self.position(name)?;
        (*tensor < self.layers[layer].output_count()).then_some((layer, *node))
    }

    /// Places the waiting calls, each once every output it reads is placed: of those ready,
    /// always the first in the config's order (Kahn's algorithm, a call's readers told when it
    /// is placed, instead of rescanning every waiting call after each one).
    fn place_pending(&mut self) -> Result<()> {
        let pending = std::mem::take(&mut self.pending);
        let mut missing = vec![0usize; pending.len()];
        let mut waiting: HashMap<(usize, usize), Vec<usize>> = HashMap::new();
        let mut ready = BinaryHeap::new();
        for (i, call) in pending.iter().enumerate() {
            for read in call.reads.iter().filter(|r| self.find(r).is_none()) {
                missing[i] += 1;
                if let Some(key) = self.awaited(read) {
                    waiting.entry(key).or_default().push(i);
                }
            }
            if missing[i] == 0 {
                ready.push(Reverse(i));
            }
        }
        let mut placed = 0;
        while let Some(Reverse(i)) = ready.pop() {
            let call = &pending[i];
            let sources = call
                .reads
                .iter()
                .filter_map(|r| self.find(r))
                .map(Source::Output)
                .collect();
            self.place((call.layer, call.node), sources);
            placed += 1;
            for &reader in waiting.remove(&(call.layer, call.node)).iter().flatten() {
                missing[reader] -= 1;
                if missing[reader] == 0 {
                    ready.push(Reverse(reader));
                }
            }
        }
        if placed < pending.len() {
            let stuck: Vec<&str> = (0..pending.len())
                .filter(|&i| missing[i] > 0)
                .map(|i| self.layers[pending[i].layer].name())
                .collect();
            return Err(Error::Data(format!(
                "the layers {} read from layers that are missing or form a cycle",
                stuck.join(", ")
            )));
        }
        Ok(())
    }

    /// The model's outputs: those `output_layers` names, or the last call's.
    fn outputs(&self, output_layers: Option<&Value>) -> Result<Vec<usize>> {
        let Some(references) = self.named("output_layers", output_layers)? else {
            return Ok(vec![self.output_count - 1]);
        };
        let output = |r: &Reference| {
            self.find(r).ok_or_else(|| {
                Error::Data(format!(
                    "output_layers names '{}' (call {}, output {}), which is not in the graph",
                    r.0, r.1, r.2
                ))
            })
        };
        references.iter().map(output).collect()
    }
}

/// `["dense", 0, 0, {}]` → `("dense", 0, 0)`: a layer's name, the index of its call and which
/// of the call's outputs (0 when left out).
fn layer_reference(value: &Value) -> Option<Reference> {
    let tensor = match value.get(2) {
        None => 0,
        Some(t) => t.as_u64()? as usize,
    };
    Some((
        value.get(0)?.as_str()?.to_string(),
        value.get(1)?.as_u64()? as usize,
        tensor,
    ))
}
