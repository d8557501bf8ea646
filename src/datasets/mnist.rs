//! `keras.datasets.mnist.load_data()`: 60,000 training and 10,000 test images of handwritten
//! digits, 28×28 grayscale.

use super::locate::{Checksum, RemoteFile, find, get_file};
use super::{Split, idx, npz::Npz};
use crate::error::Result;
use std::path::{Path, PathBuf};

/// Keras's `mnist.npz`.
pub const FILE: RemoteFile = RemoteFile::keras(
    "mnist.npz",
    Checksum::Sha256("731c5ac602752760c8e48fbffcf8c3b850d9dc2a2aedcf2cc48468fc17b673d1"),
);

/// MNIST as Keras returns it: `x` `(N, 28, 28)` with pixel values 0–255 (Keras's uint8, here
/// f32), `y` `(N)` digits 0–9. Read from Keras's `mnist.npz` in the data folders
/// ([`super::search_dirs`]), else from the IDX files bundled with strata ([`bundled_dir`]),
/// else downloaded.
pub fn load_data() -> Result<Split> {
    if let Some(path) = find(&[FILE.path]) {
        return load_npz(&path);
    }
    if let Some(dir) = bundled_dir() {
        return idx::load_folder(&dir);
    }
    load_npz(&get_file(&FILE)?)
}

/// MNIST from a folder of its four IDX `.gz` files (`train-images-idx3-ubyte.gz`, ...).
pub fn load_data_from(dir: impl AsRef<Path>) -> Result<Split> {
    idx::load_folder(dir.as_ref())
}

/// The IDX files shipped with strata's sources: `data/mnist` under the current folder, else
/// under the folder strata was built from, when that still exists (an installed or copied
/// binary finds MNIST in the data folders instead).
pub fn bundled_dir() -> Option<PathBuf> {
    [
        PathBuf::from("data/mnist"),
        Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist"),
    ]
    .into_iter()
    .find(|dir| idx::has_idx_files(dir))
}

/// A `mnist.npz` as Keras writes it: `x_train`, `y_train`, `x_test`, `y_test`.
pub fn load_npz(path: &Path) -> Result<Split> {
    let mut npz = Npz::open(path)?;
    let train = super::images_and_labels(&mut npz, "x_train", "y_train", &[28, 28])?;
    let test = super::images_and_labels(&mut npz, "x_test", "y_test", &[28, 28])?;
    Ok((train, test))
}
