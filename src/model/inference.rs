//! Inference fast paths for `predict`: a convolution whose only reader is a
//! BatchNormalization runs with the normalization folded into its kernel and bias, and a plain
//! ReLU that is the normalization's only reader is fused into the convolution's output pass.
//! A ReLU that reads a convolution directly (an imported ONNX graph, whose exporter already
//! folded the normalization into the convolution's bias) is fused the same way.
//! The folded weights and the convolution's transformed kernel are kept on the tape between
//! calls while the weights keep their generation (`ParamStore::generation`), so repeated
//! predictions neither fold nor transform again. Training never takes these paths: the
//! folded form has no gradient for the normalization's weights, and training normalizes with
//! the batch's statistics.

use super::graph::Source;
use super::{Model, Network};
use crate::autograd::{Graph, ParamStore, Var};
use crate::error::{Error, Result};
use crate::layers::InferenceRole;

/// What `predict` does with one call of the network.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum Step {
    /// Runs the layer as it is.
    Plain,
    /// A convolution run with the BatchNormalization call `norm` folded in, and the ReLU
    /// call `relu` (when given) fused into it.
    Folded { norm: usize, relu: Option<usize> },
    /// A (not depthwise) convolution with the ReLU call `relu` that alone reads it fused into
    /// its output pass.
    ConvRelu { relu: usize },
    /// An int8 ReLU convolution with the max pooling call `pool` that alone reads it folded
    /// into its output pass (`Graph::int8_conv2d_relu_max_pool`).
    Int8ConvPool { pool: usize },
    /// A call fused into the run that starts at call `head`: its output is that run's.
    Fused { head: usize },
}

impl Network {
    /// Fills `plan` with one [`Step`] per call: which runs of calls `predict` fuses.
    pub(super) fn inference_plan(&self, params: &ParamStore, plan: &mut Vec<Step>) {
        plan.clear();
        plan.resize(self.calls.len(), Step::Plain);
        // Calls are numbered in order but their outputs need not be (a layer with several
        // outputs, such as a recurrent layer's states): size by the largest.
        let outputs = self
            .calls
            .iter()
            .map(|c| c.first_output + self.layers[c.layer].output_count())
            .max()
            .unwrap_or(0);
        // Per output: how many reads it has (model outputs count as one) and its last reader.
        let mut readers = vec![(0usize, usize::MAX); outputs];
        for (i, call) in self.calls.iter().enumerate() {
            for source in &call.inputs {
                if let Source::Output(o) = *source {
                    readers[o] = (readers[o].0 + 1, i);
                }
            }
        }
        // The model's outputs index all calls' outputs (a recurrent layer's state may be one).
        for &output in &self.outputs {
            readers[output].0 += 1;
        }
        // The call that alone reads call `i`'s single output, taking it as its only input.
        let sole_reader = |i: usize| {
            let call = &self.calls[i];
            if self.layers[call.layer].output_count() != 1 {
                return None;
            }
            let (count, reader) = readers[call.first_output];
            let only_input = self.calls.get(reader)?.inputs == [Source::Output(call.first_output)];
            (count == 1 && only_input).then_some(reader)
        };
        for i in 0..self.calls.len() {
            let role = self.layers[self.calls[i].layer].inference_role();
            if let Some(InferenceRole::ConvolutionRelu { kernel, .. }) = role {
                let pool = sole_reader(i).filter(|&pool| {
                    let role = self.layers[self.calls[pool].layer].inference_role();
                    matches!(role, Some(InferenceRole::MaxPool { size, options }) if crate::autograd::int8_pool_folds(size, options))
                });
                if let Some(pool) = pool
                    && params.quantized(kernel).is_some()
                    && self.calls[i].inputs.len() == 1
                {
                    plan[i] = Step::Int8ConvPool { pool };
                    plan[pool] = Step::Fused { head: i };
                }
                continue;
            }
            let Some(InferenceRole::Convolution {
                kernel,
                bias,
                depthwise,
                ..
            }) = role
            else {
                continue;
            };
            let Some(norm) = sole_reader(i) else { continue };
            let is_relu =
                |call: usize| self.layers[self.calls[call].layer].inference_role() == Some(InferenceRole::Relu);
            let plain = params.quantized(kernel).is_none() && self.calls[i].inputs.len() == 1;
            if is_relu(norm) && !depthwise && plain {
                plan[i] = Step::ConvRelu { relu: norm };
                plan[norm] = Step::Fused { head: i };
                continue;
            }
            let Some(InferenceRole::BatchNorm(weights)) = self.layers[self.calls[norm].layer].inference_role() else {
                continue;
            };
            let filters =
                Some(crate::autograd::folded_width(params.value(kernel).shape(), depthwise)).filter(|&f| f > 0);
            let per_filter = [
                Some(weights.mean),
                Some(weights.variance),
                weights.gamma,
                weights.beta,
                bias,
            ];
            let fits = per_filter
                .into_iter()
                .flatten()
                .all(|id| filters.is_some_and(|f| params.value(id).shape() == [f]));
            if !fits || !plain {
                continue;
            }
            let relu = sole_reader(norm).filter(|&r| is_relu(r));
            plan[i] = Step::Folded { norm, relu };
            plan[norm] = Step::Fused { head: i };
            if let Some(relu) = relu {
                plan[relu] = Step::Fused { head: i };
            }
        }
    }

    /// [`Network::forward`] for inference, fusing the calls `plan` says to.
    pub(super) fn forward_inference(
        &self,
        graph: &mut Graph,
        inputs: &[Var],
        outputs: &mut Vec<Var>,
        plan: &[Step],
    ) -> Result<()> {
        let (layers, calls) = (&self.layers, &self.calls);
        outputs.clear();
        let resolve = |source: &Source, outputs: &[Var]| match *source {
            Source::ModelInput(i) => inputs[i],
            Source::Output(o) => outputs[o],
        };
        for (i, call) in calls.iter().enumerate() {
            let layer = &layers[call.layer];
            match plan.get(i).copied().unwrap_or(Step::Plain) {
                Step::Folded { norm, relu } => {
                    let roles = (layer.inference_role(), layers[calls[norm].layer].inference_role());
                    let (
                        Some(InferenceRole::Convolution {
                            kernel,
                            bias,
                            options,
                            depthwise,
                        }),
                        Some(InferenceRole::BatchNorm(weights)),
                    ) = roles
                    else {
                        return Err(Error::Usage(format!(
                            "layer '{}' changed after predict planned it",
                            layer.name()
                        )));
                    };
                    let x = resolve(&call.inputs[0], outputs);
                    outputs.push(graph.conv2d_folded(
                        x,
                        (kernel, bias, depthwise),
                        weights,
                        options,
                        relu.is_some(),
                    )?);
                    continue;
                }
                Step::ConvRelu { .. } => {
                    let Some(InferenceRole::Convolution {
                        kernel,
                        bias,
                        options,
                        depthwise: false,
                    }) = layer.inference_role()
                    else {
                        return Err(Error::Usage(format!(
                            "layer '{}' changed after predict planned it",
                            layer.name()
                        )));
                    };
                    let x = resolve(&call.inputs[0], outputs);
                    let (kernel, bias) = (graph.param(kernel), bias.map(|b| graph.param(b)));
                    outputs.push(graph.conv2d_relu(x, kernel, bias, options)?);
                    continue;
                }
                Step::Int8ConvPool { pool } => {
                    let roles = (layer.inference_role(), layers[calls[pool].layer].inference_role());
                    let (
                        Some(InferenceRole::ConvolutionRelu { kernel, bias, options }),
                        Some(InferenceRole::MaxPool {
                            size,
                            options: pool_options,
                        }),
                    ) = roles
                    else {
                        return Err(Error::Usage(format!(
                            "layer '{}' changed after predict planned it",
                            layer.name()
                        )));
                    };
                    let x = resolve(&call.inputs[0], outputs);
                    let bias = bias.map(|b| graph.param(b));
                    outputs.push(graph.int8_conv2d_relu_max_pool(x, kernel, bias, options, size, pool_options)?);
                    continue;
                }
                Step::Fused { head } => {
                    outputs.push(outputs[calls[head].first_output]);
                    continue;
                }
                Step::Plain => {}
            }
            super::record_call(layer.as_ref(), call, &resolve, graph, outputs)?;
        }
        Ok(())
    }
}

impl Model {
    /// Turns `predict`'s fused inference paths (BatchNormalization folded into the
    /// convolution before it, a ReLU fused into it) on (the default) or off; off, `predict`
    /// runs every layer as it is, for comparing the two.
    #[doc(hidden)]
    pub fn set_inference_fusion(&mut self, enabled: bool) {
        self.workspace.unfused = !enabled;
    }
}
