//! ONNX export: a strata model as an ONNX file (opset 17) for ONNX Runtime and the runtimes
//! that read ONNX. `Model::save_onnx(path)`; the `strata export` command calls it.
//!
//! ONNX import: an ONNX file as a strata functional model, [`load_onnx`]; the `strata import`
//! command calls it for `.onnx` files.
//!
//! The protocol buffer messages are declared by hand with prost (`proto.rs`). Export: the graph
//! is made by `builder.rs`, what can be exported is listed in `exportable.rs`, the layers'
//! operators are written by `layers.rs` and `export_*.rs` (a quantized model's int8 weights as
//! QDQ by `export_quantized.rs`, their output quantization for ONNX Runtime's int8 fusions by
//! `export_qdq.rs`), the walk of the model in `export.rs`. Import: `import.rs`
//! reads and orders the graph, `fusion.rs` rewrites patterns of nodes as one (`fused_activations.rs` GELU, softsign),
//! `tensors.rs` decodes weights, `convert.rs` holds the state and layouts, `ops.rs`,
//! `activations.rs` and `sequence.rs` map operators to layers (`reduce.rs` reductions, `selection.rs` splits, slices
//! and channel shuffles), `heads.rs` reads attention, `recurrent.rs` recurrent operators, `resize.rs` upsampling, `key_mask.rs` an attention mask given as an input (Hugging Face's
//! `attention_mask`), `strided.rs` torch.export's
//! `as_strided` (a tensor flattened with its batch axis and gathered back), `rows.rs` a sequence
//! flattened with its batch into rows for a product (GPT-2's `Conv1D`) and `folding.rs`
//! computes constant operators (`constant_math.rs` the element-wise ones).

mod builder;
mod convert;
mod export;
mod export_conv;
mod export_layers;
mod export_masks;
mod export_qdq;
mod export_quantized;
mod export_recurrent;
mod export_resize;
mod export_sequence;
mod export_simplify;
mod exportable;

mod activations;
mod constant_math;
mod expand;
mod folding;
mod fused_activations;
mod fusion;
mod heads;
mod import;
mod key_mask;
mod layers;
mod ops;
pub mod proto;
mod recurrent;
mod reduce;
mod resize;
mod rows;
mod selection;
mod sequence;
mod strided;
mod tensors;
mod time_major;

pub use export::{BATCH_DIM, OPSET, to_onnx};
pub use export_quantized::QDQ_LAYERS;
pub use exportable::{EXPORTABLE_ACTIVATIONS, EXPORTABLE_LAYERS};
pub use import::{load_onnx, load_onnx_bytes};
pub use ops::IMPORTABLE_OPS;
