//! Data folders for the data set tests: the generated files of `tests/fixtures/datasets` (see
//! `tools/make_dataset_fixtures.py`) copied where strata looks, one test at a time (the search
//! order reads environment variables, which a test process shares).

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::{Mutex, MutexGuard};

static ENVIRONMENT: Mutex<()> = Mutex::new(());

/// The fixture folder.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/datasets")
}

/// A home, a Keras home and a strata folder of their own, empty, for one test; the environment
/// points at them until the guard is dropped.
pub struct DataFolders {
    /// `$HOME`.
    pub home: PathBuf,
    /// `$KERAS_HOME/datasets`.
    pub keras: PathBuf,
    /// `$STRATA_DATA`.
    pub strata: PathBuf,
    _lock: MutexGuard<'static, ()>,
}

impl DataFolders {
    /// Empty folders, the environment pointing at them (no download address override).
    pub fn new(name: &str) -> Self {
        let lock = ENVIRONMENT.lock().unwrap_or_else(|p| p.into_inner());
        let root = std::env::temp_dir().join(format!("strata-datasets-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let (home, keras_home, strata) = (root.join("home"), root.join("keras"), root.join("strata"));
        for dir in [&home, &keras_home, &strata] {
            std::fs::create_dir_all(dir).unwrap();
        }
        // SAFETY (edition 2024 marks these unsafe): the mutex above serialises every test of this
        // process that reads or writes these variables.
        unsafe {
            std::env::set_var("HOME", &home);
            std::env::set_var("KERAS_HOME", &keras_home);
            std::env::set_var("STRATA_DATA", &strata);
            std::env::remove_var("STRATA_DATASETS_URL");
        }
        DataFolders {
            home,
            keras: keras_home.join("datasets"),
            strata,
            _lock: lock,
        }
    }

    /// Copies the fixture `name` (a file or folder) into `dir`.
    pub fn copy(&self, name: &str, dir: &Path) {
        copy_tree(&fixtures().join(name), &dir.join(name));
    }
}

fn copy_tree(from: &Path, to: &Path) {
    if from.is_dir() {
        std::fs::create_dir_all(to).unwrap();
        for entry in std::fs::read_dir(from).unwrap() {
            let entry = entry.unwrap();
            copy_tree(&entry.path(), &to.join(entry.file_name()));
        }
    } else {
        std::fs::create_dir_all(to.parent().unwrap()).unwrap();
        std::fs::copy(from, to).unwrap();
    }
}
