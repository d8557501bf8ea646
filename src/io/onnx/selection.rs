//! Parts and rearrangements of computed tensors: `Split` and `Slice` (ShuffleNet's `chunk`, a
//! crop of an image or a sequence) and reshapes that strata's layout turns into a permutation
//! of channels (ShuffleNet's channel shuffle, `Reshape → Transpose → Reshape`).
//!
//! A range of an image's rows or columns is a `Cropping2D`, of a sequence's steps a
//! `Cropping1D`. A range or a permutation of strata's last axis (channels, features) has no
//! strata layer of its own: it is a frozen (`trainable` false) 1×1 `Conv2D` or `Dense` whose
//! kernel is 1 where an output takes an input and 0 elsewhere. That is exact (each output is
//! one input times 1 plus zeros) and trains like the rest of the model, at the cost of a matrix
//! product over the channels.

use super::convert::{Computed, Converter, Node, Tensor, onnx_shape};
use super::ops::join;
use serde_json::json;

impl Converter {
    /// `Split`: one part of the input per output, the sizes from the `split` input (opset 13
    /// on) or attribute, or equal parts (the last smaller).
    pub(super) fn split(&mut self, node: &Node) -> Result<Vec<Tensor>, String> {
        let x = self.computed(node, 0)?;
        let rank = x.shape.len() as i64 + 1;
        let axis = node.int("axis", 0);
        let axis = if axis < 0 { axis + rank } else { axis };
        if !(1..rank).contains(&axis) {
            return Err(format!(
                "splits axis {axis} of ONNX shape (N, {}): strata splits a sample's axes, not the batch",
                join(&x.shape)
            ));
        }
        let onnx_axis = (axis - 1) as usize;
        let size = x.shape[onnx_axis];
        let count = node.proto.output.len();
        let sizes: Vec<usize> = match self.ints_input_or_attribute(node, 1, "split")? {
            Some(sizes) => sizes
                .iter()
                .map(|&s| usize::try_from(s).map_err(|_| format!("split sizes {sizes:?} are negative")))
                .collect::<Result<_, _>>()?,
            None => {
                let parts = usize::try_from(node.int("num_outputs", count as i64))
                    .ok()
                    .filter(|&p| p > 0)
                    .ok_or("num_outputs is not positive")?;
                let each = size.div_ceil(parts);
                (0..parts).map(|k| each.min(size.saturating_sub(k * each))).collect()
            }
        };
        if sizes.len() != count || sizes.iter().try_fold(0usize, |n, &s| n.checked_add(s)) != Some(size) {
            return Err(format!(
                "split sizes {sizes:?} do not cut axis {axis} of ONNX shape (N, {}) into its {count} outputs",
                join(&x.shape)
            ));
        }
        if onnx_axis + 1 == x.shape.len()
            && let Some(split) = self.split_dense(node, &x, &sizes)?
        {
            return Ok(split.into_iter().map(Tensor::Computed).collect());
        }
        let mut start = 0;
        let mut parts = Vec::with_capacity(count);
        for (k, &len) in sizes.iter().enumerate() {
            let part = self.take_range(node, &x, onnx_axis, start, len, &format!("_{k}"))?;
            parts.push(Tensor::Computed(part));
            start += len;
        }
        Ok(parts)
    }

    /// Parts of `sizes` along the features of `x`, the output of a `Dense` that nothing else
    /// reads (a packed projection: `nn.MultiheadAttention`'s, nanoGPT's `qkv`, GPT-2's
    /// `c_attn`): that layer split into one `Dense` per part, each with its columns of the
    /// kernel and bias, all trainable as PyTorch's one layer is. `None` when `x` is not such an
    /// output.
    pub(super) fn split_dense(
        &mut self,
        node: &Node,
        x: &Computed,
        sizes: &[usize],
    ) -> Result<Option<Vec<Computed>>, String> {
        let Some((&units, leading)) = x.shape.split_last() else {
            return Ok(None);
        };
        let splittable = x.layer.filter(|&index| {
            let pending = &self.layers[index];
            pending.class == "Dense"
                && pending.inputs.len() == 1
                && pending.config["units"].as_u64() == Some(units as u64)
                && x.same_order()
                && self.read_once(node.input(0).unwrap_or_default())
        });
        let Some(index) = splittable else {
            return Ok(None);
        };
        let pending = &self.layers[index];
        let (config, weights, source) = (pending.config.clone(), pending.weights.clone(), pending.inputs[0]);
        let inputs = weights[0].len() / units.max(1);
        let offsets: Vec<usize> = sizes
            .iter()
            .scan(0, |at, &s| Some(std::mem::replace(at, *at + s)))
            .collect();
        let part_weights = |k: usize| -> Vec<Vec<f32>> {
            let columns = offsets[k]..offsets[k] + sizes[k];
            let kernel = (0..inputs)
                .flat_map(|row| {
                    weights[0][row * units + columns.start..row * units + columns.end]
                        .iter()
                        .copied()
                })
                .collect();
            let bias = weights.get(1).map(|bias| bias[columns.clone()].to_vec());
            std::iter::once(kernel).chain(bias).collect()
        };
        let config_of = |k: usize| {
            let mut part = config.clone();
            part["units"] = json!(sizes[k]);
            part
        };
        let shape_of = |k: usize| leading.iter().copied().chain([sizes[k]]).collect::<Vec<usize>>();
        let input = Computed {
            source,
            shape: leading.iter().copied().chain([inputs]).collect(),
            axes: (0..x.shape.len()).collect(),
            order: None,
            non_negative: false,
            layer: None,
        };
        // Part 0 is the packed layer, narrowed: nothing has read its output yet.
        let layer = crate::layers::from_config("Dense", &config_of(0)).map_err(|e| e.reason().to_string())?;
        let pending = &mut self.layers[index];
        pending.layer = layer;
        pending.weights = part_weights(0);
        pending.config = config_of(0);
        let mut split = vec![Computed {
            shape: shape_of(0),
            layer: Some(index),
            ..x.clone()
        }];
        for k in 1..sizes.len() {
            let mut config = config_of(k);
            config.as_object_mut().map(|c| c.remove("name"));
            let (source, _, layer) = self.add_layer(
                node.proto,
                &format!("_part{k}"),
                "Dense",
                config,
                &[&input],
                part_weights(k),
            )?;
            split.push(Computed {
                source,
                shape: shape_of(k),
                axes: (0..x.shape.len()).collect(),
                order: None,
                non_negative: false,
                layer: Some(layer),
            });
        }
        Ok(Some(split))
    }

    /// `Slice` of a computed tensor: a range (step 1) of each sliced axis but the batch's.
    pub(super) fn slice_computed(&mut self, node: &Node) -> Result<Tensor, String> {
        let mut x = self.computed(node, 0)?;
        let list = |k: usize, name: &str| self.ints_input_or_attribute(node, k, name);
        let starts = list(1, "starts")?.ok_or("has no starts")?;
        let ends = list(2, "ends")?.ok_or("has no ends")?;
        let axes = list(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = list(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err("starts, ends, axes and steps differ in length".into());
        }
        let rank = x.shape.len() as i64 + 1;
        for k in 0..starts.len() {
            let axis = if axes[k] < 0 { axes[k] + rank } else { axes[k] };
            let whole_batch = axis == 0 && starts[k] == 0 && ends[k] >= i64::from(i32::MAX);
            if whole_batch {
                continue;
            }
            if !(1..rank).contains(&axis) || steps[k] != 1 {
                return Err(format!(
                    "slices axis {} with step {} of ONNX shape (N, {}): strata takes a range (step 1) of a sample's axes",
                    axes[k],
                    steps[k],
                    join(&x.shape)
                ));
            }
            let onnx_axis = (axis - 1) as usize;
            let dim = x.shape[onnx_axis] as i64;
            let at = |v: i64| (if v < 0 { v.saturating_add(dim) } else { v }).clamp(0, dim) as usize;
            let (start, end) = (at(starts[k]), at(ends[k]));
            if end <= start {
                return Err(format!("slices an empty range of axis {axis}"));
            }
            x = self.take_range(node, &x, onnx_axis, start, end - start, &format!("_{k}"))?;
        }
        Ok(Tensor::Computed(x))
    }

    /// `len` values from `start` along ONNX per-sample axis `onnx_axis` of `x`.
    fn take_range(
        &mut self,
        node: &Node,
        x: &Computed,
        onnx_axis: usize,
        start: usize,
        len: usize,
        suffix: &str,
    ) -> Result<Computed, String> {
        let size = x.shape[onnx_axis];
        if start == 0 && len == size {
            return Ok(Computed {
                layer: None,
                ..x.clone()
            });
        }
        if len == 0 || start + len > size {
            return Err(format!("takes {len} values from {start} of an axis of {size}"));
        }
        let strata_axis = x.strata_axis(onnx_axis).ok_or("its input has no such axis")?;
        let last = x.shape.len() - 1;
        let after = size - start - len;
        if strata_axis < last && x.order.is_none() {
            let (class, cropping) = match (x.shape.len(), strata_axis) {
                (3, 0) => ("Cropping2D", json!([[start, after], [0, 0]])),
                (3, 1) => ("Cropping2D", json!([[0, 0], [start, after]])),
                (2, 0) => ("Cropping1D", json!([start, after])),
                _ => {
                    return Err(format!(
                        "takes part of axis {} of ONNX shape (N, {}): strata crops images, sequences and their last axis",
                        onnx_axis + 1,
                        join(&x.shape)
                    ));
                }
            };
            let config = json!({ "cropping": cropping });
            let (source, shape, layer) = self.add_layer(node.proto, suffix, class, config, &[x], vec![])?;
            return Ok(Computed {
                source,
                shape: onnx_shape(&shape, &x.axes),
                layer: Some(layer),
                ..x.clone()
            });
        }
        if strata_axis != last {
            return Err(format!(
                "takes part of ONNX shape (N, {}) held in another order",
                join(&x.shape)
            ));
        }
        // Output feature j is ONNX's feature start + j: where strata holds it.
        let sources: Vec<usize> = match &x.order {
            Some(order) => (start..start + len)
                .map(|f| order.iter().position(|&o| o == f))
                .collect::<Option<_>>()
                .ok_or("its features are not all held")?,
            None => (start..start + len).collect(),
        };
        self.select_last(node, suffix, x, &sources)
    }

    /// A frozen 1×1 `Conv2D` (images) or `Dense` whose output feature j is `x`'s strata
    /// feature `sources[j]` of the last axis.
    pub(super) fn select_last(
        &mut self,
        node: &Node,
        suffix: &str,
        x: &Computed,
        sources: &[usize],
    ) -> Result<Computed, String> {
        let strata = x.strata_shape();
        let width = *strata.last().ok_or("its input has no axes")?;
        let units = sources.len();
        crate::limits::check_memory(
            || format!("a {width} × {units} selection of channels"),
            width.checked_mul(units).and_then(crate::limits::f32_bytes),
        )
        .map_err(|e| e.to_string())?;
        // Keras's 1×1 kernel (1, 1, in, out) has the dense kernel's (in, out) layout.
        let mut kernel = vec![0.0; width * units];
        for (j, &s) in sources.iter().enumerate() {
            kernel[s * units + j] = 1.0;
        }
        let (class, config) = match strata.len() {
            3 => (
                "Conv2D",
                json!({"filters": units, "kernel_size": [1, 1], "use_bias": false, "trainable": false}),
            ),
            1 | 2 => ("Dense", json!({"units": units, "use_bias": false, "trainable": false})),
            _ => {
                return Err(format!(
                    "selects features of ONNX shape (N, {}): strata selects those of images, sequences and vectors",
                    join(&x.shape)
                ));
            }
        };
        let (source, shape, _) = self.add_layer(node.proto, suffix, class, config, &[x], vec![kernel])?;
        let axes = if x.order.is_some() { vec![0] } else { x.axes.clone() };
        Ok(Computed {
            source,
            shape: onnx_shape(&shape, &axes),
            axes,
            order: None,
            non_negative: x.non_negative,
            // Not a layer a following Add may give a bias: it is frozen.
            layer: None,
        })
    }

    /// A reshape of `x`, which strata holds in another order than ONNX's, to ONNX per-sample
    /// shape `target`: strata's values reshaped and their axes relabelled when some layout of
    /// `target` holds them in strata's order (a channel axis split in two, as a channel
    /// shuffle begins), or that and a permutation of the last axis when the values only move
    /// along it (the shuffle's end). `None` when neither fits.
    pub(super) fn regroup(&mut self, node: &Node, x: &Computed, target: &[usize]) -> Result<Option<Tensor>, String> {
        let rank = target.len();
        if rank < 2 {
            return Ok(None);
        }
        let held = x.flat_order()?;
        // Strata's layouts worth trying: ONNX's order, and the last two ONNX axes (an image's
        // height and width) first.
        let identity: Vec<usize> = (0..rank).collect();
        let spatial_first: Vec<usize> = [rank - 2, rank - 1].into_iter().chain(0..rank - 2).collect();
        for axes in [spatial_first, identity] {
            let layout = Computed {
                shape: target.to_vec(),
                axes,
                order: None,
                layer: None,
                ..x.clone()
            };
            let wanted = layout.flat_order()?;
            let strata = layout.strata_shape();
            if wanted == held {
                let y = self.strata_reshape(node, x, &strata)?;
                return Ok(Some(Tensor::Computed(Computed {
                    shape: target.to_vec(),
                    axes: layout.axes,
                    ..y
                })));
            }
            // Whether the values only move along strata's last axis, the same way in each row.
            let width = strata.last().copied().unwrap_or(0);
            if width == 0 || held.len() != wanted.len() {
                continue;
            }
            let mut position = vec![usize::MAX; wanted.len()];
            for (s, &f) in wanted.iter().enumerate() {
                if let Some(p) = position.get_mut(f) {
                    *p = s;
                }
            }
            let mut sources = vec![usize::MAX; width];
            let mut fits = true;
            for (s, &f) in held.iter().enumerate() {
                let Some(&to) = position.get(f) else {
                    fits = false;
                    break;
                };
                let source = &mut sources[to % width];
                let other_row = to / width != s / width;
                if other_row || (*source != usize::MAX && *source != s % width) {
                    fits = false;
                    break;
                }
                *source = s % width;
            }
            if fits && !sources.contains(&usize::MAX) {
                let y = self.strata_reshape(node, x, &strata)?;
                let y = Computed {
                    shape: target.to_vec(),
                    axes: layout.axes,
                    ..y
                };
                return Ok(Some(Tensor::Computed(
                    self.select_last(node, "_shuffle", &y, &sources)?,
                )));
            }
        }
        Ok(None)
    }

    /// `x`'s strata values as strata shape `shape` (a `Reshape` layer unless it already is).
    fn strata_reshape(&mut self, node: &Node, x: &Computed, shape: &[usize]) -> Result<Computed, String> {
        if x.strata_shape() == shape {
            return Ok(Computed {
                layer: None,
                ..x.clone()
            });
        }
        let config = json!({ "target_shape": shape });
        let (source, _, layer) = self.add_layer(node.proto, "", "Reshape", config, &[x], vec![])?;
        Ok(Computed {
            source,
            order: None,
            layer: Some(layer),
            ..x.clone()
        })
    }
}
