//! A residual MLP on MNIST with the functional API: 8 blocks `x → x + relu(Dense(x))`.
//! The same model as `strata train --model resmlp` (models/resmlp.toml). Keras:
//!
//! ```python
//! inputs = keras.Input(shape=(28, 28))
//! x = keras.layers.Dense(128, activation="relu")(keras.layers.Flatten()(inputs))
//! for _ in range(8):
//!     x = keras.layers.Add()([x, keras.layers.Dense(128, activation="relu")(x)])
//! outputs = keras.layers.Dense(10, activation="softmax")(x)
//! model = keras.Model(inputs, outputs)
//! ```
//!
//! Run with `cargo run --release --example resmlp`.

use strata::data::{mnist, scale};
use strata::prelude::*;

fn main() -> strata::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let (x_train, x_test) = (scale(&x_train, 1.0 / 255.0), scale(&x_test, 1.0 / 255.0));

    let inputs = Input::node(&[28, 28]);
    let flat = Flatten::new().call(&inputs)?;
    let mut x = Dense::new(128).activation("relu").call(&flat)?;
    for _ in 0..8 {
        let branch = Dense::new(128).activation("relu").call(&x)?;
        x = Add::new().call_many(&[&x, &branch])?;
    }
    let outputs = Dense::new(10).activation("softmax").call(&x)?;
    let mut model = Model::functional(&inputs, &outputs)?;
    model.set_name("resmlp");
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    println!("{}", model.summary()?);

    let epochs = std::env::args().nth(1).and_then(|e| e.parse().ok()).unwrap_or(3);
    model.fit(&x_train, &y_train, FitOptions::default().epochs(epochs).batch_size(32))?;
    let scores = model.evaluate(&x_test, &y_test, 32)?;
    println!("test accuracy: {:.4}", scores.accuracy.unwrap_or(0.0));
    Ok(())
}
