//! Layers with Keras's names, arguments and defaults.
//!
//! A layer is built once with its input shape (where shape errors are found and weights are
//! created in the model's [`ParamStore`]), then records its forward pass on a [`Graph`] as many
//! times as needed. Backward passes come for free from the graph's operations, so a new layer
//! is just a `build` and a `forward`.
//!
//! Shapes here are per sample: the batch axis is left out, as in Keras's `input_shape`.
//!
//! Each layer's file holds its `from_config` beside its `config()`; the arguments all layers
//! share live in `common.rs` ([`LayerArgs`], [`WeightArgs`]) and the config readers in
//! `args.rs`. A new layer is its file plus one line in the registry ([`REGISTRY`]).

mod activation;
mod additive_attention;
mod args;
mod center_crop;
mod class_token;
mod common;
mod conv;
mod conv_transpose;
mod cropping1d;
mod dense;
mod depthwise;
mod dot_attention;
mod dot_product_attention;
mod dropout;
mod elu;
mod embedding;
mod flatten;
mod fusion;
mod global_pooling1d;
mod group_normalization;
mod identity;
mod input;
mod keys;
mod leaky_relu;
mod masking;
mod merge;
mod multi_head_attention;
mod normalization;
mod padding;
mod padding1d;
mod permute;
mod pooling;
mod position;
mod position_ids;
mod prelu;
pub(crate) mod preprocessing;
mod recurrent;
mod registry;
mod relu;
mod repeat_vector;
mod rescaling;
mod reshape;
mod resizing;
mod rms_normalization;
mod softmax;
mod standardize;
mod upsampling;
mod upsampling1d;
mod wrappers;

pub use activation::Activation;
pub use additive_attention::AdditiveAttention;
pub use center_crop::CenterCrop;
pub use class_token::ClassToken;
pub use common::{LayerArgs, WeightArgs};
pub use conv::{Conv1D, Conv2D};
pub use conv_transpose::Conv2DTranspose;
pub use cropping1d::Cropping1D;
pub use dense::Dense;
pub use depthwise::{DepthwiseConv2D, SeparableConv2D};
pub use dot_attention::Attention;
pub use dot_product_attention::DotProductAttention;
pub use dropout::{
    AlphaDropout, Dropout, GaussianDropout, GaussianNoise, NoiseLayer, SpatialDropout1D, SpatialDropout2D,
};
pub use elu::ELU;
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use fusion::{FoldedNorm, InferenceRole};
pub use global_pooling1d::GlobalAveragePooling1D;
pub use group_normalization::GroupNormalization;
pub use identity::Identity;
pub use input::Input;
pub use leaky_relu::LeakyReLU;
pub use masking::Masking;
pub use merge::{Add, Average, Concatenate, Maximum, Merge, Minimum, Multiply, Subtract};
pub use multi_head_attention::MultiHeadAttention;
pub use normalization::{BatchNormalization, LayerNormalization};
pub use padding::{Cropping2D, IntoSides, ZeroPadding2D};
pub use padding1d::ZeroPadding1D;
pub use permute::Permute;
pub use pooling::{
    AveragePooling1D, AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling1D, GlobalMaxPooling2D, MaxPooling1D,
    MaxPooling2D, Pooling,
};
pub use position::{PositionEmbedding, SinePositionEncoding};
pub use position_ids::PositionIds;
pub use prelu::PReLU;
pub use preprocessing::{
    IntoFactor, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
};
pub use recurrent::{GRU, GruCell, LSTM, LstmCell, Recurrent, RecurrentKind, SimpleRNN, SimpleRnnCell};
pub use registry::{Constructor, LAYER_NAMES, REGISTRY, Registered, from_config, lookup, unknown_config_keys};
pub use relu::ReLU;
pub use repeat_vector::RepeatVector;
pub use rescaling::{Rescale, Rescaling};
pub use reshape::Reshape;
pub use resizing::Resizing;
pub use rms_normalization::RMSNormalization;
pub use softmax::Softmax;
pub use standardize::Normalization;
pub use upsampling::UpSampling2D;
pub use upsampling1d::UpSampling1D;
pub use wrappers::{Bidirectional, MergeMode, Reversible, TimeDistributed};

use crate::autograd::{Graph, ParamId, ParamStore, Var, WindowOptions};
use crate::error::{Error, Result, keras_shape};
use crate::kernels::Window2d;
use crate::rng::Rng;
use crate::tensor::{Tensor, checked_numel};

/// A building block of a model.
pub trait Layer: Send + Sync {
    /// Keras's class name, e.g. `"Dense"`.
    fn class_name(&self) -> &'static str;

    /// For a wrapper (`Bidirectional`, `TimeDistributed`): the class of the layer it wraps,
    /// whose weights Keras files keep in the wrapped layer's own groups.
    fn wrapped_class(&self) -> Option<&'static str> {
        None
    }

    /// The arguments every layer has (name, `trainable`, declared input shape).
    fn args(&self) -> &LayerArgs;

    /// [`Layer::args`], to change.
    fn args_mut(&mut self) -> &mut LayerArgs;

    /// The layer's unique name in its model (`dense`, `dense_1`, ...). Empty until named.
    fn name(&self) -> &str {
        &self.args().name
    }

    /// Sets the name; the model calls this when the user gave none.
    fn set_name(&mut self, name: String) {
        self.args_mut().name = name;
    }

    /// Whether the optimizer updates the layer's weights (Keras's `trainable`, default true).
    fn is_trainable(&self) -> bool {
        self.args().trainable
    }

    /// Freezes (`false`) or unfreezes the layer's weights; a model reads it when it is built
    /// and when it is compiled (so, as in Keras, a change takes effect at the next `compile`).
    fn set_trainable(&mut self, trainable: bool) {
        self.args_mut().trainable = trainable;
    }

    /// How many tensors one call of the layer yields: 1, or more for a recurrent layer that
    /// returns its states. Known before building, so a graph can refer to output `k` of a call.
    fn output_count(&self) -> usize {
        1
    }

    /// The per-sample output shapes for per-sample `input_shapes`, one per output, or a shape
    /// error naming the layer and both shapes. Pure: no weights are made to find out.
    /// Single-input, single-output layers implement [`Layer::output_shape`] instead.
    fn output_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        let input = only_input(self.name(), self.class_name(), input_shapes)?;
        Ok(vec![self.output_shape(input)?])
    }

    /// [`Layer::output_shapes`] for a layer of one input and one output.
    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let _ = input_shape;
        Err(Error::Usage(format!(
            "layer '{}' ({}) takes several inputs, but was called on one",
            self.name(),
            self.class_name()
        )))
    }

    /// The weights [`Layer::build`] would make for per-sample `input_shapes`, in the same order,
    /// without making them: what a summary counts and what the memory budget is checked
    /// against before anything is allocated. Layers without weights keep this default.
    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        self.output_shapes(input_shapes).map(|_| Vec::new())
    }

    /// Creates the layer's weights in `params` for per-sample `input_shapes` (checked as
    /// [`Layer::output_shapes`] checks them). Layers without weights keep this default.
    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let _ = (params, rng);
        self.output_shapes(input_shapes).map(drop)
    }

    /// Builds a single-input, single-output layer on its own and returns its output shape: a
    /// shortcut for using a layer outside a model (tests, custom loops).
    fn build_one(&mut self, input_shape: &[usize], params: &mut ParamStore, rng: &mut Rng) -> Result<Vec<usize>> {
        let inputs = [input_shape.to_vec()];
        let mut shapes = self.output_shapes(&inputs)?;
        self.build(&inputs, params, rng)?;
        match shapes.len() {
            1 => Ok(shapes.remove(0)),
            n => Err(Error::Usage(format!(
                "layer '{}' ({}) gives {n} outputs; use output_shapes and build",
                self.name(),
                self.class_name()
            ))),
        }
    }

    /// Records the layer's outputs for the batches `inputs` on `graph`, pushing one variable
    /// per output onto `outputs` (a buffer the model reuses between steps, so a call allocates
    /// nothing). Single-input, single-output layers implement [`Layer::forward_one`] instead.
    fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        match inputs {
            [x] => {
                outputs.push(self.forward_one(graph, *x)?);
                Ok(())
            }
            _ => Err(one_input_error(self.name(), self.class_name(), inputs.len())),
        }
    }

    /// [`Layer::forward`] for a layer of one input and one output.
    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let _ = (graph, x);
        Err(Error::Usage(format!(
            "layer '{}' ({}) takes several inputs, but was called on one",
            self.name(),
            self.class_name()
        )))
    }

    /// The layer's part in a run inference may fuse (a convolution, the BatchNormalization
    /// after it, a ReLU), or `None` (the default) for a layer `predict` runs as it is.
    fn inference_role(&self) -> Option<InferenceRole> {
        None
    }

    /// Sets the layer's state from a sample of data before training, as Keras's
    /// `layer.adapt(data)` (`Normalization`: each channel's mean and variance). Returns the new
    /// values of the layer's weights in [`Layer::params`] order, for whoever holds them (a
    /// model's `adapt` writes them into its weights); a layer built afterwards starts from
    /// them. Layers with nothing to adapt keep this default, an error naming the layer.
    fn adapt(&mut self, data: &Tensor) -> Result<Vec<Tensor>> {
        let _ = data;
        Err(Error::Usage(format!(
            "layer '{}' ({}) has nothing to adapt; Normalization does",
            self.name(),
            self.class_name()
        )))
    }

    /// The layer's weights, in Keras's order (`kernel`, then `bias`).
    fn params(&self) -> Vec<ParamId> {
        Vec::new()
    }

    /// The per-sample input shape this layer declares (an `Input`, or `input_shape=`), if any.
    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.args().input_shape.as_deref()
    }

    /// True for `Input`, which only declares a shape and is not listed in summaries.
    fn is_input(&self) -> bool {
        false
    }

    /// The layer's settings in Keras's `get_config()` vocabulary, `name` and `trainable`
    /// included (see [`LayerArgs`]).
    fn config(&self) -> serde_json::Value;
}

/// The shape of one weight a layer would make, and whether the optimizer would update it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ParamShape {
    /// The weight's shape, e.g. `[784, 128]` for a Dense kernel.
    pub shape: Vec<usize>,
    /// False for a frozen layer's weights and for statistics (BatchNormalization's moving mean).
    pub trainable: bool,
}

impl ParamShape {
    /// A weight of `shape`, trained when `trainable`.
    pub fn new(shape: Vec<usize>, trainable: bool) -> Self {
        ParamShape { shape, trainable }
    }
}

/// The one input shape of a single-input layer, or an error saying how many it was given.
pub(crate) fn only_input<'a>(layer: &str, class_name: &str, input_shapes: &'a [Vec<usize>]) -> Result<&'a [usize]> {
    match input_shapes {
        [one] => Ok(one),
        _ => Err(one_input_error(layer, class_name, input_shapes.len())),
    }
}

fn one_input_error(layer: &str, class_name: &str, given: usize) -> Error {
    Error::Usage(format!(
        "layer '{layer}' ({class_name}) takes one input, but was called on {given}"
    ))
}

/// Keras's default base name for a class: `Dense` → `dense`, `MaxPooling2D` → `max_pooling2d`.
pub fn base_name(class_name: &str) -> String {
    crate::initializers::to_snake_case(class_name)
}

/// A size given as one number for both axes (`3`) or as a pair (`(3, 3)`), as Keras accepts.
pub trait IntoPair {
    /// (rows, columns).
    fn into_pair(self) -> (usize, usize);
}

impl IntoPair for usize {
    fn into_pair(self) -> (usize, usize) {
        (self, self)
    }
}

impl IntoPair for (usize, usize) {
    fn into_pair(self) -> (usize, usize) {
        self
    }
}

/// The window geometry of a layer over per-sample `(H, W, C)` images, or an error naming the
/// layer and both shapes.
pub(crate) fn check_window(
    layer: &str,
    image: &[usize],
    size: (usize, usize),
    options: WindowOptions,
) -> Result<Window2d> {
    if image.len() != 3 {
        return Err(Error::LayerShape {
            layer: layer.to_string(),
            expected: "(None, height, width, channels)".into(),
            received: keras_shape(image),
        });
    }
    let mut batch = vec![1];
    batch.extend(image);
    crate::autograd::conv_window(layer, &batch, size, options).map_err(|error| match error {
        Error::ShapeMismatch { .. } => {
            let span = |k: usize, d: usize| (k as u128 - 1) * d as u128 + 1;
            Error::LayerShape {
                layer: layer.to_string(),
                expected: format!(
                    "(None, height ≥ {}, width ≥ {}, channels) for a {}×{} window with \"valid\" padding",
                    span(size.0, options.dilation.0),
                    span(size.1, options.dilation.1),
                    size.0,
                    size.1
                ),
                received: keras_shape(image),
            }
        }
        other => other,
    })
}

/// [`check_window`] for a 1-D layer over per-sample `(steps, channels)` sequences, run as
/// images one row high; its errors name the sequence shapes the user knows.
pub(crate) fn check_window_1d(
    layer: &str,
    sequence: &[usize],
    size: usize,
    options: WindowOptions,
) -> Result<Window2d> {
    let expected = |steps: String| Error::LayerShape {
        layer: layer.to_string(),
        expected: steps,
        received: keras_shape(sequence),
    };
    let &[steps, channels] = sequence else {
        return Err(expected("(None, steps, channels)".into()));
    };
    check_window(layer, &[1, steps, channels], (1, size), options).map_err(|error| match error {
        Error::LayerShape { .. } => {
            let span = (size as u128 - 1) * options.dilation.1 as u128 + 1;
            expected(format!(
                "(None, steps ≥ {span}, channels) for a window of {size} with \"valid\" padding"
            ))
        }
        other => other,
    })
}

/// The most weights one tensor may have (2³⁰, 4 GiB of f32): a model file asking for more is
/// refused before anything is allocated.
pub const MAX_WEIGHTS_PER_TENSOR: usize = 1 << 30;

/// Checks that a weight of `shape` stays under [`MAX_WEIGHTS_PER_TENSOR`].
pub(crate) fn check_weight_count(layer: &str, shape: &[usize]) -> Result<()> {
    match checked_numel(shape) {
        Some(n) if n <= MAX_WEIGHTS_PER_TENSOR => Ok(()),
        _ => Err(Error::invalid(
            "units/filters",
            format!("{shape:?}"),
            format!("layer '{layer}' would need a weight of shape {shape:?}, over {MAX_WEIGHTS_PER_TENSOR} values"),
        )),
    }
}
