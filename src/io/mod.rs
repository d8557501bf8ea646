//! Reading and writing models: model description files (JSON/TOML, Keras vocabulary),
//! safetensors model files, and atomic writes.

mod atomic;
pub mod config;
pub mod weights;

pub use atomic::write_atomic;
pub use weights::load_model;
