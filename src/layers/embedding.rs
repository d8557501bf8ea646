//! `Embedding`: integer token ids to dense vectors, a trainable `(input_dim, output_dim)` table.

use super::Layer;
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
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
    name: String,
    input_dim: usize,
    output_dim: usize,
    mask_zero: bool,
    embeddings_initializer: Initializer,
    input_shape: Option<Vec<usize>>,
    table: Option<ParamId>,
}

impl Embedding {
    /// A table of `input_dim` rows (the vocabulary size) of `output_dim` values.
    pub fn new(input_dim: usize, output_dim: usize) -> Self {
        Embedding {
            name: String::new(),
            input_dim,
            output_dim,
            mask_zero: false,
            embeddings_initializer: Initializer::RandomUniform {
                minval: -0.05,
                maxval: 0.05,
            },
            input_shape: None,
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

    /// Declares the model's input shape `(steps,)` on this first layer.
    pub fn input_shape(mut self, shape: &[usize]) -> Self {
        self.input_shape = Some(shape.to_vec());
        self
    }

    /// Gives the layer a name instead of the automatic `embedding_N`.
    pub fn name(mut self, name: &str) -> Self {
        self.name = name.to_string();
        self
    }
}

impl Layer for Embedding {
    fn class_name(&self) -> &'static str {
        "Embedding"
    }

    fn name(&self) -> &str {
        &self.name
    }

    fn set_name(&mut self, name: String) {
        self.name = name;
    }

    fn output_shape(&self, input_shape: &[usize]) -> Result<Vec<usize>> {
        for (what, value) in [("input_dim", self.input_dim), ("output_dim", self.output_dim)] {
            if value == 0 {
                return Err(Error::invalid(
                    what,
                    0,
                    format!("layer '{}' needs at least 1", self.name),
                ));
            }
        }
        if input_shape.is_empty() {
            return Err(Error::LayerShape {
                layer: self.name.clone(),
                expected: "(None, steps): token ids".into(),
                received: keras_shape(input_shape),
            });
        }
        super::check_weight_count(&self.name, &[self.input_dim, self.output_dim])?;
        let mut output = input_shape.to_vec();
        output.push(self.output_dim);
        Ok(output)
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        let input_shape = super::only_input(&self.name, self.class_name(), input_shapes)?;
        self.output_shape(input_shape)?;
        let table = self
            .embeddings_initializer
            .initialize(&[self.input_dim, self.output_dim], rng);
        self.table = Some(params.add(format!("{}/embeddings", self.name), table, true));
        Ok(())
    }

    fn forward_one(&self, graph: &mut Graph, ids: Var) -> Result<Var> {
        let table = self
            .table
            .ok_or_else(|| Error::Usage(format!("layer '{}' used before it was built", self.name)))?;
        let table = graph.param(table);
        let y = graph.gather(table, ids).map_err(|e| match e {
            Error::Data(why) => Error::Data(format!("layer '{}': {why}", self.name)),
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

    fn declared_input_shape(&self) -> Option<&[usize]> {
        self.input_shape.as_deref()
    }

    fn config(&self) -> serde_json::Value {
        serde_json::json!({
            "name": self.name,
            "input_dim": self.input_dim,
            "output_dim": self.output_dim,
            "mask_zero": self.mask_zero,
            "embeddings_initializer": self.embeddings_initializer.name(),
        })
    }
}

/// An Embedding from a Keras config.
pub(super) fn from_config(config: &serde_json::Value) -> Result<Box<dyn Layer>> {
    let size = |key: &str| {
        config
            .get(key)
            .and_then(serde_json::Value::as_u64)
            .map(|v| v as usize)
            .ok_or_else(|| Error::Data(format!("Embedding needs a positive integer \"{key}\"")))
    };
    let mut layer = Embedding::new(size("input_dim")?, size("output_dim")?).mask_zero(
        config
            .get("mask_zero")
            .and_then(serde_json::Value::as_bool)
            .unwrap_or(false),
    );
    if let Some(init) = super::config::initializer(config, "embeddings_initializer")? {
        layer = layer.embeddings_initializer(init);
    }
    if let Some(shape) = super::config::input_shape(config)? {
        layer = layer.input_shape(&shape);
    }
    Ok(Box::new(layer))
}
