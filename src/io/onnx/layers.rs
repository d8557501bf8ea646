//! strata's layers as ONNX operators, read from each layer's Keras config and weights.
//!
//! Tensors stay channels-last (NHWC) between layers, as strata computes them; the operators
//! that need channels first (`Conv`, `MaxPool`, `AveragePool`) are wrapped in a `Transpose` to
//! NCHW and one back. Flatten therefore flattens NHWC, in strata's order.

use super::builder::{GraphBuilder, float, int, ints};
use crate::activations::Activation;
use crate::autograd::ParamStore;
use crate::error::{Error, Result};
use crate::layers::Layer;
use serde_json::Value;

/// Keras's SELU constants (`keras.activations.selu`), more digits than ONNX's defaults.
const SELU_ALPHA: f32 = 1.673_263_2;
const SELU_SCALE: f32 = 1.050_701;

/// Writes layers' operators into a graph.
pub(super) struct Emitter<'a> {
    pub(super) builder: &'a mut GraphBuilder,
    pub(super) params: &'a ParamStore,
    /// The mask `(N, T)` of each of the call's inputs, for the layers that read one (see
    /// `export_masks.rs`); empty for the others.
    pub(super) input_masks: Vec<Option<String>>,
    /// The mask a source layer (`Masking`, `Embedding` with `mask_zero`) made for its output.
    pub(super) made_mask: Option<String>,
}

impl Emitter<'_> {
    /// Adds the operators of one call of `layer` on `inputs` (names and per-sample shapes) and
    /// returns the name of its output, whose per-sample shape is `output_shape`.
    pub(super) fn layer(
        &mut self,
        layer: &dyn Layer,
        inputs: &[(String, Vec<usize>)],
        output_shape: &[usize],
    ) -> Result<String> {
        let config = layer.config();
        let name = layer.name();
        let (x, shape) = (&inputs[0].0, &inputs[0].1);
        let names: Vec<&str> = inputs.iter().map(|(n, _)| n.as_str()).collect();
        let y = match layer.class_name() {
            "InputLayer" | "Identity" | "Dropout" | "SpatialDropout1D" | "SpatialDropout2D" | "GaussianNoise"
            | "GaussianDropout" | "AlphaDropout" => x.clone(),
            "Dense" => self.dense(layer, x, shape.len())?,
            "Activation" => x.clone(),
            "ReLU" => self.relu(name, x, &config),
            "Softmax" => self.builder.op(name, "Softmax", &[x], vec![int("axis", -1)]),
            "LeakyReLU" => {
                let slope = config["negative_slope"].as_f64().unwrap_or(0.3) as f32;
                self.builder.op(name, "LeakyRelu", &[x], vec![float("alpha", slope)])
            }
            "ELU" => {
                let alpha = config["alpha"].as_f64().unwrap_or(1.0) as f32;
                self.builder.op(name, "Elu", &[x], vec![float("alpha", alpha)])
            }
            "Flatten" => self.builder.op(name, "Flatten", &[x], vec![int("axis", 1)]),
            "Reshape" => {
                let target: Vec<i64> = std::iter::once(-1)
                    .chain(output_shape.iter().map(|&d| d as i64))
                    .collect();
                let target = self.builder.int64s(format!("{name}/shape"), &target);
                self.builder.op(name, "Reshape", &[x, &target], vec![])
            }
            "Conv2D" => self.conv(layer, &config, x, shape)?,
            "MaxPooling2D" | "AveragePooling2D" => self.pool(layer, &config, x, shape)?,
            "GlobalAveragePooling2D" | "GlobalMaxPooling2D" => {
                let op = if layer.class_name() == "GlobalMaxPooling2D" {
                    "ReduceMax"
                } else {
                    "ReduceMean"
                };
                let keepdims = config["keepdims"].as_bool().unwrap_or(false);
                self.builder.op(
                    name,
                    op,
                    &[x],
                    vec![ints("axes", &[1, 2]), int("keepdims", keepdims as i64)],
                )
            }
            "BatchNormalization" => self.batch_norm(layer, &config, x)?,
            "Add" => self.fold(name, "Add", &names),
            "Multiply" => self.fold(name, "Mul", &names),
            "Subtract" => self.builder.op(name, "Sub", &names, vec![]),
            "Average" => self.builder.op(name, "Mean", &names, vec![]),
            "Maximum" => self.builder.op(name, "Max", &names, vec![]),
            "Minimum" => self.builder.op(name, "Min", &names, vec![]),
            "Concatenate" => {
                let axis = config["axis"].as_i64().unwrap_or(-1);
                self.builder.op(name, "Concat", &names, vec![int("axis", axis)])
            }
            "ZeroPadding2D" => {
                let side = |i: usize, j: usize| config["padding"][i][j].as_i64().unwrap_or(0);
                let pads = [0, side(0, 0), side(1, 0), 0, 0, side(0, 1), side(1, 1), 0];
                let pads = self.builder.int64s(format!("{name}/pads"), &pads);
                self.builder.op(name, "Pad", &[x, &pads], vec![])
            }
            // (N, T, C): zero steps before and after.
            "ZeroPadding1D" => {
                let side = |i: usize| config["padding"][i].as_i64().unwrap_or(0);
                let pads = self
                    .builder
                    .int64s(format!("{name}/pads"), &[0, side(0), 0, 0, side(1), 0]);
                self.builder.op(name, "Pad", &[x, &pads], vec![])
            }
            "Rescaling" => {
                let scale = self.constant(name, "scale", &config["scale"])?;
                let offset = self.constant(name, "offset", &config["offset"])?;
                let scaled = self.builder.op(name, "Mul", &[x, &scale], vec![]);
                self.builder.op(name, "Add", &[&scaled, &offset], vec![])
            }
            // Recurrent layers apply their activations inside the ONNX operator.
            "SimpleRNN" | "LSTM" | "GRU" => return self.recurrent(layer, &config, x, shape),
            _ => self.more_layers(layer, &config, inputs, output_shape)?,
        };
        let activation = config.get("activation").and_then(Value::as_str).unwrap_or("linear");
        Ok(self.activation(name, Activation::from_name(activation)?, &y))
    }

    /// Dense: `Gemm` on (batch, features), `MatMul` + `Add` on the last axis of larger inputs
    /// (an int8 kernel through `DequantizeLinear`, see `export_quantized.rs`).
    fn dense(&mut self, layer: &dyn Layer, x: &str, rank: usize) -> Result<String> {
        let name = layer.name();
        let (shape, _) = weight(self.params, layer, 0)?;
        let kernel = self.kernel_operand(layer, "kernel", shape, 1, |i| i)?;
        let x = &self.quantized_input(layer, x);
        let use_bias = layer.config()["use_bias"].as_bool().unwrap_or(true);
        // `Gemm` takes the bias as an input (int32 when calibrated); `Add` after a `MatMul`
        // adds it in f32.
        let bias = match (use_bias, rank) {
            (true, 1) => Some(self.bias_operand(layer, 1)?),
            (true, _) => {
                let (shape, values) = weight(self.params, layer, 1)?;
                Some(self.builder.floats(format!("{name}/bias"), shape, values))
            }
            (false, _) => None,
        };
        Ok(match (rank, bias) {
            // beta spelled out: ONNX Runtime's QGemm fusion reads the attribute.
            (1, Some(bias)) => self
                .builder
                .op(name, "Gemm", &[x, &kernel, &bias], vec![float("beta", 1.0)]),
            (_, bias) => {
                let product = self.builder.op(name, "MatMul", &[x, &kernel], vec![]);
                match bias {
                    Some(bias) => self.builder.op(name, "Add", &[&product, &bias], vec![]),
                    None => product,
                }
            }
        })
    }

    /// Conv2D: the Keras kernel `(kh, kw, in, out)` becomes ONNX's `(out, in, kh, kw)`.
    fn conv(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let name = layer.name();
        let (kshape, _) = weight(self.params, layer, 0)?;
        let (kh, kw, cin, cout) = (kshape[0], kshape[1], kshape[2], kshape[3]);
        let to_onnx = |i: usize| {
            let (o, rest) = (i % cout, i / cout);
            let (c, rest) = (rest % cin, rest / cin);
            let (w, h) = (rest % kw, rest / kw);
            ((o * cin + c) * kh + h) * kw + w
        };
        let kernel = self.kernel_operand(layer, "kernel", &[cout, cin, kh, kw], 0, to_onnx)?;
        let mut inputs = vec![kernel];
        if config["use_bias"].as_bool().unwrap_or(true) {
            inputs.push(self.bias_operand(layer, 1)?);
        }
        let window = Window::from_config(config, "kernel_size", shape)?;
        let mut attributes = window.attributes();
        attributes.push(ints("dilations", &window.dilations));
        let nchw = self.builder.transpose(name, x, &[0, 3, 1, 2]);
        let nchw = self.quantized_input(layer, &nchw);
        let mut all = vec![nchw.as_str()];
        all.extend(inputs.iter().map(String::as_str));
        let y = self.builder.op(name, "Conv", &all, attributes);
        Ok(self.builder.transpose(name, &y, &[0, 2, 3, 1]))
    }

    /// MaxPooling2D / AveragePooling2D; "same" average pooling leaves the padding out of the
    /// count, as Keras (ONNX's `count_include_pad = 0`, the default).
    fn pool(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let name = layer.name();
        let window = Window::from_config(config, "pool_size", shape)?;
        let op = if layer.class_name() == "MaxPooling2D" {
            "MaxPool"
        } else {
            "AveragePool"
        };
        let nchw = self.builder.transpose(name, x, &[0, 3, 1, 2]);
        let y = self.builder.op(name, op, &[&nchw], window.attributes());
        Ok(self.builder.transpose(name, &y, &[0, 2, 3, 1]))
    }

    /// BatchNormalization in its inference form, folded into one scale and one shift per
    /// channel (broadcast over the last axis): `x·γ/√(var+ε) + (β − mean·γ/√(var+ε))`.
    fn batch_norm(&mut self, layer: &dyn Layer, config: &Value, x: &str) -> Result<String> {
        let name = layer.name();
        let (scale, center) = (
            config["scale"].as_bool().unwrap_or(true),
            config["center"].as_bool().unwrap_or(true),
        );
        let epsilon = config["epsilon"].as_f64().unwrap_or(1e-3);
        let mut k = 0;
        let mut next = |present: bool| -> Result<Option<Vec<f32>>> {
            if !present {
                return Ok(None);
            }
            k += 1;
            Ok(Some(weight(self.params, layer, k - 1)?.1.to_vec()))
        };
        let gamma = next(scale)?;
        let beta = next(center)?;
        let mean = next(true)?.unwrap_or_default();
        let variance = next(true)?.unwrap_or_default();
        let channels = mean.len();
        let mut factors = vec![0.0; channels];
        let mut shifts = vec![0.0; channels];
        for c in 0..channels {
            let g = gamma.as_ref().map_or(1.0, |g| g[c] as f64);
            let factor = g / (variance[c] as f64 + epsilon).sqrt();
            factors[c] = factor as f32;
            shifts[c] = (beta.as_ref().map_or(0.0, |b| b[c] as f64) - mean[c] as f64 * factor) as f32;
        }
        let factors = self.builder.floats(format!("{name}/scale"), &[channels], &factors);
        let shifts = self.builder.floats(format!("{name}/shift"), &[channels], &shifts);
        let scaled = self.builder.op(name, "Mul", &[x, &factors], vec![]);
        Ok(self.builder.op(name, "Add", &[&scaled, &shifts], vec![]))
    }

    /// Keras's `ReLU(max_value, negative_slope)` (threshold 0: others are refused earlier).
    fn relu(&mut self, name: &str, x: &str, config: &Value) -> String {
        let slope = config["negative_slope"].as_f64().unwrap_or(0.0) as f32;
        match config["max_value"].as_f64() {
            Some(max) => self.clip(name, x, max as f32),
            None if slope != 0.0 => self.builder.op(name, "LeakyRelu", &[x], vec![float("alpha", slope)]),
            None => self.builder.op(name, "Relu", &[x], vec![]),
        }
    }

    /// `Clip(x, 0, max)`; opset 11 and later take the bounds as inputs.
    fn clip(&mut self, name: &str, x: &str, max: f32) -> String {
        let low = self
            .builder
            .floats(format!("{name}/clip_min_{}", self.builder.nodes.len()), &[], &[0.0]);
        let high = self
            .builder
            .floats(format!("{name}/clip_max_{}", self.builder.nodes.len()), &[], &[max]);
        self.builder.op(name, "Clip", &[x, &low, &high], vec![])
    }

    /// A Rescaling factor: one number, or one per channel.
    fn constant(&mut self, name: &str, key: &str, value: &Value) -> Result<String> {
        let values: Vec<f32> = match value {
            Value::Number(n) => vec![n.as_f64().unwrap_or(0.0) as f32],
            Value::Array(list) => list.iter().map(|v| v.as_f64().unwrap_or(0.0) as f32).collect(),
            other => return Err(Error::Usage(format!("layer '{name}': cannot export {key} = {other}"))),
        };
        let shape: Vec<usize> = if value.is_number() { vec![] } else { vec![values.len()] };
        Ok(self.builder.floats(format!("{name}/{key}"), &shape, &values))
    }

    /// Applies a Keras activation to `x`. The match has no fallback arm, so an activation added to
    /// strata does not build until it has an ONNX form.
    pub(super) fn activation(&mut self, name: &str, activation: Activation, x: &str) -> String {
        let b = &mut *self.builder;
        match activation {
            Activation::Relu => b.op(name, "Relu", &[x], vec![]),
            Activation::Sigmoid => b.op(name, "Sigmoid", &[x], vec![]),
            Activation::Tanh => b.op(name, "Tanh", &[x], vec![]),
            Activation::Softmax => b.op(name, "Softmax", &[x], vec![int("axis", -1)]),
            Activation::LogSoftmax => b.op(name, "LogSoftmax", &[x], vec![int("axis", -1)]),
            Activation::LeakyRelu(slope) => b.op(name, "LeakyRelu", &[x], vec![float("alpha", slope)]),
            Activation::Elu(alpha) => b.op(name, "Elu", &[x], vec![float("alpha", alpha)]),
            Activation::Relu6 => self.clip(name, x, 6.0),
            Activation::Swish => {
                let gate = b.op(name, "Sigmoid", &[x], vec![]);
                b.op(name, "Mul", &[x, &gate], vec![])
            }
            // Keras 3: relu6(x + 3) / 6, which is ONNX's HardSigmoid with α = 1/6, β = 1/2.
            Activation::HardSigmoid => b.op(
                name,
                "HardSigmoid",
                &[x],
                vec![float("alpha", 1.0 / 6.0), float("beta", 0.5)],
            ),
            Activation::HardSwish => b.op(name, "HardSwish", &[x], vec![]),
            Activation::Softplus => b.op(name, "Softplus", &[x], vec![]),
            Activation::Softsign => b.op(name, "Softsign", &[x], vec![]),
            Activation::Exponential => b.op(name, "Exp", &[x], vec![]),
            Activation::Selu => b.op(
                name,
                "Selu",
                &[x],
                vec![float("alpha", SELU_ALPHA), float("gamma", SELU_SCALE)],
            ),
            Activation::Mish => {
                let soft = b.op(name, "Softplus", &[x], vec![]);
                let gate = b.op(name, "Tanh", &[&soft], vec![]);
                b.op(name, "Mul", &[x, &gate], vec![])
            }
            // Opset 17 has no Gelu (it came in 20): Keras's exact form, x·(1 + erf(x/√2))/2.
            Activation::Gelu => {
                let root2 = b.floats(
                    format!("{name}/sqrt2_{}", b.nodes.len()),
                    &[],
                    &[std::f32::consts::SQRT_2],
                );
                let half = b.floats(format!("{name}/half_{}", b.nodes.len()), &[], &[0.5]);
                let one = b.floats(format!("{name}/one_{}", b.nodes.len()), &[], &[1.0]);
                let scaled = b.op(name, "Div", &[x, &root2], vec![]);
                let erf = b.op(name, "Erf", &[&scaled], vec![]);
                let sum = b.op(name, "Add", &[&erf, &one], vec![]);
                let product = b.op(name, "Mul", &[x, &sum], vec![]);
                b.op(name, "Mul", &[&product, &half], vec![])
            }
            // Opset 17's form of x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))/2, as PyTorch writes it.
            Activation::GeluApproximate => {
                let mut number =
                    |label: &str, value: f32| b.floats(format!("{name}/{label}_{}", b.nodes.len()), &[], &[value]);
                let (scale, cube, half, one) = (
                    number("sqrt_2_over_pi", (2.0 / std::f32::consts::PI).sqrt()),
                    number("cube_weight", 0.044_715),
                    number("half", 0.5),
                    number("one", 1.0),
                );
                let square = b.op(name, "Mul", &[x, x], vec![]);
                let cubed = b.op(name, "Mul", &[x, &square], vec![]);
                let weighted = b.op(name, "Mul", &[&cube, &cubed], vec![]);
                let sum = b.op(name, "Add", &[x, &weighted], vec![]);
                let inner = b.op(name, "Mul", &[&scale, &sum], vec![]);
                let tanh = b.op(name, "Tanh", &[&inner], vec![]);
                let plus = b.op(name, "Add", &[&one, &tanh], vec![]);
                let product = b.op(name, "Mul", &[x, &plus], vec![]);
                b.op(name, "Mul", &[&half, &product], vec![])
            }
            Activation::Linear => x.to_string(),
        }
    }

    /// A chain of binary `op`s over all `inputs` (Keras's n-ary Add and Multiply).
    fn fold(&mut self, name: &str, op: &str, inputs: &[&str]) -> String {
        let mut acc = inputs[0].to_string();
        for next in &inputs[1..] {
            acc = self.builder.op(name, op, &[&acc, next], vec![]);
        }
        acc
    }
}

/// The values of weight `k` of `layer`, with its shape.
pub(super) fn weight<'p>(params: &'p ParamStore, layer: &dyn Layer, k: usize) -> Result<(&'p [usize], &'p [f32])> {
    let id = *layer.params().get(k).ok_or_else(|| {
        Error::Usage(format!(
            "layer '{}' has no weight {k}: is the model built?",
            layer.name()
        ))
    })?;
    let value = params.value(id);
    Ok((value.shape(), value.data()))
}

/// A 2-D window's ONNX attributes: sizes, strides, dilations and explicit pads.
pub(super) struct Window {
    pub(super) kernel: Vec<i64>,
    pub(super) strides: Vec<i64>,
    pub(super) dilations: Vec<i64>,
    /// ONNX's `[top, left, bottom, right]`.
    pub(super) pads: Vec<i64>,
}

impl Window {
    /// From a conv or pooling config over an `(H, W, C)` input. "same" padding is split as
    /// Keras (TensorFlow) splits it: the odd row or column goes at the bottom or right.
    pub(super) fn from_config(config: &Value, size_key: &str, shape: &[usize]) -> Result<Window> {
        let pair = |key: &str, default: i64| -> Vec<i64> {
            match &config[key] {
                Value::Array(v) => v.iter().map(|x| x.as_i64().unwrap_or(default)).collect(),
                Value::Number(n) => vec![n.as_i64().unwrap_or(default); 2],
                _ => vec![default; 2],
            }
        };
        let kernel = pair(size_key, 1);
        let strides = pair("strides", 1);
        let dilations = pair("dilation_rate", 1);
        let mut pads = vec![0; 4];
        if config["padding"].as_str() == Some("same") {
            for axis in 0..2 {
                let size = shape[axis] as i64;
                let span = (kernel[axis] - 1) * dilations[axis] + 1;
                let out = (size + strides[axis] - 1) / strides[axis];
                let total = ((out - 1) * strides[axis] + span - size).max(0);
                pads[axis] = total / 2;
                pads[axis + 2] = total - total / 2;
            }
        }
        Ok(Window {
            kernel,
            strides,
            dilations,
            pads,
        })
    }

    pub(super) fn attributes(&self) -> Vec<super::proto::AttributeProto> {
        vec![
            ints("kernel_shape", &self.kernel),
            ints("strides", &self.strides),
            ints("pads", &self.pads),
        ]
    }
}
