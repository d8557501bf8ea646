//! Convolution and pooling operations on channels-last batches, forward next to backward.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::profile;
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, ComputeDtype, Direct, OutputGrad, Padding, Transpose, Window2d, Winograd, output_size};
use crate::tensor::Tensor;

/// Strides, dilation and padding of a 2-D window (Keras's `strides`, `dilation_rate`,
/// `padding`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct WindowOptions {
    /// Step between windows, (rows, columns).
    pub strides: (usize, usize),
    /// Spacing between the taps of a window, (rows, columns).
    pub dilation: (usize, usize),
    /// Border handling.
    pub padding: Padding,
}

impl Default for WindowOptions {
    fn default() -> Self {
        WindowOptions {
            strides: (1, 1),
            dilation: (1, 1),
            padding: Padding::Valid,
        }
    }
}

/// The geometry of a window of `size` over an `(N, H, W, C)` input zero-padded by `padding`,
/// as it reads the unpadded input: the padding becomes leading rows and columns that no tap
/// reads (the trailing ones are implied by the output size). For a `ZeroPadding2D` folded into
/// the window after it.
pub(crate) fn padded_window(
    op: &str,
    input: &[usize],
    size: (usize, usize),
    options: WindowOptions,
    padding: super::Sides,
) -> Result<Window2d> {
    let ((top, bottom), (left, right)) = padding;
    let grown = |size: usize, a: usize, b: usize| size.checked_add(a)?.checked_add(b);
    let padded = match input {
        &[n, h, w, c] => grown(h, top, bottom)
            .zip(grown(w, left, right))
            .map(|(h, w)| [n, h, w, c]),
        _ => None,
    };
    let Some(padded) = padded else {
        return Err(Error::ShapeMismatch {
            op: "padded window",
            lhs: input.to_vec(),
            rhs: vec![top, bottom, left, right],
        });
    };
    let mut g = window(op, &padded, size, options)?;
    (g.height, g.width) = (input[1], input[2]);
    (g.pad_top, g.pad_left) = (g.pad_top + top, g.pad_left + left);
    Ok(g)
}

/// The geometry of a window of `size` over an `(N, H, W, C)` input, or an error naming `op`.
pub(crate) fn window(op: &str, input: &[usize], size: (usize, usize), options: WindowOptions) -> Result<Window2d> {
    let mismatch = || Error::ShapeMismatch {
        op: "window",
        lhs: input.to_vec(),
        rhs: vec![size.0, size.1],
    };
    if input.len() != 4 {
        return Err(mismatch());
    }
    if input[1..].contains(&0) {
        return Err(Error::invalid(
            "input_shape",
            format!("{:?}", &input[1..]),
            format!("{op}: images need a height, width and channel count of at least 1"),
        ));
    }
    let (strides, dilation) = (options.strides, options.dilation);
    if size.0 == 0 || size.1 == 0 || strides.0 == 0 || strides.1 == 0 || dilation.0 == 0 || dilation.1 == 0 {
        return Err(Error::invalid(
            "strides",
            format!("window {size:?}, strides {strides:?}, dilation {dilation:?}"),
            format!("{op}: window sizes, strides and dilation rates must be at least 1"),
        ));
    }
    let rows = output_size(input[1], size.0, strides.0, dilation.0, options.padding);
    let cols = output_size(input[2], size.1, strides.1, dilation.1, options.padding);
    let (Some((out_h, pad_top)), Some((out_w, pad_left))) = (rows, cols) else {
        return Err(mismatch());
    };
    Ok(Window2d {
        batch: input[0],
        height: input[1],
        width: input[2],
        channels: input[3],
        window_h: size.0,
        window_w: size.1,
        stride_h: strides.0,
        stride_w: strides.1,
        dilation_h: dilation.0,
        dilation_w: dilation.1,
        pad_top,
        pad_left,
        out_h,
        out_w,
    })
}

impl Graph<'_> {
    /// 2-D convolution of `x` `(N, H, W, C)` with `kernel` `(KH, KW, C, F)` plus `bias` `(F)`,
    /// giving `(N, OH, OW, F)`.
    ///
    /// 3×3 kernels with stride 1 and channel counts that are multiples of 8 run through
    /// Winograd's algorithm (`kernels::Winograd`); other shapes are lowered to one matrix
    /// product through im2col.
    pub fn conv2d(&mut self, x: Var, kernel: Var, bias: Option<Var>, options: WindowOptions) -> Result<Var> {
        self.conv2d_in(x, kernel, bias, options, false, ComputeDtype::Float32)
    }

    /// [`Graph::conv2d`] followed by a ReLU, in one operation: the output is written once, and
    /// the backward pass applies the ReLU's mask while it reads the output gradient.
    pub fn conv2d_relu(&mut self, x: Var, kernel: Var, bias: Option<Var>, options: WindowOptions) -> Result<Var> {
        self.conv2d_in(x, kernel, bias, options, true, ComputeDtype::Float32)
    }

    /// [`Graph::conv2d`] (followed by a ReLU when `relu`) with its products in `dtype`. In
    /// bfloat16 every shape is lowered to im2col and one product (forward and backward), whose
    /// operands are rounded to bfloat16 as they enter it and which accumulates in f32; Winograd's
    /// algorithm and the direct kernel are f32 only.
    pub fn conv2d_in(
        &mut self,
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        options: WindowOptions,
        relu: bool,
        dtype: ComputeDtype,
    ) -> Result<Var> {
        self.conv2d_full(x, (kernel, bias), None, options, relu, dtype, f32::INFINITY)
    }

    /// `max(conv(x, kernel) + bias + residual, 0)` (no max unless `relu`) as one operation:
    /// inference's fusion of a convolution, the residual connection's `Add` that alone reads
    /// it and the ReLU after that (see `model::inference`). A `residual` whose shape is not the
    /// convolution's output's (an `Add` that broadcasts) runs as the three operations instead.
    /// Either way the sums are taken in the unfused order, so the result has the same bits.
    pub(crate) fn conv2d_residual(
        &mut self,
        x: Var,
        (kernel, bias): (Var, Option<Var>),
        residual: Var,
        options: WindowOptions,
        relu: bool,
    ) -> Result<Var> {
        let output = conv2d_output_shape(self.shape(x), self.shape(kernel), options);
        if output.as_deref() == Some(self.shape(residual)) {
            let dtype = ComputeDtype::Float32;
            return self.conv2d_full(x, (kernel, bias), Some(residual), options, relu, dtype, f32::INFINITY);
        }
        let y = self.conv2d(x, kernel, bias, options)?;
        let sum = self.add(y, residual)?;
        Ok(if relu {
            self.unary(super::UnaryOp::Relu, sum)
        } else {
            sum
        })
    }

    /// [`Graph::conv2d_relu`] followed by [`Graph::max_pool2d`] of its output with a
    /// `pool_size` window, in one pass where the convolution runs direct (small receptive
    /// fields, such as a first layer's) and the pooling windows have 1, 2 or 4 taps, or through
    /// Winograd's algorithm and the windows do not overlap nor cross a tile's edge (2×2
    /// windows, stride 2), without padding: each pooled value is the largest of its window's
    /// outputs, the same bits as the two operations, and the convolution's own output is never
    /// written. Otherwise it records the two operations. `predict` takes this path where a ReLU
    /// `Conv2D` is read only by a `MaxPooling2D`, and so does training where the convolution
    /// runs direct on an input that needs no gradient (a first layer): the argmax the pooling
    /// would record is kept, and the backward rule is the folded one the two operations get
    /// (`conv2d_pooled_backward`), so the gradients have the same bits too. With other
    /// gradients asked, it records the two.
    pub fn conv2d_relu_max_pool(
        &mut self,
        x: Var,
        (kernel, bias): (Var, Option<Var>),
        options: WindowOptions,
        (pool_size, pool_options): ((usize, usize), WindowOptions),
    ) -> Result<Var> {
        let fused = self.fused_conv_pool(x, (kernel, bias), options, (pool_size, pool_options));
        let wants_grad = self.any_requires_grad([Some(x), Some(kernel), bias]);
        let fused = fused.filter(|(_, _, path)| {
            !wants_grad || (matches!(path, PooledPath::Direct(_)) && !self.any_requires_grad([Some(x)]))
        });
        let Some((g, pool, kernel_path)) = fused else {
            let y = self.conv2d_relu(x, kernel, bias, options)?;
            return self.max_pool2d(y, pool_size, pool_options);
        };
        let shape = [pool.batch, pool.out_h, pool.out_w, pool.channels];
        let op = Op::ConvReluMaxPool {
            x,
            kernel,
            bias,
            window: g,
            pool,
        };
        match kernel_path {
            PooledPath::Direct(direct) => Ok(self.push(op, &shape, |inputs, out, saved| {
                let (x, kernel) = (inputs.get(x).data(), inputs.get(kernel).data());
                let bias = bias.map(|b| inputs.get(b).data());
                let argmax = wants_grad.then(|| {
                    saved.resize_for(&shape);
                    saved.data_mut()
                });
                let run = || direct.forward_max_pooled(&g, &pool, x, kernel, bias, out.data_mut(), argmax);
                profile::time("conv2d.direct", false, run);
            })),
            PooledPath::Winograd(w) => {
                // The transformed kernel kept between calls, as `conv2d` keeps it.
                let key = self
                    .weights_key(kernel)
                    .map(|key| crate::rng::mix(key, w.kernel_len() as u64));
                Ok(self.push_cached(op, &shape, key, |inputs, out, saved, transformed| {
                    let (x, kernel) = (inputs.get(x).data(), inputs.get(kernel).data());
                    let bias = bias.map(|b| inputs.get(b).data());
                    saved.resize_for(&[w.kernel_len()]);
                    let kernel = (kernel, saved.data_mut(), transformed);
                    let run = || w.forward_max_pooled(&g, &pool, x, kernel, bias, out.data_mut());
                    profile::time("conv2d.winograd", false, run);
                }))
            }
        }
    }

    /// The convolution, pooling and kernel of [`Graph::conv2d_relu_max_pool`] when it runs
    /// as one pass: the kernel `conv2d` would use (so the sums are the same), if it folds the
    /// pooling. `None` also for shapes that do not fit: the two operations then name them in
    /// their errors.
    fn fused_conv_pool(
        &self,
        x: Var,
        (kernel, bias): (Var, Option<Var>),
        options: WindowOptions,
        (pool_size, pool_options): ((usize, usize), WindowOptions),
    ) -> Option<(Window2d, Window2d, PooledPath)> {
        let (sx, sk) = (self.shape(x), self.shape(kernel));
        if sk.len() != 4 || sx.len() != 4 || sk[2] != sx[3] || self.is_int8(x) {
            return None;
        }
        let filters = sk[3];
        if bias.is_some_and(|b| self.shape(b) != [filters]) {
            return None;
        }
        let g = window("conv2d", sx, (sk[0], sk[1]), options).ok()?;
        let output = [g.batch, g.out_h, g.out_w, filters];
        let pool = window("max_pool2d", &output, pool_size, pool_options).ok()?;
        let path = match winograd_plan(&g, filters, ComputeDtype::Float32) {
            Some(w) => w.max_pool_folds(&g, &pool).then_some(PooledPath::Winograd(w))?,
            None if kernels::max_pool_folds_forward(&g, &pool) => {
                PooledPath::Direct(direct_plan(&g, filters, ComputeDtype::Float32)?)
            }
            None => return None,
        };
        Some((g, pool, path))
    }

    /// [`Graph::conv2d_relu`] with the ReLU capped at `max_value` (Keras's `ReLU(max_value)`,
    /// ReLU6; infinite: [`Graph::conv2d_relu`] itself), in one operation: `predict`'s fusion of
    /// a convolution and the ReLU after it. With a gradient asked of it, a capped ReLU runs
    /// after the convolution.
    pub(crate) fn conv2d_capped_relu(
        &mut self,
        x: Var,
        (kernel, bias): (Var, Option<Var>),
        options: WindowOptions,
        max_value: f32,
    ) -> Result<Var> {
        if max_value == f32::INFINITY {
            return self.conv2d_relu(x, kernel, bias, options);
        }
        if self.any_requires_grad([Some(x), Some(kernel), bias]) {
            let y = self.conv2d(x, kernel, bias, options)?;
            let capped = super::UnaryOp::Rectifier {
                max_value,
                negative_slope: 0.0,
                threshold: 0.0,
            };
            return Ok(self.unary(capped, y));
        }
        self.conv2d_full(x, (kernel, bias), None, options, true, ComputeDtype::Float32, max_value)
    }

    /// [`Graph::conv2d_in`] with an optional `residual` added before the ReLU, and the ReLU
    /// capped at `cap` (infinite: not capped; finite only in passes without gradients and
    /// without a residual).
    #[allow(clippy::too_many_arguments)]
    fn conv2d_full(
        &mut self,
        x: Var,
        (kernel, bias): (Var, Option<Var>),
        residual: Option<Var>,
        options: WindowOptions,
        relu: bool,
        dtype: ComputeDtype,
        cap: f32,
    ) -> Result<Var> {
        assert!(
            cap == f32::INFINITY || (relu && residual.is_none()),
            "a capped ReLU fused into a convolution without a ReLU or with a residual"
        );
        let (sx, sk) = (self.dims(x), self.dims(kernel));
        if sk.len() != 4 || sx.len() != 4 || sk[2] != sx[3] {
            return Err(Error::ShapeMismatch {
                op: "conv2d",
                lhs: sx.to_vec(),
                rhs: sk.to_vec(),
            });
        }
        let filters = sk[3];
        if let Some(b) = bias
            && self.shape(b) != [filters]
        {
            return Err(Error::ShapeMismatch {
                op: "conv2d bias",
                lhs: sk.to_vec(),
                rhs: self.shape(b).to_vec(),
            });
        }
        let g = window("conv2d", &sx, (sk[0], sk[1]), options)?;
        let shape = [g.batch, g.out_h, g.out_w, filters];
        if let Some(r) = residual
            && self.shape(r) != shape
        {
            return Err(Error::ShapeMismatch {
                op: "conv2d residual",
                lhs: shape.to_vec(),
                rhs: self.shape(r).to_vec(),
            });
        }
        let op = Op::Conv2d {
            x,
            kernel,
            bias,
            window: g,
            relu,
            dtype,
            residual,
        };
        // Winograd's transformed kernel depends on the weights alone: an earlier pass with the
        // same weights left it in this node's saved state (inference calls `predict` again and
        // again with unchanged weights).
        // A pass no gradient is asked of may lay kernels out for the forward pass alone (the
        // backward pass reads the transformed kernel, or the receptive fields, in `saved`).
        let inference = !self.any_requires_grad([Some(x), Some(kernel), bias, residual]);
        let winograd = if inference {
            winograd_inference_plan(&g, filters, dtype)
        } else {
            winograd_plan(&g, filters, dtype)
        };
        // Likewise the packed kernel.
        let packs = winograd.is_none()
            && direct_plan(&g, filters, dtype).is_none()
            && packs_kernel(&g, filters, dtype)
            && inference;
        // The length tells the layouts apart: a pass with gradients after one without must
        // transform the kernel again.
        let saved_kernel_len = match (winograd, packs) {
            (Some(w), _) if w.runs_by_panels() => Some(w.by_panels_len()),
            (Some(w), _) => Some(w.kernel_len()),
            (None, true) => Some(g.patch_len() * filters),
            (None, false) => None,
        };
        let key = saved_kernel_len.and_then(|len| Some(crate::rng::mix(self.weights_key(kernel)?, len as u64)));
        let packs = packs && key.is_some();
        Ok(self.push_cached(op, &shape, key, |inputs, out, saved, transformed| {
            let (x, kernel) = (inputs.get(x).data(), inputs.get(kernel).data());
            let bias = bias.map(|b| inputs.get(b).data());
            let residual = residual.map(|r| inputs.get(r).data());
            if let Some(w) = winograd.filter(Winograd::runs_by_panels) {
                saved.resize_for(&[w.by_panels_len()]);
                let run = || {
                    let kernel = (kernel, saved.data_mut(), transformed);
                    w.forward_by_panels(&g, x, kernel, bias, residual, relu, out.data_mut())
                };
                profile::time("conv2d.winograd", false, run);
                return cap_values(out.data_mut(), cap);
            }
            if let Some(w) = winograd {
                saved.resize_for(&[w.kernel_len()]);
                let run = || {
                    w.forward(
                        &g,
                        x,
                        (kernel, saved.data_mut(), transformed),
                        bias,
                        residual,
                        relu,
                        out.data_mut(),
                    )
                };
                profile::time("conv2d.winograd", false, run);
                return cap_values(out.data_mut(), cap);
            }
            let activation = if relu {
                kernels::OutputActivation::Relu { max_value: cap }
            } else {
                kernels::OutputActivation::Linear
            };
            if let Some(direct) = direct_plan(&g, filters, dtype) {
                // The direct kernel adds no residual: it takes its sum in a pass after.
                let fused = if residual.is_none() {
                    activation
                } else {
                    kernels::OutputActivation::Linear
                };
                let run = || direct.forward(&g, x, kernel, bias, fused, out.data_mut());
                profile::time("conv2d.direct", false, run);
                if residual.is_some() {
                    kernels::bias_residual_relu(out.data_mut(), None, residual, relu);
                }
                return;
            }
            let (rows, patch) = (g.batch * g.positions(), g.patch_len());
            let finish = kernels::PointwiseFinish {
                bias,
                residual,
                activation,
            };
            if is_pointwise(&g) && dtype == ComputeDtype::Float32 && kernels::pointwise_handles(patch, filters) {
                return kernels::pointwise_conv(x, kernel, out.data_mut(), (rows, patch, filters), finish);
            }
            if packs {
                saved.resize_for(&[kernels::packed_conv_len(&g, filters)]);
                let run = || {
                    let kernel = (kernel, filters);
                    kernels::packed_conv(x, &g, kernel, saved.data_mut(), transformed, out.data_mut(), finish)
                };
                return profile::time("conv2d.packed", false, run);
            }
            // A 1×1 convolution with stride 1 reads each input pixel as its receptive field:
            // the input is already im2col's matrix, so it is not copied.
            let cols = if is_pointwise(&g) {
                x
            } else {
                // im2col: `saved` keeps the receptive fields for the kernel gradient.
                saved.resize_for(&[rows, patch]);
                profile::time("conv2d.im2col", false, || kernels::im2col(x, &g, saved.data_mut()));
                saved.data()
            };
            let out = out.data_mut();
            kernels::product(
                dtype,
                cols,
                Transpose::No,
                kernel,
                Transpose::No,
                out,
                rows,
                patch,
                filters,
                false,
            );
            kernels::bias_residual_relu(out, bias, residual, relu);
            cap_values(out, cap);
        }))
    }

    /// Max pooling with a `size` window over `(N, H, W, C)`.
    pub fn max_pool2d(&mut self, x: Var, size: (usize, usize), options: WindowOptions) -> Result<Var> {
        if self.is_int8(x) {
            // Between two int8 convolutions of a calibrated model: pooled as int8.
            return self.int8_max_pool2d(x, size, options);
        }
        let g = window("max_pool2d", self.shape(x), size, options)?;
        let shape = [g.batch, g.out_h, g.out_w, g.channels];
        Ok(
            self.push(Op::MaxPool2d { x, window: g }, &shape, |inputs, out, argmax| {
                argmax.resize_for(&shape);
                kernels::max_pool(inputs.get(x).data(), &g, out.data_mut(), argmax.data_mut());
            }),
        )
    }

    /// Max pooling of `x` zero-padded by `padding` (a `ZeroPadding2D`, then `max_pool2d`)
    /// without the padded copy: `predict`'s fusion. With a gradient asked of `x` (which the
    /// fused form cannot route), or an int8 `x`, the two run one after the other.
    pub(crate) fn zero_padded_max_pool2d(
        &mut self,
        x: Var,
        padding: super::Sides,
        size: (usize, usize),
        options: WindowOptions,
    ) -> Result<Var> {
        if self.is_int8(x) || self.any_requires_grad([Some(x)]) {
            let padded = self.zero_pad2d(x, padding)?;
            return self.max_pool2d(padded, size, options);
        }
        let g = padded_window("max_pool2d", self.shape(x), size, options, padding)?;
        let shape = [g.batch, g.out_h, g.out_w, g.channels];
        Ok(
            self.push(Op::MaxPool2d { x, window: g }, &shape, |inputs, out, argmax| {
                argmax.resize_for(&shape);
                kernels::max_pool_zero_padded(inputs.get(x).data(), &g, out.data_mut(), argmax.data_mut());
            }),
        )
    }

    /// Average pooling with a `size` window over `(N, H, W, C)`.
    pub fn avg_pool2d(&mut self, x: Var, size: (usize, usize), options: WindowOptions) -> Result<Var> {
        let g = window("avg_pool2d", self.shape(x), size, options)?;
        let shape = [g.batch, g.out_h, g.out_w, g.channels];
        Ok(self.push(Op::AvgPool2d { x, window: g }, &shape, |inputs, out, _| {
            kernels::avg_pool(inputs.get(x).data(), &g, out.data_mut());
        }))
    }
}

/// Kernel, bias and input gradients of a convolution (`op` is an `Op::Conv2d`).
pub(super) fn conv2d_backward(op: Op, inputs: &Inputs, node: Node, targets: &mut GradTargets, scratch: &mut Tensor) {
    let Op::Conv2d {
        x,
        kernel,
        bias,
        window: g,
        relu,
        dtype,
        residual,
    } = op
    else {
        unreachable!("conv2d_backward of {op:?}")
    };
    if let [Some((dr, fresh))] = targets.get_many([residual]) {
        // The residual was added before the ReLU: its gradient is the (masked) output's.
        let (y, dy) = (node.value.data(), node.grad.data());
        let mask = |dy: f32, y: f32| if !relu || y > 0.0 { dy } else { 0.0 };
        if fresh {
            kernels::zip_map_into(dr, dy, y, mask);
        } else {
            kernels::accumulate_zip(dr, dy, y, mask);
        }
    }
    let [dk, dx, db] = targets.get_many([Some(kernel), Some(x), bias]);
    if dk.is_none() && dx.is_none() && db.is_none() {
        return;
    }
    let (dk, db) = (cleared(dk), cleared(db));
    let filters = node.value.shape()[3];
    let (xv, y, dy) = (inputs.get(x).data(), node.value.data(), node.grad.data());
    if let Some(w) = winograd_plan(&g, filters, dtype) {
        scratch.resize_for(&[w.backward_scratch_len()]);
        let (saved, scratch) = (node.saved.data(), scratch.data_mut());
        let run = || {
            w.backward(
                &g,
                (xv, OutputGrad::Plain { y, dy }),
                relu,
                saved,
                scratch,
                (dk, db, dx),
            )
        };
        return profile::time("conv2d.winograd", true, run);
    }
    let dx = cleared(dx);
    let (rows, patch) = (g.batch * g.positions(), g.patch_len());
    let direct = direct_plan(&g, filters, dtype);
    let direct_len = direct.map_or(0, |d| d.backward_scratch_len());
    let input_cols_len = if dx.is_some() { rows * patch } else { 0 };
    let masked_len = if relu && (dx.is_some() || direct.is_none()) {
        rows * filters
    } else {
        0
    };
    scratch.resize_for(&[direct_len + input_cols_len + masked_len]);
    let (direct_sums, rest) = scratch.data_mut().split_at_mut(direct_len);
    let (input_cols, masked) = rest.split_at_mut(input_cols_len);
    if let Some(direct) = direct {
        profile::time("conv2d.direct", true, || {
            direct.backward(&g, xv, OutputGrad::Plain { y, dy }, relu, direct_sums, dk, db)
        });
        let Some(dx) = dx else { return };
        return im2col_input_grad(
            &g,
            inputs.get(kernel).data(),
            relu_masked(relu, masked, dy, y),
            input_cols,
            dx,
            dtype,
        );
    }
    // im2col: the products with the (masked) output gradient, then col2im for the input.
    let dy = relu_masked(relu, masked, dy, y);
    if let Some(db) = db {
        profile::time("conv2d.bias_grad", true, || kernels::accumulate_column_sums(db, dy));
    }
    if let Some(dk) = dk {
        profile::time("conv2d.kernel_grad", true, || {
            let cols = if is_pointwise(&g) { xv } else { node.saved.data() };
            kernels::product(
                dtype,
                cols,
                Transpose::Yes,
                dy,
                Transpose::No,
                dk,
                patch,
                rows,
                filters,
                true,
            );
        });
    }
    if let Some(dx) = dx {
        im2col_input_grad(&g, inputs.get(kernel).data(), dy, input_cols, dx, dtype);
    }
}

/// Whether max pooling over `pool` (its geometry), the only reader of the output of `conv` (an
/// `Op::Conv2d`), can be folded into the convolution's backward rule
/// ([`conv2d_pooled_backward`]): the pooling's windows are disjoint and inside the output, and
/// the convolution runs through Winograd's algorithm, or the direct kernel with an input that
/// needs no gradient (the first layer; its input gradient would need the output gradient).
/// The convolution's output gradient is then never written to memory.
pub(super) fn pool_folds_into(conv: Op, pool: &Window2d, input_needs_grad: bool) -> bool {
    let Op::Conv2d {
        window: g,
        dtype,
        residual: None,
        ..
    } = conv
    else {
        // A residual's gradient is the convolution's output gradient, which folding never writes.
        return false;
    };
    if dtype != ComputeDtype::Float32 {
        // The folded rules are the f32 kernels'; a bfloat16 convolution runs through im2col.
        return false;
    }
    let filters = pool.channels;
    let path = if Winograd::plan(&g, filters).is_some() {
        true
    } else {
        !input_needs_grad && Direct::plan(&g, filters).is_some()
    };
    path && kernels::pool_folds(pool)
}

/// The backward rule of a convolution (`op`, at `node`) whose output went only into the max
/// pooling `pool_op`, folded into it (see [`pool_folds_into`]): the convolution's output
/// gradient is rebuilt from the pooling's node `pool` (its output, recorded argmax and
/// gradient); the convolution's own gradient buffer is not used.
#[allow(clippy::too_many_arguments)]
pub(super) fn conv2d_pooled_backward(
    op: Op,
    pool_op: Op,
    inputs: &Inputs,
    node: Node,
    pool: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let (
        Op::Conv2d {
            x,
            kernel,
            bias,
            window: g,
            relu,
            ..
        },
        Op::MaxPool2d {
            window: pool_window, ..
        },
    ) = (op, pool_op)
    else {
        unreachable!("conv2d_pooled_backward of {op:?} and {pool_op:?}")
    };
    let [dk, db, dx] = targets.get_many([Some(kernel), bias, Some(x)]);
    let (dk, db) = (cleared(dk), cleared(db));
    let grad = OutputGrad::Pooled {
        pool: &pool_window,
        pooled: pool.value.data(),
        argmax: pool.saved.data(),
        dp: pool.grad.data(),
    };
    let filters = pool_window.channels;
    let xv = inputs.get(x).data();
    if let Some(w) = Winograd::plan(&g, filters) {
        let saved = node.saved.data();
        scratch.resize_for(&[w.backward_scratch_len()]);
        let scratch = scratch.data_mut();
        let run = || w.backward(&g, (xv, grad), relu, saved, scratch, (dk, db, dx));
        return profile::time("conv2d.winograd", true, run);
    }
    let direct = Direct::plan(&g, filters).expect("pool_folds_into checked the direct kernel");
    assert!(dx.is_none(), "pool_folds_into checked that the input needs no gradient");
    scratch.resize_for(&[direct.backward_scratch_len()]);
    profile::time("conv2d.direct", true, || {
        direct.backward(&g, xv, grad, relu, scratch.data_mut(), dk, db)
    });
}

/// The kernel and bias gradients of a ReLU convolution and max pooling recorded as one
/// operation ([`Graph::conv2d_relu_max_pool`] with a gradient asked): the direct kernel's
/// backward pass with the output gradient rebuilt from the pooling's, as
/// [`conv2d_pooled_backward`] does for the two operations.
pub(super) fn conv2d_relu_max_pool_backward(
    op: Op,
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let Op::ConvReluMaxPool {
        x,
        kernel,
        bias,
        window: g,
        pool,
    } = op
    else {
        unreachable!("conv2d_relu_max_pool_backward of {op:?}")
    };
    let [dk, db] = targets.get_many([Some(kernel), bias]);
    let (dk, db) = (cleared(dk), cleared(db));
    if dk.is_none() && db.is_none() {
        return;
    }
    let direct = Direct::plan(&g, pool.channels).expect("recorded with a gradient on the direct kernel alone");
    let grad = OutputGrad::Pooled {
        pool: &pool,
        pooled: node.value.data(),
        argmax: node.saved.data(),
        dp: node.grad.data(),
    };
    scratch.resize_for(&[direct.backward_scratch_len()]);
    let xv = inputs.get(x).data();
    profile::time("conv2d.direct", true, || {
        direct.backward(&g, xv, grad, true, scratch.data_mut(), dk, db)
    });
}

/// The output shape of a convolution of an `x`-shaped input with a `kernel`-shaped kernel, or
/// `None` when they do not fit (the convolution itself then reports why).
fn conv2d_output_shape(x: &[usize], kernel: &[usize], options: WindowOptions) -> Option<Vec<usize>> {
    if kernel.len() != 4 || x.len() != 4 || kernel[2] != x[3] {
        return None;
    }
    let g = window("conv2d", x, (kernel[0], kernel[1]), options).ok()?;
    Some(vec![g.batch, g.out_h, g.out_w, kernel[3]])
}

/// Whether a convolution is 1×1 with stride 1 (and so no padding): its im2col matrix is its
/// input as it is.
fn is_pointwise(g: &Window2d) -> bool {
    (g.window_h, g.window_w, g.stride_h, g.stride_w, g.pad_top, g.pad_left) == (1, 1, 1, 1, 0, 0)
}

/// Whether an f32 convolution that neither Winograd nor the direct kernel takes runs on a
/// kernel packed once (when no gradient is asked of it): every shape the packed product handles
/// but the 1×1 ones small enough for the pointwise kernel, which reads its kernel in place.
fn packs_kernel(g: &Window2d, filters: usize, dtype: ComputeDtype) -> bool {
    dtype == ComputeDtype::Float32
        && kernels::packed_handles(g.batch * g.positions(), g.patch_len(), filters, is_pointwise(g))
        && !(is_pointwise(g) && kernels::pointwise_handles(g.patch_len(), filters))
}

/// The kernel that runs [`Graph::conv2d_relu_max_pool`] in one pass.
enum PooledPath {
    Direct(Direct),
    Winograd(Winograd),
}

/// Winograd's plan for an f32 convolution (none in bfloat16: see [`Graph::conv2d_in`]).
fn winograd_plan(g: &Window2d, filters: usize, dtype: ComputeDtype) -> Option<Winograd> {
    (dtype == ComputeDtype::Float32)
        .then(|| Winograd::plan(g, filters))
        .flatten()
}

/// [`winograd_plan`] for a pass no gradient is asked of.
fn winograd_inference_plan(g: &Window2d, filters: usize, dtype: ComputeDtype) -> Option<Winograd> {
    (dtype == ComputeDtype::Float32)
        .then(|| Winograd::plan_inference(g, filters))
        .flatten()
}

/// The direct kernel's plan for an f32 convolution (none in bfloat16).
fn direct_plan(g: &Window2d, filters: usize, dtype: ComputeDtype) -> Option<Direct> {
    (dtype == ComputeDtype::Float32)
        .then(|| Direct::plan(g, filters))
        .flatten()
}

/// `values` capped at `cap` (after a ReLU: each `min(v, cap)`), in place; nothing when `cap`
/// is infinite.
fn cap_values(values: &mut [f32], cap: f32) {
    if cap < f32::INFINITY {
        let capped = kernels::OutputActivation::Relu { max_value: cap };
        // Rows of 16 values: any length, in parallel chunks.
        kernels::bias_activation(values, 16, None, capped);
    }
}

/// A gradient buffer to add into: a fresh one (stale contents) cleared first.
fn cleared(grad: Option<(&mut [f32], bool)>) -> Option<&mut [f32]> {
    grad.map(|(grad, fresh)| {
        if fresh {
            kernels::fill(grad, 0.0);
        }
        grad
    })
}

/// `dy`, or `dy` masked by the ReLU (`y > 0`) into `masked` when `relu`.
fn relu_masked<'a>(relu: bool, masked: &'a mut [f32], dy: &'a [f32], y: &[f32]) -> &'a [f32] {
    if !relu {
        return dy;
    }
    kernels::relu_mask(masked, dy, y);
    masked
}

/// `dx += col2im(dy · kernelᵀ)`, with `input_cols` (`rows × patch`) as working memory.
fn im2col_input_grad(
    g: &Window2d,
    kernel: &[f32],
    dy: &[f32],
    input_cols: &mut [f32],
    dx: &mut [f32],
    dtype: ComputeDtype,
) {
    let (rows, patch) = (g.batch * g.positions(), g.patch_len());
    let filters = dy.len() / rows;
    kernels::product(
        dtype,
        dy,
        Transpose::No,
        kernel,
        Transpose::Yes,
        input_cols,
        rows,
        filters,
        patch,
        false,
    );
    profile::time("conv2d.col2im", true, || kernels::col2im_accumulate(input_cols, g, dx));
}

/// Input gradient of max pooling: each output gradient goes to the window tap the forward
/// pass found the maximum at.
pub(super) fn max_pool2d_backward(x: Var, g: Window2d, _inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    if let Some((dx, fresh)) = targets.get_fresh(x) {
        kernels::max_pool_backward(node.saved.data(), node.grad.data(), &g, dx, fresh);
    }
}

/// Input gradient of average pooling: each output gradient spread over its window.
pub(super) fn avg_pool2d_backward(x: Var, g: Window2d, node: Node, targets: &mut GradTargets) {
    if let Some((dx, fresh)) = targets.get_fresh(x) {
        kernels::avg_pool_backward(node.grad.data(), &g, dx, fresh);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::gradcheck::max_gradient_error;
    use crate::autograd::{ParamStore, Tape};
    use crate::rng::Rng;

    fn random(rng: &mut Rng, shape: &[usize]) -> Tensor {
        let n = shape.iter().product();
        Tensor::from_vec(shape.to_vec(), (0..n).map(|_| rng.uniform(-1.0, 1.0)).collect()).unwrap()
    }

    /// Training's fused first layer (`conv2d_relu_max_pool` with a gradient asked of the
    /// kernel and bias alone) against the two operations it replaces: the same pooled values
    /// and the same kernel and bias gradients, bit for bit, for pooling windows of 4, 2 and 1
    /// taps over grey and colour images (16 filters: AVX-512's vectors; 8: AVX2's), on 1 and 2
    /// threads; and the fused operation is the one recorded.
    #[test]
    fn fused_first_layer_trains_as_the_two_operations() {
        // (pool window, channels, filters, image width): widths 10 (an output 8 wide, which
        // 2-wide windows tile) and 11 (a column no window covers).
        let cases = [
            ((2, 2), 1, 32, 10),
            ((2, 2), 1, 16, 11),
            ((1, 2), 3, 8, 11),
            ((2, 1), 1, 24, 10),
            ((1, 1), 3, 16, 11),
        ];
        for ((ph, pw), channels, filters, width) in cases {
            let mut rng = Rng::new(11);
            let mut params = ParamStore::new();
            let kernel = params.add("kernel", random(&mut rng, &[3, 3, channels, filters]), true);
            let bias = params.add("bias", random(&mut rng, &[filters]), true);
            let images = random(&mut rng, &[5, 11, width, channels]);
            let options = WindowOptions::default();
            let pool_options = WindowOptions {
                strides: (ph, pw),
                ..WindowOptions::default()
            };
            let pooled_shape = [5, 9 / ph, (width - 2) / pw, filters];
            let weights = random(&mut rng, &pooled_shape);
            // Two operations (`Some(false)`: the pooling folded into the convolution's backward
            // rule; `Some(true)`: not, as the convolution's output has a second reader, which
            // adds nothing to the loss) or the fused one (`None`).
            let run = |unfused: Option<bool>, (level, threads): (kernels::SimdLevel, usize)| {
                let pool = rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .start_handler(move |_| kernels::limit_simd_on_this_thread(Some(level)))
                    .build()
                    .unwrap();
                pool.install(|| {
                    let mut tape = Tape::new();
                    let (pooled, loss) = {
                        let mut g = Graph::new(&mut tape, &params, true);
                        let (x, k, b) = (g.constant(&images), g.param(kernel), g.param(bias));
                        let mut extra = None;
                        let y = match unfused {
                            None => {
                                let pool = ((ph, pw), pool_options);
                                let y = g.conv2d_relu_max_pool(x, (k, Some(b)), options, pool).unwrap();
                                assert_eq!(g.op(y).name(), "conv2d_relu_max_pool");
                                y
                            }
                            Some(second_reader) => {
                                let y = g.conv2d_relu(x, k, Some(b), options).unwrap();
                                if second_reader {
                                    extra = Some(g.scale(y, 0.0));
                                }
                                g.max_pool2d(y, (ph, pw), pool_options).unwrap()
                            }
                        };
                        assert_eq!(g.shape(y), pooled_shape);
                        let w = g.constant(&weights);
                        let weighted = g.mul(y, w).unwrap();
                        let mut loss = g.sum(weighted);
                        if let Some(extra) = extra {
                            let nothing = g.sum(extra);
                            loss = g.add(loss, nothing).unwrap();
                        }
                        (g.value(y).data().to_vec(), loss)
                    };
                    let mut store = params.clone();
                    tape.backward(loss, &mut store);
                    (
                        pooled,
                        store.grad(kernel).data().to_vec(),
                        store.grad(bias).data().to_vec(),
                    )
                })
            };
            use kernels::SimdLevel::{Avx2, Avx512, Scalar};
            for level in [Avx512, Avx2, Scalar] {
                let two_ops = run(Some(true), (level, 2));
                assert!(two_ops.0.contains(&0.0) && two_ops.0.iter().any(|&v| v > 0.0));
                for (variant, threads) in [(Some(false), 2), (None, 1), (None, 2)] {
                    let fused = run(variant, (level, threads));
                    let bits = |v: &[f32]| v.iter().map(|x| x.to_bits()).collect::<Vec<_>>();
                    let case = format!(
                        "{variant:?}, {level:?}, pool {ph}x{pw}, {channels} channels, {filters} filters, width {width}, {threads} threads"
                    );
                    assert_eq!(bits(&fused.0), bits(&two_ops.0), "pooled values, {case}");
                    assert_eq!(bits(&fused.1), bits(&two_ops.1), "kernel gradient, {case}");
                    assert_eq!(bits(&fused.2), bits(&two_ops.2), "bias gradient, {case}");
                }
            }
        }
    }

    /// A convolution with a residual added (inference's fused `Add`): the gradients of its
    /// input, kernel, bias and residual against central differences, on the Winograd path (3×3,
    /// stride 1), the direct kernel (1×1 over 8 channels) and im2col (3×3, stride 2), with and
    /// without the ReLU (whose mask must reach the residual's gradient too).
    #[test]
    fn residual_convolution_gradients_match_differences() {
        for (size, stride, padding) in [(3, 1, Padding::Same), (1, 1, Padding::Valid), (3, 2, Padding::Same)] {
            for relu in [false, true] {
                let mut rng = Rng::new(7);
                let mut params = ParamStore::new();
                let x = params.add("x", random(&mut rng, &[1, 5, 5, 8]), true);
                let kernel = params.add("kernel", random(&mut rng, &[size, size, 8, 8]), true);
                let bias = params.add("bias", random(&mut rng, &[8]), true);
                let side = 5usize.div_ceil(stride);
                // With the ReLU, residuals of ±20 keep every output far from its kink (the
                // convolution's part stays within about ±10), half the channels cut off.
                let mut residual = random(&mut rng, &[1, side, side, 8]);
                if relu {
                    let sign = |i: usize| if i % 8 < 4 { 20.0 } else { -20.0 };
                    residual
                        .data_mut()
                        .iter_mut()
                        .enumerate()
                        .for_each(|(i, r)| *r += sign(i));
                }
                let residual = params.add("residual", residual, true);
                let weights = random(&mut rng, &[1, side, side, 8]);
                let options = WindowOptions {
                    strides: (stride, stride),
                    padding,
                    ..WindowOptions::default()
                };
                let error = max_gradient_error(&mut params, 1e-2, |g| {
                    let (x, k, b, r) = (g.param(x), g.param(kernel), g.param(bias), g.param(residual));
                    let y = g.conv2d_residual(x, (k, Some(b)), r, options, relu)?;
                    let w = g.constant(&weights);
                    let weighted = g.mul(y, w)?;
                    Ok(g.sum(weighted))
                })
                .unwrap();
                assert!(error < 1e-2, "{size}x{size} stride {stride}, relu {relu}: {error}");
            }
        }
    }
}
