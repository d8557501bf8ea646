//! `Expand` of a computed tensor: its axes of size 1 repeated to the target's sizes, as
//! `x.unsqueeze(1).expand(-1, n, -1)` (and strata's own `RepeatVector` export) write them. Each
//! repeated axis becomes an `UpSampling2D` of nearest neighbours over the tensor reshaped to
//! `(before, 1, after)`, which copies the one column `n` times, then a reshape back.

use super::convert::{Computed, Converter, Node, Tensor};
use super::tensors::BATCH;
use serde_json::json;

impl Converter {
    /// `Expand` of a computed tensor by a constant shape (numpy's broadcasting, aligned at the
    /// last axis): the batch axis stays as it is, other axes keep their size or grow from 1.
    pub(super) fn expand_computed(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let target = self.constant(node, 1, "shape")?.ints("Expand's shape")?;
        if x.order.is_some() {
            return Err("expands features flattened in another order than ONNX's".into());
        }
        let rank = x.shape.len() + 1;
        let Some(missing) = rank.checked_sub(target.len()) else {
            return Err(format!(
                "Expand to {target:?} adds axes before the batch axis of ONNX shape (N, {}): strata keeps the batch first",
                super::ops::join(&x.shape)
            ));
        };
        let full: Vec<i64> = std::iter::repeat_n(1, missing).chain(target.iter().copied()).collect();
        let batch_kept = full[0] == 1 || full[0] == BATCH || self.static_batch.is_some_and(|b| b as i64 == full[0]);
        if !batch_kept {
            return Err(format!("Expand to {target:?} changes the batch size"));
        }
        let mut grown = Vec::new();
        for (axis, (&size, &to)) in x.shape.iter().zip(&full[1..]).enumerate() {
            match (size, usize::try_from(to)) {
                (_, Ok(1)) => {}
                (size, Ok(to)) if to == size => {}
                (1, Ok(to)) => grown.push((axis, to)),
                _ => {
                    return Err(format!(
                        "Expand to {target:?} of ONNX shape (N, {}): axis {} of size {size} cannot become {to}",
                        super::ops::join(&x.shape),
                        axis + 1
                    ));
                }
            }
        }
        grown
            .into_iter()
            .try_fold(x, |x, (axis, to)| self.repeat_axis(node, x, axis, to))
            .map(Tensor::Computed)
    }

    /// `x` with its ONNX per-sample axis `axis` (of size 1) repeated `times` times.
    fn repeat_axis(&mut self, node: &Node, x: Computed, axis: usize, times: usize) -> Result<Computed, String> {
        let strata = x.strata_shape();
        let j = x
            .axes
            .iter()
            .position(|&a| a == axis)
            .ok_or("a layout without the axis")?;
        let before: usize = strata[..j].iter().product();
        let after: usize = strata[j + 1..].iter().product();
        let mut shape = x.shape.clone();
        shape[axis] = times;
        let too_large = || format!("Expand makes a sample of more than {} values", usize::MAX);
        shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .ok_or_else(too_large)?;
        let column = self.add_plain(
            node,
            "_column",
            "Reshape",
            json!({ "target_shape": [before, 1, after] }),
            &x,
        )?;
        let repeated = self.add_plain(
            node,
            "_repeated",
            "UpSampling2D",
            json!({ "size": [1, times] }),
            &column,
        )?;
        let mut target = strata;
        target[j] = times;
        let (source, _, layer) = self.add_layer(
            node.proto,
            "",
            "Reshape",
            json!({ "target_shape": target }),
            &[&repeated],
            vec![],
        )?;
        Ok(Computed {
            source,
            shape,
            axes: x.axes.clone(),
            order: None,
            non_negative: x.non_negative,
            layer: Some(layer),
        })
    }

    /// A layer on `x` whose output strata holds in ONNX's order (axes as they are).
    fn add_plain(
        &mut self,
        node: &Node,
        suffix: &str,
        class: &'static str,
        config: serde_json::Value,
        x: &Computed,
    ) -> Result<Computed, String> {
        let (source, shape, layer) = self.add_layer(node.proto, suffix, class, config, &[x], vec![])?;
        Ok(Computed {
            source,
            axes: (0..shape.len()).collect(),
            shape,
            order: None,
            non_negative: x.non_negative,
            layer: Some(layer),
        })
    }
}
