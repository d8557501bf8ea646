//! `keras.datasets.cifar10.load_data()`: 50,000 training and 10,000 test colour images, 32×32,
//! in 10 classes (airplane, automobile, bird, cat, deer, dog, frog, horse, ship, truck).

use super::locate::{CIFAR_STORAGE, Checksum, RemoteArchive, RemoteFile, get_folder};
use super::{Split, cifar};
use crate::error::Result;

/// The archive and the folder of batches it holds.
pub const ARCHIVE: RemoteArchive = RemoteArchive {
    file: RemoteFile {
        path: "cifar-10-python.tar.gz",
        origin: CIFAR_STORAGE,
        checksum: Checksum::Sha256("6d958be074577803d12ecdefd02955f39262c83c16fe9348329d7fe0b5c001ce"),
    },
    folder: "cifar-10-batches-py",
    keras3: (
        "cifar-10-batches-py-target/cifar-10-batches-py",
        "cifar-10-batches-py-target_archive",
    ),
};

/// CIFAR-10 as Keras returns it: `x` `(N, 32, 32, 3)`, channels-last, values 0–255 (Keras's
/// uint8, here f32), `y` `(N, 1)` classes 0–9. The training set is `data_batch_1` to `_5` in
/// order, the test set `test_batch`.
pub fn load_data() -> Result<Split> {
    let folder = get_folder(&ARCHIVE)?;
    let train = (1..=5)
        .map(|i| cifar::load_batch(&folder.join(format!("data_batch_{i}")), "labels", 10))
        .collect::<Result<Vec<_>>>()?;
    let test = cifar::load_batch(&folder.join("test_batch"), "labels", 10)?;
    Ok((cifar::join(train, &folder)?, cifar::join(vec![test], &folder)?))
}
