//! numpy arrays inside Python pickles (the CIFAR batches, and the object arrays of IMDB's and
//! Reuters' `.npz` files), read with `serde-pickle`.
//!
//! A pickled array is `_reconstruct(ndarray, ...)` followed by its state, `(version, shape,
//! dtype, fortran_order, data)`. `serde-pickle` runs no Python: it leaves the calls as opaque
//! objects and keeps the state, whose `data` is the raw bytes of a numeric array or the list of
//! Python objects of an object array. Nothing in a pickle is executed.

use crate::error::{Error, Result};
use crate::tensor::budgeted_numel;
use serde_pickle::{DeOptions, HashableValue, Value};
use std::io::Read;
use std::path::Path;

/// The largest pickle strata reads: 1 GiB (a CIFAR-100 batch is 150 MB).
const MAX_PICKLE_BYTES: u64 = 1 << 30;

/// A pickled numpy array.
pub struct PickledArray {
    /// Its shape.
    pub shape: Vec<usize>,
    /// Its values.
    pub data: ArrayData,
}

/// The values of a [`PickledArray`].
pub enum ArrayData {
    /// A numeric array's raw bytes (`itemsize` bytes per value, little-endian unless the dtype
    /// said `>`).
    Bytes {
        /// The bytes.
        bytes: Vec<u8>,
        /// Bytes per value.
        itemsize: usize,
        /// Whether the values are big-endian.
        big_endian: bool,
    },
    /// An object array's elements.
    Objects(Vec<Value>),
}

/// Reads a whole pickle from `reader` (part of `path`, named in errors), after checking that
/// it builds a value within the memory budget ([`super::pickle_guard`]).
pub fn read_pickle(reader: impl Read, path: &Path) -> Result<Value> {
    let mut data = Vec::new();
    reader
        .take(MAX_PICKLE_BYTES + 1)
        .read_to_end(&mut data)
        .map_err(|e| Error::file(path, format!("cannot read its pickle ({e})")))?;
    if data.len() as u64 > MAX_PICKLE_BYTES {
        return Err(Error::file(
            path,
            format!("its pickle is larger than {MAX_PICKLE_BYTES} bytes"),
        ));
    }
    super::pickle_guard::check_pickle(&data, path)?;
    let options = DeOptions::new().replace_unresolved_globals();
    serde_pickle::value_from_slice(&data, options).map_err(|e| {
        Error::file(
            path,
            format!("not a readable Python pickle ({e}); the file is truncated or corrupt"),
        )
    })
}

/// The entry `key` of a pickled dict whose keys are byte or text strings (Python 2's `str`
/// keys read as bytes, Python 3's as text).
pub fn dict_entry(dict: &Value, key: &str, path: &Path) -> Result<Value> {
    let Value::Dict(entries) = dict else {
        return Err(Error::file(
            path,
            "the pickle holds no dict; it is not a data set batch",
        ));
    };
    [
        HashableValue::Bytes(key.as_bytes().to_vec()),
        HashableValue::String(key.to_string()),
    ]
    .iter()
    .find_map(|k| entries.get(k).cloned())
    .ok_or_else(|| Error::file(path, format!("the pickled dict has no '{key}' entry")))
}

/// The numpy array a pickled value holds; anything else is an error naming `what` in `path`.
pub fn numpy_array(value: Value, what: &str, path: &Path) -> Result<PickledArray> {
    let bad = |reason: &str| Error::file(path, format!("{what}: {reason}"));
    let Value::Tuple(state) = value else {
        return Err(bad("not a pickled numpy array"));
    };
    let [_, shape, dtype, fortran, data] =
        <[Value; 5]>::try_from(state).map_err(|_| bad("not a pickled numpy array"))?;
    let shape = int_list(&shape).ok_or_else(|| bad("its shape is not a tuple of sizes"))?;
    if matches!(fortran, Value::Bool(true)) && shape.len() > 1 {
        return Err(bad("Fortran-ordered arrays are not read"));
    }
    let count = budgeted_numel(
        || {
            format!(
                "{}: {what} of shape {}",
                path.display(),
                crate::error::array_shape(&shape)
            )
        },
        &shape,
    )?;
    let data = match data {
        Value::Bytes(bytes) => {
            if count == 0 || bytes.len() % count != 0 {
                return Err(bad(&format!(
                    "{} bytes cannot hold the {count} values of shape {}; the array is truncated",
                    bytes.len(),
                    crate::error::array_shape(&shape)
                )));
            }
            let itemsize = bytes.len() / count;
            ArrayData::Bytes {
                bytes,
                itemsize,
                big_endian: byte_order(&dtype) == Some('>'),
            }
        }
        Value::List(items) if items.len() == count => ArrayData::Objects(items),
        Value::List(items) => {
            return Err(bad(&format!(
                "holds {} objects, its shape {} says {count}",
                items.len(),
                crate::error::array_shape(&shape)
            )));
        }
        _ => return Err(bad("its data is neither bytes nor a list of objects")),
    };
    Ok(PickledArray { shape, data })
}

/// Non-negative integers from a Python list or tuple.
pub fn int_list(value: &Value) -> Option<Vec<usize>> {
    match value {
        Value::List(items) | Value::Tuple(items) => items
            .iter()
            .map(|item| match item {
                Value::I64(v) => usize::try_from(*v).ok(),
                Value::Bool(b) => Some(*b as usize),
                _ => None,
            })
            .collect(),
        _ => None,
    }
}

/// The byte-order character of a pickled dtype's state (`<`, `>`, `|` or `=`).
fn byte_order(dtype: &Value) -> Option<char> {
    let Value::Tuple(state) = dtype else { return None };
    match state.get(1)? {
        Value::String(s) => s.chars().next(),
        Value::Bytes(b) => b.first().map(|&c| c as char),
        _ => None,
    }
}

/// Integer values of a numeric array's bytes (1, 2, 4 or 8 bytes each), e.g. a sequence stored
/// as an int array inside an object array.
pub fn integers(bytes: &[u8], itemsize: usize, big_endian: bool) -> Option<Vec<i64>> {
    if !matches!(itemsize, 1 | 2 | 4 | 8) {
        return None;
    }
    let value = |chunk: &[u8]| {
        let mut word = [0u8; 8];
        if big_endian {
            word[8 - itemsize..].copy_from_slice(chunk);
            i64::from_be_bytes(word) << (64 - 8 * itemsize) >> (64 - 8 * itemsize)
        } else {
            word[..itemsize].copy_from_slice(chunk);
            i64::from_le_bytes(word) << (64 - 8 * itemsize) >> (64 - 8 * itemsize)
        }
    };
    Some(bytes.chunks_exact(itemsize).map(value).collect())
}
