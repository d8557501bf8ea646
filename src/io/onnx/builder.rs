//! Building an ONNX graph: nodes with unique tensor names, weights as initializers, and the
//! attribute forms ONNX expects. Knows nothing of strata's layers (`export.rs` maps those).

use super::proto::{AttributeProto, AttributeType, FLOAT, INT8, INT32, INT64, NodeProto, TensorProto, UINT8};

/// Nodes and initializers in the making; tensor names are unique within the graph.
#[derive(Default)]
pub(super) struct GraphBuilder {
    pub(super) nodes: Vec<NodeProto>,
    pub(super) initializers: Vec<TensorProto>,
    /// How many nodes have been made, so generated names never repeat.
    counter: usize,
    /// The initializers' names: a shared layer's second call reuses its weights.
    initializer_names: std::collections::HashSet<String>,
}

impl GraphBuilder {
    /// Adds a node of `op` on `inputs` made by `owner` (a layer's name) and returns the name of
    /// its one output.
    pub(super) fn op(&mut self, owner: &str, op: &str, inputs: &[&str], attributes: Vec<AttributeProto>) -> String {
        self.counter += 1;
        let name = format!("{owner}/{op}_{}", self.counter);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![name.clone()],
            name: name.clone(),
            op_type: op.to_string(),
            attribute: attributes,
            ..Default::default()
        });
        name
    }

    /// Adds a float initializer named `name` of `shape` holding `values` (row-major).
    pub(super) fn floats(&mut self, name: String, shape: &[usize], values: &[f32]) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, shape, FLOAT, raw_data)
    }

    /// Adds an int8 initializer (a quantized weight, a zero point) named `name` of `shape`.
    pub(super) fn int8s(&mut self, name: String, shape: &[usize], values: &[i8]) -> String {
        let raw_data = values.iter().map(|&v| v as u8).collect();
        self.push_initializer(name, shape, INT8, raw_data)
    }

    /// Adds a uint8 initializer (an activation's zero point) named `name` of `shape`.
    pub(super) fn uint8s(&mut self, name: String, shape: &[usize], values: &[u8]) -> String {
        self.push_initializer(name, shape, UINT8, values.to_vec())
    }

    /// Adds an int32 initializer (a quantized bias, its zero points) named `name` of `shape`.
    pub(super) fn int32s(&mut self, name: String, shape: &[usize], values: &[i32]) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, shape, INT32, raw_data)
    }

    /// Adds an int64 initializer (shapes, pads) named `name`, one-dimensional.
    pub(super) fn int64s(&mut self, name: String, values: &[i64]) -> String {
        let raw_data = values.iter().flat_map(|v| v.to_le_bytes()).collect();
        self.push_initializer(name, &[values.len()], INT64, raw_data)
    }

    /// Adds an initializer, unless one of that name exists (names are per layer and weight, so
    /// it holds the same values).
    fn push_initializer(&mut self, name: String, shape: &[usize], data_type: i32, raw_data: Vec<u8>) -> String {
        if !self.initializer_names.insert(name.clone()) {
            return name;
        }
        self.initializers.push(TensorProto {
            dims: shape.iter().map(|&d| d as i64).collect(),
            data_type,
            name: name.clone(),
            raw_data,
            ..Default::default()
        });
        name
    }

    /// `Transpose` of `x` by `perm`.
    pub(super) fn transpose(&mut self, owner: &str, x: &str, perm: &[i64]) -> String {
        self.op(owner, "Transpose", &[x], vec![ints("perm", perm)])
    }
}

/// An integer attribute.
pub(super) fn int(name: &str, value: i64) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        i: Some(value),
        r#type: AttributeType::Int as i32,
        ..Default::default()
    }
}

/// A float attribute.
pub(super) fn float(name: &str, value: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        f: Some(value),
        r#type: AttributeType::Float as i32,
        ..Default::default()
    }
}

/// A list-of-integers attribute.
pub(super) fn ints(name: &str, values: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        ints: values.to_vec(),
        r#type: AttributeType::Ints as i32,
        ..Default::default()
    }
}
