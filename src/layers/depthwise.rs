//! `DepthwiseConv2D` and `SeparableConv2D`: convolutions that filter each channel on its own
//! (MobileNet, Xception, EfficientNet), on the depthwise kernel in `kernels::depthwise`.

use super::conv::parse_padding;
use super::preprocessing::check_data_format;
use super::{IntoPair, Layer, ParamShape, args, check_window};
use crate::activations;
use crate::autograd::{Graph, ParamId, ParamStore, Var, WindowOptions};
use crate::error::{Error, Result};
use crate::initializers::Initializer;
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::regularizers::Regularizer;
use crate::rng::Rng;
use serde_json::{Value, json};

/// The 1×1 convolution that follows the depthwise step in a `SeparableConv2D`.
#[derive(Clone, Debug)]
struct Pointwise {
    filters: usize,
    initializer: Initializer,
    regularizer: Option<Regularizer>,
    kernel: Option<ParamId>,
}

/// Keras's `DepthwiseConv2D(kernel_size, strides=1, padding="valid", depth_multiplier=1,
/// dilation_rate=1, activation=None, use_bias=True)`: each input channel convolved with its
/// own `depth_multiplier` filters; kernel `(kh, kw, in_channels, depth_multiplier)`
/// (`glorot_uniform`), bias `(in_channels·depth_multiplier)` (`zeros`), output channel
/// `c·depth_multiplier + m`. Also the type of a [`SeparableConv2D`].
///
/// ```
/// use strata::layers::DepthwiseConv2D;
/// let dw = DepthwiseConv2D::new(3).strides(2).padding("same").use_bias(false);
/// ```
#[derive(Clone, Debug)]
pub struct DepthwiseConv2D {
    args: LayerArgs,
    kernel_size: (usize, usize),
    options: WindowOptions,
    padding_name: String,
    depth_multiplier: usize,
    activation: String,
    use_bias: bool,
    depthwise_initializer: Initializer,
    bias_initializer: Initializer,
    depthwise_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
    pointwise: Option<Pointwise>,
    function: activations::Activation,
    kernel: Option<ParamId>,
    bias: Option<ParamId>,
}

/// Keras's `SeparableConv2D(filters, kernel_size, ...)`: a depthwise convolution (no bias)
/// then a 1×1 convolution to `filters` channels with the bias; weights `depthwise_kernel (kh,
/// kw, in, depth_multiplier)`, `pointwise_kernel (1, 1, in·depth_multiplier, filters)`, `bias
/// (filters)`. Built as a [`DepthwiseConv2D`] with a pointwise step.
pub struct SeparableConv2D;

impl SeparableConv2D {
    /// `filters` output channels after a `kernel_size` depthwise window.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(filters: usize, kernel_size: impl IntoPair) -> DepthwiseConv2D {
        DepthwiseConv2D {
            pointwise: Some(Pointwise {
                filters,
                initializer: Initializer::GlorotUniform,
                regularizer: None,
                kernel: None,
            }),
            ..DepthwiseConv2D::new(kernel_size)
        }
    }
}

impl DepthwiseConv2D {
    /// A depthwise convolution with a `kernel_size` window (`3` or `(3, 3)`).
    pub fn new(kernel_size: impl IntoPair) -> Self {
        DepthwiseConv2D {
            args: LayerArgs::default(),
            kernel_size: kernel_size.into_pair(),
            options: WindowOptions::default(),
            padding_name: "valid".into(),
            depth_multiplier: 1,
            activation: "linear".into(),
            use_bias: true,
            depthwise_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            depthwise_regularizer: None,
            bias_regularizer: None,
            pointwise: None,
            function: activations::Activation::Linear,
            kernel: None,
            bias: None,
        }
    }

    /// Step between windows (`2` or `(2, 1)`). Defaults to 1.
    pub fn strides(mut self, strides: impl IntoPair) -> Self {
        self.options.strides = strides.into_pair();
        self
    }

    /// `"valid"` (default) or `"same"` (TensorFlow's split: the extra row or column at the
    /// bottom or right); another name is reported when the model is built.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding_name = padding.to_string();
        self
    }

    /// Spacing between kernel taps (`2` or `(2, 2)`). Defaults to 1.
    pub fn dilation_rate(mut self, dilation: impl IntoPair) -> Self {
        self.options.dilation = dilation.into_pair();
        self
    }

    /// Filters per input channel. Defaults to 1.
    pub fn depth_multiplier(mut self, depth_multiplier: usize) -> Self {
        self.depth_multiplier = depth_multiplier;
        self
    }

    /// The activation, by Keras name. Defaults to `"linear"`.
    pub fn activation(mut self, name: &str) -> Self {
        self.activation = name.to_string();
        self
    }

    /// Whether to add a bias. Defaults to true.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// How the depthwise kernel starts. Defaults to `glorot_uniform`.
    pub fn depthwise_initializer(mut self, initializer: Initializer) -> Self {
        self.depthwise_initializer = initializer;
        self
    }

    /// How the bias starts. Defaults to `zeros`.
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.bias_initializer = initializer;
        self
    }

    /// Keras's class: `SeparableConv2D` with a pointwise step, else `DepthwiseConv2D`.
    fn class(&self) -> &'static str {
        if self.pointwise.is_some() {
            "SeparableConv2D"
        } else {
            "DepthwiseConv2D"
        }
    }

    fn bad(&self, argument: &str, value: impl std::fmt::Display, why: &str) -> Error {
        Error::invalid(
            argument,
            value,
            format!("layer '{}' ({}) {why}", self.args.name, self.class()),
        )
    }

    /// The weights' shapes (depthwise kernel, pointwise kernel if any, bias if any) and the
    /// per-sample output shape, or the error naming the layer.
    fn geometry(&self, input_shape: &[usize]) -> Result<(Vec<Vec<usize>>, Vec<usize>)> {
        if self.depth_multiplier == 0 {
            return Err(self.bad("depth_multiplier", 0, "needs a depth_multiplier of at least 1"));
        }
        if self.pointwise.as_ref().is_some_and(|p| p.filters == 0) {
            return Err(self.bad("filters", 0, "needs at least one filter"));
        }
        activations::Activation::from_name(&self.activation)?;
        let regularizers = [&self.depthwise_regularizer, &self.bias_regularizer];
        let pointwise = self.pointwise.as_ref().and_then(|p| p.regularizer.as_ref());
        for regularizer in regularizers.into_iter().flatten().chain(pointwise) {
            regularizer.validate()?;
        }
        let mut options = self.options;
        options.padding = parse_padding(&self.args.name, &self.padding_name)?;
        let g = check_window(&self.args.name, input_shape, self.kernel_size, options)?;
        let depthwise = g.channels.checked_mul(self.depth_multiplier).ok_or_else(|| {
            self.bad(
                "depth_multiplier",
                self.depth_multiplier,
                "would make too many channels",
            )
        })?;
        let (kh, kw) = self.kernel_size;
        let mut weights = vec![vec![kh, kw, g.channels, self.depth_multiplier]];
        let out_channels = match &self.pointwise {
            Some(p) => {
                weights.push(vec![1, 1, depthwise, p.filters]);
                p.filters
            }
            None => depthwise,
        };
        if self.use_bias {
            weights.push(vec![out_channels]);
        }
        for shape in &weights {
            super::check_weight_count(&self.args.name, shape)?;
        }
        Ok((weights, vec![g.out_h, g.out_w, out_channels]))
    }

    /// A `DepthwiseConv2D` (or, with `filters`, a `SeparableConv2D`) from Keras's
    /// `get_config()` keys.
    pub(crate) fn from_config(config: &Value, separable: bool) -> Result<Self> {
        let class = if separable {
            "SeparableConv2D"
        } else {
            "DepthwiseConv2D"
        };
        check_data_format(config, class)?;
        let kernel =
            args::pair(config, "kernel_size")?.ok_or_else(|| Error::Data(format!("{class} needs \"kernel_size\"")))?;
        let mut layer = if separable {
            SeparableConv2D::new(args::required_size(config, "filters", class)?, kernel)
        } else {
            DepthwiseConv2D::new(kernel)
        };
        layer.args = LayerArgs::with_input_shape(config)?;
        layer.options.strides = args::pair(config, "strides")?.unwrap_or((1, 1));
        layer.options.dilation = args::pair(config, "dilation_rate")?.unwrap_or((1, 1));
        layer.padding_name = args::string(config, "padding", "valid")?;
        layer.depth_multiplier = match config.get("depth_multiplier") {
            None | Some(Value::Null) => 1,
            Some(_) => args::required_size(config, "depth_multiplier", class)?,
        };
        layer.activation = args::activation(config, "activation", "linear")?;
        layer.use_bias = args::flag(config, "use_bias", true)?;
        layer.depthwise_initializer =
            args::initializer(config, "depthwise_initializer")?.unwrap_or(Initializer::GlorotUniform);
        layer.bias_initializer = args::initializer(config, "bias_initializer")?.unwrap_or(Initializer::Zeros);
        layer.depthwise_regularizer = args::regularizer(config, "depthwise_regularizer")?;
        layer.bias_regularizer = args::regularizer(config, "bias_regularizer")?;
        if let Some(p) = layer.pointwise.as_mut() {
            p.initializer = args::initializer(config, "pointwise_initializer")?.unwrap_or(Initializer::GlorotUniform);
            p.regularizer = args::regularizer(config, "pointwise_regularizer")?;
        }
        Ok(layer)
    }

    /// Adds one weight to `params` with its penalty.
    fn add_weight(
        &self,
        params: &mut ParamStore,
        rng: &mut Rng,
        what: &str,
        shape: &[usize],
        start: (Initializer, Option<Regularizer>),
    ) -> ParamId {
        let id = params.add(
            format!("{}/{what}", self.args.name),
            start.0.initialize(shape, rng),
            self.args.trainable,
        );
        params.set_regularizer(id, start.1);
        id
    }
}

layer_builders!(DepthwiseConv2D, input_shape);

impl Layer for DepthwiseConv2D {
    fn class_name(&self) -> &'static str {
        self.class()
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        Ok(self.geometry(input_shape)?.1)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class(), input_shapes)?;
        let (shapes, _) = self.geometry(input_shape)?;
        Ok(shapes
            .into_iter()
            .map(|shape| ParamShape::new(shape, self.args.trainable))
            .collect())
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class(), input_shapes)?;
        let (shapes, _) = self.geometry(input_shape)?;
        self.options.padding = parse_padding(&self.args.name, &self.padding_name)?;
        self.function = activations::Activation::from_name(&self.activation)?;
        // Keras 3's names: `kernel` for DepthwiseConv2D, `depthwise_kernel` in SeparableConv2D.
        let depthwise_name = if self.pointwise.is_some() {
            "depthwise_kernel"
        } else {
            "kernel"
        };
        let depthwise = (self.depthwise_initializer, self.depthwise_regularizer);
        self.kernel = Some(self.add_weight(params, rng, depthwise_name, &shapes[0], depthwise));
        if let Some(p) = self.pointwise.clone() {
            let id = self.add_weight(
                params,
                rng,
                "pointwise_kernel",
                &shapes[1],
                (p.initializer, p.regularizer),
            );
            if let Some(p) = self.pointwise.as_mut() {
                p.kernel = Some(id);
            }
        }
        if self.use_bias {
            let bias = (self.bias_initializer, self.bias_regularizer);
            self.bias = Some(self.add_weight(params, rng, "bias", shapes.last().map_or(&[][..], Vec::as_slice), bias));
        }
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let unbuilt = || Error::Usage(format!("layer '{}' used before it was built", self.args.name));
        let kernel_id = self.kernel.ok_or_else(unbuilt)?;
        let bias = self.bias.map(|b| graph.param(b));
        if self.pointwise.is_none() && graph.params().quantized(kernel_id).is_some() {
            // A quantized `DepthwiseConv2D` convolves in int8 (`model.quantize("int8")`).
            let y = graph.int8_depthwise_conv2d(x, kernel_id, bias, self.options)?;
            return Ok(self.function.apply(graph, y));
        }
        let kernel = graph.param(kernel_id);
        let y = match &self.pointwise {
            None => graph.depthwise_conv2d(x, kernel, bias, self.options)?,
            Some(p) => {
                let depthwise = graph.depthwise_conv2d(x, kernel, None, self.options)?;
                let pointwise = graph.param(p.kernel.ok_or_else(unbuilt)?);
                graph.conv2d(depthwise, pointwise, bias, WindowOptions::default())?
            }
        };
        Ok(self.function.apply(graph, y))
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        let plain = self.pointwise.is_none() && self.function == activations::Activation::Linear;
        plain.then_some(crate::layers::InferenceRole::Convolution {
            kernel: self.kernel?,
            bias: self.bias,
            options: self.options,
            depthwise: true,
        })
    }

    fn params(&self) -> Vec<ParamId> {
        let pointwise = self.pointwise.as_ref().and_then(|p| p.kernel);
        self.kernel.into_iter().chain(pointwise).chain(self.bias).collect()
    }

    fn config(&self) -> Value {
        let pair = |p: (usize, usize)| json!([p.0, p.1]);
        let mut settings = json!({
            "depth_multiplier": self.depth_multiplier,
            "kernel_size": pair(self.kernel_size),
            "strides": pair(self.options.strides),
            "padding": self.padding_name,
            "data_format": "channels_last",
            "dilation_rate": pair(self.options.dilation),
            "activation": self.activation,
            "use_bias": self.use_bias,
            "depthwise_initializer": self.depthwise_initializer.name(),
            "bias_initializer": self.bias_initializer.name(),
            "depthwise_regularizer": self.depthwise_regularizer.map(|r| r.config()),
            "bias_regularizer": self.bias_regularizer.map(|r| r.config()),
        });
        if let (Some(p), Some(own)) = (&self.pointwise, settings.as_object_mut()) {
            own.insert("filters".into(), json!(p.filters));
            own.insert("pointwise_initializer".into(), json!(p.initializer.name()));
            own.insert("pointwise_regularizer".into(), json!(p.regularizer.map(|r| r.config())));
        }
        self.args.config(settings)
    }
}
