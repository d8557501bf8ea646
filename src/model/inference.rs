//! Inference fast paths for `predict`: a convolution whose only reader is a
//! BatchNormalization runs with the normalization folded into its kernel and bias, and a plain
//! ReLU that is the normalization's only reader is fused into the convolution's output pass.
//! A ReLU that reads a convolution directly (an imported ONNX graph, whose exporter already
//! folded the normalization into the convolution's bias) is fused the same way. A residual
//! connection's `Add` that alone reads a convolution (or its normalization), and the ReLU after
//! it, are fused into that convolution's output pass too: the convolution is deferred to the
//! `Add`'s place in the run, where the other branch's value is ready.
//! The folded weights and the convolution's transformed kernel are kept on the tape between
//! calls while the weights keep their generation (`ParamStore::generation`), so repeated
//! predictions neither fold nor transform again. Training takes none of these paths but one:
//! the folded form has no gradient for the normalization's weights, and training normalizes
//! with the batch's statistics. The one is a ReLU convolution with its max pooling
//! ([`Step::ConvPool`], `Network::training_plan`), which the graph records fused where its
//! backward rule gives the gradients asked (a first layer on the direct kernel): the largest
//! output of the step is then never written.

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
    /// A convolution run with the BatchNormalization call `norm` folded in, and the ReLU (or
    /// ReLU6) call `relu` (when given) fused into it.
    Folded { norm: usize, relu: Option<usize> },
    /// A (not depthwise) convolution with the ReLU (or ReLU6) call `relu` that alone reads it
    /// fused into its output pass.
    ConvRelu { relu: usize },
    /// A ReLU convolution with the max pooling call `pool` that alone reads it folded into its
    /// output pass (`Graph::int8_conv2d_relu_max_pool`, `Graph::conv2d_relu_max_pool`); the
    /// one step training plans too.
    ConvPool { pool: usize },
    /// A call fused into the run that starts at call `head`: its output is that run's.
    Fused { head: usize },
    /// A depthwise convolution with its neighbours fused (`inference_mobilenet.rs`).
    Depthwise(super::inference_mobilenet::DepthwiseRun),
    /// A 1×1 convolution with the normalization and ReLU6 after it fused
    /// (`inference_mobilenet.rs`).
    Pointwise(super::inference_mobilenet::PointwiseRun),
    /// An inverted residual block run as one step at its last call (the projection, or the
    /// residual `Add`); its other calls are [`Step::Deferred`] or fused into them
    /// (`inference_mobilenet.rs`).
    Block(super::inference_mobilenet::BlockRun),
    /// A zero padding folded into the depthwise convolution or max pooling that alone reads
    /// it: its output is its input, unpadded.
    Bypassed,
    /// A max pooling with the zero padding call `padding` that alone feeds it folded in: its
    /// windows read the unpadded input, the padding's zeros counted where they reach.
    PaddedPool { padding: usize },
    /// A convolution (or its normalization) computed later, by the `Add` that alone reads it
    /// ([`Step::Residual`]); its output slot holds a placeholder that nothing reads.
    Deferred,
    /// An `Add` of two values, one of them computed here: the convolution call `conv` (with
    /// the BatchNormalization call `norm` folded in, when given), the other value added in its
    /// output pass, and the ReLU call `relu` (when given) after it.
    Residual {
        conv: usize,
        norm: Option<usize>,
        relu: Option<usize>,
    },
}

/// Where `predict` splits a network's batches (see `predict_split.rs`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) struct Split {
    /// The first call run on the whole batch.
    pub(super) call: usize,
    /// The one output of the calls before it that the calls from it on read.
    pub(super) crossing: usize,
}

impl Step {
    /// The other calls this step runs together with (the neighbours fused into it, or the
    /// call it is fused into).
    pub(super) fn partners(self) -> [Option<usize>; 3] {
        match self {
            Step::Plain | Step::Bypassed | Step::Deferred => [None; 3],
            Step::Folded { norm, relu } => [Some(norm), relu, None],
            Step::ConvRelu { relu } => [Some(relu), None, None],
            Step::ConvPool { pool } => [Some(pool), None, None],
            Step::PaddedPool { padding } => [Some(padding), None, None],
            Step::Fused { head } => [Some(head), None, None],
            Step::Depthwise(run) => [run.padding, run.norm, run.activation],
            Step::Pointwise(run) => [run.norm, Some(run.activation), None],
            Step::Residual { conv, norm, relu } => [Some(conv), norm, relu],
            Step::Block(run) => [Some(run.first()), Some(run.project), run.add],
        }
    }
}

impl Network {
    /// The cap of call `call`'s ReLU when it is a plain ReLU (infinite) or a capped one
    /// without threshold or slope (ReLU6): what a convolution fuses.
    pub(super) fn relu_cap(&self, call: usize) -> Option<f32> {
        match self.layers[self.calls[call].layer].inference_role() {
            Some(InferenceRole::Relu) => Some(f32::INFINITY),
            Some(InferenceRole::CappedRelu { max_value }) => Some(max_value),
            _ => None,
        }
    }

    /// Fills `readers` with, per call output, how many reads it has (a model output counts as
    /// one) and its last reader.
    fn count_readers(&self, readers: &mut Vec<(usize, usize)>) {
        // Calls are numbered in order but their outputs need not be (a layer with several
        // outputs, such as a recurrent layer's states): size by the largest.
        let outputs = self
            .calls
            .iter()
            .map(|c| c.first_output + self.layers[c.layer].output_count())
            .max()
            .unwrap_or(0);
        readers.clear();
        readers.resize(outputs, (0, usize::MAX));
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
    }

    /// The call that alone reads call `i`'s single output, taking it as its only input, by
    /// the counts of [`Network::count_readers`].
    fn sole_reader(&self, readers: &[(usize, usize)], i: usize) -> Option<usize> {
        let call = &self.calls[i];
        if self.layers[call.layer].output_count() != 1 {
            return None;
        }
        let (count, reader) = readers[call.first_output];
        let only_input = self.calls.get(reader)?.inputs == [Source::Output(call.first_output)];
        (count == 1 && only_input).then_some(reader)
    }

    /// The max pooling call that alone reads call `i`, when `i` is a ReLU `Conv2D` with one
    /// input whose pooling can fold into it (int8 when its kernel is, or f32).
    fn pooled_by(&self, params: &ParamStore, readers: &[(usize, usize)], i: usize) -> Option<usize> {
        let role_of = |call: usize| self.layers[self.calls[call].layer].inference_role();
        let Some(InferenceRole::ConvolutionRelu { kernel, float32, .. }) = role_of(i) else {
            return None;
        };
        let pool = self.sole_reader(readers, i).filter(|&pool| {
            matches!(role_of(pool), Some(InferenceRole::MaxPool { size, options }) if crate::autograd::int8_pool_folds(size, options))
        })?;
        ((params.quantized(kernel).is_some() || float32) && self.calls[i].inputs.len() == 1).then_some(pool)
    }

    /// Fills `plan` with one [`Step`] per call for training and evaluation: the ReLU
    /// convolutions whose max pooling folds into them ([`Step::ConvPool`]; the graph records
    /// the two apart where the fused form cannot give the gradients asked). `readers` is
    /// working memory, kept between steps so that planning allocates nothing.
    pub(super) fn training_plan(&self, params: &ParamStore, readers: &mut Vec<(usize, usize)>, plan: &mut Vec<Step>) {
        self.count_readers(readers);
        plan.clear();
        plan.resize(self.calls.len(), Step::Plain);
        for i in 0..self.calls.len() {
            if let Some(pool) = self.pooled_by(params, readers, i) {
                plan[i] = Step::ConvPool { pool };
                plan[pool] = Step::Fused { head: i };
            }
        }
    }

    /// Fills `plan` with one [`Step`] per call: which runs of calls `predict` fuses.
    pub(super) fn inference_plan(&self, params: &ParamStore, plan: &mut Vec<Step>) {
        plan.clear();
        plan.resize(self.calls.len(), Step::Plain);
        let mut readers = Vec::new();
        self.count_readers(&mut readers);
        let sole_reader = |i: usize| self.sole_reader(&readers, i);
        let role_of = |call: usize| self.layers[self.calls[call].layer].inference_role();
        let is_relu = |call: usize| role_of(call) == Some(InferenceRole::Relu);
        // The `Add` of two distinct values that alone reads call `last`'s single output and is
        // not fused yet, with the ReLU that alone reads that `Add` (if any, and not fused yet).
        let residual_add = |last: usize, plan: &[Step]| {
            let call = &self.calls[last];
            let (count, add) = readers[call.first_output];
            let inputs = &self.calls.get(add)?.inputs;
            let joins = count == 1
                && self.layers[call.layer].output_count() == 1
                && role_of(add) == Some(InferenceRole::Add)
                && inputs.len() == 2
                && inputs[0] != inputs[1]
                && plan[add] == Step::Plain;
            let relu = sole_reader(add).filter(|&r| is_relu(r) && plan[r] == Step::Plain);
            joins.then_some((add, relu))
        };
        for i in 0..self.calls.len() {
            if let Some(InferenceRole::ConvolutionRelu { .. }) = role_of(i) {
                if let Some(pool) = self.pooled_by(params, &readers, i) {
                    plan[i] = Step::ConvPool { pool };
                    plan[pool] = Step::Fused { head: i };
                }
                continue;
            }
            let Some(InferenceRole::Convolution {
                kernel,
                bias,
                depthwise,
                ..
            }) = role_of(i)
            else {
                continue;
            };
            if depthwise {
                if let Some(run) = self.plan_depthwise(i, params, &sole_reader) {
                    plan[i] = Step::Depthwise(run);
                    if let Some(padding) = run.padding {
                        plan[padding] = Step::Bypassed;
                    }
                    for fused in [run.norm, run.activation].into_iter().flatten() {
                        plan[fused] = Step::Fused { head: i };
                    }
                }
                continue;
            }
            if let Some(run) = self.plan_pointwise(i, params, &sole_reader) {
                plan[i] = Step::Pointwise(run);
                for fused in run.norm.into_iter().chain([run.activation]) {
                    plan[fused] = Step::Fused { head: i };
                }
                continue;
            }
            if params.quantized(kernel).is_some() || self.calls[i].inputs.len() != 1 {
                continue;
            }
            // Convolution `i` (and its normalization `norm`) computed by the `Add` `add`.
            let defer = |plan: &mut [Step], (add, relu): (usize, Option<usize>), norm: Option<usize>| {
                plan[i] = Step::Deferred;
                if let Some(norm) = norm {
                    plan[norm] = Step::Deferred;
                }
                plan[add] = Step::Residual { conv: i, norm, relu };
                if let Some(relu) = relu {
                    plan[relu] = Step::Fused { head: add };
                }
            };
            let Some(norm) = sole_reader(i) else {
                // Not the only input of its reader: perhaps one side of a residual `Add`.
                if let Some(join) = residual_add(i, plan).filter(|_| !depthwise) {
                    defer(plan, join, None);
                }
                continue;
            };
            if self.relu_cap(norm).is_some() && !depthwise {
                plan[i] = Step::ConvRelu { relu: norm };
                plan[norm] = Step::Fused { head: i };
                continue;
            }
            let Some(InferenceRole::BatchNorm(weights)) = role_of(norm) else {
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
            if !fits {
                continue;
            }
            let relu = sole_reader(norm).filter(|&r| self.relu_cap(r).is_some());
            if relu.is_none()
                && let Some(join) = residual_add(norm, plan)
            {
                defer(plan, join, Some(norm));
                continue;
            }
            plan[i] = Step::Folded { norm, relu };
            plan[norm] = Step::Fused { head: i };
            if let Some(relu) = relu {
                plan[relu] = Step::Fused { head: i };
            }
        }
        // A zero padding read only by a max pooling (ResNet's stem) is folded into it.
        for padding in 0..self.calls.len() {
            let Some(InferenceRole::ZeroPadding(_)) = role_of(padding) else {
                continue;
            };
            if let Some(pool) = sole_reader(padding)
                && matches!(role_of(pool), Some(InferenceRole::MaxPool { .. }))
                && plan[padding] == Step::Plain
                && plan[pool] == Step::Plain
            {
                plan[padding] = Step::Bypassed;
                plan[pool] = Step::PaddedPool { padding };
            }
        }
        self.plan_blocks(plan, params, &sole_reader);
    }

    /// Replaces the steps of each inverted residual block (a planned depthwise convolution,
    /// the planned expansion whose activation alone feeds it, if any, and the 1×1 projection
    /// that alone reads it) with one [`Step::Block`] at the block's last call.
    fn plan_blocks(&self, plan: &mut [Step], params: &ParamStore, sole_reader: &dyn Fn(usize) -> Option<usize>) {
        for d in 0..self.calls.len() {
            let Step::Depthwise(depthwise) = plan[d] else {
                continue;
            };
            let first = depthwise.padding.unwrap_or(d);
            let producer = match self.calls[first].inputs[..] {
                [Source::Output(o)] => self.calls[..first].iter().rposition(|c| c.first_output == o),
                _ => None,
            };
            let expand = producer.and_then(|a| match plan[a] {
                Step::Fused { head } => match plan[head] {
                    Step::Pointwise(run) if run.activation == a && sole_reader(a) == Some(first) => Some((head, run)),
                    _ => None,
                },
                _ => None,
            });
            let last = depthwise.activation.or(depthwise.norm).unwrap_or(d);
            let Some(project) = sole_reader(last) else {
                continue;
            };
            let role = self.layers[self.calls[project].layer].inference_role();
            let Some(InferenceRole::Convolution {
                kernel,
                options,
                depthwise: false,
                ..
            }) = role
            else {
                continue;
            };
            let one_by_one = matches!(params.value(kernel).shape(), [1, 1, _, _]) && options.strides == (1, 1);
            if !one_by_one || params.quantized(kernel).is_some() {
                continue;
            }
            // (normalization, activation, residual `Add`, the call the block's step takes)
            let (project_norm, activation, add, at) = match plan[project] {
                Step::Plain => (None, None, None, project),
                Step::Folded { norm, relu } => (Some(norm), relu, None, project),
                Step::ConvRelu { relu } => (None, Some(relu), None, project),
                Step::Pointwise(run) => (run.norm, Some(run.activation), None, project),
                Step::Deferred => {
                    let residual = plan.iter().enumerate().find_map(|(add, step)| match *step {
                        Step::Residual { conv, norm, relu } if conv == project => Some((norm, relu, Some(add), add)),
                        _ => None,
                    });
                    let Some(residual) = residual else {
                        continue;
                    };
                    residual
                }
                _ => continue,
            };
            plan[at] = Step::Block(super::inference_mobilenet::BlockRun {
                expand,
                depthwise: (d, depthwise),
                project,
                project_norm,
                activation,
                add,
            });
            plan[d] = Step::Deferred;
            if let Some((expand, _)) = expand {
                plan[expand] = Step::Deferred;
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
        outputs.clear();
        self.forward_inference_calls(graph, inputs, outputs, plan, 0..self.calls.len())
    }

    /// Records ReLU convolution call `i` on `x` and the max pooling call `pool` that alone
    /// reads it as one operation ([`Step::ConvPool`]), int8 where the kernel is quantized.
    pub(super) fn forward_conv_pool(&self, graph: &mut Graph, i: usize, x: Var, pool: usize) -> Result<Var> {
        let layer = &self.layers[self.calls[i].layer];
        let roles = (
            layer.inference_role(),
            self.layers[self.calls[pool].layer].inference_role(),
        );
        let (
            Some(InferenceRole::ConvolutionRelu {
                kernel, bias, options, ..
            }),
            Some(InferenceRole::MaxPool {
                size,
                options: pool_options,
            }),
        ) = roles
        else {
            return Err(Error::Usage(format!(
                "layer '{}' changed after its run was planned",
                layer.name()
            )));
        };
        let bias = bias.map(|b| graph.param(b));
        if graph.params().quantized(kernel).is_some() {
            return graph.int8_conv2d_relu_max_pool(x, kernel, bias, options, size, pool_options);
        }
        let kernel = graph.param(kernel);
        graph.conv2d_relu_max_pool(x, (kernel, bias), options, (size, pool_options))
    }

    /// [`Network::forward_inference`] of the calls in `range` alone: `outputs` holds the
    /// outputs of the calls before it (those the range reads; any value holds the others'
    /// places).
    pub(super) fn forward_inference_calls(
        &self,
        graph: &mut Graph,
        inputs: &[Var],
        outputs: &mut Vec<Var>,
        plan: &[Step],
        range: std::ops::Range<usize>,
    ) -> Result<()> {
        let (layers, calls) = (&self.layers, &self.calls);
        let resolve = |source: &Source, outputs: &[Var]| match *source {
            Source::ModelInput(i) => inputs[i],
            Source::Output(o) => outputs[o],
        };
        for (i, call) in calls.iter().enumerate().take(range.end).skip(range.start) {
            // The pool's other threads spin through the whole pass rather than for the first
            // millisecond of it only: asleep between two layers, each costs a wake-up.
            crate::kernels::keep_others_awake();
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
                    let relu = relu.and_then(|r| self.relu_cap(r));
                    outputs.push(graph.conv2d_folded(x, (kernel, bias, depthwise), weights, options, relu, None)?);
                    continue;
                }
                Step::ConvRelu { relu } => {
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
                    let cap = self.relu_cap(relu).ok_or_else(|| {
                        Error::Usage(format!("layer '{}' changed after predict planned it", layer.name()))
                    })?;
                    outputs.push(graph.conv2d_capped_relu(x, (kernel, bias), options, cap)?);
                    continue;
                }
                Step::Depthwise(run) => {
                    let x = resolve(&call.inputs[0], outputs);
                    outputs.push(self.forward_depthwise(graph, i, x, run)?);
                    continue;
                }
                Step::Pointwise(run) => {
                    let x = resolve(&call.inputs[0], outputs);
                    outputs.push(self.forward_pointwise(graph, i, x, run)?);
                    continue;
                }
                Step::Bypassed => {
                    outputs.push(resolve(&call.inputs[0], outputs));
                    continue;
                }
                Step::PaddedPool { padding } => {
                    let roles = (layer.inference_role(), layers[calls[padding].layer].inference_role());
                    let (Some(InferenceRole::MaxPool { size, options }), Some(InferenceRole::ZeroPadding(sides))) =
                        roles
                    else {
                        return Err(Error::Usage(format!(
                            "layer '{}' changed after predict planned it",
                            layer.name()
                        )));
                    };
                    // The padding's input: the bypassed padding passed it on unpadded.
                    let x = resolve(&call.inputs[0], outputs);
                    outputs.push(graph.zero_padded_max_pool2d(x, sides, size, options)?);
                    continue;
                }
                Step::ConvPool { pool } => {
                    let x = resolve(&call.inputs[0], outputs);
                    outputs.push(self.forward_conv_pool(graph, i, x, pool)?);
                    continue;
                }
                Step::Fused { head } => {
                    outputs.push(outputs[calls[head].first_output]);
                    continue;
                }
                Step::Deferred => {
                    // Read by the `Add` that computes it alone: any value holds the place.
                    outputs.push(resolve(&call.inputs[0], outputs));
                    continue;
                }
                Step::Residual { conv, norm, relu } => {
                    outputs.push(self.residual_step(graph, inputs, outputs, call, (conv, norm, relu))?);
                    continue;
                }
                Step::Block(run) => {
                    let value = self.forward_block(graph, &|source| resolve(source, outputs), run)?;
                    outputs.push(value);
                    continue;
                }
                Step::Plain => {}
            }
            super::record_call(layer.as_ref(), call, &resolve, graph, outputs)?;
        }
        Ok(())
    }
}

impl Network {
    /// The value of the `Add` call `add` planned as [`Step::Residual`]: convolution `conv`
    /// (with normalization `norm` folded in) of its input, plus the `Add`'s other input, then
    /// the ReLU when `relu` is given.
    fn residual_step(
        &self,
        graph: &mut Graph,
        inputs: &[Var],
        outputs: &[Var],
        add: &super::graph::Call,
        (conv, norm, relu): (usize, Option<usize>, Option<usize>),
    ) -> Result<Var> {
        let resolve = |source: &Source| match *source {
            Source::ModelInput(i) => inputs[i],
            Source::Output(o) => outputs[o],
        };
        let (conv_call, layer) = (&self.calls[conv], &self.layers[self.calls[conv].layer]);
        let changed = || Error::Usage(format!("layer '{}' changed after predict planned it", layer.name()));
        let Some(InferenceRole::Convolution {
            kernel,
            bias,
            options,
            depthwise,
        }) = layer.inference_role()
        else {
            return Err(changed());
        };
        // The `Add`'s input that is not the convolution's (or its normalization's) output.
        let joined = Source::Output(self.calls[norm.unwrap_or(conv)].first_output);
        let other = add.inputs.iter().find(|&&s| s != joined).ok_or_else(changed)?;
        let (x, residual) = (resolve(&conv_call.inputs[0]), resolve(other));
        match norm {
            Some(norm) => {
                let Some(InferenceRole::BatchNorm(weights)) = self.layers[self.calls[norm].layer].inference_role()
                else {
                    return Err(changed());
                };
                let relu = relu.map(|_| f32::INFINITY);
                graph.conv2d_folded(x, (kernel, bias, depthwise), weights, options, relu, Some(residual))
            }
            None => {
                let (kernel, bias) = (graph.param(kernel), bias.map(|b| graph.param(b)));
                graph.conv2d_residual(x, (kernel, bias), residual, options, relu.is_some())
            }
        }
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

    /// How many inverted residual blocks `predict` runs as one step, as of the last
    /// `predict`. For tests and benchmarks.
    #[doc(hidden)]
    pub fn inference_blocks(&self) -> usize {
        let is_block = |step: &&Step| matches!(step, Step::Block(_));
        self.workspace.inference_plan.iter().filter(is_block).count()
    }

    /// The call from which `predict` runs whole batches after running the calls before it
    /// image by image (`predict_split.rs`), as of the last `predict`; `None` when it runs
    /// batches whole. For tests and benchmarks.
    #[doc(hidden)]
    pub fn inference_split(&self) -> Option<usize> {
        self.workspace.split.map(|split| split.call)
    }
}
