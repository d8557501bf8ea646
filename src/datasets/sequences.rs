//! What Keras's IMDB and Reuters loaders do to their word-rank sequences: shuffle (seed 113),
//! mark the start, shift the ranks, drop long sequences, and cut the vocabulary.

use super::shuffle::{RandomState, reorder};
use crate::error::{Error, Result};

/// The arguments of `keras.datasets.imdb.load_data` and `reuters.load_data`, with Keras's
/// defaults: all words, none skipped, no length limit, seed 113, start 1, out-of-vocabulary 2,
/// words from 3.
#[derive(Clone, Debug, PartialEq)]
pub struct SequenceOptions {
    /// Keep the `num_words` most frequent words (ids below it); others become `oov_char`.
    /// Defaults to `None`: all words (then, as in Keras, ids below the largest one).
    pub num_words: Option<usize>,
    /// Treat the ids below `skip_top` as out of vocabulary. Defaults to 0.
    pub skip_top: usize,
    /// Drop sequences of `maxlen` ids or more (after the start mark). Defaults to `None`.
    pub maxlen: Option<usize>,
    /// The shuffling seed (numpy's `RandomState`). Defaults to 113.
    pub seed: u32,
    /// The id that starts every sequence (`None`: no start mark). Defaults to 1.
    pub start_char: Option<usize>,
    /// The id that replaces words outside the vocabulary (`None`: they are dropped). Defaults
    /// to 2.
    pub oov_char: Option<usize>,
    /// Added to every word rank, so ids below it are free for padding, start and OOV. Defaults
    /// to 3.
    pub index_from: usize,
}

impl Default for SequenceOptions {
    fn default() -> Self {
        SequenceOptions {
            num_words: None,
            skip_top: 0,
            maxlen: None,
            seed: 113,
            start_char: Some(1),
            oov_char: Some(2),
            index_from: 3,
        }
    }
}

impl SequenceOptions {
    /// Sets [`SequenceOptions::num_words`].
    pub fn num_words(mut self, num_words: usize) -> Self {
        self.num_words = Some(num_words);
        self
    }

    /// Sets [`SequenceOptions::skip_top`].
    pub fn skip_top(mut self, skip_top: usize) -> Self {
        self.skip_top = skip_top;
        self
    }

    /// Sets [`SequenceOptions::maxlen`].
    pub fn maxlen(mut self, maxlen: usize) -> Self {
        self.maxlen = Some(maxlen);
        self
    }

    /// Sets [`SequenceOptions::seed`].
    pub fn seed(mut self, seed: u32) -> Self {
        self.seed = seed;
        self
    }

    /// Sets [`SequenceOptions::start_char`].
    pub fn start_char(mut self, start_char: Option<usize>) -> Self {
        self.start_char = start_char;
        self
    }

    /// Sets [`SequenceOptions::oov_char`].
    pub fn oov_char(mut self, oov_char: Option<usize>) -> Self {
        self.oov_char = oov_char;
        self
    }

    /// Sets [`SequenceOptions::index_from`].
    pub fn index_from(mut self, index_from: usize) -> Self {
        self.index_from = index_from;
        self
    }

    /// Errors for arguments that leave nothing to learn from: `num_words` or `maxlen` 0, or
    /// `skip_top` at or above `num_words` (every word would be out of vocabulary). Keras reads
    /// 0 as "no limit"; strata says so instead of guessing.
    pub fn check(&self) -> Result<()> {
        if self.num_words == Some(0) {
            return Err(Error::invalid(
                "num_words",
                0,
                "must be positive (leave it out to keep every word)",
            ));
        }
        if self.maxlen == Some(0) {
            return Err(Error::invalid(
                "maxlen",
                0,
                "must be positive (leave it out to keep every sequence)",
            ));
        }
        match self.num_words {
            Some(n) if self.skip_top >= n => Err(Error::invalid(
                "skip_top",
                self.skip_top,
                format!("must be below num_words={n}, or every word is out of vocabulary"),
            )),
            _ => Ok(()),
        }
    }

    /// The start mark and shifted ranks of one sequence.
    fn shift(&self, sequence: &[usize]) -> Vec<usize> {
        self.start_char
            .into_iter()
            .chain(sequence.iter().map(|&w| w.saturating_add(self.index_from)))
            .collect()
    }

    /// One sequence with the vocabulary cut: ids outside `skip_top..num_words` become
    /// `oov_char`, or are dropped.
    fn cut(&self, sequence: Vec<usize>, num_words: usize) -> Vec<usize> {
        let keep = |w: &usize| (self.skip_top..num_words).contains(w);
        match self.oov_char {
            Some(oov) => sequence.into_iter().map(|w| if keep(&w) { w } else { oov }).collect(),
            None => sequence.into_iter().filter(keep).collect(),
        }
    }
}

/// Sequences with their labels.
pub type Labeled = (Vec<Vec<usize>>, Vec<f32>);

/// Keras's steps after loading, on the given splits (IMDB: train and test; Reuters: everything
/// as one). `rng` is shared, as Keras shuffles one split after the other with it.
pub fn prepare(splits: Vec<Labeled>, options: &SequenceOptions, what: &str) -> Result<Vec<Labeled>> {
    options.check()?;
    let mut rng = RandomState::new(options.seed);
    let mut prepared = Vec::with_capacity(splits.len());
    for (x, y) in splits {
        if x.len() != y.len() {
            return Err(Error::Data(format!(
                "{what}: {} sequences but {} labels",
                x.len(),
                y.len()
            )));
        }
        let order = rng.permutation(x.len());
        let (x, y) = (reorder(&x, &order), reorder(&y, &order));
        let shifted = x.iter().map(|s| options.shift(s));
        let kept: Labeled = match options.maxlen {
            Some(maxlen) => shifted.zip(y).filter(|(s, _)| s.len() < maxlen).unzip(),
            None => (shifted.collect(), y),
        };
        if kept.0.is_empty() {
            return Err(Error::invalid(
                "maxlen",
                options.maxlen.unwrap_or(0),
                format!("no {what} sequence is shorter; raise it"),
            ));
        }
        prepared.push(kept);
    }
    // Keras's `max(max(x) for x in xs)`: without `num_words` the largest id bounds the
    // vocabulary, and is itself out of it (`w < num_words`).
    let num_words = options.num_words.unwrap_or_else(|| {
        prepared
            .iter()
            .flat_map(|(x, _)| x.iter().flatten())
            .copied()
            .max()
            .unwrap_or(0)
    });
    Ok(prepared
        .into_iter()
        .map(|(x, y)| (x.into_iter().map(|s| options.cut(s, num_words)).collect(), y))
        .collect())
}

/// A word index file (`imdb_word_index.json`, `reuters_word_index.json`): word → rank.
pub fn read_word_index(path: &std::path::Path) -> Result<std::collections::HashMap<String, usize>> {
    let text = crate::fs::read_text(path)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::file(path, format!("not a word index (a JSON object of word to rank): {e}")))
}
