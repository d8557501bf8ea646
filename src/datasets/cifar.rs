//! The CIFAR batches: Python pickles of a dict holding `data`, a uint8 array of rows of 3,072
//! values (the red plane, then green, then blue, each 32×32 row-major), and the labels.

use super::pickle::{ArrayData, dict_entry, int_list, numpy_array, read_pickle};
use crate::error::{Error, Result};
use crate::tensor::{Tensor, budgeted_numel};
use std::path::Path;

const SIDE: usize = 32;
const PLANE: usize = SIDE * SIDE;

/// One batch file: images `(N, 32, 32, 3)` channels-last (Keras's layout on its default
/// `image_data_format`), values 0–255, and the labels under `label_key`, each below `classes`.
pub fn load_batch(path: &Path, label_key: &str, classes: usize) -> Result<(Vec<f32>, Vec<f32>)> {
    crate::fs::refuse_special(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open ({e})")))?;
    let batch = read_pickle(std::io::BufReader::new(file), path)?;
    let array = numpy_array(dict_entry(&batch, "data", path)?, "'data'", path)?;
    let labels = int_list(&dict_entry(&batch, label_key, path)?)
        .ok_or_else(|| Error::file(path, format!("'{label_key}' is not a list of class numbers")))?;
    let ArrayData::Bytes { bytes, itemsize: 1, .. } = array.data else {
        return Err(Error::file(path, "'data' is not an array of bytes (uint8)"));
    };
    if array.shape.len() != 2 || array.shape[1] != 3 * PLANE || array.shape[0] != labels.len() {
        return Err(Error::file(
            path,
            format!(
                "'data' has shape {} and there are {} labels; a CIFAR batch holds (N, 3072) and N labels",
                crate::error::array_shape(&array.shape),
                labels.len()
            ),
        ));
    }
    if let Some(bad) = labels.iter().find(|&&l| l >= classes) {
        return Err(Error::file(
            path,
            format!("label {bad} in '{label_key}' is not below {classes}"),
        ));
    }
    let images = bytes
        .chunks_exact(3 * PLANE)
        .flat_map(|row| (0..PLANE).flat_map(move |pixel| (0..3).map(move |c| row[c * PLANE + pixel] as f32)))
        .collect();
    Ok((images, labels.into_iter().map(|l| l as f32).collect()))
}

/// Batches joined into images `(N, 32, 32, 3)` and labels `(N, 1)`, as Keras returns them.
pub fn join(batches: Vec<(Vec<f32>, Vec<f32>)>, folder: &Path) -> Result<(Tensor, Tensor)> {
    let count: usize = batches.iter().map(|(_, y)| y.len()).sum();
    budgeted_numel(
        || format!("{}: {count} CIFAR images", folder.display()),
        &[count, SIDE, SIDE, 3],
    )?;
    let (mut x, mut y) = (Vec::with_capacity(count * 3 * PLANE), Vec::with_capacity(count));
    for (images, labels) in batches {
        x.extend(images);
        y.extend(labels);
    }
    Ok((
        Tensor::from_vec(vec![count, SIDE, SIDE, 3], x)?,
        Tensor::from_vec(vec![count, 1], y)?,
    ))
}
