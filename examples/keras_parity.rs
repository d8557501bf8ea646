//! Writes Keras files and strata's predictions for `tools/check_keras_save.py`, which loads the
//! files with Keras's own `keras.models.load_model` and compares:
//! `cargo run --release --example keras_parity -- DIR`.
//!
//! For each model of `tests/common/keras_models.rs` (an MLP, the MNIST CNN, BatchNormalization,
//! an Embedding + LSTM + GRU text model, a functional model with Add and Concatenate, a model
//! holding nested models), with random weights: `DIR/NAME.keras` (`model.save("NAME.keras")`),
//! `DIR/NAME.h5` (the legacy format) and `DIR/NAME.json` holding the input's shape and values,
//! strata's output and the names of the nested models Keras must find in the `.keras` file.

#[path = "../tests/common/keras_models.rs"]
mod keras_models;

use strata::Result;

fn main() -> Result<()> {
    let folder = std::env::args().nth(1).unwrap_or_else(|| "keras-parity".into());
    std::fs::create_dir_all(&folder).map_err(|e| strata::Error::file(&folder, e.to_string()))?;
    for mut case in keras_models::cases()? {
        let name = case.name;
        let y = case.model.predict(&case.input, 32)?;
        case.model.save(format!("{folder}/{name}.keras"))?;
        case.model.save(format!("{folder}/{name}.h5"))?;
        let nested: Vec<&str> = case.model.nested_models().iter().map(|n| n.name()).collect();
        let record = serde_json::json!({
            "input_shape": case.input.shape(), "input": case.input.data(),
            "output_shape": y.shape(), "output": y.data(), "nested": nested,
        });
        strata::io::write_atomic(format!("{folder}/{name}.json"), record.to_string().as_bytes())?;
        println!("{name}: {folder}/{name}.keras, {folder}/{name}.h5");
    }
    Ok(())
}
