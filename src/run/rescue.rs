//! Saving a trained model when its target cannot be written any more (the disk filled up, the
//! folder went away during the run): the model goes to a fallback file instead of being lost.

use crate::error::{Error, Result};
use crate::model::Model;
use std::path::{Path, PathBuf};

/// Where [`save_or_rescue`] put the model.
#[derive(Debug)]
pub enum Saved {
    /// At the path asked for.
    Target,
    /// At a fallback path, because writing the target failed with `error`.
    Rescued {
        /// The fallback file written.
        path: PathBuf,
        /// Why the target could not be written.
        error: Error,
    },
}

/// The folders a rescued model goes to, in order: the current folder, then the temporary one.
pub fn rescue_folders() -> Vec<PathBuf> {
    vec![PathBuf::from("."), std::env::temp_dir()]
}

/// Saves `model` to `target`; if that fails, to `strata-rescued-<unix time>.safetensors` in the
/// first of `folders` that takes it. An error only when every write failed, naming the target,
/// its error and each fallback tried.
pub fn save_or_rescue(model: &Model, target: &Path, folders: &[PathBuf]) -> Result<Saved> {
    let error = match model.save(target) {
        Ok(()) => return Ok(Saved::Target),
        Err(error) => error,
    };
    let mut tried = Vec::new();
    for folder in folders {
        let path = fresh_rescue_path(folder);
        match model.save(&path) {
            Ok(()) => return Ok(Saved::Rescued { path, error }),
            Err(fallback) => tried.push(format!("{} ({fallback})", path.display())),
        }
    }
    Err(Error::Usage(format!(
        "cannot save the model to {} ({error}), nor to a fallback file: {}",
        target.display(),
        if tried.is_empty() {
            "none given".into()
        } else {
            tried.join("; ")
        }
    )))
}

/// `strata-rescued-<unix time>.safetensors` in `folder`, with `-2`, `-3`, ... added when a
/// file of that name exists.
fn fresh_rescue_path(folder: &Path) -> PathBuf {
    let seconds = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let mut path = folder.join(format!("strata-rescued-{seconds}.safetensors"));
    let mut n = 2;
    while path.exists() {
        path = folder.join(format!("strata-rescued-{seconds}-{n}.safetensors"));
        n += 1;
    }
    path
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::layers::{Dense, Input};
    use crate::model::Sequential;

    fn small_model() -> Model {
        let mut model = Sequential::new();
        model.add(Input::new(&[3])).add(Dense::new(2));
        model.compile(crate::optimizers::Sgd::new(0.1), "mse", &[]).unwrap();
        model
    }

    #[test]
    fn a_model_whose_target_cannot_be_written_is_saved_to_a_fallback_file() {
        let dir = std::env::temp_dir().join(format!("strata-rescue-{}", crate::fs::test_run_id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(dir.join("fallback")).unwrap();
        // The target's "folder" is a file: the save fails whoever runs the test (root too).
        std::fs::write(dir.join("plain"), b"x").unwrap();
        let model = small_model();
        let target = dir.join("plain/model.safetensors");
        let missing = dir.join("missing");
        let saved = save_or_rescue(&model, &target, &[missing.clone(), dir.join("fallback")]).unwrap();
        let Saved::Rescued { path, error } = saved else {
            panic!("the target cannot be written")
        };
        assert!(path.starts_with(dir.join("fallback")), "{}", path.display());
        assert!(error.to_string().contains("model.safetensors"), "{error}");
        assert!(crate::io::load_model(&path).is_ok());
        let second = save_or_rescue(&model, &target, &[dir.join("fallback")]).unwrap();
        assert!(
            matches!(second, Saved::Rescued { path: p, .. } if p != path),
            "a second rescue keeps the first"
        );
        let lost = save_or_rescue(&model, &target, &[missing]).unwrap_err().to_string();
        assert!(
            lost.contains("plain/model.safetensors") && lost.contains("missing"),
            "{lost}"
        );
        assert!(matches!(
            save_or_rescue(&model, &dir.join("ok.safetensors"), &[]),
            Ok(Saved::Target)
        ));
    }
}
