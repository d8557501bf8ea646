//! torch.export's `as_strided` written out: a computed tensor flattened together with its
//! batch axis (`Reshape` to `[-1]`), then read back by a `Gather` whose indices are computed
//! from the batch size, `Range(0, N) · size + offsets` (ConvNeXt's pooled map before its
//! `LayerNorm2d`, as `torch.onnx.export(..., dynamo=True)` writes it). Strata's batch size is
//! not known at import, so neither tensor is a constant or a per-sample computed tensor; both
//! are held symbolically until the `Gather` (or a `Reshape` that gives the batch axis back)
//! makes a per-sample tensor of them again. The same chain with a fixed batch size (an export
//! without a dynamic batch axis) has constant indices, which are read the same way.

use super::convert::{BatchIndices, Computed, Converter, Node, Tensor};
use super::ops::join;
use super::proto::{INT32, INT64};
use super::tensors::{BATCH, Constant, Values};
use std::rc::Rc;

impl Converter {
    /// A node of the chain: its result when it makes, changes or reads a flattened tensor or
    /// batch indices; `None` when the node is none of those (the caller converts it as usual);
    /// an error when it reads them in a way strata does not follow.
    pub(super) fn strided_step(&mut self, node: &Node) -> Result<Option<Tensor>, String> {
        let op = node.proto.op_type.as_str();
        let inputs: Vec<Option<Tensor>> = (0..node.proto.input.len())
            .map(|k| node.input(k).and_then(|name| self.tensors.get(name).cloned()))
            .collect();
        match (op, inputs.as_slice()) {
            ("Range", [_, Some(Tensor::Constant(limit)), _]) if limit.values == Values::Int(vec![BATCH]) => {
                self.batch_range(node).map(Some)
            }
            ("Reshape", [Some(Tensor::Computed(x)), Some(Tensor::Constant(target))])
                if target.values == Values::Int(vec![-1]) && x.shape.iter().product::<usize>() > 1 =>
            {
                Ok(Some(Tensor::Flat(x.clone())))
            }
            ("Reshape", [Some(Tensor::Flat(x)), Some(Tensor::Constant(target))]) => {
                self.unflatten(node, x.clone(), target).map(Some)
            }
            ("Gather", [Some(Tensor::Flat(x)), Some(indices)]) => {
                let indices = match indices {
                    Tensor::Indices(indices) => indices.clone(),
                    Tensor::Constant(c) => self.constant_batch_indices(c)?,
                    _ => return Err("gathers from a flattened tensor by computed indices".into()),
                };
                if node.int("axis", 0) != 0 {
                    return Err("gathers from a flattened tensor along an axis other than 0".into());
                }
                self.gather_flat(node, x.clone(), &indices).map(Some)
            }
            (_, inputs) if inputs.iter().any(|t| matches!(t, Some(Tensor::Indices(_)))) => {
                self.indices_step(node, inputs).map(Some)
            }
            (_, inputs) => match inputs.iter().position(|t| matches!(t, Some(Tensor::Flat(_)))) {
                Some(k) => Err(format!(
                    "reads '{}', a computed tensor flattened together with its batch axis (Reshape to [-1]): \
                     strata reads it through a Gather by per-sample indices (torch.export's as_strided) or a \
                     Reshape that gives the batch axis back only",
                    node.input(k).unwrap_or_default()
                )),
                None => Ok(None),
            },
        }
    }

    /// `Range(0, N, 1)`: the batch indices `n`.
    fn batch_range(&self, node: &Node) -> Result<Tensor, String> {
        let start = self.constant(node, 0, "start")?.ints("Range's start")?;
        let delta = self.constant(node, 2, "delta")?.ints("Range's delta")?;
        if start != [0] || delta != [1] {
            return Err(format!(
                "Range up to the batch size from {start:?} by {delta:?}: strata reads Range(0, N, 1) only"
            ));
        }
        Ok(Tensor::Indices(BatchIndices {
            shape: vec![],
            stride: 1,
            offsets: Rc::new(vec![0]),
        }))
    }

    /// Arithmetic and reshapes of batch indices.
    fn indices_step(&mut self, node: &Node, inputs: &[Option<Tensor>]) -> Result<Tensor, String> {
        let op = node.proto.op_type.as_str();
        let unsupported = || {
            format!(
                "{op} of indices computed from the batch size (Range(0, N)): strata reads them through Mul by \
                 one number, Add or Sub of constants, reshapes and a Gather from a flattened tensor only"
            )
        };
        match (op, inputs) {
            ("Identity", [Some(t), ..]) => Ok(t.clone()),
            ("Cast", [Some(t)]) if [INT64, INT32].contains(&(node.int("to", 0) as i32)) => Ok(t.clone()),
            ("Mul", [Some(Tensor::Indices(x)), Some(Tensor::Constant(c))])
            | ("Mul", [Some(Tensor::Constant(c)), Some(Tensor::Indices(x))]) => {
                let factor = match (&c.values, c.len()) {
                    (Values::Int(v), 1) => v[0],
                    _ => return Err(unsupported()),
                };
                let overflow = || "indices overflow".to_string();
                let offsets = x
                    .offsets
                    .iter()
                    .map(|&v| v.checked_mul(factor).ok_or_else(overflow))
                    .collect::<Result<_, _>>()?;
                Ok(Tensor::Indices(BatchIndices {
                    shape: x.shape.clone(),
                    stride: x.stride.checked_mul(factor).ok_or_else(overflow)?,
                    offsets: Rc::new(offsets),
                }))
            }
            ("Add", [Some(Tensor::Indices(x)), Some(Tensor::Constant(c))])
            | ("Add", [Some(Tensor::Constant(c)), Some(Tensor::Indices(x))])
            | ("Sub", [Some(Tensor::Indices(x)), Some(Tensor::Constant(c))]) => {
                let c = per_sample(c, x.shape.len()).ok_or_else(|| {
                    format!(
                        "{op} of a constant of shape {:?} to indices of ONNX shape (N, {}) moves the batch axis",
                        c.shape,
                        join(&x.shape)
                    )
                })?;
                let sum = super::folding::binary(op, &x.offsets(), &c)?;
                let Values::Int(offsets) = sum.values else {
                    return Err(format!("{op} of float constants to integer indices"));
                };
                Ok(Tensor::Indices(BatchIndices {
                    shape: sum.shape,
                    stride: x.stride,
                    offsets: Rc::new(offsets),
                }))
            }
            ("Unsqueeze" | "Squeeze" | "Reshape", [Some(Tensor::Indices(x)), ..]) => {
                let full: Vec<usize> = std::iter::once(1).chain(x.shape.iter().copied()).collect();
                let target = self.new_shape(node, &full, true)?;
                Ok(Tensor::Indices(BatchIndices {
                    shape: target[1..].to_vec(),
                    ..x.clone()
                }))
            }
            _ => Err(unsupported()),
        }
    }

    /// Indices computed with the batch size fixed: `(batch, shape…)` values, each sample's
    /// `stride` past the one before.
    fn constant_batch_indices(&self, c: &Constant) -> Result<BatchIndices, String> {
        let values = c.ints("Gather's indices")?;
        let not_per_sample = || {
            format!(
                "gathers from a flattened tensor by indices of shape {:?} that do not repeat per sample",
                c.shape
            )
        };
        let batch = self.static_batch.ok_or_else(not_per_sample)?;
        let per_sample = values.len() / batch.max(1);
        if c.shape.first() != Some(&batch) || batch == 0 || per_sample == 0 {
            return Err(not_per_sample());
        }
        let (first, rest) = values.split_at(per_sample);
        let stride = match rest.first() {
            Some(&v) => v.checked_sub(first[0]).ok_or_else(not_per_sample)?,
            None => 0,
        };
        let repeats = rest.chunks(per_sample).enumerate().all(|(n, chunk)| {
            let shift = stride.checked_mul(n as i64 + 1);
            chunk
                .iter()
                .zip(first)
                .all(|(&v, &f)| shift.and_then(|s| f.checked_add(s)) == Some(v))
        });
        if !repeats {
            return Err(not_per_sample());
        }
        Ok(BatchIndices {
            shape: c.shape[1..].to_vec(),
            stride,
            offsets: Rc::new(first.to_vec()),
        })
    }

    /// `Gather(flattened x, n · stride + offsets)`: each sample's values at `offsets`, which
    /// strata reads when they are all of the sample's values in order (a reshape, what
    /// `as_strided` with the tensor's own strides is).
    fn gather_flat(&mut self, node: &Node, x: Computed, indices: &BatchIndices) -> Result<Tensor, String> {
        let count = x.shape.iter().product::<usize>();
        if indices.stride != count as i64 {
            return Err(format!(
                "gathers from ONNX shape (N, {}) flattened with its batch axis by indices {} apart per sample: \
                 strata reads indices {count} apart (each sample's own values)",
                join(&x.shape),
                indices.stride
            ));
        }
        let in_order =
            indices.offsets.len() == count && indices.offsets.iter().enumerate().all(|(k, &v)| v == k as i64);
        if !in_order {
            return Err(format!(
                "gathers the values of each sample of ONNX shape (N, {}) in another order or a part of them \
                 (as_strided with other strides): strata reads it where it is a reshape",
                join(&x.shape)
            ));
        }
        self.reshape_computed(node, x, indices.shape.clone())
    }

    /// `Reshape` of a flattened tensor back to `(N, …)`.
    fn unflatten(&mut self, node: &Node, x: Computed, target: &Constant) -> Result<Tensor, String> {
        let Values::Int(target) = &target.values else {
            return Err("its shape must be an integer tensor".into());
        };
        let count = x.shape.iter().product::<usize>();
        let batch_first = target
            .first()
            .is_some_and(|&b| b == BATCH || b == -1 || self.static_batch.is_some_and(|s| s as i64 == b));
        let rest: Option<Vec<usize>> = target
            .iter()
            .skip(1)
            .map(|&d| usize::try_from(d).ok().filter(|&d| d > 0))
            .collect();
        match rest {
            Some(rest) if batch_first && rest.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) == Some(count) => {
                self.reshape_computed(node, x, rest)
            }
            _ => Err(format!(
                "reshapes ONNX shape (N, {}) flattened with its batch axis to {target:?}: strata reads a Reshape \
                 that gives the batch axis back first, with fixed sizes after it",
                join(&x.shape)
            )),
        }
    }
}

/// A constant operand of batch indices of `rank` per-sample axes as a per-sample constant:
/// its axes aligned on the right (ONNX broadcasting), the batch axis, when it has one, of
/// size 1. `None` when it would reach past the batch axis.
fn per_sample(c: &Constant, rank: usize) -> Option<Constant> {
    let shape = match c.shape.len() {
        n if n <= rank => c.shape.clone(),
        n if n == rank + 1 && c.shape[0] == 1 => c.shape[1..].to_vec(),
        _ => return None,
    };
    Some(Constant {
        shape,
        values: c.values.clone(),
    })
}
