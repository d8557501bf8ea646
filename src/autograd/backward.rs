//! The backward pass: [`Tape::backward`] walks the record in reverse and runs each operation's
//! rule through [`run_rule`], the one place that maps an [`Op`] to the file that differentiates
//! it. It sits above every rule file; none of them names it.

use super::buffers::{GradTargets, Inputs, Node};
use super::op::{Op, Var};
use super::params::ParamStore;
use super::tape::{NOT_FOLDED, Tape};
use super::{
    attention, concat, conv, conv_transpose, depthwise, embedding, losses, normalization, ops, permute, pointwise_conv,
    profile, recurrent, sequence, spatial,
};
use crate::tensor::Tensor;

impl Tape {
    /// Fills the gradient of every parameter that `loss` depends on with `d loss / d param`.
    ///
    /// `loss` must be a one-element value recorded on this tape since the last
    /// [`Graph::new`](crate::autograd::Graph::new). Gradients are computed afresh (not
    /// accumulated across calls), as Keras does.
    pub fn backward(&mut self, loss: Var, params: &mut ParamStore) {
        let (param_values, param_grads) = params.split_for_backward();
        // Gradient buffers, the parameters' included, are cleared when a backward rule first
        // asks for them (or not at all when the rule overwrites every element, as a Dense
        // layer's kernel gradient does), not here: one pass over memory fewer, and no writes
        // from this thread to memory another thread's share of a product then fills.
        self.param_grad_live.clear();
        self.param_grad_live.resize(param_grads.len(), true);
        profile::time("zero_grads", true, || {
            for i in 0..=loss.0 {
                self.grad_live[i] = false;
                match self.ops[i] {
                    Op::Param(id) => self.param_grad_live[id.0] = false,
                    // Values and gradients are separate vectors, so no copy of the shape.
                    _ if self.requires_grad[i] => self.grads[i].resize_for(self.values[i].shape()),
                    _ => {}
                }
            }
        });
        self.folded_pool[..=loss.0].fill(NOT_FOLDED);
        if !self.requires_grad[loss.0] {
            self.clear_unreached_grads(loss, param_grads);
            return;
        }
        self.readers[..=loss.0].fill(0);
        for op in &self.ops[..=loss.0] {
            for input in op.inputs().into_iter().flatten() {
                self.readers[input.0] += 1;
            }
        }
        self.grads[loss.0].data_mut().fill(1.0);
        self.grad_live[loss.0] = true;
        for i in (0..=loss.0).rev() {
            if !self.grad_live[i] {
                continue;
            }
            // The pool's other threads spin through the whole pass (see the inference pass).
            crate::kernels::keep_others_awake();
            let op = self.ops[i];
            // A max pooling that is the only reader of a convolution's output hands its
            // gradient straight to the convolution's rule, which rebuilds its own output
            // gradient from it row by row instead of reading one from memory.
            if let Op::MaxPool2d { x, window } = op
                && self.readers[x.0] == 1
                && conv::pool_folds_into(self.ops[x.0], &window, self.input_needs_grad(x))
            {
                self.folded_pool[x.0] = i;
                self.grad_live[x.0] = true;
                continue;
            }
            let (grads_before, grads_rest) = self.grads.split_at_mut(i);
            let inputs = Inputs {
                values: &self.values,
                ops: &self.ops,
                params: param_values,
                reads: None,
                now: i,
            };
            let mut targets = GradTargets {
                node_grads: grads_before,
                live: &mut self.grad_live[..i],
                requires_grad: &self.requires_grad,
                ops: &self.ops,
                param_grads,
                param_live: &mut self.param_grad_live,
            };
            let node = Node {
                value: &self.values[i],
                saved: &self.saved[i],
                grad: &grads_rest[0],
            };
            let scratch = &mut self.scratch[i];
            let folded = self.folded_pool[i];
            profile::time(op.name(), true, || {
                if folded == NOT_FOLDED {
                    return run_rule(op, &inputs, node, &mut targets, scratch);
                }
                let pool = Node {
                    value: &self.values[folded],
                    saved: &self.saved[folded],
                    grad: &grads_rest[folded - i],
                };
                conv::conv2d_pooled_backward(op, self.ops[folded], &inputs, node, pool, &mut targets, scratch)
            });
        }
        self.clear_unreached_grads(loss, param_grads);
    }

    /// Whether the first input of `var`'s operation (a convolution's image) needs a gradient.
    fn input_needs_grad(&self, var: Var) -> bool {
        self.ops[var.0].inputs()[0].is_some_and(|input| self.requires_grad[input.0])
    }

    /// Zeros the gradient buffers no backward rule reached, so [`Tape::grad`] and the
    /// parameters' gradients read zeros there.
    fn clear_unreached_grads(&mut self, loss: Var, param_grads: &mut [Tensor]) {
        for i in 0..=loss.0 {
            match self.ops[i] {
                Op::Param(id) if !self.param_grad_live[id.0] => {
                    param_grads[id.0].data_mut().fill(0.0);
                    self.param_grad_live[id.0] = true;
                }
                Op::Param(_) => {}
                _ if self.requires_grad[i] && !self.grad_live[i] => self.grads[i].data_mut().fill(0.0),
                _ => {}
            }
        }
    }
}

/// Runs the backward rule of `op`: adds its inputs' gradients into `targets`.
fn run_rule(op: Op, inputs: &Inputs, node: Node, targets: &mut GradTargets, scratch: &mut Tensor) {
    match op {
        // Int8 products have no gradient: `fit` refuses a quantized model before recording.
        Op::Constant | Op::Param(_) | Op::Int8 { .. } | Op::InvertedResidual { .. } => {}
        Op::ConvReluMaxPool { .. } => conv::conv2d_relu_max_pool_backward(op, inputs, node, targets, scratch),
        Op::MatMul(a, b) => ops::matmul_backward(a, b, inputs, node, targets),
        Op::Linear { x, kernel, bias, dtype } => ops::linear_backward(x, kernel, bias, dtype, inputs, node, targets),
        Op::Binary(kind, a, b) => ops::binary_backward(kind, a, b, inputs, node, targets),
        Op::Unary(kind, x) => ops::unary_backward(kind, x, inputs, node, targets),
        Op::Scale(x, factor, _) => ops::scale_backward(x, factor, node, targets),
        Op::Clip(x, low, high) => ops::clip_backward(x, (low, high), inputs, node, targets),
        Op::Softmax(x) => ops::softmax_backward(x, node, targets),
        Op::LogSoftmax(x) => ops::log_softmax_backward(x, node, targets),
        Op::Sum(x) => ops::sum_backward(x, 1.0, node, targets),
        Op::Mean(x) => ops::sum_backward(x, 1.0 / inputs.get(x).len().max(1) as f32, node, targets),
        Op::Reshape(x) => ops::reshape_backward(x, node, targets),
        Op::Penalty { weight, l1, l2 } => ops::penalty_backward(weight, (l1, l2), inputs, node, targets),
        Op::Conv2d { .. } => conv::conv2d_backward(op, inputs, node, targets, scratch),
        Op::DepthwiseConv2d {
            x,
            kernel,
            bias,
            window,
            activation,
        } => {
            depthwise::depthwise_conv2d_backward((x, kernel, bias, window, activation), inputs, node, targets, scratch)
        }
        Op::PointwiseConv2d {
            x,
            kernel,
            bias,
            activation,
        } => pointwise_conv::pointwise_conv2d_backward((x, kernel, bias, activation), inputs, node, targets, scratch),
        Op::ConvTranspose2d {
            x,
            kernel,
            bias,
            window,
        } => conv_transpose::conv_transpose2d_backward((x, kernel, bias, window), inputs, node, targets, scratch),
        Op::MaxPool2d { x, window } => conv::max_pool2d_backward(x, window, inputs, node, targets),
        Op::AvgPool2d { x, window } => conv::avg_pool2d_backward(x, window, node, targets),
        Op::SoftmaxCrossEntropy { logits, target, sparse } => {
            losses::softmax_cross_entropy_backward(logits, target, sparse, inputs, node, targets)
        }
        Op::SigmoidCrossEntropy { logits, target } => {
            losses::sigmoid_cross_entropy_backward(logits, target, inputs, node, targets)
        }
        Op::CrossEntropy { probs, target, sparse } => {
            losses::cross_entropy_backward(probs, target, sparse, inputs, node, targets)
        }
        Op::BinaryCrossEntropy { probs, target } => {
            losses::binary_cross_entropy_backward(probs, target, inputs, node, targets)
        }
        Op::BatchNorm {
            x,
            gamma,
            beta,
            statistics,
            ..
        } => normalization::batch_norm_backward((x, gamma, beta, statistics), inputs, node, targets, scratch),
        Op::LayerNorm { x, gamma, beta, .. } => {
            normalization::layer_norm_backward((x, gamma, beta), inputs, node, targets)
        }
        Op::Concat { a, b, axis } => concat::concat_backward(a, b, axis, inputs, node, targets),
        Op::Slice { x, axis, start } => concat::slice_backward(x, axis, start, inputs, node, targets),
        Op::Frame2d { x, offset } => spatial::frame2d_backward(x, offset, inputs, node, targets),
        Op::Upsample2d { x, factor, bilinear } => {
            spatial::upsample2d_backward(x, (factor, bilinear), inputs, node, targets)
        }
        Op::Resize2d { x, bilinear } => spatial::resize2d_backward(x, bilinear, inputs, node, targets),
        Op::Permute { x, axes } => permute::permute_backward(x, axes, inputs, node, targets),
        Op::Gather { table, ids } => embedding::gather_backward(table, ids, inputs, node, targets),
        Op::MeanSteps { x, .. } => sequence::mean_steps_backward(x, inputs, node, targets),
        Op::Attention { q, k, v, options, .. } => {
            attention::attention_backward((q, k, v, options), inputs, node, targets, scratch)
        }
        Op::Recurrent {
            inputs: operands,
            options,
        } => recurrent::recurrent_backward((operands, options), inputs, node, targets, scratch),
    }
}
