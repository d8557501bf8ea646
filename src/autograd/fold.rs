//! Inference only: a convolution with the BatchNormalization after it folded into its kernel
//! and bias, `conv(x, k·s) + (b − mean)·s + β` with `s = γ/√(variance + ε)` per filter, which
//! equals `BN(conv(x, k) + b)` up to rounding. The folded weights are recorded as constants
//! derived from the weights alone ([`Graph::weights_constant`]), so a later pass with the same
//! weights keeps them, and the convolution's own caches (Winograd's transformed kernel) see a
//! kernel that does not change between calls.

use super::conv::WindowOptions;
use super::op::Var;
use super::params::ParamId;
use super::tape::Graph;
use crate::error::{Error, Result};
use crate::rng::mix;

/// The weights of a BatchNormalization in its inference form,
/// `(x − mean)/√(variance + ε)·γ + β`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FoldedNorm {
    /// γ, if the layer scales.
    pub gamma: Option<ParamId>,
    /// β, if the layer centers.
    pub beta: Option<ParamId>,
    /// The moving mean.
    pub mean: ParamId,
    /// The moving variance.
    pub variance: ParamId,
    /// ε.
    pub epsilon: f32,
}

impl Graph<'_> {
    /// `norm(conv(x, kernel) + bias)`, plus `residual` when given (a residual connection's
    /// `Add`), then a ReLU capped at `relu`'s value when given (infinite: a plain ReLU), as one
    /// convolution with the normalization folded into its weights; a depthwise convolution
    /// when `depthwise` (its output channel `c·M + m` is the flattened last two axes of its
    /// kernel, so the folding is the same). For inference: no gradient reaches the weights
    /// through the folded ones.
    pub(crate) fn conv2d_folded(
        &mut self,
        x: Var,
        (kernel, bias, depthwise): (ParamId, Option<ParamId>, bool),
        norm: FoldedNorm,
        options: WindowOptions,
        relu: Option<f32>,
        residual: Option<Var>,
    ) -> Result<Var> {
        let (folded_kernel, folded_bias) = self.fold_normalization((kernel, bias, depthwise), norm)?;
        let folded = (folded_kernel, Some(folded_bias));
        let plain_relu = relu == Some(f32::INFINITY);
        match (depthwise, residual) {
            (false, Some(residual)) if relu.is_none() || plain_relu => {
                self.conv2d_residual(x, folded, residual, options, plain_relu)
            }
            (false, None) => match relu {
                Some(cap) => self.conv2d_capped_relu(x, folded, options, cap),
                None => self.conv2d(x, folded_kernel, Some(folded_bias), options),
            },
            (false, Some(residual)) => {
                let y = self.conv2d_residual(x, folded, residual, options, false)?;
                Ok(self.capped_relu(y, relu))
            }
            (true, residual) => {
                let mut y = self.depthwise_conv2d(x, folded_kernel, Some(folded_bias), options)?;
                if let Some(residual) = residual {
                    y = self.add(y, residual)?;
                }
                Ok(self.capped_relu(y, relu))
            }
        }
    }

    /// `y` through a ReLU capped at `cap` (infinite: a plain ReLU), or as it is without one.
    pub(super) fn capped_relu(&mut self, y: Var, cap: Option<f32>) -> Var {
        match cap {
            None => y,
            Some(cap) if cap == f32::INFINITY => self.unary(super::UnaryOp::Relu, y),
            Some(max_value) => {
                let capped = super::UnaryOp::Rectifier {
                    max_value,
                    negative_slope: 0.0,
                    threshold: 0.0,
                };
                self.unary(capped, y)
            }
        }
    }

    /// The kernel and bias of a convolution (depthwise when `depthwise`) with the
    /// normalization `norm` after it folded in, as constants kept between passes with the
    /// same weights.
    pub(crate) fn fold_normalization(
        &mut self,
        (kernel, bias, depthwise): (ParamId, Option<ParamId>, bool),
        norm: FoldedNorm,
    ) -> Result<(Var, Var)> {
        let params = self.params;
        let kernel_shape = params.value(kernel).shape().to_vec();
        let filters = folded_width(&kernel_shape, depthwise);
        let per_filter = [Some(norm.mean), Some(norm.variance), norm.gamma, norm.beta, bias];
        if per_filter
            .into_iter()
            .flatten()
            .any(|id| params.value(id).shape() != [filters])
        {
            return Err(Error::ShapeMismatch {
                op: "conv2d_folded",
                lhs: kernel_shape,
                rhs: params.value(norm.mean).shape().to_vec(),
            });
        }
        // One scale per filter, computed as the normalization computes its `1/√(var + ε)`.
        let scale = |f: usize| {
            let inv_std = 1.0 / (params.value(norm.variance).data()[f] + norm.epsilon).sqrt();
            norm.gamma.map_or(inv_std, |g| inv_std * params.value(g).data()[f])
        };
        let ids = [
            Some(kernel),
            bias,
            norm.gamma,
            norm.beta,
            Some(norm.mean),
            Some(norm.variance),
        ];
        let key = ids.into_iter().fold(norm.epsilon.to_bits() as u64, |key, id| {
            mix(key, id.map_or(u64::MAX, |id| id.0 as u64))
        });
        let (kernel_values, bias_values) = (params.value(kernel).data(), bias.map(|b| params.value(b).data()));
        let (mean, beta) = (
            params.value(norm.mean).data(),
            norm.beta.map(|b| params.value(b).data()),
        );
        let folded_kernel = self.weights_constant(mix(key, 1), &kernel_shape, |out| {
            let scales: Vec<f32> = (0..filters).map(scale).collect();
            for (out, k) in out
                .chunks_exact_mut(filters.max(1))
                .zip(kernel_values.chunks_exact(filters.max(1)))
            {
                out.iter_mut().zip(k).zip(&scales).for_each(|((o, &k), &s)| *o = k * s);
            }
        });
        let folded_bias = self.weights_constant(mix(key, 2), &[filters], |out| {
            for (f, o) in out.iter_mut().enumerate() {
                let b = bias_values.map_or(0.0, |b| b[f]);
                *o = (b - mean[f]) * scale(f) + beta.map_or(0.0, |beta| beta[f]);
            }
        });
        Ok((folded_kernel, folded_bias))
    }
}

/// The output channels of a convolution with a kernel of `shape`: its last axis, or the last
/// two for a depthwise kernel. Zero for a kernel of rank below 2 (no convolution's).
pub(crate) fn folded_width(shape: &[usize], depthwise: bool) -> usize {
    match (shape, depthwise) {
        ([.., c, m], true) => c.saturating_mul(*m),
        ([.., f], false) => *f,
        _ => 0,
    }
}
