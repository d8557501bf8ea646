//! [`BatchNormalization`] and [`LayerNormalization`], with Keras's arguments and defaults.

use super::{Layer, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Statistics, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// Normalizes each channel (the last axis) with the batch's statistics in training and with
/// moving statistics at inference, as Keras's `BatchNormalization(momentum=0.99,
/// epsilon=0.001, center=True, scale=True)`. A frozen one (`trainable(false)`) normalizes with
/// its moving statistics and leaves them as they are in training too, as in Keras 3.
///
/// Weights, in Keras's order: `gamma` and `beta` (trainable, when `scale` / `center`), then
/// `moving_mean` and `moving_variance` (non-trainable; `summary` counts them as such). Each
/// training step moves them: `moving = moving·momentum + batch·(1 − momentum)`.
///
/// ```
/// use strata::layers::BatchNormalization;
/// let bn = BatchNormalization::new().momentum(0.9);
/// ```
#[derive(Clone, Debug)]
pub struct BatchNormalization {
    args: LayerArgs,
    /// Keras's `axis`: -1, or the last axis counted with the batch.
    axis: i64,
    momentum: f32,
    epsilon: f32,
    center: bool,
    scale: bool,
    gamma: Option<ParamId>,
    beta: Option<ParamId>,
    moving_mean: Option<ParamId>,
    moving_variance: Option<ParamId>,
}

impl Default for BatchNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl BatchNormalization {
    /// Batch normalization with Keras's defaults.
    pub fn new() -> Self {
        BatchNormalization {
            args: LayerArgs::default(),
            axis: -1,
            momentum: 0.99,
            epsilon: 1e-3,
            center: true,
            scale: true,
            gamma: None,
            beta: None,
            moving_mean: None,
            moving_variance: None,
        }
    }

    /// How much of the moving statistics each step keeps, in `[0, 1]`. Defaults to 0.99.
    pub fn momentum(mut self, momentum: f32) -> Self {
        self.momentum = momentum;
        self
    }

    /// Added to the variance before its square root. Defaults to 0.001.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to add the learned offset `beta`. Defaults to true.
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Whether to multiply by the learned scale `gamma`. Defaults to true.
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }
}

/// Checks `epsilon` and adds `gamma` / `beta` of `features` values, as asked.
pub(super) fn affine_params(
    args: &LayerArgs,
    (features, epsilon, scale, center): (usize, f32, bool, bool),
    params: &mut ParamStore,
) -> Result<(Option<ParamId>, Option<ParamId>)> {
    let (layer, trainable) = (&args.name, args.trainable);
    check_epsilon(layer, epsilon)?;
    let gamma = scale.then(|| params.add(format!("{layer}/gamma"), Tensor::ones(&[features]), trainable));
    let beta = center.then(|| params.add(format!("{layer}/beta"), Tensor::zeros(&[features]), trainable));
    Ok((gamma, beta))
}

/// An error unless `epsilon` is a finite number above 0.
fn check_epsilon(layer: &str, epsilon: f32) -> Result<()> {
    if !(epsilon.is_finite() && epsilon > 0.0) {
        return Err(Error::invalid(
            "epsilon",
            epsilon,
            format!("layer '{layer}' needs epsilon > 0"),
        ));
    }
    Ok(())
}

/// The shapes of the `gamma` / `beta` that [`affine_params`] adds.
pub(super) fn affine_shapes(args: &LayerArgs, features: usize, scale: bool, center: bool) -> Vec<ParamShape> {
    let one = ParamShape::new(vec![features], args.trainable);
    [scale, center]
        .into_iter()
        .filter(|&made| made)
        .map(|_| one.clone())
        .collect()
}

/// The output shape of a normalization over the last axis (the input's), or the error for an
/// input without features, another `axis` or an `epsilon` not above 0.
pub(crate) fn normalized_shape(layer: &str, axis: i64, epsilon: f32, input_shape: &[usize]) -> Result<Vec<usize>> {
    if input_shape.last().filter(|&&c| c > 0).is_none() {
        return Err(no_features(layer, input_shape));
    }
    check_last_axis(layer, axis, input_shape)?;
    check_epsilon(layer, epsilon)?;
    Ok(input_shape.to_vec())
}

/// The error for an input with no feature axis to normalize.
fn no_features(layer: &str, input_shape: &[usize]) -> Error {
    Error::LayerShape {
        layer: layer.to_string(),
        expected: "(None, ..., features) with at least one feature axis".into(),
        received: keras_shape(input_shape),
    }
}

impl BatchNormalization {
    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(BatchNormalization {
            args: LayerArgs::with_input_shape(config)?,
            axis: last_axis_only("BatchNormalization", config)?,
            ..BatchNormalization::new()
                .momentum(args::number(config, "momentum")?.unwrap_or(0.99))
                .epsilon(args::number(config, "epsilon")?.unwrap_or(1e-3))
                .center(args::flag(config, "center", true)?)
                .scale(args::flag(config, "scale", true)?)
        })
    }
}

/// Normalization layers here work on the last axis only: `axis` must be -1 (or `[-1]`), or a
/// positive axis (counted with the batch, as Keras counts: `3` for images), which
/// [`check_last_axis`] checks is the last once the input's rank is known.
pub(crate) fn last_axis_only(class_name: &str, config: &serde_json::Value) -> Result<i64> {
    let axis = match config.get("axis") {
        None | Some(serde_json::Value::Null) => return Ok(-1),
        Some(serde_json::Value::Array(items)) if items.len() == 1 => &items[0],
        Some(other) => other,
    };
    match axis.as_i64() {
        Some(axis) if axis == -1 || axis > 0 => Ok(axis),
        _ => Err(Error::Data(format!(
            "{class_name} with axis {axis} is not supported: strata normalizes the last axis only (axis=-1)"
        ))),
    }
}

/// Checks that Keras's `axis` (-1, or counted with the batch) is the last axis of a per-sample
/// `input_shape`.
pub(crate) fn check_last_axis(layer: &str, axis: i64, input_shape: &[usize]) -> Result<()> {
    if axis == -1 || axis == input_shape.len() as i64 {
        return Ok(());
    }
    Err(Error::LayerShape {
        layer: layer.to_string(),
        expected: format!("an input whose last axis is axis {axis} (strata normalizes the last axis only)"),
        received: keras_shape(input_shape),
    })
}

layer_builders!(BatchNormalization, input_shape);

impl Layer for BatchNormalization {
    fn class_name(&self) -> &'static str {
        "BatchNormalization"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        if input_shape.last().filter(|&&c| c > 0).is_none() {
            return Err(no_features(&self.args.name, input_shape));
        }
        check_last_axis(&self.args.name, self.axis, input_shape)?;
        check_epsilon(&self.args.name, self.epsilon)?;
        if !(0.0..=1.0).contains(&self.momentum) {
            return Err(Error::invalid(
                "momentum",
                self.momentum,
                format!("layer '{}' needs a momentum in [0, 1]", self.args.name),
            ));
        }
        Ok(input_shape.to_vec())
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let channels = input_shape[input_shape.len() - 1];
        let mut shapes = affine_shapes(&self.args, channels, self.scale, self.center);
        shapes.extend([
            ParamShape::new(vec![channels], false),
            ParamShape::new(vec![channels], false),
        ]);
        Ok(shapes)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let channels = input_shape[input_shape.len() - 1];
        let settings = (channels, self.epsilon, self.scale, self.center);
        (self.gamma, self.beta) = affine_params(&self.args, settings, params)?;
        self.moving_mean = Some(params.add(
            format!("{}/moving_mean", self.args.name),
            Tensor::zeros(&[channels]),
            false,
        ));
        self.moving_variance = Some(params.add(
            format!("{}/moving_variance", self.args.name),
            Tensor::ones(&[channels]),
            false,
        ));
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let (Some(mean), Some(variance)) = (self.moving_mean, self.moving_variance) else {
            return Err(Error::Usage(format!(
                "layer '{}' used before it was built",
                self.args.name
            )));
        };
        let gamma = self.gamma.map(|id| graph.param(id));
        let beta = self.beta.map(|id| graph.param(id));
        // Keras 3: a frozen BatchNormalization runs in inference mode, in training too.
        let (statistics, update) = if graph.training() && self.args.trainable {
            (Statistics::Batch, Some((mean, variance, self.momentum)))
        } else {
            (Statistics::Moving { mean, variance }, None)
        };
        // Keras passes the mask on (its batch statistics, unlike these, skip masked steps).
        let y = graph.batch_norm(x, gamma, beta, self.epsilon, statistics, update)?;
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn inference_role(&self) -> Option<crate::layers::InferenceRole> {
        Some(crate::layers::InferenceRole::BatchNorm(crate::layers::FoldedNorm {
            gamma: self.gamma,
            beta: self.beta,
            mean: self.moving_mean?,
            variance: self.moving_variance?,
            epsilon: self.epsilon,
        }))
    }

    fn params(&self) -> Vec<ParamId> {
        [self.gamma, self.beta, self.moving_mean, self.moving_variance]
            .into_iter()
            .flatten()
            .collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({
            "axis": self.axis,
            "momentum": self.momentum,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }))
    }
}

/// Normalizes each sample over its last axis, as Keras's `LayerNormalization(axis=-1,
/// epsilon=0.001, center=True, scale=True)`. The same in training and inference.
#[derive(Clone, Debug)]
pub struct LayerNormalization {
    args: LayerArgs,
    /// Keras's `axis`: -1, or the last axis counted with the batch.
    axis: i64,
    epsilon: f32,
    center: bool,
    scale: bool,
    gamma: Option<ParamId>,
    beta: Option<ParamId>,
}

impl Default for LayerNormalization {
    fn default() -> Self {
        Self::new()
    }
}

impl LayerNormalization {
    /// Layer normalization with Keras's defaults.
    pub fn new() -> Self {
        LayerNormalization {
            args: LayerArgs::default(),
            axis: -1,
            epsilon: 1e-3,
            center: true,
            scale: true,
            gamma: None,
            beta: None,
        }
    }

    /// Added to the variance before its square root. Defaults to 0.001.
    pub fn epsilon(mut self, epsilon: f32) -> Self {
        self.epsilon = epsilon;
        self
    }

    /// Whether to add the learned offset `beta`. Defaults to true.
    pub fn center(mut self, center: bool) -> Self {
        self.center = center;
        self
    }

    /// Whether to multiply by the learned scale `gamma`. Defaults to true.
    pub fn scale(mut self, scale: bool) -> Self {
        self.scale = scale;
        self
    }
}

impl LayerNormalization {
    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        Ok(LayerNormalization {
            args: LayerArgs::with_input_shape(config)?,
            axis: last_axis_only("LayerNormalization", config)?,
            ..LayerNormalization::new()
                .epsilon(args::number(config, "epsilon")?.unwrap_or(1e-3))
                .center(args::flag(config, "center", true)?)
                .scale(args::flag(config, "scale", true)?)
        })
    }
}

layer_builders!(LayerNormalization, input_shape);

impl Layer for LayerNormalization {
    fn class_name(&self) -> &'static str {
        "LayerNormalization"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        normalized_shape(&self.args.name, self.axis, self.epsilon, input_shape)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let features = input_shape[input_shape.len() - 1];
        Ok(affine_shapes(&self.args, features, self.scale, self.center))
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let features = input_shape[input_shape.len() - 1];
        let settings = (features, self.epsilon, self.scale, self.center);
        (self.gamma, self.beta) = affine_params(&self.args, settings, params)?;
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let gamma = self.gamma.map(|id| graph.param(id));
        let beta = self.beta.map(|id| graph.param(id));
        let y = graph.layer_norm(x, gamma, beta, self.epsilon)?;
        graph.pass_mask(x, y);
        Ok(y)
    }

    fn params(&self) -> Vec<ParamId> {
        self.gamma.into_iter().chain(self.beta).collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({
            "axis": self.axis,
            "epsilon": self.epsilon,
            "center": self.center,
            "scale": self.scale,
        }))
    }
}
