//! Reading and writing models: model description files (JSON/TOML, Keras vocabulary).

pub mod config;
