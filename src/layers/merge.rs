//! Merge layers, which combine several inputs into one: [`Add`] (residual connections),
//! [`Subtract`], [`Multiply`], [`Average`], [`Maximum`], [`Minimum`] and [`Concatenate`], as in
//! Keras.
//! They have no weights; use them in functional models (`Add::new().call_many(&[&a, &b])`).
//!
//! The elementwise ones broadcast as Keras's do: inputs of the same rank whose sizes agree or
//! are 1 on each axis, so squeeze-and-excitation's `(N, 1, 1, C) × (N, H, W, C)` is one
//! `Multiply`.

use super::Layer;
use crate::autograd::{Graph, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// How a [`Merge`] combines its inputs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Add,
    Subtract,
    Multiply,
    Average,
    Maximum,
    Minimum,
    /// Along this axis of the per-sample shape, counted as Keras does (-1 is the last).
    Concatenate(isize),
}

/// A merge layer; build one with [`Add::new`], [`Subtract::new`], [`Multiply::new`],
/// [`Average::new`], [`Maximum::new`], [`Minimum::new`] or [`Concatenate::new`].
#[derive(Clone, Debug)]
pub struct Merge {
    args: LayerArgs,
    kind: Kind,
    /// For Concatenate: the resolved axis of the batched tensors.
    batched_axis: usize,
}

macro_rules! merge_constructor {
    ($(#[$doc:meta])* $name:ident, $kind:expr) => {
        $(#[$doc])*
        pub struct $name;

        impl $name {
            /// The layer.
            #[allow(clippy::new_ret_no_self)]
            pub fn new() -> Merge {
                Merge::with_kind($kind)
            }
        }
    };
}

merge_constructor!(
    /// Keras's `Add`: the elementwise sum of its inputs, the join of a residual connection.
    Add,
    Kind::Add
);
merge_constructor!(
    /// Keras's `Subtract`: the first of two inputs minus the second.
    Subtract,
    Kind::Subtract
);
merge_constructor!(
    /// Keras's `Multiply`: the elementwise product of its inputs.
    Multiply,
    Kind::Multiply
);
merge_constructor!(
    /// Keras's `Average`: the elementwise mean of its inputs.
    Average,
    Kind::Average
);
merge_constructor!(
    /// Keras's `Maximum`: the elementwise maximum of its inputs.
    Maximum,
    Kind::Maximum
);
merge_constructor!(
    /// Keras's `Minimum`: the elementwise minimum of its inputs.
    Minimum,
    Kind::Minimum
);

/// Keras's `Concatenate(axis=-1)`: joins its inputs along one axis of the per-sample shape.
pub struct Concatenate;

impl Concatenate {
    /// Joins along `axis` of each sample (-1: the last, Keras's default).
    #[allow(clippy::new_ret_no_self)]
    pub fn new(axis: isize) -> Merge {
        Merge::with_kind(Kind::Concatenate(axis))
    }
}

impl Merge {
    fn with_kind(kind: Kind) -> Self {
        Merge {
            args: LayerArgs::default(),
            kind,
            batched_axis: 0,
        }
    }

    fn mismatch(&self, shapes: &[Vec<usize>]) -> Error {
        let all: Vec<String> = shapes.iter().map(|s| keras_shape(s)).collect();
        let expected = match self.kind {
            Kind::Concatenate(_) => "inputs whose shapes agree on every axis but the concatenation axis".to_string(),
            Kind::Subtract => "exactly two inputs of the same rank whose sizes agree or are 1 on each axis".to_string(),
            _ => "inputs of the same rank whose sizes agree or are 1 on each axis".to_string(),
        };
        Error::LayerShape {
            layer: self.args.name.clone(),
            expected,
            received: all.join(", "),
        }
    }

    /// The merged per-sample shape, and for `Concatenate` the batched axis it joins on.
    fn merged(&self, shapes: &[Vec<usize>]) -> Result<(Vec<usize>, usize)> {
        let two_or_more = shapes.len() >= 2 && (self.kind != Kind::Subtract || shapes.len() == 2);
        if !two_or_more {
            return Err(self.mismatch(shapes));
        }
        let first = &shapes[0];
        let Kind::Concatenate(axis) = self.kind else {
            let broadcast = shapes[1..].iter().try_fold(first.to_vec(), |out, s| broadcast(&out, s));
            return broadcast.map(|out| (out, 0)).ok_or_else(|| self.mismatch(shapes));
        };
        let rank = first.len() as isize;
        let resolved = if axis < 0 { rank + axis } else { axis };
        if !(0..rank).contains(&resolved) {
            // Keras's numbering, which counts the batch axis, as the user wrote it.
            let keras_axis = if axis >= 0 { axis + 1 } else { axis };
            return Err(Error::invalid(
                "axis",
                keras_axis,
                format!(
                    "layer '{}': inputs have {rank} axes per sample ({} with the batch)",
                    self.args.name,
                    rank + 1
                ),
            ));
        }
        let resolved = resolved as usize;
        let agree = shapes.iter().all(|s| {
            s.len() == first.len()
                && s.iter()
                    .zip(first.iter())
                    .enumerate()
                    .all(|(i, (a, b))| i == resolved || a == b)
        });
        if !agree {
            return Err(self.mismatch(shapes));
        }
        let mut out = first.to_vec();
        out[resolved] = shapes.iter().map(|s| s[resolved]).sum();
        Ok((out, resolved + 1))
    }
}

/// The shape `a` and `b` broadcast to, Keras's merge rule: the same rank, and on each axis
/// the same size or a 1 that stretches to the other's.
fn broadcast(a: &[usize], b: &[usize]) -> Option<Vec<usize>> {
    if a.len() != b.len() {
        return None;
    }
    a.iter()
        .zip(b)
        .map(|(&x, &y)| match (x, y) {
            _ if x == y => Some(x),
            (1, other) | (other, 1) => Some(other),
            _ => None,
        })
        .collect()
}

impl Merge {
    /// A merge layer of class `class_name` (`Add`, ..., `Concatenate`) from Keras's
    /// `get_config()` keys.
    pub(crate) fn from_config(class_name: &str, config: &serde_json::Value) -> Result<Self> {
        Ok(match class_name {
            "Add" => Add::new(),
            "Subtract" => Subtract::new(),
            "Multiply" => Multiply::new(),
            "Average" => Average::new(),
            "Maximum" => Maximum::new(),
            "Minimum" => Minimum::new(),
            _ => Concatenate::new(concatenation_axis(config)?),
        })
    }
}

/// Concatenate's `axis` as an axis of the per-sample shape: -1 when absent. Keras counts a
/// positive axis with the batch (`axis=3` joins the channels of `(N, H, W, C)` images), so it
/// is one less per sample; axis 0, the batch, cannot be joined along.
fn concatenation_axis(config: &serde_json::Value) -> Result<isize> {
    match config.get("axis") {
        None | Some(serde_json::Value::Null) => Ok(-1),
        Some(v) => match v.as_i64() {
            Some(axis) if axis < 0 => Ok(axis as isize),
            Some(axis) if axis > 0 => Ok(axis as isize - 1),
            _ => Err(Error::Data(format!(
                "Concatenate's \"axis\" must be a nonzero integer (0 is the batch axis), got {v}"
            ))),
        },
    }
}

layer_builders!(Merge);

impl Merge {
    /// The output's mask as Keras 3 computes it from the inputs' (`(N, T)`, 1 for a real
    /// step). `Add` and the other elementwise merges: none unless every input has one, then a
    /// step is real where any input's is (the very mask when they share it, as a residual
    /// branch does). `Concatenate` of sequences: none unless some input has one; along the
    /// features a step is real where any input's is (an input without a mask counts as all
    /// real), along the steps the masks are concatenated (ones for an input without one).
    fn merged_mask(&self, graph: &mut Graph, inputs: &[Var]) -> Result<Option<Var>> {
        let masks: Vec<Option<Var>> = inputs.iter().map(|&v| graph.mask(v)).collect();
        let Kind::Concatenate(_) = self.kind else {
            let Some(masks) = masks.into_iter().collect::<Option<Vec<Var>>>() else {
                return Ok(None);
            };
            return Ok(Some(union(graph, &masks)?));
        };
        let rank = graph.shape(inputs[0]).len();
        if masks.iter().all(Option::is_none) || rank != 3 {
            return Ok(None);
        }
        let mut filled = Vec::with_capacity(inputs.len());
        for (&input, mask) in inputs.iter().zip(masks) {
            filled.push(match mask {
                Some(mask) => mask,
                None => {
                    let (n, t) = (graph.shape(input)[0], graph.shape(input)[1]);
                    graph.constant_with(|ones| {
                        ones.resize_for(&[n, t]);
                        ones.data_mut().fill(1.0);
                    })
                }
            });
        }
        match self.batched_axis {
            1 => {
                let mut joined = filled[0];
                for &next in &filled[1..] {
                    joined = graph.concat(joined, next, 1)?;
                }
                Ok(Some(joined))
            }
            _ => Ok(Some(union(graph, &filled)?)),
        }
    }
}

/// The union of masks of one shape: a step is real where any is (one mask when all are it).
fn union(graph: &mut Graph, masks: &[Var]) -> Result<Var> {
    let mut union = masks[0];
    for &mask in &masks[1..] {
        if mask != union {
            union = graph.maximum(union, mask)?;
        }
    }
    Ok(union)
}

impl Layer for Merge {
    fn class_name(&self) -> &'static str {
        match self.kind {
            Kind::Add => "Add",
            Kind::Subtract => "Subtract",
            Kind::Multiply => "Multiply",
            Kind::Average => "Average",
            Kind::Maximum => "Maximum",
            Kind::Minimum => "Minimum",
            Kind::Concatenate(_) => "Concatenate",
        }
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        Ok(vec![self.merged(input_shapes)?.0])
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        (self.kind == Kind::Add).then_some(crate::layers::InferenceRole::Add)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], _: &mut ParamStore, _: &mut Rng) -> Result<()> {
        self.batched_axis = self.merged(input_shapes)?.1;
        Ok(())
    }

    fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        let [first, rest @ ..] = inputs else {
            return Err(Error::Usage(format!(
                "layer '{}' was called on no input",
                self.args.name
            )));
        };
        let mut out = *first;
        for &next in rest {
            out = match self.kind {
                Kind::Add | Kind::Average => graph.add(out, next)?,
                Kind::Subtract => graph.sub(out, next)?,
                Kind::Multiply => graph.mul(out, next)?,
                Kind::Maximum => graph.maximum(out, next)?,
                Kind::Minimum => graph.minimum(out, next)?,
                Kind::Concatenate(_) => graph.concat(out, next, self.batched_axis)?,
            };
        }
        if self.kind == Kind::Average {
            out = graph.scale(out, 1.0 / inputs.len() as f32);
        }
        if let Some(mask) = self.merged_mask(graph, inputs)? {
            graph.set_mask(out, mask);
        }
        outputs.push(out);
        Ok(())
    }

    fn config(&self) -> serde_json::Value {
        match self.kind {
            // Keras counts a positive axis with the batch.
            Kind::Concatenate(axis) => {
                let keras_axis = if axis < 0 { axis } else { axis + 1 };
                self.args.config(serde_json::json!({"axis": keras_axis}))
            }
            _ => self.args.config(serde_json::json!({})),
        }
    }
}
