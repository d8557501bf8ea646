//! Drops the `Transpose` pairs that undo each other. Every channels-first operator is written
//! between a `Transpose` to NCHW and one back (`layers.rs`), so a chain of convolutions and
//! pooling would go back and forth between layouts after each layer; with the pairs dropped the
//! chain stays channels-first between its first and last operator, while the graph's inputs and
//! outputs keep strata's channels-last layout.
//!
//! The pattern, until it is not found: `Transpose(q)` of `Transpose(p)` where `q` undoes `p`,
//! directly or through a chain of elementwise operators of one tensor each: activations, and
//! `Mul`, `Add`, `Sub`, `Div` by a weight that is a number or one value per channel (the
//! inference form of BatchNormalization). Those give the same values in either layout, once a
//! per-channel weight `(C)` is given the shape that broadcasts over the other layout's channel
//! axis (`(C, 1, 1)` for NCHW). Only tensors that nothing else reads are bypassed.

use super::proto::{NodeProto, TensorProto};
use std::collections::HashMap;

/// Operators that apply one function to each value of their one tensor input (`Clip`'s other
/// inputs are its scalar bounds), so they commute with any `Transpose`.
const ELEMENTWISE: &[&str] = &[
    "Relu",
    "LeakyRelu",
    "Sigmoid",
    "Tanh",
    "Elu",
    "Selu",
    "HardSigmoid",
    "HardSwish",
    "Softplus",
    "Softsign",
    "Exp",
    "Clip",
];

/// Binary operators that commute with a `Transpose` when their other operand is a weight of
/// at most one axis.
const BY_WEIGHT: &[&str] = &["Mul", "Add", "Sub", "Div"];

/// A pair of `Transpose`s that undo each other, with what lies between them.
struct Pair {
    /// The first `Transpose`.
    first: usize,
    /// The nodes between, last to first, each with the index of its tensor input.
    chain: Vec<(usize, usize)>,
    /// The second `Transpose`.
    last: usize,
}

/// The graph's nodes without the `Transpose` pairs that undo each other (see the module's
/// documentation); `nodes` are in the order they run, graph outputs read through `Identity`s.
/// Per-channel weights moved to the other layout are added to `initializers`, reshaped.
pub(super) fn drop_transpose_pairs(mut nodes: Vec<NodeProto>, initializers: &mut Vec<TensorProto>) -> Vec<NodeProto> {
    while let Some(Pair { first, chain, last }) = find_pair(&nodes, initializers) {
        let perm = perm(&nodes[first]);
        let source = nodes[first].input[0].clone();
        let replacement = match chain.first() {
            None => source.clone(),
            Some(&(node, _)) => nodes[node].output[0].clone(),
        };
        if let Some(&(node, slot)) = chain.last() {
            nodes[node].input[slot] = source;
        }
        for &(node, slot) in &chain {
            for (k, input) in nodes[node].input.clone().into_iter().enumerate() {
                if k != slot && nodes[node].op_type != "Clip" {
                    nodes[node].input[k] = relaid(&input, &perm, initializers);
                }
            }
        }
        let bypassed = nodes[last].output[0].clone();
        for input in nodes.iter_mut().flat_map(|n| n.input.iter_mut()) {
            if *input == bypassed {
                *input = replacement.clone();
            }
        }
        nodes.remove(last);
        nodes.remove(first);
    }
    // A weight moved to the other layout leaves its first shape unread.
    let read: std::collections::HashSet<&str> = nodes.iter().flat_map(|n| &n.input).map(String::as_str).collect();
    initializers.retain(|t| read.contains(t.name.as_str()));
    nodes
}

/// The first removable pair, if any.
fn find_pair(nodes: &[NodeProto], initializers: &[TensorProto]) -> Option<Pair> {
    let producer: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for input in nodes.iter().flat_map(|n| &n.input) {
        *readers.entry(input.as_str()).or_default() += 1;
    }
    let weights: HashMap<&str, usize> = initializers.iter().map(|t| (t.name.as_str(), t.dims.len())).collect();
    for (last, node) in nodes.iter().enumerate() {
        if node.op_type != "Transpose" || node.input.len() != 1 {
            continue;
        }
        let mut chain = Vec::new();
        let mut tensor = node.input[0].as_str();
        while readers.get(tensor) == Some(&1) {
            let Some(&at) = producer.get(tensor) else {
                break;
            };
            let before = &nodes[at];
            if before.op_type == "Transpose" && before.input.len() == 1 {
                if undoes(&perm(before), &perm(node)) {
                    return Some(Pair { first: at, chain, last });
                }
                break;
            }
            let Some(slot) = tensor_input(before, &weights) else {
                break;
            };
            chain.push((at, slot));
            tensor = before.input[slot].as_str();
        }
    }
    None
}

/// The index of `node`'s one tensor input when it commutes with a `Transpose`, else `None`.
fn tensor_input(node: &NodeProto, weights: &HashMap<&str, usize>) -> Option<usize> {
    let op = node.op_type.as_str();
    if node.output.len() != 1 || node.input.is_empty() {
        return None;
    }
    if ELEMENTWISE.contains(&op) {
        return Some(0);
    }
    if !BY_WEIGHT.contains(&op) || node.input.len() != 2 {
        return None;
    }
    let small = |k: usize| weights.get(node.input[k].as_str()).is_some_and(|&rank| rank <= 1);
    match (small(0), small(1)) {
        (false, true) => Some(0),
        (true, false) => Some(1),
        _ => None,
    }
}

/// The name of weight `name` laid out for the input of a `Transpose(perm)`: unchanged for a
/// number, else a copy shaped `(C, 1, ...)` whose channel axis is the one `perm` moved last.
fn relaid(name: &str, perm: &[i64], initializers: &mut Vec<TensorProto>) -> String {
    let Some(weight) = initializers.iter().find(|t| t.name == name) else {
        return name.to_string();
    };
    let (Some(&channels), Some(&axis)) = (weight.dims.first(), perm.last()) else {
        return name.to_string();
    };
    if weight.dims.len() != 1 || channels == 1 {
        return name.to_string();
    }
    let trailing = perm.len() as i64 - 1 - axis;
    let relaid = format!("{name}/axis_{axis}");
    if !initializers.iter().any(|t| t.name == relaid) {
        let mut copy = weight.clone();
        copy.name = relaid.clone();
        copy.dims = std::iter::once(channels).chain((0..trailing).map(|_| 1)).collect();
        initializers.push(copy);
    }
    relaid
}

/// A `Transpose` node's permutation.
fn perm(node: &NodeProto) -> Vec<i64> {
    node.attribute
        .iter()
        .find(|a| a.name == "perm")
        .map(|a| a.ints.clone())
        .unwrap_or_default()
}

/// Whether transposing by `p`, then by `q`, leaves a tensor as it was.
fn undoes(p: &[i64], q: &[i64]) -> bool {
    p.len() == q.len()
        && !p.is_empty()
        && q.iter().enumerate().all(|(k, &j)| {
            usize::try_from(j)
                .ok()
                .and_then(|j| p.get(j))
                .is_some_and(|&v| v == k as i64)
        })
}
