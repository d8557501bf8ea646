//! The registry of what ONNX export writes: the layer classes and activations it knows, and
//! why a given layer cannot be written (an unknown class, or a setting ONNX cannot express).
//! The emitters (`layers.rs`, `export_*.rs`) write the classes listed here; `export.rs`
//! refuses a model with any layer this file refuses, naming them all at once.

use crate::autograd::ParamId;
use crate::error::Result;
use crate::layers::{Layer, LayerArgs};
use serde_json::Value;

/// The layer classes ONNX export writes (the README's list is made from it). `Dropout`,
/// `SpatialDropout2D`, the Gaussian and alpha dropouts and the random augmentation layers are left out of the
/// graph: they do nothing at inference (but `RandomCrop`, which crops the centre then). The
/// classes after the first release's are written by `export_layers.rs`.
pub const EXPORTABLE_LAYERS: &[&str] = &[
    "InputLayer",
    "Dense",
    "Activation",
    "ReLU",
    "Softmax",
    "LeakyReLU",
    "ELU",
    "PReLU",
    "Identity",
    "RepeatVector",
    "Embedding",
    "Flatten",
    "Reshape",
    "Permute",
    "ZeroPadding2D",
    "ZeroPadding1D",
    "Cropping2D",
    "Cropping1D",
    "UpSampling2D",
    "UpSampling1D",
    "Dropout",
    "SpatialDropout1D",
    "SpatialDropout2D",
    "GaussianNoise",
    "GaussianDropout",
    "AlphaDropout",
    "Conv2D",
    "Conv1D",
    "Conv2DTranspose",
    "DepthwiseConv2D",
    "SeparableConv2D",
    "MaxPooling2D",
    "AveragePooling2D",
    "GlobalAveragePooling2D",
    "GlobalMaxPooling2D",
    "MaxPooling1D",
    "AveragePooling1D",
    "GlobalMaxPooling1D",
    "GlobalAveragePooling1D",
    "BatchNormalization",
    "LayerNormalization",
    "Masking",
    "RMSNormalization",
    "Add",
    "Subtract",
    "Multiply",
    "Average",
    "Maximum",
    "Minimum",
    "Concatenate",
    "MultiHeadAttention",
    "Attention",
    "AdditiveAttention",
    "DotProductAttention",
    "PositionEmbedding",
    "SinePositionEncoding",
    "ClassToken",
    "PositionIds",
    "SimpleRNN",
    "LSTM",
    "GRU",
    "Bidirectional",
    "TimeDistributed",
    "Rescaling",
    "Normalization",
    "RandomFlip",
    "RandomRotation",
    "RandomTranslation",
    "RandomZoom",
    "RandomContrast",
    "RandomCrop",
    "Resizing",
    "CenterCrop",
];

/// The activations ONNX export writes: every activation strata has (the export's match over
/// [`crate::activations::Activation`] has no fallback arm).
pub const EXPORTABLE_ACTIVATIONS: &[&str] = crate::activations::NAMES;

/// Why `layer` cannot be exported (`""` for an unsupported class, `": activation 'x'"` for a
/// setting), or `None` when it can.
pub(super) fn unsupported_reason(layer: &dyn Layer) -> Option<String> {
    let class = layer.class_name();
    if !EXPORTABLE_LAYERS.contains(&class) {
        return Some(String::new());
    }
    if let Some(reason) = refused_setting(layer) {
        return Some(reason);
    }
    let config = layer.config();
    let activation = config.get("activation").and_then(Value::as_str).unwrap_or("linear");
    if !EXPORTABLE_ACTIVATIONS.contains(&activation.to_ascii_lowercase().as_str()) {
        return Some(format!(": activation '{activation}'"));
    }
    match class {
        "Conv2D" if config["kernel_size"].as_array().is_some_and(|k| k.len() != 2) => Some(": Conv1D".into()),
        "ReLU" if config["threshold"].as_f64().unwrap_or(0.0) != 0.0 => Some(": threshold".into()),
        "ReLU" if !config["max_value"].is_null() && config["negative_slope"].as_f64().unwrap_or(0.0) != 0.0 => {
            Some(": max_value with negative_slope".into())
        }
        _ => None,
    }
}

/// Why a setting of `layer` cannot be written in ONNX (`": setting"`), or `None`.
fn refused_setting(layer: &dyn Layer) -> Option<String> {
    let config = layer.config();
    let on = |key: &str| config[key].as_bool().unwrap_or(false);
    match layer.class_name() {
        "SimpleRNN" | "LSTM" | "GRU" if on("return_state") => {
            Some(": return_state (the final states as extra outputs)".into())
        }
        "Bidirectional" if config["layer"]["config"]["return_state"].as_bool() == Some(true) => {
            Some(": return_state (the final states as extra outputs)".into())
        }
        "MultiHeadAttention" | "Attention" | "AdditiveAttention" if on("return_attention_scores") => {
            Some(": return_attention_scores".into())
        }
        "MultiHeadAttention" if on("attention_mask_input") => Some(": an attention_mask input".into()),
        "TimeDistributed" => match wrapped(layer) {
            Ok(inner) => unsupported_reason(&inner).map(|why| format!(": wraps a {}{why}", inner.class_name())),
            Err(error) => Some(format!(": its wrapped layer ({error})")),
        },
        _ => None,
    }
}

/// The layer a `TimeDistributed` wraps, rebuilt from its config, holding the wrapper's
/// weights (they are the wrapped layer's, in its order) and named as strata names it.
pub(super) fn wrapped(layer: &dyn Layer) -> Result<Wrapped> {
    let config = layer.config();
    let class = config["layer"]["class_name"].as_str().unwrap_or("");
    let mut inner = crate::layers::from_config(class, &config["layer"]["config"])?;
    let base = inner.name().to_string();
    inner.set_name(format!("{}/{base}", layer.name()));
    Ok(Wrapped {
        layer: inner,
        params: layer.params(),
    })
}

/// A wrapped layer with its wrapper's weights: what the emitter reads of a layer.
pub(super) struct Wrapped {
    layer: Box<dyn Layer>,
    params: Vec<ParamId>,
}

impl Layer for Wrapped {
    fn class_name(&self) -> &'static str {
        self.layer.class_name()
    }

    fn args(&self) -> &LayerArgs {
        self.layer.args()
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        self.layer.args_mut()
    }

    fn output_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        self.layer.output_shapes(input_shapes)
    }

    fn params(&self) -> Vec<ParamId> {
        self.params.clone()
    }

    fn config(&self) -> Value {
        self.layer.config()
    }
}
