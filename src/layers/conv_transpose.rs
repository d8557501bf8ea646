//! `Conv2DTranspose`: the transposed ("de-") convolution that grows channels-last images (a
//! U-Net's or an autoencoder's decoder), on `Graph::conv2d_transpose`.

use super::conv::parse_padding;
use super::preprocessing::check_data_format;
use super::{IntoPair, Layer, ParamShape, args};
use crate::activations;
use crate::autograd::{Graph, ParamId, ParamStore, Var, WindowOptions, transpose_window};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::{WeightArgs, layer_builders, weight_builders};
use crate::rng::Rng;
use crate::tensor::budgeted_numel;
use serde_json::{Value, json};

/// Keras's `Conv2DTranspose(filters, kernel_size, strides=(1, 1), padding="valid",
/// output_padding=None, dilation_rate=(1, 1), activation=None, use_bias=True,
/// kernel_initializer="glorot_uniform", bias_initializer="zeros")`: kernel `(kh, kw, filters,
/// in_channels)` (Keras's layout, so Keras weights load unchanged), bias `(filters)`. Input
/// `(N, H, W, C)`, output `(N, OH, OW, filters)` with Keras's sizes: `H·stride` for `"same"`,
/// `(H − 1)·stride + max(kh, stride)` for `"valid"`, and with `output_padding` `p`,
/// `(H − 1)·stride + kh + p` (`"valid"`) or `(H − 1)·stride + kh % 2 + p` (`"same"`), `kh` the
/// dilated window. Channels-last only.
///
/// ```
/// use strata::layers::Conv2DTranspose;
/// let up = Conv2DTranspose::new(16, 3).strides(2).padding("same").activation("relu");
/// ```
#[derive(Clone, Debug)]
pub struct Conv2DTranspose {
    args: LayerArgs,
    weights: WeightArgs,
    filters: usize,
    kernel_size: (usize, usize),
    options: WindowOptions,
    padding_name: String,
    output_padding: Option<(usize, usize)>,
    function: activations::Activation,
    kernel: Option<ParamId>,
    bias: Option<ParamId>,
}

impl Conv2DTranspose {
    /// `filters` output channels with a `kernel_size` window (`3` or `(3, 3)`).
    pub fn new(filters: usize, kernel_size: impl IntoPair) -> Self {
        Conv2DTranspose {
            args: LayerArgs::default(),
            weights: WeightArgs::default(),
            filters,
            kernel_size: kernel_size.into_pair(),
            options: WindowOptions::default(),
            padding_name: "valid".into(),
            output_padding: None,
            function: activations::Activation::Linear,
            kernel: None,
            bias: None,
        }
    }

    /// Step between the input's pixels in the output (`2` or `(2, 1)`): the growth factor.
    /// Defaults to 1.
    pub fn strides(mut self, strides: impl IntoPair) -> Self {
        self.options.strides = strides.into_pair();
        self
    }

    /// `"valid"` (default) or `"same"`; another name is reported when the model is built.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding_name = padding.to_string();
        self
    }

    /// Extra rows and columns at the bottom and right of the output (`1` or `(1, 0)`), each
    /// below the stride. Defaults to none (Keras's `None`: the sizes above).
    pub fn output_padding(mut self, output_padding: impl IntoPair) -> Self {
        self.output_padding = Some(output_padding.into_pair());
        self
    }

    /// Spacing between kernel taps (`2` or `(2, 2)`); above 1 only with strides of 1, as in
    /// Keras. Defaults to 1.
    pub fn dilation_rate(mut self, dilation: impl IntoPair) -> Self {
        self.options.dilation = dilation.into_pair();
        self
    }

    /// The kernel's shape and the per-sample output shape for `input_shape`, or the error
    /// naming the layer.
    fn geometry(&self, input_shape: &[usize]) -> Result<(Vec<usize>, Vec<usize>)> {
        let name = &self.args.name;
        if self.filters == 0 {
            let reason = format!("layer '{name}' (Conv2DTranspose) needs at least one filter");
            return Err(Error::invalid("filters", 0, reason));
        }
        let mut options = self.options;
        options.padding = parse_padding(name, &self.padding_name)?;
        self.weights.validate()?;
        let shape_error = || Error::LayerShape {
            layer: name.clone(),
            expected: "(None, height, width, channels)".into(),
            received: keras_shape(input_shape),
        };
        if input_shape.len() != 3 || input_shape.contains(&0) {
            return Err(shape_error());
        }
        let batch: Vec<usize> = std::iter::once(1).chain(input_shape.iter().copied()).collect();
        let what = format!("layer '{name}' (Conv2DTranspose)");
        let window = (self.kernel_size, self.filters);
        let g = transpose_window(&what, &batch, window, options, self.output_padding).map_err(|error| match error {
            Error::ShapeMismatch { .. } => Error::InvalidArgument {
                name: "strides".into(),
                value: format!("{:?}", options.strides),
                reason: format!("{what}: the output of input {} overflows", keras_shape(input_shape)),
            },
            other => other,
        })?;
        let (kh, kw) = self.kernel_size;
        let kernel_shape = vec![kh, kw, self.filters, input_shape[2]];
        super::check_weight_count(name, &kernel_shape)?;
        // The products before col2im hold a window of every filter per input pixel: far more
        // than the output for a large window, so they are checked against the budget too.
        let products = [input_shape[0], input_shape[1], kh, kw, self.filters];
        budgeted_numel(
            || format!("{what}: products per sample of shape {products:?}"),
            &products,
        )?;
        Ok((kernel_shape, vec![g.height, g.width, self.filters]))
    }

    /// A `Conv2DTranspose` from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        check_data_format(config, "Conv2DTranspose")?;
        let filters = args::required_size(config, "filters", "Conv2DTranspose")?;
        let kernel = args::pair(config, "kernel_size")?
            .ok_or_else(|| Error::Data("Conv2DTranspose needs \"kernel_size\"".into()))?;
        let mut layer = Conv2DTranspose::new(filters, kernel);
        layer.args = LayerArgs::with_input_shape(config)?;
        layer.weights = WeightArgs::from_config(config)?;
        layer.options.strides = args::pair(config, "strides")?.unwrap_or((1, 1));
        layer.options.dilation = args::pair(config, "dilation_rate")?.unwrap_or((1, 1));
        layer.padding_name = args::string(config, "padding", "valid")?;
        layer.output_padding = output_padding(config)?;
        Ok(layer)
    }
}

/// `output_padding`: `null` (Keras's default), a number for both axes, or a pair; zeros allowed.
fn output_padding(config: &Value) -> Result<Option<(usize, usize)>> {
    let size = |v: &Value| v.as_u64().and_then(|n| usize::try_from(n).ok());
    let value = config.get("output_padding").unwrap_or(&Value::Null);
    let pair = match value {
        Value::Null => return Ok(None),
        Value::Array(items) => match items.as_slice() {
            [a, b] => size(a).zip(size(b)),
            _ => None,
        },
        other => size(other).map(|n| (n, n)),
    };
    pair.map(Some).ok_or_else(|| {
        Error::Data(format!(
            "Conv2DTranspose: \"output_padding\" must be null, a non-negative integer or a list of two, got {value}"
        ))
    })
}

layer_builders!(Conv2DTranspose, input_shape);
weight_builders!(Conv2DTranspose);

impl Layer for Conv2DTranspose {
    fn class_name(&self) -> &'static str {
        "Conv2DTranspose"
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
        let input_shape = super::only_input(&self.args.name, "Conv2DTranspose", input_shapes)?;
        let (kernel_shape, _) = self.geometry(input_shape)?;
        let trainable = self.args.trainable;
        let mut shapes = vec![ParamShape::new(kernel_shape, trainable)];
        if self.weights.use_bias {
            shapes.push(ParamShape::new(vec![self.filters], trainable));
        }
        Ok(shapes)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, "Conv2DTranspose", input_shapes)?;
        let (kernel_shape, _) = self.geometry(input_shape)?;
        self.options.padding = parse_padding(&self.args.name, &self.padding_name)?;
        self.function = activations::Activation::from_name(&self.weights.activation)?;
        let name = &self.args.name;
        let kernel = self.weights.kernel_initializer.initialize(&kernel_shape, rng);
        let kernel = params.add(format!("{name}/kernel"), kernel, self.args.trainable);
        params.set_regularizer(kernel, self.weights.kernel_regularizer);
        self.kernel = Some(kernel);
        if self.weights.use_bias {
            let bias = self.weights.bias_initializer.initialize(&[self.filters], rng);
            let bias = params.add(format!("{name}/bias"), bias, self.args.trainable);
            params.set_regularizer(bias, self.weights.bias_regularizer);
            self.bias = Some(bias);
        }
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let unbuilt = || Error::Usage(format!("layer '{}' used before it was built", self.args.name));
        let kernel = graph.param(self.kernel.ok_or_else(unbuilt)?);
        let bias = self.bias.map(|b| graph.param(b));
        let y = graph.conv2d_transpose(x, kernel, bias, self.options, self.output_padding)?;
        Ok(self.function.apply(graph, y))
    }

    fn params(&self) -> Vec<ParamId> {
        self.kernel.into_iter().chain(self.bias).collect()
    }

    fn config(&self) -> Value {
        let pair = |p: (usize, usize)| json!([p.0, p.1]);
        self.args.config(self.weights.config(json!({
            "filters": self.filters,
            "kernel_size": pair(self.kernel_size),
            "strides": pair(self.options.strides),
            "padding": self.padding_name,
            "output_padding": self.output_padding.map(pair),
            "data_format": "channels_last",
            "dilation_rate": pair(self.options.dilation),
        })))
    }
}
