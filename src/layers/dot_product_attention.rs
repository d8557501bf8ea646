//! Multi-head scaled dot-product attention without projections: the core of Keras's
//! `MultiHeadAttention` (and of `keras.ops.dot_product_attention`) as a layer, for models whose
//! projections are layers of their own, as in the transformers ONNX import reads from PyTorch
//! and Hugging Face (`Dense` → heads → attention → `Dense`).

use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{AttentionOptions, Graph, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::layers::common::layer_builders;
use crate::rng::Rng;
use serde_json::{Value, json};

/// `DotProductAttention(num_heads, scale=None, use_causal_mask=False, mask_input=False)`,
/// called on `[query, value]` or `[query, value, key]` (`(batch, steps, num_heads·dim)`, the key
/// defaulting to the value), and with `mask_input` a last input, the mask: per head `h` (the
/// `h`-th slice of the last axis), `softmax(query_h · key_hᵀ · scale) · value_h`, the heads'
/// results side by side `(batch, Tq, num_heads·dim_v)`. `scale` defaults to `1/√dim`. The mask
/// holds 1 where a query may attend: `(batch, Tk)` for the keys every query sees (a padding mask,
/// as Hugging Face's `attention_mask`), or `(batch, Tq, Tk)`. No weights.
#[derive(Clone, Debug)]
pub struct DotProductAttention {
    args: LayerArgs,
    num_heads: usize,
    scale: Option<f32>,
    use_causal_mask: bool,
    mask_input: bool,
}

impl DotProductAttention {
    /// Attention with `num_heads` heads, scaled by `1/√dim`, not causal.
    pub fn new(num_heads: usize) -> Self {
        DotProductAttention {
            args: LayerArgs::default(),
            num_heads,
            scale: None,
            use_causal_mask: false,
            mask_input: false,
        }
    }

    /// The factor on `query · keyᵀ`. Defaults to `1/√dim` (dim: one head's query width).
    pub fn scale(mut self, scale: f32) -> Self {
        self.scale = Some(scale);
        self
    }

    /// Whether query step `i` sees only key steps `j ≤ i`. Defaults to false.
    pub fn use_causal_mask(mut self, causal: bool) -> Self {
        self.use_causal_mask = causal;
        self
    }

    /// Whether the last input is a mask, `(batch, Tk)` or `(batch, Tq, Tk)`, 1 where a query
    /// may attend. Defaults to false.
    pub fn mask_input(mut self, mask: bool) -> Self {
        self.mask_input = mask;
        self
    }

    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let num_heads = args::required_size(config, "num_heads", "DotProductAttention")?;
        Ok(DotProductAttention {
            args: LayerArgs::with_input_shape(config)?,
            num_heads,
            scale: args::number(config, "scale")?,
            use_causal_mask: args::flag(config, "use_causal_mask", false)?,
            mask_input: args::flag(config, "mask_input", false)?,
        })
    }

    /// The per-sample `(query, value, key)` shapes, checked against each other and the heads.
    fn roles<'a>(&self, shapes: &'a [Vec<usize>]) -> Result<[&'a [usize]; 3]> {
        let heads = self.num_heads;
        let ok = |s: &[usize]| s.len() == 2 && s[0] > 0 && s[1] > 0 && heads > 0 && s[1].is_multiple_of(heads);
        let (sequences, mask) = match self.mask_input {
            true => shapes.split_at(shapes.len().saturating_sub(1)),
            false => (shapes, &[][..]),
        };
        let valid = match sequences {
            [q, v] => ok(q) && ok(v) && q[1] == v[1],
            [q, v, k] => ok(q) && ok(v) && ok(k) && q[1] == k[1] && v[0] == k[0],
            _ => false,
        };
        let mask_fits = match (mask, sequences.first()) {
            ([], _) => !self.mask_input,
            ([m], Some(q)) => {
                let keys = sequences.get(2).unwrap_or(&sequences[1])[0];
                m[..] == [keys] || m[..] == [q[0], keys]
            }
            _ => false,
        };
        let valid = valid && mask_fits;
        let finite = self.scale.is_none_or(f32::is_finite);
        if !valid || !finite {
            let received: Vec<String> = shapes.iter().map(|s| keras_shape(s)).collect();
            return Err(Error::LayerShape {
                layer: self.args.name.clone(),
                expected: format!(
                    "[query (None, Tq, {heads}·dim), value (None, Tv, {heads}·dim_v)] or with a key (None, Tv, \
                     {heads}·dim){}, num_heads above 0 and a finite scale",
                    if self.mask_input {
                        ", then a mask (None, Tv) or (None, Tq, Tv)"
                    } else {
                        ""
                    }
                ),
                received: received.join(", "),
            });
        }
        Ok([&shapes[0], &shapes[1], shapes.get(2).unwrap_or(&shapes[1])])
    }
}

impl DotProductAttention {
    /// The mask as the attention takes it, `(batch, Tq, Tk)`: a key mask `(batch, Tk)` the same
    /// for every query.
    fn full_mask(&self, graph: &mut Graph, mask: Var, queries: usize) -> Result<Var> {
        let shape = graph.shape(mask).to_vec();
        let &[batch, keys] = shape.as_slice() else {
            return Ok(mask);
        };
        let ones = graph.constant_with(|t| {
            t.resize_for(&[batch, queries, keys]);
            t.data_mut().fill(1.0);
        });
        let columns = graph.reshape(mask, &[batch, 1, keys])?;
        graph.mul(ones, columns)
    }
}

layer_builders!(DotProductAttention);

impl Layer for DotProductAttention {
    fn class_name(&self) -> &'static str {
        "DotProductAttention"
    }

    fn args(&self) -> &LayerArgs {
        &self.args
    }

    fn args_mut(&mut self) -> &mut LayerArgs {
        &mut self.args
    }

    fn output_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<Vec<usize>>> {
        let [query, value, _] = self.roles(input_shapes)?;
        Ok(vec![vec![query[0], value[1]]])
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        self.output_shapes(input_shapes)?;
        Ok(Vec::new())
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], _: &mut ParamStore, _: &mut Rng) -> Result<()> {
        self.output_shapes(input_shapes)?;
        Ok(())
    }

    fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| graph.shape(v)[1..].to_vec()).collect();
        let [query, _, _] = self.roles(&shapes)?;
        let sequences = inputs.len() - usize::from(self.mask_input);
        let (q, v) = (inputs[0], inputs[1]);
        let k = if sequences == 3 { inputs[2] } else { v };
        let mask = match self.mask_input {
            true => Some(self.full_mask(graph, inputs[sequences], query[0])?),
            false => None,
        };
        let width = query[1] / self.num_heads;
        let options = AttentionOptions {
            heads: self.num_heads,
            scale: self.scale.unwrap_or((1.0 / (width as f64).sqrt()) as f32),
            causal: self.use_causal_mask,
            dropout: 0.0,
            seed: 0,
        };
        outputs.push(graph.attention(q, k, v, mask, options)?);
        Ok(())
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "num_heads": self.num_heads,
            "scale": self.scale,
            "use_causal_mask": self.use_causal_mask,
            "mask_input": self.mask_input,
        }))
    }
}
