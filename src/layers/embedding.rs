//! `Embedding`: integer token ids to dense vectors, a trainable `(input_dim, output_dim)` table.

use super::{Layer, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::layers::LayerArgs;
use crate::layers::common::layer_builders;
use crate::rng::Rng;

/// Keras's `Embedding(input_dim, output_dim, mask_zero=False)`: `(batch, steps)` ids in
/// `0..input_dim` become `(batch, steps, output_dim)` rows of the `embeddings` table (drawn
/// uniform in ±0.05, as Keras's default). With `mask_zero`, id 0 marks padding: the following
/// recurrent layer skips those steps.
///
/// ```
/// use strata::layers::Embedding;
/// let embedding = Embedding::new(1000, 64).mask_zero(true);
/// ```
#[derive(Clone, Debug)]
pub struct Embedding {
    args: LayerArgs,
    input_dim: usize,
    output_dim: usize,
    mask_zero: bool,
    embeddings_initializer: Initializer,
    table: Option<ParamId>,
}

impl Embedding {
    /// A table of `input_dim` rows (the vocabulary size) of `output_dim` values.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            args: LayerArgs::default(),
            input_dim,
            output_dim,
            mask_zero: false,
            embeddings_initializer: Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            table: None,
        }
    }

    /// Treat id 0 as padding and mask it for the layers that follow.
    pub fn mask_zero(mut self, mask_zero: bool) -> Self {
        self.mask_zero = mask_zero;
        self
    }

    /// How the table starts. Defaults to uniform in ±0.05.
    pub fn embeddings_initializer(mut self, initializer: Initializer) -> Self {
        self.embeddings_initializer = initializer;
        self
    }
}

impl Embedding {
    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &serde_json::Value) -> Result<Self> {
        let size = |key: &str| args::required_size(config, key, "Embedding");
        let mut layer =
            Embedding::new(size("input_dim")?, size("output_dim")?).mask_zero(args::flag(config, "mask_zero", false)?);
        if let Some(init) = args::initializer(config, "embeddings_initializer")? {
            layer.embeddings_initializer = init;
        }
        layer.args = LayerArgs::with_input_shape(config)?;
        Ok(layer)
    }
}

layer_builders!(Embedding, input_shape);

impl Layer for Embedding {
    fn class_name(&self) -> &'static str {
        "Embedding"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        for (what, value) in [("input_dim", self.input_dim), ("output_dim", self.output_dim)] {
            if value == 0 {
                return Err(Error::invalid(
                    what,
                    0,
                    format!("layer '{}' needs at least 1", self.args.name),
                ));
            }
        }
        if input_shape.is_empty() {
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "(None, steps): token ids".into(),
                received: keras_shape(input_shape),
            });
        }
        super::check_weight_count(&self.args.name, &[self.input_dim, self.output_dim])?;
        let mut output = input_shape.to_vec();
        output.push(self.output_dim);
        Ok(output)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        Ok(vec![ParamShape::new(
            vec![self.input_dim, self.output_dim],
            self.args.trainable,
        )])
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.args.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let table = self
            .embeddings_initializer
            .initialize(&[self.input_dim, self.output_dim], rng);
        self.table = Some(params.add(format!("{}/embeddings", self.args.name), table, self.args.trainable));
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, ids: Var) -> Result<Var> {
        let table = self
            .table
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.args.name)))?;
        let table = graph.param(table);
        let y = graph.gather(table, ids).map_err(|e| match e {
            Error::Data(why) => Error::Data(format!("layer '{}': {why}", self.args.name)),
            other => other,
        })?;
        if self.mask_zero {
            // Ids are non-negative integers, so min(|id|, 1) is 0 for padding and 1 otherwise.
            let shape = graph.dims(ids);
            let rows = shape.first().copied().unwrap_or(0);
            let steps = shape.iter().skip(1).product::<usize>();
            let magnitude = graph.abs(ids);
            let mask = graph.clip(magnitude, 0.0, 1.0);
            let mask = graph.reshape(mask, &[rows, steps])?;
            graph.set_mask(y, mask);
        }
        Ok(y)
    }

    fn params(&self) -> Vec<ParamId> {
        self.table.into_iter().collect()
    }

    fn config(&self) -> serde_json::Value {
        self.args.config(serde_json::json!({
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
            "embeddings_initializer": self.embeddings_initializer.name(),
        }))
    }
}
