//! The arguments layers share, kept in one place: [`LayerArgs`] (name, `trainable`, the declared
//! input shape) for every layer, [`WeightArgs`] (activation, initializers, regularizers) for those
//! with a kernel and a bias; each read from and written to configs here, with its builder
//! methods written once in a macro.

use super::{Layer, args};
use crate::activations;
use crate::error::{Error, Result};
use crate::initializers::Initializer;
use crate::mixed_precision::{self, DTypePolicy};
use crate::regularizers::Regularizer;
use serde_json::Value;

/// What every layer has besides its own settings, as Keras's base `Layer` holds it.
#[derive(Clone, Debug)]
pub struct LayerArgs {
    /// The unique name in the model (`dense`, `dense_1`, ...); empty until named.
    pub name: String,
    /// Whether the optimizer updates the layer's weights. Defaults to true. A model reads it
    /// when it is built and when it is compiled.
    pub trainable: bool,
    /// The per-sample input shape declared on a first layer (Keras's `input_shape=`).
    pub input_shape: Option<Vec<usize>>,
}

impl Default for LayerArgs {
    fn default() -> Self {
        LayerArgs {
            name: String::new(),
            trainable: true,
            input_shape: None,
        }
    }
}

impl LayerArgs {
    /// Reads the shared keys of `config` (`name`, `trainable`) into a freshly built `layer`;
    /// the input shape is the layer's own business (not every layer declares one).
    pub(crate) fn apply_config(layer: &mut dyn Layer, config: &Value) -> Result<()> {
        if let Some(name) = config.get("name").and_then(Value::as_str).filter(|n| !n.is_empty()) {
            layer.set_name(name.to_string());
        }
        match config.get("trainable") {
            None | Some(Value::Null) => {}
            Some(Value::Bool(trainable)) => layer.set_trainable(*trainable),
            Some(other) => return Err(Error::Data(format!("\"trainable\" must be true or false, got {other}"))),
        }
        Ok(())
    }

    /// Reads the declared input shape of `config`, for layers that accept one.
    pub(crate) fn with_input_shape(config: &Value) -> Result<Self> {
        Ok(LayerArgs {
            input_shape: args::input_shape(config)?,
            ..LayerArgs::default()
        })
    }

    /// A layer's config: its own `settings` (a JSON object) after the shared keys, in
    /// Keras's order (`name`, `trainable`, then the layer's).
    pub(crate) fn config(&self, settings: Value) -> Value {
        let mut config = serde_json::json!({"name": self.name, "trainable": self.trainable});
        if let (Some(shared), Value::Object(own)) = (config.as_object_mut(), settings) {
            shared.extend(own);
        }
        config
    }
}

/// The builder methods for [`LayerArgs`] (`name`, `trainable`, and with `input_shape` listed,
/// `input_shape`), as inherent methods of a layer type whose `args` field holds them. Generic
/// layers name their parameters: `layer_builders!(impl[K: RecurrentKind] Recurrent<K>)`.
macro_rules! layer_builders {
    (impl[$($generics:tt)*] $layer:ty) => {
        impl<$($generics)*> $layer {
            /// Gives the layer a name instead of the automatic one (`dense`, `dense_1`, ...).
            pub fn name(mut self, name: &str) -> Self {
                $crate::layers::Layer::set_name(&mut self, name.to_string());
                self
            }

            /// Freezes the layer's weights (`false`): the optimizer leaves them as they are.
            /// Defaults to true.
            pub fn trainable(mut self, trainable: bool) -> Self {
                $crate::layers::Layer::set_trainable(&mut self, trainable);
                self
            }
        }
    };
    (impl[$($generics:tt)*] $layer:ty, input_shape) => {
        layer_builders!(impl[$($generics)*] $layer);

        impl<$($generics)*> $layer {
            /// Declares the model's input shape on this first layer (Keras's `input_shape=`).
            pub fn input_shape(mut self, shape: &[usize]) -> Self {
                self.args.input_shape = Some(shape.to_vec());
                self
            }
        }
    };
    ($layer:ty) => {
        layer_builders!(impl[] $layer);
    };
    ($layer:ty, input_shape) => {
        layer_builders!(impl[] $layer, input_shape);
    };
}
pub(crate) use layer_builders;

/// What a layer with a kernel and a bias takes (`Dense`, `Conv2D`, `Conv1D`), with Keras's
/// defaults: no activation, a bias, `glorot_uniform` kernel, `zeros` bias, no penalties.
#[derive(Clone, Debug)]
pub struct WeightArgs {
    /// The activation's Keras name; an unknown one is reported when the model is built.
    pub activation: String,
    /// Whether to add a bias.
    pub use_bias: bool,
    /// How the kernel starts.
    pub kernel_initializer: Initializer,
    /// How the bias starts.
    pub bias_initializer: Initializer,
    /// A penalty on the kernel added to the training loss.
    pub kernel_regularizer: Option<Regularizer>,
    /// A penalty on the bias added to the training loss.
    pub bias_regularizer: Option<Regularizer>,
    /// What the layer's products compute in (Keras's `dtype` argument): the global policy
    /// when the layer was constructed, unless set. `Conv2DTranspose` computes in f32 under
    /// every policy.
    pub dtype_policy: DTypePolicy,
}

impl Default for WeightArgs {
    fn default() -> Self {
        WeightArgs {
            activation: "linear".into(),
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            // Read when the layer is constructed, as Keras's layers read the global policy.
            dtype_policy: mixed_precision::global_policy(),
        }
    }
}

impl WeightArgs {
    /// Reads Keras's keys (`activation`, `use_bias`, `kernel_initializer`, ...), absent ones
    /// left at their defaults.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let defaults = WeightArgs::default();
        Ok(WeightArgs {
            activation: args::activation(config, "activation", &defaults.activation)?,
            use_bias: args::flag(config, "use_bias", true)?,
            kernel_initializer: args::initializer(config, "kernel_initializer")?.unwrap_or(defaults.kernel_initializer),
            bias_initializer: args::initializer(config, "bias_initializer")?.unwrap_or(defaults.bias_initializer),
            kernel_regularizer: args::regularizer(config, "kernel_regularizer")?,
            bias_regularizer: args::regularizer(config, "bias_regularizer")?,
            dtype_policy: mixed_precision::policy_of_config(config)?,
        })
    }

    /// Adds Keras's keys to a layer's `settings` (a JSON object).
    pub(crate) fn config(&self, mut settings: Value) -> Value {
        let keys = serde_json::json!({
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer.name(),
            "bias_initializer": self.bias_initializer.name(),
            "kernel_regularizer": self.kernel_regularizer.map(|r| r.config()),
            "bias_regularizer": self.bias_regularizer.map(|r| r.config()),
        });
        if let (Some(own), Value::Object(keys)) = (settings.as_object_mut(), keys) {
            own.extend(keys);
            // Only a non-default policy is written, so configs of f32 models stay as they were.
            if let Some(policy) = mixed_precision::config_of_policy(self.dtype_policy) {
                own.insert("dtype".into(), policy);
            }
        }
        settings
    }

    /// Checks the activation's name and the penalties, as a build would.
    pub(crate) fn validate(&self) -> Result<()> {
        activations::Activation::from_name(&self.activation)?;
        for regularizer in self.kernel_regularizer.iter().chain(&self.bias_regularizer) {
            regularizer.validate()?;
        }
        Ok(())
    }
}

/// The builder methods for [`WeightArgs`], as inherent methods of a layer type whose `weights`
/// field holds them.
macro_rules! weight_builders {
    ($layer:ty) => {
        impl $layer {
            /// The activation, by Keras name (`"relu"`, `"softmax"`, ...). Defaults to
            /// `"linear"`. An unknown name is reported, with the valid ones, when the model is
            /// built.
            pub fn activation(mut self, name: &str) -> Self {
                self.weights.activation = name.to_string();
                self
            }

            /// Whether to add a bias. Defaults to true.
            pub fn use_bias(mut self, use_bias: bool) -> Self {
                self.weights.use_bias = use_bias;
                self
            }

            /// How the kernel starts. Defaults to `glorot_uniform`.
            pub fn kernel_initializer(mut self, initializer: $crate::initializers::Initializer) -> Self {
                self.weights.kernel_initializer = initializer;
                self
            }

            /// How the bias starts. Defaults to `zeros`.
            pub fn bias_initializer(mut self, initializer: $crate::initializers::Initializer) -> Self {
                self.weights.bias_initializer = initializer;
                self
            }

            /// A penalty on the kernel added to the training loss (`l2(0.01)`, ...). Defaults
            /// to none.
            pub fn kernel_regularizer(mut self, regularizer: $crate::regularizers::Regularizer) -> Self {
                self.weights.kernel_regularizer = Some(regularizer);
                self
            }

            /// A penalty on the bias added to the training loss. Defaults to none.
            pub fn bias_regularizer(mut self, regularizer: $crate::regularizers::Regularizer) -> Self {
                self.weights.bias_regularizer = Some(regularizer);
                self
            }

            /// The layer's dtype policy (Keras's `dtype="mixed_bfloat16"` argument) instead of
            /// the global one it was constructed under; see [`crate::mixed_precision`].
            pub fn dtype_policy(mut self, policy: $crate::mixed_precision::DTypePolicy) -> Self {
                self.weights.dtype_policy = policy;
                self
            }

            /// The layer's dtype policy (Keras's `layer.dtype_policy`).
            pub fn policy(&self) -> $crate::mixed_precision::DTypePolicy {
                self.weights.dtype_policy
            }
        }
    };
}
pub(crate) use weight_builders;
