//! Depthwise convolution (Keras's `DepthwiseConv2D`, the first half of `SeparableConv2D`),
//! forward next to backward; the loops are `kernels::depthwise_conv*`.

use super::buffers::{GradTargets, Inputs, Node};
use super::conv::{WindowOptions, padded_window};
use super::op::{Op, Var};
use super::spatial::Sides;
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, OutputActivation, Window2d};
use crate::tensor::Tensor;

impl Graph<'_> {
    /// Depthwise convolution of `x` `(N, H, W, C)` with `kernel` `(KH, KW, C, M)` plus `bias`
    /// `(C·M)`: each channel under its own `M` filters, giving `(N, OH, OW, C·M)` with output
    /// channel `c·M + m` from input channel `c` (TensorFlow's order).
    pub fn depthwise_conv2d(&mut self, x: Var, kernel: Var, bias: Option<Var>, options: WindowOptions) -> Result<Var> {
        let no_padding = ((0, 0), (0, 0));
        self.depthwise_conv2d_fused(x, (kernel, bias), options, no_padding, OutputActivation::Linear)
    }

    /// [`Graph::depthwise_conv2d`] of `x` with `padding` zero rows and columns around each
    /// image (a `ZeroPadding2D` before the convolution, folded in: the padding is skipped, not
    /// written) and `activation` applied as the outputs are written (a ReLU after it, fused):
    /// one pass over the output instead of three. Its gradient is the unfused layers'.
    pub(crate) fn depthwise_conv2d_fused(
        &mut self,
        x: Var,
        (kernel, bias): (Var, Option<Var>),
        options: WindowOptions,
        padding: Sides,
        activation: OutputActivation,
    ) -> Result<Var> {
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
        let g = padded_window("depthwise_conv2d", &sx, (sk[0], sk[1]), options, padding)?;
        let shape = [g.batch, g.out_h, g.out_w, width];
        let op = Op::DepthwiseConv2d {
            x,
            kernel,
            bias,
            window: g,
            activation,
        };
        Ok(self.push(op, &shape, |inputs, out, _| {
            let (x, kernel) = (inputs.get(x).data(), inputs.get(kernel).data());
            let bias = bias.map(|b| inputs.get(b).data());
            kernels::depthwise_conv(x, kernel, bias, out.data_mut(), &g, (multiplier, activation));
        }))
    }
}

/// Kernel, input and bias gradients of a depthwise convolution (and of the activation fused
/// into it: the output gradient is first masked where the activation passes none).
pub(super) fn depthwise_conv2d_backward(
    (x, kernel, bias, g, activation): (Var, Var, Option<Var>, Window2d, OutputActivation),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let (xv, kv) = (inputs.get(x), inputs.get(kernel));
    let dy = if activation == OutputActivation::Linear {
        node.grad.data()
    } else {
        scratch.resize_for(node.grad.shape());
        let masked = scratch.data_mut();
        for ((m, &d), &y) in masked.iter_mut().zip(node.grad.data()).zip(node.value.data()) {
            *m = if activation.passes(y) { d } else { 0.0 };
        }
        scratch.data()
    };
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::autograd::ParamStore;
    use crate::autograd::gradcheck::max_gradient_error;
    use crate::kernels::Padding;
    use crate::rng::Rng;

    fn uniform(shape: &[usize], low: f32, high: f32, seed: u64) -> Tensor {
        let mut rng = Rng::new(seed);
        let n = shape.iter().product();
        Tensor::from_vec(shape.to_vec(), (0..n).map(|_| rng.uniform(low, high)).collect()).unwrap()
    }

    /// The fused form (padding folded in, ReLU6-like cap applied as it writes) has the
    /// gradient of the layers it replaces: checked by central differences through the 3×3
    /// vector path (8 channels) and the plain loop (multiplier 2).
    #[test]
    fn fused_padding_and_capped_relu_have_the_right_gradient() {
        for (multiplier, strides) in [(1, (2, 2)), (1, (1, 1)), (2, (2, 1))] {
            let mut params = ParamStore::new();
            let x = params.add("x", uniform(&[2, 5, 6, 8], -1.0, 1.0, 1), true);
            let kernel = params.add("kernel", uniform(&[3, 3, 8, multiplier], -0.5, 0.5, 2), true);
            let bias = params.add("bias", uniform(&[8 * multiplier], -0.2, 0.2, 3), true);
            let options = WindowOptions {
                strides,
                dilation: (1, 1),
                padding: Padding::Valid,
            };
            let activation = OutputActivation::Relu { max_value: 0.6 };
            let error = max_gradient_error(&mut params, 1e-3, |g| {
                let (x, k, b) = (g.param(x), g.param(kernel), g.param(bias));
                let y = g.depthwise_conv2d_fused(x, (k, Some(b)), options, ((1, 0), (0, 1)), activation)?;
                let w = g.constant(&uniform(g.shape(y), -1.0, 1.0, 4));
                let weighted = g.mul(y, w)?;
                Ok(g.sum(weighted))
            })
            .unwrap();
            assert!(
                error < 1e-2,
                "multiplier {multiplier}, strides {strides:?}: error {error}"
            );
        }
    }
}
