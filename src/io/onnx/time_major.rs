//! Operators applied step by step to sequences the graph holds time-major, `(steps, N,
//! features)`: what a PyTorch model does to a recurrent layer's output (or to any sequence it
//! keeps time-major, as `batch_first=False` modules do) before it transposes it back — a
//! `Linear` on every step, an activation, a `LayerNorm`, a residual `Add`, a positional
//! encoding of shape `(steps, 1, features)` added.
//!
//! Such an operator treats every step and sample alike and only mixes features, so on strata's
//! batch-first form of the same sequence it computes the same values: the import puts the
//! batch-first forms in place of the time-major inputs, converts the node as usual, and records
//! its output as time-major again. Constants broadcast over the sequence are laid out for the
//! batch-first form (`(steps, 1, features)` becomes `(1, steps, features)`; a constant that
//! differs from sample to sample is refused).

use super::convert::{Computed, Converter, Node, Tensor, TimeMajor};
use super::tensors::Constant;
use std::rc::Rc;

/// Operators that work on each value, or each step's features, alone.
const PER_STEP_OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MatMul",
    "LayerNormalization",
    "Softmax",
    "LogSoftmax",
    "Relu",
    "Clip",
    "LeakyRelu",
    "ThresholdedRelu",
    "PRelu",
    "Sigmoid",
    "Tanh",
    "HardSigmoid",
    "HardSwish",
    "Elu",
    "Selu",
    "Softplus",
    "Softsign",
    "Exp",
    "Mish",
    "Gelu",
    "Dropout",
    "Identity",
    "Cast",
];

/// The inputs a per-step conversion replaced, to put back afterwards.
pub(super) struct Replaced(Vec<(String, Tensor)>);

impl Converter {
    /// When `node` applies a per-step operator to time-major sequences: their batch-first
    /// forms (and constants laid out for them) put in place of its inputs, and what they
    /// replaced; `None` when no input is a plain time-major sequence. An error when it mixes
    /// time-major and batch-first sequences, or works along the steps or the batch.
    pub(super) fn enter_per_step(&mut self, node: &Node) -> Result<Option<Replaced>, String> {
        let op = node.proto.op_type.as_str();
        let names: Vec<&str> = (0..node.proto.input.len()).filter_map(|k| node.input(k)).collect();
        let time_major = |t: Option<&Tensor>| matches!(t, Some(Tensor::TimeMajor(t)) if t.directions.is_none());
        if !PER_STEP_OPS.contains(&op) || !names.iter().any(|name| time_major(self.tensors.get(*name))) {
            return Ok(None);
        }
        let axis_ok = match op {
            "LayerNormalization" => matches!(node.int("axis", -1), -1 | 2),
            // Before opset 13 the default (1) flattens from the batch axis on.
            "Softmax" | "LogSoftmax" => matches!(node.int("axis", if node.opset >= 13 { -1 } else { 1 }), -1 | 2),
            _ => true,
        };
        let matrix = |name: Option<&&str>| matches!(name.and_then(|n| self.tensors.get(*n)), Some(Tensor::Constant(c)) if c.shape.len() == 2);
        if op == "MatMul" && !matrix(names.get(1)) {
            return Err("multiplies a time-major sequence by something other than a constant matrix".into());
        }
        if !axis_ok {
            return Err(format!(
                "{op} along an axis other than the features of a time-major sequence (steps, N, features)"
            ));
        }
        let mut replaced = Vec::with_capacity(names.len());
        for (k, name) in (0..node.proto.input.len()).filter_map(|k| node.input(k).map(|n| (k, n))) {
            let original = self.tensor(name)?.clone();
            let batch_first = match &original {
                Tensor::TimeMajor(t) if t.directions.is_none() => Tensor::Computed(Computed {
                    layer: t.x.layer,
                    ..t.x.clone()
                }),
                // The matrix of a MatMul, a LayerNormalization's scale and bias: not broadcast
                // over the sequence.
                Tensor::Constant(_) if op == "MatMul" && k == 1 || op == "LayerNormalization" => continue,
                Tensor::Constant(c) => Tensor::Constant(Rc::new(batch_first_constant(c).ok_or_else(|| {
                    format!(
                        "input '{name}' of shape {:?} does not broadcast over a time-major sequence (steps, N, \
                         features) the same for every sample",
                        c.shape
                    )
                })?)),
                _ => {
                    return Err(format!(
                        "input '{name}' is not a time-major sequence like the node's other input: strata applies {op} \
                         to two sequences held the same way"
                    ));
                }
            };
            self.tensors.insert(name.to_string(), batch_first);
            replaced.push((name.to_string(), original));
        }
        Ok(Some(Replaced(replaced)))
    }

    /// Puts back what [`Converter::enter_per_step`] replaced, and records the node's result
    /// (a batch-first sequence) as time-major.
    pub(super) fn leave_per_step(
        &mut self,
        replaced: Replaced,
        result: Result<Tensor, String>,
    ) -> Result<Tensor, String> {
        for (name, original) in replaced.0 {
            self.tensors.insert(name, original);
        }
        match result? {
            Tensor::Computed(x) if x.shape.len() == 2 && x.axes == [0, 1] && x.order.is_none() => {
                Ok(Tensor::TimeMajor(TimeMajor {
                    x,
                    directions: None,
                    batch_first_of_two: false,
                }))
            }
            Tensor::Computed(x) => Err(format!(
                "gives a tensor of ONNX per-sample shape {:?} from a time-major sequence; strata keeps the sequence's \
                 (steps, N, features) form",
                x.shape
            )),
            _ => Err("gives something other than a sequence from a time-major sequence".into()),
        }
    }
}

/// A constant broadcast over a time-major `(steps, N, features)` sequence, laid out for the
/// batch-first `(N, steps, features)` one: rank 0 and 1 as they are, `(1, features)` as it is,
/// `(steps, 1, features)` as `(1, steps, features)` (the same values in the same order); `None`
/// for one that differs along the batch axis.
fn batch_first_constant(c: &Constant) -> Option<Constant> {
    let shape = match c.shape.as_slice() {
        [] | [_] => c.shape.clone(),
        [1, features] => vec![1, *features],
        [steps, 1, features] => vec![1, *steps, *features],
        _ => return None,
    };
    Some(Constant {
        shape,
        values: c.values.clone(),
    })
}
