//! Convolutions beyond `Conv2D` and upsampling as ONNX operators: `Conv1D`, `DepthwiseConv2D`
//! and `SeparableConv2D` (grouped `Conv`s), `Conv2DTranspose` (`ConvTranspose`),
//! `MaxPooling1D`, `UpSampling2D` (the other resizing layers are `export_resize.rs`'s). As in
//! `layers.rs`, the operators that want channels first run between two `Transpose`s.

use super::builder::{int, ints};
use super::export_layers::{first, same_pads, text};
use super::layers::{Emitter, Window, weight};
use crate::error::Result;
use crate::layers::Layer;
use serde_json::Value;

/// `(N, H, W, C)` to `(N, C, H, W)`, and back.
pub(super) const TO_NCHW: [i64; 4] = [0, 3, 1, 2];
pub(super) const TO_NHWC: [i64; 4] = [0, 2, 3, 1];
/// `(N, T, C)` to `(N, C, T)`, and back (its own inverse).
const SWAP_LAST: [i64; 3] = [0, 2, 1];

impl Emitter<'_> {
    /// Conv1D: the Keras kernel `(k, in, out)` becomes ONNX's `(out, in, k)`, a 1-D `Conv`.
    pub(super) fn conv1d(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let name = layer.name();
        let (kshape, _) = weight(self.params, layer, 0)?;
        let (k, cin, cout) = (kshape[0], kshape[1], kshape[2]);
        let to_onnx = |i: usize| {
            let (o, rest) = (i % cout, i / cout);
            let (c, t) = (rest % cin, rest / cin);
            (o * cin + c) * k + t
        };
        let kernel = self.kernel_operand(layer, "kernel", &[cout, cin, k], 0, to_onnx)?;
        let mut operands = vec![kernel];
        if config["use_bias"].as_bool().unwrap_or(true) {
            operands.push(self.bias_operand(layer, 1)?);
        }
        let (stride, dilation) = (first(config, "strides", 1), first(config, "dilation_rate", 1));
        let padding = config["padding"].as_str().unwrap_or("valid");
        let (begin, end) = match padding {
            // Zeros before the sequence only.
            "causal" => ((k as i64 - 1) * dilation as i64, 0),
            _ => same_pads(padding, shape[0], k, stride, dilation),
        };
        let attributes = vec![
            ints("kernel_shape", &[k as i64]),
            ints("strides", &[stride as i64]),
            ints("pads", &[begin, end]),
            ints("dilations", &[dilation as i64]),
        ];
        let channels_first = self.builder.transpose(name, x, &SWAP_LAST);
        let channels_first = self.quantized_input(layer, &channels_first);
        let mut all = vec![channels_first.as_str()];
        all.extend(operands.iter().map(String::as_str));
        let y = self.builder.op(name, "Conv", &all, attributes);
        Ok(self.builder.transpose(name, &y, &SWAP_LAST))
    }

    /// DepthwiseConv2D: a `Conv` with one group per input channel, kernel `(kh, kw, in, m)`
    /// as `(in·m, 1, kh, kw)` (output channel `c·m + j`, as Keras orders them).
    /// SeparableConv2D adds the pointwise 1×1 `Conv`, which holds the bias.
    pub(super) fn depthwise(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let name = layer.name();
        let separable = layer.class_name() == "SeparableConv2D";
        let (kshape, _) = weight(self.params, layer, 0)?;
        let (kh, kw, cin, m) = (kshape[0], kshape[1], kshape[2], kshape[3]);
        let to_onnx = |i: usize| {
            let (j, rest) = (i % m, i / m);
            let (c, rest) = (rest % cin, rest / cin);
            let (w, h) = (rest % kw, rest / kw);
            ((c * m + j) * kh + h) * kw + w
        };
        let key = if separable { "depthwise_kernel" } else { "kernel" };
        let kernel = self.kernel_operand(layer, key, &[cin * m, 1, kh, kw], 0, to_onnx)?;
        let use_bias = config["use_bias"].as_bool().unwrap_or(true);
        let bias = match use_bias {
            // The pointwise `Conv` of a SeparableConv2D (never int8) adds its bias in f32.
            true if separable => {
                let (bshape, bias) = weight(self.params, layer, 2)?;
                Some(self.builder.floats(format!("{name}/bias"), bshape, bias))
            }
            true => Some(self.bias_operand(layer, 1)?),
            false => None,
        };
        let window = Window::from_config(config, "kernel_size", shape)?;
        let mut attributes = window.attributes();
        attributes.push(ints("dilations", &window.dilations));
        attributes.push(int("group", cin as i64));
        let nchw = self.builder.transpose(name, x, &TO_NCHW);
        let nchw = self.quantized_input(layer, &nchw);
        let mut operands = vec![nchw.as_str(), kernel.as_str()];
        if let (false, Some(bias)) = (separable, &bias) {
            operands.push(bias);
        }
        let mut y = self.builder.op(name, "Conv", &operands, attributes);
        if separable {
            let (pshape, values) = weight(self.params, layer, 1)?;
            let (inner, filters) = (pshape[2], pshape[3]);
            let mut pointwise = vec![0.0; values.len()];
            for (i, v) in values.iter().enumerate() {
                pointwise[(i % filters) * inner + i / filters] = *v;
            }
            let pointwise =
                self.builder
                    .floats(format!("{name}/pointwise_kernel"), &[filters, inner, 1, 1], &pointwise);
            let mut operands = vec![y.as_str(), pointwise.as_str()];
            operands.extend(bias.as_deref());
            let attributes = vec![ints("kernel_shape", &[1, 1])];
            y = self.builder.op(name, "Conv", &operands, attributes);
        }
        Ok(self.builder.transpose(name, &y, &TO_NHWC))
    }

    /// Conv2DTranspose: `ConvTranspose` with the kernel `(kh, kw, filters, in)` as ONNX's
    /// `(in, filters, kh, kw)`. Keras's output size is reached by cropping the full output
    /// (`pads`, the leading part as strata's kernel puts it) or growing it at the end
    /// (`output_padding`).
    pub(super) fn conv_transpose(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        x: &str,
        shape: &[usize],
        output_shape: &[usize],
    ) -> Result<String> {
        let name = layer.name();
        let (kshape, values) = weight(self.params, layer, 0)?;
        let (kh, kw, filters, cin) = (kshape[0], kshape[1], kshape[2], kshape[3]);
        let mut kernel = vec![0.0; values.len()];
        for (i, v) in values.iter().enumerate() {
            let (c, rest) = (i % cin, i / cin);
            let (o, rest) = (rest % filters, rest / filters);
            let (w, h) = (rest % kw, rest / kw);
            kernel[((c * filters + o) * kh + h) * kw + w] = *v;
        }
        let kernel = self
            .builder
            .floats(format!("{name}/kernel"), &[cin, filters, kh, kw], &kernel);
        let mut operands = vec![kernel];
        if config["use_bias"].as_bool().unwrap_or(true) {
            let (bshape, bias) = weight(self.params, layer, 1)?;
            operands.push(self.builder.floats(format!("{name}/bias"), bshape, bias));
        }
        let pair = |key: &str, axis: usize| config[key][axis].as_i64().unwrap_or(1);
        let same = config["padding"].as_str() == Some("same");
        let (mut pads, mut extra) = (vec![0; 4], vec![0; 2]);
        for (axis, window) in [kh, kw].into_iter().enumerate() {
            let (stride, dilation) = (pair("strides", axis), pair("dilation_rate", axis));
            let full = (shape[axis] as i64 - 1) * stride + (window as i64 - 1) * dilation + 1;
            let out = output_shape[axis] as i64;
            let begin = if same { (full - out).max(0) / 2 } else { 0 };
            let end = full - begin - out;
            pads[axis] = begin;
            pads[axis + 2] = end.max(0);
            extra[axis] = (-end).max(0);
        }
        let attributes = vec![
            ints("kernel_shape", &[kh as i64, kw as i64]),
            ints("strides", &[pair("strides", 0), pair("strides", 1)]),
            ints("dilations", &[pair("dilation_rate", 0), pair("dilation_rate", 1)]),
            ints("pads", &pads),
            ints("output_padding", &extra),
        ];
        let nchw = self.builder.transpose(name, x, &TO_NCHW);
        let mut all = vec![nchw.as_str()];
        all.extend(operands.iter().map(String::as_str));
        let y = self.builder.op(name, "ConvTranspose", &all, attributes);
        Ok(self.builder.transpose(name, &y, &TO_NHWC))
    }

    /// MaxPooling1D or AveragePooling1D over `(N, T, C)`: a 1-D `MaxPool` (padding never wins
    /// a maximum) or `AveragePool` (padding left out of the count, as Keras).
    pub(super) fn pool1d(&mut self, name: &str, op: &str, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let size = first(config, "pool_size", 2);
        let stride = first(config, "strides", size);
        let padding = config["padding"].as_str().unwrap_or("valid");
        let (begin, end) = same_pads(padding, shape[0], size, stride, 1);
        let attributes = vec![
            ints("kernel_shape", &[size as i64]),
            ints("strides", &[stride as i64]),
            ints("pads", &[begin, end]),
        ];
        let channels_first = self.builder.transpose(name, x, &SWAP_LAST);
        let y = self.builder.op(name, op, &[&channels_first], attributes);
        Ok(self.builder.transpose(name, &y, &SWAP_LAST))
    }

    /// UpSampling2D. `"nearest"` repeats exactly, without a resize's rounding rules: each
    /// pixel broadcast to a block, `(N, H, 1, W, 1, C)` to `(N, H, sh, W, sw, C)`.
    /// `"bilinear"` is `Resize` with half-pixel centres, as Keras's `image.resize`.
    pub(super) fn upsample(&mut self, name: &str, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let size = |axis: usize| config["size"][axis].as_i64().unwrap_or(2);
        let (sh, sw) = (size(0), size(1));
        let (h, w, c) = (shape[0] as i64, shape[1] as i64, shape[2] as i64);
        if config["interpolation"].as_str() == Some("bilinear") {
            let scales = self
                .builder
                .floats(format!("{name}/scales"), &[4], &[1.0, 1.0, sh as f32, sw as f32]);
            let attributes = vec![
                text("mode", "linear"),
                text("coordinate_transformation_mode", "half_pixel"),
            ];
            let nchw = self.builder.transpose(name, x, &TO_NCHW);
            let y = self.builder.op(name, "Resize", &[&nchw, "", &scales], attributes);
            return Ok(self.builder.transpose(name, &y, &TO_NHWC));
        }
        let blocks = self.reshape(name, "blocks", x, &[-1, h, 1, w, 1, c]);
        let target = self
            .builder
            .int64s(format!("{name}/repeated_shape"), &[1, h, sh, w, sw, c]);
        let repeated = self.builder.op(name, "Expand", &[&blocks, &target], vec![]);
        Ok(self.reshape(name, "image", &repeated, &[-1, h * sh, w * sw, c]))
    }
}
