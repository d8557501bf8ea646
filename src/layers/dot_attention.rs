//! Keras's `Attention`: Luong-style dot-product attention of a query sequence over a value
//! sequence, without projections (the layers before it make queries, keys and values).

use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{AttentionOptions, Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;
use crate::rng::Rng;
use crate::tensor::Tensor;
use serde_json::{Value, json};

/// Keras's `Attention(use_scale=False, score_mode="dot", dropout=0.0)`, called on `[query,
/// value]` or `[query, value, key]` (`(batch, steps, dim)`, the key defaulting to the value):
/// `softmax(query · keyᵀ · scale) · value`, the learned scalar `scale` (starting at 1) only
/// with `use_scale`. Keras's call arguments `use_causal_mask` and `return_attention_scores` are
/// settings here. Padded value steps (a mask from `Embedding(mask_zero=True)`) get no
/// attention and padded query steps give zeros, as in Keras. `score_mode="concat"` is not
/// implemented (an error says so).
#[derive(Clone, Debug, Default)]
pub struct Attention {
    args: LayerArgs,
    use_scale: bool,
    dropout: f32,
    seed: Option<u64>,
    use_causal_mask: bool,
    return_attention_scores: bool,
    scale: Option<ParamId>,
}

impl Attention {
    /// Dot-product attention with Keras's defaults.
    pub fn new() -> Self {
        Self::default()
    }

    /// Whether to learn a scalar factor on the scores. Defaults to false.
    pub fn use_scale(mut self, use_scale: bool) -> Self {
        self.use_scale = use_scale;
        self
    }

    /// Fraction of the attention probabilities dropped in training. Defaults to 0.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Keras's call argument `use_causal_mask`. Defaults to false.
    pub fn use_causal_mask(mut self, causal: bool) -> Self {
        self.use_causal_mask = causal;
        self
    }

    /// Keras's call argument `return_attention_scores`: a second output `(batch, Tq, Tv)`
    /// (no gradient flows back through it). Defaults to false.
    pub fn return_attention_scores(mut self, scores: bool) -> Self {
        self.return_attention_scores = scores;
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let mode = args::string(config, "score_mode", "dot")?;
        if mode != "dot" {
            return Err(Error::Data(format!(
                "Attention: \"score_mode\" = \"{mode}\" is not supported by strata (only \"dot\"; \
                 AdditiveAttention scores tanh(query + key) for a Bahdanau-style layer)"
            )));
        }
        Ok(Attention {
            args: LayerArgs::with_input_shape(config)?,
            use_scale: args::flag(config, "use_scale", false)?,
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
}

layer_builders!(Attention);

impl Layer for Attention {
    fn class_name(&self) -> &'static str {
        "Attention"
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
        self.output_shapes(input_shapes)?;
        Ok(match self.use_scale {
            true => vec![ParamShape::new(vec![], self.args.trainable)],
            false => Vec::new(),
        })
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, _: &mut Rng) -> Result<()> {
        self.output_shapes(input_shapes)?;
        if self.use_scale {
            let scale = Tensor::from_vec(vec![], vec![1.0])?;
            self.scale = Some(params.add(format!("{}/scale", self.args.name), scale, self.args.trainable));
        }
        Ok(())
    }

    fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| graph.shape(v)[1..].to_vec()).collect();
        self.roles(&shapes)?;
        let (query, value) = (inputs[0], inputs[1]);
        let key = inputs.get(2).copied().unwrap_or(value);
        // Keras masks the value's padded steps; the query's padded rows are zeroed below.
        let mask = match graph.mask(value) {
            Some(columns) => {
                let (n, tq, tv) = (graph.shape(query)[0], shapes[0][0], shapes[1][0]);
                let ones = graph.constant_with(|t| {
                    t.resize_for(&[n, tq, tv]);
                    t.data_mut().fill(1.0);
                });
                let columns = graph.reshape(columns, &[n, 1, tv])?;
                Some(graph.mul(ones, columns)?)
            }
            None => None,
        };
        let q = match self.scale {
            Some(id) => {
                let scale = graph.param(id);
                graph.mul(query, scale)?
            }
            None => query,
        };
        let options = AttentionOptions {
            heads: 1,
            scale: 1.0,
            causal: self.use_causal_mask,
            dropout: self.dropout,
            seed: self.seed.unwrap_or_else(|| crate::rng::hash_name(&self.args.name)),
        };
        let attended = graph.attention(q, key, value, mask, options)?;
        let mut y = attended;
        if let Some(query_mask) = graph.mask(query) {
            let shape = graph.shape(query_mask).to_vec();
            let rows = graph.reshape(query_mask, &[shape[0], shape[1], 1])?;
            y = graph.mul(attended, rows)?;
            graph.set_mask(y, query_mask);
        }
        outputs.push(y);
        if self.return_attention_scores {
            let scores = graph.attention_scores(attended)?;
            let s = graph.shape(scores).to_vec();
            outputs.push(graph.reshape(scores, &[s[0], s[2], s[3]])?);
        }
        Ok(())
    }

    fn params(&self) -> Vec<ParamId> {
        self.scale.into_iter().collect()
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "use_scale": self.use_scale,
            "score_mode": "dot",
            "dropout": self.dropout,
            "use_causal_mask": self.use_causal_mask,
            "return_attention_scores": self.return_attention_scores,
        }))
    }
}
