//! Attention as PyTorch and Hugging Face export it: the projections' outputs reshaped to
//! `(N, T, heads, width)` and transposed to `(N, heads, T, width)`, `MatMul` of the queries
//! by the transposed keys, a scale (`Mul` or `Div` by one number, on the scores or on the
//! queries and keys), an optional constant mask (`Add`), `Softmax` over the keys, `MatMul` by
//! the values, then the heads transposed and reshaped back to `(N, T, heads·width)`.
//!
//! None of the four-axis tensors becomes strata data: the import records them ([`Heads`],
//! [`Scores`]) and the whole chain becomes one `DotProductAttention` layer on the projections'
//! outputs, which runs strata's fused attention kernels. A split tensor read by anything else is
//! made real (a `Reshape`); scores read by anything else are an error naming the node.

use super::convert::MaskPart;
use super::convert::{Computed, Converter, HeadAxis, Heads, Node, Scores, Tensor, TimeMajor};
use super::key_mask::MaskUse;
use super::proto::FLOAT;
use super::tensors::{BATCH, Constant, Values};
use serde_json::json;

/// A mask value at or below this leaves its key out (exporters write -inf, the float's
/// lowest value or -10⁹; any of them makes the softmax's weight exactly or nearly 0).
const LEFT_OUT: f32 = -1e4;

/// The layout of queries and values between the split and the attention.
const HEADS_FIRST: [HeadAxis; 3] = [HeadAxis::Heads, HeadAxis::Steps, HeadAxis::Width];
/// The layout of transposed keys.
const KEYS_TRANSPOSED: [HeadAxis; 3] = [HeadAxis::Heads, HeadAxis::Width, HeadAxis::Steps];
/// The layout right after the split, and before the merge.
pub(super) const STEPS_FIRST: [HeadAxis; 3] = [HeadAxis::Steps, HeadAxis::Heads, HeadAxis::Width];

/// `x` reshaped to `target` (ONNX per-sample shapes) as heads, when it splits the features of
/// a sequence `(T, heads·width)` into `(T, heads, width)`.
pub(super) fn split_heads(x: &Computed, target: &[usize]) -> Option<Tensor> {
    let (&[steps, features], &[t, heads, width]) = (x.shape.as_slice(), target) else {
        return None;
    };
    let splits = t == steps && heads > 0 && heads.checked_mul(width) == Some(features);
    (splits && x.axes == [0, 1] && x.order.is_none()).then(|| {
        Tensor::Heads(Heads {
            x: x.clone(),
            heads,
            axes: STEPS_FIRST,
            scale: 1.0,
            batch_merged: false,
            time_major: false,
        })
    })
}

impl Converter {
    /// A node that reads heads or scores: its result when it is a step of an attention, `None`
    /// when it is not (its heads inputs are then made real, and the caller converts it as
    /// usual); an error when it reads scores other than as an attention does.
    pub(super) fn attention_step(&mut self, node: &Node) -> Result<Option<Tensor>, String> {
        let inputs: Vec<Option<Tensor>> = (0..node.proto.input.len())
            .map(|k| node.input(k).and_then(|name| self.tensors.get(name).cloned()))
            .collect();
        let symbolic = |t: &Option<Tensor>| matches!(t, Some(Tensor::Heads(_) | Tensor::Scores(_)));
        if !inputs.iter().any(symbolic) {
            return Ok(None);
        }
        if let Some(result) = self.step(node, &inputs)? {
            return Ok(Some(result));
        }
        for (k, input) in inputs.iter().enumerate() {
            match input {
                Some(Tensor::Heads(heads)) => {
                    let real = self.real_heads(node, heads)?;
                    let name = node.input(k).unwrap_or_default().to_string();
                    self.tensors.insert(name, Tensor::Computed(real));
                }
                Some(Tensor::Scores(_)) => {
                    return Err(format!(
                        "reads the attention scores '{}': strata reads scores through a scale, a constant mask, \
                         Softmax over the keys and a MatMul by the values only",
                        node.input(k).unwrap_or_default()
                    ));
                }
                _ => {}
            }
        }
        Ok(None)
    }

    /// One step of an attention, or `None` when the node is not one.
    fn step(&mut self, node: &Node, inputs: &[Option<Tensor>]) -> Result<Option<Tensor>, String> {
        let op = node.proto.op_type.as_str();
        let number = |t: &Option<Tensor>| match t {
            Some(Tensor::Constant(c)) if c.len() == 1 => c.floats().first().copied().filter(|v| v.is_finite()),
            _ => None,
        };
        Ok(match (op, inputs) {
            // A `Concat` of one input: Hugging Face's key/value cache with nothing cached yet.
            ("Identity" | "Dropout", [Some(t), ..]) | ("Concat", [Some(t)]) => Some(t.clone()),
            ("Cast", [Some(t)]) if node.int("to", FLOAT as i64) == FLOAT as i64 => Some(t.clone()),
            ("Transpose", [Some(Tensor::Heads(heads))]) => Some(transpose(node, heads)?),
            ("Mul", [Some(t), c]) | ("Mul", [c, Some(t)]) if number(c).is_some_and(|v| v != 0.0) => {
                scaled(t, number(c).unwrap_or(1.0))
            }
            ("Div", [Some(t), c]) if number(c).is_some_and(|v| v != 0.0) => scaled(t, 1.0 / number(c).unwrap_or(1.0)),
            ("MatMul", [Some(Tensor::Heads(query)), Some(Tensor::Heads(key))]) => {
                Some(Tensor::Scores(scores(query, key)?))
            }
            ("MatMul", [Some(Tensor::Scores(scores)), Some(Tensor::Heads(values))]) => {
                Some(self.attend(node, scores, values)?)
            }
            ("Add", [Some(Tensor::Scores(scores)), Some(Tensor::Constant(mask))])
            | ("Add", [Some(Tensor::Constant(mask)), Some(Tensor::Scores(scores))]) => {
                Some(Tensor::Scores(masked(scores, mask)?))
            }
            // A mask computed from a model input (Hugging Face's `attention_mask`).
            ("Add", [Some(Tensor::Scores(scores)), Some(Tensor::Mask(part))])
            | ("Add", [Some(Tensor::Mask(part)), Some(Tensor::Scores(scores))]) => {
                Some(Tensor::Scores(self.input_masked(scores, part, MaskUse::Added)?))
            }
            // Scores kept where the mask holds and the fill elsewhere, or the other way round.
            ("Where", [Some(Tensor::Mask(part)), if_true, if_false]) => {
                let (scores, fill, used) = match (if_true, if_false) {
                    (Some(Tensor::Scores(s)), Some(Tensor::Constant(f))) => (s, f, MaskUse::KeepsWhereTrue),
                    (Some(Tensor::Constant(f)), Some(Tensor::Scores(s))) => (s, f, MaskUse::KeepsWhereFalse),
                    _ => return Ok(None),
                };
                match is_left_out(fill) {
                    true => Some(Tensor::Scores(self.input_masked(scores, part, used)?)),
                    false => None,
                }
            }
            ("Softmax", [Some(Tensor::Scores(scores))]) => Some(Tensor::Scores(softmax(node, scores)?)),
            // A mask by a constant condition of one value (`masked_fill` by a mask of all
            // tokens, as DistilBERT writes it): the operand it picks.
            ("Where", [Some(Tensor::Constant(condition)), if_true, if_false]) => {
                let values = condition.floats();
                if values.iter().all(|&v| v == 0.0) {
                    if_false.clone()
                } else if values.iter().all(|&v| v != 0.0) {
                    if_true.clone()
                } else {
                    match (if_true, if_false) {
                        (Some(Tensor::Scores(scores)), Some(Tensor::Constant(fill))) => {
                            Some(Tensor::Scores(masked(scores, &filled_mask(condition, fill, true)?)?))
                        }
                        (Some(Tensor::Constant(fill)), Some(Tensor::Scores(scores))) => {
                            Some(Tensor::Scores(masked(scores, &filled_mask(condition, fill, false)?)?))
                        }
                        _ => None,
                    }
                }
            }
            ("Reshape", [Some(Tensor::Heads(heads)), Some(Tensor::Constant(target))]) => {
                let Values::Int(target) = &target.values else {
                    return Err("its shape must be an integer tensor".into());
                };
                if let Some(sequence) = self.time_major_output(heads, target) {
                    return Ok(Some(sequence));
                }
                if let Some(rows) = self.output_rows(heads, target) {
                    return Ok(Some(rows));
                }
                match batch_reshape(heads, target, self.static_batch) {
                    Some(reshaped) => Some(Tensor::Heads(reshaped)),
                    None if heads.batch_merged => None,
                    None => self.merge_heads(node, heads)?,
                }
            }
            _ => None,
        })
    }

    /// Scores masked by a model input: the attention takes the input as its key mask (and is
    /// causal when the mask also leaves out the keys after each query).
    fn input_masked(&mut self, scores: &Scores, part: &MaskPart, used: MaskUse) -> Result<Scores, String> {
        if scores.softmax || scores.key_mask.is_some() || scores.batch_merged {
            return Err(format!(
                "masks attention scores by '{}' after their Softmax, a second time, or with the batch merged into \
                 the heads",
                part.tensor
            ));
        }
        let shape = [scores.heads, scores.query.shape[0], scores.key.shape[0]];
        let causal = self.padding_mask(part, used, shape)?;
        let mask = match self.tensors.get(&part.cone.input) {
            Some(Tensor::Computed(mask)) if mask.shape == [part.cone.steps] => mask.clone(),
            _ => {
                return Err(format!(
                    "the mask input '{}' is not a model input (N, steps)",
                    part.cone.input
                ));
            }
        };
        Ok(Scores {
            causal: scores.causal || causal,
            key_mask: Some(mask),
            ..scores.clone()
        })
    }

    /// The attention layer: `DotProductAttention` on the queries, values and keys; its output
    /// `(N, Tq, heads·width)` is recorded as heads first, as the graph's `MatMul` gives it.
    fn attend(&mut self, node: &Node, scores: &Scores, values: &Heads) -> Result<Tensor, String> {
        if !scores.softmax {
            return Err("multiplies attention scores by values before their Softmax".into());
        }
        if values.axes != HEADS_FIRST
            || values.batch_merged != scores.batch_merged
            || values.time_major
            || values.heads != scores.heads
            || values.x.shape[0] != scores.key.shape[0]
        {
            return Err(format!(
                "values of ONNX shape (N, {}) do not fit scores of (N, {}) as (N, heads, steps, width)",
                super::ops::join(&values.shape()),
                super::ops::join(&scores.shape())
            ));
        }
        let config = json!({
            "num_heads": scores.heads,
            "scale": scores.scale,
            "use_causal_mask": scores.causal,
            "mask_input": scores.key_mask.is_some(),
        });
        let mut inputs = vec![&scores.query, &values.x, &scores.key];
        inputs.extend(scores.key_mask.as_ref());
        let (source, shape, layer) = self.add_layer(node.proto, "", "DotProductAttention", config, &inputs, vec![])?;
        let x = Computed {
            source,
            shape,
            axes: vec![0, 1],
            order: None,
            non_negative: false,
            layer: Some(layer),
        };
        Ok(Tensor::Heads(Heads {
            x,
            heads: scores.heads,
            axes: HEADS_FIRST,
            scale: values.scale,
            batch_merged: scores.batch_merged,
            time_major: false,
        }))
    }

    /// A `Reshape` of heads back to `(T, heads·width)`: the computed tensor they came from (an
    /// attention's output), its scale applied; the same heads for a reshape to their own shape;
    /// `None` for another reshape.
    fn merge_heads(&mut self, node: &Node, heads: &Heads) -> Result<Option<Tensor>, String> {
        let full: Vec<usize> = std::iter::once(1).chain(heads.shape()).collect();
        let target = self.new_shape(node, &full, true)?;
        if target[1..] == heads.shape()[..] {
            return Ok(Some(Tensor::Heads(heads.clone())));
        }
        if heads.axes != STEPS_FIRST || target[1..] != heads.x.shape[..] {
            return Ok(None);
        }
        let x = Computed {
            layer: None,
            ..heads.x.clone()
        };
        if heads.scale == 1.0 {
            return Ok(Some(Tensor::Computed(x)));
        }
        let config = json!({"scale": heads.scale, "offset": 0.0});
        Ok(Some(Tensor::Computed(self.add_same_layout(
            node.proto,
            "Rescaling",
            config,
            &x,
            vec![],
        )?)))
    }

    /// An attention's output held time-major with the batch merged into the heads, `(steps,
    /// N·heads, width)` (its scale applied already), reshaped to `(steps·N, heads·width)` or
    /// `(steps, N, heads·width)`: that sequence; `None` for other heads or targets.
    fn time_major_output(&self, heads: &Heads, target: &[i64]) -> Option<Tensor> {
        let (steps, features) = (heads.x.shape[0], heads.x.shape[1] as i64);
        if !heads.time_major || heads.axes != STEPS_FIRST || heads.scale != 1.0 {
            return None;
        }
        let sequence = TimeMajor {
            x: heads.x.clone(),
            directions: None,
            batch_first_of_two: false,
        };
        match target {
            [rows, f] if *f == features && self.is_batch_times(*rows, steps) => Some(Tensor::StepsFlat(sequence)),
            [s, n, f] if *s == steps as i64 && *f == features && self.is_batch_times(*n, 1) => {
                Some(Tensor::TimeMajor(sequence))
            }
            _ => None,
        }
    }

    /// An attention's output `(N, steps, heads, width)` (its scale applied already) reshaped to
    /// rows `(N·steps, heads·width)` for the output projection, as GPT-2 writes it: those rows
    /// (`rows.rs`); `None` for other heads or targets.
    fn output_rows(&self, heads: &Heads, target: &[i64]) -> Option<Tensor> {
        let (steps, features) = (heads.x.shape[0], heads.x.shape[1] as i64);
        let plain = heads.axes == STEPS_FIRST && !heads.batch_merged && !heads.time_major && heads.scale == 1.0;
        match target {
            [rows, f] if plain && *f == features && self.is_batch_times(*rows, steps) => Some(Tensor::Rows(Computed {
                layer: None,
                ..heads.x.clone()
            })),
            _ => None,
        }
    }

    /// Heads as an ordinary computed tensor: a `Reshape` to strata's `(T, heads, width)`, the
    /// record of ONNX's axes, and a `Rescaling` when a factor is pending.
    fn real_heads(&mut self, node: &Node, heads: &Heads) -> Result<Computed, String> {
        if heads.batch_merged {
            return Err(format!(
                "reads attention heads reshaped together with the batch axis, ONNX shape (N·{}, {}, {}), \
                 which strata reads only as a transpose of their last two axes",
                heads.size(heads.axes[0]),
                heads.size(heads.axes[1]),
                heads.size(heads.axes[2])
            ));
        }
        let target: Vec<usize> = STEPS_FIRST.iter().map(|&a| heads.size(a)).collect();
        let config = json!({ "target_shape": target });
        let (source, _, layer) = self.add_layer(node.proto, "_heads", "Reshape", config, &[&heads.x], vec![])?;
        let axes = STEPS_FIRST
            .iter()
            .map(|a| heads.axes.iter().position(|b| b == a).unwrap_or(0))
            .collect();
        let real = Computed {
            source,
            shape: heads.shape(),
            axes,
            order: None,
            non_negative: heads.x.non_negative,
            layer: Some(layer),
        };
        if heads.scale == 1.0 {
            return Ok(real);
        }
        let config = json!({"scale": heads.scale, "offset": 0.0});
        self.add_same_layout(node.proto, "Rescaling", config, &real, vec![])
    }
}

/// Heads transposed: the batch axis stays first, the record of the others follows `perm`;
/// with the batch merged into the first axis, that axis stays first and the other two follow.
/// Two transposes move the batch: `(steps, N·heads, width)` to `(N·heads, steps, width)` (the
/// batch merged into the first axis again) and an attention's output `(N, heads, steps,
/// width)` to `(steps, N, heads, width)`, a time-major sequence of the heads side by side.
fn transpose(node: &Node, heads: &Heads) -> Result<Tensor, String> {
    let perm = node.ints("perm");
    if heads.batch_merged {
        // ONNX axis `i` holds `heads.axes[i]`; the batch is merged into axis 0 (or 1 when
        // time-major). It may move between those two; the other axes follow.
        let merged = usize::from(heads.time_major);
        let moved = match perm.as_deref() {
            Some(p) if p.len() == 3 && super::ops::is_permutation(p) => p,
            _ => return Err(format!("perm {perm:?} on attention heads merged with the batch")),
        };
        let at = moved.iter().position(|&p| p as usize == merged).unwrap_or(2);
        if at > 1 {
            return Err(format!(
                "perm {moved:?} moves attention heads' batch axis last: strata keeps it first or second"
            ));
        }
        return Ok(Tensor::Heads(Heads {
            axes: [0, 1, 2].map(|i| heads.axes[moved[i] as usize]),
            time_major: at == 1,
            ..heads.clone()
        }));
    }
    if !heads.batch_merged && perm.as_deref() == Some(&[2, 0, 1, 3]) && heads.axes == HEADS_FIRST && heads.scale == 1.0
    {
        return Ok(Tensor::TimeMajor(TimeMajor {
            x: heads.x.clone(),
            directions: Some(heads.heads),
            batch_first_of_two: true,
        }));
    }
    // ONNX axis `i` (after the batch's) holds `heads.axes[i - 1]`.
    let perm = perm.unwrap_or_else(|| vec![3, 2, 1, 0]);
    if perm.len() != 4 || perm[0] != 0 || !super::ops::is_permutation(&perm) {
        return Err(format!(
            "perm {perm:?} on attention heads: strata keeps the batch axis first"
        ));
    }
    let mut axes = heads.axes;
    for (i, &p) in perm.iter().enumerate().skip(1) {
        axes[i - 1] = heads.axes[p as usize - 1];
    }
    Ok(Tensor::Heads(Heads { axes, ..heads.clone() }))
}

/// Heads reshaped with their batch axis: `(N, a, b, c)` to `(-1, b, c)` merges the batch into
/// the first axis, `(N·a, b, c)` to `(N, a, b, c)` (the batch as `-1`, 0 or the batch size
/// read from the graph) splits it out again; `None` for another reshape.
fn batch_reshape(heads: &Heads, target: &[i64], static_batch: Option<usize>) -> Option<Heads> {
    let sizes: Vec<i64> = heads.shape().iter().map(|&d| d as i64).collect();
    let merges =
        !heads.batch_merged && !heads.time_major && target.len() == 3 && target[0] == -1 && target[1..] == sizes[1..];
    let batch = |d: i64| d == -1 || d == 0 || d == BATCH || static_batch.is_some_and(|b| b as i64 == d);
    let splits =
        heads.batch_merged && !heads.time_major && target.len() == 4 && batch(target[0]) && target[1..] == sizes[..];
    (merges || splits).then(|| Heads {
        batch_merged: merges,
        ..heads.clone()
    })
}

/// Heads or scores times `factor`; `None` for other tensors.
fn scaled(t: &Tensor, factor: f32) -> Option<Tensor> {
    match t {
        Tensor::Heads(heads) => Some(Tensor::Heads(Heads {
            scale: heads.scale * factor,
            ..heads.clone()
        })),
        Tensor::Scores(scores) if !scores.softmax => Some(Tensor::Scores(Scores {
            scale: scores.scale * factor,
            ..scores.clone()
        })),
        _ => None,
    }
}

/// `query · keyᵀ` per head: queries `(heads, Tq, width)` by keys `(heads, width, Tk)`.
fn scores(query: &Heads, key: &Heads) -> Result<Scores, String> {
    let fits = query.axes == HEADS_FIRST
        && key.axes == KEYS_TRANSPOSED
        && query.batch_merged == key.batch_merged
        && !query.time_major
        && !key.time_major
        && query.heads == key.heads
        && query.size(HeadAxis::Width) == key.size(HeadAxis::Width);
    if !fits {
        return Err(format!(
            "a MatMul of attention heads of ONNX shapes (N, {}) and (N, {}): strata reads queries (N, heads, steps, \
             width) by transposed keys (N, heads, width, steps)",
            super::ops::join(&query.shape()),
            super::ops::join(&key.shape())
        ));
    }
    Ok(Scores {
        query: query.x.clone(),
        key: key.x.clone(),
        heads: query.heads,
        scale: query.scale * key.scale,
        causal: false,
        softmax: false,
        batch_merged: query.batch_merged,
        key_mask: None,
    })
}

/// Scores plus a constant mask: nothing when the mask is all zeros, a causal attention when
/// it leaves out exactly the keys after each query; other masks are refused.
fn masked(scores: &Scores, mask: &Constant) -> Result<Scores, String> {
    let [heads, tq, tk] = [scores.heads, scores.query.shape[0], scores.key.shape[0]];
    let mut shape = mask.shape.clone();
    while shape.len() < 4 {
        shape.insert(0, 1);
    }
    let fits = !scores.softmax
        && shape.len() == 4
        && shape[0] == 1
        && [1, heads].contains(&shape[1])
        && [1, tq].contains(&shape[2])
        && [1, tk].contains(&shape[3]);
    if !fits {
        return Err(format!(
            "adds a mask of shape {:?} to attention scores of ONNX shape (N, {heads}, {tq}, {tk}) (before their Softmax)",
            mask.shape
        ));
    }
    let values = mask.floats();
    let at = |h: usize, i: usize, j: usize| {
        let index = ((h.min(shape[1] - 1) * shape[2] + i.min(shape[2] - 1)) * shape[3]) + j.min(shape[3] - 1);
        values[index]
    };
    let pairs = || (0..heads).flat_map(move |h| (0..tq).flat_map(move |i| (0..tk).map(move |j| (h, i, j))));
    if pairs().all(|(h, i, j)| at(h, i, j) == 0.0) {
        return Ok(scores.clone());
    }
    let causal = tq == tk
        && pairs().all(|(h, i, j)| match j > i {
            true => at(h, i, j) <= LEFT_OUT,
            false => at(h, i, j) == 0.0,
        });
    if !causal {
        return Err(
            "adds a constant mask to attention scores that is neither all zeros nor causal (strata's attention \
             takes those two)"
                .into(),
        );
    }
    Ok(Scores {
        causal: true,
        ..scores.clone()
    })
}

/// Scores filled with one very negative number where a constant condition says (`Where(keep,
/// scores, fill)`, GPT-Neo's causal mask; `Where(drop, fill, scores)` for `kept` false) as the
/// mask that, added, leaves the same softmax: 0 where the scores are kept, the fill elsewhere.
fn filled_mask(condition: &Constant, fill: &Constant, kept: bool) -> Result<Constant, String> {
    let fill = match fill.floats().as_slice() {
        &[v] if v <= LEFT_OUT => v,
        _ => {
            return Err(format!(
                "fills attention scores with a constant of shape {:?} that is not one very negative number",
                fill.shape
            ));
        }
    };
    let values = condition
        .floats()
        .iter()
        .map(|&c| if (c != 0.0) == kept { 0.0 } else { fill })
        .collect();
    Ok(Constant::float(condition.shape.clone(), values))
}

/// Whether `fill` is one number that leaves a score out when put in its place.
fn is_left_out(fill: &Constant) -> bool {
    matches!(fill.floats().as_slice(), &[v] if v <= LEFT_OUT)
}

/// The softmax of scores, over the keys (the last axis).
fn softmax(node: &Node, scores: &Scores) -> Result<Scores, String> {
    let axis = node.int("axis", if node.opset >= 13 { -1 } else { 1 });
    if scores.softmax || !(axis == -1 || axis == 3) {
        return Err(format!(
            "Softmax over axis {axis} of attention scores: strata's attention takes it over the keys (axis -1)"
        ));
    }
    Ok(Scores {
        softmax: true,
        ..scores.clone()
    })
}
