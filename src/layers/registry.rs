//! The layer registry: every layer class a model file may name, with the function that builds it
//! from its Keras config. The only list of layer names in strata: help texts, error messages and
//! the README's table of layers are made from it.
//!
//! Adding a layer: write its file (with `from_config` beside `config()`), then add one line to
//! [`REGISTRY`].

use super::{
    Activation, AdditiveAttention, Attention, BatchNormalization, Bidirectional, CenterCrop, ClassToken, Conv2D,
    Conv2DTranspose, Cropping1D, Cropping2D, Dense, DepthwiseConv2D, DotProductAttention, ELU, Embedding, Flatten, GRU,
    GlobalAveragePooling1D, GroupNormalization, Identity, Input, LSTM, Layer, LayerArgs, LayerNormalization, LeakyReLU,
    Masking, Merge, MultiHeadAttention, NoiseLayer, Normalization, PReLU, Permute, Pooling, PositionEmbedding,
    PositionIds, RMSNormalization, RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation,
    RandomZoom, ReLU, RepeatVector, Rescaling, Reshape, Resizing, Reversible, SimpleRNN, SinePositionEncoding, Softmax,
    TimeDistributed, UpSampling1D, UpSampling2D, ZeroPadding1D, ZeroPadding2D, keys,
};
use crate::error::{Error, Result};
use serde_json::Value;

/// Builds a layer of one class from its config (`name` and `trainable` are read by
/// [`from_config`] for every class).
pub type Constructor = fn(&Value) -> Result<Box<dyn Layer>>;

/// One registered layer class.
#[derive(Clone, Copy)]
pub struct Registered {
    /// Keras's class name, as model files write it.
    pub class_name: &'static str,
    /// The family it belongs to, for listings (`"Core"`, `"Convolution"`, ...).
    pub group: &'static str,
    /// Builds the layer from its config.
    pub build: Constructor,
    /// The arguments Keras's constructor takes without their names, in its order (`Dense(units,
    /// activation)`): how `--head` items and Python calls map unnamed arguments to config keys.
    pub positional: &'static [&'static str],
    /// Why the layer cannot be one link of a chain of single-input layers such as a `--head`
    /// spec (it merges several inputs, wraps another layer, ...); `None` when it can.
    pub not_in_head: Option<&'static str>,
}

/// Why a merging layer is not in a chain.
const MERGE: &str = "merges several inputs";
/// Why an attention layer is not in a chain.
const SEVERAL_INPUTS: &str = "reads several inputs (query, value, key)";
/// Why a wrapper is not in a chain.
const WRAPPER: &str = "wraps another layer, which a chain of KEY=VALUE arguments cannot write";
/// Why the input layer is not in a chain.
const INPUT: &str = "is a model's input, not a layer on top of one";

const fn entry(class_name: &'static str, group: &'static str, build: Constructor) -> Registered {
    Registered {
        class_name,
        group,
        build,
        positional: &[],
        not_in_head: None,
    }
}

impl Registered {
    /// The same entry with Keras's positional arguments.
    const fn positional(mut self, names: &'static [&'static str]) -> Registered {
        self.positional = names;
        self
    }

    /// The same entry, marked as not chainable, for the reason given.
    const fn not_in_head(mut self, why: &'static str) -> Registered {
        self.not_in_head = Some(why);
        self
    }
}

/// Boxes the result of a `from_config` that returns the layer's own type.
fn boxed<L: Layer + 'static>(layer: Result<L>) -> Result<Box<dyn Layer>> {
    Ok(Box::new(layer?))
}

/// Every layer class, grouped as Keras's documentation groups them.
pub const REGISTRY: &[Registered] = &[
    entry("InputLayer", "Core", |c| boxed(Input::from_config(c))).not_in_head(INPUT),
    entry("Dense", "Core", |c| boxed(Dense::from_config(c))).positional(&["units", "activation"]),
    entry("Activation", "Core", |c| boxed(Activation::from_config(c))).positional(&["activation"]),
    entry("ReLU", "Activation", |c| boxed(ReLU::from_config(c))).positional(&[
        "max_value",
        "negative_slope",
        "threshold",
    ]),
    entry("Softmax", "Activation", |c| boxed(Softmax::from_config(c))).positional(&["axis"]),
    entry("LeakyReLU", "Activation", |c| boxed(LeakyReLU::from_config(c))).positional(&["negative_slope"]),
    entry("ELU", "Activation", |c| boxed(ELU::from_config(c))).positional(&["alpha"]),
    entry("PReLU", "Activation", |c| boxed(PReLU::from_config(c))).positional(&[
        "alpha_initializer",
        "alpha_regularizer",
        "alpha_constraint",
        "shared_axes",
    ]),
    entry("Identity", "Core", |c| boxed(Identity::from_config(c))),
    entry("Masking", "Core", |c| boxed(Masking::from_config(c))).positional(&["mask_value"]),
    entry("RepeatVector", "Reshaping", |c| boxed(RepeatVector::from_config(c))).positional(&["n"]),
    entry("Embedding", "Core", |c| boxed(Embedding::from_config(c))).positional(&["input_dim", "output_dim"]),
    entry("Flatten", "Reshaping", |c| boxed(Flatten::from_config(c))).positional(&["data_format"]),
    entry("Reshape", "Reshaping", |c| boxed(Reshape::from_config(c))).positional(&["target_shape"]),
    entry("Permute", "Reshaping", |c| boxed(Permute::from_config(c))).positional(&["dims"]),
    entry("ZeroPadding2D", "Reshaping", |c| boxed(ZeroPadding2D::from_config(c))).positional(&["padding"]),
    entry("Cropping2D", "Reshaping", |c| boxed(Cropping2D::from_config(c))).positional(&["cropping"]),
    entry("Cropping1D", "Reshaping", |c| boxed(Cropping1D::from_config(c))).positional(&["cropping"]),
    entry("ZeroPadding1D", "Reshaping", |c| boxed(ZeroPadding1D::from_config(c))).positional(&["padding"]),
    entry("UpSampling2D", "Reshaping", |c| boxed(UpSampling2D::from_config(c))).positional(&["size"]),
    entry("UpSampling1D", "Reshaping", |c| boxed(UpSampling1D::from_config(c))).positional(&["size"]),
    entry("Conv2D", "Convolution", |c| boxed(Conv2D::from_config(c, 2))).positional(&[
        "filters",
        "kernel_size",
        "strides",
        "padding",
    ]),
    entry("Conv1D", "Convolution", |c| boxed(Conv2D::from_config(c, 1))).positional(&[
        "filters",
        "kernel_size",
        "strides",
        "padding",
    ]),
    entry("Conv2DTranspose", "Convolution", |c| {
        boxed(Conv2DTranspose::from_config(c))
    })
    .positional(&["filters", "kernel_size", "strides", "padding"]),
    entry("DepthwiseConv2D", "Convolution", |c| {
        boxed(DepthwiseConv2D::from_config(c, false))
    })
    .positional(&["kernel_size", "strides", "padding"]),
    entry("SeparableConv2D", "Convolution", |c| {
        boxed(DepthwiseConv2D::from_config(c, true))
    })
    .positional(&["filters", "kernel_size", "strides", "padding"]),
    entry("MaxPooling2D", "Pooling", |c| {
        boxed(Pooling::from_config("MaxPooling2D", c))
    })
    .positional(&["pool_size", "strides", "padding"]),
    entry("AveragePooling2D", "Pooling", |c| {
        boxed(Pooling::from_config("AveragePooling2D", c))
    })
    .positional(&["pool_size", "strides", "padding"]),
    entry("GlobalMaxPooling2D", "Pooling", |c| {
        boxed(Pooling::from_config("GlobalMaxPooling2D", c))
    }),
    entry("GlobalAveragePooling2D", "Pooling", |c| {
        boxed(Pooling::from_config("GlobalAveragePooling2D", c))
    }),
    entry("MaxPooling1D", "Pooling", |c| {
        boxed(Pooling::from_config("MaxPooling1D", c))
    })
    .positional(&["pool_size", "strides", "padding"]),
    entry("AveragePooling1D", "Pooling", |c| {
        boxed(Pooling::from_config("AveragePooling1D", c))
    })
    .positional(&["pool_size", "strides", "padding"]),
    entry("GlobalMaxPooling1D", "Pooling", |c| {
        boxed(Pooling::from_config("GlobalMaxPooling1D", c))
    }),
    entry("GlobalAveragePooling1D", "Pooling", |c| {
        boxed(GlobalAveragePooling1D::from_config(c))
    }),
    entry("Dropout", "Regularization", |c| {
        boxed(NoiseLayer::from_config("Dropout", c))
    })
    .positional(&["rate"]),
    entry("SpatialDropout1D", "Regularization", |c| {
        boxed(NoiseLayer::from_config("SpatialDropout1D", c))
    })
    .positional(&["rate"]),
    entry("SpatialDropout2D", "Regularization", |c| {
        boxed(NoiseLayer::from_config("SpatialDropout2D", c))
    })
    .positional(&["rate"]),
    entry("GaussianNoise", "Regularization", |c| {
        boxed(NoiseLayer::from_config("GaussianNoise", c))
    })
    .positional(&["stddev"]),
    entry("GaussianDropout", "Regularization", |c| {
        boxed(NoiseLayer::from_config("GaussianDropout", c))
    })
    .positional(&["rate"]),
    entry("AlphaDropout", "Regularization", |c| {
        boxed(NoiseLayer::from_config("AlphaDropout", c))
    })
    .positional(&["rate"]),
    entry("BatchNormalization", "Normalization", |c| {
        boxed(BatchNormalization::from_config(c))
    })
    .positional(&["axis"]),
    entry("LayerNormalization", "Normalization", |c| {
        boxed(LayerNormalization::from_config(c))
    })
    .positional(&["axis"]),
    entry("RMSNormalization", "Normalization", |c| {
        boxed(RMSNormalization::from_config(c))
    })
    .positional(&["axis"]),
    entry("GroupNormalization", "Normalization", |c| {
        boxed(GroupNormalization::from_config(c))
    })
    .positional(&["groups"]),
    entry("Add", "Merging", |c| boxed(Merge::from_config("Add", c))).not_in_head(MERGE),
    entry("Subtract", "Merging", |c| boxed(Merge::from_config("Subtract", c))).not_in_head(MERGE),
    entry("Multiply", "Merging", |c| boxed(Merge::from_config("Multiply", c))).not_in_head(MERGE),
    entry("Average", "Merging", |c| boxed(Merge::from_config("Average", c))).not_in_head(MERGE),
    entry("Maximum", "Merging", |c| boxed(Merge::from_config("Maximum", c))).not_in_head(MERGE),
    entry("Minimum", "Merging", |c| boxed(Merge::from_config("Minimum", c))).not_in_head(MERGE),
    entry("Concatenate", "Merging", |c| {
        boxed(Merge::from_config("Concatenate", c))
    })
    .positional(&["axis"])
    .not_in_head(MERGE),
    entry("MultiHeadAttention", "Attention", |c| {
        boxed(MultiHeadAttention::from_config(c))
    })
    .positional(&["num_heads", "key_dim"])
    .not_in_head(SEVERAL_INPUTS),
    entry("Attention", "Attention", |c| boxed(Attention::from_config(c))).not_in_head(SEVERAL_INPUTS),
    entry("AdditiveAttention", "Attention", |c| {
        boxed(AdditiveAttention::from_config(c))
    })
    .not_in_head(SEVERAL_INPUTS),
    entry("DotProductAttention", "Attention", |c| {
        boxed(DotProductAttention::from_config(c))
    })
    .not_in_head(SEVERAL_INPUTS),
    entry("PositionEmbedding", "Attention", |c| {
        boxed(PositionEmbedding::from_config(c))
    })
    .positional(&["sequence_length"]),
    entry("ClassToken", "Attention", |c| boxed(ClassToken::from_config(c))),
    entry("PositionIds", "Attention", |c| boxed(PositionIds::from_config(c))).positional(&["padding_idx"]),
    entry("SinePositionEncoding", "Attention", |c| {
        boxed(SinePositionEncoding::from_config(c))
    }),
    entry("SimpleRNN", "Recurrent", |c| boxed(SimpleRNN::from_config(c))).positional(&["units"]),
    entry("LSTM", "Recurrent", |c| boxed(LSTM::from_config(c))).positional(&["units"]),
    entry("GRU", "Recurrent", |c| boxed(GRU::from_config(c))).positional(&["units"]),
    entry("Bidirectional", "Recurrent", |c| {
        boxed(Bidirectional::from_config(c, reversible))
    })
    .positional(&["layer", "merge_mode"])
    .not_in_head(WRAPPER),
    entry("TimeDistributed", "Recurrent", |c| {
        boxed(TimeDistributed::from_config(c, from_config))
    })
    .positional(&["layer"])
    .not_in_head(WRAPPER),
    entry("Rescaling", "Preprocessing", |c| boxed(Rescaling::from_config(c))).positional(&["scale", "offset"]),
    entry("Normalization", "Preprocessing", |c| {
        boxed(Normalization::from_config(c))
    })
    .positional(&["axis", "mean", "variance"]),
    entry("RandomFlip", "Preprocessing", |c| boxed(RandomFlip::from_config(c))).positional(&["mode"]),
    entry("RandomRotation", "Preprocessing", |c| {
        boxed(RandomRotation::from_config(c))
    })
    .positional(&["factor"]),
    entry("RandomTranslation", "Preprocessing", |c| {
        boxed(RandomTranslation::from_config(c))
    })
    .positional(&["height_factor", "width_factor"]),
    entry("RandomZoom", "Preprocessing", |c| boxed(RandomZoom::from_config(c)))
        .positional(&["height_factor", "width_factor"]),
    entry("RandomContrast", "Preprocessing", |c| {
        boxed(RandomContrast::from_config(c))
    })
    .positional(&["factor"]),
    entry("RandomCrop", "Preprocessing", |c| boxed(RandomCrop::from_config(c))).positional(&["height", "width"]),
    entry("Resizing", "Preprocessing", |c| boxed(Resizing::from_config(c))).positional(&[
        "height",
        "width",
        "interpolation",
        "crop_to_aspect_ratio",
    ]),
    entry("CenterCrop", "Preprocessing", |c| boxed(CenterCrop::from_config(c))).positional(&["height", "width"]),
];

/// The recurrent layer a `Bidirectional` wraps.
fn reversible(class_name: &str, config: &Value) -> Result<Box<dyn Reversible>> {
    let mut layer: Box<dyn Reversible> = match class_name {
        "SimpleRNN" => Box::new(SimpleRNN::from_config(config)?),
        "LSTM" => Box::new(LSTM::from_config(config)?),
        "GRU" => Box::new(GRU::from_config(config)?),
        other => {
            return Err(Error::Data(format!(
                "Bidirectional wraps SimpleRNN, LSTM or GRU, not {other}"
            )));
        }
    };
    LayerArgs::apply_config(layer.as_mut(), config)?;
    keys::check_keys(class_name, config, &layer.config())?;
    Ok(layer)
}

/// Other names model files use for a registered class (Keras's `Input` for `InputLayer`).
const ALIASES: &[(&str, &str)] = &[("Input", "InputLayer")];

/// The layer class names a model file may use, in [`REGISTRY`] order.
pub const LAYER_NAMES: &[&str] = &class_names();

const fn class_names() -> [&'static str; REGISTRY.len()] {
    let mut names = [""; REGISTRY.len()];
    let mut i = 0;
    while i < REGISTRY.len() {
        names[i] = REGISTRY[i].class_name;
        i += 1;
    }
    names
}

/// The registry entry for a class name (or one of its aliases).
pub fn lookup(class_name: &str) -> Option<&'static Registered> {
    let class_name = ALIASES
        .iter()
        .find(|(alias, _)| *alias == class_name)
        .map_or(class_name, |(_, target)| target);
    REGISTRY.iter().find(|entry| entry.class_name == class_name)
}

/// The keys of `config` that the layer `class_name` does not know (what [`from_config`] would
/// refuse as unknown), such as settings a newer Keras writes; empty when the class or the
/// config makes no layer (building it then says why).
pub fn unknown_config_keys(class_name: &str, config: &Value) -> Vec<String> {
    let Some(entry) = lookup(class_name) else {
        return Vec::new();
    };
    let Ok(mut layer) = (entry.build)(config) else {
        return Vec::new();
    };
    if LayerArgs::apply_config(layer.as_mut(), config).is_err() {
        return Vec::new();
    }
    keys::unknown_keys(config, &layer.config())
}

/// Builds a layer from its Keras class name and config. Keys that only matter to Keras
/// (`dtype`, regularizers left `null`, ...) are accepted; a key that would change what the layer
/// computes and that strata does not read is an error (see `keys.rs`).
pub fn from_config(class_name: &str, config: &Value) -> Result<Box<dyn Layer>> {
    let entry = lookup(class_name).ok_or_else(|| Error::unknown("layer class", class_name, LAYER_NAMES))?;
    let mut layer = (entry.build)(config)?;
    LayerArgs::apply_config(layer.as_mut(), config)?;
    keys::check_keys(entry.class_name, config, &layer.config())?;
    Ok(layer)
}
