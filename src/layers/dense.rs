//! `Dense`: the fully-connected layer, `activation(x · kernel + bias)`.

use super::Layer;
use crate::activations;
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::regularizers::Regularizer;
use crate::rng::Rng;

/// A fully-connected layer with Keras's arguments and defaults: no activation, a bias,
/// `glorot_uniform` kernel `(in, units)` and `zeros` bias.
///
/// ```
/// use strata::layers::Dense;
/// let hidden = Dense::new(128).activation("relu");
/// ```
#[derive(Clone, Debug)]
pub struct Dense {
    name: String,
    units: usize,
    activation: String,
    use_bias: bool,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
    input_shape: Option<Vec<usize>>,
    function: activations::Activation,
    input_width: usize,
    kernel: Option<ParamId>,
    bias: Option<ParamId>,
}

impl Dense {
    /// A Dense layer with `units` outputs.
    pub fn new(units: usize) -> Self {
        Dense {
            name: String::new(),
            units,
            activation: "linear".into(),
            use_bias: true,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            input_shape: None,
            function: activations::Activation::Linear,
            input_width: 0,
            kernel: None,
            bias: None,
        }
    }

    /// The activation, by Keras name (`"relu"`, `"softmax"`, ...). Defaults to `"linear"`.
    /// An unknown name is reported, with the valid ones, when the model is built.
    pub fn activation(mut self, name: &str) -> Self {
        self.activation = name.to_string();
        self
    }

    /// Whether to add a bias. Defaults to true.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// How the kernel starts. Defaults to `glorot_uniform`.
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.kernel_initializer = initializer;
        self
    }

    /// How the bias starts. Defaults to `zeros`.
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.bias_initializer = initializer;
        self
    }

    /// A penalty on the kernel added to the training loss (`l2(0.01)`, ...). Defaults to none.
    pub fn kernel_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.kernel_regularizer = Some(regularizer);
        self
    }

    /// A penalty on the bias added to the training loss. Defaults to none.
    pub fn bias_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.bias_regularizer = Some(regularizer);
        self
    }

    /// Declares the model's input shape on this first layer (Keras's `input_shape=`).
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// Gives the layer a name instead of the automatic `dense_N`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }

    /// Number of outputs.
    pub fn units(&self) -> usize {
        self.units
    }

    /// The kernel's id, once built.
    pub fn kernel(&self) -> Option<ParamId> {
        self.kernel
    }

    /// The bias's id, once built (and if `use_bias`).
    pub fn bias(&self) -> Option<ParamId> {
        self.bias
    }
}

impl Layer for Dense {
    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if self.units == 0 {
            return Err(Error::invalid(
                "units",
                0,
                format!("layer '{}' needs at least one unit", self.name),
            ));
        }
        if input_shape.len() != 1 || input_shape[0] == 0 {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                expected: "(None, features): one axis per sample; add a Flatten layer before it".into(),
                received: keras_shape(input_shape),
            });
        }
        activations::Activation::from_name(&self.activation)?;
        for regularizer in self.kernel_regularizer.iter().chain(&self.bias_regularizer) {
            regularizer.validate()?;
        }
        super::check_weight_count(&self.name, &[input_shape[0], self.units])?;
        Ok(vec![self.units])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        self.function = activations::Activation::from_name(&self.activation)?;
        self.input_width = input_shape[0];
        super::check_weight_count(&self.name, &[self.input_width, self.units])?;
        let kernel = self.kernel_initializer.initialize(&[self.input_width, self.units], rng);
        self.kernel = Some(params.add(format!("{}/kernel", self.name), kernel, true));
        params.set_regularizer(self.kernel.expect("just added"), self.kernel_regularizer);
        if self.use_bias {
            let bias = self.bias_initializer.initialize(&[self.units], rng);
            self.bias = Some(params.add(format!("{}/bias", self.name), bias, true));
            params.set_regularizer(self.bias.expect("just added"), self.bias_regularizer);
        }
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.shape(x);
        if shape.len() != 2 || shape[1] != self.input_width {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                expected: keras_shape(&[self.input_width]),
                received: keras_shape(shape.get(1..).unwrap_or(&[])),
            });
        }
        let kernel = self
            .kernel
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.name)))?;
        let kernel = graph.param(kernel);
        let bias = self.bias.map(|b| graph.param(b));
        let y = graph.linear(x, kernel, bias)?;
        Ok(self.function.apply(graph, y))
    }

    fn params(&self) -> Vec<ParamId> {
        self.kernel.into_iter().chain(self.bias).collect()
    }

    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "units": self.units,
            "activation": self.activation,
            "use_bias": self.use_bias,
            "kernel_initializer": self.kernel_initializer.name(),
            "bias_initializer": self.bias_initializer.name(),
            "kernel_regularizer": self.kernel_regularizer.map(|r| r.config()),
            "bias_regularizer": self.bias_regularizer.map(|r| r.config()),
        })
    }
}
