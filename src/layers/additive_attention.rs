//! Keras's `AdditiveAttention`: Bahdanau-style attention of a query sequence over a value
//! sequence, scored by `tanh(query + key)` instead of a dot product, without projections.

use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::layers::common::layer_builders;
use crate::rng::{Rng, hash_name};
use crate::tensor::Tensor;
use serde_json::{Value, json};

/// What a masked score loses before the softmax, as Keras subtracts it (`1e9`).
const MASKED_SCORE: f32 = 1e9;

/// Keras's `AdditiveAttention(use_scale=True, dropout=0.0)`, called on `[query, value]` or
/// `[query, value, key]` (`(batch, steps, dim)`, the key defaulting to the value, query and
/// key of the same width): scores `Σ_d scale_d · tanh(query_i + key_j)_d`, their softmax over
/// the value steps, and the weighted sum of the values. `scale` (`(dim,)`, glorot-uniform as
/// in Keras) is learned with `use_scale`, all ones without. Keras's call arguments
/// `use_causal_mask` and `return_attention_scores` are settings here; padded value steps (a
/// mask from `Embedding(mask_zero=True)`) get no attention and padded query steps give zeros.
///
/// ```
/// use strata::prelude::*;
/// # fn main() -> strata::Result<()> {
/// let query = Input::node(&[4, 8]);
/// let value = Input::node(&[6, 8]);
/// let attended = AdditiveAttention::new().call_many(&[&query, &value])?;   // (None, 4, 8)
/// let model = Model::functional_multi(&[&query, &value], &[&attended])?;
/// # Ok(()) }
/// ```
#[derive(Clone, Debug)]
pub struct AdditiveAttention {
    args: LayerArgs,
    use_scale: bool,
    dropout: f32,
    seed: Option<u64>,
    use_causal_mask: bool,
    return_attention_scores: bool,
    scale: Option<ParamId>,
}

impl Default for AdditiveAttention {
    fn default() -> Self {
        AdditiveAttention {
            args: LayerArgs::default(),
            use_scale: true,
            dropout: 0.0,
            seed: None,
            use_causal_mask: false,
            return_attention_scores: false,
            scale: None,
        }
    }
}

impl AdditiveAttention {
    /// Additive attention with Keras's defaults (a learned scale, no dropout).
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to learn a factor per feature on the scores. Defaults to true, as Keras.
    pub fn use_scale(mut self, use_scale: bool) -> Self {
        self.use_scale = use_scale;
        self
    }

    /// Fraction of the attention probabilities dropped in training. Defaults to 0.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Keras's call argument `use_causal_mask`: query step `i` sees value steps `0..=i`.
    /// Defaults to false.
    pub fn use_causal_mask(mut self, causal: bool) -> Self {
        self.use_causal_mask = causal;
        self
    }

    /// Keras's call argument `return_attention_scores`: a second output `(batch, Tq, Tv)`,
    /// the attention probabilities. Defaults to false.
    pub fn return_attention_scores(mut self, scores: bool) -> Self {
        self.return_attention_scores = scores;
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        Ok(AdditiveAttention {
            args: LayerArgs::with_input_shape(config)?,
            use_scale: args::flag(config, "use_scale", true)?,
            dropout: args::number(config, "dropout")?.unwrap_or(0.0),
            seed: args::seed(config)?,
            use_causal_mask: args::flag(config, "use_causal_mask", false)?,
            return_attention_scores: args::flag(config, "return_attention_scores", false)?,
            scale: None,
        })
    }

    /// The per-sample `(query, value, key)` shapes, checked.
    fn roles<'a>(&self, shapes: &'a [Vec<usize>]) -> Result<[&'a [usize]; 3]> {
        let ok = |s: &[usize]| s.len() == 2 && s.iter().all(|&d| d > 0);
        let valid = match shapes {
            [q, v] => ok(q) && ok(v) && q[1] == v[1],
            [q, v, k] => ok(q) && ok(v) && ok(k) && q[1] == k[1] && v[0] == k[0],
            _ => false,
        };
        if !valid || !(0.0..1.0).contains(&self.dropout) {
            let received: Vec<String> = shapes.iter().map(|s| keras_shape(s)).collect();
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: "[query (None, Tq, dim), value (None, Tv, dim_v)] or with a key (None, Tv, dim), \
                           and a dropout rate in [0, 1)"
                    .into(),
                received: received.join(", "),
            });
        }
        Ok([&shapes[0], &shapes[1], shapes.get(2).unwrap_or(&shapes[1])])
    }

    /// `0` where query step `i` may see value step `j`, `-MASKED_SCORE` elsewhere, `(N, Tq, Tv)`
    /// (or `None` when everything is seen): the value's padding and causality, as Keras
    /// combines them (one penalty for a score masked either way).
    fn score_penalty(&self, graph: &mut Graph, value: Var, n: usize, tq: usize, tv: usize) -> Result<Option<Var>> {
        let padding = graph.mask(value).map(|m| graph.value(m).data().to_vec());
        if padding.is_none() && !self.use_causal_mask {
            return Ok(None);
        }
        let causal = self.use_causal_mask;
        let penalty = graph.constant_with(|t| {
            t.resize_for(&[n, tq, tv]);
            for (index, out) in t.data_mut().iter_mut().enumerate() {
                let (sample, i, j) = (index / (tq * tv), index / tv % tq, index % tv);
                let padded = padding.as_ref().is_some_and(|p| p[sample * tv + j] == 0.0);
                *out = if padded || (causal && j > i) {
                    -MASKED_SCORE
                } else {
                    0.0
                };
            }
        });
        Ok(Some(penalty))
    }
}

layer_builders!(AdditiveAttention);

impl Layer for AdditiveAttention {
    fn class_name(&self) -> &'static str {
        "AdditiveAttention"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_count(&self) -> usize {
        1 + self.return_attention_scores as usize
    }

    fn output_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        let [query, value, _] = self.roles(input_shapes)?;
        let mut shapes = vec![vec![query[0], value[1]]];
        if self.return_attention_scores {
            shapes.push(vec![query[0], value[0]]);
        }
        Ok(shapes)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        let [query, _, _] = self.roles(input_shapes)?;
        Ok(match self.use_scale {
            true => vec![ParamShape::new(vec![query[1]], self.args.trainable)],
            false => Vec::new(),
        })
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        self.output_shapes(input_shapes)?;
        let [query, _, _] = self.roles(input_shapes)?;
        if self.use_scale {
            let scale = Initializer::GlorotUniform.initialize(&[query[1]], rng);
            self.scale = Some(params.add(format!("{}/scale", self.args.name), scale, self.args.trainable));
        }
        Ok(())
    }

    fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| graph.shape(v)[1..].to_vec()).collect();
        let [query_shape, value_shape, _] = self.roles(&shapes)?;
        let (tq, dim, tv, dv) = (query_shape[0], query_shape[1], value_shape[0], value_shape[1]);
        let n = graph.shape(inputs[0])[0];
        let (query, value) = (inputs[0], inputs[1]);
        let key = inputs.get(2).copied().unwrap_or(value);
        // tanh(query_i + key_j) for every pair, (N, Tq, Tv, dim), then Σ_d scale_d · it.
        let q = graph.reshape(query, &[n, tq, 1, dim])?;
        let k = graph.reshape(key, &[n, 1, tv, dim])?;
        let sum = graph.add(q, k)?;
        let pairs = graph.tanh(sum);
        let pairs = graph.reshape(pairs, &[n * tq * tv, dim])?;
        let scale = match self.scale {
            Some(id) => graph.param(id),
            None => graph.constant(&Tensor::from_vec(vec![dim], vec![1.0; dim])?),
        };
        let scale = graph.reshape(scale, &[dim, 1])?;
        let scores = graph.matmul(pairs, scale)?;
        let mut scores = graph.reshape(scores, &[n, tq, tv])?;
        if let Some(penalty) = self.score_penalty(graph, value, n, tq, tv)? {
            scores = graph.add(scores, penalty)?;
        }
        let probabilities = graph.softmax(scores);
        let mut weights = probabilities;
        if graph.training() && self.dropout > 0.0 {
            let key = graph.noise_key(self.seed.unwrap_or_else(|| hash_name(&self.args.name)));
            let rate = self.dropout;
            let keep = graph.constant_with(|mask| {
                mask.resize_for(&[n, tq, tv]);
                super::dropout::fill_mask(mask.data_mut(), rate, key);
            });
            weights = graph.mul(weights, keep)?;
        }
        // Σ_j weights_ij · value_j: the pairs' products averaged over the value steps, times Tv.
        let w = graph.reshape(weights, &[n, tq, tv, 1])?;
        let v = graph.reshape(value, &[n, 1, tv, dv])?;
        let products = graph.mul(w, v)?;
        let products = graph.reshape(products, &[n * tq, tv, dv])?;
        let mean = graph.mean_steps(products, None)?;
        let attended = graph.scale(mean, tv as f32);
        let mut y = graph.reshape(attended, &[n, tq, dv])?;
        if let Some(query_mask) = graph.mask(query) {
            let rows = graph.reshape(query_mask, &[n, tq, 1])?;
            y = graph.mul(y, rows)?;
            graph.set_mask(y, query_mask);
        }
        outputs.push(y);
        if self.return_attention_scores {
            outputs.push(probabilities);
        }
        Ok(())
    }

    fn params(&self) -> Vec<ParamId> {
        self.scale.into_iter().collect()
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "use_scale": self.use_scale,
            "dropout": self.dropout,
            "use_causal_mask": self.use_causal_mask,
            "return_attention_scores": self.return_attention_scores,
        }))
    }
}
