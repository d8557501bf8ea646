//! `keras.datasets.reuters.load_data(...)`: 11,228 Reuters newswires labelled with 46 topics,
//! each a list of word ids ranked by frequency.

use super::SequenceSplit;
use super::imdb::{labeled, with_tensor};
use super::locate::{Checksum, RemoteFile, get_file};
use super::npz::Npz;
use super::sequences::{SequenceOptions, prepare, read_word_index};
use crate::error::{Error, Result};
use std::collections::HashMap;

/// Keras's `reuters.npz`.
pub const FILE: RemoteFile = RemoteFile::keras(
    "reuters.npz",
    Checksum::Sha256("d6586e694ee56d7a4e65172e12b3e987c03096cb01eab99753921ef915959916"),
);
/// Keras's `reuters_word_index.json` (Keras gives its MD5).
pub const WORD_INDEX: RemoteFile = RemoteFile::keras(
    "reuters_word_index.json",
    Checksum::Md5("4d44cc38712099c9e383dc6e5f11a921"),
);

/// The newswires as Keras returns them for `options` and `test_split` (Keras's default 0.2):
/// shuffled with numpy's `RandomState(seed)`, marked, shifted, filtered and cut as Keras does,
/// then the first `int(N * (1 - test_split))` train and the rest test. Labels `(N)`, topics
/// 0–45. A `test_split` outside [0, 1) is an error.
pub fn load_data(options: &SequenceOptions, test_split: f64) -> Result<SequenceSplit> {
    check_test_split(test_split)?;
    let mut npz = Npz::open(&get_file(&FILE)?)?;
    let all = labeled(&mut npz, "x", "y")?;
    let (x, y) = prepare(vec![all], options, "Reuters")?.pop().unwrap_or_default();
    let cut = (x.len() as f64 * (1.0 - test_split)) as usize;
    let (mut x_train, mut y_train) = (x, y);
    let (x_test, y_test) = (x_train.split_off(cut), y_train.split_off(cut));
    Ok((with_tensor((x_train, y_train))?, with_tensor((x_test, y_test))?))
}

/// `keras.datasets.reuters.get_word_index()`: word → rank (1 the most frequent).
pub fn get_word_index() -> Result<HashMap<String, usize>> {
    read_word_index(&get_file(&WORD_INDEX)?)
}

/// `keras.datasets.reuters.get_label_names()`: the 46 topics, in label order.
pub fn get_label_names() -> [&'static str; 46] {
    [
        "cocoa",
        "grain",
        "veg-oil",
        "earn",
        "acq",
        "wheat",
        "copper",
        "housing",
        "money-supply",
        "coffee",
        "sugar",
        "trade",
        "reserves",
        "ship",
        "cotton",
        "carcass",
        "crude",
        "nat-gas",
        "cpi",
        "money-fx",
        "interest",
        "gnp",
        "meal-feed",
        "alum",
        "oilseed",
        "gold",
        "tin",
        "strategic-metal",
        "livestock",
        "retail",
        "ipi",
        "iron-steel",
        "rubber",
        "heat",
        "jobs",
        "lei",
        "bop",
        "zinc",
        "orange",
        "pet-chem",
        "dlr",
        "gas",
        "silver",
        "wpi",
        "hog",
        "lead",
    ]
}

/// Keras's check: a test fraction in [0, 1).
pub(super) fn check_test_split(test_split: f64) -> Result<()> {
    if (0.0..1.0).contains(&test_split) {
        Ok(())
    } else {
        Err(Error::invalid(
            "test_split",
            test_split,
            "must be between 0 and 1 (exclusive of 1)",
        ))
    }
}
