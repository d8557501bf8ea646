//! Reading and writing models: model description files (JSON/TOML, Keras vocabulary),
//! safetensors model files, Keras `.keras` archives and legacy `.h5` files (both ways), and
//! atomic writes.

pub mod config;
mod graph_config;
mod hdf5;
pub mod keras;
mod keras_calls;
mod keras_h5;
mod keras_h5_weights;
mod keras_layer;
mod keras_nested;
mod keras_ops;
mod keras_ops_layers;
mod keras_references;
mod keras_save;
mod keras_save_nested;
mod keras_tf_ops;
mod keras_weights;
mod keras_weights_file;
mod legacy_state;
pub mod onnx;
pub mod picture;
mod transform;
pub mod weights;

pub use crate::fs::write_atomic;
pub use keras::{import_keras, import_keras_from, keras_model_from_config};
pub use keras_h5::{import_keras_file, import_keras_h5, import_keras_h5_bytes};
pub use onnx::{load_onnx, load_onnx_bytes};
pub use transform::{regularized, with_preprocessing};
pub use weights::load_model;
