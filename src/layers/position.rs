//! Position information for attention models, which see their steps as an unordered set:
//! [`PositionEmbedding`] (learned, keras_hub's layer) and [`SinePositionEncoding`] (the fixed
//! sines and cosines of "Attention Is All You Need"). Both return only the positions'
//! vectors, shaped like their input; add them to the token embeddings with `Add`.

use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// The per-sample `(steps, features)` of a sequence, or the error naming the layer.
fn sequence_shape(layer: &str, input_shape: &[usize]) -> Result<(usize, usize)> {
    match input_shape {
        [steps, features] if *steps > 0 && *features > 0 => Ok((*steps, *features)),
        _ => Err(Error::LayerShape {
            layer: layer.to_string(),
            expected: "(None, steps, features)".into(),
            received: keras_shape(input_shape),
        }),
    }
}

/// `rows (T, C)` repeated over the batch of `x (N, T, C)`: the positions' vectors shaped like
/// the input (the gradient sums over the batch).
fn over_batch(graph: &mut Graph, x: Var, rows: Var) -> Result<Var> {
    let shape = graph.shape(x).to_vec();
    let rows = graph.reshape(rows, &[1, shape[1], shape[2]])?;
    repeated_over_batch(graph, rows, shape[0])
}

/// `value (1, ...)` repeated `batch` times along the first axis, by broadcasting it onto zeros:
/// its gradient sums over the batch.
pub(super) fn repeated_over_batch(graph: &mut Graph, value: Var, batch: usize) -> Result<Var> {
    let mut shape = graph.shape(value).to_vec();
    shape[0] = batch;
    let zeros = graph.constant_with(|t| {
        t.resize_for(&shape);
        t.data_mut().fill(0.0);
    });
    graph.add(zeros, value)
}

/// keras_hub's `PositionEmbedding(sequence_length, initializer="glorot_uniform")`: a learned
/// vector per position, weight `embeddings (sequence_length, features)`; a sequence of `T`
/// steps gets the first `T` rows.
#[derive(Clone, Debug)]
pub struct PositionEmbedding {
    args: LayerArgs,
    sequence_length: usize,
    initializer: Initializer,
    embeddings: Option<ParamId>,
}

impl PositionEmbedding {
    /// Positions `0..sequence_length`.
    pub fn new(sequence_length: usize) -> Self {
        PositionEmbedding {
            args: LayerArgs::default(),
            sequence_length,
            initializer: Initializer::GlorotUniform,
            embeddings: None,
        }
    }

    /// How the vectors start. Defaults to `glorot_uniform`.
    pub fn initializer(mut self, initializer: Initializer) -> Self {
        self.initializer = initializer;
        self
    }

    /// The layer from keras_hub's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let mut layer = PositionEmbedding::new(args::required_size(config, "sequence_length", "PositionEmbedding")?);
        if let Some(init) = args::initializer(config, "initializer")? {
            layer.initializer = init;
        }
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

layer_builders!(PositionEmbedding, input_shape);

impl Layer for PositionEmbedding {
    fn class_name(&self) -> &'static str {
        "PositionEmbedding"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        let (steps, features) = sequence_shape(&self.args.name, input_shape)?;
        if steps > self.sequence_length {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!("at most sequence_length = {} steps", self.sequence_length),
                received: keras_shape(input_shape),
            });
        }
        super::check_weight_count(&self.args.name, &[self.sequence_length, features])?;
        Ok(input_shape.to_vec())
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input)?;
        let shape = vec![self.sequence_length, input[1]];
        Ok(vec![ParamShape::new(shape, self.args.trainable)])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input)?;
        let table = self.initializer.initialize(&[self.sequence_length, input[1]], rng);
        let name = format!("{}/embeddings", self.args.name);
        self.embeddings = Some(params.add(name, table, self.args.trainable));
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let id = self
            .embeddings
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.args.name)))?;
        let steps = graph.shape(x).get(1).copied().unwrap_or(0);
        let table = graph.param(id);
        let rows = graph.slice(table, 0, 0, steps)?;
        over_batch(graph, x, rows)
    }

    fn params(&self) -> Vec<ParamId> {
        self.embeddings.into_iter().collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({
            "sequence_length": self.sequence_length,
            "initializer": self.initializer.name(),
        }))
    }
}

/// keras_hub's `SinePositionEncoding(max_wavelength=10000)`: position `p`, feature `i` holds
/// `sin(p / max_wavelength^(2⌊i/2⌋/C))` for even `i` and the cosine for odd `i`. No weights.
#[derive(Clone, Debug)]
pub struct SinePositionEncoding {
    args: LayerArgs,
    max_wavelength: f32,
}

impl Default for SinePositionEncoding {
    fn default() -> Self {
        Self::new()
    }
}

impl SinePositionEncoding {
    /// With keras_hub's default `max_wavelength` of 10,000.
    pub fn new() -> Self {
        SinePositionEncoding {
            args: LayerArgs::default(),
            max_wavelength: 10_000.0,
        }
    }

    /// The longest wavelength of the sinusoids. Defaults to 10,000.
    pub fn max_wavelength(mut self, max_wavelength: f32) -> Self {
        self.max_wavelength = max_wavelength;
        self
    }

    /// The layer from keras_hub's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let layer = SinePositionEncoding {
            args: LayerArgs::with_input_shape(config)?,
            ..SinePositionEncoding::new()
        };
        Ok(layer.max_wavelength(args::number(config, "max_wavelength")?.unwrap_or(10_000.0)))
    }

    /// The encoding of `steps` positions of `features` values, `(steps, features)`.
    pub fn table(&self, steps: usize, features: usize) -> crate::Tensor {
        let mut table = crate::Tensor::zeros(&[steps, features]);
        for (p, row) in table.data_mut().chunks_mut(features.max(1)).enumerate() {
            for (i, v) in row.iter_mut().enumerate() {
                let exponent = (2 * (i / 2)) as f32 / features as f32;
                let angle = p as f32 / self.max_wavelength.powf(exponent);
                *v = if i % 2 == 0 { angle.sin() } else { angle.cos() };
            }
        }
        table
    }
}

layer_builders!(SinePositionEncoding, input_shape);

impl Layer for SinePositionEncoding {
    fn class_name(&self) -> &'static str {
        "SinePositionEncoding"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        sequence_shape(&self.args.name, input_shape)?;
        if !(self.max_wavelength.is_finite() && self.max_wavelength > 0.0) {
            return Err(Error::invalid(
                "max_wavelength",
                self.max_wavelength,
                format!("layer '{}' needs a positive max_wavelength", self.args.name),
            ));
        }
        Ok(input_shape.to_vec())
    }

    fn forward_one(&self, graph: &mut Graph, x: Var) -> Result<Var> {
        let shape = graph.shape(x).to_vec();
        let (steps, features) = sequence_shape(&self.args.name, shape.get(1..).unwrap_or(&[]))?;
        let rows = graph.constant(&self.table(steps, features));
        over_batch(graph, x, rows)
    }

    fn config(&self) -> serde_json::Value {
        self.args
            .config(serde_json::json!({ "max_wavelength": self.max_wavelength }))
    }
}
