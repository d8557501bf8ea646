//! `Dense`: the fully-connected layer, `activation(x · kernel + bias)`, on the last axis.

use super::common::{WeightArgs, layer_builders, weight_builders};
use super::{Layer, LayerArgs, ParamShape, args};
use crate::activations;
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
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
    args: LayerArgs,
    weights: WeightArgs,
    units: usize,
    function: activations::Activation,
    input_width: usize,
    kernel: Option<ParamId>,
    bias: Option<ParamId>,
}

impl Dense {
    /// A Dense layer with `units` outputs.
    pub fn new(units: usize) -> Self {
        Dense {
            args: LayerArgs::default(),
            weights: WeightArgs::default(),
            units,
            function: activations::Activation::Linear,
            input_width: 0,
            kernel: None,
            bias: None,
        }
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(Dense {
            args: LayerArgs::with_input_shape(config)?,
            weights: WeightArgs::from_config(config)?,
            ..Dense::new(args::required_size(config, "units", "Dense")?)
        })
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

layer_builders!(Dense, input_shape);
weight_builders!(Dense);

impl Layer for Dense {
    fn class_name(&self) -> &'static str {
        "Dense"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if self.units == 0 {
            return Err(Error::invalid(
                "units",
                0,
                format!("layer '{}' needs at least one unit", self.args.name),
            ));
        }
        // As in Keras, the kernel acts on the last axis: (steps, features) sequences are
        // projected step by step, the pixels of (height, width, channels) images one by one.
        let features = match input_shape.last() {
            Some(&features) if input_shape.iter().all(|&d| d > 0) => features,
            _ => {
                return Err(Error::LayerShape {
                    layer: self.args.name.clone(),
                    expected: "(None, ..., features)".into(),
                    received: keras_shape(input_shape),
                });
            }
        };
        self.weights.validate()?;
        super::check_weight_count(&self.args.name, &[features, self.units])?;
        let mut output = input_shape.to_vec();
        *output.last_mut().expect("one axis or more") = self.units;
        Ok(output)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let trainable = self.args.trainable;
        let features = input_shape[input_shape.len() - 1];
        let mut shapes = vec![ParamShape::new(vec![features, self.units], trainable)];
        if self.weights.use_bias {
            shapes.push(ParamShape::new(vec![self.units], trainable));
        }
        Ok(shapes)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        self.function = activations::Activation::from_name(&self.weights.activation)?;
        self.input_width = input_shape[input_shape.len() - 1];
        super::check_weight_count(&self.args.name, &[self.input_width, self.units])?;
        let kernel = self
            .weights
            .kernel_initializer
            .initialize(&[self.input_width, self.units], rng);
        self.kernel = Some(params.add(format!("{}/kernel", self.args.name), kernel, self.args.trainable));
        params.set_regularizer(self.kernel.expect("just added"), self.weights.kernel_regularizer);
        if self.weights.use_bias {
            let bias = self.weights.bias_initializer.initialize(&[self.units], rng);
            self.bias = Some(params.add(format!("{}/bias", self.args.name), bias, self.args.trainable));
            params.set_regularizer(self.bias.expect("just added"), self.weights.bias_regularizer);
        }
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.shape(x);
        if shape.len() < 2 || shape.last() != Some(&self.input_width) {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!("(None, ..., {})", self.input_width),
                received: keras_shape(shape.get(1..).unwrap_or(&[])),
            });
        }
        if shape.len() > 3 {
            let shape = shape.to_vec();
            // Images and deeper samples as one sequence of their positions, and back.
            let positions = shape[1..shape.len() - 1].iter().product();
            let rows = graph.reshape(x, &[shape[0], positions, self.input_width])?;
            let y = self.forward_one(graph, rows)?;
            let mut out_shape = shape;
            *out_shape.last_mut().expect("four axes or more") = self.units;
            return graph.reshape(y, &out_shape);
        }
        let kernel = self
            .kernel
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.args.name)))?;
        let bias = self.bias.map(|b| graph.param(b));
        // A quantized model multiplies in int8 (Keras's `_int8_call`), with a ReLU in the same
        // pass.
        if graph.params().quantized(kernel).is_some() && self.function == activations::Activation::Relu {
            let y = graph.int8_linear_relu(x, kernel, bias)?;
            graph.pass_mask(x, y);
            return Ok(y);
        }
        let y = if graph.params().quantized(kernel).is_some() {
            graph.int8_linear(x, kernel, bias)?
        } else {
            let kernel = graph.param(kernel);
            graph.linear_in(x, kernel, bias, self.weights.dtype_policy.products())?
        };
        let y = self.function.apply(graph, y);
        // A sequence keeps its mask (Keras's Dense supports masking).
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn params(&self) -> Vec<ParamId> {
        self.kernel.into_iter().chain(self.bias).collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(self.weights.config(serde_json::json!({
            "units": self.units,
        })))
    }
}
