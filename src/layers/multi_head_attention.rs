//! `MultiHeadAttention`: Keras's layer of the Transformer, with Keras's arguments, call
//! signature and weight layouts (`query`/`key`/`value` kernels `(d_model, num_heads, key_dim)`,
//! biases `(num_heads, key_dim)`, output kernel `(num_heads, value_dim, d_model)`), so a Keras
//! model's weights load unchanged.
//!
//! Keras calls it as `mha(query, value, key=None, attention_mask=None, use_causal_mask=False,
//! return_attention_scores=False)`. In a strata graph its inputs are `[query, value]`, then
//! `key` if given, then the attention mask if [`MultiHeadAttention::attention_mask_input`] is
//! set; `use_causal_mask` and `return_attention_scores` are settings of the layer.

use super::{Layer, LayerArgs, ParamShape, args};
use crate::autograd::{AttentionOptions, Graph, ParamId, ParamStore, Var};
use crate::error::{Error, Result, keras_shape};
use crate::initializers::Initializer;
use crate::layers::common::layer_builders;
use crate::regularizers::Regularizer;
use crate::rng::Rng;
use serde_json::{Value, json};

/// The four projections, in Keras's weight order, with their weight names.
const PROJECTIONS: [&str; 4] = ["query", "key", "value", "attention_output"];

/// Keras's `MultiHeadAttention(num_heads, key_dim, value_dim=None, dropout=0.0, use_bias=True,
/// output_shape=None, attention_axes=None, kernel_initializer="glorot_uniform",
/// bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None)` on sequences
/// `(batch, steps, features)`.
///
/// ```
/// use strata::prelude::*;
/// let x = Input::node(&[16, 32]);
/// let y = MultiHeadAttention::new(4, 8).call_many(&[&x, &x]).unwrap(); // self-attention
/// ```
#[derive(Clone, Debug)]
pub struct MultiHeadAttention {
    args: LayerArgs,
    num_heads: usize,
    key_dim: usize,
    value_dim: Option<usize>,
    dropout: f32,
    use_bias: bool,
    output_shape: Option<usize>,
    kernel_initializer: Initializer,
    bias_initializer: Initializer,
    kernel_regularizer: Option<Regularizer>,
    bias_regularizer: Option<Regularizer>,
    seed: Option<u64>,
    use_causal_mask: bool,
    return_attention_scores: bool,
    attention_mask_input: bool,
    /// Per projection: kernel, then bias if `use_bias`.
    weights: Vec<ParamId>,
}

impl MultiHeadAttention {
    /// `num_heads` heads of width `key_dim` (the value width too, unless set).
    pub fn new(num_heads: usize, key_dim: usize) -> Self {
        MultiHeadAttention {
            args: LayerArgs::default(),
            num_heads,
            key_dim,
            value_dim: None,
            dropout: 0.0,
            use_bias: true,
            output_shape: None,
            kernel_initializer: Initializer::GlorotUniform,
            bias_initializer: Initializer::Zeros,
            kernel_regularizer: None,
            bias_regularizer: None,
            seed: None,
            use_causal_mask: false,
            return_attention_scores: false,
            attention_mask_input: false,
            weights: Vec::new(),
        }
    }

    /// Per-head width of the values. Defaults to `key_dim`.
    pub fn value_dim(mut self, value_dim: usize) -> Self {
        self.value_dim = Some(value_dim);
        self
    }

    /// Fraction of the attention probabilities dropped in training. Defaults to 0.
    pub fn dropout(mut self, rate: f32) -> Self {
        self.dropout = rate;
        self
    }

    /// Whether the projections have biases. Defaults to true.
    pub fn use_bias(mut self, use_bias: bool) -> Self {
        self.use_bias = use_bias;
        self
    }

    /// Width of the output's last axis. Defaults to the query's.
    pub fn output_shape(mut self, width: usize) -> Self {
        self.output_shape = Some(width);
        self
    }

    /// How the kernels start. Defaults to `glorot_uniform`.
    pub fn kernel_initializer(mut self, initializer: Initializer) -> Self {
        self.kernel_initializer = initializer;
        self
    }

    /// How the biases start. Defaults to `zeros`.
    pub fn bias_initializer(mut self, initializer: Initializer) -> Self {
        self.bias_initializer = initializer;
        self
    }

    /// A penalty on every kernel. Defaults to none.
    pub fn kernel_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.kernel_regularizer = Some(regularizer);
        self
    }

    /// A penalty on every bias. Defaults to none.
    pub fn bias_regularizer(mut self, regularizer: Regularizer) -> Self {
        self.bias_regularizer = Some(regularizer);
        self
    }

    /// Seed of the attention dropout (defaults to a hash of the layer's name).
    pub fn seed(mut self, seed: u64) -> Self {
        self.seed = Some(seed);
        self
    }

    /// Keras's call argument `use_causal_mask`: query step `i` attends only to steps `≤ i`.
    /// Defaults to false.
    pub fn use_causal_mask(mut self, causal: bool) -> Self {
        self.use_causal_mask = causal;
        self
    }

    /// Keras's call argument `return_attention_scores`: a second output, the probabilities
    /// `(batch, num_heads, Tq, Tk)` before dropout (no gradient flows back through it).
    /// Defaults to false.
    pub fn return_attention_scores(mut self, scores: bool) -> Self {
        self.return_attention_scores = scores;
        self
    }

    /// Whether the last input is Keras's `attention_mask` `(batch, Tq, Tk)`: 1 where query `i`
    /// may attend to key `j`, 0 where not. Defaults to false.
    pub fn attention_mask_input(mut self, mask: bool) -> Self {
        self.attention_mask_input = mask;
        self
    }

    /// The layer from Keras's `get_config()` keys.
    pub(crate) fn from_config(config: &Value) -> Result<Self> {
        let size = |key: &str| args::required_size(config, key, "MultiHeadAttention");
        let optional = |key: &str| match config.get(key) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => args::required_size(&json!({ key: v }), key, "MultiHeadAttention").map(Some),
        };
        refuse_unless(config, "use_gate", &[json!(false)])?;
        refuse_unless(config, "sliding_window", &[])?;
        refuse_unless(
            config,
            "attention_axes",
            &[json!([1]), json!(1), json!([-2]), json!(-2)],
        )?;
        let output_shape = match config.get("output_shape") {
            Some(Value::Array(items)) if items.len() == 1 => optional_in(&items[0])?,
            Some(other) => optional_in(other)?,
            None => None,
        };
        let mut layer = MultiHeadAttention::new(size("num_heads")?, size("key_dim")?);
        layer.args = LayerArgs::with_input_shape(config)?;
        layer.value_dim = optional("value_dim")?;
        layer.output_shape = output_shape;
        layer.dropout = args::number(config, "dropout")?.unwrap_or(0.0);
        layer.use_bias = args::flag(config, "use_bias", true)?;
        let init = |key, default| Ok::<_, Error>(args::initializer(config, key)?.unwrap_or(default));
        layer.kernel_initializer = init("kernel_initializer", Initializer::GlorotUniform)?;
        layer.bias_initializer = init("bias_initializer", Initializer::Zeros)?;
        layer.kernel_regularizer = args::regularizer(config, "kernel_regularizer")?;
        layer.bias_regularizer = args::regularizer(config, "bias_regularizer")?;
        layer.seed = args::seed(config)?;
        layer.use_causal_mask = args::flag(config, "use_causal_mask", false)?;
        layer.return_attention_scores = args::flag(config, "return_attention_scores", false)?;
        layer.attention_mask_input = args::flag(config, "attention_mask_input", false)?;
        Ok(layer)
    }

    fn value_width(&self) -> usize {
        self.value_dim.unwrap_or(self.key_dim)
    }

    fn error(&self, expected: &str, shapes: &[Vec<usize>]) -> Error {
        let received: Vec<String> = shapes.iter().map(|s| keras_shape(s)).collect();
        Error::LayerShape {
            layer: self.args.name.clone(),
            expected: expected.to_string(),
            received: received.join(", "),
        }
    }

    /// The per-sample `(query, value, key)` shapes and whether a mask input follows, checked.
    fn roles<'a>(&self, shapes: &'a [Vec<usize>]) -> Result<[&'a [usize]; 3]> {
        let expected = match self.attention_mask_input {
            true => "[query, value, (key,) attention_mask], each (None, steps, features), the mask (None, Tq, Tk)",
            false => "[query, value] or [query, value, key], each (None, steps, features)",
        };
        let sequences = shapes.len().saturating_sub(self.attention_mask_input as usize);
        if !(2..=3).contains(&sequences) {
            return Err(self.error(expected, shapes));
        }
        let (query, value) = (&shapes[0], &shapes[1]);
        let key = if sequences == 3 { &shapes[2] } else { value };
        let fits = [query, value, key].iter().all(|s| s.len() == 2 && s[1] > 0) && key[0] == value[0];
        if !fits {
            return Err(self.error(expected, shapes));
        }
        if self.attention_mask_input && shapes[sequences] != [query[0], value[0]] {
            return Err(self.error(
                &format!("an attention_mask of shape (None, {}, {})", query[0], value[0]),
                &shapes[sequences..],
            ));
        }
        Ok([query, value, key])
    }

    fn check_settings(&self) -> Result<()> {
        let invalid = |key: &str, value: String, why: &str| {
            Err(Error::invalid(key, value, format!("layer '{}' {why}", self.args.name)))
        };
        if self.num_heads == 0 || self.key_dim == 0 || self.value_dim == Some(0) || self.output_shape == Some(0) {
            return invalid(
                "num_heads/key_dim",
                format!("{}/{}", self.num_heads, self.key_dim),
                "needs positive num_heads, key_dim, value_dim and output_shape",
            );
        }
        if !(0.0..1.0).contains(&self.dropout) {
            return invalid("dropout", self.dropout.to_string(), "needs a dropout rate in [0, 1)");
        }
        for regularizer in self.kernel_regularizer.iter().chain(&self.bias_regularizer) {
            regularizer.validate()?;
        }
        Ok(())
    }

    /// Kernel and bias shapes of the four projections, in Keras's order.
    fn weight_shapes(&self, query: &[usize], value: &[usize], key: &[usize]) -> Result<Vec<(String, Vec<usize>)>> {
        let (heads, dk, dv) = (self.num_heads, self.key_dim, self.value_width());
        let out = self.output_shape.unwrap_or(query[1]);
        let kernels = [
            vec![query[1], heads, dk],
            vec![key[1], heads, dk],
            vec![value[1], heads, dv],
            vec![heads, dv, out],
        ];
        let biases = [vec![heads, dk], vec![heads, dk], vec![heads, dv], vec![out]];
        let mut shapes = Vec::new();
        for ((name, kernel), bias) in PROJECTIONS.iter().zip(kernels).zip(biases) {
            super::check_weight_count(&self.args.name, &kernel)?;
            shapes.push((format!("{name}/kernel"), kernel));
            if self.use_bias {
                shapes.push((format!("{name}/bias"), bias));
            }
        }
        Ok(shapes)
    }

    fn built(&self) -> Result<&[ParamId]> {
        match self.weights.is_empty() {
            true => Err(Error::Usage(format!(
                "layer '{}' used before it was built",
                self.args.name
            ))),
            false => Ok(&self.weights),
        }
    }

    /// `x · kernel + bias` for projection `index`, the kernel read as `(in, rest)`.
    fn project(&self, graph: &mut Graph, x: Var, index: usize) -> Result<Var> {
        let per = 1 + self.use_bias as usize;
        let ids = &self.built()?[index * per..][..per];
        let kernel = graph.param(ids[0]);
        let shape = graph.shape(kernel).to_vec();
        let (rows, cols) = match index {
            3 => (shape[0] * shape[1], shape[2]),
            _ => (shape[0], shape[1] * shape[2]),
        };
        let kernel = graph.reshape(kernel, &[rows, cols])?;
        let bias = match ids.get(1) {
            Some(&id) => {
                let bias = graph.param(id);
                Some(graph.reshape(bias, &[cols])?)
            }
            None => None,
        };
        graph.linear(x, kernel, bias)
    }
}

/// Keras's combined attention mask: `explicit` (N, Tq, Tk) and the sequence masks of the
/// query (rows) and of `columns` (the value and key: columns), as one `(N, Tq, Tk)` value, or
/// `None` when there is no mask at all.
fn combined_mask(graph: &mut Graph, query: Var, columns: &[Var], explicit: Option<Var>) -> Result<Option<Var>> {
    let row_mask = graph.mask(query);
    let column_masks: Vec<Var> = columns.iter().filter_map(|&v| graph.mask(v)).collect();
    if explicit.is_none() && row_mask.is_none() && column_masks.is_empty() {
        return Ok(None);
    }
    let (n, tq, tk) = (graph.shape(query)[0], graph.shape(query)[1], graph.shape(columns[0])[1]);
    let mut mask = match explicit {
        Some(m) => m,
        None => graph.constant_with(|t| {
            t.resize_for(&[n, tq, tk]);
            t.data_mut().fill(1.0);
        }),
    };
    if let Some(rows) = row_mask {
        let rows = graph.reshape(rows, &[n, tq, 1])?;
        mask = graph.mul(mask, rows)?;
    }
    for columns in column_masks {
        let columns = graph.reshape(columns, &[n, 1, tk])?;
        mask = graph.mul(mask, columns)?;
    }
    Ok(Some(mask))
}

/// An optional positive size from a config value (`null` or a number).
fn optional_in(value: &Value) -> Result<Option<usize>> {
    match value {
        Value::Null => Ok(None),
        v => args::required_size(&json!({ "output_shape": v }), "output_shape", "MultiHeadAttention").map(Some),
    }
}

/// An error unless `key` is absent, `null`, or one of `allowed`: Keras settings strata does
/// not implement.
fn refuse_unless(config: &Value, key: &str, allowed: &[Value]) -> Result<()> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(()),
        Some(v) if allowed.contains(v) => Ok(()),
        Some(v) => Err(Error::Data(format!(
            "MultiHeadAttention: \"{key}\" = {v} is not supported by strata (attention runs over the \
             steps axis of (batch, steps, features), without gates or sliding windows)"
        ))),
    }
}

layer_builders!(MultiHeadAttention, input_shape);

impl Layer for MultiHeadAttention {
    fn class_name(&self) -> &'static str {
        "MultiHeadAttention"
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
        self.check_settings()?;
        let [query, value, key] = self.roles(input_shapes)?;
        self.weight_shapes(query, value, key)?;
        let mut shapes = vec![vec![query[0], self.output_shape.unwrap_or(query[1])]];
        if self.return_attention_scores {
            shapes.push(vec![self.num_heads, query[0], value[0]]);
        }
        Ok(shapes)
    }

    fn param_shapes(&self, input_shapes: &[Vec<usize>]) -> Result<Vec<ParamShape>> {
        self.output_shapes(input_shapes)?;
        let [query, value, key] = self.roles(input_shapes)?;
        let shapes = self.weight_shapes(query, value, key)?;
        Ok(shapes
            .into_iter()
            .map(|(_, shape)| ParamShape::new(shape, self.args.trainable))
            .collect())
    }

    fn build(&mut self, input_shapes: &[Vec<usize>], params: &mut ParamStore, rng: &mut Rng) -> Result<()> {
        self.output_shapes(input_shapes)?;
        let [query, value, key] = self.roles(input_shapes)?;
        self.weights.clear();
        for (name, shape) in self.weight_shapes(query, value, key)? {
            let is_kernel = name.ends_with("kernel");
            let (init, penalty) = match is_kernel {
                true => (self.kernel_initializer, self.kernel_regularizer),
                false => (self.bias_initializer, self.bias_regularizer),
            };
            let tensor = init.initialize(&shape, rng);
            let id = params.add(format!("{}/{name}", self.args.name), tensor, self.args.trainable);
            params.set_regularizer(id, penalty);
            self.weights.push(id);
        }
        Ok(())
    }

    fn forward(&self, graph: &mut Graph, inputs: &[Var], outputs: &mut Vec<Var>) -> Result<()> {
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|&v| graph.shape(v)[1..].to_vec()).collect();
        self.roles(&shapes)?;
        let sequences = inputs.len() - self.attention_mask_input as usize;
        let (query, value) = (inputs[0], inputs[1]);
        let key = if sequences == 3 { inputs[2] } else { value };
        let explicit = self.attention_mask_input.then(|| inputs[sequences]);
        let mask = combined_mask(graph, query, &inputs[1..sequences], explicit)?;
        let q = self.project(graph, query, 0)?;
        let k = self.project(graph, key, 1)?;
        let v = self.project(graph, value, 2)?;
        let options = AttentionOptions {
            heads: self.num_heads,
            // Keras's `1 / math.sqrt(key_dim)`: in f64, then rounded once to f32.
            scale: (1.0 / (self.key_dim as f64).sqrt()) as f32,
            causal: self.use_causal_mask,
            dropout: self.dropout,
            seed: self.seed.unwrap_or_else(|| crate::rng::hash_name(&self.args.name)),
        };
        let attended = graph.attention(q, k, v, mask, options)?;
        let y = self.project(graph, attended, 3)?;
        if let Some(query_mask) = graph.mask(query) {
            graph.set_mask(y, query_mask);
        }
        outputs.push(y);
        if self.return_attention_scores {
            outputs.push(graph.attention_scores(attended)?);
        }
        Ok(())
    }

    fn params(&self) -> Vec<ParamId> {
        self.weights.clone()
    }

    fn config(&self) -> Value {
        self.args.config(json!({
            "num_heads": self.num_heads,
            "key_dim": self.key_dim,
            "value_dim": self.value_width(),
            "dropout": self.dropout,
            "use_bias": self.use_bias,
            "output_shape": self.output_shape,
            "attention_axes": null,
            "use_gate": false,
            "sliding_window": null,
            "kernel_initializer": self.kernel_initializer.name(),
            "bias_initializer": self.bias_initializer.name(),
            "kernel_regularizer": self.kernel_regularizer.map(|r| r.config()),
            "bias_regularizer": self.bias_regularizer.map(|r| r.config()),
            "use_causal_mask": self.use_causal_mask,
            "return_attention_scores": self.return_attention_scores,
            "attention_mask_input": self.attention_mask_input,
        }))
    }
}
