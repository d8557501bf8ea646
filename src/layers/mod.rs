//! Layers with Keras's names, arguments and defaults.
//!
//! A layer is built once with its input shape (where shape errors are found and weights are
//! created in the model's [`ParamStore`]), then records its forward pass on a [`Graph`] as many
//! times as needed. Backward passes come for free from the graph's operations, so a new layer
//! is just a `build` and a `forward`.
//!
//! Shapes here are per sample: the batch axis is left out, as in Keras's `input_shape`.

mod activation;
mod config;
mod conv;
mod dense;
mod dropout;
mod embedding;
mod flatten;
mod input;
mod merge;
mod normalization;
mod pooling;
pub(crate) mod preprocessing;
mod recurrent;
mod recurrent_state;
mod reshape;
mod wrappers;

pub use activation::Activation;
pub use config::{LAYER_NAMES, from_config};
pub use conv::{Conv1D, Conv2D};
pub use dense::Dense;
pub use dropout::{Dropout, GaussianNoise, NoiseLayer, SpatialDropout2D};
pub use embedding::Embedding;
pub use flatten::Flatten;
pub use input::Input;
pub use merge::{Add, Average, Concatenate, Maximum, Merge, Multiply, Subtract};
pub use normalization::{BatchNormalization, LayerNormalization};
pub use pooling::{AveragePooling2D, GlobalAveragePooling2D, GlobalMaxPooling2D, MaxPooling1D, MaxPooling2D, Pooling};
pub use preprocessing::{
    IntoFactor, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom,
};
pub use recurrent::{GRU, GruCell, LSTM, LstmCell, Recurrent, RecurrentKind, SimpleRNN, SimpleRnnCell};
pub use recurrent_state::{RecurrentState, State};
pub use reshape::Reshape;
pub use wrappers::{Bidirectional, MergeMode, Reversible, TimeDistributed};

use crate::autograd::{Graph, ParamId, ParamStore, Var, WindowOptions};
use crate::error::{Error, Result, keras_shape};
use crate::kernels::Window2d;
use crate::rng::Rng;

/// A building block of a model.
pub trait Layer: Send + Sync {
    /// Keras's class name, e.g. `"Dense"`.
    fn class_name(&self) -> &'static str;

    /// The layer's unique name in its model (`dense`, `dense_1`, ...). Empty until named.
    fn name(&self) -> &str;

    /// Sets the name; the model calls this when the user gave none.
    fn set_name(&mut self, name: String);

    /// Creates the layer's weights for a per-sample `input_shape` and returns its per-sample
    /// output shape, or a shape error naming the layer.
    fn build(&mut self, input_shape: &[usize], params: &mut ParamStore, rng: &mut Rng) -> Result<Vec<usize>>;

    /// Records the layer's output for the batch `x` on `graph`.
    fn forward(&self, graph: &mut Graph, x: Var) -> Result<Var>;

    /// [`Layer::build`] for a layer called on several inputs (merge layers such as `Add`).
    /// Single-input layers keep this default, which refuses more than one input.
    fn build_multi(&mut self, input_shapes: &[&[usize]], params: &mut ParamStore, rng: &mut Rng) -> Result<Vec<usize>> {
        match input_shapes {
            [one] => self.build(one, params, rng),
            _ => Err(Error::Usage(format!(
                "layer '{}' ({}) takes one input, but was called on {}",
                self.name(),
                self.class_name(),
                input_shapes.len()
            ))),
        }
    }

    /// [`Layer::forward`] for a layer called on several inputs.
    fn forward_multi(&self, graph: &mut Graph, inputs: &[Var]) -> Result<Var> {
        match inputs {
            [one] => self.forward(graph, *one),
            _ => Err(Error::Usage(format!(
                "layer '{}' ({}) takes one input, but was called on {}",
                self.name(),
                self.class_name(),
                inputs.len()
            ))),
        }
    }

    /// The layer's weights, in Keras's order (`kernel`, then `bias`).
    fn params(&self) -> Vec<ParamId> {
        Vec::new()
    }

    /// The per-sample input shape this layer declares (an `Input`, or `input_shape=`), if any.
    fn declared_input_shape(&self) -> Option<&[usize]> {
        None
    }

    /// True for `Input`, which only declares a shape and is not listed in summaries.
    fn is_input(&self) -> bool {
        false
    }

    /// The layer's settings in Keras's `get_config()` vocabulary.
    fn config(&self) -> serde_json::Value;
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
            let span = |k: usize, d: usize| (k - 1) * d + 1;
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

/// The most weights one tensor may have (2³⁰, 4 GiB of f32): a model file asking for more is
/// refused before anything is allocated.
pub const MAX_WEIGHTS_PER_TENSOR: usize = 1 << 30;

/// Checks that a weight of `shape` stays under [`MAX_WEIGHTS_PER_TENSOR`].
pub(crate) fn check_weight_count(layer: &str, shape: &[usize]) -> Result<()> {
    match shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d)) {
        Some(n) if n <= MAX_WEIGHTS_PER_TENSOR => Ok(()),
        _ => Err(Error::invalid(
            "units/filters",
            format!("{shape:?}"),
            format!("layer '{layer}' would need a weight of shape {shape:?}, over {MAX_WEIGHTS_PER_TENSOR} values"),
        )),
    }
}
