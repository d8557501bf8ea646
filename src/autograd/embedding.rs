//! Embedding lookup: rows of a table picked by integer ids, and its backward scatter-add.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};

impl Graph<'_> {
    /// `table[ids]`: for ids of any shape `(...)` holding integers in `0..rows`, the rows of
    /// `table (rows, width)` as `(..., width)`. An id that is not a row index is an error
    /// naming it.
    pub fn gather(&mut self, table: Var, ids: Var) -> Result<Var> {
        let table_shape = self.dims(table);
        let &[rows, width] = table_shape.as_slice() else {
            return Err(Error::ShapeMismatch {
                op: "gather",
                lhs: table_shape.to_vec(),
                rhs: self.shape(ids).to_vec(),
            });
        };
        if let Some(bad) = self
            .value(ids)
            .data()
            .iter()
            .find(|&&id| id.fract() != 0.0 || id < 0.0 || id as usize >= rows)
        {
            return Err(Error::Data(format!(
                "token id {bad} is not below the embedding's input_dim {rows} (ids must be integers in 0..{rows})"
            )));
        }
        let mut shape = self.dims(ids);
        shape.push(width);
        Ok(self.push(Op::Gather { table, ids }, &shape, |inputs, out, _| {
            let table = inputs.get(table).data();
            let ids = inputs.get(ids).data();
            for (row, &id) in out.data_mut().chunks_mut(width).zip(ids) {
                let id = id as usize;
                row.copy_from_slice(&table[id * width..(id + 1) * width]);
            }
        }))
    }
}

/// Adds each output row's gradient into the table row it was read from.
pub(super) fn gather_backward(table: Var, ids: Var, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    let ids = inputs.get(ids).data();
    let Some(dtable) = targets.get(table) else {
        return;
    };
    let width = node.grad.data().len() / ids.len().max(1);
    for (row, &id) in node.grad.data().chunks(width).zip(ids) {
        let id = id as usize;
        dtable[id * width..(id + 1) * width]
            .iter_mut()
            .zip(row)
            .for_each(|(d, g)| *d += g);
    }
}
