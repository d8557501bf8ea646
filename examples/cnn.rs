//! The classic Keras MNIST CNN. The Keras original:
//!
//! ```python
//! x_train = x_train.reshape(-1, 28, 28, 1) / 255.0
//! y_train = keras.utils.to_categorical(y_train)
//! model = keras.Sequential([
//!     keras.Input(shape=(28, 28, 1)),
//!     layers.Conv2D(32, (3, 3), activation="relu"),
//!     layers.MaxPooling2D((2, 2)),
//!     layers.Conv2D(64, (3, 3), activation="relu"),
//!     layers.MaxPooling2D((2, 2)),
//!     layers.Conv2D(64, (3, 3), activation="relu"),
//!     layers.Flatten(),
//!     layers.Dense(64, activation="relu"),
//!     layers.Dense(10, activation="softmax"),
//! ])
//! model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001),
//!               loss="categorical_crossentropy", metrics=["accuracy"])
//! model.fit(x_train, y_train, epochs=5, batch_size=64)
//! ```
//!
//! Run with `cargo run --release --example cnn [EPOCHS]`.

use strata::data::{mnist, scale_in_place, to_categorical};
use strata::layers::{Conv2D, MaxPooling2D};
use strata::prelude::*;

fn main() -> strata::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let prepare = |x: Tensor| -> strata::Result<Tensor> {
        let rows = x.rows();
        let mut x = x.reshape(&[rows, 28, 28, 1])?;
        scale_in_place(&mut x, 1.0 / 255.0);
        Ok(x)
    };
    let (x_train, x_test) = (prepare(x_train)?, prepare(x_test)?);
    let (y_train, y_test) = (to_categorical(&y_train, 10)?, to_categorical(&y_test, 10)?);

    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(32, (3, 3)).activation("relu"))
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation("relu"))
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(64).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model.compile(RMSprop::new(0.001), "categorical_crossentropy", &["accuracy"])?;
    println!("{}", model.summary()?);

    let epochs = std::env::args().nth(1).and_then(|e| e.parse().ok()).unwrap_or(5);
    model.fit(&x_train, &y_train, FitOptions::default().epochs(epochs).batch_size(64))?;
    let scores = model.evaluate(&x_test, &y_test, 64)?;
    println!(
        "test loss: {:.4} - test accuracy: {:.4}",
        scores.loss,
        scores.accuracy.unwrap_or(0.0)
    );
    Ok(())
}
