//! ONNX import: an ONNX file (a PyTorch export, a torchvision classifier) as a strata
//! functional model that predicts and trains like any other.
//!
//! ```no_run
//! # fn main() -> strata::Result<()> {
//! let mut model = strata::io::load_onnx("resnet18.onnx")?;
//! model.save("resnet18.safetensors")?;
//! # Ok(()) }
//! ```
//!
//! The graph's nodes are put in order (a cycle is an error), every unsupported operator is
//! listed at once, then each node becomes strata layers (`ops.rs`, `sequence.rs`, attention in
//! `heads.rs`) or is computed at import (`folding.rs`). Images become channels-last: an ONNX
//! input `(N, C, H, W)` is a strata input `(N, H, W, C)`, and an image output comes out
//! channels-last too; so does a sequence `(N, C, L)` that a 1-D convolution reads. An input
//! the graph first transposes to NCHW (tf2onnx's NHWC Keras graphs) is channels-last already
//! and taken as it is. Integer inputs are token ids, which strata takes as floats.

use super::convert::{Computed, Converter, MaskPart, Node, Tensor};
use super::key_mask::mask_inputs;
use super::ops::IMPORTABLE_OPS;
use super::proto::{BFLOAT16, DOUBLE, DimensionValue, FLOAT, FLOAT16, GraphProto, INT32, INT64, ModelProto, NodeProto};
use super::tensors::TensorReader;
use crate::error::{Error, Result};
use crate::model::{Model, Source};
use serde_json::json;
use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::rc::Rc;

/// The oldest default-domain operator set import reads (ONNX 1.2's, 2018).
const OLDEST_OPSET: i64 = 7;

/// Reads an ONNX model file as a strata functional model: weights from initializers or from
/// external data files in the model's folder, NCHW images turned channels-last (the model's
/// inputs and image outputs are `(N, H, W, C)`), integer inputs (token ids) taken as floats.
/// Every unsupported operator is named at once
/// (type, node, opset); a dynamic size other than the batch, or a damaged file, is an error
/// naming the tensor or what is wrong.
pub fn load_onnx(path: impl AsRef<Path>) -> Result<Model> {
    let path = path.as_ref();
    let bytes = crate::fs::read_whole(path)?;
    import(&bytes, path, true)
}

/// [`load_onnx`] from the file's bytes; `origin` names it in errors. A model with external
/// data is refused (there is no folder to read it from).
pub fn load_onnx_bytes(bytes: &[u8], origin: impl AsRef<Path>) -> Result<Model> {
    import(bytes, origin.as_ref(), false)
}

fn import(bytes: &[u8], path: &Path, has_file: bool) -> Result<Model> {
    let fail = |reason: String| Error::file(path, reason);
    let mut proto: ModelProto = prost::Message::decode(bytes)
        .map_err(|e| fail(format!("not an ONNX model: the protocol buffer does not decode ({e})")))?;
    let mut graph = proto
        .graph
        .take()
        .ok_or_else(|| fail("not an ONNX model: it has no graph".into()))?;
    graph.node = super::fusion::fuse(&graph);
    let graph = &graph;
    let opsets: HashMap<&str, i64> = proto
        .opset_import
        .iter()
        .map(|o| (if o.domain == "ai.onnx" { "" } else { o.domain.as_str() }, o.version))
        .collect();
    let opset = opsets.get("").copied().unwrap_or(0);
    if opset < OLDEST_OPSET {
        return Err(fail(format!(
            "uses ONNX opset {opset}; strata imports opset {OLDEST_OPSET} and later (re-export with a current exporter)"
        )));
    }
    check_supported(graph, &opsets).map_err(fail)?;
    let order = node_order(graph).map_err(fail)?;
    let mut reader = TensorReader::new(path, has_file)?;
    let (mut converter, input_shapes) = start(graph, &mut reader).map_err(fail)?;
    let masks = mask_inputs(graph, &order, &input_shapes_by_name(graph, &input_shapes), opset);
    for &k in &order {
        let proto = &graph.node[k];
        let node = Node { proto, opset };
        if let Some(cone) = masks.skipped.get(&k) {
            for output in proto.output.iter().filter(|o| !o.is_empty()) {
                let part = MaskPart {
                    cone: cone.clone(),
                    tensor: output.clone(),
                };
                converter.tensors.insert(output.clone(), Tensor::Mask(part));
            }
            continue;
        }
        // A mask input read other than by attention scores is an ordinary input after all.
        materialize_masks(&mut converter, &node, &mut reader)
            .map_err(|e| fail(format!("node '{}' ({}): {e}", proto.name, proto.op_type)))?;
        // `Split` and the recurrent operators make several tensors; every other operator one
        // (its first output).
        let made = match proto.op_type.as_str() {
            "Split" => converter.split(&node),
            "LSTM" | "GRU" | "RNN" => converter.recurrent(&node),
            _ => convert(&mut converter, &node, &mut reader).map(|t| vec![t]),
        }
        .map_err(|e| fail(format!("node '{}' ({}): {e}", proto.name, proto.op_type)))?;
        for (output, tensor) in proto.output.iter().zip(made) {
            if !output.is_empty() {
                converter.tensors.insert(output.clone(), tensor);
            }
        }
    }
    let outputs = outputs(&converter, graph).map_err(fail)?;
    assemble(converter, input_shapes, outputs, graph, path)
}

/// When `node` reads tensors computed from a mask input (`key_mask.rs`) other than as
/// attention scores meet their mask (`Add` or `Where` with the scores): the nodes that compute
/// them, converted as usual after all (a second input scaled and added to features, say).
fn materialize_masks(
    converter: &mut Converter,
    node: &Node,
    reader: &mut TensorReader,
) -> std::result::Result<(), String> {
    let inputs: Vec<&Tensor> = node
        .proto
        .input
        .iter()
        .filter_map(|i| converter.tensors.get(i))
        .collect();
    let meets_scores =
        matches!(node.proto.op_type.as_str(), "Add" | "Where") && inputs.iter().any(|t| matches!(t, Tensor::Scores(_)));
    let parts: Vec<MaskPart> = inputs
        .iter()
        .filter_map(|t| match t {
            Tensor::Mask(part) => Some(part.clone()),
            _ => None,
        })
        .collect();
    if meets_scores {
        return Ok(());
    }
    for part in parts {
        // The cone's nodes that `part` is computed from, nothing else (no layer left unread).
        let mut needed: HashSet<&str> = HashSet::from([part.tensor.as_str()]);
        let mut chain = Vec::new();
        for proto in part.cone.nodes.iter().rev() {
            if proto.output.iter().any(|o| needed.contains(o.as_str())) {
                needed.extend(proto.input.iter().map(String::as_str));
                chain.push(proto);
            }
        }
        for proto in chain.into_iter().rev() {
            let pending = proto
                .output
                .first()
                .is_some_and(|o| matches!(converter.tensors.get(o), Some(Tensor::Mask(_))));
            if !pending {
                continue;
            }
            let cone_node = Node {
                proto,
                opset: node.opset,
            };
            let value = convert(converter, &cone_node, reader)
                .map_err(|e| format!("reads input '{}' through node '{}': {e}", part.cone.input, proto.name))?;
            if let Some(output) = proto.output.first() {
                converter.tensors.insert(output.clone(), value);
            }
        }
    }
    Ok(())
}

/// Each graph input's per-sample shape (`shapes` in the order of the inputs that are not
/// initializers).
fn input_shapes_by_name(graph: &GraphProto, shapes: &[Vec<usize>]) -> HashMap<String, Vec<usize>> {
    let initialized: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    graph
        .input
        .iter()
        .filter(|i| !initialized.contains(i.name.as_str()))
        .zip(shapes)
        .map(|(i, shape)| (i.name.clone(), shape.clone()))
        .collect()
}

/// Refuses a graph with operators import does not read, naming each (type, node, opset).
fn check_supported(graph: &GraphProto, opsets: &HashMap<&str, i64>) -> std::result::Result<(), String> {
    // Per unsupported (operator, domain), in order of first appearance: the nodes using it.
    let mut refused: Vec<((&str, &str), Vec<&str>)> = Vec::new();
    for node in &graph.node {
        let domain = if node.domain == "ai.onnx" {
            ""
        } else {
            node.domain.as_str()
        };
        if domain.is_empty() && IMPORTABLE_OPS.contains(&node.op_type.as_str())
            || domain == super::fusion::FUSED_DOMAIN
                && matches!(node.op_type.as_str(), "PositionIds" | "GroupNormalization")
        {
            continue;
        }
        let key = (node.op_type.as_str(), domain);
        match refused.iter_mut().find(|(k, _)| *k == key) {
            Some((_, nodes)) => nodes.push(&node.name),
            None => refused.push((key, vec![&node.name])),
        }
    }
    if refused.is_empty() {
        return Ok(());
    }
    /// Node names quoted per operator; the rest counted.
    const NAMED_NODES: usize = 3;
    let entries: Vec<String> = refused
        .iter()
        .map(|((op, domain), nodes)| {
            let version = opsets.get(domain).copied().unwrap_or(0);
            let set = if domain.is_empty() {
                "opset".to_string()
            } else {
                format!("{domain} opset")
            };
            let quoted: Vec<String> = nodes.iter().take(NAMED_NODES).map(|n| format!("'{n}'")).collect();
            match nodes.len() {
                1 => format!("{op} (node {}, {set} {version})", quoted[0]),
                n if n <= NAMED_NODES => format!("{op} ({n} nodes: {}, {set} {version})", quoted.join(", ")),
                n => format!(
                    "{op} ({n} nodes: {} and {} more, {set} {version})",
                    quoted.join(", "),
                    n - NAMED_NODES
                ),
            }
        })
        .collect();
    Err(format!(
        "has operators strata does not import: {} (supported: see strata::io::onnx::IMPORTABLE_OPS)",
        entries.join(", ")
    ))
}

/// The nodes in an order where each comes after the nodes that make its inputs; a cycle, two
/// nodes making one tensor or a tensor nothing makes is an error naming them.
fn node_order(graph: &GraphProto) -> std::result::Result<Vec<usize>, String> {
    let mut maker: HashMap<&str, usize> = HashMap::new();
    for (k, node) in graph.node.iter().enumerate() {
        for output in node.output.iter().filter(|o| !o.is_empty()) {
            if maker.insert(output, k).is_some() {
                return Err(format!(
                    "two nodes make the tensor '{output}' (the second is '{}')",
                    node.name
                ));
            }
        }
    }
    let given: HashSet<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(graph.input.iter().map(|i| i.name.as_str()))
        .collect();
    // Kahn's algorithm: how many inputs each node waits for, who waits on each node.
    let mut waiting = vec![0usize; graph.node.len()];
    let mut followers: Vec<Vec<usize>> = vec![Vec::new(); graph.node.len()];
    for (k, node) in graph.node.iter().enumerate() {
        for input in node.input.iter().filter(|i| !i.is_empty()) {
            if given.contains(input.as_str()) {
                continue;
            }
            let &from = maker.get(input.as_str()).ok_or_else(|| {
                format!(
                    "node '{}' reads '{input}', which no node, initializer or input makes",
                    node.name
                )
            })?;
            waiting[k] += 1;
            followers[from].push(k);
        }
    }
    let mut ready: Vec<usize> = (0..graph.node.len()).filter(|&k| waiting[k] == 0).rev().collect();
    let mut order = Vec::with_capacity(graph.node.len());
    while let Some(k) = ready.pop() {
        order.push(k);
        for &next in followers[k].iter().rev() {
            waiting[next] -= 1;
            if waiting[next] == 0 {
                ready.push(next);
            }
        }
    }
    if order.len() != graph.node.len() {
        let stuck: Vec<String> = (0..graph.node.len())
            .filter(|&k| waiting[k] > 0)
            .take(5)
            .map(|k| format!("'{}'", graph.node[k].name))
            .collect();
        return Err(format!("its graph has a cycle, through nodes {}", stuck.join(", ")));
    }
    Ok(order)
}

/// The converter with the graph's constants and inputs: initializers read, each input an
/// `InputLayer` (channels-last for images); and the inputs' strata shapes.
fn start(graph: &GraphProto, reader: &mut TensorReader) -> std::result::Result<(Converter, Vec<Vec<usize>>), String> {
    let mut readers: HashMap<String, usize> = HashMap::new();
    // A `Shape` reads no values: a tensor whose shape is taken can still be folded into (a
    // bias added to the layer that makes it, a projection split).
    for name in graph
        .node
        .iter()
        .filter(|n| n.op_type != "Shape")
        .flat_map(|n| n.input.iter())
        .chain(graph.output.iter().map(|o| &o.name))
    {
        *readers.entry(name.clone()).or_default() += 1;
    }
    let initialized: HashSet<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let inputs: Vec<_> = graph
        .input
        .iter()
        .filter(|i| !initialized.contains(i.name.as_str()))
        .collect();
    if inputs.is_empty() {
        return Err("its graph has no input".into());
    }
    let mut shapes = Vec::new();
    let mut static_batch = None;
    for input in &inputs {
        let name = &input.name;
        let tensor = input
            .r#type
            .as_ref()
            .and_then(|t| t.tensor_type.as_ref())
            .ok_or_else(|| format!("input '{name}' is not a tensor"))?;
        // Integer inputs are token ids (an embedding's indices): strata takes them as floats.
        // Half-precision and double inputs (`model.half()` exports) are computed in f32.
        if ![FLOAT, FLOAT16, BFLOAT16, DOUBLE, INT64, INT32].contains(&tensor.elem_type) {
            return Err(format!(
                "input '{name}' has element type {}; strata imports float and integer (token id) inputs only",
                tensor.elem_type
            ));
        }
        let dims = tensor
            .shape
            .as_ref()
            .map(|s| s.dim.as_slice())
            .ok_or_else(|| format!("input '{name}' has no shape"))?;
        if dims.len() < 2 || dims.len() > 5 {
            return Err(format!(
                "input '{name}' has {} axes; strata imports inputs of 2 to 5 axes (batch first)",
                dims.len()
            ));
        }
        if let Some(DimensionValue::DimValue(b)) = dims[0].value
            && b > 0
        {
            static_batch = Some(b as usize);
        }
        let mut shape = Vec::new();
        for (axis, dim) in dims.iter().enumerate().skip(1) {
            match &dim.value {
                Some(DimensionValue::DimValue(d)) if *d > 0 && *d <= 1 << 24 => shape.push(*d as usize),
                Some(DimensionValue::DimParam(p)) => {
                    return Err(format!(
                        "input '{name}' has the dynamic size '{p}' on axis {axis}; strata fixes every size but the \
                         batch's (export with a fixed input size)"
                    ));
                }
                Some(DimensionValue::DimValue(d)) if *d > 0 => {
                    return Err(format!(
                        "input '{name}' has size {d} on axis {axis}, over strata's limit of {} per axis",
                        1 << 24
                    ));
                }
                Some(DimensionValue::DimValue(d)) => {
                    return Err(format!(
                        "input '{name}' has size {d} on axis {axis}: sizes must be positive"
                    ));
                }
                None => return Err(format!("input '{name}' has no fixed size on axis {axis}")),
            }
        }
        let values = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        crate::limits::check_memory(
            || format!("one sample of input '{name}' {shape:?}"),
            values.and_then(crate::limits::f32_bytes),
        )
        .map_err(|e| e.to_string())?;
        shapes.push(shape);
    }
    let mut converter = Converter::new(readers, static_batch);
    for t in &graph.initializer {
        let c = reader.read(t)?;
        converter.tensors.insert(t.name.clone(), Tensor::Constant(Rc::new(c)));
    }
    let sequences = convolved_sequences(graph);
    let channels_last = channels_last_images(graph);
    let mut strata_shapes = Vec::new();
    for (i, (input, shape)) in inputs.iter().zip(shapes).enumerate() {
        let axes: Vec<usize> = if shape.len() == 3 && !channels_last.contains(input.name.as_str()) {
            vec![1, 2, 0]
        } else if shape.len() == 2 && sequences.contains(input.name.as_str()) {
            vec![1, 0]
        } else {
            (0..shape.len()).collect()
        };
        let strata: Vec<usize> = axes.iter().map(|&a| shape[a]).collect();
        let computed = Computed {
            source: Source::ModelInput(i),
            shape: shape.clone(),
            axes: axes.clone(),
            order: None,
            non_negative: false,
            layer: None,
        };
        let node = NodeProto {
            name: input.name.clone(),
            op_type: "Input".into(),
            ..Default::default()
        };
        let (source, _, _) = converter.add_layer(
            &node,
            "",
            "InputLayer",
            json!({ "batch_shape": std::iter::once(None).chain(strata.iter().map(|&d| Some(d))).collect::<Vec<_>>() }),
            &[&computed],
            vec![],
        )?;
        converter
            .tensors
            .insert(input.name.clone(), Tensor::Computed(Computed { source, ..computed }));
        strata_shapes.push(strata);
    }
    Ok((converter, strata_shapes))
}

/// The graph inputs a 1-D convolution reads (`Conv` with a three-axis kernel), directly or
/// through a `Pad` (a causal convolution's `F.pad`): sequences `(N, C, L)` that strata takes
/// channels-last, `(N, L, C)`, as its `Conv1D` needs.
fn convolved_sequences(graph: &GraphProto) -> HashSet<&str> {
    let kernels: HashMap<&str, usize> = graph
        .initializer
        .iter()
        .map(|t| (t.name.as_str(), t.dims.len()))
        .collect();
    let convolved: HashSet<&str> = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Conv" && n.input.get(1).and_then(|w| kernels.get(w.as_str())) == Some(&3))
        .filter_map(|n| n.input.first().map(String::as_str))
        .collect();
    let padded = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Pad" && n.output.first().is_some_and(|o| convolved.contains(o.as_str())))
        .filter_map(|n| n.input.first().map(String::as_str));
    convolved.iter().copied().chain(padded).collect()
}

/// The graph inputs of three axes per sample that are channels-last images already: every
/// node that reads them is a `Transpose` to channels-first (`perm` 0, 3, 1, 2), as tf2onnx
/// writes a Keras model's NHWC input. Strata takes those as they are.
fn channels_last_images(graph: &GraphProto) -> HashSet<&str> {
    let constants: HashSet<&str> = graph
        .initializer
        .iter()
        .map(|t| t.name.as_str())
        .chain(
            graph
                .node
                .iter()
                .filter(|n| n.op_type == "Constant")
                .flat_map(|n| n.output.iter().map(String::as_str)),
        )
        .collect();
    let outputs: HashSet<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    let mut reached = HashMap::new();
    graph
        .input
        .iter()
        .map(|i| i.name.as_str())
        .filter(|&name| reaches_channels_first(graph, (&constants, &outputs), (name, 0), &mut reached))
        .collect()
}

/// How many elementwise operators an image may pass before its `Transpose` to channels-first.
const PREPROCESSING_DEPTH: usize = 32;

/// The elementwise operators an image may pass through (with constant operands, such as
/// Keras's `Rescaling`, `Normalization` and `ZeroPadding2D`, which tf2onnx and strata write
/// before the first `Transpose`) on its way to channels-first.
const ELEMENTWISE: &[&str] = &[
    "Mul", "Add", "Sub", "Div", "Relu", "Clip", "Sigmoid", "Tanh", "Identity", "Pad",
];

/// Whether every reader of tensor `name` is a `Transpose` to channels-first (perm 0, 3, 1, 2),
/// or an elementwise operator on it and constants whose output is read the same way; never
/// when the tensor is a graph output, or `depth` (the operators passed) reaches
/// [`PREPROCESSING_DEPTH`]. `reached` keeps the answers given (each tensor is looked at once,
/// so a hostile graph costs its size, and its depth is bounded).
fn reaches_channels_first<'g>(
    graph: &'g GraphProto,
    (constants, outputs): (&HashSet<&str>, &HashSet<&str>),
    (name, depth): (&'g str, usize),
    reached: &mut HashMap<&'g str, bool>,
) -> bool {
    if let Some(&known) = reached.get(name) {
        return known;
    }
    if depth >= PREPROCESSING_DEPTH {
        return false;
    }
    // Set first: a cycle reads as "no".
    reached.insert(name, false);
    let to_channels_first = |n: &NodeProto| {
        n.op_type == "Transpose" && n.attribute.iter().any(|a| a.name == "perm" && a.ints == [0, 3, 1, 2])
    };
    let readers: Vec<&NodeProto> = graph
        .node
        .iter()
        .filter(|n| n.input.iter().any(|i| i == name))
        .collect();
    let mut answer = !readers.is_empty() && !outputs.contains(name);
    for node in readers {
        if !answer {
            break;
        }
        answer = to_channels_first(node)
            || ELEMENTWISE.contains(&node.op_type.as_str())
                && node
                    .input
                    .iter()
                    .all(|i| i == name || i.is_empty() || constants.contains(i.as_str()))
                && node.output.len() == 1
                && reaches_channels_first(graph, (constants, outputs), (&node.output[0], depth + 1), reached);
    }
    reached.insert(name, answer);
    answer
}

/// One node's result.
fn convert(converter: &mut Converter, node: &Node, reader: &mut TensorReader) -> std::result::Result<Tensor, String> {
    let op = node.proto.op_type.as_str();
    match op {
        "Constant" => return converter.constant_node(node, reader),
        "Shape" => return converter.shape(node),
        "ConstantOfShape" => return converter.constant_of_shape(node, reader),
        _ => {}
    }
    if let Some(step) = converter.attention_step(node)? {
        return Ok(step);
    }
    if let Some(step) = converter.strided_step(node)? {
        return Ok(step);
    }
    if let Some(step) = converter.rows_step(node)? {
        return Ok(step);
    }
    if let Some(replaced) = converter.enter_rows(node)? {
        // The node again, on the per-sample tensors of its rows.
        let result = convert(converter, node, reader);
        return converter.leave_rows(replaced, result);
    }
    if let Some(replaced) = converter.enter_per_step(node)? {
        // The node again, on the batch-first forms of its time-major sequences.
        let result = convert(converter, node, reader);
        return converter.leave_per_step(replaced, result);
    }
    if let Some(step) = converter.recurrent_step(node)? {
        return Ok(step);
    }
    let all_constant = (0..node.proto.input.len())
        .filter(|&k| node.input(k).is_some())
        .all(|k| matches!(converter.input(node, k), Ok(Tensor::Constant(_))));
    let first_constant = matches!(converter.input(node, 0)?, Tensor::Constant(_));
    if all_constant
        || first_constant
            && matches!(
                op,
                "Reshape"
                    | "Squeeze"
                    | "Unsqueeze"
                    | "Slice"
                    | "Cast"
                    | "Transpose"
                    | "Flatten"
                    | "Identity"
                    | "Dropout"
            )
    {
        return converter.fold(node);
    }
    match op {
        "Conv" => converter.conv(node),
        "ReduceMean" | "ReduceMax" | "ReduceSum" => converter.reduce(node),
        "Slice" => converter.slice_computed(node),
        "Expand" => converter.expand_computed(node),
        "Where" => converter.where_uniform(node),
        "Gather" => converter.gather(node),
        "GatherElements" => converter.gather_uniform(node),
        "PositionIds" if node.proto.domain == super::fusion::FUSED_DOMAIN => converter.position_ids(node),
        "GroupNormalization" => converter.group_norm(node),
        "LayerNormalization" => converter.layer_norm(node),
        "RMSNormalization" => converter.rms_norm(node),
        "Gelu" => converter.gelu(node),
        "ConvTranspose" => converter.conv_transpose(node),
        "Gemm" => converter.gemm(node),
        "MatMul" => converter.matmul(node),
        "Add" | "Sub" | "Mul" | "Div" => converter.arithmetic(node),
        "Max" | "Min" | "Sum" | "Mean" => converter.variadic(node),
        "Relu" | "Clip" | "LeakyRelu" | "ThresholdedRelu" => converter.relu(node),
        "Sigmoid" | "Tanh" | "HardSigmoid" | "HardSwish" | "Softmax" | "LogSoftmax" | "Elu" | "Selu" | "Softplus"
        | "Softsign" | "Exp" | "Mish" => converter.activation(node),
        "PRelu" => converter.prelu(node),
        "MaxPool" | "AveragePool" => converter.pool(node),
        "Resize" => converter.resize(node),
        "GlobalAveragePool" | "GlobalMaxPool" => converter.global_pool(node),
        "BatchNormalization" => converter.batch_norm(node),
        "InstanceNormalization" => converter.instance_norm(node),
        "Concat" => converter.concat(node),
        "Pad" => converter.pad(node),
        "Flatten" | "Reshape" | "Squeeze" | "Unsqueeze" => converter.reshape_node(node),
        "Transpose" => {
            let x = converter.computed(node, 0)?;
            converter.transpose_computed(node, x)
        }
        "Identity" | "Dropout" => Ok(Tensor::Computed(Computed {
            layer: None,
            ..converter.computed(node, 0)?
        })),
        "Cast" => match node.int("to", FLOAT as i64) as i32 {
            // Every float type is computed in f32.
            FLOAT | FLOAT16 | BFLOAT16 | DOUBLE => Ok(Tensor::Computed(Computed {
                layer: None,
                ..converter.computed(node, 0)?
            })),
            // Token ids a model takes as floats (as strata's exports take them), cast for a
            // `Gather`: strata's Embedding reads the floats themselves.
            INT64 | INT32 if is_model_input(converter, &converter.computed(node, 0)?) => {
                Ok(Tensor::Computed(Computed {
                    layer: None,
                    ..converter.computed(node, 0)?
                }))
            }
            other => Err(format!(
                "casting a computed tensor to data type {other} is not supported (integers: only a model input, \
                 as token ids)"
            )),
        },
        _ => Err("reads a computed tensor where strata needs constants".into()),
    }
}

/// Whether `x` is a graph input as it came in (its `InputLayer`'s output).
fn is_model_input(converter: &Converter, x: &Computed) -> bool {
    match x.source {
        Source::ModelInput(_) => true,
        Source::Output(k) => converter.layers.get(k).is_some_and(|l| l.class == "InputLayer"),
    }
}

/// The model's outputs: one computed tensor per graph output, in ONNX's order of values or
/// channels-last for images.
fn outputs(converter: &Converter, graph: &GraphProto) -> std::result::Result<Vec<usize>, String> {
    let mut outputs = Vec::new();
    for output in &graph.output {
        let name = &output.name;
        let x = match converter.tensor(name)? {
            Tensor::Computed(x) => x,
            Tensor::Constant(_) => return Err(format!("output '{name}' is a constant; strata's outputs are computed")),
            Tensor::Flat(_) | Tensor::Indices(_) | Tensor::Rows(_) | Tensor::Mask(_) => {
                return Err(format!(
                    "output '{name}' is flattened together with its batch axis or computed from the batch size"
                ));
            }
            Tensor::TimeMajor(_) | Tensor::States(_) | Tensor::StepsFlat(_) | Tensor::Packed(_) => {
                return Err(format!(
                    "output '{name}' is a sequence held time-major (steps, N, features) or a recurrent layer's final \
                     states; strata's outputs are batch-first (Transpose the sequence back to (N, steps, features))"
                ));
            }
            Tensor::Heads(_) | Tensor::Scores(_) => {
                return Err(format!(
                    "output '{name}' is part of an attention (heads or scores); strata's outputs are sequences \
                     (N, steps, features) or other computed tensors"
                ));
            }
        };
        let Source::Output(index) = x.source else {
            return Err(format!("output '{name}' is a model input"));
        };
        if !(x.same_order() || x.is_channels_last_image() || x.is_channels_last_sequence()) {
            return Err(format!(
                "output '{name}' of ONNX shape (N, {}) is held by strata in another order of its values",
                super::ops::join(&x.shape)
            ));
        }
        outputs.push(index);
    }
    if outputs.is_empty() {
        return Err("its graph has no output".into());
    }
    Ok(outputs)
}

/// The strata model: layers and calls, built for the inputs' shapes, the weights copied in.
fn assemble(
    converter: Converter,
    input_shapes: Vec<Vec<usize>>,
    outputs: Vec<usize>,
    graph: &GraphProto,
    path: &Path,
) -> Result<Model> {
    let fail = |reason: String| Error::file(path, reason);
    let input_count = input_shapes.len();
    let mut layers = Vec::with_capacity(converter.layers.len());
    let mut calls = Vec::with_capacity(converter.layers.len());
    let mut weights = Vec::with_capacity(converter.layers.len());
    for (k, pending) in converter.layers.into_iter().enumerate() {
        layers.push(pending.layer);
        calls.push((k, pending.inputs));
        weights.push(pending.weights);
    }
    let mut model = Model::from_parts(layers, calls, input_count, outputs)
        .map_err(|e| fail(format!("the imported graph does not make a model: {}", e.reason())))?;
    let name: String = graph
        .name
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '_')
        .collect();
    let stem = path.file_stem().map(|s| s.to_string_lossy().into_owned());
    let name = if name.is_empty() {
        stem.unwrap_or_else(|| "onnx_model".into())
    } else {
        name
    };
    model.set_name(&name);
    let shapes: Vec<&[usize]> = input_shapes.iter().map(Vec::as_slice).collect();
    model
        .build_inputs(&shapes)
        .map_err(|e| fail(format!("the imported model does not build: {}", e.reason())))?;
    let ids: Vec<_> = model
        .layers()
        .iter()
        .map(|l| (l.name().to_string(), l.params()))
        .collect();
    for ((layer, ids), values) in ids.into_iter().zip(weights) {
        if ids.len() != values.len() {
            return Err(fail(format!(
                "layer '{layer}' has {} weights, the file gives {}",
                ids.len(),
                values.len()
            )));
        }
        for (id, values) in ids.into_iter().zip(values) {
            let data = model.params_mut().value_mut(id).data_mut();
            if data.len() != values.len() {
                return Err(fail(format!(
                    "layer '{layer}': a weight holds {} values, the file gives {}",
                    data.len(),
                    values.len()
                )));
            }
            data.copy_from_slice(&values);
        }
    }
    Ok(model)
}
