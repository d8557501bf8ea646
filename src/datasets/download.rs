//! Downloading a data set file as Keras's `get_file` does: streamed to a temporary file beside
//! the target while its checksum is computed, checked, then renamed into place, so a partial or
//! corrupt download never looks complete.

use super::checksum::Checksum;
use crate::error::{Error, Result};
use indicatif::{ProgressBar, ProgressStyle};
use md5::Md5;
use sha2::{Digest, Sha256};
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// The environment variable setting the download time-out in seconds (default 30): how long
/// strata waits for a connection, the response, or each read of the body.
pub const TIMEOUT_VARIABLE: &str = "STRATA_DOWNLOAD_TIMEOUT";
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
/// The largest file strata downloads (CIFAR-100's archive is 169 MB).
const MAX_DOWNLOAD_BYTES: u64 = 1 << 30;

/// The time-out in force: `$STRATA_DOWNLOAD_TIMEOUT` seconds, else 30 s.
pub fn timeout() -> Result<Duration> {
    match std::env::var(TIMEOUT_VARIABLE) {
        Ok(text) => text
            .trim()
            .parse::<f64>()
            .ok()
            .filter(|s| s.is_finite() && *s > 0.0)
            .map(Duration::from_secs_f64)
            .ok_or_else(|| Error::invalid(TIMEOUT_VARIABLE, &text, "must be a positive number of seconds")),
        Err(_) => Ok(DEFAULT_TIMEOUT),
    }
}

/// Downloads `url` to `target`, checking `checksum`; waits at most `timeout` for the
/// connection, the response and each read. On any failure nothing is left at `target` (nor the
/// temporary file), and the error says why.
pub fn download(url: &str, target: &Path, checksum: Checksum, timeout: Duration) -> Result<()> {
    let folder = target.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(folder).map_err(|e| Error::file(folder, format!("cannot create the folder ({e})")))?;
    let name = target
        .file_name()
        .map_or("download".into(), |n| n.to_string_lossy().to_string());
    let partial = folder.join(format!(".{name}.part-{}", std::process::id()));
    let result = fetch_to(url, &partial, checksum, timeout).and_then(|()| {
        std::fs::rename(&partial, target)
            .map_err(|e| Error::file(target, format!("cannot move the download here ({e})")))
    });
    if result.is_err() {
        let _ = std::fs::remove_file(&partial);
    }
    result
}

/// Streams the body to `partial`, hashing it, and checks the hash.
fn fetch_to(url: &str, partial: &PathBuf, checksum: Checksum, timeout: Duration) -> Result<()> {
    let failed = |what: String| Error::Usage(format!("downloading {url} failed: {what}"));
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .timeout_connect(Some(timeout))
        .timeout_recv_response(Some(timeout))
        .timeout_per_read(Some(timeout))
        .build()
        .into();
    let response = agent.get(url).call().map_err(|e| failed(e.to_string()))?;
    let total = response.body().content_length();
    let progress = progress_bar(url, total);
    let mut reader = response
        .into_body()
        .into_with_config()
        .limit(MAX_DOWNLOAD_BYTES)
        .reader();
    let file = std::fs::File::create(partial).map_err(|e| Error::file(partial, format!("cannot create ({e})")))?;
    let mut writer = std::io::BufWriter::new(file);
    let mut hasher = Hasher::new(checksum);
    let mut buffer = vec![0u8; 1 << 16];
    loop {
        let read = reader
            .read(&mut buffer)
            .map_err(|e| failed(format!("{e}; the partial file was deleted")))?;
        if read == 0 {
            break;
        }
        hasher.update(&buffer[..read]);
        writer
            .write_all(&buffer[..read])
            .map_err(|e| Error::file(partial, format!("cannot write ({e})")))?;
        progress.inc(read as u64);
    }
    progress.finish_and_clear();
    let file = writer
        .into_inner()
        .map_err(|e| Error::file(partial, format!("cannot write ({})", e.error())))?;
    file.sync_all()
        .map_err(|e| Error::file(partial, format!("cannot flush ({e})")))?;
    hasher.verify(checksum).map_err(|actual| {
        failed(format!(
            "checksum mismatch: expected {}, the download has {actual}; the partial file was deleted",
            checksum.describe()
        ))
    })
}

/// A bar on standard error (hidden when it is not a terminal), in bytes.
fn progress_bar(url: &str, total: Option<u64>) -> ProgressBar {
    let bar = total.map_or_else(ProgressBar::new_spinner, ProgressBar::new);
    if let Ok(style) = ProgressStyle::with_template("{msg} {wide_bar} {bytes}/{total_bytes} {bytes_per_sec} {eta}") {
        bar.set_style(style);
    }
    bar.set_message(format!("Downloading {url}"));
    bar
}

/// The running hash a [`Checksum`] asks for.
enum Hasher {
    Sha256(Sha256),
    Md5(Md5),
    Unchecked,
}

impl Hasher {
    fn new(checksum: Checksum) -> Self {
        match checksum {
            Checksum::Sha256(_) => Hasher::Sha256(Sha256::new()),
            Checksum::Md5(_) => Hasher::Md5(Md5::new()),
            Checksum::Unchecked => Hasher::Unchecked,
        }
    }

    fn update(&mut self, bytes: &[u8]) {
        match self {
            Hasher::Sha256(h) => h.update(bytes),
            Hasher::Md5(h) => h.update(bytes),
            Hasher::Unchecked => {}
        }
    }

    /// `Err` with the actual hash (hex) when it is not the expected one.
    fn verify(self, checksum: Checksum) -> std::result::Result<(), String> {
        let (actual, expected) = match (self, checksum) {
            (Hasher::Sha256(h), Checksum::Sha256(hex)) => (hex_string(&h.finalize()), hex),
            (Hasher::Md5(h), Checksum::Md5(hex)) => (hex_string(&h.finalize()), hex),
            _ => return Ok(()),
        };
        if actual.eq_ignore_ascii_case(expected) {
            Ok(())
        } else {
            Err(actual)
        }
    }
}

fn hex_string(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
