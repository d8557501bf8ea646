//! Patterns of several ONNX nodes that strata reads as one operator, rewritten before the
//! import converts the graph. Activations written out (GELU and its tanh form as exporters
//! write them for opsets before 20, which have no `Gelu`; softsign as `x / (1 + |x|)`; Mish
//! for opsets before 18;
//! torch.export's guard around softplus) are found by `fused_activations.rs`. Layer
//! normalization as exporters write it for opsets before 17 (which have no
//! `LayerNormalization`), `(x - mean(x)) / sqrt(mean((x - mean(x))²) + ε) · γ + β` over one
//! axis, becomes one `LayerNormalization` node, and RMS normalization as exporters write it
//! before opset 23, `x / sqrt(mean(x²) + ε) · γ` (or with torch's `rsqrt`), one
//! `RMSNormalization` node; the NaN guard torch.export puts after a masked
//! attention's softmax, `Where(IsNaN(p), 0, p)`, is dropped (see [`Patterns::nan_guard`]). An
//! RoBERTa's position ids computed from the token ids (`Equal`, `Not`, `CumSum`, `Mul`, `Add`)
//! become one `PositionIds` node (domain [`FUSED_DOMAIN`]), and PyTorch's `GroupNorm` (a
//! `Reshape` to `(N, G, -1)`, `InstanceNormalization`, a `Reshape` back) one `GroupNormalization`
//! node of that domain. An `Erf`, `Pow`, `Sqrt`, `IsNaN`,
//! `Not`, `Abs` or `CumSum` outside the patterns stays, and is refused as unsupported.

use super::proto::{AttributeProto, DOUBLE, FLOAT, GraphProto, INT32, INT64, NodeProto, TensorProto};
use std::collections::HashMap;

/// The domain of the operators that fusion writes which ONNX does not have (`PositionIds`).
pub(super) const FUSED_DOMAIN: &str = "strata.fused";

/// The graph's nodes with every pattern replaced by its one node (in the place of the
/// pattern's last node, so the order of the others stays).
pub(super) fn fuse(graph: &GraphProto) -> Vec<NodeProto> {
    let mut readers: HashMap<&str, usize> = HashMap::new();
    for name in graph
        .node
        .iter()
        .flat_map(|n| n.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
    {
        *readers.entry(name.as_str()).or_default() += 1;
    }
    let mut maker: HashMap<&str, usize> = HashMap::new();
    for (k, node) in graph.node.iter().enumerate() {
        for output in &node.output {
            maker.insert(output.as_str(), k);
        }
    }
    let patterns = Patterns { graph, readers, maker };
    let mut removed = vec![false; graph.node.len()];
    let mut replaced: HashMap<usize, NodeProto> = HashMap::new();
    for (k, node) in graph.node.iter().enumerate() {
        if !matches!(node.op_type.as_str(), "Erf" | "Tanh") || removed[k] {
            continue;
        }
        if let Some(gelu) = patterns.gelu(k) {
            if gelu.nodes.iter().any(|&n| removed[n]) {
                continue;
            }
            gelu.nodes.iter().for_each(|&n| removed[n] = true);
            let last = gelu.last;
            removed[last] = false;
            replaced.insert(last, gelu.node(&graph.node[last].name));
        }
    }
    for k in 0..graph.node.len() {
        let found = match graph.node[k].op_type.as_str() {
            _ if removed[k] => None,
            "Abs" => patterns.softsign(k),
            "Softplus" => patterns.mish(k),
            "InstanceNormalization" => patterns.group_norm(k),
            _ => None,
        };
        if let Some((nodes, fused)) = found {
            if nodes.iter().any(|&n| removed[n]) {
                continue;
            }
            let last = *nodes.last().expect("a pattern has nodes");
            nodes.iter().for_each(|&n| removed[n] = true);
            removed[last] = false;
            replaced.insert(last, fused);
        }
    }
    for k in 0..graph.node.len() {
        if graph.node[k].op_type != "ReduceMean" || removed[k] {
            continue;
        }
        if let Some(norm) = patterns.layer_norm(k).or_else(|| patterns.rms_norm(k)) {
            if norm.nodes.iter().any(|&n| removed[n]) {
                continue;
            }
            norm.nodes.iter().for_each(|&n| removed[n] = true);
            removed[norm.last] = false;
            replaced.insert(norm.last, norm.node);
        }
    }
    for k in 0..graph.node.len() {
        if graph.node[k].op_type != "CumSum" || removed[k] {
            continue;
        }
        if let Some((nodes, last, positions)) = patterns.position_ids(k) {
            if nodes.iter().any(|&n| removed[n]) {
                continue;
            }
            nodes.iter().for_each(|&n| removed[n] = true);
            removed[last] = false;
            replaced.insert(last, positions);
        }
    }
    // Readers of a guarded softmax or softplus read the softmax or softplus itself.
    let mut renamed: HashMap<String, String> = HashMap::new();
    for k in 0..graph.node.len() {
        if graph.node[k].op_type != "Where" || removed[k] {
            continue;
        }
        if let Some(is_nan) = patterns.nan_guard(k) {
            let (guard, softmax) = (&graph.node[k].output[0], &graph.node[k].input[2]);
            renamed.insert(guard.clone(), softmax.clone());
            removed[k] = true;
            removed[is_nan] = true;
        } else if let Some(greater) = patterns.softplus_guard(k) {
            let (guard, softplus) = (&graph.node[k].output[0], &graph.node[k].input[2]);
            renamed.insert(guard.clone(), softplus.clone());
            removed[k] = true;
            removed[greater] = true;
        }
    }
    graph
        .node
        .iter()
        .enumerate()
        .filter(|(k, _)| !removed[*k])
        .map(|(k, node)| replaced.remove(&k).unwrap_or_else(|| node.clone()))
        .map(|mut node| {
            for input in &mut node.input {
                if let Some(source) = renamed.get(input.as_str()) {
                    *input = source.clone();
                }
            }
            node
        })
        .collect()
}

/// A layer normalization found in the graph: its nodes, the last of them, and the
/// `LayerNormalization` node that replaces them (without a scale input when the pattern has
/// no `· γ`, which import reads as ones).
struct LayerNorm {
    nodes: Vec<usize>,
    last: usize,
    node: NodeProto,
}

/// The normalization node `op_type` over `axis` with `epsilon` that replaces a pattern ending
/// in node `last` (its name and output), reading `inputs`.
fn normalization_node(
    op_type: &str,
    last: &NodeProto,
    inputs: Vec<String>,
    (axis, epsilon): (i64, f32),
) -> Option<NodeProto> {
    let attribute = |name: &str, i: Option<i64>, f: Option<f32>| AttributeProto {
        name: name.into(),
        i,
        f,
        r#type: if i.is_some() { 2 } else { 1 },
        ..Default::default()
    };
    Some(NodeProto {
        name: last.name.clone(),
        op_type: op_type.into(),
        input: inputs,
        output: vec![last.output.first()?.clone()],
        attribute: vec![
            attribute("axis", Some(axis), None),
            attribute("epsilon", None, Some(epsilon)),
        ],
        ..Default::default()
    })
}

/// The graph with who makes and who reads each tensor.
pub(super) struct Patterns<'a> {
    pub graph: &'a GraphProto,
    readers: HashMap<&'a str, usize>,
    maker: HashMap<&'a str, usize>,
}

impl Patterns<'_> {
    /// The layer normalization whose first mean is `ReduceMean` node `mean`:
    /// `d = x - mean(x)`, `d / sqrt(mean(d²) + ε)`, then `· γ` and `+ β` by constant vectors
    /// when they follow; `None` when the nodes around it are not that.
    fn layer_norm(&self, mean: usize) -> Option<LayerNorm> {
        let nodes = &self.graph.node;
        let x = nodes[mean].input.first()?;
        let axis = self.single_axis(mean)?;
        let m = nodes[mean].output.first()?;
        let centre = self.only_reader(m)?;
        if nodes[centre].op_type != "Sub" || nodes[centre].input != [x.clone(), m.clone()] {
            return None;
        }
        // d is read by its square (Pow(d, 2) or Mul(d, d)) and by the division, nothing else.
        let d = nodes[centre].output.first()?;
        let readers: Vec<usize> = (0..nodes.len())
            .filter(|&k| nodes[k].input.iter().any(|i| i == d))
            .collect();
        let [a, b] = readers.as_slice() else {
            return None;
        };
        let (square, divide) = if nodes[*a].op_type == "Div" { (*b, *a) } else { (*a, *b) };
        let squares = match nodes[square].op_type.as_str() {
            "Pow" => self.operand_beside(square, 2.0, false).as_ref() == Some(d),
            "Mul" => nodes[square].input == [d.clone(), d.clone()],
            _ => false,
        };
        let uses = nodes[square].input.iter().filter(|i| *i == d).count() + 1;
        if !squares || nodes[divide].op_type != "Div" || self.readers.get(d.as_str()).copied() != Some(uses) {
            return None;
        }
        let variance = self.only_reader(nodes[square].output.first()?)?;
        if nodes[variance].op_type != "ReduceMean" || self.single_axis(variance)? != axis {
            return None;
        }
        let (shifted, epsilon, root) = self.root_of_shifted(nodes[variance].output.first()?)?;
        let s = nodes[root].output.first()?;
        if self.only_reader(s)? != divide || nodes[divide].input != [d.clone(), s.clone()] {
            return None;
        }
        let mut pattern = vec![mean, centre, square, variance, shifted, root, divide];
        let mut last = divide;
        let mut inputs = vec![x.clone()];
        // Then · γ and + β, by constant vectors.
        for op in ["Mul", "Add"] {
            let out = nodes[last].output.first()?;
            let next = match self.only_reader(out) {
                Some(next) if nodes[next].op_type == op => next,
                _ => break,
            };
            let Some(weight) = self.other_operand(next, out).filter(|w| self.is_vector(w)) else {
                break;
            };
            if op == "Add" && inputs.len() == 1 {
                inputs.push(String::new());
            }
            inputs.push(weight);
            pattern.push(next);
            last = next;
        }
        let matched = (pattern, last, inputs);
        self.normalization("LayerNormalization", matched, (axis, epsilon), Some(d))
    }

    /// `sqrt(m + ε)` of a mean `m`: the `Add` of a constant ε (its node, ε) and the `Sqrt`
    /// that alone reads it.
    fn root_of_shifted(&self, m: &str) -> Option<(usize, f32, usize)> {
        let nodes = &self.graph.node;
        let shifted = self.only_reader(m)?;
        let epsilon = self.scalar(&self.other_operand(shifted, m)?)?;
        let root = self.only_reader(nodes[shifted].output.first()?)?;
        if nodes[shifted].op_type != "Add" || nodes[root].op_type != "Sqrt" {
            return None;
        }
        Some((shifted, epsilon, root))
    }

    /// The normalization node `op_type` replacing the matched `pattern` of nodes (ending in
    /// `last`, reading `inputs`), when no tensor made inside it is read outside it (but
    /// `shared`, read twice inside).
    fn normalization(
        &self,
        op_type: &str,
        (pattern, last, inputs): (Vec<usize>, usize, Vec<String>),
        settings: (i64, f32),
        shared: Option<&String>,
    ) -> Option<LayerNorm> {
        let nodes = &self.graph.node;
        let inside = |o: &String| self.read_once(o) || Some(o) == shared;
        let once = |k: &usize| *k == last || nodes[*k].output.iter().all(inside);
        if !pattern.iter().all(once) {
            return None;
        }
        let node = normalization_node(op_type, &nodes[last], inputs, settings)?;
        Some(LayerNorm {
            nodes: pattern,
            last,
            node,
        })
    }

    /// The RMS normalization whose mean square is `ReduceMean` node `mean`, as exporters write
    /// it before opset 23 (which has the operator): `x / sqrt(mean(x²) + ε)`, or `x · r` with
    /// `r = 1 / sqrt(...)` (`Reciprocal`, or `Div(1, ·)`: torch's `rsqrt`), then `· γ` by a
    /// constant vector when it follows (after a `Cast` to float, as Llama's is written).
    /// Replaced by opset 23's `RMSNormalization` node.
    fn rms_norm(&self, mean: usize) -> Option<LayerNorm> {
        let nodes = &self.graph.node;
        let axis = self.single_axis(mean)?;
        let squares = nodes[mean].input.first()?;
        let square = self.maker_of(squares)?;
        let x = match nodes[square].op_type.as_str() {
            "Pow" => self.operand_beside(square, 2.0, false)?,
            "Mul" if nodes[square].input.len() == 2 && nodes[square].input[0] == nodes[square].input[1] => {
                nodes[square].input[0].clone()
            }
            _ => return None,
        };
        let (shifted, epsilon, root) = self.root_of_shifted(nodes[mean].output.first()?)?;
        let s = nodes[root].output.first()?;
        let after = self.only_reader(s)?;
        let mut pattern = vec![square, mean, shifted, root, after];
        let is_one = |name: &String| self.scalar(name) == Some(1.0);
        match (nodes[after].op_type.as_str(), nodes[after].input.as_slice()) {
            ("Div", [a, b]) if *a == x && b == s => {}
            ("Reciprocal", _) | ("Div", [_, _]) => {
                if nodes[after].op_type == "Div" && !(is_one(&nodes[after].input[0]) && nodes[after].input[1] == *s) {
                    return None;
                }
                let r = nodes[after].output.first()?;
                let multiply = self.only_reader(r)?;
                if nodes[multiply].op_type != "Mul" || self.other_operand(multiply, r)? != x {
                    return None;
                }
                pattern.push(multiply);
            }
            _ => return None,
        }
        let mut last = *pattern.last()?;
        let mut inputs = vec![x];
        // Then · γ, maybe after a Cast to float (a no-op on float tensors).
        let mut out = nodes[last].output.first()?;
        let mut cast = None;
        if let Some(k) = self.only_reader(out).filter(|&k| nodes[k].op_type == "Cast")
            && nodes[k]
                .attribute
                .iter()
                .any(|a| a.name == "to" && a.i == Some(i64::from(FLOAT)))
        {
            cast = Some(k);
            out = nodes[k].output.first()?;
        }
        if let Some(k) = self.only_reader(out).filter(|&k| nodes[k].op_type == "Mul")
            && let Some(weight) = self.other_operand(k, out).filter(|w| self.is_vector(w))
        {
            pattern.extend(cast);
            pattern.push(k);
            inputs.push(weight);
            last = k;
        }
        self.normalization("RMSNormalization", (pattern, last, inputs), (axis, epsilon), None)
    }

    /// The one axis `ReduceMean` node `k` averages over, keeping it (`keepdims` 1): its `axes`
    /// attribute (before opset 18) or constant input.
    fn single_axis(&self, k: usize) -> Option<i64> {
        let node = &self.graph.node[k];
        let attribute = |name: &str| node.attribute.iter().find(|a| a.name == name);
        if attribute("keepdims").and_then(|a| a.i).unwrap_or(1) != 1 {
            return None;
        }
        let axes = match (attribute("axes"), node.input.get(1).filter(|i| !i.is_empty())) {
            (Some(a), None) => a.ints.clone(),
            (None, Some(name)) => self.integers(name)?,
            _ => return None,
        };
        match axes.as_slice() {
            &[axis] => Some(axis),
            _ => None,
        }
    }

    /// The attribute holding the value of the `Constant` node that makes `name`: its tensor
    /// (`value`) or its list or number (`plain`, e.g. `value_ints`).
    fn constant_value(&self, name: &str, plain: &str) -> Option<&AttributeProto> {
        let node = &self.graph.node[self.maker_of(name)?];
        if node.op_type != "Constant" {
            return None;
        }
        node.attribute.iter().find(|a| a.name == "value" || a.name == plain)
    }

    /// The integers a constant (an initializer or a `Constant` node) holds: INT64, or INT32
    /// (`CumSum`'s axis as TorchScript writes it).
    fn integers(&self, name: &str) -> Option<Vec<i64>> {
        let tensor = match self.graph.initializer.iter().find(|t| t.name == name) {
            Some(t) => t,
            None => {
                let value = self.constant_value(name, "value_ints")?;
                if value.name == "value_ints" {
                    return Some(value.ints.clone());
                }
                value.t.as_ref()?
            }
        };
        match tensor.data_type {
            INT64 if !tensor.int64_data.is_empty() => Some(tensor.int64_data.clone()),
            INT64 => Some(
                tensor
                    .raw_data
                    .chunks_exact(8)
                    .map(|b| i64::from_le_bytes(b.try_into().unwrap_or([0; 8])))
                    .collect(),
            ),
            INT32 if !tensor.int32_data.is_empty() => Some(tensor.int32_data.iter().map(|&v| v as i64).collect()),
            INT32 => Some(
                tensor
                    .raw_data
                    .chunks_exact(4)
                    .map(|b| i32::from_le_bytes(b.try_into().unwrap_or([0; 4])) as i64)
                    .collect(),
            ),
            _ => None,
        }
    }

    /// PyTorch's `GroupNorm` as both its exporters write it, around `InstanceNormalization` node
    /// `norm`: `Reshape` to `(N, G, -1)`, the normalization (one scale and offset per group),
    /// `Reshape` back. The fused node (domain [`FUSED_DOMAIN`]) reads the input, the scale and
    /// offset, and both target shapes, which import checks once it knows the shapes.
    fn group_norm(&self, norm: usize) -> Option<(Vec<usize>, NodeProto)> {
        let nodes = &self.graph.node;
        let grouped = nodes[norm].input.first()?;
        let before = self.maker_of(grouped)?;
        if nodes[before].op_type != "Reshape" || self.only_reader(grouped)? != norm {
            return None;
        }
        let normalized = nodes[norm].output.first()?;
        let after = self.only_reader(normalized)?;
        if nodes[after].op_type != "Reshape" || nodes[after].input.first()? != normalized {
            return None;
        }
        let input = |k: usize, i: usize| nodes[k].input.get(i).cloned();
        let inputs = vec![
            input(before, 0)?,
            input(norm, 1)?,
            input(norm, 2)?,
            input(before, 1)?,
            input(after, 1)?,
        ];
        let fused = NodeProto {
            name: nodes[after].name.clone(),
            op_type: "GroupNormalization".into(),
            domain: FUSED_DOMAIN.into(),
            input: inputs,
            output: vec![nodes[after].output.first()?.clone()],
            attribute: nodes[norm].attribute.clone(),
        };
        Some((vec![before, norm, after], fused))
    }

    /// Whether `name` is an initializer of one axis (a normalization's γ or β).
    fn is_vector(&self, name: &str) -> bool {
        self.graph
            .initializer
            .iter()
            .any(|t| t.name == name && t.dims.len() == 1)
    }

    /// The node that makes `name`.
    pub(super) fn maker_of(&self, name: &str) -> Option<usize> {
        self.maker.get(name).copied()
    }

    /// Whether `name` is read by one node only.
    pub(super) fn read_once(&self, name: &str) -> bool {
        self.readers.get(name).copied() == Some(1)
    }

    /// The one node that reads `name`.
    pub(super) fn only_reader(&self, name: &str) -> Option<usize> {
        if !self.read_once(name) {
            return None;
        }
        self.graph.node.iter().position(|n| n.input.iter().any(|i| i == name))
    }

    /// The operand of two-input node `k` that is not `name`.
    pub(super) fn other_operand(&self, k: usize, name: &str) -> Option<String> {
        match self.graph.node[k].input.as_slice() {
            [a, b] if a == name => Some(b.clone()),
            [a, b] if b == name => Some(a.clone()),
            _ => None,
        }
    }

    /// The operand of two-input node `k` beside the scalar `value` (second operand only
    /// unless `either`).
    pub(super) fn operand_beside(&self, k: usize, value: f32, either: bool) -> Option<String> {
        match self.graph.node[k].input.as_slice() {
            [a, b] if self.is_scalar(b, value) => Some(a.clone()),
            [a, b] if either && self.is_scalar(a, value) => Some(b.clone()),
            _ => None,
        }
    }

    /// `Where(IsNaN(p), 0, p)` for a `Softmax` output `p`, as torch.export writes
    /// `scaled_dot_product_attention` with a mask (a row whose every score is −∞ has a NaN
    /// softmax, which the guard makes zeros): the `IsNaN` node, when `Where` node `k` is that
    /// guard and its output is not a graph output. strata masks scores with a large negative
    /// number, never −∞, so its softmax has no NaN to guard against.
    fn nan_guard(&self, k: usize) -> Option<usize> {
        let nodes = &self.graph.node;
        let [condition, zero, softmax] = nodes[k].input.as_slice() else {
            return None;
        };
        let is_nan = self.maker_of(condition)?;
        let output = nodes[k].output.first()?;
        let guards = nodes[is_nan].op_type == "IsNaN"
            && nodes[is_nan].input.first() == Some(softmax)
            && self.read_once(condition)
            && self.is_scalar(zero, 0.0)
            && nodes[self.maker_of(softmax)?].op_type == "Softmax"
            && !self.graph.output.iter().any(|o| o.name == *output);
        guards.then_some(is_nan)
    }

    /// RoBERTa's position ids from token ids, as both PyTorch exporters write
    /// `create_position_ids_from_input_ids`: `mask = Cast(Not(Equal(ids, pad)))`,
    /// `CumSum(mask, 1) · mask` (through `Cast`s), plus `pad` (and a past length of 0). Around
    /// `CumSum` node `k`: the pattern's nodes, the last of them, and the `PositionIds` node
    /// that replaces them (reading `ids`, with attribute `padding_idx`).
    fn position_ids(&self, k: usize) -> Option<(Vec<usize>, usize, NodeProto)> {
        let nodes = &self.graph.node;
        let cast_chain = |name: &str, pattern: &mut Vec<usize>| self.through_casts(name, pattern);
        let mut pattern = vec![k];
        let not = cast_chain(nodes[k].input.first()?, &mut pattern)?;
        let axis = self.scalar_int(nodes[k].input.get(1)?)?;
        let equal = self.maker_of(nodes[not].input.first()?)?;
        if nodes[not].op_type != "Not" || nodes[equal].op_type != "Equal" || !(axis == 1 || axis == -1) {
            return None;
        }
        let [a, b] = nodes[equal].input.as_slice() else {
            return None;
        };
        let (ids, padding) = match (self.scalar_int(a), self.scalar_int(b)) {
            (None, Some(pad)) => (a.clone(), pad),
            (Some(pad), None) => (b.clone(), pad),
            _ => return None,
        };
        pattern.extend([not, equal]);
        // Forward from CumSum: Casts, the Mul by the mask, Casts, Adds of numbers summing to pad.
        let (mut at, mut multiplied, mut added) = (k, false, 0i64);
        loop {
            let output = nodes[at].output.first()?;
            let next = self.only_reader(output)?;
            if pattern.contains(&next) {
                // A cycle (a hostile file; import refuses cycles later).
                return None;
            }
            match nodes[next].op_type.as_str() {
                "Cast" => {}
                "Mul" if !multiplied => {
                    let other = self.other_operand(next, output)?;
                    let mut masks = Vec::new();
                    if cast_chain(&other, &mut masks)? != not {
                        return None;
                    }
                    masks.retain(|m| !pattern.contains(m));
                    pattern.extend(masks);
                    multiplied = true;
                }
                "Add" if multiplied => added += self.scalar_int(&self.other_operand(next, output)?)?,
                _ => break,
            }
            pattern.push(next);
            at = next;
            if multiplied && added == padding && nodes[at].op_type == "Add" {
                break;
            }
        }
        if !multiplied || added != padding || nodes[at].op_type != "Add" {
            return None;
        }
        // Every tensor inside is read by the pattern alone (the mask's Casts may be read twice).
        let inside = |name: &String| {
            let readers = self
                .graph
                .node
                .iter()
                .enumerate()
                .filter(|(_, n)| n.input.contains(name));
            readers.clone().count() == self.readers.get(name.as_str()).copied().unwrap_or(0)
                && readers.map(|(r, _)| r).all(|r| pattern.contains(&r))
        };
        let sealed = pattern
            .iter()
            .filter(|&&n| n != at)
            .all(|&n| nodes[n].output.iter().all(inside));
        if !sealed {
            return None;
        }
        let node = NodeProto {
            name: nodes[at].name.clone(),
            op_type: "PositionIds".into(),
            domain: FUSED_DOMAIN.into(),
            input: vec![ids],
            output: nodes[at].output.clone(),
            attribute: vec![AttributeProto {
                name: "padding_idx".into(),
                r#type: 2,
                i: Some(padding),
                ..Default::default()
            }],
        };
        Some((pattern, at, node))
    }

    /// The node that makes `name` under any `Cast`s (which are pushed to `casts`).
    fn through_casts(&self, name: &str, casts: &mut Vec<usize>) -> Option<usize> {
        let mut maker = self.maker_of(name)?;
        while self.graph.node[maker].op_type == "Cast" {
            // A cycle of Casts (a hostile file; import refuses cycles later) ends the walk.
            if casts.contains(&maker) || casts.len() > self.graph.node.len() {
                return None;
            }
            casts.push(maker);
            maker = self.maker_of(self.graph.node[maker].input.first()?)?;
        }
        Some(maker)
    }

    /// The one whole number a constant holds (an integer tensor, or a float equal to one).
    fn scalar_int(&self, name: &str) -> Option<i64> {
        if let Some(values) = self.integers(name)
            && let [value] = values.as_slice()
        {
            return Some(*value);
        }
        self.scalar(name).filter(|v| v.fract() == 0.0).map(|v| v as i64)
    }

    /// Whether `name` is a constant holding the one number `value` (to float precision).
    pub(super) fn is_scalar(&self, name: &str, value: f32) -> bool {
        self.scalar(name)
            .is_some_and(|v| (v - value).abs() <= 1e-5 * value.abs().max(1.0))
    }

    /// The one number a constant (an initializer or a `Constant` node) holds.
    pub(super) fn scalar(&self, name: &str) -> Option<f32> {
        if let Some(t) = self.graph.initializer.iter().find(|t| t.name == name) {
            return number(t);
        }
        let value = self.constant_value(name, "value_float")?;
        match &value.t {
            Some(t) => number(t),
            None => value.f,
        }
    }
}

/// The one float a tensor holds, from its typed field or its raw bytes.
fn number(t: &TensorProto) -> Option<f32> {
    // Checked: corrupt dims could multiply to 1 (or overflow) in wrapping arithmetic.
    if t.dims.iter().try_fold(1i64, |n, &d| n.checked_mul(d)) != Some(1) {
        return None;
    }
    match t.data_type {
        FLOAT => t.float_data.first().copied().or_else(|| {
            let bytes: [u8; 4] = t.raw_data.as_slice().try_into().ok()?;
            Some(f32::from_le_bytes(bytes))
        }),
        DOUBLE => t.double_data.first().map(|&v| v as f32).or_else(|| {
            let bytes: [u8; 8] = t.raw_data.as_slice().try_into().ok()?;
            Some(f64::from_le_bytes(bytes) as f32)
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dims_that_multiply_to_one_only_when_wrapped_are_not_a_scalar() {
        // 3 · -0x5555555555555555 is 1 modulo 2⁶⁴ (and overflows in a debug build).
        let tensor = |dims: Vec<i64>| TensorProto {
            dims,
            data_type: FLOAT,
            float_data: vec![2.0],
            ..Default::default()
        };
        assert_eq!(number(&tensor(vec![1])), Some(2.0));
        assert_eq!(number(&tensor(vec![3, -0x5555_5555_5555_5555])), None);
    }
}
