//! Drops the `Transpose` pairs that undo each other. Every channels-first operator is written
//! between a `Transpose` to NCHW and one back (`layers.rs`), so a chain of convolutions and
//! pooling would go back and forth between layouts after each layer; with the pairs dropped the
//! chain stays channels-first between its first and last operator, while the graph's inputs and
//! outputs keep strata's channels-last layout.
//!
//! Two patterns, until neither is found: `Transpose(q)` of `Transpose(p)` where `q` undoes
//! `p`, and the same pair around an elementwise operator of one tensor (an activation), which
//! gives the same values in either layout. Only tensors that nothing else reads are bypassed.

use super::proto::NodeProto;
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

/// A pair of `Transpose`s that undo each other: indices into the nodes.
enum Pair {
    /// The second reads the first.
    Adjacent { first: usize, last: usize },
    /// The second reads an elementwise node that reads the first.
    Around { first: usize, middle: usize, last: usize },
}

/// The graph's nodes without the `Transpose` pairs that undo each other (see the module's
/// documentation); `nodes` are in the order they run, graph outputs read through `Identity`s.
pub(super) fn drop_transpose_pairs(mut nodes: Vec<NodeProto>) -> Vec<NodeProto> {
    while let Some(pair) = find_pair(&nodes) {
        let (first, last, replacement) = match pair {
            Pair::Adjacent { first, last } => (first, last, nodes[first].input[0].clone()),
            Pair::Around { first, middle, last } => {
                nodes[middle].input[0] = nodes[first].input[0].clone();
                (first, last, nodes[middle].output[0].clone())
            }
        };
        let bypassed = nodes[last].output[0].clone();
        for input in nodes.iter_mut().flat_map(|n| n.input.iter_mut()) {
            if *input == bypassed {
                *input = replacement.clone();
            }
        }
        nodes.remove(last);
        nodes.remove(first);
    }
    nodes
}

/// The first removable pair, if any.
fn find_pair(nodes: &[NodeProto]) -> Option<Pair> {
    let producer: HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for input in nodes.iter().flat_map(|n| &n.input) {
        *readers.entry(input.as_str()).or_default() += 1;
    }
    let read_once = |tensor: &str| readers.get(tensor) == Some(&1);
    let transpose_of = |tensor: &str| {
        producer
            .get(tensor)
            .copied()
            .filter(|&i| nodes[i].op_type == "Transpose" && nodes[i].input.len() == 1)
    };
    for (last, node) in nodes.iter().enumerate() {
        if node.op_type != "Transpose" || node.input.len() != 1 || !read_once(&node.input[0]) {
            continue;
        }
        let between = node.input[0].as_str();
        if let Some(first) = transpose_of(between)
            && undoes(&perm(&nodes[first]), &perm(node))
        {
            return Some(Pair::Adjacent { first, last });
        }
        let Some(&middle) = producer.get(between) else {
            continue;
        };
        let function = &nodes[middle];
        if !ELEMENTWISE.contains(&function.op_type.as_str()) || function.output.len() != 1 {
            continue;
        }
        let Some(data) = function.input.first() else {
            continue;
        };
        if let Some(first) = transpose_of(data)
            && read_once(data)
            && undoes(&perm(&nodes[first]), &perm(node))
        {
            return Some(Pair::Around { first, middle, last });
        }
    }
    None
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
