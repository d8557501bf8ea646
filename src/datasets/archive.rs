//! Extracting a `.tar.gz` data set archive (CIFAR's) into a folder, all or nothing: into a
//! temporary folder first, renamed into place once every entry is out.

use crate::error::{Error, Result};
use flate2::read::GzDecoder;
use std::path::{Path, PathBuf};

/// The most an archive may unpack to: 4 GiB (CIFAR-100's holds 178 MB).
const MAX_EXTRACTED_BYTES: u64 = 4 << 30;

/// Extracts `archive` into `into` and returns `into/folder`, the folder the archive holds. An
/// archive that is not a readable `.tar.gz`, would unpack beyond [`MAX_EXTRACTED_BYTES`] or
/// outside its folder, or lacks `folder`, is an error naming it; nothing is left behind then.
pub fn extract_tar_gz(archive: &Path, into: &Path, folder: &str) -> Result<PathBuf> {
    std::fs::create_dir_all(into).map_err(|e| Error::file(into, format!("cannot create the folder ({e})")))?;
    let staging = into.join(format!(".{folder}.extract-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&staging);
    std::fs::create_dir_all(&staging).map_err(|e| Error::file(&staging, format!("cannot create the folder ({e})")))?;
    let result = unpack(archive, &staging).and_then(|()| {
        let inner = staging.join(folder);
        if !inner.is_dir() {
            return Err(Error::file(
                archive,
                format!("the archive holds no folder '{folder}'; it is not the expected data set archive"),
            ));
        }
        let target = into.join(folder);
        let _ = std::fs::remove_dir_all(&target);
        std::fs::rename(&inner, &target)
            .map_err(|e| Error::file(&target, format!("cannot move the extracted folder here ({e})")))?;
        Ok(target)
    });
    let _ = std::fs::remove_dir_all(&staging);
    result
}

/// Unpacks every entry under `staging`, refusing sizes beyond the limit. `tar`'s `unpack_in`
/// refuses entries that would land outside `staging` (`..`, absolute paths).
fn unpack(archive: &Path, staging: &Path) -> Result<()> {
    let unreadable = |e: std::io::Error| {
        Error::file(
            archive,
            format!("not a readable .tar.gz archive ({e}); it is truncated or corrupt"),
        )
    };
    crate::fs::refuse_special(archive)?;
    let file = std::fs::File::open(archive).map_err(|e| Error::file(archive, format!("cannot open ({e})")))?;
    let mut tar = tar::Archive::new(GzDecoder::new(std::io::BufReader::new(file)));
    let mut total = 0u64;
    for entry in tar.entries().map_err(unreadable)? {
        let mut entry = entry.map_err(unreadable)?;
        total = total.saturating_add(entry.header().size().map_err(unreadable)?);
        if total > MAX_EXTRACTED_BYTES {
            return Err(Error::file(
                archive,
                format!("the archive would unpack to more than {MAX_EXTRACTED_BYTES} bytes"),
            ));
        }
        if !entry.unpack_in(staging).map_err(unreadable)? {
            return Err(Error::file(
                archive,
                "an entry would unpack outside its folder; the archive is not a data set archive",
            ));
        }
    }
    Ok(())
}
