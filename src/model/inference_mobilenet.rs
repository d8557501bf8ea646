//! `predict`'s fusions for MobileNet's blocks. A depthwise convolution: a `ZeroPadding2D` read
//! only by it is folded into it (its taps in the padding are skipped, so the padded copy is
//! never written), a BatchNormalization read only by it is folded into its kernel and bias,
//! and a ReLU or ReLU6 after either is applied as the outputs are written. A 1×1 convolution
//! (the expansion layers): a BatchNormalization folded in the same way and a ReLU6 applied in
//! the product's output pass (a plain ReLU is fused by `inference.rs` already). One pass over
//! the output instead of up to four over images as large. The fused form equals the layers run
//! one by one within rounding (the folded normalization; padding and activation change no bit).
//!
//! A whole inverted residual block (the expansion and depthwise runs above, the 1×1 projection
//! after them, its normalization and the residual `Add`) runs as one step, a few output rows
//! at a time (`kernels::inverted_residual`): the expanded image, the block's largest tensor,
//! is never written whole.

use super::Network;
use super::graph::Source;
use crate::autograd::{BlockVars, Graph, ParamId, ParamStore, PointwiseVars, Sides, Var, WindowOptions};
use crate::error::{Error, Result};
use crate::kernels::OutputActivation;
use crate::layers::InferenceRole;

/// The calls fused into a 1×1 convolution: the BatchNormalization and the ReLU6 after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct PointwiseRun {
    /// The normalization that reads the convolution, folded into its weights.
    pub(super) norm: Option<usize>,
    /// The capped ReLU that reads the convolution or the normalization.
    pub(super) activation: usize,
}

/// The calls fused into a depthwise convolution: the `ZeroPadding2D` before it, the
/// BatchNormalization and the ReLU after it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct DepthwiseRun {
    /// The zero padding the convolution reads, folded in.
    pub(super) padding: Option<usize>,
    /// The normalization that reads the convolution, folded into its weights.
    pub(super) norm: Option<usize>,
    /// The ReLU (plain or capped) that reads the convolution or the normalization.
    pub(super) activation: Option<usize>,
}

/// An inverted residual block run as one step (`Graph::inverted_residual`): the expansion (a
/// planned [`PointwiseRun`]), the depthwise convolution (a planned [`DepthwiseRun`]) and the
/// 1×1 projection, with the normalization and ReLU after it or the residual `Add` (and the
/// ReLU after that).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct BlockRun {
    /// The expansion's call and plan, absent where the depthwise convolution reads the block's
    /// input itself.
    pub(super) expand: Option<(usize, PointwiseRun)>,
    /// The depthwise convolution's call and plan.
    pub(super) depthwise: (usize, DepthwiseRun),
    /// The projection's call.
    pub(super) project: usize,
    /// The normalization folded into the projection.
    pub(super) project_norm: Option<usize>,
    /// The ReLU (plain or capped) after the projection, or after the `Add`.
    pub(super) activation: Option<usize>,
    /// The residual `Add` that alone reads the projection.
    pub(super) add: Option<usize>,
}

impl BlockRun {
    /// The block's first call: where its input is read.
    pub(super) fn first(&self) -> usize {
        let (depthwise, run) = self.depthwise;
        self.expand
            .map_or(run.padding.unwrap_or(depthwise), |(expand, _)| expand)
    }
}

impl Network {
    /// Plans call `i` when it is a depthwise convolution: which of its neighbours run inside it
    /// (`None` when none does, or call `i` is not one). `sole_reader(c)` is the call that alone
    /// reads call `c`'s only output, as its only input.
    pub(super) fn plan_depthwise(
        &self,
        i: usize,
        params: &ParamStore,
        sole_reader: &dyn Fn(usize) -> Option<usize>,
    ) -> Option<DepthwiseRun> {
        let role = |call: usize| self.layers[self.calls[call].layer].inference_role();
        let Some(InferenceRole::Convolution {
            kernel,
            bias,
            depthwise: true,
            ..
        }) = role(i)
        else {
            return None;
        };
        if params.quantized(kernel).is_some() || self.calls[i].inputs.len() != 1 {
            return None;
        }
        let padding = match self.calls[i].inputs[0] {
            Source::Output(o) => self.calls[..i].iter().rposition(|c| c.first_output == o),
            Source::ModelInput(_) => None,
        }
        .filter(|&p| matches!(role(p), Some(InferenceRole::ZeroPadding(_))) && sole_reader(p) == Some(i));
        let filters = crate::autograd::folded_width(params.value(kernel).shape(), true);
        let norm = sole_reader(i).filter(|&n| self.folds_into(n, filters, bias, params));
        let activation = sole_reader(norm.unwrap_or(i))
            .filter(|&a| matches!(role(a), Some(InferenceRole::Relu | InferenceRole::CappedRelu { .. })));
        let run = DepthwiseRun {
            padding,
            norm,
            activation,
        };
        let fuses_any = run.padding.is_some() || run.norm.is_some() || run.activation.is_some();
        fuses_any.then_some(run)
    }

    /// Whether call `n` is a BatchNormalization that folds into a convolution with `filters`
    /// outputs and `bias`: all its per-filter weights have one value per filter.
    fn folds_into(&self, n: usize, filters: usize, bias: Option<ParamId>, params: &ParamStore) -> bool {
        match self.layers[self.calls[n].layer].inference_role() {
            Some(InferenceRole::BatchNorm(w)) => [Some(w.mean), Some(w.variance), w.gamma, w.beta, bias]
                .into_iter()
                .flatten()
                .all(|id| filters > 0 && params.value(id).shape() == [filters]),
            _ => false,
        }
    }

    /// Plans call `i` when it is a 1×1 convolution with stride 1 followed (after a
    /// BatchNormalization or not) by a ReLU6: the calls fused into it, or `None`.
    pub(super) fn plan_pointwise(
        &self,
        i: usize,
        params: &ParamStore,
        sole_reader: &dyn Fn(usize) -> Option<usize>,
    ) -> Option<PointwiseRun> {
        let role = |call: usize| self.layers[self.calls[call].layer].inference_role();
        let Some(InferenceRole::Convolution {
            kernel,
            bias,
            options,
            depthwise: false,
        }) = role(i)
        else {
            return None;
        };
        let shape = params.value(kernel).shape();
        let pointwise = matches!(shape, [1, 1, _, _]) && options.strides == (1, 1);
        if !pointwise || params.quantized(kernel).is_some() || self.calls[i].inputs.len() != 1 {
            return None;
        }
        let norm = sole_reader(i).filter(|&n| self.folds_into(n, shape[3], bias, params));
        let activation =
            sole_reader(norm.unwrap_or(i)).filter(|&a| matches!(role(a), Some(InferenceRole::CappedRelu { .. })));
        activation.map(|activation| PointwiseRun { norm, activation })
    }

    /// Records call `i`, a 1×1 convolution of `x`, with the calls of `run` fused into it.
    pub(super) fn forward_pointwise(&self, graph: &mut Graph, i: usize, x: Var, run: PointwiseRun) -> Result<Var> {
        let (kernel, bias, activation) = self.pointwise_vars(graph, i, run)?;
        graph.pointwise_conv2d(x, (kernel, bias), activation)
    }

    /// The kernel, bias (the normalization of `run` folded in) and activation of call `i`, a
    /// 1×1 convolution planned as `run`.
    fn pointwise_vars(&self, graph: &mut Graph, i: usize, run: PointwiseRun) -> Result<PointwiseVars> {
        let role = |call: usize| self.layers[self.calls[call].layer].inference_role();
        let Some(InferenceRole::Convolution {
            kernel,
            bias,
            depthwise: false,
            ..
        }) = role(i)
        else {
            return Err(self.changed(i));
        };
        let activation = match role(run.activation) {
            Some(InferenceRole::CappedRelu { max_value }) => OutputActivation::Relu { max_value },
            _ => return Err(self.changed(i)),
        };
        let (kernel, bias) = self.folded_vars(graph, (i, kernel, bias, false), run.norm)?;
        Ok((kernel, bias, activation))
    }

    /// The kernel and bias of convolution call `i` (`kernel`, `bias`; depthwise when said)
    /// with the BatchNormalization call `norm` folded in when given.
    fn folded_vars(
        &self,
        graph: &mut Graph,
        (i, kernel, bias, depthwise): (usize, ParamId, Option<ParamId>, bool),
        norm: Option<usize>,
    ) -> Result<(Var, Option<Var>)> {
        match norm.map(|n| self.layers[self.calls[n].layer].inference_role()) {
            None => Ok((graph.param(kernel), bias.map(|b| graph.param(b)))),
            Some(Some(InferenceRole::BatchNorm(weights))) => {
                let (kernel, bias) = graph.fold_normalization((kernel, bias, depthwise), weights)?;
                Ok((kernel, Some(bias)))
            }
            Some(_) => Err(self.changed(i)),
        }
    }

    /// The error for a fused call `i` whose layers no longer match the plan.
    fn changed(&self, i: usize) -> Error {
        Error::Usage(format!(
            "layer '{}' changed after predict planned it",
            self.layers[self.calls[i].layer].name()
        ))
    }

    /// Records call `i`, a depthwise convolution of `x` (the padding's input when the padding
    /// is folded in), with the calls of `run` fused into it.
    pub(super) fn forward_depthwise(&self, graph: &mut Graph, i: usize, x: Var, run: DepthwiseRun) -> Result<Var> {
        let ((kernel, bias), (options, sides, activation)) = self.depthwise_vars(graph, i, run)?;
        graph.depthwise_conv2d_fused(x, (kernel, bias), options, sides, activation)
    }

    /// The kernel and bias (the normalization of `run` folded in), window options, folded
    /// padding and activation of call `i`, a depthwise convolution planned as `run`.
    #[allow(clippy::type_complexity)]
    fn depthwise_vars(
        &self,
        graph: &mut Graph,
        i: usize,
        run: DepthwiseRun,
    ) -> Result<((Var, Option<Var>), (WindowOptions, Sides, OutputActivation))> {
        let role = |call: usize| self.layers[self.calls[call].layer].inference_role();
        let changed = || self.changed(i);
        let Some(InferenceRole::Convolution {
            kernel,
            bias,
            options,
            depthwise: true,
        }) = role(i)
        else {
            return Err(changed());
        };
        let sides = match run.padding.map(role) {
            None => ((0, 0), (0, 0)),
            Some(Some(InferenceRole::ZeroPadding(sides))) => sides,
            Some(_) => return Err(changed()),
        };
        let activation = match run.activation.map(|a| self.relu_cap(a)) {
            None => OutputActivation::Linear,
            Some(Some(max_value)) => OutputActivation::Relu { max_value },
            Some(None) => return Err(changed()),
        };
        let weights = self.folded_vars(graph, (i, kernel, bias, true), run.norm)?;
        Ok((weights, (options, sides, activation)))
    }

    /// Records the block `run`, reading the values `outputs` holds.
    pub(super) fn forward_block(
        &self,
        graph: &mut Graph,
        resolve: &dyn Fn(&Source) -> Var,
        run: BlockRun,
    ) -> Result<Var> {
        let (depthwise_call, depthwise_run) = run.depthwise;
        let x = resolve(&self.calls[run.first()].inputs[0]);
        let expand = match run.expand {
            Some((call, plan)) => Some(self.pointwise_vars(graph, call, plan)?),
            None => None,
        };
        let (depthwise, window) = self.depthwise_vars(graph, depthwise_call, depthwise_run)?;
        let Some(InferenceRole::Convolution {
            kernel,
            bias,
            depthwise: false,
            ..
        }) = self.layers[self.calls[run.project].layer].inference_role()
        else {
            return Err(self.changed(run.project));
        };
        let (kernel, bias) = self.folded_vars(graph, (run.project, kernel, bias, false), run.project_norm)?;
        let activation = match run.activation.map(|a| self.relu_cap(a)) {
            None => OutputActivation::Linear,
            Some(Some(max_value)) => OutputActivation::Relu { max_value },
            Some(None) => return Err(self.changed(run.project)),
        };
        let residual = match run.add {
            Some(add) => {
                // The `Add`'s input that is not the projection's (or its normalization's).
                let joined = Source::Output(self.calls[run.project_norm.unwrap_or(run.project)].first_output);
                let other = self.calls[add].inputs.iter().find(|&&s| s != joined);
                Some(resolve(other.ok_or_else(|| self.changed(add))?))
            }
            None => None,
        };
        let block = BlockVars {
            expand,
            depthwise,
            window,
            project: (kernel, bias, activation),
        };
        graph.inverted_residual(x, block, residual)
    }
}
