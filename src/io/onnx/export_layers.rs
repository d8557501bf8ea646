//! The layers ONNX export gained after its first release (convolutions beyond `Conv2D`,
//! sequences, recurrent layers, attention, preprocessing): the dispatch to the files that
//! write them (`export_conv.rs`, `export_sequence.rs`, `export_recurrent.rs`; `SimpleRNN`,
//! `LSTM` and `GRU` are sent to the last by `layers.rs`, which must not apply their activation
//! after them). Which layers and settings can be written at all is `exportable.rs`'s list.

use super::builder::GraphBuilder;
use super::exportable::wrapped;
use super::layers::Emitter;
use super::proto::{AttributeProto, AttributeType};
use crate::error::{Error, Result};
use crate::layers::Layer;
use serde_json::Value;

impl Emitter<'_> {
    /// The operators of the layers listed in this file's header; the output's name.
    pub(super) fn more_layers(
        &mut self,
        layer: &dyn Layer,
        config: &Value,
        inputs: &[(String, Vec<usize>)],
        output_shape: &[usize],
    ) -> Result<String> {
        let name = layer.name();
        let (x, shape) = (inputs[0].0.as_str(), inputs[0].1.as_slice());
        match layer.class_name() {
            "Conv1D" => self.conv1d(layer, config, x, shape),
            "DepthwiseConv2D" | "SeparableConv2D" => self.depthwise(layer, config, x, shape),
            "Conv2DTranspose" => self.conv_transpose(layer, config, x, shape, output_shape),
            "MaxPooling1D" => self.pool1d(name, "MaxPool", config, x, shape),
            "AveragePooling1D" => self.pool1d(name, "AveragePool", config, x, shape),
            "GlobalMaxPooling1D" => Ok(self.builder.op(
                name,
                "ReduceMax",
                &[x],
                vec![
                    super::builder::ints("axes", &[1]),
                    super::builder::int("keepdims", config["keepdims"].as_bool().unwrap_or(false) as i64),
                ],
            )),
            // The slopes broadcast against the batch from the right, as ONNX's PRelu allows.
            "PReLU" => {
                let (alpha_shape, alpha) = super::layers::weight(self.params, layer, 0)?;
                let slopes = self.builder.floats(format!("{name}/alpha"), alpha_shape, alpha);
                Ok(self.builder.op(name, "PRelu", &[x, &slopes], vec![]))
            }
            // (N, T, C) to (N, T, 1, C), broadcast to (N, T, size, C), then (N, T·size, C).
            "UpSampling1D" => {
                let (steps, features) = (shape[0] as i64, shape[1] as i64);
                let size = config["size"].as_i64().unwrap_or(2);
                let column = self.reshape(name, "column", x, &[-1, steps, 1, features]);
                let target = self
                    .builder
                    .int64s(format!("{name}/repeated_shape"), &[1, steps, size, features]);
                let repeated = self.builder.op(name, "Expand", &[&column, &target], vec![]);
                Ok(self.reshape(name, "sequence", &repeated, &[-1, steps * size, features]))
            }
            "Permute" => {
                let dims = config["dims"].as_array().map(Vec::as_slice).unwrap_or_default();
                let perm: Vec<i64> = std::iter::once(0)
                    .chain(dims.iter().filter_map(Value::as_i64))
                    .collect();
                Ok(self.builder.transpose(name, x, &perm))
            }
            // (N, F) to (N, 1, F), broadcast to (N, n, F).
            "RepeatVector" => {
                let column = self.reshape(name, "column", x, &[-1, 1, shape[0] as i64]);
                let n = config["n"].as_i64().unwrap_or(1);
                let target = self.builder.int64s(format!("{name}/repeats"), &[1, n, 1]);
                Ok(self.builder.op(name, "Expand", &[&column, &target], vec![]))
            }
            "Cropping2D" => {
                let side = |i: usize, j: usize| config["cropping"][i][j].as_i64().unwrap_or(0);
                let ends = [shape[0] as i64 - side(0, 1), shape[1] as i64 - side(1, 1)];
                Ok(self.slice(name, x, &[side(0, 0), side(1, 0)], &ends, &[1, 2]))
            }
            "Cropping1D" => {
                let side = |i: usize| config["cropping"][i].as_i64().unwrap_or(0);
                Ok(self.slice(name, x, &[side(0)], &[shape[0] as i64 - side(1)], &[1]))
            }
            "UpSampling2D" => self.upsample(name, config, x, shape),
            "GlobalAveragePooling1D" => Ok(match self.input_mask(0) {
                Some(mask) => self.masked_mean(name, x, &mask),
                None => self.builder.op(
                    name,
                    "ReduceMean",
                    &[x],
                    vec![super::builder::ints("axes", &[1]), super::builder::int("keepdims", 0)],
                ),
            }),
            "LayerNormalization" => self.layer_norm(layer, config, x, shape),
            "RMSNormalization" => self.rms_norm(layer, config, x, shape),
            "AdditiveAttention" => self.additive_attention(layer, config, inputs),
            "RandomCrop" => self.center_crop(layer, config, x, shape),
            "CenterCrop" => self.center_crop_layer(layer, config, x, shape),
            "Resizing" => self.resizing(layer, config, x, shape),
            "Embedding" => self.embedding(layer, x),
            "PositionEmbedding" | "SinePositionEncoding" => self.positions(layer, config, x, shape),
            "ClassToken" => self.class_token(layer, x),
            "PositionIds" => self.position_ids(layer, config, x),
            "MultiHeadAttention" => self.attention(layer, config, inputs),
            "DotProductAttention" => self.dot_product_attention(layer, config, inputs),
            "Attention" => self.dot_attention(layer, config, inputs),
            "Normalization" => self.normalization(layer, config, x),
            "Bidirectional" => self.bidirectional(layer, config, x, shape),
            "Masking" => Ok(self.masking(name, config, x)),
            "TimeDistributed" => self.time_distributed(layer, x, shape, output_shape),
            // Random augmentations are the identity at inference.
            "RandomFlip" | "RandomRotation" | "RandomTranslation" | "RandomZoom" | "RandomContrast" => {
                Ok(x.to_string())
            }
            other => Err(Error::Usage(format!(
                "layer '{name}' ({other}) cannot be exported to ONNX"
            ))),
        }
    }

    /// TimeDistributed: the steps folded into the batch, `(N·T, ...)`, the wrapped layer's
    /// operators on that, and the steps unfolded, `(N, T, ...)`.
    fn time_distributed(
        &mut self,
        layer: &dyn Layer,
        x: &str,
        shape: &[usize],
        output_shape: &[usize],
    ) -> Result<String> {
        let name = layer.name();
        let inner = wrapped(layer)?;
        let as_i64 = |dims: &[usize]| dims.iter().map(|&d| d as i64).collect::<Vec<i64>>();
        let folded: Vec<i64> = std::iter::once(-1).chain(as_i64(&shape[1..])).collect();
        let folded = self.reshape(name, "folded", x, &folded);
        let steps = [(folded, shape[1..].to_vec())];
        let y = self.layer(&inner, &steps, &output_shape[1..])?;
        let unfolded: Vec<i64> = [-1, shape[0] as i64]
            .into_iter()
            .chain(as_i64(&output_shape[1..]))
            .collect();
        Ok(self.reshape(name, "unfolded", &y, &unfolded))
    }

    /// `Slice` of `x` from `starts` to `ends` along `axes`.
    pub(super) fn slice(&mut self, name: &str, x: &str, starts: &[i64], ends: &[i64], axes: &[i64]) -> String {
        let starts = self.builder.int64s(format!("{name}/starts"), starts);
        let ends = self.builder.int64s(format!("{name}/ends"), ends);
        let axes = self.builder.int64s(format!("{name}/axes"), axes);
        self.builder.op(name, "Slice", &[x, &starts, &ends, &axes], vec![])
    }

    /// `Reshape` of `x` to `shape` (`-1` or `0` for the batch axis).
    pub(super) fn reshape(&mut self, name: &str, what: &str, x: &str, shape: &[i64]) -> String {
        let shape = self.builder.int64s(format!("{name}/{what}_shape"), shape);
        self.builder.op(name, "Reshape", &[x, &shape], vec![])
    }
}

/// A float initializer from Keras's `(rows, columns)` matrix transposed to `(columns, rows)`,
/// its column blocks of `block` columns reordered by `order` (ONNX's gate order).
pub(super) fn transposed_blocks(values: &[f32], rows: usize, block: usize, order: &[usize]) -> Vec<f32> {
    let columns = block * order.len();
    let mut out = vec![0.0; values.len()];
    for (to, &from) in order.iter().enumerate() {
        for j in 0..block {
            for r in 0..rows {
                out[(to * block + j) * rows + r] = values[r * columns + from * block + j];
            }
        }
    }
    out
}

/// The leading and trailing padding of Keras's (TensorFlow's) `"same"` along one axis of
/// `size`: the odd one goes at the end. `(0, 0)` for `"valid"`.
pub(super) fn same_pads(padding: &str, size: usize, kernel: usize, stride: usize, dilation: usize) -> (i64, i64) {
    if padding != "same" {
        return (0, 0);
    }
    let (size, kernel, stride, dilation) = (size as i64, kernel as i64, stride.max(1) as i64, dilation as i64);
    let span = (kernel - 1) * dilation + 1;
    let out = (size + stride - 1) / stride;
    let total = ((out - 1) * stride + span - size).max(0);
    (total / 2, total - total / 2)
}

/// The first number of a one-axis setting (`[3]` or `3`), or `default`.
pub(super) fn first(config: &Value, key: &str, default: usize) -> usize {
    let value = match &config[key] {
        Value::Array(items) => items.first().and_then(Value::as_u64),
        other => other.as_u64(),
    };
    value.map_or(default, |v| v as usize)
}

/// A list-of-strings attribute.
pub(super) fn strings(name: &str, values: &[&str]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        strings: values.iter().map(|s| s.as_bytes().to_vec()).collect(),
        r#type: AttributeType::Strings as i32,
        ..Default::default()
    }
}

/// A list-of-floats attribute.
pub(super) fn floats(name: &str, values: &[f32]) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        floats: values.to_vec(),
        r#type: AttributeType::Floats as i32,
        ..Default::default()
    }
}

/// A string attribute.
pub(super) fn text(name: &str, value: &str) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        s: Some(value.as_bytes().to_vec()),
        r#type: AttributeType::String as i32,
        ..Default::default()
    }
}

/// Adds a second (and third) output to the node `builder` made last: ONNX's recurrent
/// operators yield the sequence and the final state. Returns the new output's name.
pub(super) fn add_output(builder: &mut GraphBuilder, suffix: &str) -> String {
    let node = builder.nodes.last_mut().expect("a node was just added");
    let name = format!("{}{suffix}", node.output[0]);
    node.output.push(name.clone());
    name
}
