//! The state of an ONNX import: every tensor name seen so far (a constant, or a tensor strata
//! computes, with how strata's axes relate to ONNX's), the strata layers made so far, and the
//! helpers the operators (`ops.rs`, `folding.rs`) share.
//!
//! ONNX graphs from PyTorch are channels-first (NCHW); strata's kernels are channels-last. A
//! computed tensor keeps strata's layout and records which ONNX axis each strata axis holds
//! ([`Computed::axes`]): an image is `(H, W, C)` in strata and `(C, H, W)` in ONNX. Operators
//! that only relabel axes (`Transpose`) change the record, not the data; those that depend on
//! the order of values (`Flatten`, `Reshape`) either find the two orders equal or record the
//! permutation of the flattened features ([`Computed::order`]), which the next `Gemm`'s weights
//! absorb (their rows are reordered once, at import).

use super::proto::{AttributeProto, NodeProto};
use super::tensors::{BATCH, Constant};
use crate::layers::Layer;
use crate::model::Source;
use serde_json::Value;
use std::collections::{HashMap, HashSet};
use std::rc::Rc;

/// A tensor of the graph as the import sees it.
#[derive(Clone, Debug)]
pub(super) enum Tensor {
    /// Known at import: a weight, a shape, a folded computation.
    Constant(Rc<Constant>),
    /// Computed by the strata model.
    Computed(Computed),
    /// A computed tensor split into attention heads, waiting for the attention it feeds
    /// (`heads.rs`); made into an ordinary computed tensor when something else reads it.
    Heads(Heads),
    /// Attention scores `query · keyᵀ`, waiting for their softmax and the values (`heads.rs`).
    Scores(Scores),
    /// A computed tensor flattened together with its batch axis, waiting for the `Gather` or
    /// `Reshape` that makes it per-sample again (`strided.rs`).
    Flat(Computed),
    /// Integer indices computed from the batch size, waiting for the `Gather` they index
    /// (`strided.rs`).
    Indices(BatchIndices),
    /// A sequence the graph holds time-major, as recurrent operators read and write them
    /// (`recurrent.rs`).
    TimeMajor(TimeMajor),
    /// A recurrent operator's final states `Y_h`, ONNX `(directions, N, width)`: one per
    /// direction (`recurrent.rs`).
    States(Vec<State>),
    /// A time-major sequence whose steps and batch axes the graph has merged into one, ONNX
    /// `(steps·N, features)`, as PyTorch's attention does before its output projection
    /// (`time_major.rs`).
    StepsFlat(TimeMajor),
    /// A time-major sequence of packed parts (`nn.MultiheadAttention`'s queries, keys and
    /// values from one projection), on its way to being picked part by part (`time_major.rs`).
    Packed(Packed),
    /// A batch-first computed tensor whose batch and leading axes the graph has merged into
    /// rows, ONNX `(N·d₁⋯dₖ, features)`, as GPT-2's `Conv1D` does before its product
    /// (`rows.rs`).
    Rows(Computed),
    /// A tensor computed from a mask input, left out of the model until it meets attention
    /// scores (`key_mask.rs`).
    Mask(MaskPart),
}

/// The nodes that compute from one mask input, in graph order (`key_mask.rs`).
#[derive(Debug)]
pub(super) struct MaskCone {
    /// The graph input.
    pub input: String,
    /// Its steps (the input is `(N, steps)`).
    pub steps: usize,
    /// Every node of the chain, the shape arithmetic on it included, in an order that computes.
    pub nodes: Vec<NodeProto>,
    pub opset: i64,
}

/// A tensor computed from a mask input.
#[derive(Clone, Debug)]
pub(super) struct MaskPart {
    pub cone: Rc<MaskCone>,
    pub tensor: String,
}

/// The parts of a time-major sequence `(steps, N, parts·width)` reshaped to `(steps, N, parts,
/// width)`, each already a sequence of its own, and how far the graph has moved the parts
/// axis to the front since: 0 after the `Reshape`, 1 after an `Unsqueeze` of a new first
/// axis, 2 after the `Transpose` [3, 1, 2, 0, 4] (`(parts, steps, N, 1, width)`), 3 after the
/// `Squeeze` of that 1 (`(parts, steps, N, width)`), where a `Gather` on axis 0 picks one.
#[derive(Clone, Debug)]
pub(super) struct Packed {
    pub parts: Vec<Computed>,
    pub stage: u8,
}

/// Integer indices into a computed tensor flattened with its batch axis: ONNX shape
/// `(N, shape…)`, the value at `(n, i…)` being `n · stride + offsets[i…]`.
#[derive(Clone, Debug)]
pub(super) struct BatchIndices {
    /// The per-sample shape (the batch axis left out).
    pub shape: Vec<usize>,
    /// How far apart two samples' indices are.
    pub stride: i64,
    /// The per-sample part, row-major over `shape`.
    pub offsets: Rc<Vec<i64>>,
}

impl BatchIndices {
    /// The per-sample part as a constant (for broadcasting arithmetic with others).
    pub(super) fn offsets(&self) -> Constant {
        Constant::int(self.shape.clone(), self.offsets.to_vec())
    }
}

/// What one ONNX axis of a [`Heads`] tensor holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum HeadAxis {
    /// The sequence's steps.
    Steps,
    /// The heads.
    Heads,
    /// One head's features.
    Width,
}

/// A tensor strata computes as `(N, steps, heads·width)`, which the ONNX graph has reshaped to
/// `(N, steps, heads, width)` and may have transposed and scaled since: strata's data stays,
/// the record changes, until an attention reads it (or something else, which makes it real).
#[derive(Clone, Debug)]
pub(super) struct Heads {
    /// The computed `(N, steps, heads·width)`, in ONNX's order.
    pub x: Computed,
    /// How many heads the last axis holds.
    pub heads: usize,
    /// What each ONNX per-sample axis holds now (a permutation of the three).
    pub axes: [HeadAxis; 3],
    /// A factor the graph has applied since (`Mul` or `Div` by one number).
    pub scale: f32,
    /// Whether the graph has reshaped the batch axis and the first per-sample axis into one
    /// (ONNX shape `(N·a, b, c)` for axes `a, b, c`), as torch.export writes `k.transpose(-2,
    /// -1)`: a `Reshape` to `(-1, b, c)`, a `Transpose` of the last two, a `Reshape` back.
    pub batch_merged: bool,
    /// Whether the tensor is a time-major sequence split into heads with the batch merged into
    /// the heads' axis, ONNX `(steps, N·heads, width)` (with `batch_merged` and `axes` [Steps,
    /// Heads, Width]), as `nn.MultiheadAttention` splits its queries, keys and values.
    pub time_major: bool,
}

impl Heads {
    /// The size of what `axis` holds.
    pub fn size(&self, axis: HeadAxis) -> usize {
        match axis {
            HeadAxis::Steps => self.x.shape[0],
            HeadAxis::Heads => self.heads,
            HeadAxis::Width => self.x.shape[1] / self.heads,
        }
    }

    /// The ONNX per-sample shape.
    pub fn shape(&self) -> Vec<usize> {
        self.axes.iter().map(|&a| self.size(a)).collect()
    }
}

/// Attention scores `query · keyᵀ · scale (+ mask)` per head, ONNX `(N, heads, Tq, Tk)`.
#[derive(Clone, Debug)]
pub(super) struct Scores {
    /// The queries and keys, computed `(N, T, heads·width)`.
    pub query: Computed,
    pub key: Computed,
    pub heads: usize,
    /// The factor on `query · keyᵀ`.
    pub scale: f32,
    /// Whether a causal mask was added (key steps after the query step left out).
    pub causal: bool,
    /// Whether the softmax over the keys was taken.
    pub softmax: bool,
    /// Whether the batch is merged with the heads, ONNX `(N·heads, Tq, Tk)` (`bmm` of heads
    /// reshaped with the batch, as `nn.MultiheadAttention` computes the weights it returns).
    pub batch_merged: bool,
    /// A model input masking the keys, `(N, Tk)`, 1 for a key to attend (`key_mask.rs`).
    pub key_mask: Option<Computed>,
}

impl Scores {
    /// The ONNX per-sample shape `(heads, Tq, Tk)`.
    pub fn shape(&self) -> Vec<usize> {
        vec![self.heads, self.query.shape[0], self.key.shape[0]]
    }
}

/// A sequence strata computes as `(N, steps, features)` that the graph holds time-major.
#[derive(Clone, Debug)]
pub(super) struct TimeMajor {
    /// The batch-first sequence, ONNX's per-step order (`x.shape` is `[steps, features]`).
    pub x: Computed,
    /// While a recurrent operator's direction axis is separate: how many directions, the
    /// features being `directions × width`, direction-major.
    pub directions: Option<usize>,
    /// With `directions`: whether the batch axis comes before the direction axis (`(steps, N,
    /// directions, width)`, after a `Transpose` [0, 2, 1, 3]) or after it (`Y` as written).
    pub batch_first_of_two: bool,
}

impl TimeMajor {
    /// The full ONNX shape, the batch as [`BATCH`].
    pub fn onnx_shape(&self) -> Vec<i64> {
        let (steps, features) = (self.x.shape[0] as i64, self.x.shape[1] as i64);
        match self.directions {
            None => vec![steps, BATCH, features],
            Some(d) if self.batch_first_of_two => vec![steps, BATCH, d as i64, features / d as i64],
            Some(d) => vec![steps, d as i64, BATCH, features / d as i64],
        }
    }
}

/// One final state of a recurrent operator's `Y_h`.
#[derive(Clone, Debug)]
pub(super) enum State {
    /// One direction's final state, `(N, width)`.
    Ready(Computed),
    /// Direction `direction` of a bidirectional layer whose final states strata holds joined,
    /// `all` `(N, directions · width)` (its output when its sequence is not read): readable
    /// joined back in order by `Concat` (`torch.cat((h[-2], h[-1]), dim=1)`); `picked` once a
    /// `Gather` has taken it out of the list.
    Joined {
        all: Computed,
        direction: usize,
        directions: usize,
        picked: bool,
    },
    /// A final state strata does not compute (a bidirectional layer's whose sequence is read),
    /// an error when picked.
    Missing,
}

/// A tensor the strata model computes.
#[derive(Clone, Debug)]
pub(super) struct Computed {
    /// The strata model input or layer output that holds it.
    pub source: Source,
    /// Its ONNX per-sample shape (the batch axis left out).
    pub shape: Vec<usize>,
    /// Strata's per-sample axis `i` is ONNX's per-sample axis `axes[i]`.
    pub axes: Vec<usize>,
    /// For one-axis tensors flattened from a layout whose order differs from ONNX's: strata's
    /// feature `j` is ONNX's feature `order[j]`.
    pub order: Option<Rc<Vec<usize>>>,
    /// Whether every value is at least 0 (after a ReLU), which lets a max pooling's padding be
    /// zeros.
    pub non_negative: bool,
    /// The index of the strata layer that made it, when an import layer did (for folding a
    /// following `Add` into its bias).
    pub layer: Option<usize>,
}

impl Computed {
    /// Strata's per-sample shape.
    pub fn strata_shape(&self) -> Vec<usize> {
        self.axes.iter().map(|&a| self.shape[a]).collect()
    }

    /// Whether strata holds it as a channels-last image: ONNX `(C, H, W)`, strata `(H, W, C)`.
    pub fn is_channels_last_image(&self) -> bool {
        self.shape.len() == 3 && self.axes == [1, 2, 0] && self.order.is_none()
    }

    /// Whether strata's values are in ONNX's row-major order (the axes of size 1 aside), so a
    /// reshape means the same in both.
    pub fn same_order(&self) -> bool {
        if self.order.is_some() {
            return false;
        }
        let kept: Vec<usize> = self.axes.iter().copied().filter(|&a| self.shape[a] != 1).collect();
        kept.windows(2).all(|w| w[0] < w[1])
    }

    /// For each strata flat index, the ONNX flat index of the same value; an error when the
    /// list would not fit the memory budget.
    pub fn flat_order(&self) -> Result<Vec<usize>, String> {
        if let Some(order) = &self.order {
            return Ok(order.to_vec());
        }
        let count = self.shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
        let bytes = count.and_then(|n| u64::try_from(n).ok()?.checked_mul(8));
        crate::limits::check_memory(|| format!("flattening ONNX shape {:?}", self.shape), bytes)
            .map_err(|e| e.to_string())?;
        let rank = self.shape.len();
        let mut onnx_strides = vec![1usize; rank];
        for k in (0..rank.saturating_sub(1)).rev() {
            onnx_strides[k] = onnx_strides[k + 1] * self.shape[k + 1];
        }
        let strata = self.strata_shape();
        let count: usize = strata.iter().product();
        let mut order = Vec::with_capacity(count);
        let mut index = vec![0usize; rank];
        for _ in 0..count {
            order.push((0..rank).map(|i| index[i] * onnx_strides[self.axes[i]]).sum());
            for i in (0..rank).rev() {
                index[i] += 1;
                if index[i] < strata[i] {
                    break;
                }
                index[i] = 0;
            }
        }
        Ok(order)
    }

    /// Whether strata holds it as a channels-last sequence: ONNX `(C, L)`, strata `(L, C)`.
    pub fn is_channels_last_sequence(&self) -> bool {
        self.shape.len() == 2 && self.axes == [1, 0] && self.order.is_none()
    }

    /// Strata's axis that holds ONNX's per-sample axis `onnx_axis`.
    pub fn strata_axis(&self, onnx_axis: usize) -> Option<usize> {
        self.axes.iter().position(|&a| a == onnx_axis)
    }
}

/// ONNX's per-sample shape of a strata shape laid out as `axes`.
pub(super) fn onnx_shape(strata: &[usize], axes: &[usize]) -> Vec<usize> {
    let mut shape = vec![0; strata.len()];
    for (i, &a) in axes.iter().enumerate() {
        shape[a] = strata[i];
    }
    shape
}

/// A strata layer made by the import, waiting for the model to be built.
pub(super) struct PendingLayer {
    /// The layer, made from `class` and `config`.
    pub layer: Box<dyn Layer>,
    /// Its class and config, to make it again with a bias.
    pub class: &'static str,
    pub config: Value,
    /// What its one call reads.
    pub inputs: Vec<Source>,
    /// Its weights in strata's order and layouts (flattened), checked against the built shapes.
    pub weights: Vec<Vec<f32>>,
}

/// One node being converted, with its attributes at hand.
pub(super) struct Node<'a> {
    pub proto: &'a NodeProto,
    /// The version of the operator set the node belongs to.
    pub opset: i64,
}

impl Node<'_> {
    /// The attribute `name`, if given.
    pub fn attribute(&self, name: &str) -> Option<&AttributeProto> {
        self.proto.attribute.iter().find(|a| a.name == name)
    }

    /// An integer attribute, `default` when absent.
    pub fn int(&self, name: &str, default: i64) -> i64 {
        self.attribute(name).and_then(|a| a.i).unwrap_or(default)
    }

    /// A float attribute, `default` when absent.
    pub fn float(&self, name: &str, default: f32) -> f32 {
        self.attribute(name).and_then(|a| a.f).unwrap_or(default)
    }

    /// A list-of-integers attribute, if given.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.attribute(name).map(|a| a.ints.clone())
    }

    /// A string attribute, if given.
    pub fn string(&self, name: &str) -> Option<String> {
        self.attribute(name)
            .and_then(|a| a.s.as_ref())
            .map(|s| String::from_utf8_lossy(s).into_owned())
    }

    /// The name of input `k`, `None` when absent or empty (an optional input left out).
    pub fn input(&self, k: usize) -> Option<&str> {
        self.proto.input.get(k).map(String::as_str).filter(|s| !s.is_empty())
    }
}

/// The import in progress.
pub(super) struct Converter {
    /// Every tensor name converted so far.
    pub tensors: HashMap<String, Tensor>,
    /// The strata layers made so far, the inputs' first; layer `k` makes output `k`.
    pub layers: Vec<PendingLayer>,
    /// Layer names taken.
    names: HashSet<String>,
    /// How many node inputs and graph outputs read each tensor.
    pub readers: HashMap<String, usize>,
    /// The batch size when the graph fixes it (an export without a dynamic batch axis).
    pub static_batch: Option<usize>,
    /// While a `Gemm` is converted on a sequence flattened with its batch (time-major,
    /// `time_major.rs`, or batch-first rows, `rows.rs`): its input is a sequence, not a vector.
    pub flat_gemm: bool,
}

impl Converter {
    /// An empty import for a graph whose tensors are read `readers` times each.
    pub fn new(readers: HashMap<String, usize>, static_batch: Option<usize>) -> Converter {
        Converter {
            tensors: HashMap::new(),
            layers: Vec::new(),
            names: HashSet::new(),
            readers,
            static_batch,
            flat_gemm: false,
        }
    }

    /// The tensor named `name`.
    pub fn tensor(&self, name: &str) -> Result<&Tensor, String> {
        self.tensors
            .get(name)
            .ok_or_else(|| format!("reads '{name}', which no node, initializer or input makes"))
    }

    /// Input `k` of `node`, which must be there.
    pub fn input(&self, node: &Node, k: usize) -> Result<&Tensor, String> {
        let name = node.input(k).ok_or_else(|| format!("needs input {k}"))?;
        self.tensor(name)
    }

    /// Input `k` of `node`, which must be a constant (`what` says what it is, for errors).
    pub fn constant(&self, node: &Node, k: usize, what: &str) -> Result<Rc<Constant>, String> {
        match self.input(node, k)? {
            Tensor::Constant(c) => Ok(c.clone()),
            _ => Err(format!(
                "its {what} (input {k}, '{}') is computed by the graph; strata needs it known at import",
                node.input(k).unwrap_or("")
            )),
        }
    }

    /// Input `k` of `node` when it is given and a constant, `None` when it is absent.
    pub fn optional_constant(&self, node: &Node, k: usize, what: &str) -> Result<Option<Rc<Constant>>, String> {
        match node.input(k) {
            None => Ok(None),
            Some(_) => self.constant(node, k, what).map(Some),
        }
    }

    /// Input `k` of `node`, which must be computed by the model.
    pub fn computed(&self, node: &Node, k: usize) -> Result<Computed, String> {
        match self.input(node, k)? {
            Tensor::Computed(c) => Ok(c.clone()),
            Tensor::Constant(_) => Err(format!(
                "input {k} ('{}') is a constant, where strata needs a computed tensor",
                node.input(k).unwrap_or("")
            )),
            Tensor::Heads(_) | Tensor::Scores(_) => Err(format!(
                "input {k} ('{}') is part of an attention (heads or scores) that strata reads as query · keyᵀ, \
                 scale, softmax and · values only",
                node.input(k).unwrap_or("")
            )),
            Tensor::Flat(_) | Tensor::Indices(_) => Err(format!(
                "input {k} ('{}') is flattened together with the batch axis or computed from the batch size, \
                 which strata reads as torch.export's as_strided only (a Gather by per-sample indices)",
                node.input(k).unwrap_or("")
            )),
            Tensor::TimeMajor(_) | Tensor::States(_) | Tensor::StepsFlat(_) | Tensor::Packed(_) => Err(format!(
                "input {k} ('{}') is a recurrent sequence held time-major (steps, N, features) or its final states",
                node.input(k).unwrap_or("")
            )),
            Tensor::Rows(_) => Err(format!(
                "input {k} ('{}') is flattened together with the batch axis into rows (N·steps, features), which \
                 strata reads row by row only",
                node.input(k).unwrap_or("")
            )),
            Tensor::Mask(part) => Err(format!(
                "input {k} ('{}') is computed from the mask input '{}', which strata reads as an attention's \
                 padding mask only",
                node.input(k).unwrap_or(""),
                part.cone.input
            )),
        }
    }

    /// An integer list given as input `k` (newer opsets) or attribute `name` (older ones).
    pub fn ints_input_or_attribute(&self, node: &Node, k: usize, name: &str) -> Result<Option<Vec<i64>>, String> {
        match node.input(k) {
            Some(_) => Ok(Some(self.constant(node, k, name)?.ints(name)?)),
            None => Ok(node.ints(name)),
        }
    }

    /// A unique layer name from the node's (`/features/0/Conv` → `features_0_Conv`), with
    /// `suffix` for a second layer of one node.
    pub fn layer_name(&mut self, node: &NodeProto, suffix: &str) -> String {
        let base = match node.name.trim_matches('/') {
            "" => crate::layers::base_name(&node.op_type),
            name => name.to_string(),
        };
        let mut base: String = base
            .chars()
            .map(|c| {
                if c.is_ascii_alphanumeric() || c == '_' || c == '.' || c == '-' {
                    c
                } else {
                    '_'
                }
            })
            .take(120)
            .collect();
        base.push_str(suffix);
        let mut name = base.clone();
        let mut k = 1;
        while !self.names.insert(name.clone()) {
            name = format!("{base}_{k}");
            k += 1;
        }
        name
    }

    /// Adds a strata layer of `class` with `config` (its name added) called on `inputs` with
    /// `weights`, and returns its output's source, strata shape and layer index.
    pub fn add_layer(
        &mut self,
        node: &NodeProto,
        suffix: &str,
        class: &'static str,
        mut config: Value,
        inputs: &[&Computed],
        weights: Vec<Vec<f32>>,
    ) -> Result<(Source, Vec<usize>, usize), String> {
        config["name"] = Value::String(self.layer_name(node, suffix));
        let layer = crate::layers::from_config(class, &config).map_err(|e| format!("as {class}: {}", e.reason()))?;
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|x| x.strata_shape()).collect();
        let output = layer
            .output_shapes(&shapes)
            .map_err(|e| format!("as {class}: {}", e.reason()))?
            .into_iter()
            .next()
            .ok_or_else(|| format!("{class} gives no output"))?;
        let index = self.layers.len();
        self.layers.push(PendingLayer {
            layer,
            class,
            config,
            inputs: inputs.iter().map(|x| x.source).collect(),
            weights,
        });
        Ok((Source::Output(index), output, index))
    }

    /// Adds a layer whose output keeps the input's layout (`x`'s axes and order).
    pub fn add_same_layout(
        &mut self,
        node: &NodeProto,
        class: &'static str,
        config: Value,
        x: &Computed,
        weights: Vec<Vec<f32>>,
    ) -> Result<Computed, String> {
        self.add_merge(node, class, config, &[x], weights)
    }

    /// Adds a layer on `inputs` (a merge of tensors in one layout) whose output keeps the first
    /// input's layout.
    pub fn add_merge(
        &mut self,
        node: &NodeProto,
        class: &'static str,
        config: Value,
        inputs: &[&Computed],
        weights: Vec<Vec<f32>>,
    ) -> Result<Computed, String> {
        let first = inputs.first().ok_or("a layer needs an input")?;
        let (axes, order) = (first.axes.clone(), first.order.clone());
        let (source, shape, layer) = self.add_layer(node, "", class, config, inputs, weights)?;
        Ok(Computed {
            source,
            shape: onnx_shape(&shape, &axes),
            axes,
            order,
            non_negative: false,
            layer: Some(layer),
        })
    }

    /// Whether `name` is read once only (so the layer that makes it may change what it makes).
    pub fn read_once(&self, name: &str) -> bool {
        self.readers.get(name).copied().unwrap_or(0) == 1
    }
}
