//! Two hidden layers, one-hot labels, validation on the test set. The Keras original:
//!
//! ```python
//! y_train, y_test = keras.utils.to_categorical(y_train), keras.utils.to_categorical(y_test)
//! model = keras.Sequential([
//!     keras.layers.Flatten(input_shape=(28, 28)),
//!     keras.layers.Dense(128, activation="relu"),
//!     keras.layers.Dense(64, activation="relu"),
//!     keras.layers.Dense(10, activation="softmax"),
//! ])
//! model.compile(optimizer="adam", loss="categorical_crossentropy", metrics=["accuracy"])
//! model.fit(x_train, y_train, epochs=10, batch_size=32, validation_data=(x_test, y_test))
//! ```
//!
//! Run with `cargo run --release --example mlp2 [EPOCHS]`.

use strata::data::{mnist, scale, to_categorical};
use strata::prelude::*;

fn main() -> strata::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let (x_train, x_test) = (scale(&x_train, 1.0 / 255.0), scale(&x_test, 1.0 / 255.0));
    let (y_train, y_test) = (to_categorical(&y_train, 10)?, to_categorical(&y_test, 10)?);

    let mut model = Sequential::new();
    model
        .add(Flatten::new().input_shape(&[28, 28]))
        .add(Dense::new(128).activation("relu"))
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model.compile("adam", "categorical_crossentropy", &["accuracy"])?;
    println!("{}", model.summary()?);

    let epochs = std::env::args().nth(1).and_then(|e| e.parse().ok()).unwrap_or(10);
    let options = FitOptions::default()
        .epochs(epochs)
        .batch_size(32)
        .validation_data(&x_test, &y_test);
    let history = model.fit(&x_train, &y_train, options)?;
    println!("val_accuracy per epoch: {:?}", history.get("val_accuracy"));
    Ok(())
}
