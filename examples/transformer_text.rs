//! A Transformer text classifier built with the functional API, as Keras's "Text
//! classification with Transformer" example builds it, trained on a synthetic task that
//! attention solves: does the first token of a sequence appear again later in it?
//!
//! ```python
//! inputs = keras.Input(shape=(maxlen,))
//! tokens = layers.Embedding(vocab_size, embed_dim)(inputs)
//! positions = keras_hub.layers.PositionEmbedding(maxlen)(tokens)
//! x = tokens + positions
//! attn = layers.MultiHeadAttention(num_heads=2, key_dim=embed_dim)(x, x)
//! x = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(0.1)(attn))
//! ffn = layers.Dense(embed_dim)(layers.Dense(ff_dim, activation="relu")(x))
//! x = layers.LayerNormalization(epsilon=1e-6)(x + layers.Dropout(0.1)(ffn))
//! x = layers.GlobalAveragePooling1D()(x)
//! outputs = layers.Dense(2, activation="softmax")(layers.Dense(20, activation="relu")(x))
//! ```
//!
//! `cargo run --release --example transformer_text`

use strata::prelude::*;
use strata::rng::Rng;

/// Sequences of `steps` token ids in `1..vocab` and their labels: 1 when the first token
/// appears again, 0 when it does not (half of each).
pub fn first_token_repeats(samples: usize, steps: usize, vocab: usize, seed: u64) -> strata::Result<(Tensor, Tensor)> {
    let mut rng = Rng::new(seed);
    let (mut x, mut y) = (Vec::with_capacity(samples * steps), Vec::with_capacity(samples));
    for i in 0..samples {
        let first = 1 + rng.below(vocab - 1);
        let repeats = i % 2 == 1;
        let mut row = vec![first];
        while row.len() < steps {
            let token = 1 + rng.below(vocab - 1);
            if token != first {
                row.push(token);
            }
        }
        if repeats {
            let at = 1 + rng.below(steps - 1);
            row[at] = first;
        }
        x.extend(row.iter().map(|&t| t as f32));
        y.push(repeats as u8 as f32);
    }
    Ok((
        Tensor::from_vec(vec![samples, steps], x)?,
        Tensor::from_vec(vec![samples], y)?,
    ))
}

/// The classifier: token + position embeddings, one encoder block, pooling, a small head.
pub fn transformer_classifier(steps: usize, vocab: usize, width: usize) -> strata::Result<Model> {
    let inputs = Input::node(&[steps]);
    let tokens = Embedding::new(vocab, width).call(&inputs)?;
    let positions = PositionEmbedding::new(steps).call(&tokens)?;
    let x = Add::new().call_many(&[&tokens, &positions])?;
    let attended = MultiHeadAttention::new(2, width).call_many(&[&x, &x])?;
    let attended = Dropout::new(0.1).call(&attended)?;
    let x = Add::new().call_many(&[&x, &attended])?;
    let x = LayerNormalization::new().epsilon(1e-6).call(&x)?;
    let ffn = Dense::new(width).activation("relu").call(&x)?;
    let ffn = Dense::new(width).call(&ffn)?;
    let ffn = Dropout::new(0.1).call(&ffn)?;
    let x = Add::new().call_many(&[&x, &ffn])?;
    let x = LayerNormalization::new().epsilon(1e-6).call(&x)?;
    let x = GlobalAveragePooling1D::new().call(&x)?;
    let x = Dense::new(20).activation("relu").call(&x)?;
    let outputs = Dense::new(2).activation("softmax").call(&x)?;
    Model::functional(&inputs, &outputs)
}

#[allow(dead_code)]
fn main() -> strata::Result<()> {
    let (steps, vocab) = (8, 4);
    let (x_train, y_train) = first_token_repeats(3000, steps, vocab, 1)?;
    let (x_test, y_test) = first_token_repeats(1000, steps, vocab, 2)?;
    let mut model = transformer_classifier(steps, vocab, 16)?;
    model.compile(Adam::new(0.003), "sparse_categorical_crossentropy", &["accuracy"])?;
    println!("{}", model.summary()?);
    model.fit(&x_train, &y_train, FitOptions::default().epochs(20).batch_size(32))?;
    let scores = model.evaluate(&x_test, &y_test, 32)?;
    println!("test accuracy: {:.4} (chance: 0.5)", scores.accuracy.unwrap_or(0.0));
    Ok(())
}
