//! A built strata model as an ONNX graph (opset 17): one input per model input, channels-last
//! as strata takes it, with a dynamic batch axis `"N"`; one output per model output. Layers map
//! to ONNX operators in `layers.rs`; this file walks the model's graph of calls.

use super::builder::GraphBuilder;
use super::export_masks::{mask_refusal, reads_mask};
use super::export_quantized::unsupported_int8;
use super::exportable::unsupported_reason;
use super::layers::Emitter;
use super::proto::{
    Dimension, DimensionValue, FLOAT, GraphProto, ModelProto, OperatorSetIdProto, TensorShapeProto, TensorTypeProto,
    TypeProto, ValueInfoProto,
};
use crate::error::{Error, Result};
use crate::model::{Model, Source};
use std::path::Path;

/// The operator set the exported graphs use: ONNX 1.12's, which every current runtime reads.
pub const OPSET: i64 = 17;
/// The file format version that goes with [`OPSET`].
const IR_VERSION: i64 = 8;
/// The name of the batch axis in the graph's input and output shapes.
pub const BATCH_DIM: &str = "N";

impl Model {
    /// Writes the model as an ONNX file (opset 17) that ONNX Runtime and other ONNX readers run:
    /// the same inputs (channels-last, any batch size) give the same outputs as
    /// [`Model::predict`]. Written atomically. A model that is not built, or that has layers
    /// ONNX export does not support (listed all at once), is an error.
    ///
    /// A quantized model ([`Model::quantize`]) is written in ONNX's QDQ form: int8 kernels
    /// with per-channel scales through `DequantizeLinear`; a calibrated model in the form
    /// `quantize_static` writes and ONNX Runtime fuses into its int8 kernels (each int8 layer's
    /// input through `QuantizeLinear` → `DequantizeLinear` with its fixed scale, int32 biases,
    /// outputs quantized with the next layer's scale). A
    /// dynamically quantized model's layers are written weights-only (ONNX has no per-row
    /// dynamic quantization), so ONNX Runtime does not round their inputs as `predict` does.
    pub fn save_onnx(&self, path: impl AsRef<Path>) -> Result<()> {
        let proto = to_onnx(self)?;
        crate::fs::write_atomic(path, &prost::Message::encode_to_vec(&proto))
    }
}

/// The model as an ONNX `ModelProto` (see [`Model::save_onnx`]).
pub fn to_onnx(model: &Model) -> Result<ModelProto> {
    if model.input_shapes().is_empty() {
        return Err(Error::Usage(
            "the model is not built: give it an Input (or build, fit or predict it) before exporting to ONNX".into(),
        ));
    }
    let masks = model.call_output_masks()?;
    check_supported(model, &masks)?;
    let graph = build_graph(model, &masks)?;
    Ok(ModelProto {
        ir_version: IR_VERSION,
        producer_name: "strata".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        doc_string: String::new(),
        graph: Some(graph),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: OPSET,
        }],
    })
}

/// Refuses a model with layers export cannot write (or whose int8 weights or masks it cannot),
/// naming every one of them (class and name). `masks`: each call output's mask, as
/// `Model::call_output_masks` gives them.
fn check_supported(model: &Model, masks: &[Option<usize>]) -> Result<()> {
    let mut refused: Vec<String> = model
        .layers()
        .iter()
        .filter_map(|layer| {
            unsupported_reason(layer.as_ref())
                .or_else(|| unsupported_int8(layer.as_ref(), model.params()))
                .map(|why| format!("'{}' ({}{why})", layer.name(), layer.class_name()))
        })
        .collect();
    for call in model.graph_calls() {
        let layer = model.layers()[call.layer].as_ref();
        let output = masks.get(call.first_output).copied().flatten();
        if let Some(why) = mask_refusal(layer, &model.input_masks(call, masks), output) {
            let entry = format!("'{}' ({}{why})", layer.name(), layer.class_name());
            if !refused.contains(&entry) {
                refused.push(entry);
            }
        }
    }
    match refused.is_empty() {
        true => Ok(()),
        false => Err(Error::Usage(format!(
            "model '{}' cannot be exported to ONNX: unsupported layers {}",
            model.name(),
            refused.join(", ")
        ))),
    }
}

/// Walks the calls in order, each after its inputs, naming each call's output tensor (and
/// each mask's, `masks` saying which output carries which).
fn build_graph(model: &Model, masks: &[Option<usize>]) -> Result<GraphProto> {
    let layers = model.layers();
    let calls = model.graph_calls();
    let input_names = input_names(model);
    let mut builder = GraphBuilder::default();
    // Per output of all calls: its tensor's name and per-sample shape.
    let mut tensors: Vec<(String, Vec<usize>)> = Vec::new();
    // Per mask of the recorded pass, its tensor's name once a source layer has written it.
    let mut mask_names: Vec<Option<String>> = Vec::new();
    for call in calls {
        let layer = layers[call.layer].as_ref();
        let inputs: Vec<(String, Vec<usize>)> = call
            .inputs
            .iter()
            .map(|source| match *source {
                Source::ModelInput(i) => (input_names[i].clone(), model.input_shapes()[i].clone()),
                Source::Output(o) => tensors[o].clone(),
            })
            .collect();
        let shapes: Vec<Vec<usize>> = inputs.iter().map(|(_, s)| s.clone()).collect();
        let output_shape = layer
            .output_shapes(&shapes)?
            .into_iter()
            .next()
            .ok_or_else(|| Error::Usage(format!("layer '{}' has no output", layer.name())))?;
        let mask_name = |mask: Option<usize>| mask.and_then(|m| mask_names.get(m).cloned().flatten());
        let input_masks = match reads_mask(layer.class_name()) {
            true => model.input_masks(call, masks).into_iter().map(mask_name).collect(),
            false => Vec::new(),
        };
        let mut emitter = Emitter {
            builder: &mut builder,
            params: model.params(),
            input_masks,
            made_mask: None,
        };
        let output = emitter.layer(layer, &inputs, &output_shape)?;
        let output_mask = masks.get(call.first_output).copied().flatten();
        let new_mask = output_mask.is_some_and(|m| mask_names.get(m).is_none_or(Option::is_none));
        if new_mask && emitter.made_mask.is_none() {
            // A merge joining different masks.
            let rank = inputs.first().map_or(0, |(_, shape)| shape.len() + 1);
            let steps: Vec<usize> = inputs
                .iter()
                .map(|(_, shape)| shape.first().copied().unwrap_or(0))
                .collect();
            emitter.made_mask = emitter.merged_mask(layer.name(), &layer.config(), rank, &steps);
            if emitter.made_mask.is_none() {
                return Err(Error::Usage(format!(
                    "layer '{}' ({}) computes a sequence mask that ONNX export cannot write",
                    layer.name(),
                    layer.class_name()
                )));
            }
        }
        if let (Some(mask), Some(made)) = (output_mask, emitter.made_mask) {
            if mask_names.len() <= mask {
                mask_names.resize(mask + 1, None);
            }
            mask_names[mask] = Some(made);
        }
        tensors.push((output, output_shape));
    }
    let inputs = (0..model.input_count())
        .map(|i| value_info(&input_names[i], &model.input_shapes()[i]))
        .collect();
    let mut outputs = Vec::new();
    for (k, (&output, name)) in model.graph_outputs().iter().zip(model.output_names()).enumerate() {
        let (tensor, shape) = &tensors[output];
        // Two outputs of one layer (a shared layer's two calls) need two names.
        let taken = outputs.iter().any(|o: &ValueInfoProto| o.name == name);
        let name = &if taken { format!("{name}_{k}") } else { name.to_string() };
        // An Identity gives the output the layer's name, whatever made the tensor.
        builder.nodes.push(super::proto::NodeProto {
            input: vec![tensor.clone()],
            output: vec![name.to_string()],
            name: format!("{name}/output"),
            op_type: "Identity".into(),
            attribute: Vec::new(),
            ..Default::default()
        });
        outputs.push(value_info(name, shape));
    }
    let nodes = super::export_simplify::drop_transpose_pairs(builder.nodes, &mut builder.initializers);
    let nodes = super::export_qdq::quantize_outputs(nodes, &mut builder.initializers);
    Ok(GraphProto {
        node: nodes,
        name: model.name().to_string(),
        initializer: builder.initializers,
        input: inputs,
        output: outputs,
    })
}

/// Each model input's name: its `Input` layer's (`input_layer`), or `input_I` without one.
fn input_names(model: &Model) -> Vec<String> {
    (0..model.input_count())
        .map(|i| {
            model
                .graph_calls()
                .iter()
                .find(|c| c.inputs == [Source::ModelInput(i)] && model.layers()[c.layer].is_input())
                .map_or_else(|| format!("input_{i}"), |c| model.layers()[c.layer].name().to_string())
        })
        .collect()
}

/// A float tensor's name and shape: the batch axis `"N"`, then `shape`.
fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let batch = Dimension {
        value: Some(DimensionValue::DimParam(BATCH_DIM.into())),
    };
    let dims = shape.iter().map(|&d| Dimension {
        value: Some(DimensionValue::DimValue(d as i64)),
    });
    ValueInfoProto {
        name: name.to_string(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: FLOAT,
                shape: Some(TensorShapeProto {
                    dim: std::iter::once(batch).chain(dims).collect(),
                }),
            }),
        }),
    }
}
