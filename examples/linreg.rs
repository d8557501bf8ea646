//! One neuron learns y = x. The Keras original:
//!
//! ```python
//! X = np.array([[1.0], [2.0], [3.0], [4.0]]); y = X
//! model = keras.Sequential([keras.Input(shape=(1,)), keras.layers.Dense(1)])
//! model.compile(optimizer="sgd", loss="mse")
//! model.fit(X, y, epochs=1000, verbose=0)
//! print(model.predict(X))
//! ```
//!
//! Run with `cargo run --release --example linreg`.

use strata::prelude::*;

fn main() -> strata::Result<()> {
    let x = Tensor::from_vec(vec![4, 1], vec![1.0, 2.0, 3.0, 4.0])?;
    let y = x.clone();

    let mut model = Sequential::new();
    model.add(Input::new(&[1])).add(Dense::new(1));
    model.compile("sgd", "mse", &[])?;
    model.fit(&x, &y, FitOptions::default().epochs(1000).batch_size(4).verbose(0))?;

    let predictions = model.predict(&x, 4)?;
    for (input, prediction) in x.data().iter().zip(predictions.data()) {
        println!("x = {input}: predicted {prediction:.4}");
    }
    Ok(())
}
