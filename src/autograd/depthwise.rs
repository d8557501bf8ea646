//! Depthwise convolution (Keras's `DepthwiseConv2D`, the first half of `SeparableConv2D`),
//! forward next to backward; the loops are `kernels::depthwise_conv*`.

use super::buffers::{GradTargets, Inputs, Node};
use super::conv::{WindowOptions, window};
use super::op::{Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, Window2d};

impl Graph<'_> {
    /// Depthwise convolution of `x` `(N, H, W, C)` with `kernel` `(KH, KW, C, M)` plus `bias`
    /// `(C·M)`: each channel under its own `M` filters, giving `(N, OH, OW, C·M)` with output
    /// channel `c·M + m` from input channel `c` (TensorFlow's order).
    pub fn depthwise_conv2d(&mut self, x: Var, kernel: Var, bias: Option<Var>, options: WindowOptions) -> Result<Var> {
        let (sx, sk) = (self.dims(x), self.dims(kernel));
        if sk.len() != 4 || sx.len() != 4 || sk[2] != sx[3] {
            return Err(Error::ShapeMismatch {
                op: "depthwise_conv2d",
                lhs: sx.to_vec(),
                rhs: sk.to_vec(),
            });
        }
        let multiplier = sk[3];
        let width = sx[3].checked_mul(multiplier).ok_or_else(|| Error::ShapeMismatch {
            op: "depthwise_conv2d",
            lhs: sx.to_vec(),
            rhs: sk.to_vec(),
        })?;
        if let Some(b) = bias
            && self.shape(b) != [width]
        {
            return Err(Error::ShapeMismatch {
                op: "depthwise_conv2d bias",
                lhs: sk.to_vec(),
                rhs: self.shape(b).to_vec(),
            });
        }
        let g = window("depthwise_conv2d", &sx, (sk[0], sk[1]), options)?;
        let shape = [g.batch, g.out_h, g.out_w, width];
        let op = Op::DepthwiseConv2d {
            x,
            kernel,
            bias,
            window: g,
        };
        Ok(self.push(op, &shape, |inputs, out, _| {
            let (x, kernel) = (inputs.get(x).data(), inputs.get(kernel).data());
            let bias = bias.map(|b| inputs.get(b).data());
            kernels::depthwise_conv(x, kernel, bias, out.data_mut(), &g, multiplier);
        }))
    }
}

/// Kernel, input and bias gradients of a depthwise convolution.
pub(super) fn depthwise_conv2d_backward(
    (x, kernel, bias, g): (Var, Var, Option<Var>, Window2d),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
) {
    let (xv, kv, dy) = (inputs.get(x), inputs.get(kernel), node.grad.data());
    let multiplier = kv.shape()[3];
    if let Some(dk) = targets.get(kernel) {
        kernels::depthwise_conv_kernel_grad(xv.data(), dy, dk, &g, multiplier);
    }
    if let Some(dx) = targets.get(x) {
        kernels::depthwise_conv_input_grad(dy, kv.data(), dx, &g, multiplier);
    }
    if let Some(b) = bias
        && let Some(db) = targets.get(b)
    {
        kernels::accumulate_column_sums(db, dy);
    }
}
