//! Keras's `Normalization` preprocessing layer: `(x − mean) / max(√variance, 1e-7)` per channel
//! (the last axis), or its inverse. EfficientNet starts with one.

use super::{Layer, ParamShape};
use crate::autograd::{Graph, ParamId, ParamStore, UnaryOp, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;
use crate::tensor::Tensor;
use serde_json::{Value, json};

/// Keras's `backend.epsilon()`, the smallest standard deviation divided by.
const EPSILON: f32 = 1e-7;

/// Keras's `Normalization(axis=-1, mean=None, variance=None, invert=False)`: standardizes each
/// channel with a mean and variance, which are either given (then the layer has no weights) or
/// its weights `mean`, `variance` and `count` (all non-trainable, Keras's order; `count` is the
/// number of values per channel `adapt` saw, kept for Keras's layout). `invert` undoes the
/// standardization: `mean + x·max(√variance, 1e-7)`.
///
/// [`Layer::adapt`] sets the weights from data, as Keras's `adapt`: each channel's mean and
/// population variance over every other axis.
///
/// ```
/// use strata::layers::{Layer, Normalization};
/// use strata::Tensor;
/// let imagenet = Normalization::with_statistics(vec![0.485, 0.456, 0.406], vec![0.052, 0.050, 0.051]);
/// let mut norm = Normalization::new();
/// norm.adapt(&Tensor::from_vec(vec![2, 1], vec![1.0, 3.0])?)?; // mean 2, variance 1
/// # Ok::<(), strata::Error>(())
/// ```
#[derive(Clone, Debug)]
pub struct Normalization {
    args: LayerArgs,
    /// Keras's `axis`: -1, or the last axis counted with the batch (`3` for images).
    axis: i64,
    invert: bool,
    /// The given `mean` and `variance`, as tensors over the channels.
    given: Option<(Tensor, Tensor)>,
    /// The weights, when not given: mean, variance, count.
    weights: Option<(ParamId, ParamId, ParamId)>,
    /// What `adapt` found (mean, variance, count): the weights' values when built.
    adapted: Option<[Tensor; 3]>,
}

impl Default for Normalization {
    fn default() -> Self {
        Self::new()
    }
}

impl Normalization {
    /// A normalization whose statistics are its weights (set them, or import them from Keras).
    pub fn new() -> Self {
        Normalization {
            args: LayerArgs::default(),
            axis: -1,
            invert: false,
            given: None,
            weights: None,
            adapted: None,
        }
    }

    /// A normalization with fixed statistics, one value per channel (no weights).
    pub fn with_statistics(mean: Vec<f32>, variance: Vec<f32>) -> Self {
        Normalization {
            given: Some((Tensor::from_slice(&mean), Tensor::from_slice(&variance))),
            ..Self::new()
        }
    }

    /// Undoes the normalization instead (`mean + x·std`). Defaults to false.
    pub fn invert(mut self, invert: bool) -> Self {
        self.invert = invert;
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let axis = match config.get("axis") {
            None => Some(-1),
            Some(Value::Array(items)) if items.len() == 1 => items[0].as_i64(),
            Some(other) => other.as_i64(),
        };
        let axis = axis.ok_or_else(|| {
            Error::Data(format!(
                "Normalization with axis {} is not supported: strata normalizes one axis, the last",
                config.get("axis").unwrap_or(&Value::Null)
            ))
        })?;
        let given = match (statistic(config, "mean")?, statistic(config, "variance")?) {
            (Some(mean), Some(variance)) => Some((Tensor::from_slice(&mean), Tensor::from_slice(&variance))),
            (None, None) => None,
            _ => {
                return Err(Error::Data(
                    "Normalization needs both mean and variance, or neither".into(),
                ));
            }
        };
        Ok(Normalization {
            args: LayerArgs::with_input_shape(config)?,
            axis,
            invert: super::args::flag(config, "invert", false)?,
            given,
            weights: None,
            adapted: None,
        })
    }

    /// An error unless the given statistics are one mean per variance, finite, the variances
    /// 0 or more (a negative one has no square root: Keras's output would be NaN).
    fn check_given(&self) -> Result<()> {
        let Some((mean, variance)) = &self.given else {
            return Ok(());
        };
        let layer = &self.args.name;
        if mean.len() != variance.len() {
            return Err(Error::Data(format!(
                "layer '{layer}' (Normalization) was given {} means but {} variances",
                mean.len(),
                variance.len()
            )));
        }
        if let Some(m) = mean.data().iter().find(|m| !m.is_finite()) {
            return Err(Error::invalid(
                "mean",
                m,
                format!("layer '{layer}' (Normalization) needs finite means"),
            ));
        }
        if let Some(v) = variance.data().iter().find(|v| !(v.is_finite() && **v >= 0.0)) {
            let why = format!("layer '{layer}' (Normalization) needs finite variances, 0 or more");
            return Err(Error::invalid("variance", v, why));
        }
        Ok(())
    }

    /// The channel count, once `input_shape` is checked: its last axis, which `axis` names.
    fn channels(&self, input_shape: &[usize]) -> Result<usize> {
        self.check_given()?;
        let rank = input_shape.len() as i64;
        let channels = input_shape.last().copied().filter(|&c| c > 0);
        let given = self.given.as_ref().map(|(mean, _)| mean.data().len());
        match channels {
            Some(c) if (self.axis == -1 || self.axis == rank) && given.is_none_or(|n| n == 1 || n == c) => Ok(c),
            _ => Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: match given {
                    Some(n) => format!("(None, ..., {n}), normalized along axis {} (the last)", self.axis),
                    None => format!("(None, ..., channels), normalized along axis {} (the last)", self.axis),
                },
                received: keras_shape(input_shape),
            }),
        }
    }
}

/// A statistic given in the config: a number, a list of numbers (nested lists flattened, as
/// NumPy arrays serialize), or null.
fn statistic(config: &Value, key: &str) -> Result<Option<Vec<f32>>> {
    fn flatten(value: &Value, into: &mut Vec<f32>) -> bool {
        match value {
            Value::Number(n) => n.as_f64().map(|v| into.push(v as f32)).is_some(),
            Value::Array(items) => items.iter().all(|item| flatten(item, into)),
            Value::Object(o) => o
                .get("config")
                .and_then(|c| c.get("value"))
                .is_some_and(|v| flatten(v, into)),
            _ => false,
        }
    }
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => {
            let mut values = Vec::new();
            match flatten(value, &mut values) && !values.is_empty() {
                true => Ok(Some(values)),
                false => Err(Error::Data(format!(
                    "Normalization's \"{key}\" must be a number or a list of numbers, got {value}"
                ))),
            }
        }
    }
}

/// Each channel's mean and population variance (NumPy's `var`, as Keras's `adapt` takes them)
/// over `values`, whose last axis holds `channels`: two passes in f64, so a large offset does
/// not swamp the variance.
fn channel_statistics(values: &[f32], channels: usize) -> (Vec<f32>, Vec<f32>) {
    let rows = (values.len() / channels) as f64;
    let mut sums = vec![0f64; channels];
    for row in values.chunks_exact(channels) {
        sums.iter_mut().zip(row).for_each(|(s, &v)| *s += f64::from(v));
    }
    let means: Vec<f64> = sums.iter().map(|s| s / rows).collect();
    let mut squares = vec![0f64; channels];
    for row in values.chunks_exact(channels) {
        for ((s, &v), m) in squares.iter_mut().zip(row).zip(&means) {
            *s += (f64::from(v) - m).powi(2);
        }
    }
    let to_f32 = |v: Vec<f64>| v.into_iter().map(|x| x as f32).collect();
    (to_f32(means), to_f32(squares.iter().map(|s| s / rows).collect()))
}

layer_builders!(Normalization, input_shape);

impl Layer for Normalization {
    fn class_name(&self) -> &'static str {
        "Normalization"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        self.channels(input_shape)?;
        Ok(input_shape.to_vec())
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        let channels = self.channels(input_shape)?;
        if self.given.is_some() {
            return Ok(Vec::new());
        }
        let vector = ParamShape::new(vec![channels], false);
        Ok(vec![vector.clone(), vector, ParamShape::new(Vec::new(), false)])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, _: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        let channels = self.channels(input_shape)?;
        if self.given.is_none() {
            let [mean, variance, count] = match &self.adapted {
                Some([mean, ..]) if mean.len() != channels => {
                    return Err(Error::LayerShape {
                        layer: self.args.name.clone(),
                        expected: format!("(None, ..., {}), the channels it was adapted to", mean.len()),
                        received: keras_shape(input_shape),
                    });
                }
                Some(adapted) => adapted.clone(),
                None => [
                    Tensor::zeros(&[channels]),
                    Tensor::ones(&[channels]),
                    Tensor::zeros(&[]),
                ],
            };
            let name = &self.args.name;
            self.weights = Some((
                params.add(format!("{name}/mean"), mean, false),
                params.add(format!("{name}/variance"), variance, false),
                params.add(format!("{name}/count"), count, false),
            ));
        }
        Ok(())
    }

    fn adapt(&mut self, data: &Tensor) -> Result<Vec<Tensor>> {
        let name = &self.args.name;
        if self.given.is_some() {
            return Err(Error::Usage(format!(
                "layer '{name}' (Normalization) was given its mean and variance; adapt one made without them"
            )));
        }
        let shape = data.shape();
        let rank = shape.len() as i64;
        let channels = shape.last().copied().unwrap_or(0);
        if rank < 2 || !(self.axis == -1 || self.axis == rank - 1) || channels == 0 || data.is_empty() {
            return Err(Error::LayerShape {
                layer: name.clone(),
                expected: format!(
                    "data (samples, ..., channels) to adapt to, normalized along axis {}",
                    self.axis
                ),
                received: format!("{shape:?}"),
            });
        }
        let (mean, variance) = channel_statistics(data.data(), channels);
        let count = (data.len() / channels) as f32;
        let adapted = [
            Tensor::from_slice(&mean),
            Tensor::from_slice(&variance),
            Tensor::scalar(count),
        ];
        self.adapted = Some(adapted.clone());
        Ok(adapted.into())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let (mean, variance) = match (&self.given, self.weights) {
            (Some((mean, variance)), _) => (graph.constant(mean), graph.constant(variance)),
            (None, Some((mean, variance, _))) => (graph.param(mean), graph.param(variance)),
            (None, None) => {
                return Err(Error::Usage(format!(
                    "layer '{}' used before it was built",
                    self.args.name
                )));
            }
        };
        let deviation = graph.unary(UnaryOp::Sqrt, variance);
        let epsilon = graph.constant_with(|out| {
            out.resize_for(&[1]);
            out.data_mut()[0] = EPSILON;
        });
        let deviation = graph.maximum(deviation, epsilon)?;
        if self.invert {
            let scaled = graph.mul(x, deviation)?;
            return graph.add(scaled, mean);
        }
        let centered = graph.sub(x, mean)?;
        graph.div(centered, deviation)
    }

    fn params(&self) -> Vec<ParamId> {
        self.weights
            .map(|(mean, variance, count)| vec![mean, variance, count])
            .unwrap_or_default()
    }

    fn config(&self) -> Value {
        let statistic = |t: Option<&Tensor>| t.map_or(Value::Null, |t| json!(t.data()));
        self.args.config(json!({
            "axis": self.axis,
            "invert": self.invert,
            "mean": statistic(self.given.as_ref().map(|g| &g.0)),
            "variance": statistic(self.given.as_ref().map(|g| &g.1)),
        }))
    }
}
