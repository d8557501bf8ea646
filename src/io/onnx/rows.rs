//! A batch-first tensor flattened together with its batch into rows, ONNX `(N·d₁⋯dₖ,
//! features)`: how Hugging Face's GPT-2 writes its `Conv1D` (`x.view(-1, features)`, `addmm`,
//! `view` back to `(N, steps, units)`), and how any model may apply a `Linear` to a sequence.
//! Strata's batch size is not known at import, so the rows are held as the per-sample tensor
//! `(d₁, …, dₖ, features)` they came from: an operator that treats every row alike (a `Gemm` or
//! `MatMul` by a constant matrix, a bias, an activation, a residual `Add` of two such tensors)
//! is converted on the per-sample tensors as usual and its result held as rows again, until a
//! `Reshape` with the batch axis first makes it per-sample once more.

use super::convert::{Computed, Converter, Node, Tensor};
use super::ops::join;
use super::tensors::{Constant, Values};
use super::time_major::PER_STEP_OPS;

/// The inputs a row-wise conversion replaced, to put back afterwards, and the leading
/// per-sample axes the rows were made of.
pub(super) struct ReplacedRows(Vec<(String, Tensor)>, Vec<usize>);

impl Converter {
    /// A `Reshape` into rows or out of them: the rows of a computed tensor (`Reshape` to `[-1,
    /// features]`), or the per-sample tensor rows are reshaped to (the batch axis first);
    /// `None` for other nodes.
    pub(super) fn rows_step(&mut self, node: &Node) -> Result<Option<Tensor>, String> {
        if node.proto.op_type != "Reshape" {
            return Ok(None);
        }
        match (self.input(node, 0)?.clone(), self.input(node, 1)?) {
            (Tensor::Computed(x), Tensor::Constant(target)) => match self.rows_of(&x, target) {
                Some(leading) if leading + 1 == x.shape.len() => Ok(Some(Tensor::Rows(x))),
                // Rows of several trailing axes (an attention's heads): those axes merged first.
                Some(leading) => {
                    let mut shape = x.shape[..leading].to_vec();
                    shape.push(x.shape[leading..].iter().product());
                    match self.reshape_computed(node, x, shape)? {
                        Tensor::Computed(merged) if merged.same_order() => Ok(Some(Tensor::Rows(merged))),
                        _ => Err("cannot hold the merged trailing axes in ONNX's order as rows".into()),
                    }
                }
                None => Ok(None),
            },
            // Rows reshaped with the batch axis first hold the values of their per-sample
            // tensor in the same order: the reshape of that tensor.
            (Tensor::Rows(x), _) => {
                let name = node.input(0).unwrap_or_default().to_string();
                let rows = self.tensors.insert(name.clone(), Tensor::Computed(x.clone()));
                let result = self.reshape_node(node);
                if let Some(rows) = rows {
                    self.tensors.insert(name.clone(), rows);
                }
                // Back to the shape the rows were made from: still the output of the layer
                // that made them (a packed projection a `Split` may divide), when nothing else
                // reads the rows.
                match result? {
                    Tensor::Computed(y) if y.shape == x.shape && y.axes == x.axes && self.read_once(&name) => {
                        Ok(Some(Tensor::Computed(Computed { layer: x.layer, ..y })))
                    }
                    other => Ok(Some(other)),
                }
            }
            _ => Ok(None),
        }
    }

    /// When `Reshape` to `target` flattens `x` (held in ONNX's order) into rows of its
    /// trailing axes, `[-1, features]` or the batch size times the leading axes' sizes in place
    /// of the -1: how many leading axes make the rows (at least one, of more than one value).
    fn rows_of(&self, x: &Computed, target: &Constant) -> Option<usize> {
        let Values::Int(target) = &target.values else {
            return None;
        };
        let &[rows, features] = target.as_slice() else {
            return None;
        };
        if !x.same_order() {
            return None;
        }
        // Leading axes of one value in all make one row per sample: a plain per-sample reshape
        // (a Flatten at a fixed batch size of 1, `[1, features]`), not rows.
        (1..x.shape.len()).rev().find(|&leading| {
            let trailing: usize = x.shape[leading..].iter().product();
            let per_sample: usize = x.shape[..leading].iter().product();
            per_sample > 1 && trailing as i64 == features && self.is_batch_times(rows, per_sample)
        })
    }

    /// When `node` applies a row-wise operator to rows: their per-sample tensors put in place
    /// of its inputs, and what they replaced; `None` when no input is rows. An error when it
    /// mixes rows with other computed tensors, or rows of different shapes.
    pub(super) fn enter_rows(&mut self, node: &Node) -> Result<Option<ReplacedRows>, String> {
        let op = node.proto.op_type.as_str();
        let names: Vec<(usize, String)> = (0..node.proto.input.len())
            .filter_map(|k| node.input(k).map(|n| (k, n.to_string())))
            .collect();
        let Some(leading) = names.iter().find_map(|(_, name)| match self.tensors.get(name) {
            Some(Tensor::Rows(x)) => Some(x.shape[..x.shape.len() - 1].to_vec()),
            _ => None,
        }) else {
            return Ok(None);
        };
        let axis_ok = match op {
            "LayerNormalization" | "RMSNormalization" | "Softmax" | "LogSoftmax" => {
                matches!(node.int("axis", -1), -1 | 1)
            }
            _ => PER_STEP_OPS.contains(&op) || op == "Gemm",
        };
        if !axis_ok {
            return Err(format!(
                "reads rows flattened together with the batch axis (N·{}, features) other than row by row; strata \
                 reads them through Gemm, MatMul by a constant matrix, element-wise operators and a Reshape that \
                 puts the batch axis first",
                join(&leading)
            ));
        }
        let mut replaced = Vec::with_capacity(names.len());
        for (k, name) in names {
            let original = self.tensor(&name)?.clone();
            let per_sample = match &original {
                Tensor::Rows(x) if x.shape[..x.shape.len() - 1] == leading[..] => Tensor::Computed(x.clone()),
                // The matrix of a MatMul or Gemm, a Gemm's bias, a normalization's scale and
                // bias: not broadcast over the rows.
                Tensor::Constant(_)
                    if matches!(op, "MatMul" | "Gemm") && k > 0
                        || matches!(op, "LayerNormalization" | "RMSNormalization") =>
                {
                    continue;
                }
                // One row for all (a bias, a factor), `(1, features)` as `(features)`.
                Tensor::Constant(c) if matches!(c.shape.as_slice(), [] | [_] | [1, _]) => {
                    Tensor::Constant(std::rc::Rc::new(Constant {
                        shape: c.shape.iter().copied().skip(c.shape.len().saturating_sub(1)).collect(),
                        values: c.values.clone(),
                    }))
                }
                _ => {
                    return Err(format!(
                        "input '{name}' is not rows of the same (N·{}, features) as the node's other input, nor a \
                         constant of one row",
                        join(&leading)
                    ));
                }
            };
            self.tensors.insert(name.clone(), per_sample);
            replaced.push((name, original));
        }
        self.flat_gemm = op == "Gemm";
        Ok(Some(ReplacedRows(replaced, leading)))
    }

    /// Puts back what [`Converter::enter_rows`] replaced, and records the node's result (a
    /// per-sample tensor with the same leading axes) as rows.
    pub(super) fn leave_rows(
        &mut self,
        replaced: ReplacedRows,
        result: Result<Tensor, String>,
    ) -> Result<Tensor, String> {
        self.flat_gemm = false;
        let ReplacedRows(inputs, leading) = replaced;
        for (name, original) in inputs {
            self.tensors.insert(name, original);
        }
        match result? {
            Tensor::Computed(y)
                if y.shape.len() == leading.len() + 1 && y.shape[..leading.len()] == leading[..] && y.same_order() =>
            {
                Ok(Tensor::Rows(y))
            }
            Tensor::Computed(y) => Err(format!(
                "gives a tensor of ONNX per-sample shape {:?} from rows (N·{}, features); strata keeps their shape",
                y.shape,
                join(&leading)
            )),
            _ => Err("gives something other than rows from rows".into()),
        }
    }
}
