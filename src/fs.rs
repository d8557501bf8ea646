//! The one place strata writes files: to a temporary file beside the target, flushed to disk,
//! then renamed over it, so a crash mid-write leaves the previous file whole.
//!
//! It needs nothing but `error`, so every module that saves (`model`'s history, `io`, `plot`)
//! can use it without importing another.

use crate::error::{Error, Result};
use std::io::Write;
use std::path::Path;

/// Writes `bytes` to `path` atomically: the file either keeps its old contents or has all of
/// the new ones, never a part.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let io = |context: &str, source| Error::Io {
        context: format!("{context} {}", path.display()),
        source,
    };
    let directory = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => std::path::PathBuf::from("."),
    };
    let file_name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    let temporary = directory.join(format!(".{}.tmp-{}", file_name.to_string_lossy(), std::process::id()));
    let result = (|| {
        let mut file = std::fs::File::create(&temporary).map_err(|e| io("cannot create a temporary file for", e))?;
        file.write_all(bytes).map_err(|e| io("cannot write", e))?;
        file.sync_all().map_err(|e| io("cannot flush", e))?;
        std::fs::rename(&temporary, path).map_err(|e| io("cannot replace", e))?;
        // Make the rename itself durable; not every platform can open a directory, so this is
        // best effort.
        if let Ok(dir) = std::fs::File::open(&directory) {
            let _ = dir.sync_all();
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&temporary);
    }
    result
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = std::env::temp_dir().join(format!("strata-atomic-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("model.safetensors");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        let leftovers: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name())
            .collect();
        assert_eq!(leftovers.len(), 1, "{leftovers:?}");
        assert!(write_atomic(dir.join("missing-dir/x"), b"x").is_err());
        assert!(std::fs::read(&path).is_ok());
    }
}
