//! The command line's text models: a character-level dataset from the bundled play (or
//! `--data FILE.txt`), perplexity after each epoch, and `strata generate`.

use super::Dataset;
pub(super) use crate::data::text::check_vocabulary;
use crate::data::text::{Tokenizer, generate_text, load_shakespeare, load_text, sliding_windows};
use crate::error::{Error, Result};
use crate::io::config::ModelFile;
use crate::model::{Callback, Control, EpochLogs, Model};
use crate::rng::Rng;
use std::path::{Path, PathBuf};

/// The attachment key under which a text model keeps its tokenizer.
pub(super) const TOKENIZER: &str = "tokenizer";
/// Windows start every this many characters (as Keras's text-generation example does).
const STRIDE: usize = 3;
/// The last tenth of the windows are the test set (the end of the text, unseen in training).
const TEST_FRACTION: f64 = 0.1;

/// Whether the model trains on text: `data = "shakespeare"` in its file, or a `.txt` file
/// given with `--data`.
pub(super) fn text_source(spec: &ModelFile, data: Option<&Path>) -> Option<Option<PathBuf>> {
    match data {
        Some(path) if path.extension().is_some_and(|e| e == "txt") => Some(Some(path.to_path_buf())),
        Some(_) => None,
        None => (spec.data.as_deref() == Some("shakespeare")).then_some(None),
    }
}

/// Next-character windows of the text (the bundled *Hamlet* when `path` is `None`), as wide as
/// the model's input, with the character tokenizer fitted on it.
pub(super) fn text_dataset(spec: &ModelFile, path: Option<&Path>) -> Result<(Dataset, Tokenizer)> {
    let text = match path {
        Some(path) => load_text(path)?,
        None => load_shakespeare()?,
    };
    let window = match spec.model.layers().first().and_then(|l| l.declared_input_shape()) {
        Some(&[window]) => window,
        other => {
            return Err(Error::Usage(format!(
                "model '{}' is a text model but takes {other:?}: its input must be (window,) character ids",
                spec.name
            )));
        }
    };
    let mut tokenizer = Tokenizer::new().char_level(true).lower(false);
    tokenizer.fit_on_texts(&[&text])?;
    let ids = tokenizer.encode(&text)?;
    let (x, y) = sliding_windows(&ids, window, STRIDE)?;
    let keep = ((1.0 - TEST_FRACTION) * x.rows() as f64) as usize;
    let dataset = Dataset {
        x_train: x.slice_rows(0, keep),
        y_train: y.slice_rows(0, keep),
        test: Some((x.slice_rows(keep, x.rows()), y.slice_rows(keep, y.rows()))),
    };
    Ok((dataset, tokenizer))
}

/// Prints `perplexity` (and `val_perplexity`), `exp(loss)`, after each epoch's line.
pub(super) struct PerplexityLogger {
    pub(super) verbose: u8,
}

impl Callback for PerplexityLogger {
    fn on_epoch_end(&mut self, _model: &mut Model, logs: &EpochLogs) -> Result<Control> {
        if self.verbose > 0 {
            let mut line = format!("perplexity: {:.3}", logs.loss.exp());
            if let Some(val) = logs.val_loss {
                line += &format!(" - val_perplexity: {:.3}", val.exp());
            }
            println!("{line}");
        }
        Ok(Control::Continue)
    }
}

/// `strata generate`: text from a model trained on text.
pub(super) fn generate(model: &Path, prompt: &str, length: usize, temperature: f32, seed: u64) -> Result<()> {
    let mut model = crate::io::load_model(model)?;
    let json = model.attachment(TOKENIZER).ok_or_else(|| {
        Error::Usage(
            "the model file has no tokenizer: train it on text (strata train --model char_rnn --save FILE)".into(),
        )
    })?;
    let tokenizer = Tokenizer::from_json(json)?;
    let text = generate_text(&mut model, &tokenizer, prompt, length, temperature, &mut Rng::new(seed))?;
    println!("{text}");
    Ok(())
}
