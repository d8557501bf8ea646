//! `Conv2D` and `Conv1D`: convolutions over channels-last images and sequences.

use super::{IntoPair, Layer, ParamShape, args, check_window, check_window_1d};
use crate::activations;
use crate::autograd::{Graph, ParamId, ParamStore, Var, WindowOptions};
use crate::error::{Error, Result};
use crate::kernels::Padding;
use crate::layers::LayerArgs;
use crate::layers::common::{WeightArgs, layer_builders, weight_builders};
use crate::rng::Rng;

/// A 2-D convolution with Keras's arguments and defaults: strides 1, `"valid"` padding,
/// dilation 1, no activation, a bias, `glorot_uniform` kernel `(kh, kw, in, filters)`, `zeros`
/// bias. Input `(N, H, W, C)`, output `(N, OH, OW, filters)`.
///
/// ```
/// use strata::layers::Conv2D;
/// let conv = Conv2D::new(32, (3, 3)).activation("relu").padding("same");
/// ```
#[derive(Clone, Debug)]
pub struct Conv2D {
    args: LayerArgs,
    weights: WeightArgs,
    filters: usize,
    kernel_size: (usize, usize),
    options: WindowOptions,
    padding_name: String,
    function: activations::Activation,
    kernel: Option<ParamId>,
    bias: Option<ParamId>,
    /// Conv1D runs as a Conv2D over a height of one.
    one_dimensional: bool,
}

impl Conv2D {
    /// `filters` output channels with a `kernel_size` window (`3` or `(3, 3)`).
    pub fn new(filters: usize, kernel_size: impl IntoPair) -> Self {
        Conv2D {
            args: LayerArgs::default(),
            weights: WeightArgs::default(),
            filters,
            kernel_size: kernel_size.into_pair(),
            options: WindowOptions::default(),
            padding_name: "valid".into(),
            function: activations::Activation::Linear,
            kernel: None,
            bias: None,
            one_dimensional: false,
        }
    }

    /// Step between windows (`2` or `(2, 1)`). Defaults to 1.
    pub fn strides(mut self, strides: impl IntoPair) -> Self {
        self.options.strides = strides.into_pair();
        self
    }

    /// `"valid"` (default) or `"same"`, and for `Conv1D` `"causal"` (zeros before each
    /// sequence only, so step `t` sees steps up to `t`, as WaveNet's convolutions); another
    /// name is reported when the model is built.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding_name = padding.to_string();
        self
    }

    /// Spacing between kernel taps (`2` or `(2, 2)`). Defaults to 1.
    pub fn dilation_rate(mut self, dilation: impl IntoPair) -> Self {
        self.options.dilation = dilation.into_pair();
        self
    }
}

/// A 1-D convolution over `(N, steps, C)`, as Keras's `Conv1D`: kernel `(k, C, filters)`,
/// output `(N, new_steps, filters)`. Runs on the Conv2D kernels with a height of one.
pub struct Conv1D;

impl Conv1D {
    /// `filters` output channels with a window of `kernel_size` steps.
    #[allow(clippy::new_ret_no_self)]
    pub fn new(filters: usize, kernel_size: usize) -> Conv2D {
        Conv2D {
            one_dimensional: true,
            ..Conv2D::new(filters, (1, kernel_size))
        }
    }
}

pub(super) fn parse_padding(layer: &str, name: &str) -> Result<Padding> {
    match name.to_ascii_lowercase().as_str() {
        "valid" => Ok(Padding::Valid),
        "same" => Ok(Padding::Same),
        _ => Err(Error::invalid(
            "padding",
            name,
            format!("layer '{layer}' accepts \"valid\" or \"same\""),
        )),
    }
}

impl Conv2D {
    /// With "causal" padding (1-D only): the zero steps put before each sequence,
    /// `(kernel - 1) · dilation`.
    fn causal_steps(&self) -> Option<usize> {
        let causal = self.one_dimensional && self.padding_name.eq_ignore_ascii_case("causal");
        causal.then(|| self.kernel_size.1.saturating_sub(1) * self.options.dilation.1)
    }

    /// The padding the kernels apply: a causal convolution's is "valid" on the padded steps.
    fn kernel_padding(&self) -> Result<Padding> {
        match self.causal_steps() {
            Some(_) => Ok(Padding::Valid),
            None => parse_padding(&self.args.name, &self.padding_name),
        }
    }

    /// The kernel's shape and the per-sample output shape for `input_shape`, or the error
    /// naming the layer.
    fn geometry(&self, input_shape: &[usize]) -> Result<(Vec<usize>, Vec<usize>)> {
        if self.filters == 0 {
            return Err(Error::invalid(
                "filters",
                0,
                format!("layer '{}' needs at least one filter", self.args.name),
            ));
        }
        let mut options = self.options;
        options.padding = self.kernel_padding()?;
        self.weights.validate()?;
        let padded: Vec<usize> = match (self.causal_steps(), input_shape) {
            (Some(before), [steps, channels]) => vec![steps.saturating_add(before), *channels],
            _ => input_shape.to_vec(),
        };
        let g = match self.one_dimensional {
            true => check_window_1d(&self.args.name, &padded, self.kernel_size.1, options)?,
            false => check_window(&self.args.name, input_shape, self.kernel_size, options)?,
        };
        let (kh, kw) = self.kernel_size;
        let kernel_shape = if self.one_dimensional {
            vec![kw, g.channels, self.filters]
        } else {
            vec![kh, kw, g.channels, self.filters]
        };
        // Fans follow the real kernel shape: receptive field kh·kw, in and out channels.
        super::check_weight_count(&self.args.name, &kernel_shape)?;
        let output = if self.one_dimensional {
            vec![g.out_w, self.filters]
        } else {
            vec![g.out_h, g.out_w, self.filters]
        };
        Ok((kernel_shape, output))
    }
}

impl Conv2D {
    /// A `Conv2D` (`dimensions` 2) or `Conv1D` (1) from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value, dimensions: usize) -> Result<Self> {
        let class_name = if dimensions == 1 { "Conv1D" } else { "Conv2D" };
        let filters = args::required_size(config, "filters", class_name)?;
        let kernel = args::pair(config, "kernel_size")?
            .ok_or_else(|| Error::Data(format!("{class_name} needs \"kernel_size\"")))?;
        let mut conv = if dimensions == 1 {
            Conv1D::new(filters, kernel.1)
        } else {
            Conv2D::new(filters, kernel)
        };
        if let Some(strides) = args::pair(config, "strides")? {
            conv = conv.strides(strides);
        }
        if let Some(dilation) = args::pair(config, "dilation_rate")? {
            conv = conv.dilation_rate(dilation);
        }
        if let Some(padding) = config.get("padding").and_then(serde_json::Value::as_str) {
            conv = conv.padding(padding);
        }
        conv.args = LayerArgs::with_input_shape(config)?;
        conv.weights = WeightArgs::from_config(config)?;
        Ok(conv)
    }
}

layer_builders!(Conv2D, input_shape);
weight_builders!(Conv2D);

impl Layer for Conv2D {
    fn class_name(&self) -> &'static str {
        if self.one_dimensional { "Conv1D" } else { "Conv2D" }
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
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        let (kernel_shape, _) = self.geometry(input_shape)?;
        let trainable = self.args.trainable;
        let mut shapes = vec![ParamShape::new(kernel_shape, trainable)];
        if self.weights.use_bias {
            shapes.push(ParamShape::new(vec![self.filters], trainable));
        }
        Ok(shapes)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        let (kernel_shape, _) = self.geometry(input_shape)?;
        self.options.padding = self.kernel_padding()?;
        self.function = activations::Activation::from_name(&self.weights.activation)?;
        let kernel = self.weights.kernel_initializer.initialize(&kernel_shape, rng);
        self.kernel = Some(params.add(format!("{}/kernel", self.args.name), kernel, self.args.trainable));
        params.set_regularizer(self.kernel.expect("just added"), self.weights.kernel_regularizer);
        if self.weights.use_bias {
            let bias = self.weights.bias_initializer.initialize(&[self.filters], rng);
            self.bias = Some(params.add(format!("{}/bias", self.args.name), bias, self.args.trainable));
            params.set_regularizer(self.bias.expect("just added"), self.weights.bias_regularizer);
        }
        Ok(())
    }
    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let kernel_id = self
            .kernel
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.args.name)))?;
        let bias = self.bias.map(|b| graph.param(b));
        let mut input = x;
        if self.one_dimensional {
            let shape = graph.dims(x);
            input = graph.reshape(x, &[shape[0], 1, shape[1], shape[2]])?;
            if let Some(before) = self.causal_steps().filter(|&steps| steps > 0) {
                input = graph.zero_pad2d(input, ((0, 0), (before, 0)))?;
            }
        }
        if graph.params().quantized(kernel_id).is_some() {
            // A quantized model convolves in int8 (the kernel's `(K, C, F)` or `(KH, KW, C, F)`
            // layout is the product's `(patch, filters)` matrix either way).
            let fused_relu = self.function == activations::Activation::Relu;
            let mut y = if fused_relu {
                graph.int8_conv2d_relu(input, kernel_id, bias, self.options)?
            } else {
                graph.int8_conv2d(input, kernel_id, bias, self.options)?
            };
            if self.one_dimensional {
                let shape = graph.dims(y);
                y = graph.reshape(y, &[shape[0], shape[2], shape[3]])?;
            }
            return Ok(if fused_relu { y } else { self.function.apply(graph, y) });
        }
        let mut kernel = graph.param(kernel_id);
        if self.one_dimensional {
            let k = graph.dims(kernel);
            kernel = graph.reshape(kernel, &[1, k[0], k[1], k[2]])?;
        }
        // A ReLU is fused into the convolution: one pass over the output instead of three.
        let fused_relu = self.function == activations::Activation::Relu;
        let dtype = self.weights.dtype_policy.products();
        let mut y = graph.conv2d_in(input, kernel, bias, self.options, fused_relu, dtype)?;
        if self.one_dimensional {
            let shape = graph.dims(y);
            y = graph.reshape(y, &[shape[0], shape[2], shape[3]])?;
        }
        Ok(if fused_relu { y } else { self.function.apply(graph, y) })
    }

    fn params(&self) -> Vec<ParamId> {
        self.kernel.into_iter().chain(self.bias).collect()
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        if self.one_dimensional {
            return None;
        }
        match self.function {
            activations::Activation::Linear => Some(crate::layers::InferenceRole::Convolution {
                kernel: self.kernel?,
                bias: self.bias,
                options: self.options,
                depthwise: false,
            }),
            activations::Activation::Relu => Some(crate::layers::InferenceRole::ConvolutionRelu {
                kernel: self.kernel?,
                bias: self.bias,
                options: self.options,
                float32: self.weights.dtype_policy.products() == crate::kernels::ComputeDtype::Float32,
            }),
            _ => None,
        }
    }

    fn config(&self) -> serde_json::Value {
        let (kh, kw) = self.kernel_size;
        let pair = |p: (usize, usize)| {
            if self.one_dimensional {
                serde_json::json!([p.1])
            } else {
                serde_json::json!([p.0, p.1])
            }
        };
        self.args.config(self.weights.config(serde_json::json!({
            "filters": self.filters,
            "kernel_size": pair((kh, kw)),
            "strides": pair(self.options.strides),
            "padding": self.padding_name,
            "dilation_rate": pair(self.options.dilation),
        })))
    }
}
