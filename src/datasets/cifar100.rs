//! `keras.datasets.cifar100.load_data(label_mode)`: 50,000 training and 10,000 test colour
//! images, 32×32, in 100 fine classes grouped into 20 coarse ones.

use super::locate::{CIFAR_STORAGE, Checksum, RemoteArchive, RemoteFile, get_folder};
use super::{Split, cifar};
use crate::error::{Error, Result};

/// The archive and the folder it holds.
pub const ARCHIVE: RemoteArchive = RemoteArchive {
    file: RemoteFile {
        path: "cifar-100-python.tar.gz",
        origin: CIFAR_STORAGE,
        checksum: Checksum::Sha256("85cd44d02ba6437773c5bbd22e183051d648de2e7d6b014e1ef29b855ba677a7"),
    },
    folder: "cifar-100-python",
    keras3: (
        "cifar-100-python-target/cifar-100-python",
        "cifar-100-python-target_archive",
    ),
};

/// CIFAR-100 as Keras returns it: `x` `(N, 32, 32, 3)`, channels-last, values 0–255 (f32
/// here), `y` `(N, 1)`: the 100 fine classes for `label_mode` `"fine"` (Keras's default), the 20
/// coarse ones for `"coarse"`; any other mode is an error.
pub fn load_data(label_mode: &str) -> Result<Split> {
    let classes = match label_mode {
        "fine" => 100,
        "coarse" => 20,
        other => {
            return Err(Error::invalid(
                "label_mode",
                other,
                "must be one of \"fine\", \"coarse\"",
            ));
        }
    };
    let folder = get_folder(&ARCHIVE)?;
    let key = format!("{label_mode}_labels");
    let train = cifar::load_batch(&folder.join("train"), &key, classes)?;
    let test = cifar::load_batch(&folder.join("test"), &key, classes)?;
    Ok((cifar::join(vec![train], &folder)?, cifar::join(vec![test], &folder)?))
}
