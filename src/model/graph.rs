//! The model as a graph of layer calls, and Keras's functional API on top of it.
//!
//! Every model is a list of [`Call`]s in an order where each call's inputs come before it: a
//! `Sequential` stack is the chain `layer 0 → layer 1 → ...`, a functional model any directed
//! acyclic graph, where one layer may be called several times (shared weights) and merge layers
//! take several inputs.
//!
//! ```
//! use strata::prelude::*;
//! # fn main() -> strata::Result<()> {
//! let inputs = Input::node(&[16]);
//! let hidden = Dense::new(16).activation("relu").call(&inputs)?;
//! let residual = Add::new().call_many(&[&inputs, &hidden])?;   // a skip connection
//! let outputs = Dense::new(3).activation("softmax").call(&residual)?;
//! let mut model = Model::functional(&inputs, &outputs)?;
//! assert_eq!(model.count_params(), 16 * 16 + 16 + 16 * 3 + 3);
//! # Ok(()) }
//! ```

use super::Model;
use crate::error::{Error, Result, keras_shape};
use crate::layers::{Input, Layer, base_name};
use crate::rng::Rng;
use std::sync::{Arc, Mutex};

/// Where a call's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The model's input of this index.
    ModelInput(usize),
    /// The output of an earlier call.
    Call(usize),
}

/// One application of a layer in a model's graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    /// Index into the model's layers.
    pub(crate) layer: usize,
    pub(crate) inputs: Vec<Source>,
}

/// A layer that can be called on several nodes, sharing its weights between the calls (Keras
/// calls the same layer object twice). Calling a layer by value ([`LayerCall::call`]) makes one.
#[derive(Clone)]
pub struct SharedLayer(Arc<Mutex<SharedState>>);

struct SharedState {
    /// `None` once a model has taken the layer.
    layer: Option<Box<dyn Layer>>,
    /// The input shapes of the first call: later calls must match them.
    first_inputs: Option<Vec<Vec<usize>>>,
}

/// A symbolic tensor of a functional model under construction (Keras's `KerasTensor`): the
/// model's input, or the output of a layer called on other nodes. Knows its per-sample shape.
#[derive(Clone)]
pub struct Node(Arc<NodeData>);

struct NodeData {
    shape: Vec<usize>,
    /// `None` for an input node.
    call: Option<(SharedLayer, Vec<Node>)>,
}

impl Input {
    /// The input node of a functional model, as Keras's `keras.Input(shape)`.
    pub fn node(shape: &[usize]) -> Node {
        Node(Arc::new(NodeData {
            shape: shape.to_vec(),
            call: None,
        }))
    }
}

impl std::fmt::Debug for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Node{}", keras_shape(&self.0.shape))
    }
}

impl Node {
    /// The per-sample shape of this node.
    pub fn shape(&self) -> &[usize] {
        &self.0.shape
    }

    fn same(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

impl SharedLayer {
    /// Wraps a layer so it can be called on several nodes.
    pub fn new(layer: impl Layer + 'static) -> Self {
        SharedLayer(Arc::new(Mutex::new(SharedState {
            layer: Some(Box::new(layer)),
            first_inputs: None,
        })))
    }

    /// Calls the layer on one node.
    pub fn call(&self, input: &Node) -> Result<Node> {
        self.call_many(&[input])
    }

    /// Calls the layer on several nodes (merge layers). The layer is built on a scratch store to
    /// find its output shape, so shape errors appear here, naming the layer.
    pub fn call_many(&self, inputs: &[&Node]) -> Result<Node> {
        let shape = {
            let mut state = self.0.lock().expect("no thread panics while holding a layer");
            let SharedState { layer, first_inputs } = &mut *state;
            let layer = layer
                .as_mut()
                .ok_or_else(|| Error::Usage("this layer already belongs to a built model".into()))?;
            if layer.name().is_empty() {
                // A provisional name for error messages; the model gives a unique one.
                let provisional = base_name(layer.class_name());
                layer.set_name(provisional);
            }
            let shapes: Vec<&[usize]> = inputs.iter().map(|n| n.shape()).collect();
            let owned: Vec<Vec<usize>> = shapes.iter().map(|s| s.to_vec()).collect();
            match first_inputs {
                Some(first) if *first != owned => {
                    let show = |all: &[Vec<usize>]| all.iter().map(|s| keras_shape(s)).collect::<Vec<_>>().join(", ");
                    return Err(Error::LayerShape {
                        layer: layer.name().to_string(),
                        expected: format!(
                            "{} (a shared layer keeps the input shapes of its first call)",
                            show(first)
                        ),
                        received: show(&owned),
                    });
                }
                Some(_) => {}
                None => *first_inputs = Some(owned),
            }
            let mut scratch = crate::autograd::ParamStore::new();
            layer.build_multi(&shapes, &mut scratch, &mut Rng::new(0))?
        };
        Ok(Node(Arc::new(NodeData {
            shape,
            call: Some((self.clone(), inputs.iter().map(|&n| n.clone()).collect())),
        })))
    }

    fn same(&self, other: &SharedLayer) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }
}

/// `layer.call(&node)`: Keras's `layer(node)` for any layer value.
pub trait LayerCall: Layer + Sized + 'static {
    /// Calls this layer on `input`, returning its output node.
    fn call(self, input: &Node) -> Result<Node> {
        SharedLayer::new(self).call(input)
    }

    /// Calls this (merge) layer on several inputs.
    fn call_many(self, inputs: &[&Node]) -> Result<Node> {
        SharedLayer::new(self).call_many(inputs)
    }
}

impl<L: Layer + Sized + 'static> LayerCall for L {}

/// The nodes `outputs` depend on, each after its inputs.
fn topological_order(outputs: &[&Node]) -> Vec<Node> {
    let mut order: Vec<Node> = Vec::new();
    // Iterative depth-first search: (node, inputs already pushed).
    let mut stack: Vec<(Node, bool)> = outputs.iter().rev().map(|&n| (n.clone(), false)).collect();
    while let Some((node, expanded)) = stack.pop() {
        if order.iter().any(|n| n.same(&node)) {
            continue;
        }
        if expanded {
            order.push(node);
            continue;
        }
        stack.push((node.clone(), true));
        if let Some((_, inputs)) = &node.0.call {
            for input in inputs.iter().rev() {
                stack.push((input.clone(), false));
            }
        }
    }
    order
}

impl Model {
    /// A functional model from its input node to its output node, as Keras's
    /// `keras.Model(inputs, outputs)`. Layers are taken out of the nodes (a layer belongs to one
    /// model), named uniquely, and built; the model works like any other (`compile`, `fit`,
    /// `summary`, `save`, ...).
    pub fn functional(input: &Node, output: &Node) -> Result<Model> {
        Self::functional_multi(&[input], &[output])
    }

    /// A functional model with several inputs and/or outputs, as Keras's
    /// `keras.Model(inputs=[a, b], outputs=[c, d])`: train it with [`Model::fit_multi`]
    /// (one `x` per input, one `y` per output) after [`Model::compile_outputs`].
    ///
    /// Every input must reach an output, and every node an output depends on must come from
    /// the inputs: otherwise an error says which.
    pub fn functional_multi(inputs: &[&Node], outputs: &[&Node]) -> Result<Model> {
        if inputs.is_empty() || outputs.is_empty() {
            return Err(Error::Usage(
                "a model needs at least one input and one output node".into(),
            ));
        }
        if let Some(i) = inputs.iter().position(|n| n.0.call.is_some()) {
            return Err(Error::Usage(format!(
                "input {i} of the model must be a node made by Input::node, not a layer's output"
            )));
        }
        let order = topological_order(outputs);
        for (i, input) in inputs.iter().enumerate() {
            if inputs[..i].iter().any(|n| n.same(input)) {
                return Err(Error::Usage(format!("input {i} of the model is given twice")));
            }
            if !order.iter().any(|n| n.same(input)) {
                return Err(Error::Usage(format!(
                    "input {i} of the model (shape {}) is not connected to any output: build an output from it, or leave it out",
                    keras_shape(input.shape())
                )));
            }
        }
        let mut model = Model::new();
        model.set_name("functional");
        model.functional = true;
        model.inputs = inputs.len();
        let mut node_calls: Vec<(Node, usize)> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            model.push_unique(Box::new(Input::new(input.shape())));
            model.calls.push(Call {
                layer: model.layers.len() - 1,
                inputs: vec![Source::ModelInput(i)],
            });
            node_calls.push(((*input).clone(), model.calls.len() - 1));
        }
        let mut shared: Vec<(SharedLayer, usize)> = Vec::new();
        for node in &order {
            let Some((layer, node_inputs)) = &node.0.call else {
                if !inputs.iter().any(|n| n.same(node)) {
                    return Err(Error::Usage(format!(
                        "an output depends on an input node of shape {} that is not one of the model's inputs",
                        keras_shape(node.shape())
                    )));
                }
                continue;
            };
            let index = match shared.iter().find(|(s, _)| s.same(layer)) {
                Some(&(_, index)) => index,
                None => {
                    let taken = layer
                        .0
                        .lock()
                        .expect("no thread panics while holding a layer")
                        .layer
                        .take();
                    let taken = taken
                        .ok_or_else(|| Error::Usage("a layer of this graph already belongs to another model".into()))?;
                    model.push_unique(taken);
                    shared.push((layer.clone(), model.layers.len() - 1));
                    model.layers.len() - 1
                }
            };
            let sources = node_inputs
                .iter()
                .map(|i| {
                    let call = node_calls.iter().find(|(n, _)| n.same(i)).expect("inputs come first").1;
                    Source::Call(call)
                })
                .collect();
            model.calls.push(Call {
                layer: index,
                inputs: sources,
            });
            node_calls.push((node.clone(), model.calls.len() - 1));
        }
        model.outputs = outputs
            .iter()
            .map(|output| {
                node_calls
                    .iter()
                    .find(|(n, _)| n.same(output))
                    .expect("outputs are in the order")
                    .1
            })
            .collect();
        let shapes: Vec<&[usize]> = inputs.iter().map(|n| n.shape()).collect();
        model.build_inputs(&shapes)?;
        Ok(model)
    }

    /// Adds a layer under a unique name (Keras's `dense`, `dense_1`, ...) when it has none, or
    /// only a provisional one given when it was called.
    pub(crate) fn push_unique(&mut self, mut layer: Box<dyn Layer>) {
        let base = if layer.is_input() {
            "input_layer".to_string()
        } else {
            base_name(layer.class_name())
        };
        let taken = |name: &str, layers: &[Box<dyn Layer>]| layers.iter().any(|l| l.name() == name);
        if layer.name().is_empty() || (layer.name() == base && taken(&base, &self.layers)) {
            let mut name = base.clone();
            let mut n = 0;
            while taken(&name, &self.layers) {
                n += 1;
                name = format!("{base}_{n}");
            }
            layer.set_name(name);
        }
        self.layers.push(layer);
    }

    /// The layer calls, each after its inputs.
    pub(crate) fn graph_calls(&self) -> &[Call] {
        &self.calls
    }

    /// The calls that read each layer, as Keras's "connected to": `dense[0][0]` is the first
    /// call of `dense`.
    pub(crate) fn inbound(&self, call: &Call) -> Vec<String> {
        call.inputs
            .iter()
            .map(|source| match *source {
                Source::ModelInput(_) => "-".to_string(),
                Source::Call(c) => {
                    let (name, node) = self.call_reference(c);
                    format!("{name}[{node}][0]")
                }
            })
            .collect()
    }

    /// Call `c` as Keras names it: its layer's name and which call of that layer it is (Keras's
    /// node index; a shared layer's second call is node 1).
    pub(crate) fn call_reference(&self, c: usize) -> (&str, usize) {
        let layer = self.calls[c].layer;
        let node = self.calls[..c].iter().filter(|k| k.layer == layer).count();
        (self.layers[layer].name(), node)
    }
}

/// A call read from a config, waiting for its inputs: (layer index, call index of that layer,
/// the (layer name, call index) pairs it reads).
type PendingCall = (usize, usize, Vec<(String, usize)>);

/// A functional model from Keras's config layer list, each entry with `"inbound_nodes"`:
/// `[[["dense", 0, 0, {}], ...], ...]`, one list per call of the layer, naming the calls it
/// reads (layer name, call index). Calls are ordered so each comes after its inputs; a cycle or
/// a reference to a missing layer is an error naming the layers involved. `input_layers` and
/// `output_layers` (`[["name", node, 0], ...]`) order the model's inputs and outputs; without
/// them, the InputLayers in the list's order and the last layer.
pub(crate) fn graph_from_config(
    entries: &[serde_json::Value],
    input_layers: Option<&serde_json::Value>,
    output_layers: Option<&serde_json::Value>,
) -> Result<Model> {
    let mut model = Model::new();
    model.functional = true;
    let mut pending: Vec<PendingCall> = Vec::new();
    for (i, entry) in entries.iter().enumerate() {
        let layer = crate::io::config::layer_from_entry(i, entry)?;
        let name = entry
            .get("name")
            .and_then(|v| v.as_str())
            .unwrap_or(layer.name())
            .to_string();
        let mut layer = layer;
        layer.set_name(name.clone());
        if model.layers.iter().any(|l| l.name() == name) {
            return Err(Error::Data(format!("layers[{i}]: two layers are named '{name}'")));
        }
        let nodes = entry
            .get("inbound_nodes")
            .and_then(|v| v.as_array())
            .cloned()
            .unwrap_or_default();
        if layer.is_input() != nodes.is_empty() {
            return Err(Error::Data(format!(
                "layers[{i}] ('{name}'): {}",
                if layer.is_input() {
                    "an InputLayer reads no other layer"
                } else {
                    "needs \"inbound_nodes\": the layers it is called on"
                }
            )));
        }
        model.layers.push(layer);
        for (call_index, node) in nodes.iter().enumerate() {
            let refs = node
                .as_array()
                .ok_or_else(|| Error::Data(format!("layers[{i}] ('{name}'): an inbound node must be a list")))?
                .iter()
                .map(layer_reference)
                .collect::<Option<Vec<_>>>()
                .ok_or_else(|| {
                    Error::Data(format!(
                        "layers[{i}] ('{name}'): an inbound reference is not [layer_name, node_index, tensor_index]"
                    ))
                })?;
            pending.push((model.layers.len() - 1, call_index, refs));
        }
    }
    let named = |key: &str, value: Option<&serde_json::Value>| -> Result<Option<Vec<(String, usize)>>> {
        value
            .map(|v| {
                v.as_array()
                    .and_then(|all| all.iter().map(layer_reference).collect::<Option<Vec<_>>>())
                    .ok_or_else(|| Error::Data(format!("\"{key}\" must be a list of [layer_name, node_index, 0]")))
            })
            .transpose()
    };
    let position = |name: &str, layers: &[Box<dyn Layer>]| layers.iter().position(|l| l.name() == name);
    let inputs: Vec<usize> = match named("input_layers", input_layers)? {
        Some(refs) => refs
            .iter()
            .map(|(name, _)| match position(name, &model.layers) {
                Some(i) if model.layers[i].is_input() => Ok(i),
                _ => Err(Error::Data(format!(
                    "input_layers names '{name}', which is not an InputLayer here"
                ))),
            })
            .collect::<Result<_>>()?,
        None => (0..model.layers.len())
            .filter(|&i| model.layers[i].is_input())
            .collect(),
    };
    if inputs.is_empty() {
        return Err(Error::Data("a functional model needs an InputLayer".into()));
    }
    if let Some(unused) = (0..model.layers.len()).find(|&i| model.layers[i].is_input() && !inputs.contains(&i)) {
        return Err(Error::Data(format!(
            "the InputLayer '{}' is not among input_layers",
            model.layers[unused].name()
        )));
    }
    model.inputs = inputs.len();
    // (layer, call index of that layer) → position in model.calls
    let mut placed: Vec<((usize, usize), usize)> = Vec::new();
    for (i, &layer) in inputs.iter().enumerate() {
        model.calls.push(Call {
            layer,
            inputs: vec![Source::ModelInput(i)],
        });
        placed.push(((layer, 0), model.calls.len() - 1));
    }
    let find = |name: &str, k: usize, layers: &[Box<dyn Layer>], placed: &[((usize, usize), usize)]| {
        let layer = position(name, layers)?;
        placed.iter().find(|(key, _)| *key == (layer, k)).map(|(_, c)| *c)
    };
    while !pending.is_empty() {
        let ready = pending.iter().position(|(_, _, refs)| {
            refs.iter()
                .all(|(name, k)| find(name, *k, &model.layers, &placed).is_some())
        });
        let Some(ready) = ready else {
            let stuck: Vec<&str> = pending.iter().map(|(l, _, _)| model.layers[*l].name()).collect();
            return Err(Error::Data(format!(
                "the layers {} read from layers that are missing or form a cycle",
                stuck.join(", ")
            )));
        };
        let (layer, call_index, refs) = pending.remove(ready);
        let sources = refs
            .iter()
            .map(|(name, k)| Source::Call(find(name, *k, &model.layers, &placed).expect("checked ready")))
            .collect();
        model.calls.push(Call { layer, inputs: sources });
        placed.push(((layer, call_index), model.calls.len() - 1));
    }
    model.outputs = match named("output_layers", output_layers)? {
        Some(refs) => refs
            .iter()
            .map(|(name, k)| {
                find(name, *k, &model.layers, &placed).ok_or_else(|| {
                    Error::Data(format!(
                        "output_layers names '{name}' (call {k}), which is not in the graph"
                    ))
                })
            })
            .collect::<Result<_>>()?,
        None => vec![model.calls.len() - 1],
    };
    if model.outputs.is_empty() {
        return Err(Error::Data("output_layers is empty: a model needs an output".into()));
    }
    // Every input must reach an output: walk back from the outputs.
    let mut reached = vec![false; model.calls.len()];
    let mut stack = model.outputs.clone();
    while let Some(call) = stack.pop() {
        if !std::mem::replace(&mut reached[call], true) {
            stack.extend(model.calls[call].inputs.iter().filter_map(|s| match *s {
                Source::Call(c) => Some(c),
                Source::ModelInput(_) => None,
            }));
        }
    }
    if let Some(input) = (0..model.inputs).find(|&i| !reached[i]) {
        return Err(Error::Data(format!(
            "the input '{}' is not connected to any output",
            model.layers[model.calls[input].layer].name()
        )));
    }
    Ok(model)
}

/// `["dense", 0, 0, {}]` → `("dense", 0)`: a layer's name and the index of its call.
fn layer_reference(value: &serde_json::Value) -> Option<(String, usize)> {
    Some((value.get(0)?.as_str()?.to_string(), value.get(1)?.as_u64()? as usize))
}
