//! MobileNetV2's inverted residual block as one inference operation
//! (`kernels::inverted_residual`): the expansion, the depthwise convolution and the
//! projection, with their biases, activations and the residual, a few output rows at a time.
//! Forward only: with a gradient asked, or shapes the kernel does not take, the layers are
//! recorded one by one instead (the same values within rounding).

use super::conv::{WindowOptions, padded_window};
use super::op::{Op, Var};
use super::spatial::Sides;
use super::tape::Graph;
use crate::error::Result;
use crate::kernels::{self, BlockPointwise, InvertedResidual, OutputActivation};

/// A 1×1 convolution's kernel `(1, 1, C, F)`, bias and activation.
pub(crate) type PointwiseVars = (Var, Option<Var>, OutputActivation);

/// The block's layers as graph values.
#[derive(Clone, Copy)]
pub(crate) struct BlockVars {
    /// The expansion (absent in MobileNetV2's first block).
    pub(crate) expand: Option<PointwiseVars>,
    /// The depthwise kernel `(KH, KW, E, 1)` and bias.
    pub(crate) depthwise: (Var, Option<Var>),
    /// The depthwise convolution's strides and padding, the zero padding folded into it, and
    /// its activation.
    pub(crate) window: (WindowOptions, Sides, OutputActivation),
    /// The projection; its activation applies after the residual.
    pub(crate) project: PointwiseVars,
}

impl Graph<'_> {
    /// The block applied to `x` `(N, H, W, C)`, plus `residual` before the projection's
    /// activation.
    pub(crate) fn inverted_residual(&mut self, x: Var, block: BlockVars, residual: Option<Var>) -> Result<Var> {
        let Some((kernel_block, shape)) = self.fused_block(x, block, residual) else {
            return self.block_layer_by_layer(x, block, residual);
        };
        let op = Op::InvertedResidual { x, residual };
        Ok(self.push(op, &shape, |inputs, out, _| {
            let value = |var: Var| inputs.get(var).data();
            let optional = |var: Option<Var>| var.map(value);
            let pointwise = |(kernel, bias, activation): PointwiseVars, (channels, filters)| BlockPointwise {
                kernel: value(kernel),
                bias: optional(bias),
                activation,
                channels,
                filters,
            };
            let (expand_dims, project_dims) = kernel_block.dims;
            let fused = InvertedResidual {
                expand: block.expand.map(|e| pointwise(e, expand_dims)),
                depthwise_kernel: value(block.depthwise.0),
                depthwise_bias: optional(block.depthwise.1),
                depthwise_activation: block.window.2,
                window: kernel_block.window,
                project: pointwise(block.project, project_dims),
            };
            kernels::inverted_residual(value(x), &fused, optional(residual), out.data_mut());
        }))
    }

    /// The block's window and its 1×1 convolutions' `(channels, filters)`, with the output
    /// shape, when it runs as one pass: no gradient asked, weights that are parameters or
    /// constants (whose buffers are kept), shapes that match and that the kernel takes.
    fn fused_block(&self, x: Var, block: BlockVars, residual: Option<Var>) -> Option<(KernelBlock, [usize; 4])> {
        let weights = [
            block.expand.map(|e| e.0),
            block.expand.and_then(|e| e.1),
            Some(block.depthwise.0),
            block.depthwise.1,
            Some(block.project.0),
            block.project.1,
        ];
        let reads = weights.into_iter().chain([Some(x), residual]);
        if self.any_requires_grad(reads) || self.is_int8(x) || !weights.into_iter().flatten().all(|w| self.is_weight(w))
        {
            return None;
        }
        let sx = self.dims(x).to_vec();
        let [n, h, w, c] = sx[..] else { return None };
        let pointwise_dims = |(kernel, bias, _): PointwiseVars, channels: usize| match self.dims(kernel)[..] {
            [1, 1, k, f] if k == channels && bias.is_none_or(|b| self.shape(b) == [f]) => Some((k, f)),
            _ => None,
        };
        let expand_dims = match block.expand {
            Some(e) => Some(pointwise_dims(e, c)?),
            None => None,
        };
        let expanded = expand_dims.map_or(c, |(_, f)| f);
        let sk = self.dims(block.depthwise.0).to_vec();
        let (options, sides, _) = block.window;
        let depthwise_fits = sk.len() == 4 && sk[2] == expanded && sk[3] == 1;
        if !depthwise_fits || block.depthwise.1.is_some_and(|b| self.shape(b) != [expanded]) {
            return None;
        }
        let window = padded_window("depthwise_conv2d", &[n, h, w, expanded], (sk[0], sk[1]), options, sides).ok()?;
        let project_dims = pointwise_dims(block.project, expanded)?;
        let shape = [n, window.out_h, window.out_w, project_dims.1];
        if residual.is_some_and(|r| self.shape(r) != shape) {
            return None;
        }
        let kernel_block = KernelBlock {
            window,
            dims: (expand_dims.unwrap_or((0, 0)), project_dims),
        };
        let described = kernel_block.describe();
        let fuses = kernels::inverted_residual_handles(&described) && kernels::inverted_residual_pays(&described);
        fuses.then_some((kernel_block, shape))
    }

    /// The block recorded layer by layer.
    fn block_layer_by_layer(&mut self, x: Var, block: BlockVars, residual: Option<Var>) -> Result<Var> {
        let expanded = match block.expand {
            Some((kernel, bias, activation)) => self.pointwise_conv2d(x, (kernel, bias), activation)?,
            None => x,
        };
        let (options, sides, activation) = block.window;
        let depthwise = self.depthwise_conv2d_fused(expanded, block.depthwise, options, sides, activation)?;
        let (kernel, bias, activation) = block.project;
        let Some(residual) = residual else {
            return self.pointwise_conv2d(depthwise, (kernel, bias), activation);
        };
        // The residual added in the convolution's output pass, as `predict` does for a
        // residual `Add` outside a block; a plain ReLU after it there too.
        let options = WindowOptions::default();
        match activation {
            OutputActivation::Linear => self.conv2d_residual(depthwise, (kernel, bias), residual, options, false),
            OutputActivation::Relu { max_value } if max_value == f32::INFINITY => {
                self.conv2d_residual(depthwise, (kernel, bias), residual, options, true)
            }
            OutputActivation::Relu { max_value } => {
                let sum = self.conv2d_residual(depthwise, (kernel, bias), residual, options, false)?;
                Ok(self.capped_relu(sum, Some(max_value)))
            }
        }
    }
}

/// What the kernel needs besides the values: the depthwise window and the 1×1 convolutions'
/// `(channels, filters)` (the expansion's `(0, 0)` when there is none).
#[derive(Clone, Copy)]
struct KernelBlock {
    window: kernels::Window2d,
    dims: ((usize, usize), (usize, usize)),
}

impl KernelBlock {
    /// The block with empty weights, for `kernels::inverted_residual_handles`.
    fn describe(&self) -> InvertedResidual<'static> {
        let (expand, project) = self.dims;
        let linear = OutputActivation::Linear;
        let pointwise = |(channels, filters)| BlockPointwise {
            kernel: &[],
            bias: None,
            activation: linear,
            channels,
            filters,
        };
        InvertedResidual {
            expand: (expand.1 > 0).then(|| pointwise(expand)),
            depthwise_kernel: &[],
            depthwise_bias: None,
            depthwise_activation: linear,
            window: self.window,
            project: pointwise(project),
        }
    }
}
