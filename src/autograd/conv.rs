//! Convolution and pooling operations on channels-last batches, forward next to backward.

use super::{GradTargets, Graph, Inputs, Node, Op, Var, profile};
use crate::error::{Error, Result};
use crate::kernels::{self, Padding, Transpose, Window2d, output_size};

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
    /// giving `(N, OH, OW, F)`. Lowered to one matrix product through im2col.
    pub fn conv2d(&mut self, x: Var, kernel: Var, bias: Option<Var>, options: WindowOptions) -> Result<Var> {
        let (sx, sk) = (self.shape(x).to_vec(), self.shape(kernel).to_vec());
        if sk.len() != 4 || sx.len() != 4 || sk[2] != sx[3] {
            return Err(Error::ShapeMismatch {
                op: "conv2d",
                lhs: sx,
                rhs: sk,
            });
        }
        let filters = sk[3];
        if let Some(b) = bias
            && self.shape(b) != [filters]
        {
            return Err(Error::ShapeMismatch {
                op: "conv2d bias",
                lhs: sk,
                rhs: self.shape(b).to_vec(),
            });
        }
        let g = window("conv2d", &sx, (sk[0], sk[1]), options)?;
        let rows = g.batch * g.positions();
        let shape = [g.batch, g.out_h, g.out_w, filters];
        Ok(self.push(
            Op::Conv2d {
                x,
                kernel,
                bias,
                window: g,
            },
            &shape,
            |inputs, out, cols| {
                cols.resize_for(&[rows, g.patch_len()]);
                profile::time("conv2d.im2col", false, || {
                    kernels::im2col(inputs.get(x).data(), &g, cols.data_mut())
                });
                let k = inputs.get(kernel).data();
                kernels::matmul(
                    cols.data(),
                    Transpose::No,
                    k,
                    Transpose::No,
                    out.data_mut(),
                    rows,
                    g.patch_len(),
                    filters,
                    false,
                );
                if let Some(b) = bias {
                    kernels::add_row_vector(out.data_mut(), inputs.get(b).data());
                }
            },
        ))
    }

    /// Max pooling with a `size` window over `(N, H, W, C)`.
    pub fn max_pool2d(&mut self, x: Var, size: (usize, usize), options: WindowOptions) -> Result<Var> {
        let g = window("max_pool2d", self.shape(x), size, options)?;
        let shape = [g.batch, g.out_h, g.out_w, g.channels];
        Ok(self.push(Op::MaxPool2d { x, window: g }, &shape, |inputs, out, _| {
            kernels::max_pool(inputs.get(x).data(), &g, out.data_mut());
        }))
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

/// Kernel, bias and input gradients of a convolution. `scratch` holds the im2col-shaped input
/// gradient between its product and its scatter.
pub(super) fn conv2d_backward(
    (x, kernel, bias, g): (Var, Var, Option<Var>, Window2d),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut crate::tensor::Tensor,
) {
    let (rows, patch) = (g.batch * g.positions(), g.patch_len());
    let filters = node.value.shape()[3];
    let dy = node.grad.data();
    let cols = node.saved.data();
    if let Some(dk) = targets.get(kernel) {
        profile::time("conv2d.kernel_grad", true, || {
            kernels::matmul(cols, Transpose::Yes, dy, Transpose::No, dk, patch, rows, filters, true);
        });
    }
    if let Some(b) = bias
        && let Some(db) = targets.get(b)
    {
        profile::time("conv2d.bias_grad", true, || kernels::accumulate_column_sums(db, dy));
    }
    if let Some(dx) = targets.get(x) {
        scratch.resize_for(&[rows, patch]);
        let k = inputs.get(kernel).data();
        kernels::matmul(
            dy,
            Transpose::No,
            k,
            Transpose::Yes,
            scratch.data_mut(),
            rows,
            filters,
            patch,
            false,
        );
        profile::time("conv2d.col2im", true, || {
            kernels::col2im_accumulate(scratch.data(), &g, dx)
        });
    }
}

/// Input gradient of max pooling: each output gradient goes to its window's maximum.
pub(super) fn max_pool2d_backward(x: Var, g: Window2d, inputs: &Inputs, node: Node, targets: &mut GradTargets) {
    if let Some(dx) = targets.get(x) {
        kernels::max_pool_backward(inputs.get(x).data(), node.value.data(), node.grad.data(), &g, dx);
    }
}

/// Input gradient of average pooling: each output gradient spread over its window.
pub(super) fn avg_pool2d_backward(x: Var, g: Window2d, node: Node, targets: &mut GradTargets) {
    if let Some(dx) = targets.get(x) {
        kernels::avg_pool_backward(node.grad.data(), &g, dx);
    }
}
