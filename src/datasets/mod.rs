//! Keras's data sets, `keras.datasets.X.load_data()` in Rust: the same arguments and defaults,
//! read from the same files, returning the same arrays.
//!
//! | Keras | strata |
//! |---|---|
//! | `mnist.load_data()` | [`mnist::load_data()`] |
//! | `fashion_mnist.load_data()` | [`fashion_mnist::load_data()`] |
//! | `cifar10.load_data()` | [`cifar10::load_data()`] |
//! | `cifar100.load_data(label_mode="fine")` | [`cifar100::load_data("fine")`](cifar100::load_data) |
//! | `imdb.load_data(num_words=10000)` | [`imdb::load_data(&SequenceOptions::default().num_words(10000))`](imdb::load_data) |
//! | `imdb.get_word_index()` | [`imdb::get_word_index()`] |
//! | `reuters.load_data(test_split=0.2)` | [`reuters::load_data(&SequenceOptions::default(), 0.2)`](reuters::load_data) |
//! | `boston_housing.load_data(test_split=0.2, seed=113)` | [`boston_housing::load_data(0.2, 113)`](boston_housing::load_data) |
//!
//! Keras returns uint8 images; strata returns the same values (0–255) as f32 tensors in Keras's
//! shapes: `(N, 28, 28)` for the MNISTs, channels-last `(N, 32, 32, 3)` for CIFAR, labels `(N)`
//! (CIFAR: `(N, 1)`). Sequences are lists of word ids (`Vec<Vec<usize>>`), shuffled in
//! numpy's order for the seed, as Keras's are.
//!
//! **Where the files are looked for** ([`search_dirs`]): `$KERAS_HOME/datasets`,
//! `~/.keras/datasets` (where Keras keeps them), then strata's folder `$STRATA_DATA` (default
//! `~/.strata/datasets`); for MNIST, then the IDX files bundled with strata's sources. A file
//! found nowhere is downloaded from Keras's address into strata's folder (the default
//! `download` feature): its SHA-256 is checked, archives are extracted, and a partial or
//! corrupt download is deleted. Offline, or without the feature, the error names the file,
//! where strata looked, where to put it, its address and checksum. `$STRATA_DATASETS_URL`
//! replaces the addresses (a mirror), `$STRATA_DOWNLOAD_TIMEOUT` the 30 s time-out.

mod archive;
pub mod boston_housing;
mod checksum;
mod cifar;
pub mod cifar10;
pub mod cifar100;
#[cfg(feature = "download")]
pub mod download;
pub mod fashion_mnist;
pub mod idx;
pub mod imdb;
pub mod locate;
pub mod mnist;
mod npz;
mod pickle;
mod pickle_guard;
pub mod reuters;
mod sequences;
mod shuffle;
pub mod spec;

pub use locate::{search_dirs, strata_dir};
pub use sequences::SequenceOptions;
pub use spec::{DatasetSpec, Loaded};

use crate::error::{Error, Result};
use crate::tensor::Tensor;

/// `((x_train, y_train), (x_test, y_test))` as tensors.
pub type Split = ((Tensor, Tensor), (Tensor, Tensor));

/// `((x_train, y_train), (x_test, y_test))` with sequences of word ids and labels `(N)`.
pub type SequenceSplit = ((Vec<Vec<usize>>, Tensor), (Vec<Vec<usize>>, Tensor));

/// Images `x` of per-sample shape `sample` and labels `y` `(N)` from an `.npz`; other shapes are
/// an error naming the file, the arrays and their shapes.
fn images_and_labels(npz: &mut npz::Npz, x: &str, y: &str, sample: &[usize]) -> Result<(Tensor, Tensor)> {
    let (images, labels) = (npz.tensor(x)?, npz.tensor(y)?);
    if images.shape().get(1..) != Some(sample) || labels.shape() != [images.rows()] {
        return Err(Error::file(
            npz.path(),
            format!(
                "'{x}' has shape {} and '{y}' {}; expected (N, {}) and (N,)",
                crate::error::array_shape(images.shape()),
                crate::error::array_shape(labels.shape()),
                sample.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
            ),
        ));
    }
    Ok((images, labels))
}
