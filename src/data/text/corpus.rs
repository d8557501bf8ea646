//! Text corpora: the bundled *Hamlet* and any UTF-8 text file.

use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

const HAMLET: &str = "hamlet.txt";

/// Shakespeare's *Hamlet* (Project Gutenberg's transcription, public domain; 173,942 ASCII
/// characters), bundled under `data/shakespeare/` (see its README for the source): a corpus for
/// character- and word-level language models.
pub fn load_shakespeare() -> Result<String> {
    load_text(default_dir().join(HAMLET))
}

/// Where [`load_shakespeare`] reads from: `data/shakespeare` under the current directory when it
/// holds the file, else the one in the directory strata was built from (as
/// [`crate::data::mnist::default_dir`] finds MNIST).
pub fn default_dir() -> PathBuf {
    let local = PathBuf::from("data/shakespeare");
    if local.join(HAMLET).exists() {
        return local;
    }
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/shakespeare")
}

/// A whole UTF-8 text file; a missing, unreadable, non-UTF-8 or empty file is an error naming it.
pub fn load_text(path: impl AsRef<Path>) -> Result<String> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read the text: {e}")))?;
    let text = String::from_utf8(bytes).map_err(|e| {
        Error::file(
            path,
            format!(
                "not UTF-8 text (invalid byte at offset {})",
                e.utf8_error().valid_up_to()
            ),
        )
    })?;
    if text.trim().is_empty() {
        return Err(Error::file(path, "the text is empty"));
    }
    Ok(text)
}
