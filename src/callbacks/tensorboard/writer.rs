//! An event file being written: `events.out.tfevents.<time>.<host>.<pid>.<n>.v2`, created new
//! (never over another file), appended to record by record and flushed when asked, so
//! TensorBoard can read it while it grows.

use super::proto::{Event, Kind, Summary, Value, What};
use super::records::frame;
use crate::error::{Error, Result};
use prost::Message;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Event files this process has opened, so two in the same second get different names.
static OPENED: AtomicU64 = AtomicU64::new(0);

/// Appends events to one file.
#[derive(Debug)]
pub(crate) struct EventWriter {
    path: PathBuf,
    file: std::io::BufWriter<std::fs::File>,
}

impl EventWriter {
    /// A new event file in `folder` (created with its parents), starting with the file-version
    /// event TensorBoard expects first.
    pub(crate) fn create(folder: &Path) -> Result<Self> {
        std::fs::create_dir_all(folder).map_err(|e| Error::file(folder, format!("cannot create the folder ({e})")))?;
        let name = format!(
            "events.out.tfevents.{}.{}.{}.{}.v2",
            now().floor() as u64,
            host_name(),
            std::process::id(),
            OPENED.fetch_add(1, Ordering::Relaxed)
        );
        let path = folder.join(name);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| Error::file(&path, format!("cannot create the event file ({e})")))?;
        let mut writer = EventWriter {
            path,
            file: std::io::BufWriter::new(file),
        };
        writer.write_event(Event {
            wall_time: now(),
            step: 0,
            what: Some(What::FileVersion("brain.Event:2".into())),
        })?;
        writer.flush()?;
        Ok(writer)
    }

    /// Appends one event of `values` at `step` (buffered until [`EventWriter::flush`]).
    pub(crate) fn write(&mut self, step: u64, values: Vec<Value>) -> Result<()> {
        self.write_event(Event {
            wall_time: now(),
            step: step as i64,
            what: Some(What::Summary(Summary { value: values })),
        })
    }

    /// Hands what is written so far to the operating system, where TensorBoard reads it.
    pub(crate) fn flush(&mut self) -> Result<()> {
        self.file
            .flush()
            .map_err(|e| Error::file(&self.path, format!("cannot write the event file ({e})")))
    }

    fn write_event(&mut self, event: Event) -> Result<()> {
        self.file
            .write_all(&frame(&event.encode_to_vec()))
            .map_err(|e| Error::file(&self.path, format!("cannot write the event file ({e})")))
    }
}

/// A tagged value.
pub(crate) fn value_of(tag: &str, kind: Kind) -> Value {
    Value {
        tag: tag.to_string(),
        kind: Some(kind),
    }
}

/// Seconds since the Unix epoch.
fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

/// This machine's name, as TensorFlow puts it in event file names (`localhost` where it cannot
/// be read), reduced to characters safe in a file name.
fn host_name() -> String {
    let name = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String = name
        .trim()
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
        .collect();
    if name.is_empty() { "localhost".into() } else { name }
}
