//! The inference-only operations that read int8 weights ([`QuantizedKernel`]).
//!
//! Each quantizes its input (Keras's `AbsMaxQuantizer`: symmetric, abs-max, `[-127, 127]`; or,
//! for a calibrated layer, with the fixed scale found on a calibration sample) and multiplies in
//! exact integers (`kernels::int8_matmul`, `kernels::int8_depthwise`). They record no backward
//! rule: a quantized model is for inference, and `fit` refuses it before a pass is recorded.

use super::conv::{WindowOptions, window};
use super::op::{Op, Var};
use super::params::ParamId;
use super::quantized_kernel::{Int8Value, QuantizedKernel, ScaleAxis};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, Int8Linear, Padding, RowScaling};

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

    /// True when an int8 layer wrote `var` as int8 only (see
    /// [`QuantizedKernel::with_output_scale`]).
    pub(crate) fn is_int8(&self, var: Var) -> bool {
        self.tape.int8_values.iter().any(|(v, _)| *v == var)
    }

    /// Takes the int8 form of `var` off the tape, if it has one.
    fn take_int8(&mut self, var: Var) -> Option<Int8Value> {
        let at = self.tape.int8_values.iter().position(|(v, _)| *v == var)?;
        Some(self.tape.int8_values.swap_remove(at).1)
    }

    /// Writes the `f32` form of an int8-only value (`q / scale`), for a reader that needs it:
    /// calibration links only int8 layers that read it as int8, so this is a safety net.
    fn materialize_int8(&mut self, var: Var) {
        if let Some(value) = self.take_int8(var) {
            let out = self.tape.values[var.0].data_mut();
            for (out, &q) in out.iter_mut().zip(&value.values) {
                *out = f32::from(q) / value.scale;
            }
        }
    }

    /// Records a max pooling of the int8-only value `x` (`Graph::max_pool2d` sends it here):
    /// its output is int8-only too, with the same scale.
    pub(crate) fn int8_max_pool2d(&mut self, x: Var, size: (usize, usize), options: WindowOptions) -> Result<Var> {
        let g = window("max_pool2d", self.shape(x), size, options)?;
        let input = self.take_int8(x).expect("only called for an int8 value");
        let shape = [g.batch, g.out_h, g.out_w, g.channels];
        let mut pooled = vec![0i8; g.batch * g.positions() * g.channels];
        let y = self.push(Op::Int8 { x, bias: None }, &shape, |_, _, _| {
            kernels::int8_max_pool(&input.values, &g, &mut pooled);
        });
        let scale = input.scale;
        self.tape.int8_values.push((y, Int8Value { values: pooled, scale }));
        Ok(y)
    }

    /// The error for a bias that does not fit `width` output channels.
    fn check_int8_bias(&self, op: &'static str, bias: Option<Var>, kernel: &[usize], width: usize) -> Result<()> {
        match bias {
            Some(b) if self.shape(b) != [width] => Err(Error::ShapeMismatch {
                op,
                lhs: kernel.to_vec(),
                rhs: self.shape(b).to_vec(),
            }),
            _ => Ok(()),
        }
    }

    /// `x · kernel + bias` with `kernel` an int8 weight: Keras's int8 `Dense` call. Each row of
    /// `x (..., K)` (or the whole batch, per the kernel's
    /// [`ActivationScale`](super::ActivationScale)) is quantized, multiplied in exact integers
    /// and scaled back by `1 / (row scale · kernel scale)`; a calibrated kernel quantizes with
    /// its fixed input scale instead.
    pub fn int8_linear(&mut self, x: Var, kernel: ParamId, bias: Option<Var>) -> Result<Var> {
        self.int8_linear_activated(x, kernel, bias, false)
    }

    /// [`Graph::int8_linear`] followed by a ReLU in the same pass over the output.
    pub fn int8_linear_relu(&mut self, x: Var, kernel: ParamId, bias: Option<Var>) -> Result<Var> {
        self.int8_linear_activated(x, kernel, bias, true)
    }

    fn int8_linear_activated(&mut self, x: Var, kernel: ParamId, bias: Option<Var>, relu: bool) -> Result<Var> {
        self.materialize_int8(x);
        let quantized = self.int8_kernel(kernel)?;
        let packed = quantized.packed()?;
        let (depth, width) = (packed.depth(), packed.width());
        let sx = self.dims(x);
        if sx.last() != Some(&depth) {
            return Err(Error::ShapeMismatch {
                op: "int8 linear",
                lhs: sx.to_vec(),
                rhs: quantized.shape().to_vec(),
            });
        }
        self.check_int8_bias("int8 linear bias", bias, quantized.shape(), width)?;
        let rows = sx.iter().product::<usize>() / depth.max(1);
        let mut shape = sx.clone();
        *shape.last_mut().expect("non-empty") = width;
        // The graph borrows the store for its whole life, so the kernel outlives this call.
        let params = self.params;
        let quantized = params.quantized(kernel).expect("checked above");
        Ok(self.push(Op::Int8 { x, bias }, &shape, |inputs, out, _| {
            let packed = quantized.packed().expect("checked above");
            let (scaling, factors) = quantized.input_scaling();
            let mut row_scales = vec![0.0f32; rows];
            Int8Linear {
                x: inputs.get(x).data(),
                rows,
                scaling,
                kernel: packed,
                column_scales: quantized.scales(),
                factors,
                bias: bias.map(|b| inputs.get(b).data()),
                relu,
            }
            .run(&mut row_scales, out.data_mut());
        }))
    }

    /// The convolution of `x (N, H, W, C)` with the int8 kernel `kernel (KH, KW, C, F)` (or a
    /// `Conv1D` kernel `(K, C, F)` read as `(1, K, C, F)`): each image (or the whole batch, or
    /// with a calibrated layer's fixed scale) is quantized with one scale, its receptive fields
    /// gathered as int8 (`im2col`; zero padding stays exactly zero) and multiplied by the
    /// kernel in exact integers.
    pub fn int8_conv2d(&mut self, x: Var, kernel: ParamId, bias: Option<Var>, options: WindowOptions) -> Result<Var> {
        self.int8_conv2d_activated(x, kernel, bias, options, false, None)
    }

    /// [`Graph::int8_conv2d`] followed by a ReLU in the same pass over the output.
    pub fn int8_conv2d_relu(
        &mut self,
        x: Var,
        kernel: ParamId,
        bias: Option<Var>,
        options: WindowOptions,
    ) -> Result<Var> {
        self.int8_conv2d_activated(x, kernel, bias, options, true, None)
    }

    /// [`Graph::int8_conv2d_relu`] followed by a max pooling of its output with a `pool_size`
    /// window, in one pass: each pooled value is the largest of its window's exact sums,
    /// scaled once (the bits pooling the `f32` output gives; see `kernels::int8_conv`). The
    /// result is the pooled value; the convolution's own output is never written. For pooling
    /// windows of 1, 2 or 4 taps without padding or dilation; `predict` takes this path where a
    /// quantized ReLU `Conv2D` is read only by such a `MaxPooling2D`.
    pub fn int8_conv2d_relu_max_pool(
        &mut self,
        x: Var,
        kernel: ParamId,
        bias: Option<Var>,
        options: WindowOptions,
        pool_size: (usize, usize),
        pool_options: WindowOptions,
    ) -> Result<Var> {
        if !int8_pool_folds(pool_size, pool_options) {
            return Err(Error::invalid(
                "pool_size",
                format!("{pool_size:?} with {pool_options:?}"),
                "an int8 convolution folds in a max pooling of 1, 2 or 4 taps without padding or dilation",
            ));
        }
        self.int8_conv2d_activated(x, kernel, bias, options, true, Some((pool_size, pool_options)))
    }

    fn int8_conv2d_activated(
        &mut self,
        x: Var,
        kernel: ParamId,
        bias: Option<Var>,
        options: WindowOptions,
        relu: bool,
        pool: Option<((usize, usize), WindowOptions)>,
    ) -> Result<Var> {
        let quantized = self.int8_kernel(kernel)?;
        let sx = self.dims(x);
        let mismatch = || Error::ShapeMismatch {
            op: "int8 conv2d",
            lhs: sx.to_vec(),
            rhs: quantized.shape().to_vec(),
        };
        let size = match *quantized.shape() {
            [h, w, _, _] => (h, w),
            [w, _, _] => (1, w),
            _ => return Err(mismatch()),
        };
        let channels = quantized.shape()[quantized.shape().len() - 2];
        if sx.len() != 4 || sx[3] != channels {
            return Err(mismatch());
        }
        let filters = quantized.packed()?.width();
        self.check_int8_bias("int8 conv2d bias", bias, quantized.shape(), filters)?;
        let g = window("conv2d", &sx, size, options)?;
        let pooled = match pool {
            Some((pool_size, pool_options)) => Some(window(
                "max_pool2d",
                &[g.batch, g.out_h, g.out_w, filters],
                pool_size,
                pool_options,
            )?),
            None => None,
        };
        let params = self.params;
        let quantized = params.quantized(kernel).expect("checked above");
        let (out_h, out_w, positions) = match &pooled {
            Some(p) => (p.out_h, p.out_w, p.positions()),
            None => (g.out_h, g.out_w, g.positions()),
        };
        let shape = [g.batch, out_h, out_w, filters];
        let (scaling, factors) = quantized.input_scaling();
        // The input as int8 already, when the layer before wrote it so with this layer's scale.
        let chained = match self.take_int8(x) {
            Some(value) if scaling == RowScaling::Fixed(value.scale) => Some(value.values),
            Some(value) => {
                self.tape.int8_values.push((x, value));
                self.materialize_int8(x);
                None
            }
            None => None,
        };
        let rows = g.batch * positions;
        let output_scale = quantized.output_scale();
        let mut int8_output = vec![0i8; if output_scale.is_some() { rows * filters } else { 0 }];
        // The product reads the images in place, copied first when the window has padding or
        // the channels are not in whole quads (then read a window row at a time, with the
        // kernel widened to match, and followed by the slack those reads need); im2col rows
        // for a kernel too deep to widen, or such channels with a dilated width.
        let whole_quads = g.channels.is_multiple_of(4);
        let direct = whole_quads || (quantized.packed_wide().is_some() && g.dilation_w == 1);
        let padded = direct.then(|| kernels::direct_window(&g));
        let y = self.push(Op::Int8 { x, bias }, &shape, |inputs, out, _| {
            let packed = match quantized.packed_wide() {
                Some(wide) if direct => wide,
                _ => quantized.packed().expect("checked above"),
            };
            let image = g.image_len();
            let mut scales = vec![0.0f32; if scaling == RowScaling::PerRow { g.batch } else { 1 }];
            let own_images = if chained.is_some() { 0 } else { g.batch * image };
            let second = match &padded {
                Some(p) if *p == g && whole_quads => 0,
                Some(p) => g.batch * p.image_len() + kernels::INT8_IMAGE_SLACK,
                None => packed.activations_len(g.batch * g.positions(), g.patch_len()),
            };
            let padded = padded.as_ref();
            // Reused buffers: fresh ones each batch cost page faults and zeroing.
            kernels::with_int8_scratch(own_images, second, |own, second| {
                let images: &[i8] = match &chained {
                    Some(images) => images,
                    None => {
                        let x = inputs.get(x).data();
                        kernels::quantize_rows(x, g.batch, image, image, scaling, own, &mut scales);
                        own
                    }
                };
                // A copy is flipped for the VNNI tiles as it is made.
                let mut flipped = false;
                let (rows_source, window) = match padded {
                    Some(p) if *p == g && whole_quads => (kernels::Int8Rows::Images(images), p),
                    Some(p) => {
                        flipped = kernels::int8_reads_flipped(filters);
                        kernels::pad_int8_images(images, &g, p, second, flipped);
                        (kernels::Int8Rows::Images(second), p)
                    }
                    None => {
                        // Only the padding after the last patch keeps old bytes; the kernel's
                        // rows there are zero.
                        let len = g.batch * g.positions() * g.patch_len();
                        kernels::im2col(images, &g, &mut second[..len]);
                        (kernels::Int8Rows::Columns(second), &g)
                    }
                };
                let rows_per_scale = if scaling == RowScaling::PerRow {
                    positions.max(1)
                } else {
                    rows.max(1)
                };
                let bias = bias.map(|b| inputs.get(b).data());
                // Each image's (or the one) scale folded into per-column factors once, as a
                // calibrated layer's are: a product per output, not a division.
                let mut group_factors = vec![0.0f32; if factors.is_some() { 0 } else { scales.len() * filters }];
                if factors.is_none() {
                    kernels::group_factors(&scales, quantized.scales(), &mut group_factors);
                }
                let scales = match factors {
                    Some(factors) => kernels::Scales::Multiply { factors },
                    None => kernels::Scales::GroupFactors {
                        factors: &group_factors,
                        rows_per_group: rows_per_scale,
                        width: filters,
                    },
                };
                let conv = kernels::Int8Conv {
                    rows: rows_source,
                    flipped,
                    window,
                    pool: pooled.as_ref(),
                    kernel: packed,
                    rescale: kernels::Rescale { scales, bias, relu },
                };
                match output_scale {
                    Some(scale) => conv.run_quantized(scale, &mut int8_output),
                    None => conv.run(out.data_mut()),
                }
            });
        });
        if let Some(scale) = output_scale {
            let value = Int8Value {
                values: int8_output,
                scale,
            };
            self.tape.int8_values.push((y, value));
        }
        Ok(y)
    }

    /// The depthwise convolution of `x (N, H, W, C)` with the int8 kernel `kernel (KH, KW, C, M)`
    /// plus `bias (C·M)`, as [`Graph::depthwise_conv2d`]: each image (or the whole batch, or
    /// with a calibrated layer's fixed scale) quantized with one scale, each output channel's
    /// taps summed in exact integers and scaled back as [`Graph::int8_conv2d`] does.
    pub fn int8_depthwise_conv2d(
        &mut self,
        x: Var,
        kernel: ParamId,
        bias: Option<Var>,
        options: WindowOptions,
    ) -> Result<Var> {
        self.materialize_int8(x);
        let quantized = self.int8_kernel(kernel)?;
        let sx = self.dims(x);
        let [h, w, c, multiplier] = *quantized.shape() else {
            return Err(Error::ShapeMismatch {
                op: "int8 depthwise_conv2d",
                lhs: sx.to_vec(),
                rhs: quantized.shape().to_vec(),
            });
        };
        if sx.len() != 4 || sx[3] != c || quantized.axis() != ScaleAxis::Depthwise {
            return Err(Error::ShapeMismatch {
                op: "int8 depthwise_conv2d",
                lhs: sx.to_vec(),
                rhs: quantized.shape().to_vec(),
            });
        }
        let width = c * multiplier;
        self.check_int8_bias("int8 depthwise_conv2d bias", bias, quantized.shape(), width)?;
        let g = window("depthwise_conv2d", &sx, (h, w), options)?;
        let params = self.params;
        let quantized = params.quantized(kernel).expect("checked above");
        let shape = [g.batch, g.out_h, g.out_w, width];
        Ok(self.push(Op::Int8 { x, bias }, &shape, |inputs, out, _| {
            let (scaling, factors) = quantized.input_scaling();
            let image = g.image_len();
            let mut images = vec![0i8; g.batch * image];
            let mut scales = vec![0.0f32; if scaling == RowScaling::PerRow { g.batch } else { 1 }];
            kernels::quantize_rows(
                inputs.get(x).data(),
                g.batch,
                image,
                image,
                scaling,
                &mut images,
                &mut scales,
            );
            let rows = g.batch * g.positions();
            let rows_per_scale = if scaling == RowScaling::PerRow {
                g.positions().max(1)
            } else {
                rows.max(1)
            };
            let rescale = rescale(
                quantized,
                factors,
                &scales,
                rows_per_scale,
                bias.map(|b| inputs.get(b).data()),
                false,
            );
            kernels::int8_depthwise_conv(&images, quantized.values(), &g, multiplier, &rescale, out.data_mut());
        }))
    }
}

/// How a product's sums become the output: the calibrated factors, or Keras's division by the
/// activations' scales (`rows_per_scale` rows each) and the kernel's.
fn rescale<'a>(
    quantized: &'a QuantizedKernel,
    factors: Option<&'a [f32]>,
    row_scales: &'a [f32],
    rows_per_scale: usize,
    bias: Option<&'a [f32]>,
    relu: bool,
) -> kernels::Rescale<'a> {
    let scales = match factors {
        Some(factors) => kernels::Scales::Multiply { factors },
        None => kernels::Scales::Divide {
            row_scales,
            rows_per_scale,
            column_scales: quantized.scales(),
        },
    };
    kernels::Rescale { scales, bias, relu }
}

/// True when [`Graph::int8_conv2d_relu_max_pool`] folds a max pooling with window `size` and
/// `options` into the convolution: 1, 2 or 4 taps, no padding, no dilation.
pub(crate) fn int8_pool_folds(size: (usize, usize), options: WindowOptions) -> bool {
    matches!(size.0 * size.1, 1 | 2 | 4) && options.padding == Padding::Valid && options.dilation == (1, 1)
}
