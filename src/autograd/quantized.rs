//! Int8 weights and the inference-only operations that read them.
//!
//! A [`QuantizedKernel`] holds a layer's kernel as int8 values with one `f32` scale per output
//! channel (Keras's `kernel_scale`) or, for an embedding table, per row. The operations here
//! quantize their input on the fly (Keras's `AbsMaxQuantizer`: symmetric, abs-max, `[-127, 127]`)
//! and multiply in exact integers (`kernels::int8_matmul`). They record no backward rule: a
//! quantized model is for inference, and `fit` refuses it before a pass is recorded.

use super::conv::{WindowOptions, window};
use super::op::{Op, Var};
use super::params::ParamId;
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, Int8Linear, PackedInt8};
use crate::tensor::Tensor;

/// How the activations entering an int8 product are scaled.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ActivationScale {
    /// One scale per row: per sample for `Dense` (Keras's `AbsMaxQuantizer(axis=-1)`), per
    /// image for a convolution. The default, and Keras's choice.
    #[default]
    PerRow,
    /// One scale for the whole batch: cheaper, and what static int8 runtimes do, but one
    /// outlying sample coarsens every other's values.
    PerTensor,
}

impl ActivationScale {
    /// The name saved in model files: `per_row` or `per_tensor`.
    pub fn name(self) -> &'static str {
        match self {
            ActivationScale::PerRow => "per_row",
            ActivationScale::PerTensor => "per_tensor",
        }
    }

    /// The scale named `name`, or an error listing both.
    pub fn from_name(name: &str) -> Result<Self> {
        match name {
            "per_row" => Ok(ActivationScale::PerRow),
            "per_tensor" => Ok(ActivationScale::PerTensor),
            other => Err(Error::invalid(
                "activations",
                other,
                "activation scaling is \"per_row\" (Keras's) or \"per_tensor\"",
            )),
        }
    }
}

/// Along which axis a kernel's scales run.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScaleAxis {
    /// One scale per output channel (the last axis), over all the others: `Dense`, `Conv1D`,
    /// `Conv2D` kernels. Keras's `abs_max_quantize(kernel, axis=0)` for `Dense`.
    Columns,
    /// One scale per row of a `(rows, width)` table: `Embedding` (Keras's `axis=-1`).
    Rows,
}

/// A kernel stored as int8 values and `f32` scales (`value ≈ q / scale`, as Keras dequantizes).
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedKernel {
    values: Vec<i8>,
    shape: Vec<usize>,
    scales: Vec<f32>,
    axis: ScaleAxis,
    activations: ActivationScale,
    /// The values in the layout the products read (`Columns` kernels only).
    packed: Option<PackedInt8>,
}

impl QuantizedKernel {
    /// Quantizes `kernel` as Keras's `abs_max_quantize` does: per scale, `127 / (max|w| + 1e-7)`,
    /// then `clip(round_half_even(w · scale), -127, 127)`.
    pub fn quantize(kernel: &Tensor, axis: ScaleAxis, activations: ActivationScale) -> Result<Self> {
        let shape = kernel.shape().to_vec();
        let (rows, width) = matrix_of(&shape, axis)?;
        let w = kernel.data();
        let mut values = vec![0i8; w.len()];
        let scales = match axis {
            ScaleAxis::Columns => {
                let scales: Vec<f32> = (0..width)
                    .map(|n| kernels::scale_of((0..rows).fold(0.0f32, |m, k| m.max(w[k * width + n].abs()))))
                    .collect();
                for (out, row) in values.chunks_exact_mut(width.max(1)).zip(w.chunks_exact(width.max(1))) {
                    for ((q, &v), &s) in out.iter_mut().zip(row).zip(&scales) {
                        kernels::quantize_row(&[v], s, std::slice::from_mut(q));
                    }
                }
                scales
            }
            ScaleAxis::Rows => {
                let mut scales = vec![0.0f32; rows];
                kernels::quantize_rows(w, rows, width, width, false, &mut values, &mut scales);
                scales
            }
        };
        Self::from_parts(values, shape, scales, axis, activations)
    }

    /// A quantized kernel from stored parts (a model file): checks that the sizes agree and the
    /// scales are finite and positive, and packs the values for the products.
    pub fn from_parts(
        values: Vec<i8>,
        shape: Vec<usize>,
        scales: Vec<f32>,
        axis: ScaleAxis,
        activations: ActivationScale,
    ) -> Result<Self> {
        let (rows, width) = matrix_of(&shape, axis)?;
        let expected_scales = match axis {
            ScaleAxis::Columns => width,
            ScaleAxis::Rows => rows,
        };
        if values.len() != rows * width || scales.len() != expected_scales {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {shape:?} needs {} values and {expected_scales} scales, not {} and {}",
                rows * width,
                values.len(),
                scales.len()
            )));
        }
        if let Some(bad) = scales.iter().find(|s| !(s.is_finite() && **s > 0.0)) {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {shape:?} has the scale {bad}; scales are finite and positive"
            )));
        }
        if values.contains(&i8::MIN) {
            return Err(Error::Usage(format!(
                "an int8 kernel of shape {shape:?} holds -128; Keras's int8 range is [-127, 127]"
            )));
        }
        let packed = match axis {
            ScaleAxis::Columns => Some(PackedInt8::pack(&values, rows, width)),
            ScaleAxis::Rows => None,
        };
        Ok(QuantizedKernel {
            values,
            shape,
            scales,
            axis,
            activations,
            packed,
        })
    }

    /// The int8 values, in the f32 kernel's layout.
    pub fn values(&self) -> &[i8] {
        &self.values
    }

    /// The kernel's shape (that of the f32 kernel it replaces).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The scales: one per output channel, or per row of an embedding table.
    pub fn scales(&self) -> &[f32] {
        &self.scales
    }

    /// Along which axis the scales run.
    pub fn axis(&self) -> ScaleAxis {
        self.axis
    }

    /// How the activations entering the product are scaled.
    pub fn activations(&self) -> ActivationScale {
        self.activations
    }

    /// The kernel as `f32`, `q / scale` (what Keras's int8 `Embedding` computes per row).
    pub fn dequantized(&self) -> Tensor {
        let (_, width) = matrix_of(&self.shape, self.axis).expect("checked when made");
        let data = self
            .values
            .iter()
            .enumerate()
            .map(|(i, &q)| {
                let scale = match self.axis {
                    ScaleAxis::Columns => self.scales[i % width],
                    ScaleAxis::Rows => self.scales[i / width],
                };
                f32::from(q) / scale
            })
            .collect();
        Tensor::from_vec(self.shape.clone(), data).expect("same length as the shape")
    }

    fn packed(&self) -> Result<&PackedInt8> {
        self.packed
            .as_ref()
            .ok_or_else(|| Error::Usage("an embedding table's int8 values are not a product's kernel".into()))
    }
}

/// The kernel as a `(rows, width)` matrix: everything before the last axis by the last axis.
fn matrix_of(shape: &[usize], axis: ScaleAxis) -> Result<(usize, usize)> {
    let width = *shape
        .last()
        .ok_or_else(|| Error::Usage("an int8 kernel needs at least one axis".into()))?;
    let rows = crate::tensor::checked_numel(&shape[..shape.len() - 1])
        .ok_or_else(|| Error::Usage(format!("an int8 kernel of shape {shape:?} is too large")))?;
    if axis == ScaleAxis::Columns && rows > kernels::INT8_MAX_DEPTH {
        return Err(Error::Usage(format!(
            "an int8 kernel of shape {shape:?} sums {rows} products per output, over the {} whose exact sum fits an i32",
            kernels::INT8_MAX_DEPTH
        )));
    }
    Ok((rows, width))
}

impl Graph<'_> {
    /// The int8 kernel of parameter `kernel`, or an error naming it.
    fn int8_kernel(&self, kernel: ParamId) -> Result<&QuantizedKernel> {
        self.params().quantized(kernel).ok_or_else(|| {
            Error::Usage(format!(
                "weight '{}' is not quantized to int8",
                self.params().name(kernel)
            ))
        })
    }

    /// `x · kernel + bias` with `kernel` an int8 weight: Keras's int8 `Dense` call. Each row of
    /// `x (..., K)` (or the whole batch, per the kernel's [`ActivationScale`]) is quantized,
    /// multiplied in exact integers and scaled back by `1 / (row scale · kernel scale)`.
    pub fn int8_linear(&mut self, x: Var, kernel: ParamId, bias: Option<Var>) -> Result<Var> {
        let relu = false;
        let quantized = self.int8_kernel(kernel)?;
        let packed = quantized.packed()?;
        let (depth, width) = (packed.depth(), packed.width());
        let sx = self.dims(x);
        if sx.last() != Some(&depth) {
            return Err(Error::ShapeMismatch {
                op: "int8 linear",
                lhs: sx.to_vec(),
                rhs: quantized.shape.clone(),
            });
        }
        if let Some(b) = bias
            && self.shape(b) != [width]
        {
            return Err(Error::ShapeMismatch {
                op: "int8 linear bias",
                lhs: quantized.shape.clone(),
                rhs: self.shape(b).to_vec(),
            });
        }
        let rows = sx.iter().product::<usize>() / depth.max(1);
        let mut shape = sx.clone();
        *shape.last_mut().expect("non-empty") = width;
        let per_tensor = quantized.activations == ActivationScale::PerTensor;
        // The graph borrows the store for its whole life, so the kernel outlives this call.
        let params = self.params;
        let quantized = params.quantized(kernel).expect("checked above");
        Ok(self.push(Op::Int8 { x, bias }, &shape, |inputs, out, _| {
            let packed = quantized.packed.as_ref().expect("checked above");
            let mut a = vec![0i8; packed.activations_len(rows, depth)];
            let mut scales = vec![0.0f32; if per_tensor { 1 } else { rows }];
            kernels::quantize_rows(
                inputs.get(x).data(),
                rows,
                depth,
                depth,
                per_tensor,
                &mut a,
                &mut scales,
            );
            Int8Linear {
                a: &a,
                rows,
                stride: depth,
                row_scales: &scales,
                rows_per_scale: if per_tensor { rows.max(1) } else { 1 },
                kernel: packed,
                column_scales: &quantized.scales,
                bias: bias.map(|b| inputs.get(b).data()),
                relu,
            }
            .run(out.data_mut());
        }))
    }

    /// The convolution of `x (N, H, W, C)` with the int8 kernel `kernel (KH, KW, C, F)` (or a
    /// `Conv1D` kernel `(K, C, F)` read as `(1, K, C, F)`): each image (or the whole batch) is
    /// quantized with one scale, its receptive fields gathered as int8 (`im2col`; zero padding
    /// stays exactly zero) and multiplied by the kernel in exact integers.
    pub fn int8_conv2d(&mut self, x: Var, kernel: ParamId, bias: Option<Var>, options: WindowOptions) -> Result<Var> {
        self.int8_conv2d_activated(x, kernel, bias, options, false)
    }

    /// [`Graph::int8_conv2d`] followed by a ReLU in the same pass over the output.
    pub fn int8_conv2d_relu(
        &mut self,
        x: Var,
        kernel: ParamId,
        bias: Option<Var>,
        options: WindowOptions,
    ) -> Result<Var> {
        self.int8_conv2d_activated(x, kernel, bias, options, true)
    }

    fn int8_conv2d_activated(
        &mut self,
        x: Var,
        kernel: ParamId,
        bias: Option<Var>,
        options: WindowOptions,
        relu: bool,
    ) -> Result<Var> {
        let quantized = self.int8_kernel(kernel)?;
        let size = match *quantized.shape.as_slice() {
            [h, w, _, _] => (h, w),
            [w, _, _] => (1, w),
            _ => {
                return Err(Error::ShapeMismatch {
                    op: "int8 conv2d",
                    lhs: self.shape(x).to_vec(),
                    rhs: quantized.shape.clone(),
                });
            }
        };
        let channels = quantized.shape[quantized.shape.len() - 2];
        let sx = self.dims(x);
        if sx.len() != 4 || sx[3] != channels {
            return Err(Error::ShapeMismatch {
                op: "int8 conv2d",
                lhs: sx.to_vec(),
                rhs: quantized.shape.clone(),
            });
        }
        let filters = quantized.packed()?.width();
        if let Some(b) = bias
            && self.shape(b) != [filters]
        {
            return Err(Error::ShapeMismatch {
                op: "int8 conv2d bias",
                lhs: quantized.shape.clone(),
                rhs: self.shape(b).to_vec(),
            });
        }
        let g = window("conv2d", &sx, size, options)?;
        let per_tensor = quantized.activations == ActivationScale::PerTensor;
        let params = self.params;
        let quantized = params.quantized(kernel).expect("checked above");
        let shape = [g.batch, g.out_h, g.out_w, filters];
        Ok(self.push(Op::Int8 { x, bias }, &shape, |inputs, out, _| {
            let packed = quantized.packed.as_ref().expect("checked above");
            let image = g.image_len();
            let mut images = vec![0i8; g.batch * image];
            let mut scales = vec![0.0f32; if per_tensor { 1 } else { g.batch }];
            kernels::quantize_rows(
                inputs.get(x).data(),
                g.batch,
                image,
                image,
                per_tensor,
                &mut images,
                &mut scales,
            );
            let (rows, patch) = (g.batch * g.positions(), g.patch_len());
            let mut cols = vec![0i8; packed.activations_len(rows, patch)];
            kernels::im2col(&images, &g, &mut cols[..rows * patch]);
            Int8Linear {
                a: &cols,
                rows,
                stride: patch,
                row_scales: &scales,
                rows_per_scale: if per_tensor { rows.max(1) } else { g.positions().max(1) },
                kernel: packed,
                column_scales: &quantized.scales,
                bias: bias.map(|b| inputs.get(b).data()),
                relu,
            }
            .run(out.data_mut());
        }))
    }
}
