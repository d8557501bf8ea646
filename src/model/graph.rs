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
use crate::layers::{Recurrent, RecurrentKind};
use std::sync::{Arc, Mutex};

/// Where a call's input comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Source {
    /// The model's input of this index.
    ModelInput(usize),
    /// An output of an earlier call: the index of that tensor among all calls' outputs, in
    /// call order (a call with several outputs, such as a recurrent layer returning its
    /// states, holds consecutive ones).
    Output(usize),
}

/// One application of a layer in a model's graph.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Call {
    /// Index into the model's layers.
    pub(crate) layer: usize,
    pub(crate) inputs: Vec<Source>,
    /// The index of the call's first output among all calls' outputs; its layer's
    /// [`Layer::output_count`] says how many follow.
    pub(crate) first_output: usize,
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
    /// The call that made this node (`None` for an input node) and which of its outputs it is.
    call: Option<(Arc<NodeCall>, usize)>,
}

/// One call of a layer on nodes: several nodes share it when the layer has several outputs.
struct NodeCall {
    layer: SharedLayer,
    inputs: Vec<Node>,
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

impl<K: RecurrentKind> Recurrent<K> {
    /// Keras's `return_state=True` in the functional API: calls the layer on `x` and returns
    /// `[output, h]`, or `[output, h, c]` for an LSTM (with `return_sequences` off, `output` and
    /// `h` hold the same values, as in Keras). One call: the layer's outputs share its weights.
    ///
    /// ```
    /// use strata::prelude::*;
    /// # fn main() -> strata::Result<()> {
    /// let x = Input::node(&[5, 3]);
    /// let [output, h, c] = <[Node; 3]>::try_from(LSTM::new(4).call_with_state(&x)?).unwrap();
    /// assert_eq!((h.shape(), c.shape()), (&[4][..], &[4][..]));
    /// # let _ = output; Ok(()) }
    /// ```
    pub fn call_with_state(self, x: &Node) -> Result<Vec<Node>> {
        SharedLayer::new(self.return_state(true)).call_outputs(&[x])
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

    /// The input nodes this node is computed from, each once, in the order they are met
    /// (Keras's `get_source_inputs`): the node itself when it is an input. A model built on a
    /// node that other layers made starts from these.
    pub fn source_inputs(&self) -> Vec<Node> {
        topological_order(&[self])
            .into_iter()
            .filter(|n| n.origin().is_none())
            .collect()
    }

    fn same(&self, other: &Node) -> bool {
        Arc::ptr_eq(&self.0, &other.0)
    }

    /// The call that made this node and which of its outputs the node is.
    fn origin(&self) -> Option<(&NodeCall, usize)> {
        self.0.call.as_ref().map(|(call, k)| (&**call, *k))
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

    /// Calls the layer on several nodes (merge layers). Shape errors appear here, naming the
    /// layer. A layer with several outputs gives an error: use [`SharedLayer::call_outputs`].
    pub fn call_many(&self, inputs: &[&Node]) -> Result<Node> {
        let mut outputs = self.call_outputs(inputs)?;
        match outputs.len() {
            1 => Ok(outputs.remove(0)),
            n => Err(Error::Usage(format!(
                "this layer gives {n} outputs per call: call it with call_outputs (or call_with_state)"
            ))),
        }
    }

    /// Calls the layer on nodes and returns one node per output of the call.
    pub fn call_outputs(&self, inputs: &[&Node]) -> Result<Vec<Node>> {
        let shapes = {
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
            let owned: Vec<Vec<usize>> = inputs.iter().map(|n| n.shape().to_vec()).collect();
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
                None => *first_inputs = Some(owned.clone()),
            }
            layer.output_shapes(&owned)?
        };
        let call = Arc::new(NodeCall {
            layer: self.clone(),
            inputs: inputs.iter().map(|&n| n.clone()).collect(),
        });
        let nodes = shapes.into_iter().enumerate().map(|(k, shape)| {
            Node(Arc::new(NodeData {
                shape,
                call: Some((call.clone(), k)),
            }))
        });
        Ok(nodes.collect())
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

/// The nodes the outputs depend on, each after its inputs, once `inputs` are checked: at least
/// one input and one output, inputs made by `Input::node`, none given twice, each reaching an
/// output.
fn checked_order(inputs: &[&Node], outputs: &[&Node]) -> Result<Vec<Node>> {
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
    Ok(order)
}

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
        if let Some((call, _)) = node.origin() {
            for input in call.inputs.iter().rev() {
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
        let mut model = Self::functional_graph(inputs, outputs)?;
        let shapes: Vec<&[usize]> = inputs.iter().map(|n| n.shape()).collect();
        model.build_inputs(&shapes)?;
        Ok(model)
    }

    /// [`Model::functional_multi`] without building: the graph, its layers named, no weights
    /// made yet (they are when the model is first used). The applications build their
    /// architectures this way, so comparing one with Keras's costs no weight memory.
    pub(crate) fn functional_graph(inputs: &[&Node], outputs: &[&Node]) -> Result<Model> {
        let order = checked_order(inputs, outputs)?;
        let mut model = Model::new();
        model.set_name("functional");
        model.network.functional = true;
        model.network.inputs = inputs.len();
        // Each node's tensor: its index among the calls' outputs.
        let mut node_outputs: Vec<(Node, usize)> = Vec::new();
        for (i, input) in inputs.iter().enumerate() {
            model.push_unique(Box::new(Input::new(input.shape())));
            let output = model.push_call(model.network.layers.len() - 1, vec![Source::ModelInput(i)]);
            node_outputs.push(((*input).clone(), output));
        }
        model.place_calls(&order, inputs, &mut node_outputs)?;
        let output_of = |node: &&Node| {
            node_outputs
                .iter()
                .find(|(n, _)| n.same(node))
                .expect("outputs are in the order")
                .1
        };
        model.network.outputs = outputs.iter().map(output_of).collect();
        Ok(model)
    }

    /// Adds a call for each layer call of `order` (once per call, however many of its outputs
    /// are used), recording each node's output index in `node_outputs`.
    fn place_calls(&mut self, order: &[Node], inputs: &[&Node], node_outputs: &mut Vec<(Node, usize)>) -> Result<()> {
        let mut shared: Vec<(SharedLayer, usize)> = Vec::new();
        // The calls placed so far and their first outputs.
        let mut placed: Vec<(*const NodeCall, usize)> = Vec::new();
        for node in order {
            let Some((call, k)) = node.origin() else {
                if !inputs.iter().any(|n| n.same(node)) {
                    return Err(Error::Usage(format!(
                        "an output depends on an input node of shape {} that is not one of the model's inputs",
                        keras_shape(node.shape())
                    )));
                }
                continue;
            };
            let first = match placed.iter().find(|(c, _)| std::ptr::eq(*c, call)) {
                Some(&(_, first)) => first,
                None => {
                    let index = self.take_layer(&call.layer, &mut shared)?;
                    let source_of = |input: &Node| {
                        let (_, output) = node_outputs
                            .iter()
                            .find(|(n, _)| n.same(input))
                            .expect("inputs come first");
                        Source::Output(*output)
                    };
                    let sources = call.inputs.iter().map(source_of).collect();
                    let first = self.push_call(index, sources);
                    placed.push((call, first));
                    first
                }
            };
            node_outputs.push((node.clone(), first + k));
        }
        Ok(())
    }

    /// The model's index of the layer in `shared`, taking it into the model at its first call.
    fn take_layer(&mut self, layer: &SharedLayer, shared: &mut Vec<(SharedLayer, usize)>) -> Result<usize> {
        if let Some(&(_, index)) = shared.iter().find(|(s, _)| s.same(layer)) {
            return Ok(index);
        }
        let taken = layer
            .0
            .lock()
            .expect("no thread panics while holding a layer")
            .layer
            .take()
            .ok_or_else(|| Error::Usage("a layer of this graph already belongs to another model".into()))?;
        self.push_unique(taken);
        shared.push((layer.clone(), self.network.layers.len() - 1));
        Ok(self.network.layers.len() - 1)
    }

    /// Appends a call of layer `layer` on `inputs`; returns the index of its first output.
    pub(crate) fn push_call(&mut self, layer: usize, inputs: Vec<Source>) -> usize {
        let first_output = self.output_count();
        self.network.calls.push(Call {
            layer,
            inputs,
            first_output,
        });
        first_output
    }

    /// How many tensors the calls yield in all.
    pub(crate) fn output_count(&self) -> usize {
        self.network
            .calls
            .last()
            .map_or(0, |c| c.first_output + self.network.layers[c.layer].output_count())
    }

    /// The call that yields output `output` and which of its outputs it is.
    pub(crate) fn output_origin(&self, output: usize) -> (usize, usize) {
        let call = self.network.calls.partition_point(|c| c.first_output <= output) - 1;
        (call, output - self.network.calls[call].first_output)
    }

    /// Adds a layer under a unique name (Keras's `dense`, `dense_1`, ...) when it has none, or
    /// only a provisional one given when it was called. Names are looked up in a set and the
    /// suffixes counted per base name: a model of 10,000 unnamed layers names them in linear
    /// time (a scan of the layers per candidate name took cubic time).
    pub(crate) fn push_unique(&mut self, mut layer: Box<dyn Layer>) {
        let network = &mut self.network;
        let names = &mut network.names;
        for named in &network.layers[names.indexed..] {
            names.taken.insert(named.name().to_string());
        }
        let base = if layer.is_input() {
            "input_layer".to_string()
        } else {
            base_name(layer.class_name())
        };
        if layer.name().is_empty() || (layer.name() == base && names.taken.contains(&base)) {
            // Every suffix below `next` is taken: names are never given back.
            let next = names.next_suffix.entry(base.clone()).or_insert(0);
            let mut name = base.clone();
            while names.taken.contains(&name) {
                *next += 1;
                name = format!("{base}_{next}");
            }
            layer.set_name(name);
        }
        names.taken.insert(layer.name().to_string());
        network.layers.push(layer);
        names.indexed = network.layers.len();
    }

    /// A functional model from its parts, as a reader of model files finds them (the model
    /// itself reads no file): its layers, already named; its calls, each a layer index and the
    /// sources of its inputs, each after its inputs; the first `inputs` calls are its input
    /// layers' (reading [`Source::ModelInput`] `0..inputs`); `outputs` index all calls' outputs.
    /// The layers are not built. A source, layer or output that does not exist is an error,
    /// and so is an input that reaches no output (naming it).
    pub(crate) fn from_parts(
        layers: Vec<Box<dyn Layer>>,
        calls: Vec<(usize, Vec<Source>)>,
        inputs: usize,
        outputs: Vec<usize>,
    ) -> Result<Model> {
        let mut model = Model::new();
        model.network.functional = true;
        model.network.layers = layers;
        model.network.inputs = inputs;
        for (layer, sources) in calls {
            let known = |source: &Source| match *source {
                Source::ModelInput(i) => i < inputs,
                Source::Output(o) => o < model.output_count(),
            };
            if layer >= model.network.layers.len() || !sources.iter().all(known) {
                return Err(Error::Data(format!(
                    "call {} reads a layer or an output that does not exist",
                    model.network.calls.len()
                )));
            }
            model.push_call(layer, sources);
        }
        if model.network.calls.len() < inputs || outputs.iter().any(|&o| o >= model.output_count()) {
            return Err(Error::Data("the model's inputs or outputs are not in its graph".into()));
        }
        model.network.outputs = outputs;
        if let Some(input) = model.unconnected_input() {
            return Err(Error::Data(format!(
                "the input '{}' is not connected to any output",
                model.network.layers[model.network.calls[input].layer].name()
            )));
        }
        Ok(model)
    }

    /// The first input (its call's index) that no output depends on, if any: found walking back
    /// from the outputs.
    fn unconnected_input(&self) -> Option<usize> {
        let mut reached = vec![false; self.network.calls.len()];
        let mut stack: Vec<usize> = self.network.outputs.iter().map(|&o| self.output_origin(o).0).collect();
        while let Some(call) = stack.pop() {
            if !std::mem::replace(&mut reached[call], true) {
                stack.extend(self.network.calls[call].inputs.iter().filter_map(|s| match *s {
                    Source::Output(o) => Some(self.output_origin(o).0),
                    Source::ModelInput(_) => None,
                }));
            }
        }
        (0..self.network.inputs).find(|&i| !reached[i])
    }

    /// The outputs (indices into all calls' outputs) that are the model's outputs, in order.
    pub(crate) fn graph_outputs(&self) -> &[usize] {
        &self.network.outputs
    }

    /// The layer calls, each after its inputs.
    pub(crate) fn graph_calls(&self) -> &[Call] {
        &self.network.calls
    }

    /// Per-sample shape of every call output (indexed as [`Call::first_output`] counts them),
    /// once built; empty before.
    pub(crate) fn graph_output_shapes(&self) -> &[Vec<usize>] {
        &self.network.output_shapes
    }

    /// The calls that read each layer, as Keras's "connected to": `dense[0][0]` is the first
    /// call of `dense`.
    pub(crate) fn inbound(&self, call: &Call) -> Vec<String> {
        call.inputs
            .iter()
            .map(|source| match *source {
                Source::ModelInput(_) => "-".to_string(),
                Source::Output(output) => {
                    let (call, k) = self.output_origin(output);
                    let (name, node) = self.call_reference(call);
                    format!("{name}[{node}][{k}]")
                }
            })
            .collect()
    }

    /// Call `c` as Keras names it: its layer's name and which call of that layer it is (Keras's
    /// node index; a shared layer's second call is node 1).
    pub(crate) fn call_reference(&self, c: usize) -> (&str, usize) {
        let layer = self.network.calls[c].layer;
        let node = self.network.calls[..c].iter().filter(|k| k.layer == layer).count();
        (self.network.layers[layer].name(), node)
    }
}
