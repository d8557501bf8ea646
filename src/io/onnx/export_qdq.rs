//! A calibrated model's graph in the form ONNX Runtime fuses into int8 kernels, as
//! `onnxruntime.quantization.quantize_static` writes it: each int8 operator (`Conv`, `Gemm`,
//! `MatMul` reading a quantized input and an int8 kernel) followed by `QuantizeLinear` →
//! `DequantizeLinear` of its output, so that ONNX Runtime sees `DQ → Conv → Q` and makes it a
//! `QLinearConv` (`QGemm`, `QLinearMatMul`), and the operators that only move values between
//! two int8 layers (`MaxPool`, `Transpose`, `Flatten`, `Reshape`) between such pairs, which it
//! runs on the uint8 values.
//!
//! The pass starts from each int8 layer's input quantization (`export_quantized.rs`) and
//! walks back to the int8 operator producing that input, through operators that commute with
//! quantizing by one scale: the value-moving ones, a maximum (rounding is monotone) and a ReLU
//! (`round(max(y, 0)·s) = max(round(y·s), 0)`). Quantizing the operator's output with the next
//! layer's scale and those operators' outputs again with the same scale therefore gives the
//! values strata's `predict` gives, which quantizes once, at the next layer's input: the same
//! integers, up to a float rounding at a half step.
//!
//! A ReLU on that path is moved to directly after the operator and its output quantized with
//! zero point 0 (uint8), where ONNX Runtime drops it (clipping at the zero point is the ReLU).
//! strata clips quantized inputs to 127 levels, a uint8 with zero point 0 at 255: the two
//! differ only for values beyond the calibrated range, which ONNX Runtime then keeps.

use super::proto::{NodeProto, TensorProto};
use std::collections::HashMap;

/// Operators that move or select values without computing new ones (one tensor input).
const VALUE_MOVING: &[&str] = &["MaxPool", "Transpose", "Flatten", "Reshape"];

/// The operators ONNX Runtime fuses with quantized inputs and an int8 kernel.
const PRODUCTS: &[&str] = &["Conv", "Gemm", "MatMul"];

/// Adds the output quantization of every int8 operator whose output reaches the next int8
/// layer only through operators that commute with it (see the module's documentation).
/// `nodes` are in the order they run; a graph without `QuantizeLinear` is returned as it is.
pub(super) fn quantize_outputs(mut nodes: Vec<NodeProto>, initializers: &mut [TensorProto]) -> Vec<NodeProto> {
    let inputs: Vec<String> = nodes
        .iter()
        .filter(|n| n.op_type == "QuantizeLinear")
        .map(|n| n.name.clone())
        .collect();
    for name in inputs {
        if let Some(path) = path_to(&nodes, initializers, &name) {
            rewrite(&mut nodes, initializers, path);
        }
    }
    nodes
}

/// The walk from an input quantization back to the int8 operator producing its input.
struct Path {
    /// The `QuantizeLinear` node's name.
    quantize: String,
    /// The operator's name.
    product: String,
    /// The names of the nodes in between, from the operator's reader to the quantization's
    /// producer.
    between: Vec<String>,
}

/// The path from `QuantizeLinear` node `quantize` back to an int8 operator, if its input
/// comes from one through commuting operators, each the only reader of its input, and the
/// quantization's scale and zero point are numbers read by nothing but it and its
/// `DequantizeLinear`s.
fn path_to(nodes: &[NodeProto], initializers: &[TensorProto], quantize: &str) -> Option<Path> {
    let producer: HashMap<&str, &NodeProto> = nodes
        .iter()
        .flat_map(|n| n.output.iter().map(move |o| (o.as_str(), n)))
        .collect();
    let mut readers: HashMap<&str, Vec<&NodeProto>> = HashMap::new();
    for node in nodes {
        for input in &node.input {
            readers.entry(input.as_str()).or_default().push(node);
        }
    }
    let q = nodes.iter().find(|n| n.name == quantize)?;
    let scalar = |name: &str| initializers.iter().any(|t| t.name == name && t.dims.is_empty());
    if q.input.len() != 3 || !scalar(&q.input[1]) || !scalar(&q.input[2]) {
        return None;
    }
    // The zero point may change (to 0 after a ReLU): only this quantization may read it.
    let own = |n: &&NodeProto| n.name == q.name || (n.op_type == "DequantizeLinear" && n.input[0] == q.output[0]);
    if !readers.get(q.input[2].as_str())?.iter().all(own) {
        return None;
    }
    let mut between = Vec::new();
    let mut tensor = q.input[0].as_str();
    loop {
        if readers.get(tensor).map(Vec::len) != Some(1) {
            return None;
        }
        let node = producer.get(tensor)?;
        if node.output.len() != 1 {
            return None;
        }
        if is_int8_product(node, &producer, initializers) {
            between.reverse();
            return Some(Path {
                quantize: quantize.to_string(),
                product: node.name.clone(),
                between,
            });
        }
        if !(VALUE_MOVING.contains(&node.op_type.as_str()) || node.op_type == "Relu") || node.input.is_empty() {
            return None;
        }
        between.push(node.name.clone());
        tensor = node.input[0].as_str();
    }
}

/// Whether `node` is a product of a quantized input and an int8 kernel: its first two inputs
/// come from `DequantizeLinear`s, the kernel's of an initializer.
fn is_int8_product(node: &NodeProto, producer: &HashMap<&str, &NodeProto>, initializers: &[TensorProto]) -> bool {
    let dequantized = |k: usize| {
        node.input
            .get(k)
            .and_then(|input| producer.get(input.as_str()))
            .filter(|p| p.op_type == "DequantizeLinear")
    };
    let kernel_is_weight = dequantized(1).is_some_and(|dq| initializers.iter().any(|t| t.name == dq.input[0]));
    PRODUCTS.contains(&node.op_type.as_str()) && dequantized(0).is_some() && kernel_is_weight
}

/// Quantizes the outputs along `path` with its quantization's scale and zero point, a ReLU
/// moved first and the zero point 0 after it.
fn rewrite(nodes: &mut Vec<NodeProto>, initializers: &mut [TensorProto], path: Path) {
    let mut between = path.between;
    if let Some(at) = between
        .iter()
        .position(|name| nodes.iter().any(|n| &n.name == name && n.op_type == "Relu"))
    {
        let relu = between.remove(at);
        move_after(nodes, &relu, &path.product);
        between.insert(0, relu);
        let zero_point = &node(nodes, &path.quantize).input[2];
        if let Some(tensor) = initializers.iter_mut().find(|t| &t.name == zero_point) {
            tensor.raw_data = vec![0];
        }
    }
    let (scale, zero_point) = {
        let q = node(nodes, &path.quantize);
        (q.input[1].clone(), q.input[2].clone())
    };
    // The tensors to quantize: the operator's output (unless the ReLU reads it: its output
    // is quantized instead) and each one in between but the last, which the path's own
    // quantization reads.
    let mut chain = vec![path.product.clone()];
    chain.extend(between);
    let relu_first = chain.get(1).is_some_and(|name| node(nodes, name).op_type == "Relu");
    let last = chain.len() - 1;
    for (k, name) in chain.iter().enumerate() {
        if k == last || (k == 0 && relu_first) {
            continue;
        }
        insert_pair(nodes, name, &scale, &zero_point);
    }
}

/// The node named `name` (one the pass found).
fn node<'a>(nodes: &'a [NodeProto], name: &str) -> &'a NodeProto {
    nodes.iter().find(|n| n.name == name).expect("a node on the path")
}

/// Moves the one-input node `moved` from where it is to directly after `target`, which it
/// then reads; its old reader reads its old input.
fn move_after(nodes: &mut Vec<NodeProto>, moved: &str, target: &str) {
    let at = nodes.iter().position(|n| n.name == moved).expect("a node on the path");
    let node = nodes.remove(at);
    let (input, output) = (node.input[0].clone(), node.output[0].clone());
    rename_reads(nodes, &output, &input);
    let at = nodes.iter().position(|n| n.name == target).expect("a node on the path");
    let target_output = nodes[at].output[0].clone();
    rename_reads(nodes, &target_output, &output);
    let mut node = node;
    node.input[0] = target_output;
    nodes.insert(at + 1, node);
}

/// Makes every node reading `from` read `to`.
fn rename_reads(nodes: &mut [NodeProto], from: &str, to: &str) {
    for input in nodes.iter_mut().flat_map(|n| n.input.iter_mut()) {
        if input == from {
            *input = to.to_string();
        }
    }
}

/// Adds `QuantizeLinear` → `DequantizeLinear` of node `name`'s output, which its reader then
/// reads.
fn insert_pair(nodes: &mut Vec<NodeProto>, name: &str, scale: &str, zero_point: &str) {
    let at = nodes.iter().position(|n| n.name == name).expect("a node on the path");
    let tensor = nodes[at].output[0].clone();
    let (quantized, dequantized) = (format!("{tensor}/quantized"), format!("{tensor}/dequantized"));
    rename_reads(nodes, &tensor, &dequantized);
    let pair = [
        ("QuantizeLinear", tensor.clone(), quantized.clone()),
        ("DequantizeLinear", quantized, dequantized),
    ];
    for (k, (op, input, output)) in pair.into_iter().enumerate() {
        nodes.insert(
            at + 1 + k,
            NodeProto {
                input: vec![input, scale.to_string(), zero_point.to_string()],
                output: vec![output.clone()],
                name: output,
                op_type: op.to_string(),
                ..Default::default()
            },
        );
    }
}
