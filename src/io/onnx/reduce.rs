//! ONNX reductions over an image's height and width as strata's global pooling: `ReduceMean`
//! (`x.mean([2, 3])`, as torchvision's MNASNet and ShuffleNet end, and what tf2onnx writes for
//! Keras's `GlobalAveragePooling2D`), `ReduceMax`, and `ReduceSum` (the mean times the area).
//! Over the steps of a sequence (`x.mean(dim=1)`), the 1-D global pooling. The axes are an
//! attribute before opset 18 (13 for `ReduceSum`) and an input since.

use super::convert::{Computed, Converter, Node, Tensor, onnx_shape};
use super::ops::join;
use serde_json::json;

impl Converter {
    /// `ReduceMean`, `ReduceMax`, `ReduceSum` over the two axes strata holds first of a
    /// three-axis tensor whose last strata axis (the channels) stays: a global pooling, keeping
    /// the reduced axes as 1s when `keepdims` (the default) says so.
    pub(super) fn reduce(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let rank = x.shape.len() as i64 + 1;
        let axes = self.ints_input_or_attribute(node, 1, "axes")?.unwrap_or_default();
        let mut reduced: Vec<usize> = Vec::with_capacity(axes.len());
        for &axis in &axes {
            let a = if axis < 0 { axis + rank } else { axis };
            if !(1..rank).contains(&a) {
                return Err(format!(
                    "reduces axis {axis} of ONNX shape (N, {}): strata reduces a sample's axes, not the batch",
                    join(&x.shape)
                ));
            }
            reduced.push((a - 1) as usize);
        }
        reduced.sort_unstable();
        reduced.dedup();
        let mut strata_axes: Vec<Option<usize>> = reduced.iter().map(|&a| x.strata_axis(a)).collect();
        strata_axes.sort_unstable();
        let spatial = x.shape.len() == 3 && x.order.is_none() && strata_axes == [Some(0), Some(1)];
        if x.shape.len() == 2 && x.order.is_none() && strata_axes == [Some(0)] {
            return self.reduce_steps(node, x);
        }
        if !spatial {
            return Err(format!(
                "reduces axes {axes:?} of ONNX shape (N, {}): strata reduces the height and width of an image \
                 (global pooling) only",
                join(&x.shape)
            ));
        }
        let keep = node.int("keepdims", 1) != 0;
        let op = node.proto.op_type.as_str();
        let class = if op == "ReduceMax" {
            "GlobalMaxPooling2D"
        } else {
            "GlobalAveragePooling2D"
        };
        let (source, shape, layer) =
            self.add_layer(node.proto, "", class, json!({ "keepdims": keep }), &[&x], vec![])?;
        let axes = if keep { x.axes.clone() } else { vec![0] };
        let mut y = Computed {
            source,
            shape: onnx_shape(&shape, &axes),
            axes,
            order: None,
            non_negative: x.non_negative,
            layer: Some(layer),
        };
        if op == "ReduceSum" {
            let area = x.strata_shape()[..2].iter().product::<usize>() as f32;
            let config = json!({ "scale": area, "offset": 0.0 });
            let non_negative = y.non_negative;
            y = self.add_same_layout(node.proto, "Rescaling", config, &y, vec![])?;
            y.non_negative = non_negative;
        }
        Ok(Tensor::Computed(y))
    }

    /// A reduction over the steps of a sequence `x (N, steps, features)` (`x.mean(dim=1)`, or
    /// `x.mean(dim=0)` of a time-major one): `GlobalAveragePooling1D` or `GlobalMaxPooling1D`
    /// (times the steps for `ReduceSum`), the steps axis kept as 1 when `keepdims` says so.
    pub(super) fn reduce_steps(&mut self, node: &Node, x: Computed) -> Result<Tensor, String> {
        let op = node.proto.op_type.as_str();
        let class = if op == "ReduceMax" {
            "GlobalMaxPooling1D"
        } else {
            "GlobalAveragePooling1D"
        };
        let (source, shape, layer) = self.add_layer(node.proto, "", class, json!({}), &[&x], vec![])?;
        let mut y = Computed {
            source,
            shape,
            axes: vec![0],
            order: None,
            non_negative: x.non_negative,
            layer: Some(layer),
        };
        if op == "ReduceSum" {
            let steps = x.strata_shape()[0];
            let config = json!({ "scale": steps as f32, "offset": 0.0 });
            let non_negative = y.non_negative;
            y = self.add_same_layout(node.proto, "Rescaling", config, &y, vec![])?;
            y.non_negative = non_negative;
        }
        let width = y.shape[0];
        match node.int("keepdims", 1) != 0 {
            // ONNX's `(C, 1)` of a sequence `(C, L)` that strata holds as `(L, C)`: strata's `(1, C)`.
            true if x.is_channels_last_sequence() => {
                let config = json!({ "target_shape": [1, width] });
                let (source, _, layer) = self.add_layer(node.proto, "_kept", "Reshape", config, &[&y], vec![])?;
                Ok(Tensor::Computed(Computed {
                    source,
                    shape: vec![width, 1],
                    axes: vec![1, 0],
                    order: None,
                    non_negative: y.non_negative,
                    layer: Some(layer),
                }))
            }
            true => self.reshape_computed(node, y, vec![1, width]),
            false => Ok(Tensor::Computed(y)),
        }
    }
}
