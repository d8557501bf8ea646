//! ONNX operators as strata layers: convolutions, dense layers, activations, pooling,
//! normalization, merges and reshapes. Weights are converted once, here, from ONNX's layouts
//! (`OIHW` kernels, `(in, out)` or transposed matrices) to Keras's (`HWIO`, `(in, out)`).

use super::convert::{Computed, Converter, Node, Tensor, onnx_shape};
use super::tensors::{BATCH, Constant, Values};
use serde_json::json;
use std::rc::Rc;

/// The operators ONNX import reads (the README's list is made from it). `Shape`, `Gather`,
/// `Cast`, `Slice`, `ConstantOfShape`, `Where`, `Expand`, `GatherElements`, `Range`, the
/// comparisons (`Equal`, `Less`, ...), the logical operators (`Not`, `And`, ...) and the
/// arithmetic ones (`Mod`, `Pow`, `Sqrt`, `Neg`, ...) on constants are computed at import (the
/// static shapes, masks and token types exporters compute), and so is `DequantizeLinear` of
/// int8 or uint8 weights and int32 biases (what quantization tools store); `Where` by a constant condition of
/// one value on computed data is the operand it picks. GELU written with `Erf` (or `Pow` and
/// `Tanh`) is read as `Gelu`, layer normalization written with `ReduceMean`, `Pow` and `Sqrt`
/// (opsets before 17) as `LayerNormalization` (`fusion.rs`).
pub const IMPORTABLE_OPS: &[&str] = &[
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "Add",
    "Sub",
    "Mul",
    "Div",
    "Relu",
    "Clip",
    "LeakyRelu",
    "Sigmoid",
    "HardSigmoid",
    "HardSwish",
    "Tanh",
    "Softmax",
    "LogSoftmax",
    "Elu",
    "Selu",
    "Softplus",
    "Softsign",
    "Exp",
    "Mish",
    "PRelu",
    "ThresholdedRelu",
    "MaxPool",
    "AveragePool",
    "GlobalAveragePool",
    "GlobalMaxPool",
    "BatchNormalization",
    "InstanceNormalization",
    "GroupNormalization",
    "Concat",
    "Flatten",
    "Reshape",
    "Transpose",
    "Pad",
    "Squeeze",
    "Unsqueeze",
    "Dropout",
    "Identity",
    "Constant",
    "DequantizeLinear",
    "Shape",
    "Gather",
    "Cast",
    "Slice",
    "ConstantOfShape",
    "LayerNormalization",
    "RMSNormalization",
    "Gelu",
    "Where",
    "Equal",
    "Less",
    "LessOrEqual",
    "Greater",
    "GreaterOrEqual",
    "Not",
    "And",
    "Or",
    "Xor",
    "Pow",
    "Neg",
    "Abs",
    "Reciprocal",
    "Floor",
    "Ceil",
    "Sin",
    "Cos",
    "CumSum",
    "Expand",
    "Sqrt",
    "GatherElements",
    "GatherND",
    "Mod",
    "ReduceMean",
    "ReduceMax",
    "ReduceSum",
    "Split",
    "Range",
    "LSTM",
    "GRU",
    "RNN",
    "Resize",
    "Max",
    "Min",
    "Sum",
    "Mean",
];

/// How a window's padding maps onto strata: Keras's "same" or "valid", or explicit zeros
/// (a `ZeroPadding2D` before a "valid" window).
#[derive(Debug, PartialEq)]
enum Padding {
    Same,
    Valid,
    /// `[[top, bottom], [left, right]]`.
    Explicit([[usize; 2]; 2]),
}

/// A 2-D window's settings read from a node.
struct Window {
    kernel: [usize; 2],
    strides: [usize; 2],
    dilations: [usize; 2],
    padding: Padding,
}

/// Reads `kernel_shape` (or `kernel` when the weights give it), `strides`, `dilations`, `pads`
/// and `auto_pad` for an `(H, W)` input.
fn window(node: &Node, kernel: Option<[usize; 2]>, size: [usize; 2]) -> Result<Window, String> {
    let pair = |name: &str, default: usize| -> Result<[usize; 2], String> {
        match node.ints(name) {
            None => Ok([default; 2]),
            Some(v) if v.len() == 2 && v.iter().all(|&x| (1..=1 << 20).contains(&x)) => {
                Ok([v[0] as usize, v[1] as usize])
            }
            Some(v) => Err(format!("{name} {v:?}: strata reads two positive sizes (2-D windows)")),
        }
    };
    let kernel = match (node.ints("kernel_shape"), kernel) {
        (Some(_), _) => pair("kernel_shape", 1)?,
        (None, Some(k)) => k,
        (None, None) => return Err("has no kernel_shape".into()),
    };
    let strides = pair("strides", 1)?;
    let dilations = pair("dilations", 1)?;
    let same = same_pads(size, kernel, strides, dilations);
    let auto_pad = node.string("auto_pad").unwrap_or_else(|| "NOTSET".into());
    let padding = match auto_pad.as_str() {
        "VALID" => Padding::Valid,
        "SAME_UPPER" => Padding::Same,
        "NOTSET" | "" => {
            let pads = node.ints("pads").unwrap_or_else(|| vec![0; 4]);
            if pads.len() != 4 || pads.iter().any(|&p| !(0..=1 << 20).contains(&p)) {
                return Err(format!("pads {pads:?}: strata reads four sizes, none negative"));
            }
            let pads = [
                [pads[0] as usize, pads[2] as usize],
                [pads[1] as usize, pads[3] as usize],
            ];
            if pads == [[0, 0], [0, 0]] {
                Padding::Valid
            } else if pads == same {
                Padding::Same
            } else {
                Padding::Explicit(pads)
            }
        }
        other => {
            return Err(format!(
                "auto_pad {other} is not supported (VALID, SAME_UPPER and explicit pads are)"
            ));
        }
    };
    Ok(Window {
        kernel,
        strides,
        dilations,
        padding,
    })
}

/// The padding that gives a window with `ceil_mode = 1` its output size on an `(H, W)` input:
/// its own pads and a row or column more at the bottom or right where the last window hangs
/// over the end (counted only when it starts inside the input or its leading pads, as PyTorch
/// and ONNX Runtime count). `None` when ceil mode changes nothing. Max pooling only (it pads
/// with zeros after a ReLU): an average over a window that hangs over the end divides by what
/// it covers, which strata's average pooling does not.
fn ceil_padding(window: &Window, size: [usize; 2], max: bool) -> Result<Option<Padding>, String> {
    let mut pads = match window.padding {
        Padding::Explicit(p) => p,
        Padding::Same => same_pads(size, window.kernel, window.strides, window.dilations),
        Padding::Valid => [[0, 0], [0, 0]],
    };
    let mut grown = false;
    for axis in 0..2 {
        let [begin, end] = pads[axis];
        let (kernel, stride) = (window.kernel[axis], window.strides[axis]);
        let span = size[axis] + begin + end;
        let Some(room) = span.checked_sub(kernel) else {
            return Err(format!("a window of {kernel} does not fit an axis of {span}"));
        };
        let mut windows = room.div_ceil(stride) + 1;
        if (windows - 1) * stride >= size[axis] + begin {
            windows -= 1;
        }
        let extra = ((windows - 1) * stride + kernel).saturating_sub(span);
        pads[axis][1] += extra;
        grown |= extra > 0;
    }
    match (grown, max) {
        (false, _) => Ok(None),
        (true, true) => Ok(Some(Padding::Explicit(pads))),
        (true, false) => {
            Err("AveragePool with ceil_mode = 1 is supported where it does not change the output size".into())
        }
    }
}

/// The `[[top, bottom], [left, right]]` padding Keras's "same" uses on an `(H, W)` input (the
/// odd row or column at the bottom or right).
fn same_pads(size: [usize; 2], kernel: [usize; 2], strides: [usize; 2], dilations: [usize; 2]) -> [[usize; 2]; 2] {
    let mut pads = [[0; 2]; 2];
    for axis in 0..2 {
        let span = (kernel[axis] - 1) * dilations[axis] + 1;
        let out = size[axis].div_ceil(strides[axis]);
        let total = ((out.max(1) - 1) * strides[axis] + span).saturating_sub(size[axis]);
        pads[axis] = [total / 2, total - total / 2];
    }
    pads
}

impl Converter {
    /// Requires `x` to be a channels-last image, as strata's convolutions and pooling take.
    pub(super) fn image(&self, node: &Node, k: usize) -> Result<Computed, String> {
        let x = self.computed(node, k)?;
        if !x.is_channels_last_image() {
            return Err(format!(
                "needs an image (N, C, H, W) that strata holds channels-last; input '{}' has ONNX shape (N, {}) in another layout",
                node.input(k).unwrap_or(""),
                join(&x.shape)
            ));
        }
        Ok(x)
    }

    /// A `ZeroPadding2D` on `x` when `padding` is explicit (then the window is "valid").
    fn pad_explicitly(
        &mut self,
        node: &Node,
        x: Computed,
        padding: &Padding,
    ) -> Result<(Computed, &'static str), String> {
        match padding {
            Padding::Same => Ok((x, "same")),
            Padding::Valid => Ok((x, "valid")),
            Padding::Explicit(pads) => {
                let config = json!({ "padding": pads });
                let (source, shape, layer) =
                    self.add_layer(node.proto, "_pad", "ZeroPadding2D", config, &[&x], vec![])?;
                let padded = Computed {
                    source,
                    shape: onnx_shape(&shape, &x.axes),
                    axes: x.axes.clone(),
                    order: None,
                    non_negative: x.non_negative,
                    layer: Some(layer),
                };
                Ok((padded, "valid"))
            }
        }
    }

    /// `Conv`: `Conv2D` (group 1, or other groups as one convolution whose kernel is zero
    /// between groups) or `DepthwiseConv2D` (one group per input channel); on sequences
    /// `(N, C, L)`, `Conv1D` (`sequence.rs`).
    pub(super) fn conv(&mut self, node: &Node) -> Result<Tensor, String> {
        let w = self.constant(node, 1, "kernel")?;
        if w.shape.len() == 3 {
            return self.conv1d(node, &w);
        }
        let x = self.image(node, 0)?;
        let bias = self.optional_constant(node, 2, "bias")?;
        let [out, per_group, kh, kw] = dims4(&w, "kernel")?;
        if out == 0 || kh == 0 || kw == 0 {
            return Err(format!("kernel {:?} is empty", w.shape));
        }
        let channels = x.shape[0];
        let group = node.int("group", 1);
        let window = window(node, Some([kh, kw]), [x.shape[1], x.shape[2]])?;
        let weights = w.floats();
        let (class, mut config, kernel) = if group == 1 {
            if per_group != channels {
                return Err(format!(
                    "kernel {:?} does not fit an input of {channels} channels",
                    w.shape
                ));
            }
            // ONNX (out, in, h, w) → Keras (h, w, in, out).
            let kernel = permute(&weights, &[out, per_group, kh, kw], &[2, 3, 1, 0]);
            let config = json!({"filters": out, "kernel_size": [kh, kw]});
            ("Conv2D", config, kernel)
        } else if group as usize == channels && per_group == 1 && out % channels == 0 {
            // ONNX (c·m + j, 1, h, w) → Keras (h, w, c, m): the same output channel order.
            let multiplier = out / channels;
            let kernel = permute(&weights, &[out, 1, kh, kw], &[2, 3, 1, 0]);
            let config = json!({"depth_multiplier": multiplier, "kernel_size": [kh, kw]});
            ("DepthwiseConv2D", config, kernel)
        } else if group > 1
            && per_group.checked_mul(group as usize) == Some(channels)
            && out.is_multiple_of(group as usize)
        {
            // Strata's Conv2D has no groups: one convolution over all channels whose kernel is
            // zero where input and output channel belong to different groups gives the same
            // result (at `group` times the arithmetic).
            check_ungrouped_size(&w, group)?;
            let dense = ungrouped(&weights, out, per_group, group as usize, kh * kw);
            let kernel = permute(&dense, &[out, channels, kh, kw], &[2, 3, 1, 0]);
            let config = json!({"filters": out, "kernel_size": [kh, kw]});
            ("Conv2D", config, kernel)
        } else {
            return Err(format!(
                "a convolution with group {group} and a kernel of {:?} does not fit an input of {channels} channels",
                w.shape
            ));
        };
        let (x, padding) = self.pad_explicitly(node, x, &window.padding)?;
        config["strides"] = json!(window.strides);
        config["dilation_rate"] = json!(window.dilations);
        config["padding"] = json!(padding);
        config["use_bias"] = json!(bias.is_some());
        let mut all = vec![kernel];
        if let Some(b) = bias {
            check_len(&b, out, "bias")?;
            all.push(b.floats());
        }
        Ok(Tensor::Computed(
            self.add_same_layout(node.proto, class, config, &x, all)?,
        ))
    }

    /// `ConvTranspose` (group 1): `Conv2DTranspose` with "valid" padding and ONNX's output
    /// padding, then a `Cropping2D` for ONNX's `pads`.
    pub(super) fn conv_transpose(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.image(node, 0)?;
        let w = self.constant(node, 1, "kernel")?;
        let bias = self.optional_constant(node, 2, "bias")?;
        let [inputs, out, kh, kw] = dims4(&w, "kernel")?;
        if out == 0 || kh == 0 || kw == 0 {
            return Err(format!("kernel {:?} is empty", w.shape));
        }
        if node.int("group", 1) != 1 || inputs != x.shape[0] {
            return Err(format!(
                "only group 1 with a kernel of {} input channels is supported (kernel {:?}, group {})",
                x.shape[0],
                w.shape,
                node.int("group", 1)
            ));
        }
        if node.ints("dilations").is_some_and(|d| d.iter().any(|&v| v != 1)) {
            return Err("dilations other than 1 are not supported".into());
        }
        if node.attribute("output_shape").is_some() || node.string("auto_pad").is_some_and(|a| a != "NOTSET") {
            return Err("output_shape and auto_pad are not supported: give explicit pads".into());
        }
        let strides = node.ints("strides").unwrap_or_else(|| vec![1, 1]);
        let output_padding = node.ints("output_padding").unwrap_or_else(|| vec![0, 0]);
        let pads = node.ints("pads").unwrap_or_else(|| vec![0; 4]);
        let bad = |v: &[i64], n: usize| v.len() != n || v.iter().any(|&x| !(0..=1 << 20).contains(&x));
        if bad(&strides, 2) || bad(&output_padding, 2) || bad(&pads, 4) || strides.contains(&0) {
            return Err(format!(
                "strides {strides:?}, output_padding {output_padding:?} or pads {pads:?} are not 2-D sizes"
            ));
        }
        // ONNX (in, out, h, w) → Keras (h, w, out, in).
        let kernel = permute(&w.floats(), &[inputs, out, kh, kw], &[2, 3, 1, 0]);
        let config = json!({
            "filters": out, "kernel_size": [kh, kw], "strides": strides, "padding": "valid",
            "output_padding": output_padding, "use_bias": bias.is_some(),
        });
        let mut all = vec![kernel];
        if let Some(b) = bias {
            check_len(&b, out, "bias")?;
            all.push(b.floats());
        }
        let y = self.add_same_layout(node.proto, "Conv2DTranspose", config, &x, all)?;
        if pads.iter().all(|&p| p == 0) {
            return Ok(Tensor::Computed(y));
        }
        let cropping = json!([[pads[0], pads[2]], [pads[1], pads[3]]]);
        let (source, shape, layer) = self.add_layer(
            node.proto,
            "_crop",
            "Cropping2D",
            json!({ "cropping": cropping }),
            &[&y],
            vec![],
        )?;
        Ok(Tensor::Computed(Computed {
            source,
            shape: onnx_shape(&shape, &y.axes),
            layer: Some(layer),
            ..y
        }))
    }

    /// `Gemm` with constant weights: `Dense` (`alpha·A·B + beta·C`, B transposed or not).
    pub(super) fn gemm(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let rank_fits = x.shape.len() == 1 || self.flat_gemm && x.shape.len() >= 2;
        if node.int("transA", 0) != 0 || !rank_fits {
            return Err("strata reads Gemm on (N, features) inputs, not transposed (transA = 0)".into());
        }
        let w = self.constant(node, 1, "weight matrix")?;
        let [rows, cols] = dims2(&w, "weight matrix")?;
        let transposed = node.int("transB", 0) != 0;
        let (inputs, units) = if transposed { (cols, rows) } else { (rows, cols) };
        let alpha = node.float("alpha", 1.0);
        let beta = node.float("beta", 1.0);
        let mut kernel = w.floats();
        if transposed {
            kernel = permute(&kernel, &[rows, cols], &[1, 0]);
        }
        kernel.iter_mut().for_each(|v| *v *= alpha);
        let bias = match self.optional_constant(node, 2, "bias")? {
            None => None,
            Some(c) => Some(
                broadcast_vector(&c, units, "bias")?
                    .into_iter()
                    .map(|v| v * beta)
                    .collect(),
            ),
        };
        self.dense(node, x, kernel, inputs, units, bias)
    }

    /// `MatMul` by a constant matrix: `Dense` without a bias (a following `Add` becomes it).
    pub(super) fn matmul(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        let w = self.constant(node, 1, "weight matrix")?;
        let [inputs, units] = dims2(&w, "weight matrix")?;
        self.dense(node, x, w.floats(), inputs, units, None)
    }

    /// A `Dense` of `kernel` (`inputs × units`, ONNX's feature order) on `x`'s last axis.
    fn dense(
        &mut self,
        node: &Node,
        x: Computed,
        kernel: Vec<f32>,
        inputs: usize,
        units: usize,
        bias: Option<Vec<f32>>,
    ) -> Result<Tensor, String> {
        let last = x.shape.len().checked_sub(1).ok_or("needs an input with features")?;
        if x.shape[last] != inputs || !(x.shape.len() == 1 || x.same_order() && x.axes.last() == Some(&last)) {
            return Err(format!(
                "weights of {inputs} × {units} do not fit an input of ONNX shape (N, {}) in strata's layout",
                join(&x.shape)
            ));
        }
        // Strata's feature j is ONNX's order[j]: the kernel's rows follow.
        let kernel = match (&x.order, x.shape.len()) {
            (Some(order), 1) => order
                .iter()
                .flat_map(|&row| kernel[row * units..(row + 1) * units].iter().copied())
                .collect(),
            _ => kernel,
        };
        // Strata's Dense reads vectors and sequences; on three axes (a Linear on an image held
        // channels-last, as ConvNeXt applies it) a 1×1 Conv2D, whose kernel (1, 1, in, out)
        // is laid out as the dense one, is the same product.
        let (class, config) = match x.shape.len() {
            3 => (
                "Conv2D",
                json!({"filters": units, "kernel_size": [1, 1], "use_bias": bias.is_some()}),
            ),
            _ => ("Dense", json!({"units": units, "use_bias": bias.is_some()})),
        };
        let weights: Vec<Vec<f32>> = std::iter::once(kernel).chain(bias).collect();
        let mut y = self.add_same_layout(node.proto, class, config, &x, weights)?;
        y.order = None;
        Ok(Tensor::Computed(y))
    }

    /// `Add`, `Sub`, `Mul`, `Div` with one computed and one constant operand: a bias folded into
    /// the layer before, or a `Rescaling`; with two computed operands: a merge layer.
    pub(super) fn arithmetic(&mut self, node: &Node) -> Result<Tensor, String> {
        let op = node.proto.op_type.as_str();
        let (a, b) = (self.input(node, 0)?.clone(), self.input(node, 1)?.clone());
        match (a, b) {
            (Tensor::Computed(a), Tensor::Computed(b)) => {
                let class = match op {
                    "Add" => "Add",
                    "Sub" => "Subtract",
                    "Mul" => "Multiply",
                    _ => {
                        return Err("Div of two computed tensors is not supported (strata has no Divide layer)".into());
                    }
                };
                if !same_layout(&a, &b) {
                    return Err(format!(
                        "operands of ONNX shapes (N, {}) and (N, {}) are in different layouts in strata",
                        join(&a.shape),
                        join(&b.shape)
                    ));
                }
                Ok(Tensor::Computed(self.add_merge(
                    node.proto,
                    class,
                    json!({}),
                    &[&a, &b],
                    vec![],
                )?))
            }
            (Tensor::Computed(x), Tensor::Constant(c)) => self.with_constant(node, x, &c, false),
            (Tensor::Constant(c), Tensor::Computed(x)) => self.with_constant(node, x, &c, true),
            (Tensor::Constant(_), Tensor::Constant(_)) => unreachable_fold(),
            // The operand that is neither computed nor constant says what it is.
            (a, _) => {
                let odd = usize::from(matches!(a, Tensor::Computed(_) | Tensor::Constant(_)));
                Err(self
                    .computed(node, odd)
                    .err()
                    .unwrap_or_else(|| "reads an operand strata cannot add".into()))
            }
        }
    }

    /// `Max`, `Min`, `Sum`, `Mean` of computed tensors in one layout: Keras's `Maximum`,
    /// `Minimum`, `Add`, `Average` (one input: itself).
    pub(super) fn variadic(&mut self, node: &Node) -> Result<Tensor, String> {
        let mut operands = Vec::new();
        for k in 0..node.proto.input.len() {
            let x = self.computed(node, k).map_err(|e| {
                format!(
                    "{e} ({} of constants and computed tensors is not supported)",
                    node.proto.op_type
                )
            })?;
            if let Some(first) = operands.first()
                && !same_layout(first, &x)
            {
                return Err(format!(
                    "operands of ONNX shapes (N, {}) and (N, {}) are in different layouts in strata",
                    join(&first.shape),
                    join(&x.shape)
                ));
            }
            operands.push(x);
        }
        let class = match node.proto.op_type.as_str() {
            "Max" => "Maximum",
            "Min" => "Minimum",
            "Sum" => "Add",
            _ => "Average",
        };
        if let [only] = operands.as_slice() {
            return Ok(Tensor::Computed(Computed {
                layer: None,
                ..only.clone()
            }));
        }
        let all: Vec<&Computed> = operands.iter().collect();
        let mut y = self.add_merge(node.proto, class, json!({}), &all, vec![])?;
        y.non_negative = class == "Maximum" && all.iter().any(|x| x.non_negative) || all.iter().all(|x| x.non_negative);
        Ok(Tensor::Computed(y))
    }

    /// `x op c` (or `c op x` when `constant_first`).
    fn with_constant(
        &mut self,
        node: &Node,
        x: Computed,
        c: &Constant,
        constant_first: bool,
    ) -> Result<Tensor, String> {
        let op = node.proto.op_type.as_str();
        let operand = node.input(usize::from(constant_first)).unwrap_or_default();
        if op == "Add"
            && let Some(sum) = self.add_sequence_constant(node, &x, c, self.read_once(operand))?
        {
            return Ok(sum);
        }
        let values = channel_values(c, &x)?;
        // A MatMul's or Conv's bias, added after it: folded into the layer (read by this Add only).
        if op == "Add"
            && let Some(index) = x.layer
            && node
                .input(usize::from(constant_first))
                .is_some_and(|name| self.read_once(name))
            && let Some(folded) = self.fold_bias(index, &values)?
        {
            return Ok(Tensor::Computed(Computed {
                layer: Some(folded),
                non_negative: false,
                ..x
            }));
        }
        let (scale, offset): (Vec<f32>, Vec<f32>) = match (op, constant_first) {
            ("Add", _) => (vec![1.0], values),
            ("Sub", false) => (vec![1.0], values.iter().map(|v| -v).collect()),
            ("Sub", true) => (vec![-1.0], values),
            ("Mul", _) => (values, vec![0.0]),
            ("Div", false) => (values.iter().map(|v| 1.0 / v).collect(), vec![0.0]),
            _ => return Err("dividing a constant by a computed tensor is not supported".into()),
        };
        let one = |v: Vec<f32>| if v.len() == 1 { json!(v[0]) } else { json!(v) };
        let config = json!({"scale": one(scale), "offset": one(offset)});
        Ok(Tensor::Computed(self.add_same_layout(
            node.proto,
            "Rescaling",
            config,
            &x,
            vec![],
        )?))
    }

    /// Gives layer `index` (a bias-less Dense or convolution) the bias `values` (one per output
    /// channel, or one for all); `None` when that layer cannot take it.
    fn fold_bias(&mut self, index: usize, values: &[f32]) -> Result<Option<usize>, String> {
        let pending = &self.layers[index];
        let biased = matches!(
            pending.class,
            "Dense" | "Conv2D" | "DepthwiseConv2D" | "Conv2DTranspose"
        );
        if !biased || pending.config["use_bias"] != json!(false) {
            return Ok(None);
        }
        let channels = match pending.class {
            "Dense" => pending.config["units"].as_u64(),
            "DepthwiseConv2D" => None,
            _ => pending.config["filters"].as_u64(),
        };
        let Some(channels) = channels.map(|c| c as usize) else {
            return Ok(None);
        };
        let bias = match values.len() {
            1 => vec![values[0]; channels],
            n if n == channels => values.to_vec(),
            _ => return Ok(None),
        };
        let mut config = pending.config.clone();
        config["use_bias"] = json!(true);
        let layer = crate::layers::from_config(pending.class, &config).map_err(|e| e.reason().to_string())?;
        let pending = &mut self.layers[index];
        pending.layer = layer;
        pending.config = config;
        pending.weights.push(bias);
        Ok(Some(index))
    }

    /// `MaxPool` and `AveragePool`: `MaxPooling2D` and `AveragePooling2D`.
    pub(super) fn pool(&mut self, node: &Node) -> Result<Tensor, String> {
        if self.computed(node, 0)?.is_channels_last_sequence() {
            return self.pool1d(node);
        }
        let x = self.image(node, 0)?;
        let max = node.proto.op_type == "MaxPool";
        let window = window(node, None, [x.shape[1], x.shape[2]])?;
        if window.dilations != [1, 1] {
            return Err("dilated pooling is not supported".into());
        }
        let mut window = window;
        if node.int("ceil_mode", 0) != 0 {
            let size = [x.shape[1], x.shape[2]];
            if let Some(padding) = ceil_padding(&window, size, max)? {
                window.padding = padding;
            }
        }
        // Keras's "same" average leaves the pads out of each window's count; ONNX's
        // `count_include_pad = 1` (PyTorch's default, Inception's pooling branches) counts them
        // as zeros: explicit padding then.
        if !max && window.padding == Padding::Same && node.int("count_include_pad", 0) != 0 {
            let size = [x.shape[1], x.shape[2]];
            window.padding = Padding::Explicit(same_pads(size, window.kernel, window.strides, window.dilations));
        }
        let padding = match &window.padding {
            Padding::Explicit(_) if max && !x.non_negative => {
                return Err(
                    "MaxPool with explicit pads is supported after a ReLU (where padding with zeros is exact) only"
                        .into(),
                );
            }
            Padding::Explicit(_) if !max && node.int("count_include_pad", 0) == 0 => {
                return Err("AveragePool with explicit pads that leaves the pads out (count_include_pad = 0) is supported for Keras's \"same\" split only".into());
            }
            _ => &window.padding,
        };
        let non_negative = x.non_negative;
        let (x, padding) = self.pad_explicitly(node, x, padding)?;
        let class = if max { "MaxPooling2D" } else { "AveragePooling2D" };
        let config = json!({"pool_size": window.kernel, "strides": window.strides, "padding": padding});
        let mut y = self.add_same_layout(node.proto, class, config, &x, vec![])?;
        y.non_negative = non_negative;
        Ok(Tensor::Computed(y))
    }

    /// `GlobalAveragePool`, `GlobalMaxPool`: Keras's global pooling keeping the `(1, 1)` axes.
    pub(super) fn global_pool(&mut self, node: &Node) -> Result<Tensor, String> {
        let sequence = self.computed(node, 0)?.is_channels_last_sequence();
        let x = if sequence {
            self.computed(node, 0)?
        } else {
            self.image(node, 0)?
        };
        let class = match (node.proto.op_type.as_str(), sequence) {
            ("GlobalMaxPool", false) => "GlobalMaxPooling2D",
            ("GlobalMaxPool", true) => "GlobalMaxPooling1D",
            (_, false) => "GlobalAveragePooling2D",
            (_, true) => "GlobalAveragePooling1D",
        };
        let non_negative = x.non_negative;
        let mut y = self.add_same_layout(node.proto, class, json!({"keepdims": true}), &x, vec![])?;
        y.non_negative = non_negative;
        Ok(Tensor::Computed(y))
    }

    /// `BatchNormalization` (inference form): Keras's layer on the channel axis, which strata
    /// holds last.
    pub(super) fn batch_norm(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.computed(node, 0)?;
        if x.axes.last() != Some(&0) {
            return Err(format!(
                "needs the channel axis last in strata; ONNX shape (N, {}) is not held so",
                join(&x.shape)
            ));
        }
        let channels = x.shape[0];
        let mut weights = Vec::new();
        for (k, name) in [(1, "scale"), (2, "bias"), (3, "mean"), (4, "variance")] {
            let c = self.constant(node, k, name)?;
            check_len(&c, channels, name)?;
            let values = c.floats();
            weights.push(match &x.order {
                Some(order) => order.iter().map(|&i| values[i]).collect(),
                None => values,
            });
        }
        let config = json!({
            "epsilon": node.float("epsilon", 1e-5),
            "momentum": node.float("momentum", 0.9),
            "axis": -1,
        });
        Ok(Tensor::Computed(self.add_same_layout(
            node.proto,
            "BatchNormalization",
            config,
            &x,
            weights,
        )?))
    }

    /// `InstanceNormalization` (PyTorch's `InstanceNorm1d` / `InstanceNorm2d`) on channels
    /// strata holds last: Keras's `GroupNormalization(groups=-1)`, each channel of each sample
    /// normalized over its positions, then scaled and shifted.
    pub(super) fn instance_norm(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.channels_last(node)?;
        let groups = x.shape[0];
        self.add_group_norm(node, x, groups)
    }

    /// `GroupNormalization`: ONNX's operator (opset 18's scale and offset per group, opset
    /// 21's per channel) or PyTorch's `GroupNorm` fused from the nodes its exporters write
    /// (`fusion.rs`; its two target shapes checked here), as Keras's layer.
    pub(super) fn group_norm(&mut self, node: &Node) -> Result<Tensor, String> {
        let x = self.channels_last(node)?;
        let (channels, count) = (x.shape[0], x.shape.iter().product::<usize>());
        let batch_ok = |d: i64| d == 0 || d == -1 || d == BATCH || self.static_batch.is_some_and(|b| b as i64 == d);
        let groups = if node.proto.domain == super::fusion::FUSED_DOMAIN {
            // The batch size may stand in them as `BATCH` (a shape computed with `Shape`).
            let shape = |k: usize, what: &str| match &self.constant(node, k, what)?.values {
                Values::Int(v) => Ok(v.clone()),
                Values::Float(_) => Err(format!("its {what} is not integers")),
            };
            let (grouped, back) = (shape(3, "grouped shape")?, shape(4, "shape")?);
            let groups = match grouped.as_slice() {
                &[first, groups, rest]
                    if batch_ok(first) && groups > 0 && (rest == -1 || rest * groups == count as i64) =>
                {
                    groups as usize
                }
                _ => {
                    return Err(format!(
                        "reshapes ONNX shape (N, {}) to {grouped:?}, not to (N, groups, -1)",
                        join(&x.shape)
                    ));
                }
            };
            let same = back.len() == x.shape.len() + 1
                && batch_ok(back[0])
                && back[1..].iter().zip(&x.shape).all(|(&b, &d)| b == d as i64);
            if !same {
                return Err(format!(
                    "reshapes the groups to {back:?}, not back to ONNX shape (N, {})",
                    join(&x.shape)
                ));
            }
            groups
        } else {
            usize::try_from(node.int("num_groups", 0)).map_err(|_| "a negative num_groups".to_string())?
        };
        if groups == 0 || !channels.is_multiple_of(groups) {
            return Err(format!("{groups} groups do not divide {channels} channels"));
        }
        self.add_group_norm(node, x, groups)
    }

    /// The computed input of a normalization over positions, with channels strata holds last.
    fn channels_last(&self, node: &Node) -> Result<Computed, String> {
        let x = self.computed(node, 0)?;
        if x.axes.last() != Some(&0) || x.order.is_some() || x.shape.len() < 2 {
            return Err(format!(
                "needs channels with positions (N, C, ...), the channel axis held last in strata; ONNX shape (N, {}) is \
                 not held so",
                join(&x.shape)
            ));
        }
        Ok(x)
    }

    /// Keras's `GroupNormalization(groups)` on `x`, its scale and offset the node's inputs 1
    /// and 2: one value per channel, or one per group (repeated over its channels).
    fn add_group_norm(&mut self, node: &Node, x: Computed, groups: usize) -> Result<Tensor, String> {
        let channels = x.shape[0];
        let mut weights = Vec::new();
        for (k, name) in [(1, "scale"), (2, "bias")] {
            let values = self.constant(node, k, name)?.floats();
            weights.push(match values.len() {
                n if n == channels => values,
                n if n == groups => (0..channels).map(|c| values[c / (channels / groups)]).collect(),
                n => {
                    return Err(format!(
                        "has {n} {name} values for {channels} channels in {groups} groups"
                    ));
                }
            });
        }
        let config = json!({ "groups": groups, "epsilon": node.float("epsilon", 1e-5), "axis": -1 });
        let y = self.add_same_layout(node.proto, "GroupNormalization", config, &x, weights)?;
        Ok(Tensor::Computed(y))
    }

    /// `Concat` of computed tensors in one layout: `Concatenate` on strata's matching axis; with
    /// constants in front along a sequence's steps (a ViT's class token, expanded over the
    /// batch), a `ClassToken` layer holding them after that.
    pub(super) fn concat(&mut self, node: &Node) -> Result<Tensor, String> {
        let leading = (0..node.proto.input.len())
            .take_while(|&k| matches!(self.input(node, k), Ok(Tensor::Constant(_))))
            .count();
        let inputs: Vec<Computed> = (leading..node.proto.input.len())
            .map(|k| self.computed(node, k))
            .collect::<Result<_, _>>()?;
        if leading > 0 {
            let tokens = (0..leading)
                .map(|k| self.constant(node, k, "tokens"))
                .collect::<Result<Vec<_>, _>>()?;
            let joined = self.join_computed(node, inputs)?;
            return self.class_tokens(node, &tokens, joined);
        }
        self.join_computed(node, inputs).map(Tensor::Computed)
    }

    /// `inputs` (computed, one layout) joined along the `Concat`'s axis.
    fn join_computed(&mut self, node: &Node, inputs: Vec<Computed>) -> Result<Computed, String> {
        let first = inputs.first().ok_or("has no inputs")?.clone();
        if inputs.iter().any(|x| x.axes != first.axes || x.order.is_some()) {
            return Err("its inputs are in different layouts in strata".into());
        }
        let rank = first.shape.len() as i64 + 1;
        let axis = node.int("axis", 1);
        let axis = if axis < 0 { axis + rank } else { axis };
        let strata_axis = (axis >= 1)
            .then(|| first.strata_axis((axis - 1) as usize))
            .flatten()
            .ok_or_else(|| format!("cannot join along axis {axis}"))?;
        if inputs.len() == 1 {
            return Ok(first);
        }
        let refs: Vec<&Computed> = inputs.iter().collect();
        let config = json!({ "axis": strata_axis + 1 });
        let (source, shape, layer) = self.add_layer(node.proto, "", "Concatenate", config, &refs, vec![])?;
        Ok(Computed {
            source,
            shape: onnx_shape(&shape, &first.axes),
            non_negative: inputs.iter().all(|x| x.non_negative),
            layer: Some(layer),
            ..first
        })
    }

    /// Constants `(1, k, C)` put in front of the steps of a sequence `x (N, T, C)`: one
    /// `ClassToken` layer holding them all, in order.
    fn class_tokens(&mut self, node: &Node, tokens: &[Rc<Constant>], x: Computed) -> Result<Tensor, String> {
        let axis = node.int("axis", 1);
        let sequence = x.shape.len() == 2 && x.axes == [0, 1] && x.order.is_none();
        if !sequence || !(axis == 1 || axis == -2) {
            return Err(format!(
                "joins constants with a computed tensor of ONNX shape (N, {}) along axis {axis}; strata \
                 puts constants only in front of a sequence's steps (N, steps, features), as a class token",
                join(&x.shape)
            ));
        }
        let features = x.shape[1];
        let mut values = Vec::new();
        for (k, token) in tokens.iter().enumerate() {
            // A graph exported for a fixed batch size (PyTorch's `torch.export` exporter, by
            // default) expands the token to one copy per image: the same block each time.
            let same_per_image = |copies: usize, block: usize| {
                let values = token.floats();
                self.static_batch == Some(copies) && values.chunks(block.max(1)).all(|copy| copy == &values[..block])
            };
            let rows = match token.shape.as_slice() {
                [1, rows, width] | [rows, width] if *width == features => *rows,
                [copies, rows, width] if *width == features && same_per_image(*copies, rows * width) => *rows,
                other => {
                    return Err(format!(
                        "input {k} ('{}') of shape ({}) is not a block of tokens (1, steps, {features}) for a \
                         sequence (N, {})",
                        node.input(k).unwrap_or(""),
                        join(other),
                        join(&x.shape)
                    ));
                }
            };
            values.extend(token.floats().into_iter().take(rows * features));
        }
        let count = values.len() / features.max(1);
        let config = json!({ "tokens": count });
        let (source, shape, layer) = self.add_layer(node.proto, "", "ClassToken", config, &[&x], vec![values])?;
        Ok(Tensor::Computed(Computed {
            source,
            shape: onnx_shape(&shape, &x.axes),
            non_negative: false,
            layer: Some(layer),
            ..x
        }))
    }

    /// `Pad` with zeros on the height and width of an image: `ZeroPadding2D`.
    pub(super) fn pad(&mut self, node: &Node) -> Result<Tensor, String> {
        let mode = node.string("mode").unwrap_or_else(|| "constant".into());
        let pads = self.ints_input_or_attribute(node, 1, "pads")?.ok_or("has no pads")?;
        let value = match self.optional_constant(node, 2, "constant_value")? {
            Some(c) => c.floats().first().copied().unwrap_or(0.0),
            None => node.float("value", 0.0),
        };
        if node.input(3).is_some() {
            return Err("Pad with axes is not supported".into());
        }
        let sequence = self.computed(node, 0)?;
        if sequence.shape.len() == 2 && mode == "constant" && value == 0.0 {
            return self.pad_sequence(node, sequence, &pads);
        }
        if sequence.axes == [0, 1, 2] && sequence.order.is_none() && mode == "constant" && value == 0.0 {
            return self.pad_channels_last(node, sequence, &pads);
        }
        let x = self.image(node, 0)?;
        if mode != "constant" || value != 0.0 || pads.len() != 8 {
            return Err(format!(
                "strata pads images with zeros only (mode {mode}, value {value}, pads {pads:?})"
            ));
        }
        if pads[0] != 0
            || pads[1] != 0
            || pads[4] != 0
            || pads[5] != 0
            || pads.iter().any(|&p| !(0..=1 << 20).contains(&p))
        {
            return Err(format!(
                "pads {pads:?}: strata pads height and width only, by sizes not below 0"
            ));
        }
        let padding = Padding::Explicit([
            [pads[2] as usize, pads[6] as usize],
            [pads[3] as usize, pads[7] as usize],
        ]);
        let (y, _) = self.pad_explicitly(node, x, &padding)?;
        Ok(Tensor::Computed(y))
    }

    /// `Pad` with zeros of an image ONNX holds channels-last, `(N, H, W, C)` as strata does
    /// (tf2onnx's and strata's exports before their first `Transpose`): a `ZeroPadding2D`.
    fn pad_channels_last(&mut self, node: &Node, x: Computed, pads: &[i64]) -> Result<Tensor, String> {
        let [0, top, left, 0, 0, bottom, right, 0] = *pads else {
            return Err(format!(
                "pads {pads:?}: strata pads a channels-last image's height and width only"
            ));
        };
        let sides = [top, left, bottom, right];
        if sides.iter().any(|&p| !(0..=1 << 20).contains(&p)) {
            return Err(format!("pads {pads:?}: strata pads by sizes from 0 to 2^20"));
        }
        let config = json!({ "padding": [[top, bottom], [left, right]] });
        let (source, _, layer) = self.add_layer(node.proto, "", "ZeroPadding2D", config, &[&x], vec![])?;
        let mut shape = x.shape.clone();
        shape[0] += (top + bottom) as usize;
        shape[1] += (left + right) as usize;
        Ok(Tensor::Computed(Computed {
            source,
            shape,
            layer: Some(layer),
            ..x
        }))
    }

    /// `Pad` with zeros of a sequence's steps: batch-first `(N, steps, features)` or a 1-D
    /// convolution's `(N, C, L)` (held channels-last): a `ZeroPadding1D`.
    fn pad_sequence(&mut self, node: &Node, x: Computed, pads: &[i64]) -> Result<Tensor, String> {
        let steps_axis = match (x.same_order(), x.is_channels_last_sequence()) {
            (true, _) => 1,
            (_, true) => 2,
            _ => return Err("pads a sequence strata holds in another order".into()),
        };
        let [_, _, _, _, _, _] = pads else {
            return Err(format!(
                "pads {pads:?} do not fit a sequence of three axes (N, steps, features)"
            ));
        };
        let padded = |axis: usize| pads[axis] != 0 || pads[axis + 3] != 0;
        let other = 3 - steps_axis;
        if padded(0) || padded(other) || pads.iter().any(|&p| !(0..=1 << 20).contains(&p)) {
            return Err(format!(
                "pads {pads:?}: strata pads a sequence's steps only, by sizes not below 0"
            ));
        }
        let (start, end) = (pads[steps_axis] as usize, pads[steps_axis + 3] as usize);
        let config = json!({ "padding": [start, end] });
        let (source, _, layer) = self.add_layer(node.proto, "", "ZeroPadding1D", config, &[&x], vec![])?;
        let mut shape = x.shape.clone();
        shape[steps_axis - 1] += start + end;
        Ok(Tensor::Computed(Computed {
            source,
            shape,
            layer: Some(layer),
            ..x
        }))
    }

    /// A strata `Reshape` of `x` to ONNX shape `target`, held in strata's order `axes` (strata's
    /// axis `i` is ONNX axis `axes[i]`), where that order keeps the values' row-major order.
    fn reshape_in_order(
        &mut self,
        node: &Node,
        x: &Computed,
        target: Vec<usize>,
        axes: Vec<usize>,
    ) -> Result<Tensor, String> {
        let strata_target: Vec<usize> = axes.iter().map(|&a| target[a]).collect();
        let config = json!({ "target_shape": strata_target });
        let (source, _, layer) = self.add_layer(node.proto, "", "Reshape", config, &[x], vec![])?;
        Ok(Tensor::Computed(Computed {
            source,
            shape: target,
            axes,
            order: None,
            non_negative: x.non_negative,
            layer: Some(layer),
        }))
    }

    /// A computed `x` with ONNX per-sample shape `target` (same values, row-major): nothing
    /// when strata's shape does not change, a `Reshape` where the two orders agree, a `Flatten`
    /// with its feature order recorded where they do not.
    pub(super) fn reshape_computed(&mut self, node: &Node, x: Computed, target: Vec<usize>) -> Result<Tensor, String> {
        let count: usize = x.shape.iter().product();
        if target.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) != Some(count) {
            return Err(format!(
                "cannot reshape ONNX shape (N, {}) to (N, {})",
                join(&x.shape),
                join(&target)
            ));
        }
        if target == x.shape || x.shape.len() == 1 && target.len() == 1 {
            return Ok(Tensor::Computed(Computed { layer: None, ..x }));
        }
        // Images whose only axis of size above 1 is the channels stay channels-last, so a
        // convolution can follow (squeeze-and-excitation blocks).
        let kept: Vec<usize> = target.iter().copied().filter(|&d| d != 1).collect();
        let channels_last = target.len() == 3 && kept.len() <= 1 && (target[0] != 1 || kept.is_empty());
        let axes: Vec<usize> = if channels_last {
            vec![1, 2, 0]
        } else {
            (0..target.len()).collect()
        };
        let strata_target: Vec<usize> = axes.iter().map(|&a| target[a]).collect();
        let non_negative = x.non_negative;
        if x.same_order() {
            if strata_target == x.strata_shape() {
                return Ok(Tensor::Computed(Computed {
                    shape: target,
                    axes,
                    layer: None,
                    ..x
                }));
            }
            return self.reshape_in_order(node, &x, target, axes);
        }
        if let Some(y) = self.regroup(node, &x, &target)? {
            return Ok(y);
        }
        if let Some(axes) = merged_axes(&x, &target) {
            return self.reshape_in_order(node, &x, target, axes);
        }
        if target.len() != 1 {
            return Err(format!(
                "reshaping ONNX shape (N, {}), which strata holds in another order, to (N, {}) is not supported \
                 (flattening it is)",
                join(&x.shape),
                join(&target)
            ));
        }
        let order = Rc::new(x.flat_order()?);
        let (source, _, layer) = self.add_layer(node.proto, "", "Flatten", json!({}), &[&x], vec![])?;
        Ok(Tensor::Computed(Computed {
            source,
            shape: target,
            axes: vec![0],
            order: Some(order),
            non_negative,
            layer: Some(layer),
        }))
    }

    /// `Transpose` of a computed tensor: strata's data stays, the record of its axes changes.
    pub(super) fn transpose_computed(&mut self, node: &Node, x: Computed) -> Result<Tensor, String> {
        let rank = x.shape.len() + 1;
        let perm = node.ints("perm").unwrap_or_else(|| (0..rank as i64).rev().collect());
        if perm.len() != rank || perm[0] != 0 || !is_permutation(&perm) {
            return Err(format!(
                "perm {perm:?} on ONNX shape (N, {}): strata keeps the batch axis first",
                join(&x.shape)
            ));
        }
        if x.order.is_some() {
            return Ok(Tensor::Computed(Computed { layer: None, ..x }));
        }
        // Per sample: output axis k is input axis q[k].
        let q: Vec<usize> = perm[1..].iter().map(|&p| p as usize - 1).collect();
        let mut inverse = vec![0; q.len()];
        for (k, &from) in q.iter().enumerate() {
            inverse[from] = k;
        }
        Ok(Tensor::Computed(Computed {
            shape: q.iter().map(|&from| x.shape[from]).collect(),
            axes: x.axes.iter().map(|&a| inverse[a]).collect(),
            layer: None,
            ..x
        }))
    }
}

/// When `target` only merges runs of adjacent ONNX axes of `x` (a `(C, H, W)` map reshaped to
/// `(C, H·W)`, as a vision transformer's patches are) that strata also holds adjacent and in
/// the same order: the strata layout of the result (strata axis `i` holds target axis
/// `axes[i]`, each merged run where its axes were), which is a plain reshape of strata's
/// values. `None` otherwise.
fn merged_axes(x: &Computed, target: &[usize]) -> Option<Vec<usize>> {
    if x.order.is_some() {
        return None;
    }
    let mut starts = Vec::with_capacity(target.len());
    let mut next = 0;
    for &size in target {
        let mut run = Vec::new();
        let mut product = 1usize;
        while product < size || run.is_empty() {
            product = product.checked_mul(*x.shape.get(next)?)?;
            run.push(x.strata_axis(next)?);
            next += 1;
        }
        if product != size || run.windows(2).any(|w| w[1] != w[0] + 1) {
            return None;
        }
        starts.push(run[0]);
    }
    if next != x.shape.len() {
        return None;
    }
    let mut axes: Vec<usize> = (0..target.len()).collect();
    axes.sort_by_key(|&j| starts[j]);
    Some(axes)
}

/// The four dimensions of a kernel.
fn dims4(c: &Constant, what: &str) -> Result<[usize; 4], String> {
    match c.shape.as_slice() {
        &[a, b, h, w] => Ok([a, b, h, w]),
        other => Err(format!(
            "{what} has shape {other:?}, not four dimensions (2-D convolutions only)"
        )),
    }
}

/// The two dimensions of a matrix.
fn dims2(c: &Constant, what: &str) -> Result<[usize; 2], String> {
    match c.shape.as_slice() {
        &[a, b] => Ok([a, b]),
        other => Err(format!("{what} has shape {other:?}, not two dimensions")),
    }
}

/// Checks that `c` holds `n` values.
pub(super) fn check_len(c: &Constant, n: usize, what: &str) -> Result<(), String> {
    match c.len() == n {
        true => Ok(()),
        false => Err(format!("{what} has {} values, not {n}", c.len())),
    }
}

/// A constant that broadcasts to a vector of `n`: one value or `n` (any leading 1s).
fn broadcast_vector(c: &Constant, n: usize, what: &str) -> Result<Vec<f32>, String> {
    let values = c.floats();
    match values.len() {
        1 => Ok(vec![values[0]; n]),
        m if m == n && c.shape.iter().rev().skip(1).all(|&d| d == 1) => Ok(values),
        _ => Err(format!(
            "{what} of shape {:?} does not broadcast to {n} values",
            c.shape
        )),
    }
}

/// A constant operand's values as strata's per-channel numbers: one for all, or one per value
/// of strata's last axis (ONNX broadcasting, the constant varying along that axis only).
pub(super) fn channel_values(c: &Constant, x: &Computed) -> Result<Vec<f32>, String> {
    let values = c.floats();
    if values.len() == 1 {
        return Ok(values);
    }
    let rank = x.shape.len() + 1;
    let last = *x
        .axes
        .last()
        .ok_or("a constant operand needs a computed tensor with axes")?;
    let varying: Vec<usize> = (0..c.shape.len()).filter(|&k| c.shape[k] != 1).collect();
    // ONNX aligns shapes on the right: constant axis k is the full tensor's axis k + rank - len.
    let fits = c.shape.len() <= rank
        && varying.len() == 1
        && varying[0] + rank - c.shape.len() == last + 1
        && c.shape[varying[0]] == x.shape[last];
    if !fits {
        return Err(format!(
            "a constant of shape {:?} on ONNX shape (N, {}) is supported as one number or one per channel of strata's last axis only",
            c.shape,
            join(&x.shape)
        ));
    }
    Ok(match &x.order {
        Some(order) if x.shape.len() == 1 => order.iter().map(|&i| values[i]).collect(),
        _ => values,
    })
}

/// Whether strata holds `a` and `b` alike (the same axes and feature order), so a merge of
/// the two is ONNX's.
fn same_layout(a: &Computed, b: &Computed) -> bool {
    a.axes == b.axes && a.order == b.order
}

/// `values` of `shape` with their axes permuted: output axis k is input axis `perm[k]`.
pub(super) fn permute<T: Copy>(values: &[T], shape: &[usize], perm: &[usize]) -> Vec<T> {
    let rank = shape.len();
    let mut strides = vec![1usize; rank];
    for k in (0..rank.saturating_sub(1)).rev() {
        strides[k] = strides[k + 1] * shape[k + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let out_strides: Vec<usize> = perm.iter().map(|&p| strides[p]).collect();
    let count: usize = shape.iter().product();
    let mut out = Vec::with_capacity(count);
    let mut index = vec![0usize; rank];
    for _ in 0..count {
        out.push(values[index.iter().zip(&out_strides).map(|(i, s)| i * s).sum::<usize>()]);
        for k in (0..rank).rev() {
            index[k] += 1;
            if index[k] < out_shape[k] {
                break;
            }
            index[k] = 0;
        }
    }
    out
}

/// Whether `perm` holds each of `0..len` once.
pub(super) fn is_permutation(perm: &[i64]) -> bool {
    let mut seen = vec![false; perm.len()];
    perm.iter().all(|&p| {
        usize::try_from(p)
            .ok()
            .and_then(|p| seen.get_mut(p))
            .is_some_and(|s| !std::mem::replace(s, true))
    })
}

/// A shape for messages: `3, 32, 32`.
pub(super) fn join(shape: &[usize]) -> String {
    shape.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

/// Two constant operands are folded before an operator is converted.
fn unreachable_fold() -> Result<Tensor, String> {
    Err("internal: constant operands reached the layer conversion".into())
}

/// A grouped kernel ONNX `(out, per_group, spatial…)` as one over all `per_group · groups`
/// input channels, zero where the input channel is not in the output channel's group.
pub(super) fn ungrouped(weights: &[f32], out: usize, per_group: usize, groups: usize, spatial: usize) -> Vec<f32> {
    let channels = per_group * groups;
    let outputs_per_group = out / groups;
    let mut dense = vec![0.0; out * channels * spatial];
    for o in 0..out {
        let first = (o / outputs_per_group) * per_group;
        for c in 0..per_group {
            let from = (o * per_group + c) * spatial;
            let to = (o * channels + first + c) * spatial;
            dense[to..to + spatial].copy_from_slice(&weights[from..from + spatial]);
        }
    }
    dense
}

/// Checks that the kernel [`ungrouped`] makes of `w` fits the memory budget.
pub(super) fn check_ungrouped_size(w: &Constant, groups: i64) -> Result<(), String> {
    let values = usize::try_from(groups).ok().and_then(|g| w.len().checked_mul(g));
    crate::limits::check_memory(
        || format!("the kernel {:?} of {groups} groups as one convolution", w.shape),
        values.and_then(crate::limits::f32_bytes),
    )
    .map_err(|e| e.to_string())
}
