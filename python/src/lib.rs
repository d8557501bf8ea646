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
use pyo3::exceptions::PyValueError;
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

/// `((x_train, y_train), (x_test, y_test))` of a word-sequence data set: the sequences as
/// lists of word ids, the labels as float32.
type SequenceLists<'py> = (
    (Vec<Vec<usize>>, Bound<'py, PyArrayDyn<f32>>),
    (Vec<Vec<usize>>, Bound<'py, PyArrayDyn<f32>>),
);

/// A word-sequence data set by name (`imdb`, `reuters`) with Keras's `load_data` arguments;
/// the Python side makes Keras's object arrays of lists from the sequences.
#[pyfunction]
#[pyo3(signature = (name, num_words=None, skip_top=0, maxlen=None, seed=113, start_char=Some(1),
    oov_char=Some(2), index_from=3, test_split=0.2))]
#[allow(clippy::too_many_arguments)] // Keras's arguments, one for one
fn load_sequences<'py>(
    py: Python<'py>,
    name: &str,
    num_words: Option<usize>,
    skip_top: usize,
    maxlen: Option<usize>,
    seed: u32,
    start_char: Option<usize>,
    oov_char: Option<usize>,
    index_from: usize,
    test_split: f64,
) -> PyResult<SequenceLists<'py>> {
    use strata::datasets;
    let options = datasets::SequenceOptions {
        num_words,
        skip_top,
        maxlen,
        seed,
        start_char,
        oov_char,
        index_from,
    };
    let split = py.allow_threads(|| {
        guarded("load_data", || {
            match name {
                "imdb" => datasets::imdb::load_data(&options),
                "reuters" => datasets::reuters::load_data(&options, test_split),
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
    Ok(((x_train, array_from(py, &y_train)?), (x_test, array_from(py, &y_test)?)))
}

/// The word index (`word → rank`) of `imdb` or `reuters`, as Keras's `get_word_index`.
#[pyfunction]
fn word_index(py: Python<'_>, name: &str) -> PyResult<std::collections::HashMap<String, usize>> {
    use strata::datasets;
    py.allow_threads(|| {
        guarded("get_word_index", || {
            match name {
                "imdb" => datasets::imdb::get_word_index(),
                "reuters" => datasets::reuters::get_word_index(),
                other => {
                    return Err(pyo3::exceptions::PyNotImplementedError::new_err(format!(
                        "strata has no data set {other}"
                    )));
                }
            }
            .map_err(to_python)
        })
    })
}

/// The layer class names strata's registry builds (Keras's names).
/// Every Keras application: `(strata's name, Keras's name, preprocessing mode)`.
#[pyfunction]
fn applications() -> Vec<(&'static str, &'static str, &'static str)> {
    strata::applications::keras_names()
        .into_iter()
        .map(|(name, keras, mode)| (name, keras, mode.name()))
        .collect()
}

/// One decoded class: `(wnid, name, score)`, as Keras's `decode_predictions` gives it.
type Decoded = (&'static str, &'static str, f32);

/// Keras's `decode_predictions(preds, top)`: per sample, the `top` most probable ImageNet
/// classes.
#[pyfunction]
fn decode_predictions(preds: Vec<Vec<f32>>, top: usize) -> PyResult<Vec<Vec<Decoded>>> {
    let rows = preds.len();
    let columns = preds.first().map_or(0, Vec::len);
    if preds.iter().any(|row| row.len() != columns) {
        return Err(PyValueError::new_err(
            "decode_predictions: preds rows of different lengths",
        ));
    }
    let tensor = strata::Tensor::from_vec(vec![rows, columns], preds.concat()).map_err(to_python)?;
    let decoded = strata::applications::decode_predictions(&tensor, top).map_err(to_python)?;
    Ok(decoded
        .into_iter()
        .map(|sample| sample.into_iter().map(|p| (p.wnid, p.name, p.probability)).collect())
        .collect())
}

#[pyfunction]
fn layer_classes() -> Vec<&'static str> {
    strata::layers::REGISTRY.iter().map(|r| r.class_name).collect()
}

/// Each registered layer class with the arguments Keras's constructor takes without their
/// names, in its order (`Dense(units, activation)`), from the same registry as the CLI's `--head`.
#[pyfunction]
fn layer_positional() -> Vec<(&'static str, Vec<&'static str>)> {
    strata::layers::REGISTRY
        .iter()
        .map(|r| (r.class_name, r.positional.to_vec()))
        .collect()
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
    module.add_function(wrap_pyfunction!(load_sequences, module)?)?;
    module.add_function(wrap_pyfunction!(word_index, module)?)?;
    module.add_function(wrap_pyfunction!(layer_classes, module)?)?;
    module.add_function(wrap_pyfunction!(applications, module)?)?;
    module.add_function(wrap_pyfunction!(decode_predictions, module)?)?;
    module.add_function(wrap_pyfunction!(layer_positional, module)?)?;
    module.add_function(wrap_pyfunction!(_panic_for_test, module)?)?;
    Ok(())
}
