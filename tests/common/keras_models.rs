//! The models saved in Keras's formats by `tests/keras_save.rs` (round trips through strata) and
//! `examples/keras_parity.rs` (loaded by Keras itself in `tools/check_keras_save.py`): the
//! layer kinds of the classic Keras programs, compiled as those programs compile them, with
//! random weights (BatchNormalization's statistics too) so that a weight put in the wrong
//! place changes the outputs.
#![allow(dead_code)]

use strata::Result;
use strata::prelude::*;
use strata::rng::Rng;

/// One model and a batch of inputs for it.
pub struct Case {
    /// Names its files (`NAME.keras`, `NAME.h5`, `NAME.json`).
    pub name: &'static str,
    pub model: Model,
    pub input: Tensor,
}

/// Every case: an MLP, the MNIST CNN, a model with Batch- and GroupNormalization, an Embedding + LSTM +
/// GRU text model, a functional model with Add, Concatenate and a shared layer, a model
/// holding nested models (a frozen functional base with a Sequential block inside), and a deep
/// stack whose configuration is larger than an HDF5 object header holds, causal
/// self-attention, and the wrappers (Bidirectional, TimeDistributed).
pub fn cases() -> Result<Vec<Case>> {
    let mut cases = vec![
        case("mlp", mlp()?, &[20], None)?,
        case("mnist_cnn", mnist_cnn()?, &[28, 28, 1], None)?,
        case("batchnorm", batchnorm()?, &[12], None)?,
        case("text", text()?, &[15], Some(50))?,
        case("functional", functional()?, &[10], None)?,
        case("nested", nested()?, &[8, 8, 3], None)?,
        case("deep", deep()?, &[6], None)?,
        case("attention", attention()?, &[6, 4], None)?,
        case("wrappers", wrappers()?, &[7], Some(30))?,
    ];
    for (seed, case) in cases.iter_mut().enumerate() {
        randomize(&mut case.model, seed as u64 + 1);
    }
    Ok(cases)
}

/// A case with 4 random samples of `shape` (token ids below `vocabulary` when given).
fn case(name: &'static str, mut model: Model, shape: &[usize], vocabulary: Option<usize>) -> Result<Case> {
    if model.input_shape().is_none() {
        model.build(shape)?;
    }
    let mut rng = Rng::new(7);
    let mut batch = vec![4];
    batch.extend(shape);
    let count: usize = batch.iter().product();
    let values = (0..count)
        .map(|_| match vocabulary {
            Some(size) => (rng.uniform(0.0, 1.0) * size as f32).floor().min(size as f32 - 1.0),
            None => rng.uniform(-1.0, 1.0),
        })
        .collect();
    let input = Tensor::from_vec(batch, values)?;
    Ok(Case { name, model, input })
}

/// 240 small Dense layers: a `model_config` of about 80 KB, over the 64 KB an HDF5 object
/// header message holds, which the legacy `.h5` keeps as a variable-length string (in HDF5's
/// global heap), as h5py does for a large model.
fn deep() -> Result<Model> {
    let mut model = Sequential::new();
    model.add(Input::new(&[6]));
    for _ in 0..240 {
        model.add(Dense::new(6).activation("tanh"));
    }
    model.add(Dense::new(3).activation("softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(model)
}

/// Keras's first MLP: sparse labels, Adam.
fn mlp() -> Result<Model> {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[20]))
        .add(Dense::new(16).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(model)
}

/// Keras's "simple MNIST convnet", narrower: Conv2D, MaxPooling2D, Flatten, Dropout, Dense;
/// one-hot labels, RMSprop.
fn mnist_cnn() -> Result<Model> {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(8, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Conv2D::new(16, 3).activation("relu"))
        .add(MaxPooling2D::new(2))
        .add(Flatten::new())
        .add(Dropout::new(0.5))
        .add(Dense::new(10).activation("softmax"));
    model.compile(RMSprop::new(0.001), "categorical_crossentropy", &["accuracy"])?;
    Ok(model)
}

/// Dense, BatchNormalization, GroupNormalization, ReLU: SGD with momentum, mean squared error.
fn batchnorm() -> Result<Model> {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[12]))
        .add(Dense::new(16).use_bias(false))
        .add(BatchNormalization::new())
        .add(strata::layers::GroupNormalization::new(4))
        .add(Activation::new("relu"))
        .add(Dense::new(3));
    model.compile(Sgd::new(0.01).momentum(0.9), "mse", &[])?;
    Ok(model)
}

/// Token ids through an Embedding, an LSTM returning sequences and a GRU: a sentiment model.
fn text() -> Result<Model> {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[15]))
        .add(Embedding::new(50, 8))
        .add(LSTM::new(6).return_sequences(true))
        .add(GRU::new(5))
        .add(Dense::new(1).activation("sigmoid"));
    model.compile("adam", "binary_crossentropy", &["accuracy"])?;
    Ok(model)
}

/// A bidirectional LSTM returning sequences, a Dense on every step, a bidirectional GRU with
/// its directions summed: Keras keeps each wrapped layer's weights in a group of its own.
fn wrappers() -> Result<Model> {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[7]))
        .add(Embedding::new(30, 4))
        .add(Bidirectional::new(LSTM::new(3).return_sequences(true)))
        .add(TimeDistributed::new(Dense::new(5).activation("relu")))
        .add(Bidirectional::new(GRU::new(2)).merge_mode(strata::layers::MergeMode::Sum))
        .add(Dense::new(1).activation("sigmoid"));
    model.compile("rmsprop", "binary_crossentropy", &["accuracy"])?;
    Ok(model)
}

/// Two branches added and concatenated, a layer shared between them (two calls, so Keras's
/// node indices matter), logits with a loss object.
fn functional() -> Result<Model> {
    let inputs = Input::node(&[10]);
    let a = Dense::new(8).activation("tanh").call(&inputs)?;
    let b = Dense::new(8).activation("relu").call(&inputs)?;
    let shared = SharedLayer::new(Dense::new(8).activation("sigmoid").name("shared"));
    let (c, d) = (shared.call(&a)?, shared.call(&b)?);
    let sum = Add::new().call_many(&[&c, &d])?;
    let joined = Concatenate::new(-1).call_many(&[&sum, &a])?;
    let outputs = Dense::new(4).call(&joined)?;
    let mut model = Model::functional(&inputs, &outputs)?;
    model.compile(
        Adam::new(0.01),
        Loss::SparseCategoricalCrossentropy { from_logits: true },
        &["accuracy"],
    )?;
    Ok(model)
}

/// Causal self-attention, as a Keras text model calls it: `MultiHeadAttention(2, 3)(x, x,
/// use_causal_mask=True)`, then `Attention()([h, x], use_causal_mask=True)`; Keras takes these
/// settings as call arguments, not constructor ones.
fn attention() -> Result<Model> {
    let inputs = Input::node(&[6, 4]);
    let attended = MultiHeadAttention::new(2, 3)
        .use_causal_mask(true)
        .call_many(&[&inputs, &inputs])?;
    let scored = strata::layers::Attention::new()
        .use_causal_mask(true)
        .call_many(&[&attended, &inputs])?;
    let pooled = GlobalAveragePooling1D::new().call(&scored)?;
    let outputs = Dense::new(3).activation("softmax").call(&pooled)?;
    let mut model = Model::functional(&inputs, &outputs)?;
    model.compile(Adam::new(0.001), "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(model)
}

/// The names of the nested models of [`nested`]: the base, and the block inside it.
pub const NESTED_BASE: &str = "base";
pub const NESTED_BLOCK: &str = "block";

/// Keras's transfer-learning shape: a base model used as a layer (a functional model, frozen,
/// holding a Sequential block of its own), under GlobalAveragePooling2D and a Dense head. The
/// nesting is recorded as the importer records a Keras file's.
fn nested() -> Result<Model> {
    let inputs = Input::node(&[8, 8, 3]);
    let x = Conv2D::new(4, 3).padding("same").name("stem_conv").call(&inputs)?;
    let x = BatchNormalization::new().name("stem_bn").call(&x)?;
    let stem = Activation::new("relu").name("stem_relu").call(&x)?;
    let x = Conv2D::new(4, 3).padding("same").name("block_conv").call(&stem)?;
    let x = Activation::new("relu").name("block_relu").call(&x)?;
    let x = Add::new().name("base_add").call_many(&[&x, &stem])?;
    let x = GlobalAveragePooling2D::new().name("pool").call(&x)?;
    let outputs = Dense::new(3).activation("softmax").name("head").call(&x)?;
    let mut model = Model::functional(&inputs, &outputs)?;
    let names = |list: &[&str]| list.iter().map(|n| n.to_string()).collect();
    model.set_nested_models(vec![
        strata::model::NestedModel::new(
            NESTED_BASE,
            "Functional",
            names(&[
                "stem_conv",
                "stem_bn",
                "stem_relu",
                "block_conv",
                "block_relu",
                "base_add",
            ]),
        ),
        strata::model::NestedModel::new(NESTED_BLOCK, "Sequential", names(&["block_conv", "block_relu"])),
    ]);
    model.set_nested_trainable(NESTED_BASE, false)?;
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    Ok(model)
}

/// Sets every weight to random values in [-0.5, 0.5); variances in [0.5, 1.5).
pub fn randomize(model: &mut Model, seed: u64) {
    let mut rng = Rng::new(seed);
    let ids: Vec<_> = model.params().ids().collect();
    for id in ids {
        let variance = model.params().name(id).ends_with("variance");
        for v in model.params_mut().value_mut(id).data_mut() {
            *v = match variance {
                true => rng.uniform(0.5, 1.5),
                false => rng.uniform(-0.5, 0.5),
            };
        }
    }
}
