//! Operators on constants, computed at import (the `Shape` → `Gather` → `Concat` → `Reshape`
//! chains exporters write for `x.view(x.size(0), -1)`), and the shape operators (`Reshape`,
//! `Flatten`, `Squeeze`, `Unsqueeze`) on computed tensors, which become a strata reshape.

use super::convert::{Converter, Node, Tensor};
use super::ops::{is_permutation, join, permute};
use super::proto::{BFLOAT16, DOUBLE, FLOAT, FLOAT16, INT32, INT64};

use super::constant_math::{
    MAX_FOLDED_VALUES, broadcast, compare, cumulative_sum, extremum, logical, matmul, power, source_index, unary,
};
use super::tensors::{BATCH, BOOL, Constant, TensorReader, Values, batch_factor, batch_times};
use std::rc::Rc;

impl Converter {
    /// `Constant`: its `value` tensor or `value_float(s)` / `value_int(s)`.
    pub(super) fn constant_node(&mut self, node: &Node, reader: &mut TensorReader) -> Result<Tensor, String> {
        let c = if let Some(t) = node.attribute("value").and_then(|a| a.t.as_ref()) {
            reader.read(t)?
        } else if let Some(a) = node.attribute("value_float") {
            Constant::float(vec![], vec![a.f.unwrap_or(0.0)])
        } else if let Some(a) = node.attribute("value_floats") {
            Constant::float(vec![a.floats.len()], a.floats.clone())
        } else if let Some(a) = node.attribute("value_int") {
            Constant::int(vec![], vec![a.i.unwrap_or(0)])
        } else if let Some(a) = node.attribute("value_ints") {
            Constant::int(vec![a.ints.len()], a.ints.clone())
        } else {
            return Err("has no value strata reads (value, value_float(s), value_int(s))".into());
        };
        Ok(Tensor::Constant(Rc::new(c)))
    }

    /// `Shape`: a computed tensor's shape, the batch size standing as [`BATCH`] unless fixed.
    pub(super) fn shape(&mut self, node: &Node) -> Result<Tensor, String> {
        let batch = self.static_batch.map_or(BATCH, |b| b as i64);
        let dims: Vec<i64> = match self.input(node, 0)? {
            Tensor::Constant(c) => c.shape.iter().map(|&d| d as i64).collect(),
            Tensor::TimeMajor(t) => t
                .onnx_shape()
                .into_iter()
                .map(|d| if d == BATCH { batch } else { d })
                .collect(),
            // `(N·a, b, c)`, or time-major `(steps, N·heads, width)`.
            Tensor::Heads(heads) if heads.batch_merged => {
                let size = |k: usize| heads.size(heads.axes[k]);
                match heads.time_major {
                    true => vec![size(0) as i64, batch_multiple(batch, size(1))?, size(2) as i64],
                    false => vec![batch_multiple(batch, size(0))?, size(1) as i64, size(2) as i64],
                }
            }
            Tensor::StepsFlat(t) => vec![batch_multiple(batch, t.x.shape[0])?, t.x.shape[1] as i64],
            Tensor::Mask(part) => self.mask_shape(&part.clone(), batch)?,
            Tensor::Rows(x) => {
                let (features, leading) = x.shape.split_last().ok_or("rows without features")?;
                vec![batch_multiple(batch, leading.iter().product())?, *features as i64]
            }
            Tensor::Scores(scores) if scores.batch_merged => {
                let [heads, queries, keys] = [scores.heads, scores.query.shape[0], scores.key.shape[0]];
                vec![batch_multiple(batch, heads)?, queries as i64, keys as i64]
            }
            computed => {
                let per_sample = match computed {
                    Tensor::Computed(x) => x.shape.clone(),
                    Tensor::Heads(heads) if !heads.batch_merged => heads.shape(),
                    Tensor::Heads(_) | Tensor::StepsFlat(_) | Tensor::Rows(_) | Tensor::Mask(_) => Vec::new(),
                    Tensor::Scores(scores) => scores.shape(),
                    Tensor::Constant(_) => Vec::new(),
                    Tensor::TimeMajor(_) => Vec::new(),
                    Tensor::Flat(_) | Tensor::Indices(_) | Tensor::States(_) | Tensor::Packed(_) => {
                        return Err(
                            "the shape of a tensor flattened with its batch axis or computed from the batch size \
                             depends on the batch size, which strata does not fix at import"
                                .into(),
                        );
                    }
                };
                std::iter::once(batch)
                    .chain(per_sample.iter().map(|&d| d as i64))
                    .collect()
            }
        };
        let rank = dims.len() as i64;
        let clamp = |v: i64| (if v < 0 { v.saturating_add(rank) } else { v }).clamp(0, rank) as usize;
        let start = clamp(node.int("start", 0));
        let end = clamp(node.int("end", rank));
        let dims = dims[start..end.max(start)].to_vec();
        Ok(Tensor::Constant(Rc::new(Constant::int(vec![dims.len()], dims))))
    }

    /// Every input a constant: the operator computed now.
    pub(super) fn fold(&mut self, node: &Node) -> Result<Tensor, String> {
        let op = node.proto.op_type.as_str();
        let input = |k: usize| self.constant(node, k, "input");
        let c = match op {
            "Identity" | "Dropout" => (*input(0)?).clone(),
            "Cast" => {
                let x = input(0)?;
                match node.int("to", FLOAT as i64) as i32 {
                    // Every float type is computed in f32.
                    FLOAT | FLOAT16 | BFLOAT16 | DOUBLE => Constant::float(x.shape.clone(), x.numbers("its input")?),
                    BOOL => Constant::int(
                        x.shape.clone(),
                        x.numbers("its input")?.iter().map(|&v| i64::from(v != 0.0)).collect(),
                    ),
                    INT64 | INT32 => match &x.values {
                        Values::Int(v) => Constant::int(x.shape.clone(), v.clone()),
                        Values::Float(v) => Constant::int(x.shape.clone(), v.iter().map(|&f| f as i64).collect()),
                    },
                    other => return Err(format!("Cast to data type {other} is not supported")),
                }
            }
            "Add" | "Sub" | "Mul" | "Div" | "Mod" => binary(op, &*input(0)?, &*input(1)?)?,
            "Gather" => gather(&*input(0)?, &*input(1)?, node.int("axis", 0))?,
            "GatherElements" => gather_elements(&*input(0)?, &*input(1)?, node.int("axis", 0))?,
            "GatherND" if node.int("batch_dims", 0) == 0 => gather_nd(&*input(0)?, &*input(1)?)?,
            "Concat" => {
                let parts: Vec<Rc<Constant>> = (0..node.proto.input.len()).map(input).collect::<Result<_, _>>()?;
                concat(&parts, node.int("axis", 0))?
            }
            "Unsqueeze" | "Squeeze" | "Flatten" | "Reshape" => {
                let x = input(0)?;
                let shape = self.new_shape(node, &x.shape, false)?;
                Constant {
                    shape,
                    values: x.values.clone(),
                }
            }
            "Transpose" => {
                let x = input(0)?;
                let rank = x.shape.len();
                let perm = node.ints("perm").unwrap_or_else(|| (0..rank as i64).rev().collect());
                if perm.len() != rank || !is_permutation(&perm) {
                    return Err(format!("perm {perm:?} does not fit shape {:?}", x.shape));
                }
                let perm: Vec<usize> = perm.iter().map(|&p| p as usize).collect();
                let shape = perm.iter().map(|&p| x.shape[p]).collect();
                match &x.values {
                    Values::Float(v) => Constant::float(shape, permute(v, &x.shape, &perm)),
                    Values::Int(v) => Constant::int(shape, permute(v, &x.shape, &perm)),
                }
            }
            "Slice" => self.slice(node)?,
            "Sqrt" | "Not" | "Neg" | "Abs" | "Reciprocal" | "Floor" | "Ceil" | "Sin" | "Cos" => unary(op, &*input(0)?)?,
            "Equal" | "Less" | "LessOrEqual" | "Greater" | "GreaterOrEqual" => compare(op, &*input(0)?, &*input(1)?)?,
            "And" | "Or" | "Xor" => logical(op, &*input(0)?, &*input(1)?)?,
            "Pow" => power(&*input(0)?, &*input(1)?)?,
            "Max" | "Min" => {
                let parts: Vec<Rc<Constant>> = (0..node.proto.input.len()).map(input).collect::<Result<_, _>>()?;
                extremum(op, &parts)?
            }
            "CumSum" => {
                let axis = input(1)?.ints("CumSum's axis")?;
                let &[axis] = axis.as_slice() else {
                    return Err("CumSum's axis must be one number".into());
                };
                let flags = (node.int("exclusive", 0) != 0, node.int("reverse", 0) != 0);
                cumulative_sum(&*input(0)?, axis, flags)?
            }
            "Where" => select_where(&*input(0)?, &*input(1)?, &*input(2)?)?,
            "Expand" => expand(&*input(0)?, &*input(1)?)?,
            "Range" => range(&*input(0)?, &*input(1)?, &*input(2)?)?,
            "MatMul" => matmul(&*input(0)?, &*input(1)?)?,
            "DequantizeLinear" => {
                if node.int("block_size", 0) != 0 {
                    return Err("dequantizes by blocks (block_size), which strata does not read".into());
                }
                let zero_point = node.input(2).map(|_| input(2)).transpose()?;
                dequantize(&*input(0)?, &*input(1)?, zero_point.as_deref(), node.int("axis", 1))?
            }
            _ => return Err("is not computed at import when all its inputs are constants".into()),
        };
        if c.len() > MAX_FOLDED_VALUES {
            return Err(format!(
                "computes a constant of {} values at import, more than strata allows",
                c.len()
            ));
        }
        Ok(Tensor::Constant(Rc::new(c)))
    }

    /// `Where` on computed data whose condition is a constant of one value: the operand it
    /// picks (DistilBERT's `masked_fill` by a mask of all tokens, made when no attention mask
    /// is given).
    pub(super) fn where_uniform(&mut self, node: &Node) -> Result<Tensor, String> {
        let condition = self.constant(node, 0, "condition")?.floats();
        let pick = if condition.iter().all(|&v| v != 0.0) {
            1
        } else if condition.iter().all(|&v| v == 0.0) {
            2
        } else {
            return Err(
                "picks by a condition that varies: strata reads Where on computed data when its constant condition \
                 holds one value"
                    .into(),
            );
        };
        match self.input(node, pick)? {
            Tensor::Constant(_) => Err("its condition picks a constant, where the other operand is computed".into()),
            picked => Ok(picked.clone()),
        }
    }

    /// `Slice` of a constant (the pad and shape chains exporters write), any axes and steps.
    fn slice(&self, node: &Node) -> Result<Constant, String> {
        let x = self.constant(node, 0, "input")?;
        let list =
            |k: usize, name: &str| -> Result<Option<Vec<i64>>, String> { self.ints_input_or_attribute(node, k, name) };
        let starts = list(1, "starts")?.ok_or("has no starts")?;
        let ends = list(2, "ends")?.ok_or("has no ends")?;
        let rank = x.shape.len() as i64;
        let axes = list(3, "axes")?.unwrap_or_else(|| (0..starts.len() as i64).collect());
        let steps = list(4, "steps")?.unwrap_or_else(|| vec![1; starts.len()]);
        if ends.len() != starts.len() || axes.len() != starts.len() || steps.len() != starts.len() {
            return Err("starts, ends, axes and steps differ in length".into());
        }
        let mut picks: Vec<Vec<usize>> = x.shape.iter().map(|&d| (0..d).collect()).collect();
        for k in 0..starts.len() {
            let axis = if axes[k] < 0 { axes[k] + rank } else { axes[k] };
            let dim = *usize::try_from(axis)
                .ok()
                .and_then(|a| x.shape.get(a))
                .ok_or_else(|| format!("axis {} is out of range", axes[k]))? as i64;
            let step = steps[k];
            let at = |v: i64| if v < 0 { v.saturating_add(dim) } else { v };
            let chosen: Vec<usize> = match step {
                0 => return Err("a step of 0".into()),
                s if s > 0 => {
                    let (a, b) = (at(starts[k]).clamp(0, dim), at(ends[k]).clamp(0, dim));
                    (a..b).step_by(s.min(dim.max(1)) as usize).map(|i| i as usize).collect()
                }
                // An empty axis has no last index to clamp a backward start to.
                _ if dim == 0 => Vec::new(),
                s => {
                    let (a, b) = (at(starts[k]).clamp(0, dim - 1), at(ends[k]).clamp(-1, dim - 1));
                    let mut out = Vec::new();
                    let mut i = a;
                    while i > b {
                        out.push(i as usize);
                        i = i.saturating_add(s);
                    }
                    out
                }
            };
            picks[axis as usize] = chosen;
        }
        Ok(select(&x, &picks))
    }

    /// `ConstantOfShape`: a tensor of the given shape filled with `value` (0.0 by default). The
    /// batch size, unknown at import, stands as 1 (such a constant, an attention mask of ones,
    /// is broadcast over the batch where it meets computed data).
    pub(super) fn constant_of_shape(&mut self, node: &Node, reader: &mut TensorReader) -> Result<Tensor, String> {
        let given = self.constant(node, 0, "shape")?;
        let Values::Int(shape) = &given.values else {
            return Err("its shape must be an integer tensor".into());
        };
        let shape: Vec<usize> = shape
            .iter()
            .map(|&d| match d {
                BATCH => Ok(1),
                d => usize::try_from(d).map_err(|_| format!("shape {shape:?} has a negative size")),
            })
            .collect::<Result<_, _>>()?;
        let count = shape
            .iter()
            .try_fold(1usize, |n, &d| n.checked_mul(d))
            .filter(|&n| n <= MAX_FOLDED_VALUES)
            .ok_or_else(|| format!("shape {shape:?} is too large to make at import"))?;
        let fill = match node.attribute("value").and_then(|a| a.t.as_ref()) {
            Some(t) => reader.read(t)?,
            None => Constant::float(vec![1], vec![0.0]),
        };
        let c = match &fill.values {
            Values::Float(v) => Constant::float(shape, vec![v.first().copied().unwrap_or(0.0); count]),
            Values::Int(v) => Constant::int(shape, vec![v.first().copied().unwrap_or(0); count]),
        };
        Ok(Tensor::Constant(Rc::new(c)))
    }

    /// The full ONNX shape (batch included, as `shape` is) after `Reshape`, `Flatten`,
    /// `Squeeze` or `Unsqueeze`. `computed`: the first axis is the batch, whose size is unknown.
    pub(super) fn new_shape(&self, node: &Node, shape: &[usize], computed: bool) -> Result<Vec<usize>, String> {
        let rank = shape.len() as i64;
        let resolve = |axis: i64, rank: i64| -> Result<usize, String> {
            let a = if axis < 0 { axis + rank } else { axis };
            usize::try_from(a)
                .ok()
                .filter(|&a| (a as i64) < rank)
                .ok_or_else(|| format!("axis {axis} is out of range for {rank} axes"))
        };
        match node.proto.op_type.as_str() {
            "Flatten" => {
                let axis = node.int("axis", 1);
                let axis = if axis < 0 { axis + rank } else { axis };
                if !(0..=rank).contains(&axis) || computed && axis != 1 {
                    return Err(format!(
                        "Flatten with axis {axis} is supported as axis 1 (flatten each sample) only"
                    ));
                }
                let (a, b) = shape.split_at(axis as usize);
                Ok(vec![a.iter().product(), b.iter().product()])
            }
            "Unsqueeze" => {
                let axes = self.ints_input_or_attribute(node, 1, "axes")?.ok_or("has no axes")?;
                let out_rank = rank + axes.len() as i64;
                let mut inserted: Vec<usize> = axes.iter().map(|&a| resolve(a, out_rank)).collect::<Result<_, _>>()?;
                inserted.sort_unstable();
                inserted.dedup();
                if inserted.len() != axes.len() || computed && inserted.first() == Some(&0) {
                    return Err(format!("axes {axes:?} repeat, or move the batch axis"));
                }
                let mut rest = shape.iter();
                Ok((0..out_rank as usize)
                    .map(|k| {
                        if inserted.contains(&k) {
                            1
                        } else {
                            rest.next().copied().unwrap_or(1)
                        }
                    })
                    .collect())
            }
            "Squeeze" => {
                let axes = self.ints_input_or_attribute(node, 1, "axes")?;
                let removed: Vec<usize> = match axes {
                    Some(axes) => axes.iter().map(|&a| resolve(a, rank)).collect::<Result<_, _>>()?,
                    None => (usize::from(computed)..shape.len())
                        .filter(|&k| shape[k] == 1)
                        .collect(),
                };
                if removed.iter().any(|&k| shape[k] != 1 || computed && k == 0) {
                    return Err(format!("cannot squeeze axes {removed:?} of shape {shape:?}"));
                }
                Ok((0..shape.len())
                    .filter(|k| !removed.contains(k))
                    .map(|k| shape[k])
                    .collect())
            }
            _ => {
                let target = self.constant(node, 1, "shape")?;
                let Values::Int(target) = &target.values else {
                    return Err("its shape must be an integer tensor".into());
                };
                reshape_target(
                    target,
                    shape,
                    computed,
                    node.int("allowzero", 0) != 0,
                    self.static_batch,
                )
            }
        }
    }

    /// `Reshape`, `Flatten`, `Squeeze`, `Unsqueeze` of a computed tensor.
    pub(super) fn reshape_node(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let full: Vec<usize> = std::iter::once(1).chain(x.shape.iter().copied()).collect();
        let target = self.new_shape(node, &full, true)?;
        if node.proto.op_type == "Reshape"
            && let Some(heads) = super::heads::split_heads(&x, &target[1..])
        {
            return Ok(heads);
        }
        self.reshape_computed(node, x, target[1..].to_vec())
    }
}

/// `count` times the batch size `batch` (the batch's stand-in or the fixed size).
fn batch_multiple(batch: i64, count: usize) -> Result<i64, String> {
    let count = i64::try_from(count).map_err(|_| "a size too large".to_string())?;
    let multiple = match batch_factor(batch) {
        Some(k) => k.checked_mul(count).and_then(batch_times),
        None => batch.checked_mul(count),
    };
    multiple.ok_or_else(|| "a multiple of the batch size too large".into())
}

/// `Reshape`'s target for data of (full) `shape`: 0 copies a dimension (unless `allow_zero`),
/// one -1 takes what is left. For computed data the batch axis must stay first: [`BATCH`], 0,
/// -1 or the fixed batch size there.
fn reshape_target(
    target: &[i64],
    shape: &[usize],
    computed: bool,
    allow_zero: bool,
    static_batch: Option<usize>,
) -> Result<Vec<usize>, String> {
    let count: usize = shape.iter().skip(usize::from(computed)).product();
    let bad = || format!("cannot reshape shape {shape:?} to {target:?}");
    let body = match (computed, target.split_first()) {
        (false, _) => target,
        (true, Some((&first, rest))) => {
            let batch_ok =
                first == BATCH || first == 0 && !allow_zero || static_batch.is_some_and(|b| b as i64 == first);
            let inferred = first == -1 && !rest.contains(&-1);
            if !batch_ok && !inferred {
                return Err(format!(
                    "Reshape to {target:?} moves the batch axis: strata keeps it first"
                ));
            }
            rest
        }
        (true, None) => return Err(bad()),
    };
    let offset = usize::from(computed);
    let mut out = Vec::with_capacity(body.len() + offset);
    let mut infer = None;
    for (k, &d) in body.iter().enumerate() {
        out.push(match d {
            BATCH => return Err(format!("Reshape to {target:?} puts the batch size inside a sample")),
            -1 if infer.is_none() => {
                infer = Some(k);
                1
            }
            0 if !allow_zero => *shape.get(k + offset).ok_or_else(bad)?,
            d => usize::try_from(d).map_err(|_| bad())?,
        });
    }
    let known = out.iter().try_fold(1usize, |n, &d| n.checked_mul(d)).ok_or_else(bad)?;
    if let Some(k) = infer {
        if known == 0 || !count.is_multiple_of(known) {
            return Err(bad());
        }
        out[k] = count / known;
    } else if known != count {
        return Err(bad());
    }
    if computed {
        out.insert(0, 1);
    }
    Ok(out)
}

/// `Add`, `Sub`, `Mul`, `Div`, `Mod` of two constants with ONNX's broadcasting.
/// `DequantizeLinear` of a constant (int8 or uint8 weights, int32 biases, as ONNX Runtime's
/// quantization tools write them): `(x − zero_point) · scale`, with one scale (and zero point)
/// for the whole tensor or one per index of `axis`.
fn dequantize(x: &Constant, scale: &Constant, zero_point: Option<&Constant>, axis: i64) -> Result<Constant, String> {
    let values = x.ints("the quantized values")?;
    let scales = scale.numbers("the scale")?;
    let zero_points = match zero_point {
        Some(z) => z.ints("the zero point")?,
        None => vec![0; scales.len()],
    };
    if zero_points.len() != scales.len() {
        return Err(format!(
            "has {} zero points for {} scales",
            zero_points.len(),
            scales.len()
        ));
    }
    let rank = x.shape.len() as i64;
    // Per tensor: every value takes the one scale, as if along an axis of one.
    let (size, inner) = if scale.shape.is_empty() || scales.len() == 1 && scale.shape.iter().all(|&d| d == 1) {
        (1, 1)
    } else {
        if scale.shape.len() != 1 || !(-rank..rank).contains(&axis) {
            return Err(format!(
                "has scales of shape {:?} for values of shape {:?} along axis {axis}: strata reads one scale, or \
                 one per index of an axis",
                scale.shape, x.shape
            ));
        }
        let axis = axis.rem_euclid(rank) as usize;
        if x.shape[axis] != scales.len() {
            return Err(format!(
                "has {} scales for axis {axis} of values of shape {:?}",
                scales.len(),
                x.shape
            ));
        }
        (scales.len(), x.shape[axis + 1..].iter().product::<usize>())
    };
    let dequantized = values
        .iter()
        .enumerate()
        .map(|(i, &v)| {
            let k = (i / inner.max(1)) % size;
            (v - zero_points[k]) as f32 * scales[k]
        })
        .collect();
    Ok(Constant::float(x.shape.clone(), dequantized))
}

pub(super) fn binary(op: &str, a: &Constant, b: &Constant) -> Result<Constant, String> {
    let rank = a.shape.len().max(b.shape.len());
    let pad = |s: &[usize]| -> Vec<usize> {
        std::iter::repeat_n(1, rank - s.len())
            .chain(s.iter().copied())
            .collect()
    };
    let (sa, sb) = (pad(&a.shape), pad(&b.shape));
    let mut shape = Vec::with_capacity(rank);
    for k in 0..rank {
        shape.push(match (sa[k], sb[k]) {
            (x, y) if x == y => x,
            (1, y) => y,
            (x, 1) => x,
            _ => return Err(format!("shapes {:?} and {:?} do not broadcast", a.shape, b.shape)),
        });
    }
    let count = shape
        .iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_FOLDED_VALUES);
    let count = count.ok_or("the result is too large to compute at import")?;
    let index = |s: &[usize], flat: usize| -> usize {
        let (mut rest, mut at, mut stride) = (flat, 0, 1);
        for k in (0..rank).rev() {
            let i = rest % shape[k];
            rest /= shape[k];
            if s[k] != 1 {
                at += i * stride;
            }
            stride *= s[k];
        }
        at
    };
    match (&a.values, &b.values) {
        (Values::Int(x), Values::Int(y)) => {
            let batch_derived = |v: &[i64]| v.iter().any(|&d| batch_factor(d).is_some());
            if batch_derived(x) || batch_derived(y) {
                if op != "Mul" {
                    return Err("computes with the batch size, which strata does not fix at import".into());
                }
                // The batch size times a positive count stays a stand-in (`N·heads`).
                let times = |p: i64, q: i64| match (batch_factor(p), batch_factor(q)) {
                    (Some(k), None) if q > 0 => k.checked_mul(q).and_then(batch_times),
                    (None, Some(k)) if p > 0 => k.checked_mul(p).and_then(batch_times),
                    (None, None) => p.checked_mul(q),
                    _ => None,
                };
                let values = (0..count)
                    .map(|n| {
                        times(x[index(&sa, n)], y[index(&sb, n)])
                            .ok_or("multiplies the batch size other than by a positive count")
                    })
                    .collect::<Result<_, _>>()?;
                return Ok(Constant::int(shape, values));
            }
            let f = |p: i64, q: i64| match op {
                "Add" => p.checked_add(q),
                "Sub" => p.checked_sub(q),
                "Mul" => p.checked_mul(q),
                // ONNX's integer Mod takes the divisor's sign, as Python's %.
                "Mod" => p
                    .checked_rem(q)
                    .map(|r| if r != 0 && (r < 0) != (q < 0) { r + q } else { r }),
                _ => p.checked_div(q),
            };
            let values = (0..count)
                .map(|n| f(x[index(&sa, n)], y[index(&sb, n)]).ok_or("integer overflow or division by zero"))
                .collect::<Result<_, _>>()?;
            Ok(Constant::int(shape, values))
        }
        _ => {
            let (x, y) = (a.numbers("its first input")?, b.numbers("its second input")?);
            let f = |p: f32, q: f32| match op {
                "Add" => p + q,
                "Sub" => p - q,
                "Mul" => p * q,
                "Mod" => p % q,
                _ => p / q,
            };
            let values = (0..count).map(|n| f(x[index(&sa, n)], y[index(&sb, n)])).collect();
            Ok(Constant::float(shape, values))
        }
    }
}

/// The number of values a folded constant of `dims` (multiplied out) holds, when it is at most
/// [`MAX_FOLDED_VALUES`]: checked before its values are allocated, since repeated indices make
/// an output far larger than the inputs.
fn folded_count(op: &str, dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= MAX_FOLDED_VALUES)
        .ok_or_else(|| {
            let dims: Vec<String> = dims.iter().map(usize::to_string).collect();
            format!(
                "{op} computes a constant of {} values at import, more than strata allows ({MAX_FOLDED_VALUES})",
                dims.join(" × ")
            )
        })
}

/// The values of `x` at the cartesian product of `picks` (one list of indices per axis).
fn select(x: &Constant, picks: &[Vec<usize>]) -> Constant {
    let rank = x.shape.len();
    let mut strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * x.shape[k + 1];
    }
    let shape: Vec<usize> = picks.iter().map(Vec::len).collect();
    let count: usize = shape.iter().product();
    let mut order = Vec::with_capacity(count);
    let mut index = vec![0usize; rank];
    for _ in 0..count {
        order.push((0..rank).map(|k| picks[k][index[k]] * strides[k]).sum::<usize>());
        for k in (0..rank).rev() {
            index[k] += 1;
            if index[k] < shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    match &x.values {
        Values::Float(v) => Constant::float(shape, order.iter().map(|&k| v[k]).collect()),
        Values::Int(v) => Constant::int(shape, order.iter().map(|&k| v[k]).collect()),
    }
}

/// `Gather` of constants along `axis`.
fn gather(data: &Constant, indices: &Constant, axis: i64) -> Result<Constant, String> {
    let rank = data.shape.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Err(format!("axis {axis} is out of range for shape {:?}", data.shape));
    }
    let axis = axis as usize;
    let picks = indices.ints("Gather's indices")?;
    let size = data.shape[axis] as i64;
    let picks: Vec<usize> = picks
        .iter()
        .map(|&i| {
            let j = if i < 0 { i + size } else { i };
            usize::try_from(j)
                .ok()
                .filter(|&j| (j as i64) < size)
                .ok_or_else(|| format!("index {i} is out of range for {size}"))
        })
        .collect::<Result<_, _>>()?;
    let outer: usize = data.shape[..axis].iter().product();
    let inner: usize = data.shape[axis + 1..].iter().product();
    let mut order = Vec::with_capacity(folded_count("Gather", &[outer, picks.len(), inner])?);
    for o in 0..outer {
        for &p in &picks {
            for i in 0..inner {
                order.push((o * data.shape[axis] + p) * inner + i);
            }
        }
    }
    let shape: Vec<usize> = data.shape[..axis]
        .iter()
        .chain(&indices.shape)
        .chain(&data.shape[axis + 1..])
        .copied()
        .collect();
    Ok(match &data.values {
        Values::Float(v) => Constant::float(shape, order.iter().map(|&k| v[k]).collect()),
        Values::Int(v) => Constant::int(shape, order.iter().map(|&k| v[k]).collect()),
    })
}

/// `GatherND` of constants (`batch_dims` 0): each row of `indices`' last axis picks one slice
/// of `data` by its first coordinates (the index arithmetic of `transformers`' masks as
/// torch.export writes them).
fn gather_nd(data: &Constant, indices: &Constant) -> Result<Constant, String> {
    let Some((&depth, rows)) = indices.shape.split_last() else {
        return Err("GatherND's indices have no axes".into());
    };
    if depth == 0 || depth > data.shape.len() {
        return Err(format!(
            "GatherND by {depth} coordinates into data of shape {:?}",
            data.shape
        ));
    }
    let slice: usize = data.shape[depth..].iter().product();
    let coordinates = indices.ints("GatherND's indices")?;
    let mut order = Vec::with_capacity(folded_count("GatherND", &[coordinates.len() / depth, slice])?);
    for point in coordinates.chunks(depth) {
        let mut at = 0usize;
        for (&i, &size) in point.iter().zip(&data.shape) {
            let j = if i < 0 { i + size as i64 } else { i };
            let j = usize::try_from(j)
                .ok()
                .filter(|&j| j < size)
                .ok_or_else(|| format!("index {i} is out of range for {size}"))?;
            at = at * size + j;
        }
        order.extend(at * slice..(at + 1) * slice);
    }
    let shape: Vec<usize> = rows.iter().chain(&data.shape[depth..]).copied().collect();
    Ok(match &data.values {
        Values::Float(v) => Constant::float(shape, order.iter().map(|&k| v[k]).collect()),
        Values::Int(v) => Constant::int(shape, order.iter().map(|&k| v[k]).collect()),
    })
}

/// `Concat` of constants along `axis`.
fn concat(parts: &[Rc<Constant>], axis: i64) -> Result<Constant, String> {
    let first = parts.first().ok_or("has no inputs")?;
    let rank = first.shape.len() as i64;
    let axis = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&axis) {
        return Err(format!("axis {axis} is out of range for shape {:?}", first.shape));
    }
    let axis = axis as usize;
    let agree = parts.iter().all(|p| {
        p.shape.len() == first.shape.len() && (0..first.shape.len()).all(|k| k == axis || p.shape[k] == first.shape[k])
    });
    if !agree {
        let shapes: Vec<_> = parts.iter().map(|p| join(&p.shape)).collect();
        return Err(format!("shapes ({}) do not join", shapes.join("), (")));
    }
    let outer: usize = first.shape[..axis].iter().product();
    let mut shape = first.shape.clone();
    shape[axis] = parts.iter().map(|p| p.shape[axis]).sum();
    let chunk = |p: &Constant, o: usize| {
        let n: usize = p.shape[axis..].iter().product();
        o * n..(o + 1) * n
    };
    let ints = parts.iter().all(|p| matches!(p.values, Values::Int(_)));
    if ints {
        let mut values = Vec::new();
        for o in 0..outer {
            for p in parts {
                if let Values::Int(v) = &p.values {
                    values.extend_from_slice(&v[chunk(p, o)]);
                }
            }
        }
        return Ok(Constant::int(shape, values));
    }
    let floats: Vec<Vec<f32>> = parts.iter().map(|p| p.numbers("an input")).collect::<Result<_, _>>()?;
    let mut values = Vec::new();
    for o in 0..outer {
        for (p, v) in parts.iter().zip(&floats) {
            values.extend_from_slice(&v[chunk(p, o)]);
        }
    }
    Ok(Constant::float(shape, values))
}

/// `Where` of constants: `a` where `condition` is not 0, `b` elsewhere.
fn select_where(condition: &Constant, a: &Constant, b: &Constant) -> Result<Constant, String> {
    let (shape, padded) = broadcast(&[&condition.shape, &a.shape, &b.shape])?;
    let count: usize = shape.iter().product();
    let pick = |n: usize, k: usize| source_index(&padded[k], &shape, n);
    let test = condition.numbers("its condition")?;
    if let (Values::Int(x), Values::Int(y)) = (&a.values, &b.values) {
        let values = (0..count)
            .map(|n| {
                if test[pick(n, 0)] != 0.0 {
                    x[pick(n, 1)]
                } else {
                    y[pick(n, 2)]
                }
            })
            .collect();
        return Ok(Constant::int(shape, values));
    }
    let (x, y) = (a.numbers("its first operand")?, b.numbers("its second operand")?);
    let values = (0..count)
        .map(|n| {
            if test[pick(n, 0)] != 0.0 {
                x[pick(n, 1)]
            } else {
                y[pick(n, 2)]
            }
        })
        .collect();
    Ok(Constant::float(shape, values))
}

/// `Expand` of a constant to `target` (broadcast). The batch size, unknown at import, stands
/// as 1: a constant made from it is broadcast over the batch where it meets computed data.
fn expand(x: &Constant, target: &Constant) -> Result<Constant, String> {
    let Values::Int(target) = &target.values else {
        return Err("Expand's shape must be an integer tensor".into());
    };
    let target: Vec<usize> = target
        .iter()
        .map(|&d| match d {
            BATCH => Ok(1),
            d => usize::try_from(d).map_err(|_| format!("Expand to shape {target:?} with a negative size")),
        })
        .collect::<Result<_, _>>()?;
    let (shape, padded) = broadcast(&[&x.shape, &target])?;
    let count: usize = shape.iter().product();
    let pick = |n: usize| source_index(&padded[0], &shape, n);
    Ok(match &x.values {
        Values::Int(v) => Constant::int(shape.clone(), (0..count).map(|n| v[pick(n)]).collect()),
        Values::Float(v) => Constant::float(shape.clone(), (0..count).map(|n| v[pick(n)]).collect()),
    })
}

/// `Range` of constants: `start`, `start + delta`, ... up to `limit` (excluded), integers when
/// all three are (the positions torch.export writes as `arange`).
fn range(start: &Constant, limit: &Constant, delta: &Constant) -> Result<Constant, String> {
    let scalar = |c: &Constant| -> Result<Option<f32>, String> {
        Ok(c.numbers("Range")?.first().copied().filter(|_| c.len() == 1))
    };
    let (Some(a), Some(b), Some(d)) = (scalar(start)?, scalar(limit)?, scalar(delta)?) else {
        return Err("Range's start, limit and delta must be one number each".into());
    };
    let count = ((b - a) / d).ceil();
    if d == 0.0 || !count.is_finite() || count > MAX_FOLDED_VALUES as f32 {
        return Err(format!("Range from {a} to {b} by {d} is not a list strata computes"));
    }
    let count = count.max(0.0) as usize;
    let ints = [start, limit, delta].iter().all(|c| matches!(c.values, Values::Int(_)));
    if ints {
        let (a, d) = (start.ints("Range's start")?[0], delta.ints("Range's delta")?[0]);
        let values = (0..count as i64)
            .map(|k| a.saturating_add(k.saturating_mul(d)))
            .collect();
        return Ok(Constant::int(vec![count], values));
    }
    Ok(Constant::float(
        vec![count],
        (0..count).map(|k| a + k as f32 * d).collect(),
    ))
}

/// `GatherElements` of constants: the output has the indices' shape, each value taken from
/// `data` at the index's position with the `axis` coordinate replaced by the index.
fn gather_elements(data: &Constant, indices: &Constant, axis: i64) -> Result<Constant, String> {
    let rank = data.shape.len();
    let axis = if axis < 0 { axis + rank as i64 } else { axis };
    if indices.shape.len() != rank || !(0..rank as i64).contains(&axis) {
        return Err(format!(
            "indices of shape {:?} along axis {axis} do not fit data of shape {:?}",
            indices.shape, data.shape
        ));
    }
    let axis = axis as usize;
    let picks = indices.ints("GatherElements' indices")?;
    let mut strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * data.shape[k + 1];
    }
    let size = data.shape[axis] as i64;
    let mut order = Vec::with_capacity(picks.len());
    for (n, &pick) in picks.iter().enumerate() {
        let j = if pick < 0 { pick + size } else { pick };
        if !(0..size).contains(&j) {
            return Err(format!("index {pick} is out of range for {size}"));
        }
        let (mut rest, mut at) = (n, 0);
        for k in (0..rank).rev() {
            let i = rest % indices.shape[k];
            rest /= indices.shape[k];
            let coordinate = if k == axis { j as usize } else { i };
            if coordinate >= data.shape[k] {
                return Err(format!(
                    "indices of shape {:?} reach outside data of shape {:?}",
                    indices.shape, data.shape
                ));
            }
            at += coordinate * strides[k];
        }
        order.push(at);
    }
    Ok(match &data.values {
        Values::Float(v) => Constant::float(indices.shape.clone(), order.iter().map(|&k| v[k]).collect()),
        Values::Int(v) => Constant::int(indices.shape.clone(), order.iter().map(|&k| v[k]).collect()),
    })
}
