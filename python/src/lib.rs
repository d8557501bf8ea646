//! The extension module `strata._strata` of the Python package `strata`: the engine behind
//! `strata.keras` (see `python/strata/keras/`), the data sets, and the layer classes strata
//! has. Everything Keras-shaped (argument names, defaults, `History`) is in the Python code;
//! this module only moves arrays and runs strata with the GIL released.

mod arrays;
mod callbacks;
mod engine;
mod errors;

use arrays::array_from;
use errors::{guarded, to_python};
use numpy::PyArrayDyn;
use pyo3::prelude::*;

/// `((x_train, y_train), (x_test, y_test))` as arrays.
type ArraySplit<'py> = (
    (Bound<'py, PyArrayDyn<f32>>, Bound<'py, PyArrayDyn<f32>>),
    (Bound<'py, PyArrayDyn<f32>>, Bound<'py, PyArrayDyn<f32>>),
);

/// A Keras data set by name (`mnist`, `fashion_mnist`, `cifar10`, `cifar100`,
/// `boston_housing`) as float32 arrays; the Python side gives them Keras's dtypes.
#[pyfunction]
#[pyo3(signature = (name, label_mode="fine", test_split=0.2, seed=113))]
fn load_dataset<'py>(
    py: Python<'py>,
    name: &str,
    label_mode: &str,
    test_split: f64,
    seed: u32,
) -> PyResult<ArraySplit<'py>> {
    use strata::datasets;
    let split = py.allow_threads(|| {
        guarded("load_data", || {
            match name {
                "mnist" => datasets::mnist::load_data(),
                "fashion_mnist" => datasets::fashion_mnist::load_data(),
                "cifar10" => datasets::cifar10::load_data(),
                "cifar100" => datasets::cifar100::load_data(label_mode),
                "boston_housing" => datasets::boston_housing::load_data(test_split, seed),
                other => {
                    return Err(pyo3::exceptions::PyNotImplementedError::new_err(format!(
                        "strata has no data set {other}"
                    )));
                }
            }
            .map_err(to_python)
        })
    })?;
    let ((x_train, y_train), (x_test, y_test)) = split;
    Ok((
        (array_from(py, &x_train)?, array_from(py, &y_train)?),
        (array_from(py, &x_test)?, array_from(py, &y_test)?),
    ))
}

/// The layer class names strata's registry builds (Keras's names).
#[pyfunction]
fn layer_classes() -> Vec<&'static str> {
    strata::layers::REGISTRY.iter().map(|r| r.class_name).collect()
}

/// Panics inside the guard every entry point uses: the test that a Rust panic reaches Python
/// as a `RuntimeError` rather than aborting the interpreter.
#[pyfunction]
fn _panic_for_test() -> PyResult<()> {
    guarded("_panic_for_test", || panic!("a deliberate panic"))
}

/// The module.
#[pymodule]
fn _strata(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add_class::<engine::Engine>()?;
    module.add_function(wrap_pyfunction!(load_dataset, module)?)?;
    module.add_function(wrap_pyfunction!(layer_classes, module)?)?;
    module.add_function(wrap_pyfunction!(_panic_for_test, module)?)?;
    Ok(())
}
