//! The classic Keras MNIST MLP in strata. The Keras original:
//!
//! ```python
//! (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
//! x_train, x_test = x_train / 255.0, x_test / 255.0
//! model = keras.Sequential([
//!     keras.Input(shape=(28, 28)),
//!     keras.layers.Flatten(),
//!     keras.layers.Dense(128, activation="relu"),
//!     keras.layers.Dense(10, activation="softmax"),
//! ])
//! model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
//! model.fit(x_train, y_train, epochs=10, batch_size=32)
//! model.evaluate(x_test, y_test)
//! ```
//!
//! Run with `cargo run --release --example mlp`.

use strata::data::{mnist, scale};
use strata::prelude::*;

fn main() -> strata::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let (x_train, x_test) = (scale(&x_train, 1.0 / 255.0), scale(&x_test, 1.0 / 255.0));

    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28]))
        .add(Flatten::new())
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
    println!("{}", model.summary()?);

    let epochs = std::env::args().nth(1).and_then(|e| e.parse().ok()).unwrap_or(10);
    model.fit(&x_train, &y_train, FitOptions::default().epochs(epochs).batch_size(32))?;
    let scores = model.evaluate(&x_test, &y_test, 32)?;
    println!(
        "test loss: {:.4} - test accuracy: {:.4}",
        scores.loss,
        scores.accuracy.unwrap_or(0.0)
    );
    Ok(())
}
