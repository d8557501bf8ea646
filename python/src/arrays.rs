//! NumPy arrays in and out. Arrays arrive as float32 (the Python side converts integer and
//! boolean arrays as Keras does, and refuses others); any memory layout is read by index, so a
//! non-contiguous view is copied, never misread.

use numpy::{PyArray1, PyArrayDyn, PyArrayMethods, PyReadonlyArrayDyn, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use strata::Tensor;

/// A strata tensor from a float32 NumPy array; `what` names it in errors (`x`, `y[1]`).
pub fn tensor_from(array: &Bound<'_, PyAny>, what: &str) -> PyResult<Tensor> {
    let array: PyReadonlyArrayDyn<'_, f32> = array.extract().map_err(|_| {
        let type_name = array
            .get_type()
            .name()
            .map(|n| n.to_string())
            .unwrap_or_else(|_| "?".into());
        PyTypeError::new_err(format!("{what} must be a float32 NumPy array, got {type_name}"))
    })?;
    let shape = array.shape().to_vec();
    // `as_slice` also accepts Fortran order, whose memory order is not the row-major order
    // strata reads: only a C-contiguous array is copied as one block.
    let data = match array.as_slice() {
        Ok(contiguous) if array.is_c_contiguous() => contiguous.to_vec(),
        _ => array.as_array().iter().copied().collect(),
    };
    Tensor::from_vec(shape, data).map_err(crate::errors::to_python)
}

/// One tensor per array of `arrays`, named `what[i]` in errors.
pub fn tensors_from(arrays: &[Bound<'_, PyAny>], what: &str) -> PyResult<Vec<Tensor>> {
    arrays
        .iter()
        .enumerate()
        .map(|(i, a)| {
            let name = if arrays.len() == 1 {
                what.to_string()
            } else {
                format!("{what}[{i}]")
            };
            tensor_from(a, &name)
        })
        .collect()
}

/// A float32 NumPy array holding `tensor`.
pub fn array_from<'py>(py: Python<'py>, tensor: &Tensor) -> PyResult<Bound<'py, PyArrayDyn<f32>>> {
    PyArray1::from_slice(py, tensor.data()).reshape(tensor.shape().to_vec())
}
