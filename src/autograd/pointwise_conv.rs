//! Inference's 1×1 convolution (MobileNet's expansion and projection layers) with the ReLU or
//! ReLU6 after it applied in the product's output pass, where the bias is added anyway: one
//! pass over the output instead of two, and no second image-sized buffer. Forward next to
//! backward (the gradient of the convolution and the activation it replaces).

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::kernels::{self, ComputeDtype, OutputActivation, Transpose};
use crate::tensor::Tensor;

impl Graph<'_> {
    /// `activation(conv(x, kernel) + bias)` for a 1×1 kernel `(1, 1, C, F)` with stride 1 over
    /// `x` `(N, H, W, C)`: one product of the `(N·H·W, C)` pixels with the `(C, F)` kernel.
    pub(crate) fn pointwise_conv2d(
        &mut self,
        x: Var,
        (kernel, bias): (Var, Option<Var>),
        activation: OutputActivation,
    ) -> Result<Var> {
        let (sx, sk) = (self.dims(x), self.dims(kernel));
        if sx.len() != 4 || sk.len() != 4 || sk[0] != 1 || sk[1] != 1 || sk[2] != sx[3] {
            return Err(Error::ShapeMismatch {
                op: "pointwise_conv2d",
                lhs: sx.to_vec(),
                rhs: sk.to_vec(),
            });
        }
        let (channels, filters) = (sk[2], sk[3]);
        if let Some(b) = bias
            && self.shape(b) != [filters]
        {
            return Err(Error::ShapeMismatch {
                op: "pointwise_conv2d bias",
                lhs: sk.to_vec(),
                rhs: self.shape(b).to_vec(),
            });
        }
        // The pixels already exist as a tensor, so their count fits in a usize.
        let pixels = sx[0] * sx[1] * sx[2];
        let shape = [sx[0], sx[1], sx[2], filters];
        let op = Op::PointwiseConv2d {
            x,
            kernel,
            bias,
            activation,
        };
        // A large kernel in a pass no gradient is asked of is packed once and kept in the
        // node's saved state while the weights stay the same (see `Graph::conv2d_in`).
        let packs = !kernels::pointwise_handles(channels, filters)
            && kernels::packed_handles(pixels, channels, filters, true)
            && !self.any_requires_grad([Some(x), Some(kernel), bias]);
        let key = packs
            .then(|| self.weights_key(kernel))
            .flatten()
            .map(|key| crate::rng::mix(key, (channels * filters) as u64));
        Ok(self.push_cached(op, &shape, key, |inputs, out, saved, packed| {
            let (x, kernel) = (inputs.get(x).data(), inputs.get(kernel).data());
            let bias = bias.map(|b| inputs.get(b).data());
            let out = out.data_mut();
            let finish = kernels::PointwiseFinish {
                bias,
                residual: None,
                activation,
            };
            if kernels::pointwise_handles(channels, filters) {
                return kernels::pointwise_conv(x, kernel, out, (pixels, channels, filters), finish);
            }
            if key.is_some() {
                let g = kernels::Window2d::pointwise(pixels, channels);
                saved.resize_for(&[kernels::packed_conv_len(&g, filters)]);
                return kernels::packed_conv(x, &g, (kernel, filters), saved.data_mut(), packed, out, finish);
            }
            let f32 = ComputeDtype::Float32;
            kernels::product(
                f32,
                x,
                Transpose::No,
                kernel,
                Transpose::No,
                out,
                pixels,
                channels,
                filters,
                false,
            );
            kernels::bias_activation(out, filters, bias, activation);
        }))
    }
}

/// Kernel, input and bias gradients of [`Graph::pointwise_conv2d`]: the output gradient masked
/// where the activation passes none, then the product's gradients.
pub(super) fn pointwise_conv2d_backward(
    (x, kernel, bias, activation): (Var, Var, Option<Var>, OutputActivation),
    inputs: &Inputs,
    node: Node,
    targets: &mut GradTargets,
    scratch: &mut Tensor,
) {
    let (xv, kv) = (inputs.get(x).data(), inputs.get(kernel).data());
    let filters = node.value.shape()[3];
    let pixels = node.value.len() / filters.max(1);
    let channels = xv.len() / pixels.max(1);
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
    let f32 = ComputeDtype::Float32;
    if let Some(dk) = targets.get(kernel) {
        // dK (C, F) += Xᵀ (C, pixels) · dY (pixels, F).
        kernels::product(
            f32,
            xv,
            Transpose::Yes,
            dy,
            Transpose::No,
            dk,
            channels,
            pixels,
            filters,
            true,
        );
    }
    if let Some(dx) = targets.get(x) {
        // dX (pixels, C) += dY (pixels, F) · Kᵀ (F, C).
        kernels::product(
            f32,
            dy,
            Transpose::No,
            kv,
            Transpose::Yes,
            dx,
            pixels,
            filters,
            channels,
            true,
        );
    }
    if let Some(b) = bias
        && let Some(db) = targets.get(b)
    {
        kernels::accumulate_column_sums(db, dy);
    }
}
