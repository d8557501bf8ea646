//! `keras.datasets.imdb.load_data(...)`: 25,000 training and 25,000 test movie reviews labelled
//! by sentiment (1 positive, 0 negative), each a list of word ids ranked by frequency.

use super::SequenceSplit;
use super::locate::{Checksum, RemoteFile, get_file};
use super::npz::Npz;
use super::sequences::{Labeled, SequenceOptions, prepare, read_word_index};
use crate::error::Result;
use crate::tensor::Tensor;
use std::collections::HashMap;

/// Keras's `imdb.npz`.
pub const FILE: RemoteFile = RemoteFile::keras(
    "imdb.npz",
    Checksum::Sha256("69664113be75683a8fe16e3ed0ab59fda8886cb3cd7ada244f7d9544e4676b9f"),
);
/// Keras's `imdb_word_index.json` (Keras gives its MD5).
pub const WORD_INDEX: RemoteFile = RemoteFile::keras(
    "imdb_word_index.json",
    Checksum::Md5("bfafd718b763782e994055a2d397834f"),
);

/// The reviews as Keras returns them for `options` (Keras's arguments and defaults, see
/// [`SequenceOptions`]): both splits shuffled with numpy's `RandomState(seed)` in Keras's order,
/// then marked, shifted, filtered by `maxlen` and cut to `num_words` exactly as Keras does.
/// Sequences are lists of ids; labels `(N)`.
pub fn load_data(options: &SequenceOptions) -> Result<SequenceSplit> {
    let path = get_file(&FILE)?;
    let mut npz = Npz::open(&path)?;
    let train = labeled(&mut npz, "x_train", "y_train")?;
    let test = labeled(&mut npz, "x_test", "y_test")?;
    let mut splits = prepare(vec![train, test], options, "IMDB")?.into_iter();
    let (train, test) = (splits.next().unwrap_or_default(), splits.next().unwrap_or_default());
    Ok((with_tensor(train)?, with_tensor(test)?))
}

/// `keras.datasets.imdb.get_word_index()`: word → rank (1 the most frequent). Ids in the data
/// are ranks plus `index_from`.
pub fn get_word_index() -> Result<HashMap<String, usize>> {
    read_word_index(&get_file(&WORD_INDEX)?)
}

/// Sequences and labels of one split of an `.npz`.
pub(super) fn labeled(npz: &mut Npz, x: &str, y: &str) -> Result<Labeled> {
    let sequences = npz.sequences(x)?;
    let labels = npz.tensor(y)?.data().to_vec();
    Ok((sequences, labels))
}

/// Labels as a tensor `(N)`.
pub(super) fn with_tensor((x, y): Labeled) -> Result<(Vec<Vec<usize>>, Tensor)> {
    let n = y.len();
    Ok((x, Tensor::from_vec(vec![n], y)?))
}
