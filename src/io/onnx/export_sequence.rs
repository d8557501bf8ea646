//! Sequence and normalization layers as ONNX operators: `Embedding` (`Gather`),
//! `PositionEmbedding` and `SinePositionEncoding` (a table broadcast over the batch),
//! `ClassToken` (its tokens expanded over the batch, in front of the steps), `PositionIds`
//! (`Equal`, `Not`, `CumSum` as RoBERTa's export writes them),
//! `MultiHeadAttention` (its projections, scaled dot products and softmax written out) and
//! `Attention` (the dot products alone),
//! `AdditiveAttention` (Bahdanau's scores written out), `LayerNormalization` (opset 17's
//! operator), `RMSNormalization` (its mean square and root written out) and the
//! `Normalization` preprocessing layer.

use super::builder::int;
use super::layers::{Emitter, weight};
use crate::error::{Error, Result};
use crate::layers::{Layer, SinePositionEncoding};
use serde_json::Value;

/// ONNX's `TensorProto.DataType.INT64`, for `Cast`.
const INT64: i64 = 7;
/// ONNX's `TensorProto.DataType.FLOAT`, for `Cast`.
const FLOAT: i64 = 1;
/// The score strata's attention gives a masked pair (`kernels::attention`): its probability
/// underflows to exactly 0.
const MASKED: f32 = -1e9;
/// Keras's `backend.epsilon()`, the smallest standard deviation `Normalization` divides by.
const NORMALIZATION_EPSILON: f32 = 1e-7;

impl Emitter<'_> {
    /// Embedding: the float ids strata takes, cast to integers, index the table's rows (an
    /// int8 table dequantized per row, as strata's int8 `Embedding` reads it).
    pub(super) fn embedding(&mut self, layer: &dyn Layer, x: &str) -> Result<String> {
        let name = layer.name();
        let (shape, _) = weight(self.params, layer, 0)?;
        let table = self.kernel_operand(layer, "embeddings", shape, 0, |i| i)?;
        if layer.config()["mask_zero"].as_bool() == Some(true) {
            self.zero_mask(name, x);
        }
        let ids = self.builder.op(name, "Cast", &[x], vec![int("to", INT64)]);
        Ok(self.builder.op(name, "Gather", &[&table, &ids], vec![int("axis", 0)]))
    }

    /// PositionEmbedding (its first `T` rows) or SinePositionEncoding (its table), shaped
    /// `(1, T, C)` and broadcast to the input's shape.
    pub(super) fn positions(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let name = layer.name();
        let (steps, features) = (shape[0], shape[1]);
        let rows: Vec<f32> = match layer.class_name() {
            "PositionEmbedding" => {
                let (_, values) = weight(self.params, layer, 0)?;
                let rows = values.get(..steps * features).ok_or_else(|| {
                    Error::Usage(format!(
                        "layer '{name}' (PositionEmbedding) has fewer positions than the {steps} steps it is given"
                    ))
                })?;
                rows.to_vec()
            }
            _ => SinePositionEncoding::from_config(config)?
                .table(steps, features)
                .data()
                .to_vec(),
        };
        let rows = self
            .builder
            .floats(format!("{name}/positions"), &[1, steps, features], &rows);
        let target = self.builder.op(name, "Shape", &[x], vec![]);
        Ok(self.builder.op(name, "Expand", &[&rows, &target], vec![]))
    }

    /// ClassToken: its tokens `(1, k, C)` expanded to the batch, `(N, k, C)`, in front of the
    /// steps of `x (N, T, C)`.
    pub(super) fn class_token(&mut self, layer: &dyn Layer, x: &str) -> Result<String> {
        let name = layer.name();
        let (shape, values) = weight(self.params, layer, 0)?;
        let tokens = self.builder.floats(format!("{name}/cls"), shape, values);
        let batch = self
            .builder
            .op(name, "Shape", &[x], vec![int("start", 0), int("end", 1)]);
        let rest: Vec<i64> = shape[1..].iter().map(|&d| d as i64).collect();
        let rest = self.builder.int64s(format!("{name}/token_shape"), &rest);
        let target = self.builder.op(name, "Concat", &[&batch, &rest], vec![int("axis", 0)]);
        let expanded = self.builder.op(name, "Expand", &[&tokens, &target], vec![]);
        Ok(self.builder.op(name, "Concat", &[&expanded, x], vec![int("axis", 1)]))
    }

    /// PositionIds as RoBERTa's export writes it: `mask = Cast(Not(Equal(ids, pad)))`,
    /// `CumSum(mask, 1) · mask + pad`, in floats (strata's ids).
    pub(super) fn position_ids(&mut self, layer: &dyn Layer, config: &Value, x: &str) -> Result<String> {
        let name = layer.name();
        let padding = config["padding_idx"].as_i64().unwrap_or(0) as f32;
        let pad = self.builder.floats(format!("{name}/padding_idx"), &[], &[padding]);
        let equal = self.builder.op(name, "Equal", &[x, &pad], vec![]);
        let kept = self.builder.op(name, "Not", &[&equal], vec![]);
        let mask = self.builder.op(name, "Cast", &[&kept], vec![int("to", FLOAT)]);
        let axis = self.builder.int64s(format!("{name}/axis"), &[1]);
        let axis = self.builder.op(name, "Squeeze", &[&axis], vec![]);
        let counts = self.builder.op(name, "CumSum", &[&mask, &axis], vec![]);
        let counted = self.builder.op(name, "Mul", &[&counts, &mask], vec![]);
        Ok(self.builder.op(name, "Add", &[&counted, &pad], vec![]))
    }

    /// LayerNormalization over the last axis (ONNX's needs a scale: ones without `gamma`).
    pub(super) fn layer_norm(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let name = layer.name();
        let features = shape[shape.len() - 1];
        let epsilon = config["epsilon"].as_f64().unwrap_or(1e-3) as f32;
        let (scale, center) = (
            config["scale"].as_bool().unwrap_or(true),
            config["center"].as_bool().unwrap_or(true),
        );
        let gamma = match scale {
            true => weight(self.params, layer, 0)?.1.to_vec(),
            false => vec![1.0; features],
        };
        let mut operands = vec![
            x.to_string(),
            self.builder.floats(format!("{name}/gamma"), &[features], &gamma),
        ];
        if center {
            let (_, beta) = weight(self.params, layer, scale as usize)?;
            operands.push(self.builder.floats(format!("{name}/beta"), &[features], beta));
        }
        let operands: Vec<&str> = operands.iter().map(String::as_str).collect();
        let attributes = vec![int("axis", -1), super::builder::float("epsilon", epsilon)];
        Ok(self.builder.op(name, "LayerNormalization", &operands, attributes))
    }

    /// RMSNormalization over the last axis: `x / √(mean(x²) + ε) · scale`, written out (ONNX's
    /// own `RMSNormalization` needs opset 23).
    pub(super) fn rms_norm(&mut self, layer: &dyn Layer, config: &Value, x: &str, shape: &[usize]) -> Result<String> {
        let name = layer.name();
        let features = shape[shape.len() - 1];
        let epsilon = config["epsilon"].as_f64().unwrap_or(1e-6) as f32;
        let squares = self.builder.op(name, "Mul", &[x, x], vec![]);
        let attributes = vec![super::builder::ints("axes", &[-1]), int("keepdims", 1)];
        let mean = self.builder.op(name, "ReduceMean", &[&squares], attributes);
        let epsilon = self.builder.floats(format!("{name}/epsilon"), &[], &[epsilon]);
        let shifted = self.builder.op(name, "Add", &[&mean, &epsilon], vec![]);
        let root = self.builder.op(name, "Sqrt", &[&shifted], vec![]);
        let normalized = self.builder.op(name, "Div", &[x, &root], vec![]);
        if layer.params().is_empty() {
            return Ok(normalized);
        }
        let (_, scale) = weight(self.params, layer, 0)?;
        let scale = self.builder.floats(format!("{name}/scale"), &[features], scale);
        Ok(self.builder.op(name, "Mul", &[&normalized, &scale], vec![]))
    }

    /// AdditiveAttention (Bahdanau): scores `Σ_d scale_d · tanh(query_i + key_j)_d` for each
    /// pair of steps (`(N, Tq, 1, D) + (N, 1, Tv, D)`, then a product with the scale as a
    /// column), the causal mask where set, their softmax, and the weighted sum of the values.
    pub(super) fn additive_attention(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        inputs: &[(String, Vec<usize>)],
    ) -> Result<String> {
        let name = layer.name();
        let (query, value) = (&inputs[0], &inputs[1]);
        let key = inputs.get(2).unwrap_or(value);
        let (tq, tv, dim) = (query.1[0], key.1[0], query.1[1]);
        let q = self.reshape(name, "query", &query.0, &[-1, tq as i64, 1, dim as i64]);
        let k = self.reshape(name, "key", &key.0, &[-1, 1, tv as i64, dim as i64]);
        let sum = self.builder.op(name, "Add", &[&q, &k], vec![]);
        let pairs = self.builder.op(name, "Tanh", &[&sum], vec![]);
        let scale = match layer.params().is_empty() {
            true => vec![1.0; dim],
            false => weight(self.params, layer, 0)?.1.to_vec(),
        };
        let scale = self.builder.floats(format!("{name}/scale"), &[dim, 1], &scale);
        let scores = self.builder.op(name, "MatMul", &[&pairs, &scale], vec![]);
        let mut scores = self.reshape(name, "scores", &scores, &[-1, tq as i64, tv as i64]);
        let causal = config["use_causal_mask"].as_bool().unwrap_or(false);
        // One penalty for a score masked either way (the value's padding, causality), added.
        let columns: Vec<String> = self.input_mask(1).into_iter().collect();
        match self.attention_allowed(name, None, &columns, causal.then_some((tq, tv))) {
            Some(allowed) => {
                let one = self.builder.floats(format!("{name}/one"), &[], &[1.0]);
                let masked = self.builder.op(name, "Sub", &[&allowed, &one], vec![]);
                let size = self.builder.floats(format!("{name}/penalty"), &[], &[-MASKED]);
                let penalty = self.builder.op(name, "Mul", &[&masked, &size], vec![]);
                scores = self.builder.op(name, "Add", &[&scores, &penalty], vec![]);
            }
            None if causal => scores = self.causal(name, &scores, tq, tv),
            None => {}
        }
        let probabilities = self.builder.op(name, "Softmax", &[&scores], vec![int("axis", -1)]);
        let attended = self.builder.op(name, "MatMul", &[&probabilities, &value.0], vec![]);
        Ok(self.zero_masked_rows(name, attended))
    }

    /// Normalization: `(x − mean) / max(√variance, ε)`, or with `invert` `mean + x·max(...)`;
    /// the deviation is computed once here, in f32 as strata computes it.
    pub(super) fn normalization(&mut self, layer: &dyn Layer, config: &Value, x: &str) -> Result<String> {
        let name = layer.name();
        let listed = |key: &str| -> Option<Vec<f32>> {
            let items = config[key].as_array()?;
            items.iter().map(|v| v.as_f64().map(|v| v as f32)).collect()
        };
        let (shape, mean, variance) = match (listed("mean"), listed("variance")) {
            (Some(mean), Some(variance)) => (vec![mean.len()], mean, variance),
            _ => {
                let (shape, mean) = weight(self.params, layer, 0)?;
                (shape.to_vec(), mean.to_vec(), weight(self.params, layer, 1)?.1.to_vec())
            }
        };
        if mean.len() != variance.len() {
            return Err(Error::Usage(format!(
                "layer '{name}' (Normalization): {} means but {} variances",
                mean.len(),
                variance.len()
            )));
        }
        let deviation: Vec<f32> = variance.iter().map(|v| v.sqrt().max(NORMALIZATION_EPSILON)).collect();
        let mean = self.builder.floats(format!("{name}/mean"), &shape, &mean);
        let deviation = self.builder.floats(format!("{name}/deviation"), &shape, &deviation);
        Ok(match config["invert"].as_bool().unwrap_or(false) {
            true => {
                let scaled = self.builder.op(name, "Mul", &[x, &deviation], vec![]);
                self.builder.op(name, "Add", &[&scaled, &mean], vec![])
            }
            false => {
                let centered = self.builder.op(name, "Sub", &[x, &mean], vec![]);
                self.builder.op(name, "Div", &[&centered, &deviation], vec![])
            }
        })
    }

    /// MultiHeadAttention on `[query, value]` or `[query, value, key]`: each projection a
    /// `MatMul` (+ bias) split into heads `(N, heads, T, width)`, the scores scaled by
    /// `1/√key_dim` (and, with `use_causal_mask`, pushed to -1e9 above the diagonal), a
    /// softmax, the weighted values merged back and projected.
    pub(super) fn attention(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        inputs: &[(String, Vec<usize>)],
    ) -> Result<String> {
        let name = layer.name();
        let heads = config["num_heads"].as_u64().unwrap_or(1) as usize;
        let key_dim = config["key_dim"].as_u64().unwrap_or(1) as usize;
        let value_dim = config["value_dim"].as_u64().map_or(key_dim, |v| v as usize);
        let use_bias = config["use_bias"].as_bool().unwrap_or(true);
        let (query, value) = (&inputs[0], &inputs[1]);
        let key = inputs.get(2).unwrap_or(value);
        let (tq, tk) = (query.1[0] as i64, key.1[0] as i64);
        let q = self.projection(layer, 0, use_bias, &query.0)?;
        let k = self.projection(layer, 1, use_bias, &key.0)?;
        let v = self.projection(layer, 2, use_bias, &value.0)?;
        let core = AttentionCore {
            heads,
            key_dim,
            value_dim,
            steps: (tq, tk),
            scale: (1.0 / (key_dim as f64).sqrt()) as f32,
            causal: config["use_causal_mask"].as_bool().unwrap_or(false),
        };
        // Keras's combined mask: the query's over rows, the value's and key's over columns.
        let columns: Vec<String> = (1..inputs.len()).filter_map(|i| self.input_mask(i)).collect();
        let causal = core.causal.then_some((tq as usize, tk as usize));
        let allowed = self.attention_allowed(name, self.input_mask(0).as_deref(), &columns, causal);
        let merged = self.heads_attention(name, (&q, &k, &v), &core, allowed.as_deref());
        self.projection(layer, 3, use_bias, &merged)
    }

    /// DotProductAttention: MultiHeadAttention's core on `[query, value]` or `[query, value,
    /// key]`, the heads slices of the last axis.
    pub(super) fn dot_product_attention(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        inputs: &[(String, Vec<usize>)],
    ) -> Result<String> {
        if config["mask_input"].as_bool() == Some(true) {
            return Err(Error::Usage(format!(
                "layer '{}' (DotProductAttention) takes a mask input, which ONNX export does not write yet",
                layer.name()
            )));
        }
        let heads = config["num_heads"].as_u64().unwrap_or(1).max(1) as usize;
        let (query, value) = (&inputs[0], &inputs[1]);
        let key = inputs.get(2).unwrap_or(value);
        let key_dim = query.1[1] / heads;
        let core = AttentionCore {
            heads,
            key_dim,
            value_dim: value.1[1] / heads,
            steps: (query.1[0] as i64, key.1[0] as i64),
            scale: config["scale"]
                .as_f64()
                .map_or((1.0 / (key_dim as f64).sqrt()) as f32, |s| s as f32),
            causal: config["use_causal_mask"].as_bool().unwrap_or(false),
        };
        Ok(self.heads_attention(layer.name(), (&query.0, &key.0, &value.0), &core, None))
    }

    /// Scaled dot-product attention of projected `q`, `k`, `v` `(N, T, heads·dim)`: the heads
    /// split, `softmax(q·kᵀ·scale)·v` per head, the heads merged `(N, Tq, heads·value_dim)`.
    /// `allowed`: where the masks (and causality) let each query look, `(N, Tq or 1, Tk)`.
    fn heads_attention(
        &mut self,
        name: &str,
        (q, k, v): (&str, &str, &str),
        core: &AttentionCore,
        allowed: Option<&str>,
    ) -> String {
        let AttentionCore {
            heads,
            key_dim,
            value_dim,
            steps: (tq, tk),
            scale,
            causal,
        } = *core;
        let split = |width: usize, steps: i64| [0, steps, heads as i64, width as i64];
        let q = self.reshape(name, "query_heads", q, &split(key_dim, tq));
        let q = self.builder.transpose(name, &q, &[0, 2, 1, 3]);
        let k = self.reshape(name, "key_heads", k, &split(key_dim, tk));
        let k = self.builder.transpose(name, &k, &[0, 2, 3, 1]);
        let v = self.reshape(name, "value_heads", v, &split(value_dim, tk));
        let v = self.builder.transpose(name, &v, &[0, 2, 1, 3]);
        let products = self.builder.op(name, "MatMul", &[&q, &k], vec![]);
        let scale = self.builder.floats(format!("{name}/scale"), &[], &[scale]);
        let mut scores = self.builder.op(name, "Mul", &[&products, &scale], vec![]);
        if let Some(allowed) = allowed {
            let head_axis = self.builder.int64s(format!("{name}/head_axis"), &[1]);
            let allowed = self.builder.op(name, "Unsqueeze", &[allowed, &head_axis], vec![]);
            scores = self.replace_masked(name, &scores, &allowed, MASKED);
        } else if causal {
            scores = self.causal(name, &scores, tq as usize, tk as usize);
        }
        let probabilities = self.builder.op(name, "Softmax", &[&scores], vec![int("axis", -1)]);
        let attended = self.builder.op(name, "MatMul", &[&probabilities, &v], vec![]);
        let attended = self.builder.transpose(name, &attended, &[0, 2, 1, 3]);
        self.reshape(name, "merged", &attended, &[0, tq, (heads * value_dim) as i64])
    }

    /// Attention (Keras's dot-product one, no projections) on `[query, value]` or `[query,
    /// value, key]`: `softmax(query·scale · keyᵀ) · value`, `scale` its learned scalar with
    /// `use_scale`, causal as `MultiHeadAttention`.
    pub(super) fn dot_attention(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        inputs: &[(String, Vec<usize>)],
    ) -> Result<String> {
        let name = layer.name();
        let (query, value) = (&inputs[0], &inputs[1]);
        let key = inputs.get(2).unwrap_or(value);
        let mut q = query.0.clone();
        if config["use_scale"].as_bool().unwrap_or(false) {
            let (shape, scale) = weight(self.params, layer, 0)?;
            let scale = self.builder.floats(format!("{name}/scale"), shape, scale);
            q = self.builder.op(name, "Mul", &[&q, &scale], vec![]);
        }
        let keys = self.builder.transpose(name, &key.0, &[0, 2, 1]);
        let mut scores = self.builder.op(name, "MatMul", &[&q, &keys], vec![]);
        let causal = config["use_causal_mask"].as_bool().unwrap_or(false);
        let steps = (query.1[0], key.1[0]);
        // Keras masks the value's padded steps; the query's padded rows are zeroed below.
        let columns: Vec<String> = self.input_mask(1).into_iter().collect();
        match self.attention_allowed(name, None, &columns, causal.then_some(steps)) {
            Some(allowed) => scores = self.replace_masked(name, &scores, &allowed, MASKED),
            None if causal => scores = self.causal(name, &scores, steps.0, steps.1),
            None => {}
        }
        let probabilities = self.builder.op(name, "Softmax", &[&scores], vec![int("axis", -1)]);
        let attended = self.builder.op(name, "MatMul", &[&probabilities, &value.0], vec![]);
        Ok(self.zero_masked_rows(name, attended))
    }

    /// `scores (…, Tq, Tk)` with the pairs above the diagonal pushed to [`MASKED`].
    fn causal(&mut self, name: &str, scores: &str, tq: usize, tk: usize) -> String {
        let masked: Vec<f32> = (0..tq * tk)
            .map(|p| if p % tk > p / tk { MASKED } else { 0.0 })
            .collect();
        let masked = self.builder.floats(format!("{name}/causal_mask"), &[tq, tk], &masked);
        self.builder.op(name, "Add", &[scores, &masked], vec![])
    }

    /// `x · kernel + bias` for projection `index` (query, key, value, output), each kernel
    /// read as the matrix `(in, out)` its row-major values already are.
    fn projection(&mut self, layer: &dyn Layer, index: usize, use_bias: bool, x: &str) -> Result<String> {
        let name = layer.name();
        let per = 1 + use_bias as usize;
        let what = ["query", "key", "value", "attention_output"][index];
        let (shape, values) = weight(self.params, layer, index * per)?;
        let columns = *shape.last().unwrap_or(&1);
        let rows: usize = shape[..shape.len() - 1].iter().product();
        let (rows, columns) = match index {
            3 => (rows, columns),
            _ => (shape[0], values.len() / shape[0].max(1)),
        };
        let kernel = self
            .builder
            .floats(format!("{name}/{what}/kernel"), &[rows, columns], values);
        let product = self.builder.op(name, "MatMul", &[x, &kernel], vec![]);
        if !use_bias {
            return Ok(product);
        }
        let (_, bias) = weight(self.params, layer, index * per + 1)?;
        let bias = self.builder.floats(format!("{name}/{what}/bias"), &[columns], bias);
        Ok(self.builder.op(name, "Add", &[&product, &bias], vec![]))
    }
}

/// The sizes and settings of one scaled dot-product attention.
#[derive(Clone, Copy)]
struct AttentionCore {
    heads: usize,
    /// One head's query and key width, and value width.
    key_dim: usize,
    value_dim: usize,
    /// Query and key steps.
    steps: (i64, i64),
    /// The factor on `q·kᵀ`.
    scale: f32,
    /// Whether the keys after each query step are left out.
    causal: bool,
}
