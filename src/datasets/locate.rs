//! Where a data set's files are looked for, and what happens when they are not there: the
//! folders a Keras user already has them in, strata's own folder, then a download (behind the
//! `download` feature) or an error saying where to put the file.

use super::archive;
pub use super::checksum::Checksum;
use crate::error::{Error, Result};
use std::path::{Path, PathBuf};

/// Keras's canonical folder of data set files (`tf-keras-datasets`).
pub const KERAS_STORAGE: &str = "https://storage.googleapis.com/tensorflow/tf-keras-datasets";
/// Where the CIFAR archives are published (the University of Toronto).
pub const CIFAR_STORAGE: &str = "https://www.cs.toronto.edu/~kriz";
/// The environment variable naming strata's data folder (default `~/.strata/datasets`).
pub const DATA_VARIABLE: &str = "STRATA_DATA";
/// The environment variable that replaces every origin's folder with another address (a mirror,
/// or a local server in tests): the file is fetched from `$STRATA_DATASETS_URL/<file name>`.
pub const URL_VARIABLE: &str = "STRATA_DATASETS_URL";

/// One file a loader needs, as Keras's `get_file` names it.
#[derive(Clone, Copy, Debug)]
pub struct RemoteFile {
    /// Its path under a data folder, e.g. `mnist.npz` or `fashion-mnist/t10k-images-idx3-ubyte.gz`.
    pub path: &'static str,
    /// The folder it is published in (its URL is `origin/<file name>`).
    pub origin: &'static str,
    /// Keras's checksum of it.
    pub checksum: Checksum,
}

impl RemoteFile {
    /// A file of Keras's `tf-keras-datasets` folder.
    pub const fn keras(path: &'static str, checksum: Checksum) -> Self {
        RemoteFile {
            path,
            origin: KERAS_STORAGE,
            checksum,
        }
    }

    /// The file's own name, the last part of [`RemoteFile::path`].
    pub fn file_name(&self) -> &'static str {
        self.path.rsplit('/').next().unwrap_or(self.path)
    }

    /// Where it is downloaded from: `origin/<file name>`, or under `$STRATA_DATASETS_URL`.
    pub fn url(&self) -> String {
        let base = std::env::var(URL_VARIABLE).unwrap_or_else(|_| self.origin.to_string());
        format!("{}/{}", base.trim_end_matches('/'), self.file_name())
    }
}

/// An archive Keras downloads and extracts, and the folder it extracts to.
#[derive(Clone, Copy, Debug)]
pub struct RemoteArchive {
    /// The `.tar.gz` file.
    pub file: RemoteFile,
    /// The folder the archive holds, e.g. `cifar-10-batches-py`.
    pub folder: &'static str,
    /// Where Keras 3 keeps the same folder, e.g. `cifar-10-batches-py-target/cifar-10-batches-py`,
    /// and the name it gives the archive (`cifar-10-batches-py-target_archive`).
    pub keras3: (&'static str, &'static str),
}

/// The folders looked in, in order: `$KERAS_HOME/datasets`, `~/.keras/datasets`, then strata's
/// own ([`strata_dir`]).
pub fn search_dirs() -> Vec<PathBuf> {
    let mut dirs = Vec::new();
    if let Some(keras_home) = std::env::var_os("KERAS_HOME") {
        dirs.push(PathBuf::from(keras_home).join("datasets"));
    }
    if let Some(home) = home_dir() {
        dirs.push(home.join(".keras/datasets"));
    }
    dirs.push(strata_dir());
    dirs.dedup();
    dirs
}

/// strata's data folder, where downloads go: `$STRATA_DATA`, else `~/.strata/datasets`.
pub fn strata_dir() -> PathBuf {
    match std::env::var_os(DATA_VARIABLE) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => home_dir().unwrap_or_else(std::env::temp_dir).join(".strata/datasets"),
    }
}

fn home_dir() -> Option<PathBuf> {
    std::env::var_os("HOME")
        .or_else(|| std::env::var_os("USERPROFILE"))
        .filter(|h| !h.is_empty())
        .map(PathBuf::from)
}

/// The first of `relative` paths that exists in one of the [`search_dirs`].
pub fn find(relative: &[&str]) -> Option<PathBuf> {
    search_dirs()
        .iter()
        .flat_map(|dir| relative.iter().map(move |path| dir.join(path)))
        .find(|path| path.exists())
}

/// The path of `file`: found in the [`search_dirs`], else downloaded into [`strata_dir`].
pub fn get_file(file: &RemoteFile) -> Result<PathBuf> {
    if let Some(path) = find(&[file.path]) {
        return Ok(path);
    }
    fetch(file, &[file.path])
}

/// The folder `archive` extracts to: found already extracted (strata's and Keras 2's layout, or
/// Keras 3's), else extracted from the archive found or downloaded into [`strata_dir`].
pub fn get_folder(archive: &RemoteArchive) -> Result<PathBuf> {
    if let Some(folder) = find(&[archive.folder, archive.keras3.0]).filter(|p| p.is_dir()) {
        return Ok(folder);
    }
    let names = [archive.file.path, archive.keras3.1];
    let file = match find(&names) {
        Some(path) => path,
        None => fetch(&archive.file, &names)?,
    };
    archive::extract_tar_gz(&file, &strata_dir(), archive.folder)
}

/// Downloads `file` into strata's folder, or (offline, or without the `download` feature) an
/// error saying where strata looked, where to put the file, its address and checksum.
fn fetch(file: &RemoteFile, names: &[&str]) -> Result<PathBuf> {
    let target = strata_dir().join(file.path);
    match download_into(file, &target) {
        Ok(()) => Ok(target),
        Err(cause) => Err(missing(file, names, &target, &cause)),
    }
}

#[cfg(feature = "download")]
fn download_into(file: &RemoteFile, target: &Path) -> Result<()> {
    super::download::download(&file.url(), target, file.checksum, super::download::timeout()?)
}

#[cfg(not(feature = "download"))]
fn download_into(_: &RemoteFile, _: &Path) -> Result<()> {
    Err(Error::Usage(
        "strata was built without the `download` feature, so it does not download".into(),
    ))
}

/// The error for a file that is nowhere and could not be downloaded.
fn missing(file: &RemoteFile, names: &[&str], target: &Path, cause: &Error) -> Error {
    let looked: Vec<String> = search_dirs()
        .iter()
        .flat_map(|dir| names.iter().map(move |name| dir.join(name).display().to_string()))
        .collect();
    Error::file(
        target,
        format!(
            "{} is missing ({cause}); looked for {}; download {} ({}) and put it here",
            file.file_name(),
            looked.join(", "),
            file.url(),
            file.checksum.describe()
        ),
    )
}
