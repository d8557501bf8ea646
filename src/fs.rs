//! The one place strata writes files: to a temporary file beside the target, flushed to disk,
//! then renamed over it, so a crash mid-write leaves the previous file whole.
//!
//! It needs nothing but `error`, so every module that saves (`model`'s history, `io`, `plot`)
//! can use it without importing another.

use crate::error::{Error, Result};
use std::ffi::OsStr;
use std::io::Write;
use std::path::{Path, PathBuf};

/// Writes `bytes` to `path` atomically: the file either keeps its old contents or has all of
/// the new ones, never a part. Temporary files that killed writes to the same target left
/// behind (`.NAME.tmp-PID` of a process that is gone) are removed first.
pub fn write_atomic(path: impl AsRef<Path>, bytes: &[u8]) -> Result<()> {
    let path = path.as_ref();
    let io = |context: &str, source| Error::Io {
        context: format!("{context} {}", path.display()),
        source,
    };
    let directory = folder_of(path);
    let file_name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    remove_stale_temporaries(&directory, file_name);
    let temporary = directory.join(temporary_name(file_name, std::process::id()));
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

/// Checks, without touching `path` itself, that [`write_atomic`] could write it now: not a
/// folder, in an existing folder where a file can be created (probed by creating and removing
/// one), so a long run learns before it starts that its results could not be saved.
pub fn check_writable(path: impl AsRef<Path>) -> Result<()> {
    let path = path.as_ref();
    if path.is_dir() {
        return Err(Error::file(path, "is a folder: give the file to write"));
    }
    let file_name = path.file_name().ok_or_else(|| Error::file(path, "not a file path"))?;
    let directory = folder_of(path);
    if !directory.is_dir() {
        let problem = match directory.exists() {
            true => "is a file, not a folder",
            false => "does not exist",
        };
        return Err(Error::file(
            path,
            format!("its folder {} {problem}", directory.display()),
        ));
    }
    let probe = directory.join(format!(".{}.probe-{}", file_name.to_string_lossy(), std::process::id()));
    std::fs::File::create(&probe).map_err(|e| {
        Error::file(
            path,
            format!("cannot create a file in its folder {} ({e})", directory.display()),
        )
    })?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// Checks, without creating anything, that files could be written in `folder` now: the
/// nearest folder on its path that exists (itself, or where it would be created) is a folder
/// where a file can be created, so a run that logs there learns before it starts.
pub fn check_folder_writable(folder: impl AsRef<Path>) -> Result<()> {
    let folder = folder.as_ref();
    let mut existing = folder;
    while !existing.exists() {
        existing = match existing.parent() {
            Some(p) if !p.as_os_str().is_empty() => p,
            _ => Path::new("."),
        };
    }
    if !existing.is_dir() {
        return Err(Error::file(
            folder,
            format!("{} is a file, not a folder", existing.display()),
        ));
    }
    let probe = existing.join(format!(".strata-probe-{}", std::process::id()));
    std::fs::File::create(&probe)
        .map_err(|e| Error::file(folder, format!("cannot create a file in {} ({e})", existing.display())))?;
    let _ = std::fs::remove_file(&probe);
    Ok(())
}

/// The folder `path` is in (`.` for a bare file name).
fn folder_of(path: &Path) -> PathBuf {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    }
}

/// The temporary file process `pid` writes `file_name` through: `.NAME.tmp-PID`.
fn temporary_name(file_name: &OsStr, pid: u32) -> String {
    format!(".{}.tmp-{pid}", file_name.to_string_lossy())
}

/// Removes the temporary files of writes to `file_name` in `directory` whose process is gone
/// (killed mid-write). Only names of exactly strata's pattern for this target are touched; a
/// live process's file is left to it. Best effort: what cannot be removed stays.
fn remove_stale_temporaries(directory: &Path, file_name: &OsStr) {
    let prefix = format!(".{}.tmp-", file_name.to_string_lossy());
    let Ok(entries) = std::fs::read_dir(directory) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let pid = name
            .to_str()
            .and_then(|n| n.strip_prefix(&prefix))
            .filter(|digits| !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()))
            .and_then(|digits| digits.parse::<u32>().ok());
        if let Some(pid) = pid
            && pid != std::process::id()
            && !process_alive(pid)
        {
            let _ = std::fs::remove_file(entry.path());
        }
    }
}

/// Whether process `pid` is running. Where that cannot be told (no `/proc`), every process
/// counts as alive, so nothing is removed that might be in use.
fn process_alive(pid: u32) -> bool {
    let proc = Path::new("/proc");
    !proc.join("self").exists() || proc.join(pid.to_string()).exists()
}

/// The file's bytes, once its size is checked against the memory budget. Model files' loaders
/// (safetensors, legacy Keras `.h5`) allocate no more than the file's size, so this caps what
/// they make before anything is read.
/// A device or pipe (`/dev/zero`, a named pipe) has no size to check and might never end, so
/// only regular files are read.
pub(crate) fn read_whole(path: &Path) -> Result<Vec<u8>> {
    let metadata = std::fs::metadata(path).map_err(|e| Error::file(path, format!("cannot read ({e})")))?;
    if !metadata.is_file() {
        return Err(not_regular(path, &metadata));
    }
    let size = metadata.len();
    crate::limits::check_memory(|| format!("{} ({size} bytes, read whole)", path.display()), Some(size))?;
    std::fs::read(path).map_err(|e| Error::file(path, format!("cannot read ({e})")))
}

/// An error when `path` exists and is not a regular file (a folder, a device, a named pipe, a
/// socket): opening a named pipe blocks until some program writes to it, and a device may never
/// end, so a file about to be opened and streamed is checked first. A path that cannot be
/// looked at passes, for the open to report why.
pub(crate) fn refuse_special(path: &Path) -> Result<()> {
    match std::fs::metadata(path) {
        Ok(metadata) if !metadata.is_file() => Err(not_regular(path, &metadata)),
        _ => Ok(()),
    }
}

/// The error for a path that is not a regular file.
fn not_regular(path: &Path, metadata: &std::fs::Metadata) -> Error {
    let what = if metadata.is_dir() {
        "a folder"
    } else {
        "a device, pipe or socket"
    };
    Error::file(path, format!("needs a regular file here, not {what}"))
}

/// [`read_whole`] as UTF-8 text.
pub(crate) fn read_text(path: &Path) -> Result<String> {
    String::from_utf8(read_whole(path)?).map_err(|e| Error::file(path, format!("cannot read ({e})")))
}

/// A part of a temporary file's name unique to this run of the unit tests: the process id and
/// the time it started. Process ids alone repeat from run to run on CI machines, whose temporary
/// folder can keep an earlier run's files.
#[cfg(test)]
pub(crate) fn test_run_id() -> String {
    static ID: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    ID.get_or_init(|| {
        let since_epoch = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH);
        let nanos = since_epoch.map(|d| d.as_nanos()).unwrap_or(0);
        format!("{}-{nanos}", std::process::id())
    })
    .clone()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("strata-atomic-{name}-{}", test_run_id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn names_in(dir: &Path) -> Vec<String> {
        let mut names: Vec<String> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        names
    }

    #[test]
    fn replaces_the_whole_file_and_leaves_no_temporary() {
        let dir = scratch("replace");
        let path = dir.join("model.safetensors");
        write_atomic(&path, b"first").unwrap();
        write_atomic(&path, b"second, longer").unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"second, longer");
        assert_eq!(names_in(&dir), ["model.safetensors"]);
        assert!(write_atomic(dir.join("missing-dir/x"), b"x").is_err());
        assert!(std::fs::read(&path).is_ok());
    }

    #[test]
    fn temporaries_of_dead_writers_to_the_target_are_removed_and_nothing_else() {
        let dir = scratch("stale");
        // A PID above Linux's maximum (2^22) belongs to no process.
        let dead = temporary_name(OsStr::new("model.safetensors"), 4_999_999);
        let alive = temporary_name(OsStr::new("model.safetensors"), 1);
        let other_target = temporary_name(OsStr::new("other.safetensors"), 4_999_999);
        for name in [&dead, &alive, &other_target, &".model.safetensors.tmp-12x".to_string()] {
            std::fs::write(dir.join(name), b"partial").unwrap();
        }
        write_atomic(dir.join("model.safetensors"), b"whole").unwrap();
        let mut expected = vec![
            alive,
            other_target,
            ".model.safetensors.tmp-12x".to_string(),
            "model.safetensors".to_string(),
        ];
        expected.sort();
        assert_eq!(names_in(&dir), expected);
    }

    #[test]
    fn a_target_that_cannot_be_written_is_found_before_writing() {
        let dir = scratch("writable");
        assert!(check_writable(dir.join("model.safetensors")).is_ok());
        assert_eq!(names_in(&dir), Vec::<String>::new(), "the probe is removed");
        let folder = check_writable(&dir).unwrap_err().to_string();
        assert!(folder.contains("is a folder"), "{folder}");
        let missing = check_writable(dir.join("gone/model.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(missing.contains("does not exist"), "{missing}");
        // A "folder" that is a file: creating the probe fails, whoever runs the test (root too).
        std::fs::write(dir.join("plain"), b"x").unwrap();
        let blocked = check_writable(dir.join("plain/model.safetensors"))
            .unwrap_err()
            .to_string();
        assert!(blocked.contains("is a file, not a folder"), "{blocked}");
        // A folder no one can create files in, root included.
        if cfg!(target_os = "linux") {
            let denied = check_writable("/proc/model.safetensors").unwrap_err().to_string();
            assert!(denied.contains("cannot create a file in its folder /proc"), "{denied}");
        }
    }

    #[test]
    fn a_log_folder_is_checked_where_it_would_be_created() {
        let dir = scratch("folder");
        assert!(check_folder_writable(dir.join("logs/run-1")).is_ok());
        assert_eq!(
            names_in(&dir),
            Vec::<String>::new(),
            "nothing is created, the probe is removed"
        );
        std::fs::write(dir.join("plain"), b"x").unwrap();
        let blocked = check_folder_writable(dir.join("plain/logs")).unwrap_err().to_string();
        assert!(blocked.contains("is a file, not a folder"), "{blocked}");
        if cfg!(target_os = "linux") {
            let denied = check_folder_writable("/proc/logs/run").unwrap_err().to_string();
            assert!(denied.contains("cannot create a file in /proc"), "{denied}");
        }
    }
}
