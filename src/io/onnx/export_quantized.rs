//! A quantized model's int8 weights as ONNX's QDQ form, the one `onnxruntime.quantization`
//! writes and ONNX Runtime fuses into int8 kernels: each int8 kernel an int8 initializer with
//! one scale per output channel, read through `DequantizeLinear(axis)` by the usual float
//! operator (`Gemm`, `MatMul`, `Conv`, `Gather`).
//!
//! Activations. A calibrated layer (`quantize_with_options` with a calibration sample) rounds
//! its input with one fixed scale, which is exactly `QuantizeLinear` → `DequantizeLinear`
//! before its operator (uint8 with zero point 128: strata's symmetric int8 levels, in the type
//! ONNX Runtime's x86 int8 kernels take); its bias is int32 in the unit of the exact sums, and
//! `export_qdq.rs` quantizes the operator's output with the next layer's scale, so that ONNX
//! Runtime runs `QLinearConv` / `QGemm` / `QLinearMatMul` (`quantize_static`'s form). A
//! dynamically quantized layer rounds each row (or batch) with a scale measured on the fly;
//! ONNX has no per-row dynamic quantization (its `DynamicQuantizeLinear` is one asymmetric
//! uint8 scale per tensor, another rounding than strata's), so those layers are written
//! weights-only: the graph multiplies the f32 input by the dequantized kernel, and differs
//! from strata's int8 `predict` by the rounding of the input to 127 levels per row (about
//! `max|x| / 254` per value; the README gives measured figures).
//!
//! ONNX dequantizes `q · scale`; strata's scales are the inverse (`q / scale`, as Keras), so
//! the file holds `1 / scale`, which dequantizes to within one float rounding of strata's
//! values. Strata clips quantized inputs to [-127, 127], `QuantizeLinear` to [-128, 127]
//! (uint8 [0, 255] around 128): they differ only for an input below the calibrated range.

use super::layers::{Emitter, weight};
use crate::autograd::{ParamStore, QuantizedKernel, ScaleAxis};
use crate::error::Result;
use crate::layers::Layer;

/// The layer classes whose int8 kernel (their first weight) export writes as QDQ, with the
/// scale axis the kernel must have: the classes `Model::quantize` makes int8.
pub const QDQ_LAYERS: &[(&str, ScaleAxis)] = &[
    ("Dense", ScaleAxis::Columns),
    ("Conv1D", ScaleAxis::Columns),
    ("Conv2D", ScaleAxis::Columns),
    ("DepthwiseConv2D", ScaleAxis::Depthwise),
    ("Embedding", ScaleAxis::Rows),
];

/// Why `layer`'s int8 weights have no QDQ form (`": int8 weight 'w' ..."`), or `None` when it
/// has none or they do.
pub(super) fn unsupported_int8(layer: &dyn Layer, params: &ParamStore) -> Option<String> {
    let class = layer.class_name();
    layer.params().iter().enumerate().find_map(|(k, &id)| {
        let kernel = params.quantized(id)?;
        let written = k == 0 && QDQ_LAYERS.contains(&(class, kernel.axis()));
        let classes: Vec<&str> = QDQ_LAYERS.iter().map(|(class, _)| *class).collect();
        (!written).then(|| {
            format!(
                ": int8 weight '{}' has no QDQ form (export writes the int8 kernels of {}; export this layer in f32)",
                params.name(id),
                classes.join(", ")
            )
        })
    })
}

impl Emitter<'_> {
    /// The kernel (weight 0) of `layer` as the operand of its float operator, in ONNX's layout `shape`:
    /// `to_onnx(i)` is where strata's value `i` goes. An f32 weight is a float initializer
    /// `{layer}/{key}`; an int8 one is an int8 initializer of that name and its scales (one per
    /// index of `axis` of `shape`), dequantized by `DequantizeLinear`.
    pub(super) fn kernel_operand(
        &mut self,
        layer: &dyn Layer,
        key: &str,
        shape: &[usize],
        axis: usize,
        to_onnx: impl Fn(usize) -> usize,
    ) -> Result<String> {
        let name = layer.name();
        let (_, values) = weight(self.params, layer, 0)?;
        let Some(kernel) = quantized_kernel(self.params, layer) else {
            let mut permuted = vec![0.0; values.len()];
            for (i, &v) in values.iter().enumerate() {
                permuted[to_onnx(i)] = v;
            }
            return Ok(self.builder.floats(format!("{name}/{key}"), shape, &permuted));
        };
        let mut permuted = vec![0i8; kernel.values().len()];
        for (i, &q) in kernel.values().iter().enumerate() {
            permuted[to_onnx(i)] = q;
        }
        let values = self.builder.int8s(format!("{name}/{key}"), shape, &permuted);
        let inverse: Vec<f32> = kernel.scales().iter().map(|&s| 1.0 / s).collect();
        let scales = self
            .builder
            .floats(format!("{name}/{key}_scale"), &[inverse.len()], &inverse);
        let zeros = vec![0i8; inverse.len()];
        let zero_points = self
            .builder
            .int8s(format!("{name}/{key}_zero_point"), &[zeros.len()], &zeros);
        Ok(self.builder.op(
            name,
            "DequantizeLinear",
            &[&values, &scales, &zero_points],
            vec![super::builder::int("axis", axis as i64)],
        ))
    }

    /// The input `x` of `layer` as its int8 product sees it: for a calibrated layer,
    /// `QuantizeLinear` → `DequantizeLinear` with its fixed scale; `x` itself for an f32 or
    /// dynamically quantized layer (written weights-only, see the module's comment).
    ///
    /// The quantized values are uint8 with zero point 128, the same 255 levels as strata's
    /// symmetric int8 shifted by 128: ONNX Runtime fuses int8 operators on x86 only for uint8
    /// activations (int8 ones are allowed on ARM alone). `export_qdq.rs` sets the zero point to
    /// 0 where a ReLU makes the values non-negative.
    pub(super) fn quantized_input(&mut self, layer: &dyn Layer, x: &str) -> String {
        let Some(input_scale) = quantized_kernel(self.params, layer).and_then(QuantizedKernel::input_scale) else {
            return x.to_string();
        };
        let name = layer.name();
        let scale = self
            .builder
            .floats(format!("{name}/input_scale"), &[], &[1.0 / input_scale]);
        let zero_point = self
            .builder
            .uint8s(format!("{name}/input_zero_point"), &[], &[SIGNED_ZERO_POINT]);
        let quantized = self
            .builder
            .op(name, "QuantizeLinear", &[x, &scale, &zero_point], vec![]);
        self.builder
            .op(name, "DequantizeLinear", &[&quantized, &scale, &zero_point], vec![])
    }

    /// The bias (weight `k`) of `layer` as its operator's third input. For a calibrated layer
    /// it is int32 through `DequantizeLinear`, as `quantize_static` writes it and as ONNX
    /// Runtime's `QLinearConv` and `QGemm` fusions require: per output channel, scale = the
    /// input's scale × the kernel's, zero point 0, so the fused kernel adds the integer to its
    /// exact sums. Rounding the bias to that unit moves each output by at most half of it, far
    /// below the input's own rounding (half a unit per product summed). A bias too large for
    /// int32 in that unit stays `f32` (ONNX Runtime then leaves the operator unfused).
    pub(super) fn bias_operand(&mut self, layer: &dyn Layer, k: usize) -> Result<String> {
        let name = layer.name();
        let (shape, values) = weight(self.params, layer, k)?;
        let float = |emitter: &mut Self| emitter.builder.floats(format!("{name}/bias"), shape, values);
        let Some(kernel) = quantized_kernel(self.params, layer) else {
            return Ok(float(self));
        };
        let (Some(input_scale), true) = (kernel.input_scale(), kernel.scales().len() == values.len()) else {
            return Ok(float(self));
        };
        // The scales as the file holds them (f32), so the product is what ONNX Runtime forms.
        let input = 1.0 / input_scale;
        let scales: Vec<f32> = kernel.scales().iter().map(|&s| input * (1.0 / s)).collect();
        let quantized: Option<Vec<i32>> = values
            .iter()
            .zip(&scales)
            .map(|(&b, &s)| {
                let q = (f64::from(b) / f64::from(s)).round();
                (s > 0.0 && s.is_finite() && q.abs() <= f64::from(i32::MAX)).then_some(q as i32)
            })
            .collect();
        let Some(quantized) = quantized else {
            return Ok(float(self));
        };
        let values = self.builder.int32s(format!("{name}/bias"), shape, &quantized);
        let scale = self.builder.floats(format!("{name}/bias_scale"), shape, &scales);
        let zeros = vec![0i32; quantized.len()];
        let zero_point = self.builder.int32s(format!("{name}/bias_zero_point"), shape, &zeros);
        Ok(self.builder.op(
            name,
            "DequantizeLinear",
            &[&values, &scale, &zero_point],
            vec![super::builder::int("axis", 0)],
        ))
    }
}

/// The uint8 zero point that holds strata's symmetric int8 values: `q + 128`.
const SIGNED_ZERO_POINT: u8 = 128;

/// The int8 form of `layer`'s kernel (its first weight), if the model is quantized.
fn quantized_kernel<'p>(params: &'p ParamStore, layer: &dyn Layer) -> Option<&'p QuantizedKernel> {
    layer.params().first().and_then(|&id| params.quantized(id))
}
