//! `keras.datasets.boston_housing.load_data(test_split, seed)`: 506 Boston suburbs of the 1970s,
//! 13 features each, and the median home value in thousands of dollars.

use super::Split;
use super::locate::{Checksum, RemoteFile, get_file};
use super::npz::Npz;
use super::reuters::check_test_split;
use super::shuffle::RandomState;
use crate::error::{Error, Result};

/// Keras's `boston_housing.npz`.
pub const FILE: RemoteFile = RemoteFile::keras(
    "boston_housing.npz",
    Checksum::Sha256("f553886a1f8d56431e820c5b82552d9d95cfcb96d1e678153f8839538947dff5"),
);

/// The table as Keras returns it (Keras's defaults: `test_split` 0.2, `seed` 113): rows shuffled
/// with numpy's `RandomState(seed)`, the first `int(N * (1 - test_split))` train. `x` `(N, 13)`,
/// `y` `(N)`; Keras's float64 values rounded to f32.
pub fn load_data(test_split: f64, seed: u32) -> Result<Split> {
    check_test_split(test_split)?;
    let path = get_file(&FILE)?;
    let mut npz = Npz::open(&path)?;
    let (x, y) = (npz.tensor("x")?, npz.tensor("y")?);
    if x.shape().len() != 2 || y.shape() != [x.rows()] {
        return Err(Error::file(
            &path,
            format!(
                "'x' has shape {} and 'y' {}; expected (N, features) and (N,)",
                crate::error::array_shape(x.shape()),
                crate::error::array_shape(y.shape())
            ),
        ));
    }
    let order = RandomState::new(seed).permutation(x.rows());
    let (x, y) = (x.gather_rows(&order), y.gather_rows(&order));
    let cut = (x.rows() as f64 * (1.0 - test_split)) as usize;
    Ok((
        (x.slice_rows(0, cut), y.slice_rows(0, cut)),
        (x.slice_rows(cut, x.rows()), y.slice_rows(cut, y.rows())),
    ))
}
