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

use super::convert::{Computed, Converter, Heads, Node, Packed, Tensor, TimeMajor};
use super::heads::STEPS_FIRST;
use super::tensors::{Constant, Values, batch_factor};
use std::rc::Rc;

/// Operators that work on each value, or each step's features, alone.
pub(super) const PER_STEP_OPS: &[&str] = &[
    "Add",
    "Sub",
    "Mul",
    "Div",
    "MatMul",
    "LayerNormalization",
    "RMSNormalization",
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

/// The inputs a per-step conversion replaced, to put back afterwards, and whether the
/// sequences were flattened with their batch (`(steps·N, features)`).
pub(super) struct Replaced(Vec<(String, Tensor)>, bool);

/// The time-major sequence `t` holds, and whether it is flattened with its batch.
fn sequence_of(t: Option<&Tensor>) -> Option<(&TimeMajor, bool)> {
    match t {
        Some(Tensor::TimeMajor(t)) if t.directions.is_none() => Some((t, false)),
        Some(Tensor::StepsFlat(t)) => Some((t, true)),
        _ => None,
    }
}

impl Converter {
    /// When `node` applies a per-step operator to time-major sequences: their batch-first
    /// forms (and constants laid out for them) put in place of its inputs, and what they
    /// replaced; `None` when no input is a plain time-major sequence. An error when it mixes
    /// time-major and batch-first sequences, or works along the steps or the batch.
    pub(super) fn enter_per_step(&mut self, node: &Node) -> Result<Option<Replaced>, String> {
        let op = node.proto.op_type.as_str();
        let names: Vec<&str> = (0..node.proto.input.len()).filter_map(|k| node.input(k)).collect();
        let Some(flat) = names
            .iter()
            .find_map(|name| sequence_of(self.tensors.get(*name)).map(|(_, flat)| flat))
        else {
            return Ok(None);
        };
        // Gemm reads two axes: the flattened sequence's.
        if !(PER_STEP_OPS.contains(&op) || op == "Gemm" && flat) {
            return Ok(None);
        }
        let axis_ok = match op {
            "LayerNormalization" | "RMSNormalization" => matches!(node.int("axis", -1), -1 | 2),
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
            let batch_first = match (&original, sequence_of(Some(&original))) {
                (_, Some((t, f))) if f == flat => Tensor::Computed(t.x.clone()),
                // The matrix of a MatMul or Gemm, a Gemm's bias, a LayerNormalization's scale
                // and bias: not broadcast over the sequence.
                (Tensor::Constant(_), _)
                    if matches!(op, "MatMul" | "Gemm") && k > 0
                        || matches!(op, "LayerNormalization" | "RMSNormalization") =>
                {
                    continue;
                }
                (Tensor::Constant(c), _) => {
                    Tensor::Constant(Rc::new(batch_first_constant(c, flat).ok_or_else(|| {
                        format!(
                            "input '{name}' of shape {:?} does not broadcast over a time-major sequence (steps, N, \
                         features) the same for every sample",
                            c.shape
                        )
                    })?))
                }
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
        self.flat_gemm = flat && op == "Gemm";
        Ok(Some(Replaced(replaced, flat)))
    }

    /// Puts back what [`Converter::enter_per_step`] replaced, and records the node's result
    /// (a batch-first sequence) as time-major.
    pub(super) fn leave_per_step(
        &mut self,
        replaced: Replaced,
        result: Result<Tensor, String>,
    ) -> Result<Tensor, String> {
        self.flat_gemm = false;
        let Replaced(inputs, flat) = replaced;
        for (name, original) in inputs {
            self.tensors.insert(name, original);
        }
        match result? {
            Tensor::Computed(x) if x.shape.len() == 2 && x.axes == [0, 1] && x.order.is_none() => {
                let t = TimeMajor {
                    x,
                    directions: None,
                    batch_first_of_two: false,
                };
                Ok(if flat {
                    Tensor::StepsFlat(t)
                } else {
                    Tensor::TimeMajor(t)
                })
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

/// A constant broadcast over a time-major `(steps, N, features)` sequence (`flat`: `(steps·N,
/// features)`), laid out for the batch-first `(N, steps, features)` one: rank 0 and 1 as they
/// are, `(1, features)` as it is, `(steps, 1, features)` as `(1, steps, features)` (the same
/// values in the same order); `None` for one that differs along the batch axis, or has more
/// axes than a flattened sequence.
fn batch_first_constant(c: &Constant, flat: bool) -> Option<Constant> {
    let shape = match c.shape.as_slice() {
        [] | [_] => c.shape.clone(),
        [1, features] => vec![1, *features],
        [steps, 1, features] if !flat => vec![1, *steps, *features],
        _ => return None,
    };
    Some(Constant {
        shape,
        values: c.values.clone(),
    })
}

impl Converter {
    /// The integers of `Reshape`'s target (input 1).
    fn reshape_target(&self, node: &Node) -> Result<Vec<i64>, String> {
        match &self.constant(node, 1, "shape")?.values {
            Values::Int(v) => Ok(v.clone()),
            Values::Float(_) => Err("Reshape's shape must be an integer tensor".into()),
        }
    }

    /// Whether `d` stands for the batch size in a reshape target at the batch's place.
    fn is_batch(&self, d: i64) -> bool {
        self.is_batch_times(d, 1)
    }

    /// Whether `d` stands for `k` times the batch size in a reshape target: -1 (what is
    /// left), the stand-in shape arithmetic made ([`super::tensors::batch_times`]) or the fixed size times `k`.
    pub(super) fn is_batch_times(&self, d: i64, k: usize) -> bool {
        d == -1
            || batch_factor(d) == Some(k as i64)
            || self
                .static_batch
                .and_then(|b| b.checked_mul(k))
                .is_some_and(|n| n as i64 == d)
    }

    /// `Reshape` of a time-major sequence `(steps, N, features)`: to `(steps, N, parts,
    /// width)` (packed parts, see [`Packed`]), to `(steps, N·heads, width)` (attention heads
    /// with the batch merged in, `heads.rs`), to `(steps·N, features)` (flattened with the
    /// batch), or to its own shape.
    pub(super) fn reshape_time_major(&mut self, node: &Node, t: TimeMajor) -> Result<Tensor, String> {
        let target = self.reshape_target(node)?;
        let (steps, features) = (t.x.shape[0] as i64, t.x.shape[1] as i64);
        let steps_ok = |s: i64| s == steps || s == 0;
        match target.as_slice() {
            [s, b, f] if steps_ok(*s) && self.is_batch(*b) && (*f == features || *f == -1 && *b != -1) => {
                Ok(Tensor::TimeMajor(t))
            }
            [s, b, parts, width] if steps_ok(*s) && self.is_batch(*b) && *parts > 1 && parts * width == features => {
                let parts = self.split_parts(node, &t.x, *parts as usize)?;
                Ok(Tensor::Packed(Packed { parts, stage: 0 }))
            }
            [s, m, width]
                if steps_ok(*s)
                    && *width > 0
                    && *width < features
                    && features % width == 0
                    && self.is_batch_times(*m, (features / width) as usize) =>
            {
                Ok(Tensor::Heads(Heads {
                    x: t.x,
                    heads: (features / width) as usize,
                    axes: STEPS_FIRST,
                    scale: 1.0,
                    batch_merged: true,
                    time_major: true,
                }))
            }
            [m, f] if *f == features && self.is_batch_times(*m, steps as usize) => Ok(Tensor::StepsFlat(t)),
            _ => Err(format!(
                "reshapes a time-major sequence of ONNX shape {:?} to {target:?}: strata reads (steps, N, parts, \
                 width), (steps, N·heads, width) and (steps·N, features)",
                t.onnx_shape()
            )),
        }
    }

    /// `Reshape` of a sequence flattened with its batch `(steps·N, features)` back to `(steps,
    /// N, features)`.
    pub(super) fn unflatten_steps(&mut self, node: &Node, t: TimeMajor) -> Result<Tensor, String> {
        let target = self.reshape_target(node)?;
        let (steps, features) = (t.x.shape[0] as i64, t.x.shape[1] as i64);
        match target.as_slice() {
            [s, b, f] if *s == steps && self.is_batch(*b) && (*f == features || *f == -1 && *b != -1) => {
                Ok(Tensor::TimeMajor(t))
            }
            _ => Err(format!(
                "reshapes a time-major sequence flattened with its batch, ONNX shape (steps·N, {features}) with \
                 {steps} steps, to {target:?}: strata reads ({steps}, N, {features})"
            )),
        }
    }

    /// The `parts` equal parts of the features of `x` (batch-first `(N, steps, features)`),
    /// each a sequence: the packed projection split ([`Converter::split_dense`]) when it can
    /// be, otherwise each part a frozen selecting `Dense` (`selection.rs`).
    fn split_parts(&mut self, node: &Node, x: &Computed, parts: usize) -> Result<Vec<Computed>, String> {
        let width = x.shape[1] / parts;
        if let Some(split) = self.split_dense(node, x, &vec![width; parts])? {
            return Ok(split);
        }
        (0..parts)
            .map(|k| {
                let sources: Vec<usize> = (k * width..(k + 1) * width).collect();
                self.select_last(node, &format!("_part{k}"), x, &sources)
            })
            .collect()
    }

    /// A node reading packed parts: the `Unsqueeze` of a new first axis, the `Transpose`
    /// [3, 1, 2, 0, 4] bringing the parts to the front, the `Squeeze` of the axis of 1 left
    /// behind, then a `Gather` of one part on axis 0 (the steps PyTorch's attention takes).
    pub(super) fn packed_step(&mut self, node: &Node, packed: Packed) -> Result<Tensor, String> {
        let op = node.proto.op_type.as_str();
        let axes = || self.ints_input_or_attribute(node, 1, "axes");
        let next = match (op, packed.stage) {
            ("Unsqueeze", 0) => matches!(axes()?.as_deref(), Some([0])),
            ("Transpose", 1) => node.ints("perm").as_deref() == Some(&[3, 1, 2, 0, 4]),
            ("Squeeze", 2) => matches!(axes()?.as_deref(), Some([3]) | Some([-2])),
            ("Gather", 3) if node.int("axis", 0) == 0 => {
                let index = self.constant(node, 1, "index")?;
                let count = packed.parts.len() as i64;
                return match index.ints("Gather's indices")?.as_slice() {
                    [k] if index.shape.is_empty() && (-count..count).contains(k) => {
                        let k = if *k < 0 { k + count } else { *k } as usize;
                        Ok(Tensor::TimeMajor(TimeMajor {
                            x: packed.parts[k].clone(),
                            directions: None,
                            batch_first_of_two: false,
                        }))
                    }
                    picks => Err(format!("gathers {picks:?} of {count} packed parts: strata picks one")),
                };
            }
            _ => false,
        };
        if !next {
            return Err(format!(
                "reads {} packed parts of a time-major sequence other than as nn.MultiheadAttention picks them \
                 (Unsqueeze 0, Transpose [3, 1, 2, 0, 4], Squeeze -2, Gather on axis 0)",
                packed.parts.len()
            ));
        }
        Ok(Tensor::Packed(Packed {
            stage: packed.stage + 1,
            ..packed
        }))
    }
}
