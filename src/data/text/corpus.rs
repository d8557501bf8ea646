//! Text corpora: the bundled *Hamlet* and any UTF-8 text file.

use crate::error::{Error, Result};
use std::path::Path;

/// *Hamlet*, embedded in the library so an installed or copied binary has it wherever it runs.
const HAMLET: &str = include_str!("../../../data/shakespeare/hamlet.txt");

/// Shakespeare's *Hamlet* (Project Gutenberg's transcription, public domain; 173,942 ASCII
/// characters), bundled from `data/shakespeare/` (see its README for the source) into the
/// library itself: a corpus for character- and word-level language models.
pub fn load_shakespeare() -> Result<String> {
    Ok(HAMLET.to_string())
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
