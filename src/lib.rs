//! # strata
//!
//! A deep-learning framework in Rust with Keras's simplicity: `Sequential`, `compile`, `fit`,
//! `evaluate`, `predict`, `summary`.
//!
//! ```no_run
//! use strata::prelude::*;
//!
//! # fn main() -> strata::Result<()> {
//! let ((x_train, y_train), (x_test, y_test)) = strata::data::mnist::load_data()?;
//! let (x_train, x_test) = (x_train.map(|v| v / 255.0), x_test.map(|v| v / 255.0));
//!
//! let mut model = Sequential::new();
//! model
//!     .add(Input::new(&[28, 28]))
//!     .add(Flatten::new())
//!     .add(Dense::new(128).activation("relu"))
//!     .add(Dense::new(10).activation("softmax"));
//! model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
//! model.fit(&x_train, &y_train, FitOptions::default().epochs(5).batch_size(32))?;
//! let scores = model.evaluate(&x_test, &y_test, 32)?;
//! println!("test accuracy: {:.4}", scores.accuracy.unwrap_or(0.0));
//! # Ok(()) }
//! ```

pub mod activations;
pub mod applications;
pub mod autograd;
pub mod callbacks;
pub mod data;
pub mod datasets;
pub mod distributed;
pub mod error;
pub mod fs;
pub mod initializers;
pub mod io;
pub mod kernels;
pub mod layers;
pub mod limits;
pub mod losses;
pub mod metrics;
pub mod mixed_precision;
pub mod model;
pub mod optimizers;
pub mod plot;
pub mod regularizers;
pub mod rng;
pub mod run;
pub mod tensor;

/// The README's Rust snippets, compiled and run as doctests (`cargo test --doc`), so a snippet
/// that stops compiling fails the tests; every ```rust block is one, whoever adds it.
#[cfg(doctest)]
#[doc = include_str!("../README.md")]
pub struct ReadmeDoctests;

pub use error::{Error, Result};
pub use io::load_model;
pub use tensor::Tensor;

/// Everything a typical program needs, in one import.
pub mod prelude {
    pub use crate::callbacks::{
        CSVLogger, EarlyStopping, LearningRateScheduler, ModelCheckpoint, ReduceLROnPlateau, TerminateOnNaN,
    };
    pub use crate::data::ImageAugmentation;
    pub use crate::layers::Conv2DTranspose;
    pub use crate::layers::{
        Activation, Add, Average, AveragePooling2D, BatchNormalization, Concatenate, Conv1D, Conv2D, Dense, Dropout,
        Flatten, GaussianDropout, GaussianNoise, GlobalAveragePooling2D, GlobalMaxPooling2D, Input, Layer,
        LayerNormalization, MaxPooling1D, MaxPooling2D, Maximum, Minimum, Multiply, Reshape, SpatialDropout2D,
        Subtract,
    };
    pub use crate::layers::{
        AdditiveAttention, AlphaDropout, GlobalAveragePooling1D, MultiHeadAttention, PositionEmbedding,
        SinePositionEncoding,
    };
    pub use crate::layers::{Bidirectional, Embedding, GRU, LSTM, SimpleRNN, TimeDistributed};
    pub use crate::layers::{
        Cropping2D, DepthwiseConv2D, Normalization, ReLU, Rescaling, SeparableConv2D, UpSampling2D, ZeroPadding2D,
    };
    pub use crate::layers::{RandomContrast, RandomCrop, RandomFlip, RandomRotation, RandomTranslation, RandomZoom};
    pub use crate::losses::Loss;
    pub use crate::model::{Callback, Control, FitOptions, History, LayerCall, Model, Node, Sequential, SharedLayer};
    pub use crate::optimizers::{
        Adagrad, Adam, AdamW, CosineDecay, ExponentialDecay, InverseTimeDecay, LearningRate, LearningRateSchedule,
        Optimizer, PiecewiseConstantDecay, RMSprop, Sgd,
    };
    pub use crate::regularizers::{l1, l1_l2, l2};
    pub use crate::{Error, Result, Tensor};
}
