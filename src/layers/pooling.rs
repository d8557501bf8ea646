//! Pooling layers: `MaxPooling2D`, `AveragePooling2D`, their global forms, and the 1-D forms
//! over sequences (`MaxPooling1D`, `AveragePooling1D`, `GlobalMaxPooling1D`).

use super::conv::parse_padding;
use super::{IntoPair, Layer, args, check_window, check_window_1d};
use crate::autograd::{Graph, ParamStore, Var, WindowOptions};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// Which reduction a pooling layer applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Reduce {
    Max,
    Average,
}

/// Where the window goes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Extent {
    /// A `pool_size` window over `(N, H, W, C)`.
    Window2d,
    /// The whole image: `(N, H, W, C)` → `(N, C)`.
    Global,
    /// A window over steps: `(N, steps, C)`.
    Window1d,
    /// The whole sequence: `(N, steps, C)` → `(N, C)`.
    Global1d,
}

/// Max or average pooling over channels-last inputs, with Keras's defaults: `pool_size` 2,
/// `strides` equal to `pool_size`, `"valid"` padding. Has no weights.
#[derive(Clone, Debug)]
pub struct Pooling {
    args: LayerArgs,
    reduce: Reduce,
    extent: Extent,
    pool_size: (usize, usize),
    strides: Option<(usize, usize)>,
    padding_name: String,
    options: WindowOptions,
    /// Global pooling only: keep the pooled axes as size 1, `(N, 1, 1, C)` (Keras's
    /// `keepdims`, as MobileNet's classifier head uses).
    keepdims: bool,
}

impl Pooling {
    fn new(reduce: Reduce, extent: Extent, pool_size: (usize, usize)) -> Self {
        Pooling {
            args: LayerArgs::default(),
            reduce,
            extent,
            pool_size,
            strides: None,
            padding_name: "valid".into(),
            options: WindowOptions::default(),
            keepdims: false,
        }
    }

    /// Global pooling: keeps the pooled axes, `(N, 1, 1, C)` instead of `(N, C)`. Defaults to
    /// false.
    pub fn keepdims(mut self, keepdims: bool) -> Self {
        self.keepdims = keepdims;
        self
    }

    /// Step between windows. Defaults to `pool_size`.
    pub fn strides(mut self, strides: impl IntoPair) -> Self {
        let (h, w) = strides.into_pair();
        self.strides = Some(if self.extent == Extent::Window1d {
            (1, w)
        } else {
            (h, w)
        });
        self
    }

    /// `"valid"` (default) or `"same"`.
    pub fn padding(mut self, padding: &str) -> Self {
        self.padding_name = padding.to_string();
        self
    }
}

/// `MaxPooling2D(pool_size)`: the largest value of each window.
pub struct MaxPooling2D;
/// `AveragePooling2D(pool_size)`: the mean of each window (padding not counted).
pub struct AveragePooling2D;
/// `GlobalMaxPooling2D()`: the largest value of each channel, `(N, H, W, C)` → `(N, C)`.
pub struct GlobalMaxPooling2D;
/// `GlobalAveragePooling2D()`: the mean of each channel, `(N, H, W, C)` → `(N, C)`.
pub struct GlobalAveragePooling2D;
/// `MaxPooling1D(pool_size)` over `(N, steps, C)`.
pub struct MaxPooling1D;
/// `AveragePooling1D(pool_size)` over `(N, steps, C)` (padding not counted).
pub struct AveragePooling1D;
/// `GlobalMaxPooling1D()`: the largest value of each feature over the steps, `(N, steps, C)` →
/// `(N, C)` (Keras's text CNNs end with it). Like Keras's, it ignores a mask.
pub struct GlobalMaxPooling1D;

#[allow(clippy::new_ret_no_self)]
impl MaxPooling2D {
    /// Max pooling with a `pool_size` window (`2` or `(2, 2)`).
    pub fn new(pool_size: impl IntoPair) -> Pooling {
        Pooling::new(Reduce::Max, Extent::Window2d, pool_size.into_pair())
    }
}

#[allow(clippy::new_ret_no_self)]
impl AveragePooling2D {
    /// Average pooling with a `pool_size` window.
    pub fn new(pool_size: impl IntoPair) -> Pooling {
        Pooling::new(Reduce::Average, Extent::Window2d, pool_size.into_pair())
    }
}

#[allow(clippy::new_ret_no_self)]
impl GlobalMaxPooling2D {
    /// Global max pooling.
    pub fn new() -> Pooling {
        Pooling::new(Reduce::Max, Extent::Global, (1, 1))
    }
}

#[allow(clippy::new_ret_no_self)]
impl GlobalAveragePooling2D {
    /// Global average pooling.
    pub fn new() -> Pooling {
        Pooling::new(Reduce::Average, Extent::Global, (1, 1))
    }
}

#[allow(clippy::new_ret_no_self)]
impl MaxPooling1D {
    /// Max pooling over `pool_size` steps.
    pub fn new(pool_size: usize) -> Pooling {
        Pooling::new(Reduce::Max, Extent::Window1d, (1, pool_size))
    }
}

#[allow(clippy::new_ret_no_self)]
impl AveragePooling1D {
    /// Average pooling over `pool_size` steps.
    pub fn new(pool_size: usize) -> Pooling {
        Pooling::new(Reduce::Average, Extent::Window1d, (1, pool_size))
    }
}

#[allow(clippy::new_ret_no_self)]
impl GlobalMaxPooling1D {
    /// Global max pooling over the steps.
    pub fn new() -> Pooling {
        Pooling::new(Reduce::Max, Extent::Global1d, (1, 1))
    }
}

impl Pooling {
    /// The window's padding and strides (global pooling: the whole image, Keras's defaults).
    fn window_options(&self) -> Result<WindowOptions> {
        if matches!(self.extent, Extent::Global | Extent::Global1d) {
            return Ok(WindowOptions::default());
        }
        let mut options = self.options;
        options.padding = parse_padding(&self.args.name, &self.padding_name)?;
        options.strides = self.strides.unwrap_or(self.pool_size);
        Ok(options)
    }
}

impl Pooling {
    /// A pooling layer of class `class_name` (`MaxPooling2D`, ..., `GlobalAveragePooling2D`)
    /// from Keras's `get_config()` keys.
    pub(crate) fn from_config(class_name: &str, config: &serde_json::Value) -> Result<Self> {
        let size = args::pair(config, "pool_size")?.unwrap_or((2, 2));
        let mut pool = match class_name {
            "MaxPooling2D" => MaxPooling2D::new(size),
            "AveragePooling2D" => AveragePooling2D::new(size),
            "MaxPooling1D" => MaxPooling1D::new(size.1),
            "AveragePooling1D" => AveragePooling1D::new(size.1),
            "GlobalMaxPooling1D" => GlobalMaxPooling1D::new(),
            "GlobalMaxPooling2D" => GlobalMaxPooling2D::new(),
            _ => GlobalAveragePooling2D::new(),
        };
        if matches!(pool.extent, Extent::Global | Extent::Global1d) {
            pool.keepdims = args::flag(config, "keepdims", false)?;
        } else {
            if let Some(strides) = args::pair(config, "strides")? {
                pool = pool.strides(strides);
            }
            if let Some(padding) = config.get("padding").and_then(serde_json::Value::as_str) {
                pool = pool.padding(padding);
            }
        }
        pool.args = LayerArgs::with_input_shape(config)?;
        Ok(pool)
    }
}

layer_builders!(Pooling, input_shape);

impl Layer for Pooling {
    fn class_name(&self) -> &'static str {
        match (self.reduce, self.extent) {
            (Reduce::Max, Extent::Window2d) => "MaxPooling2D",
            (Reduce::Average, Extent::Window2d) => "AveragePooling2D",
            (Reduce::Max, Extent::Global) => "GlobalMaxPooling2D",
            (Reduce::Average, Extent::Global) => "GlobalAveragePooling2D",
            (Reduce::Max, Extent::Window1d) => "MaxPooling1D",
            (Reduce::Average, Extent::Window1d) => "AveragePooling1D",
            (Reduce::Max, Extent::Global1d) => "GlobalMaxPooling1D",
            (Reduce::Average, Extent::Global1d) => "GlobalAveragePooling1D",
        }
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let options = self.window_options()?;
        match self.extent {
            Extent::Window2d => {
                let g = check_window(&self.args.name, input_shape, self.pool_size, options)?;
                Ok(vec![g.out_h, g.out_w, g.channels])
            }
            Extent::Global => {
                if input_shape.len() != 3 {
                    return Err(Error::LayerShape {
                        layer: self.args.name.clone(),
                        expected: "(None, height, width, channels)".into(),
                        received: keras_shape(input_shape),
                    });
                }
                match self.keepdims {
                    true => Ok(vec![1, 1, input_shape[2]]),
                    false => Ok(vec![input_shape[2]]),
                }
            }
            Extent::Global1d => match (input_shape, self.keepdims) {
                ([steps, channels], true) if *steps > 0 => Ok(vec![1, *channels]),
                ([steps, channels], false) if *steps > 0 => Ok(vec![*channels]),
                _ => Err(Error::LayerShape {
                    layer: self.args.name.clone(),
                    expected: "(None, steps, channels)".into(),
                    received: keras_shape(input_shape),
                }),
            },
            Extent::Window1d => {
                let g = check_window_1d(&self.args.name, input_shape, self.pool_size.1, options)?;
                Ok(vec![g.out_w, g.channels])
            }
        }
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], _: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        self.options = self.window_options()?;
        Ok(())
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        (self.reduce == Reduce::Max && self.extent == Extent::Window2d).then_some(
            crate::layers::InferenceRole::MaxPool {
                size: self.pool_size,
                options: self.options,
            },
        )
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.dims(x);
        let (input, size) = match self.extent {
            Extent::Window2d => (x, self.pool_size),
            // The whole image or sequence of this call (a model may run other lengths).
            Extent::Global => (x, (shape[1], shape[2])),
            Extent::Window1d => (graph.reshape(x, &[shape[0], 1, shape[1], shape[2]])?, self.pool_size),
            Extent::Global1d => (graph.reshape(x, &[shape[0], 1, shape[1], shape[2]])?, (1, shape[1])),
        };
        let y = match self.reduce {
            Reduce::Max => graph.max_pool2d(input, size, self.options)?,
            Reduce::Average => graph.avg_pool2d(input, size, self.options)?,
        };
        let out = graph.dims(y);
        match self.extent {
            Extent::Window2d => Ok(y),
            Extent::Global if self.keepdims => Ok(y),
            Extent::Global => graph.reshape(y, &[out[0], out[3]]),
            Extent::Window1d => graph.reshape(y, &[out[0], out[2], out[3]]),
            Extent::Global1d if self.keepdims => graph.reshape(y, &[out[0], 1, out[3]]),
            Extent::Global1d => graph.reshape(y, &[out[0], out[3]]),
        }
    }

    fn config(&self) -> serde_json::Value {
        let strides = self.strides.unwrap_or(self.pool_size);
        match self.extent {
            Extent::Global | Extent::Global1d => self
                .args
                .config(serde_json::json!({"data_format": "channels_last", "keepdims": self.keepdims})),
            Extent::Window1d => self.args.config(serde_json::json!({
                "pool_size": [self.pool_size.1], "strides": [strides.1], "padding": self.padding_name,
            })),
            Extent::Window2d => self.args.config(serde_json::json!({
                "pool_size": [self.pool_size.0, self.pool_size.1],
                "strides": [strides.0, strides.1],
                "padding": self.padding_name,
            })),
        }
    }
}
