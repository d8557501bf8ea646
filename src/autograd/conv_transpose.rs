//! Transposed convolution (Keras's `Conv2DTranspose`), forward next to backward; the loops are
//! `kernels::conv_transpose*` (the gradient of a convolution, run forward).

use super::buffers::{GradTargets, Inputs, Node};
use super::conv::WindowOptions;
use super::op::{Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, Window2d, transposed_size};
use crate::tensor::Tensor;

/// The equivalent convolution (see `kernels::conv_transpose`) of a transposed convolution with
/// a `window` of `filters` outputs over an `(N, H, W, C)` `input`: its `height`, `width` and
/// `channels` are the output's, its `out_h` and `out_w` the input's. Errors name `op`, and
/// refuse what Keras refuses (`output_padding` not below the stride, strides and dilation
/// both above 1).
pub(crate) fn transpose_window(
    op: &str,
    input: &[usize],
    (window, filters): ((usize, usize), usize),
    options: WindowOptions,
    output_padding: Option<(usize, usize)>,
) -> Result<Window2d> {
    let mismatch = || Error::ShapeMismatch {
        op: "conv2d_transpose",
        lhs: input.to_vec(),
        rhs: vec![window.0, window.1, filters],
    };
    let [batch, height, width, channels] = <[usize; 4]>::try_from(input).map_err(|_| mismatch())?;
    if [height, width, channels, filters].contains(&0) {
        return Err(mismatch());
    }
    let (strides, dilation) = (options.strides, options.dilation);
    if [window.0, window.1, strides.0, strides.1, dilation.0, dilation.1].contains(&0) {
        return Err(Error::invalid(
            "strides",
            format!("window {window:?}, strides {strides:?}, dilation {dilation:?}"),
            format!("{op}: window sizes, strides and dilation rates must be at least 1"),
        ));
    }
    if strides.0.max(strides.1) > 1 && dilation.0.max(dilation.1) > 1 {
        return Err(Error::invalid(
            "dilation_rate",
            format!("{dilation:?}"),
            format!("{op}: strides {strides:?} above 1 cannot go with a dilation rate above 1 (as in Keras)"),
        ));
    }
    if let Some(extra) = output_padding
        && (extra.0 >= strides.0 || extra.1 >= strides.1)
    {
        return Err(Error::invalid(
            "output_padding",
            format!("{extra:?}"),
            format!("{op}: output_padding must be below the strides {strides:?} on each axis (as in Keras)"),
        ));
    }
    let axis = |size, k, s, d, extra: Option<usize>| transposed_size(size, k, s, d, options.padding, extra);
    let rows = axis(height, window.0, strides.0, dilation.0, output_padding.map(|p| p.0));
    let cols = axis(width, window.1, strides.1, dilation.1, output_padding.map(|p| p.1));
    let (Some((out_h, pad_top)), Some((out_w, pad_left))) = (rows, cols) else {
        return Err(mismatch());
    };
    Ok(Window2d {
        batch,
        height: out_h,
        width: out_w,
        channels: filters,
        window_h: window.0,
        window_w: window.1,
        stride_h: strides.0,
        stride_w: strides.1,
        dilation_h: dilation.0,
        dilation_w: dilation.1,
        pad_top,
        pad_left,
        out_h: height,
        out_w: width,
    })
}

impl Graph<'_> {
    /// Transposed convolution of `x` `(N, H, W, C)` with `kernel` `(KH, KW, F, C)` (Keras's
    /// layout) plus `bias` `(F)`, giving `(N, OH, OW, F)` with Keras's output size for
    /// `options` and `output_padding` (see `kernels::transposed_size`).
    pub fn conv2d_transpose(
        &mut self,
        x: Var,
        kernel: Var,
        bias: Option<Var>,
        options: WindowOptions,
        output_padding: Option<(usize, usize)>,
    ) -> Result<Var> {
        let (sx, sk) = (self.dims(x), self.dims(kernel));
        if sk.len() != 4 || sx.len() != 4 || sk[3] != sx[3] {
            return Err(Error::ShapeMismatch {
                op: "conv2d_transpose",
                lhs: sx.to_vec(),
                rhs: sk.to_vec(),
            });
        }
        let filters = sk[2];
        if let Some(b) = bias
            && self.shape(b) != [filters]
        {
            return Err(Error::ShapeMismatch {
                op: "conv2d_transpose bias",
                lhs: sk.to_vec(),
                rhs: self.shape(b).to_vec(),
            });
        }
        let g = transpose_window(
            "conv2d_transpose",
            &sx,
            ((sk[0], sk[1]), filters),
            options,
            output_padding,
        )?;
        let shape = [g.batch, g.height, g.width, filters];
        let op = Op::ConvTranspose2d {
            x,
            kernel,
            bias,
            window: g,
        };
        Ok(self.push(op, &shape, |inputs, out, cols| {
            let (x, kernel) = (inputs.get(x).data(), inputs.get(kernel).data());
            let bias = bias.map(|b| inputs.get(b).data());
            // The products before col2im, kept in the node's buffer so a training loop
            // reuses it from step to step.
            cols.resize_for(&[g.batch * g.positions(), g.patch_len()]);
            kernels::conv_transpose(x, kernel, bias, &g, cols.data_mut(), out.data_mut());
        }))
    }
}

/// Input, kernel and bias gradients of a transposed convolution.
pub(super) fn conv_transpose2d_backward(
    (x, kernel, bias, g): (Var, Var, Option<Var>, Window2d),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let grads = targets.get_many([Some(x), Some(kernel), bias]);
    let [dx, dk, db] = grads;
    if dx.is_none() && dk.is_none() && db.is_none() {
        return;
    }
    scratch.resize_for(&[g.batch * g.positions(), g.patch_len()]);
    let operands = (inputs.get(x).data(), inputs.get(kernel).data(), node.grad.data());
    kernels::conv_transpose_backward(operands, &g, scratch.data_mut(), (dx, dk, db));
}
