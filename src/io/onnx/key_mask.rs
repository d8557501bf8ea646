//! An attention mask given as a model input: Hugging Face's `attention_mask` `(N, T)`, 1 for a
//! token and 0 for padding. Exporters turn it into a bias added to the attention scores (or a
//! `Where` of them) through chains of casts, reshapes, gathers and comparisons that change
//! with every version of `transformers`. Rather than follow each chain, import finds the nodes
//! that compute from such an input and constants only (its cone), leaves them out of the model,
//! and where their result meets the scores computes it at import for probe masks: when it
//! leaves out key `j` exactly where the probe's `j` is 0 (and, for a causal mask, the keys after
//! each query), the attention takes the input as its padding mask. Anything else is refused.

use super::convert::{Converter, MaskCone, MaskPart, Node, Tensor};
use super::proto::GraphProto;
use super::tensors::{Constant, TensorReader, Values, batch_factor};
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// An added score at or below this leaves a key out (as in `heads.rs`).
const LEFT_OUT: f32 = -1e4;

/// Operators a mask's chain may use: each computes its output from its inputs' values and
/// shapes alone, and import can compute it on constants.
const MASK_OPS: &[&str] = &[
    "Cast",
    "Unsqueeze",
    "Squeeze",
    "Reshape",
    "Flatten",
    "Gather",
    "GatherND",
    "GatherElements",
    "Expand",
    "And",
    "Or",
    "Not",
    "Xor",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "Where",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Neg",
    "Concat",
    "Slice",
    "Identity",
    "Transpose",
    "Shape",
    "ConstantOfShape",
    "Range",
    "Max",
    "Min",
];

/// What [`mask_inputs`] found: the cones, and the nodes import leaves out (their outputs are
/// [`MaskPart`]s).
#[derive(Default)]
pub(super) struct MaskPlan {
    pub skipped: HashMap<usize, Rc<MaskCone>>,
}

/// The graph inputs `(N, steps)` whose values reach the rest of the graph only through `Add`
/// or `Where` nodes (where a mask meets attention scores), and the nodes that compute from
/// them. `order` is the graph's node order; `steps` each input's per-sample shape.
pub(super) fn mask_inputs(
    graph: &GraphProto,
    order: &[usize],
    shapes: &HashMap<String, Vec<usize>>,
    opset: i64,
) -> MaskPlan {
    let fixed = fixed_tensors(graph, order);
    let mut plan = MaskPlan::default();
    for input in &graph.input {
        let Some(&[steps]) = shapes.get(&input.name).map(Vec::as_slice) else {
            continue;
        };
        if let Some((nodes, skipped)) = cone_of(graph, order, &fixed, &input.name) {
            let cone = Rc::new(MaskCone {
                input: input.name.clone(),
                steps,
                nodes: nodes.iter().map(|&k| graph.node[k].clone()).collect(),
                opset,
            });
            plan.skipped.extend(skipped.into_iter().map(|k| (k, cone.clone())));
        }
    }
    plan
}

/// Tensors known at import without any input's values: initializers, `Constant` outputs,
/// shapes, and what nodes compute from those alone.
fn fixed_tensors<'a>(graph: &'a GraphProto, order: &[usize]) -> HashSet<&'a str> {
    let mut fixed: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    for &k in order {
        let node = &graph.node[k];
        let inputs = || node.input.iter().filter(|i| !i.is_empty());
        if node.op_type == "Constant" || node.op_type == "Shape" || inputs().all(|i| fixed.contains(i.as_str())) {
            fixed.extend(node.output.iter().map(String::as_str));
        }
    }
    fixed
}

/// The cone of `input` (every node computing from it and fixed tensors through [`MASK_OPS`],
/// the shape arithmetic on those included) and the nodes of it import leaves out, when the
/// input's values leave the cone only into `Add` and `Where` nodes; `None` otherwise.
fn cone_of(
    graph: &GraphProto,
    order: &[usize],
    fixed: &HashSet<&str>,
    input: &str,
) -> Option<(Vec<usize>, HashSet<usize>)> {
    // Tensors of the cone, and whether each depends on the input's values (not only its shape).
    let mut made: HashMap<&str, bool> = HashMap::from([(input, true)]);
    let mut nodes = Vec::new();
    for &k in order {
        let node = &graph.node[k];
        let inputs: Vec<&str> = node
            .input
            .iter()
            .map(String::as_str)
            .filter(|i| !i.is_empty())
            .collect();
        let reads_cone = inputs.iter().any(|i| made.contains_key(i));
        let fits = inputs.iter().all(|i| made.contains_key(i) || fixed.contains(i));
        // A `Gather` by the input's values is an embedding, not a mask.
        let indexed = node.op_type == "Gather" && inputs.get(1).is_some_and(|i| made.get(i) == Some(&true));
        if !reads_cone || !fits || indexed || !MASK_OPS.contains(&node.op_type.as_str()) {
            continue;
        }
        let by_value = node.op_type != "Shape" && inputs.iter().any(|i| made.get(i) == Some(&true));
        made.extend(node.output.iter().map(|o| (o.as_str(), by_value)));
        nodes.push(k);
    }
    let mut in_cone: HashSet<usize> = nodes.iter().copied().collect();
    // Shape arithmetic only the cone reads (the indices torch.export computes from the batch
    // size to gather the mask by) joins it: computed for one sample when the mask is probed.
    let mut readers: HashMap<&str, Vec<usize>> = HashMap::new();
    for (k, node) in graph.node.iter().enumerate() {
        for i in node.input.iter().filter(|i| !i.is_empty()) {
            readers.entry(i.as_str()).or_default().push(k);
        }
    }
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    for &k in order.iter().rev() {
        let node = &graph.node[k];
        let only_for_cone = !in_cone.contains(&k)
            && node
                .output
                .iter()
                .all(|o| fixed.contains(o.as_str()) && !outputs.contains(o.as_str()))
            && node.output.iter().any(|o| readers.contains_key(o.as_str()))
            && node
                .output
                .iter()
                .flat_map(|o| readers.get(o.as_str()).into_iter().flatten())
                .all(|r| in_cone.contains(r));
        if only_for_cone {
            in_cone.insert(k);
            made.extend(node.output.iter().map(|o| (o.as_str(), false)));
        }
    }
    let position: HashMap<usize, usize> = order.iter().enumerate().map(|(p, &k)| (k, p)).collect();
    let mut nodes: Vec<usize> = in_cone.iter().copied().collect();
    nodes.sort_by_key(|k| position.get(k));
    // Readers outside the cone of what depends on the mask's values: `Add` or `Where` only.
    let mut reaches_scores = false;
    for (k, node) in graph.node.iter().enumerate() {
        if in_cone.contains(&k) {
            continue;
        }
        for i in &node.input {
            match made.get(i.as_str()) {
                Some(true) if matches!(node.op_type.as_str(), "Add" | "Where") => reaches_scores = true,
                Some(true) => return None,
                _ => {}
            }
        }
    }
    if !reaches_scores || graph.output.iter().any(|o| made.get(o.name.as_str()) == Some(&true)) {
        return None;
    }
    // Shape arithmetic that nodes outside the cone read is converted as usual (with its own
    // inputs); the rest of the cone is left out.
    let mut kept: HashSet<&str> = graph
        .node
        .iter()
        .enumerate()
        .filter(|(k, _)| !in_cone.contains(k))
        .flat_map(|(_, n)| n.input.iter().map(String::as_str))
        .chain(graph.output.iter().map(|o| o.name.as_str()))
        .filter(|i| made.get(i) == Some(&false))
        .collect();
    let mut skipped = HashSet::new();
    for &k in nodes.iter().rev() {
        let node = &graph.node[k];
        if node.output.iter().any(|o| kept.contains(o.as_str())) {
            // A shape of the mask's values is found by computing them (`mask_shape`).
            if node.op_type != "Shape" {
                kept.extend(node.input.iter().map(String::as_str));
            }
        } else {
            skipped.insert(k);
        }
    }
    Some((nodes, skipped))
}

/// How a mask meets the scores: added, or picking them (`Where(mask, scores, fill)`: kept
/// where the mask holds) or the fill (`Where(mask, fill, scores)`: kept where it does not).
#[derive(Clone, Copy, Debug, PartialEq)]
pub(super) enum MaskUse {
    Added,
    KeepsWhereTrue,
    KeepsWhereFalse,
}

impl Converter {
    /// Whether `part`, used on attention scores of `(heads, queries, keys)` as `used`, leaves
    /// out exactly the keys the mask input marks 0 (`Ok(false)`) or those and the keys after each
    /// query (`Ok(true)`: causal too); an error saying what it does otherwise.
    pub(super) fn padding_mask(
        &mut self,
        part: &MaskPart,
        used: MaskUse,
        [heads, queries, keys]: [usize; 3],
    ) -> Result<bool, String> {
        let cone = &part.cone;
        let refused = || {
            format!(
                "the scores are masked by '{}', computed from input '{}', in a way strata does not read as a \
                 padding mask of that input (1 for a key to attend, 0 for one to leave out)",
                part.tensor, cone.input
            )
        };
        if keys != cone.steps {
            return Err(refused());
        }
        let mut causal = None;
        // Every key attended, every other, all but the last.
        let probes: [Vec<i64>; 3] = [
            vec![1; keys],
            (0..keys).map(|j| i64::from(j % 2 == 0)).collect(),
            (0..keys).map(|j| i64::from(j + 1 < keys)).collect(),
        ];
        for probe in probes {
            let mask = self.mask_for(part, &probe)?;
            let kept = kept_keys(&mask, used, [heads, queries, keys]).ok_or_else(refused)?;
            let padding = |_: usize, j: usize| probe[j] != 0;
            let causal_padding = |i: usize, j: usize| probe[j] != 0 && j <= i;
            let matches = |rule: &dyn Fn(usize, usize) -> bool| {
                (0..heads).all(|h| (0..queries).all(|i| (0..keys).all(|j| kept(h, i, j) == rule(i, j))))
            };
            let this = match (matches(&padding), queries == keys && matches(&causal_padding)) {
                (true, _) => false,
                (false, true) => true,
                (false, false) => return Err(refused()),
            };
            if causal.is_some_and(|c| c != this) {
                return Err(refused());
            }
            causal = Some(this);
        }
        Ok(causal.unwrap_or(false))
    }

    /// The ONNX shape of `part`, its batch axis first: the batch's stand-in (or fixed size),
    /// then the sizes it has for one sample. (What depends on a mask's values keeps its batch
    /// axis: the chain's operators do not reduce.)
    pub(super) fn mask_shape(&mut self, part: &MaskPart, batch: i64) -> Result<Vec<i64>, String> {
        let ones = vec![1; part.cone.steps];
        let value = self.mask_for(part, &ones)?;
        match value.shape.split_first() {
            Some((1, rest)) => Ok(std::iter::once(batch).chain(rest.iter().map(|&d| d as i64)).collect()),
            _ => Err(format!(
                "the shape of '{}', computed from input '{}', does not keep the batch axis first",
                part.tensor, part.cone.input
            )),
        }
    }

    /// The value of `part` when the mask input holds `probe` (one sample): the cone computed
    /// at import on that constant, the converter's tensors left as they were.
    fn mask_for(&mut self, part: &MaskPart, probe: &[i64]) -> Result<Rc<Constant>, String> {
        let cone = part.cone.clone();
        let mut saved = Vec::with_capacity(cone.nodes.len() + 1);
        let mut set = |converter: &mut Converter, name: &str, tensor: Tensor| {
            saved.push((name.to_string(), converter.tensors.insert(name.to_string(), tensor)));
        };
        set(
            self,
            &cone.input,
            Tensor::Constant(Rc::new(Constant::int(vec![1, probe.len()], probe.to_vec()))),
        );
        // The chain's constants are inline (`ConstantOfShape`'s value): no file to read.
        let mut reader = TensorReader::new(std::path::Path::new(&cone.input), false).map_err(|e| e.to_string());
        let mut result = Err(format!("'{}' is not computed from input '{}'", part.tensor, cone.input));
        for proto in &cone.nodes {
            let node = Node {
                proto,
                opset: cone.opset,
            };
            // Tensors from outside the chain, for one sample: the batch size as 1.
            for input in proto.input.iter().filter(|i| !i.is_empty()) {
                if let Some(one) = self.tensors.get(input).and_then(for_one_sample) {
                    set(self, input, Tensor::Constant(Rc::new(one)));
                }
            }
            // Every input a constant now: what `import.rs` would do with the node.
            let value = match (proto.op_type.as_str(), &mut reader) {
                ("Shape", _) => self.shape(&node),
                ("ConstantOfShape", Ok(reader)) => self.constant_of_shape(&node, reader),
                ("Constant", Ok(reader)) => self.constant_node(&node, reader),
                (_, Err(e)) => Err(e.clone()),
                _ => self.fold(&node),
            };
            match value {
                Ok(value @ Tensor::Constant(_)) => {
                    if let Some(output) = proto.output.first() {
                        set(self, output, value);
                    }
                }
                Ok(_) => {
                    result = Err(format!(
                        "node '{}' of the mask's chain is not computed at import",
                        proto.name
                    ));
                    break;
                }
                Err(e) => {
                    result = Err(format!("node '{}' of the mask's chain: {e}", proto.name));
                    break;
                }
            }
            if proto.output.first() == Some(&part.tensor) {
                result = match self.tensors.get(&part.tensor) {
                    Some(Tensor::Constant(c)) => Ok(c.clone()),
                    _ => result,
                };
                break;
            }
        }
        for (name, old) in saved.into_iter().rev() {
            match old {
                Some(old) => self.tensors.insert(name, old),
                None => self.tensors.remove(&name),
            };
        }
        result
    }
}

/// A tensor computed from the batch size (a stand-in in a constant, indices computed from
/// `Range(0, N)`) as it is for one sample; `None` for any other tensor.
fn for_one_sample(tensor: &Tensor) -> Option<Constant> {
    match tensor {
        Tensor::Indices(indices) => {
            let shape = std::iter::once(1).chain(indices.shape.iter().copied()).collect();
            Some(Constant::int(shape, indices.offsets.to_vec()))
        }
        Tensor::Constant(c) => match &c.values {
            Values::Int(v) if v.iter().any(|&d| batch_factor(d).is_some()) => {
                let one = v.iter().map(|&d| batch_factor(d).unwrap_or(d)).collect();
                Some(Constant::int(c.shape.clone(), one))
            }
            _ => None,
        },
        _ => None,
    }
}

/// Which scores a computed mask keeps, per `(head, query, key)`, when its shape broadcasts to
/// `(1, heads, queries, keys)` and an added mask holds only 0 and very negative numbers;
/// `None` otherwise.
fn kept_keys(
    mask: &Constant,
    used: MaskUse,
    [heads, queries, keys]: [usize; 3],
) -> Option<impl Fn(usize, usize, usize) -> bool> {
    let mut shape = mask.shape.clone();
    while shape.len() < 4 {
        shape.insert(0, 1);
    }
    let fits = shape.len() == 4
        && shape[0] == 1
        && [1, heads].contains(&shape[1])
        && [1, queries].contains(&shape[2])
        && [1, keys].contains(&shape[3]);
    let values = mask.floats();
    if !fits || used == MaskUse::Added && values.iter().any(|&v| v != 0.0 && v > LEFT_OUT) {
        return None;
    }
    Some(move |h: usize, i: usize, j: usize| {
        let at = ((h.min(shape[1] - 1) * shape[2] + i.min(shape[2] - 1)) * shape[3]) + j.min(shape[3] - 1);
        match used {
            MaskUse::Added => values[at] == 0.0,
            MaskUse::KeepsWhereTrue => values[at] != 0.0,
            MaskUse::KeepsWhereFalse => values[at] == 0.0,
        }
    })
}
