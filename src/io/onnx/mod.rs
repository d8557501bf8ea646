//! ONNX export: a strata model as an ONNX file (opset 17) for ONNX Runtime and the runtimes
//! that read ONNX. `Model::save_onnx(path)`; the `strata export` command calls it.
//!
//! The protocol buffer messages are declared by hand with prost (`proto.rs`); the graph is made
//! by `builder.rs`, the layers' operators by `layers.rs`, the walk of the model in `export.rs`.

mod builder;
mod export;
mod export_conv;
mod export_layers;
mod export_recurrent;
mod export_sequence;
mod export_simplify;
mod layers;
pub mod proto;

pub use export::{BATCH_DIM, OPSET, to_onnx};
pub use layers::{EXPORTABLE_ACTIVATIONS, EXPORTABLE_LAYERS};
