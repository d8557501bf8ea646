//! `keras.datasets.fashion_mnist.load_data()`: Zalando's 60,000 training and 10,000 test
//! images of clothes in 10 classes (T-shirt/top, trouser, pullover, dress, coat, sandal, shirt,
//! sneaker, bag, ankle boot), 28×28 grayscale, in MNIST's IDX format.

use super::locate::{Checksum, RemoteFile, get_file};
use super::{Split, idx};
use crate::error::{Error, Result};
use std::path::Path;

/// The four IDX files, in Keras's `fashion-mnist/` folder. Keras checks no checksum for them.
pub const FILES: [RemoteFile; 4] = [
    RemoteFile::keras("fashion-mnist/train-labels-idx1-ubyte.gz", Checksum::Unchecked),
    RemoteFile::keras("fashion-mnist/train-images-idx3-ubyte.gz", Checksum::Unchecked),
    RemoteFile::keras("fashion-mnist/t10k-labels-idx1-ubyte.gz", Checksum::Unchecked),
    RemoteFile::keras("fashion-mnist/t10k-images-idx3-ubyte.gz", Checksum::Unchecked),
];

/// Fashion-MNIST as Keras returns it: `x` `(N, 28, 28)` with pixel values 0–255 (f32 here),
/// `y` `(N)` classes 0–9.
pub fn load_data() -> Result<Split> {
    let paths = FILES.iter().map(get_file).collect::<Result<Vec<_>>>()?;
    let folders: Vec<&Path> = paths.iter().filter_map(|p| p.parent()).collect();
    match folders.split_first() {
        Some((first, rest)) if rest.iter().all(|f| f == first) => idx::load_folder(first),
        _ => Err(Error::Usage(format!(
            "Fashion-MNIST's four files were found in different folders ({}); put them in one",
            paths
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
