//! ONNX operators on sequences as strata layers: token embeddings (`Gather` on a constant
//! table), a step picked from a sequence (`Gather` of one index), `LayerNormalization` and
//! `RMSNormalization`, `Gelu`, constant tensors added to a sequence (learned positions, as
//! Hugging Face's embeddings add them) and 1-D convolutions (`Conv` on `(N, C, L)`, held channels-last).

use super::convert::{Computed, Converter, Node, Tensor, onnx_shape};
use super::ops::{check_len, check_ungrouped_size, join, permute, ungrouped};
use super::tensors::{Constant, Values};
use crate::model::Source;
use serde_json::json;

impl Converter {
    /// `Gather`: token embeddings when the data is a constant table and the indices computed,
    /// one step of a sequence when the data is computed and the index a constant.
    pub(super) fn gather(&mut self, node: &Node) -> Result<Tensor, String> {
        match matches!(self.input(node, 0)?, Tensor::Constant(_)) {
            true => self.embedding(node),
            false => self.pick_step(node),
        }
    }

    /// `GatherElements` of a constant holding one value, by computed indices: that value in
    /// the indices' shape (the batch size standing as 1, broadcast where it meets computed
    /// data), as RoBERTa's token types (zeros) picked at computed positions.
    pub(super) fn gather_uniform(&mut self, node: &Node) -> Result<Tensor, String> {
        let data = self.constant(node, 0, "data")?;
        let indices = self.computed(node, 1)?;
        let shape: Vec<usize> = std::iter::once(1).chain(indices.shape.iter().copied()).collect();
        let count: usize = shape.iter().product();
        fn one_value<T: Copy + PartialEq>(values: &[T]) -> Option<T> {
            values
                .first()
                .copied()
                .filter(|&first| values.iter().all(|&v| v == first))
        }
        let uniform = match &data.values {
            Values::Int(v) => one_value(v).map(|value| Constant::int(shape, vec![value; count])),
            Values::Float(v) => one_value(v).map(|value| Constant::float(shape, vec![value; count])),
        };
        uniform.map(|c| Tensor::Constant(std::rc::Rc::new(c))).ok_or_else(|| {
            "picks from a constant of several values by computed indices; strata reads GatherElements by computed \
             indices only from a constant of one value"
                .to_string()
        })
    }

    /// RoBERTa's position ids (`PositionIds`, fused from `CumSum` and the rest): a
    /// `PositionIds` layer on the token ids.
    pub(super) fn position_ids(&mut self, node: &Node) -> Result<Tensor, String> {
        let ids = self.computed(node, 0)?;
        if ids.shape.len() != 1 || ids.order.is_some() {
            return Err(format!(
                "numbers the positions of ONNX shape (N, {}); strata reads token ids (N, steps)",
                super::ops::join(&ids.shape)
            ));
        }
        let config = json!({ "padding_idx": node.int("padding_idx", 0) });
        let mut positions = self.add_same_layout(node.proto, "PositionIds", config, &ids, vec![])?;
        positions.non_negative = true;
        Ok(Tensor::Computed(positions))
    }

    /// `Gather(table, ids)` on axis 0: an `Embedding` holding the table.
    fn embedding(&mut self, node: &Node) -> Result<Tensor, String> {
        let table = self.constant(node, 0, "table")?;
        let ids = self.computed(node, 1)?;
        let &[rows, width] = table.shape.as_slice() else {
            return Err(format!(
                "gathers from a constant of shape {:?}: strata reads an embedding table (rows, width)",
                table.shape
            ));
        };
        if node.int("axis", 0) != 0 || ids.order.is_some() || rows == 0 || width == 0 {
            return Err(format!(
                "gathers rows of a table {:?} along axis {}: strata reads row lookups (axis 0) by token ids",
                table.shape,
                node.int("axis", 0)
            ));
        }
        let config = json!({"input_dim": rows, "output_dim": width});
        let (source, shape, layer) =
            self.add_layer(node.proto, "", "Embedding", config, &[&ids], vec![table.floats()])?;
        let axes: Vec<usize> = ids.axes.iter().copied().chain([ids.shape.len()]).collect();
        Ok(Tensor::Computed(Computed {
            source,
            shape: onnx_shape(&shape, &axes),
            axes,
            order: None,
            non_negative: false,
            layer: Some(layer),
        }))
    }

    /// `Gather(x, i)` along the steps of a sequence `(N, T, features)`: [`Self::step_of`].
    fn pick_step(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let index = self.constant(node, 1, "index")?;
        let axis = node.int("axis", 0);
        let axis = if axis < 0 {
            axis + x.shape.len() as i64 + 1
        } else {
            axis
        };
        // A 1-D convolution's (N, C, L), held channels-last, has its steps on axis 2.
        let steps_axis = if x.is_channels_last_sequence() { 2 } else { 1 };
        if axis != steps_axis {
            return Err(format!(
                "gathers along axis {axis} of ONNX shape (N, {}): strata reads one step of a sequence (N, steps, \
                 features) or (N, channels, steps)",
                join(&x.shape)
            ));
        }
        self.step_of(node, x, &index)
    }

    /// Step `index` of a sequence `x (N, T, features)`: a `Cropping1D` keeping it, then a
    /// `Reshape` dropping the steps axis when the index is a scalar (as `hidden[:, 0]`, the
    /// first token a classifier reads, or `output[:, -1]`, a recurrent layer's last step).
    pub(super) fn step_of(&mut self, node: &Node, x: Computed, index: &Constant) -> Result<Tensor, String> {
        let picks = index.ints("Gather's indices")?;
        let sequence = x.shape.len() == 2 && x.axes == [0, 1] && x.order.is_none();
        let steps_axis = usize::from(x.is_channels_last_sequence());
        if !(sequence || x.is_channels_last_sequence()) || picks.len() != 1 || index.shape.len() > 1 {
            return Err(format!(
                "gathers indices {picks:?} from ONNX shape (N, {}): strata reads one step of a sequence (N, steps, \
                 features)",
                join(&x.shape)
            ));
        }
        let steps = x.shape[steps_axis] as i64;
        let step = if picks[0] < 0 { picks[0] + steps } else { picks[0] };
        if !(0..steps).contains(&step) {
            return Err(format!("index {} is out of range for {steps} steps", picks[0]));
        }
        let config = json!({ "cropping": [step, steps - 1 - step] });
        let (source, shape, layer) = self.add_layer(node.proto, "", "Cropping1D", config, &[&x], vec![])?;
        let cropped = Computed {
            source,
            shape: super::convert::onnx_shape(&shape, &x.axes),
            layer: Some(layer),
            ..x
        };
        match index.shape.is_empty() {
            true => {
                let width = cropped.shape[1 - steps_axis];
                self.reshape_computed(node, cropped, vec![width])
            }
            false => Ok(Tensor::Computed(cropped)),
        }
    }

    /// `LayerNormalization` over the last axis: Keras's layer, which strata also holds last.
    pub(super) fn layer_norm(&mut self, node: &Node) -> Result<Tensor, String> {
        let (x, width) = self.last_axis_input(node)?;
        let scale = self.scale_or_ones(node, width)?;
        let mut weights = vec![scale];
        let bias = self.optional_constant(node, 2, "bias")?;
        if let Some(bias) = &bias {
            check_len(bias, width, "bias")?;
            weights.push(bias.floats());
        }
        let config = json!({
            "axis": -1,
            "epsilon": node.float("epsilon", 1e-5),
            "center": bias.is_some(),
            "scale": true,
        });
        Ok(Tensor::Computed(self.add_same_layout(
            node.proto,
            "LayerNormalization",
            config,
            &x,
            weights,
        )?))
    }

    /// A normalization's input, when it normalizes the last axis and strata holds that axis
    /// last, and the axis's width.
    fn last_axis_input(&mut self, node: &Node) -> Result<(Computed, usize), String> {
        let x = self.computed(node, 0)?;
        let rank = x.shape.len() as i64 + 1;
        let axis = node.int("axis", -1);
        let axis = if axis < 0 { axis + rank } else { axis };
        let last = x.shape.len() - 1;
        if axis != rank - 1 || x.axes.last() != Some(&last) || x.order.is_some() {
            return Err(format!(
                "normalizes from axis {axis} of ONNX shape (N, {}): strata normalizes the last axis, held last",
                join(&x.shape)
            ));
        }
        let width = x.shape[last];
        Ok((x, width))
    }

    /// A normalization's scale (input 1) of `width` values, or ones when the node has none (the
    /// patterns `fusion.rs` fuses have none when the graph had none).
    fn scale_or_ones(&mut self, node: &Node, width: usize) -> Result<Vec<f32>, String> {
        Ok(match node.input(1) {
            Some(_) => {
                let scale = self.constant(node, 1, "scale")?;
                check_len(&scale, width, "scale")?;
                scale.floats()
            }
            None => vec![1.0; width],
        })
    }

    /// `RMSNormalization` (opset 23's, or the pattern `fusion.rs` finds) over the last axis:
    /// Keras's layer, on the last axis held last, its scale ones when the graph has none.
    pub(super) fn rms_norm(&mut self, node: &Node) -> Result<Tensor, String> {
        let (x, width) = self.last_axis_input(node)?;
        let scale = self.scale_or_ones(node, width)?;
        let config = json!({"axis": -1, "epsilon": node.float("epsilon", 1e-5)});
        Ok(Tensor::Computed(self.add_same_layout(
            node.proto,
            "RMSNormalization",
            config,
            &x,
            vec![scale],
        )?))
    }

    /// `x + c` where `c` holds one value per step and feature of a sequence `x (N, T, features)`
    /// (leading axes of 1 aside): a `PositionEmbedding` holding `c` and an `Add`. A second such
    /// constant added to that sum goes into the same table (Hugging Face adds token-type and
    /// position embeddings one after the other). `None` for other constants.
    pub(super) fn add_sequence_constant(
        &mut self,
        node: &Node,
        x: &Computed,
        c: &Constant,
        read_once: bool,
    ) -> Result<Option<Tensor>, String> {
        let rank = c.shape.len();
        let fits = x.shape.len() == 2
            && x.axes == [0, 1]
            && x.order.is_none()
            && rank >= 2
            && c.shape[rank - 2..] == x.shape[..]
            && c.shape[..rank - 2].iter().all(|&d| d == 1);
        if !fits {
            return Ok(None);
        }
        let values = c.floats();
        if read_once && let Some(table) = self.position_table_under(x) {
            let weights = &mut self.layers[table].weights[0];
            weights.iter_mut().zip(&values).for_each(|(w, v)| *w += v);
            return Ok(Some(Tensor::Computed(x.clone())));
        }
        let config = json!({ "sequence_length": x.shape[0] });
        let (source, _, layer) = self.add_layer(
            node.proto,
            "_positions",
            "PositionEmbedding",
            config,
            &[x],
            vec![values],
        )?;
        let positions = Computed {
            source,
            layer: Some(layer),
            ..x.clone()
        };
        let (source, _, layer) = self.add_layer(node.proto, "", "Add", json!({}), &[x, &positions], vec![])?;
        Ok(Some(Tensor::Computed(Computed {
            source,
            non_negative: false,
            layer: Some(layer),
            ..x.clone()
        })))
    }

    /// The `PositionEmbedding` this import added into `x`, when `x` is that `Add`'s output.
    fn position_table_under(&self, x: &Computed) -> Option<usize> {
        let add = &self.layers[x.layer?];
        if add.class != "Add" {
            return None;
        }
        add.inputs.iter().find_map(|source| match source {
            Source::Output(k) if self.layers[*k].class == "PositionEmbedding" => Some(*k),
            _ => None,
        })
    }

    /// `MaxPool` or `AveragePool` on a sequence `(N, C, L)` held channels-last (PyTorch's
    /// `MaxPool1d`, `AvgPool1d`): Keras's `MaxPooling1D` or `AveragePooling1D`, "valid" without
    /// pads, "same" where the pads are Keras's split of them (for an average, not counted).
    pub(super) fn pool1d(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let max = node.proto.op_type == "MaxPool";
        let one = |name: &str, default: Option<usize>| -> Result<usize, String> {
            match (node.ints(name).as_deref(), default) {
                (None, Some(default)) => Ok(default),
                (Some(&[v]), _) if (1..=1 << 20).contains(&v) => Ok(v as usize),
                (v, _) => Err(format!("{name} {v:?}: strata reads one positive size (1-D windows)")),
            }
        };
        let (size, stride) = (one("kernel_shape", None)?, one("strides", Some(1))?);
        if one("dilations", Some(1))? != 1 || node.int("ceil_mode", 0) != 0 {
            return Err("dilated or ceil_mode 1-D pooling is not supported".into());
        }
        let length = x.shape[1];
        let total = ((length.div_ceil(stride).max(1) - 1) * stride + size).saturating_sub(length);
        let same = [total as i64 / 2, (total - total / 2) as i64];
        let pads = node.ints("pads").unwrap_or_else(|| vec![0, 0]);
        let counts_pads = !max && node.int("count_include_pad", 0) != 0;
        let padding = match node.string("auto_pad").as_deref().unwrap_or("NOTSET") {
            "VALID" => "valid",
            "NOTSET" | "" if pads == [0, 0] => "valid",
            "SAME_UPPER" if !counts_pads => "same",
            "NOTSET" | "" if pads == same && !counts_pads => "same",
            other => {
                return Err(format!(
                    "pads {pads:?} (auto_pad {other}): strata's 1-D pooling pads as \"valid\" or Keras's \"same\" \
                     (not counted in an average)"
                ));
            }
        };
        let class = if max { "MaxPooling1D" } else { "AveragePooling1D" };
        let config = json!({ "pool_size": [size], "strides": [stride], "padding": padding });
        let non_negative = x.non_negative;
        let mut y = self.add_same_layout(node.proto, class, config, &x, vec![])?;
        y.non_negative = non_negative;
        Ok(Tensor::Computed(y))
    }

    /// `Conv` on a sequence `(N, C, L)` held channels-last: `Conv1D` ("valid" or "same"
    /// padding, other pads — a causal convolution's `[span - 1, 0]` — a `ZeroPadding1D` before
    /// a "valid" one; groups as in [`Converter::conv`]).
    pub(super) fn conv1d(&mut self, node: &Node, w: &Constant) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        if !x.is_channels_last_sequence() {
            return Err(format!(
                "needs a sequence (N, C, L) that strata holds channels-last; input '{}' has ONNX shape (N, {}) in \
                 another layout (a 1-D convolution reads the model's input or another one's output)",
                node.input(0).unwrap_or(""),
                join(&x.shape)
            ));
        }
        let &[out, per_group, kernel] = w.shape.as_slice() else {
            return Err(format!("kernel {:?} does not have three dimensions", w.shape));
        };
        let (channels, length) = (x.shape[0], x.shape[1]);
        let group = node.int("group", 1);
        let fits = out > 0
            && kernel > 0
            && group >= 1
            && per_group.checked_mul(group as usize) == Some(channels)
            && out.is_multiple_of(group as usize);
        if !fits {
            return Err(format!(
                "a convolution with group {group} and a kernel of {:?} does not fit an input of {channels} channels",
                w.shape
            ));
        }
        let one = |name: &str| -> Result<usize, String> {
            match node.ints(name).as_deref() {
                None => Ok(1),
                Some(&[v]) if (1..=1 << 20).contains(&v) => Ok(v as usize),
                Some(v) => Err(format!("{name} {v:?}: strata reads one positive size (1-D windows)")),
            }
        };
        let (stride, dilation) = (one("strides")?, one("dilations")?);
        if node.ints("kernel_shape").is_some_and(|k| k != [kernel as i64]) {
            return Err(format!("kernel_shape does not match the kernel {:?}", w.shape));
        }
        let span = (kernel - 1) * dilation + 1;
        let total = ((length.div_ceil(stride).max(1) - 1) * stride + span).saturating_sub(length);
        let same = [total as i64 / 2, (total - total / 2) as i64];
        let pads = node.ints("pads").unwrap_or_else(|| vec![0, 0]);
        let explicit = pads.len() == 2 && pads.iter().all(|p| (0..=1 << 20).contains(p));
        let (padding, x) = match node.string("auto_pad").as_deref().unwrap_or("NOTSET") {
            "VALID" => ("valid", x),
            "SAME_UPPER" => ("same", x),
            "NOTSET" | "" if pads == [0, 0] => ("valid", x),
            "NOTSET" | "" if pads == same => ("same", x),
            "NOTSET" | "" if explicit => {
                let config = json!({ "padding": [pads[0], pads[1]] });
                let (source, shape, layer) =
                    self.add_layer(node.proto, "_pad", "ZeroPadding1D", config, &[&x], vec![])?;
                let padded = Computed {
                    source,
                    shape: super::convert::onnx_shape(&shape, &x.axes),
                    layer: Some(layer),
                    ..x
                };
                ("valid", padded)
            }
            other => {
                return Err(format!(
                    "pads {pads:?} (auto_pad {other}): strata's Conv1D pads as \"valid\" or \"same\", or after explicit \
                     zeros"
                ));
            }
        };
        let weights = w.floats();
        let dense = match group {
            1 => weights,
            _ => {
                check_ungrouped_size(w, group)?;
                ungrouped(&weights, out, per_group, group as usize, kernel)
            }
        };
        // ONNX (out, in, k) → Keras (k, in, out).
        let mut all = vec![permute(&dense, &[out, channels, kernel], &[2, 1, 0])];
        let bias = self.optional_constant(node, 2, "bias")?;
        if let Some(bias) = &bias {
            check_len(bias, out, "bias")?;
            all.push(bias.floats());
        }
        let config = json!({
            "filters": out, "kernel_size": [kernel], "strides": [stride], "dilation_rate": [dilation],
            "padding": padding, "use_bias": bias.is_some(),
        });
        Ok(Tensor::Computed(
            self.add_same_layout(node.proto, "Conv1D", config, &x, all)?,
        ))
    }
}
