//! Text to integer ids and back, as `keras.preprocessing.text.Tokenizer` does it.

use crate::error::{Error, Result};
use std::collections::HashMap;

/// Keras's default `filters`: punctuation, tab and newline, removed from words.
pub const DEFAULT_FILTERS: &str = "!\"#$%&()*+,-./:;<=>?@[\\]^_`{|}~\t\n";

/// How often a token was seen while fitting.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct TokenCount {
    pub(crate) token: String,
    /// Occurrences in every text fitted.
    pub(crate) count: usize,
    /// Texts it occurs in (Keras's `word_docs`).
    pub(crate) documents: usize,
}

/// Splits texts into words (or characters) and numbers them, with Keras's names and behaviour:
///
/// - `fit_on_texts` counts tokens; ids start at 1 (0 is left for padding) in order of decreasing
///   frequency, ties in order of first appearance; an `oov_token` takes id 1;
/// - `texts_to_sequences` maps texts to ids, dropping unknown tokens (or giving them the
///   `oov_token`'s id) and, with `num_words`, tokens whose id is `num_words` or more;
/// - word level: lower-cased (`lower`), `filters` characters replaced by `split`, then split on
///   `split`; character level (`char_level`): every character (after lower-casing) is a token and
///   `filters` are not applied, as in Keras.
///
/// [`Tokenizer::encode`] and [`Tokenizer::decode`] are strict versions for one text: a token
/// outside the vocabulary is an error rather than dropped.
///
/// One difference from Keras: an `oov_token` that also occurs in the texts keeps id 1 (Keras
/// gives it a second id and leaves 1 unused).
///
/// ```
/// use strata::data::text::Tokenizer;
/// let mut tokenizer = Tokenizer::new();
/// tokenizer.fit_on_texts(&["the cat sat", "the dog"]).unwrap();
/// assert_eq!(tokenizer.word_index()["the"], 1);
/// assert_eq!(tokenizer.texts_to_sequences(&["the dog sat"]).unwrap(), vec![vec![1, 4, 3]]);
/// ```
#[derive(Clone, Debug, PartialEq)]
pub struct Tokenizer {
    /// Keep only the `num_words - 1` most frequent tokens when converting (ids below
    /// `num_words`); `None` keeps all.
    pub num_words: Option<usize>,
    /// Characters removed from words (replaced by `split`); unused at character level.
    pub filters: String,
    /// Lower-case texts first.
    pub lower: bool,
    /// Separator between words.
    pub split: String,
    /// Every character is a token.
    pub char_level: bool,
    /// A token standing for every token outside the vocabulary; `None` drops them.
    pub oov_token: Option<String>,
    pub(crate) document_count: usize,
    /// Every token seen, in order of first appearance.
    pub(crate) counts: Vec<TokenCount>,
    /// Position of each token in `counts`.
    pub(crate) count_position: HashMap<String, usize>,
    pub(crate) word_index: HashMap<String, usize>,
    /// The token of id `i` at `index_word[i - 1]`.
    pub(crate) index_word: Vec<String>,
}

impl Default for Tokenizer {
    fn default() -> Self {
        Tokenizer::new()
    }
}

impl Tokenizer {
    /// An empty word-level tokenizer with Keras's defaults: all words, [`DEFAULT_FILTERS`],
    /// lower-casing, split on `" "`, no OOV token.
    pub fn new() -> Self {
        Tokenizer {
            num_words: None,
            filters: DEFAULT_FILTERS.to_string(),
            lower: true,
            split: " ".to_string(),
            char_level: false,
            oov_token: None,
            document_count: 0,
            counts: Vec::new(),
            count_position: HashMap::new(),
            word_index: HashMap::new(),
            index_word: Vec::new(),
        }
    }

    /// Keeps the `num_words - 1` most frequent tokens when converting.
    pub fn num_words(mut self, num_words: usize) -> Self {
        self.num_words = Some(num_words);
        self
    }

    /// Sets the characters removed from words.
    pub fn filters(mut self, filters: &str) -> Self {
        self.filters = filters.to_string();
        self
    }

    /// Turns lower-casing on or off.
    pub fn lower(mut self, lower: bool) -> Self {
        self.lower = lower;
        self
    }

    /// Sets the word separator.
    pub fn split(mut self, split: &str) -> Self {
        self.split = split.to_string();
        self
    }

    /// Makes every character a token.
    pub fn char_level(mut self, char_level: bool) -> Self {
        self.char_level = char_level;
        self
    }

    /// Sets the token that stands for tokens outside the vocabulary (id 1 after fitting).
    pub fn oov_token(mut self, oov_token: &str) -> Self {
        self.oov_token = Some(oov_token.to_string());
        self
    }

    /// Token → id, 1-based (Keras's `word_index`); holds every token fitted, whatever
    /// `num_words` is.
    pub fn word_index(&self) -> &HashMap<String, usize> {
        &self.word_index
    }

    /// The token of an id (Keras's `index_word[id]`).
    pub fn index_word(&self, id: usize) -> Option<&str> {
        id.checked_sub(1)
            .and_then(|i| self.index_word.get(i))
            .map(String::as_str)
    }

    /// Every token fitted with its count, in order of first appearance (Keras's `word_counts`).
    pub fn word_counts(&self) -> impl Iterator<Item = (&str, usize)> {
        self.counts.iter().map(|c| (c.token.as_str(), c.count))
    }

    /// Number of texts fitted.
    pub fn document_count(&self) -> usize {
        self.document_count
    }

    /// One more than the largest id the conversions can produce: the `input_dim` of an
    /// `Embedding`, or the number of classes of a next-token softmax (id 0, padding, included).
    pub fn vocabulary_size(&self) -> usize {
        let all = self.index_word.len() + 1;
        self.num_words.map_or(all, |limit| limit.min(all))
    }

    /// The tokens of one text, as the tokenizer splits it.
    pub fn tokenize(&self, text: &str) -> Result<Vec<String>> {
        self.check_settings()?;
        let text = if self.lower {
            text.to_lowercase()
        } else {
            text.to_string()
        };
        if self.char_level {
            return Ok(text.chars().map(String::from).collect());
        }
        let mut spaced = String::with_capacity(text.len());
        for c in text.chars() {
            if self.filters.contains(c) {
                spaced.push_str(&self.split);
            } else {
                spaced.push(c);
            }
        }
        Ok(spaced
            .split(self.split.as_str())
            .filter(|word| !word.is_empty())
            .map(String::from)
            .collect())
    }

    fn check_settings(&self) -> Result<()> {
        if !self.char_level && self.split.is_empty() {
            return Err(Error::invalid(
                "split",
                "\"\"",
                "must not be empty (words are split on it)",
            ));
        }
        if self.num_words == Some(0) {
            return Err(Error::invalid(
                "num_words",
                0,
                "must be ≥ 1 (leave it unset to keep every word)",
            ));
        }
        Ok(())
    }

    /// Counts the tokens of `texts` (adding to earlier fits) and renumbers the vocabulary. A call
    /// whose texts hold no token at all (none given, or all empty or filtered away) is an error
    /// and changes nothing.
    pub fn fit_on_texts<S: AsRef<str>>(&mut self, texts: &[S]) -> Result<()> {
        let tokenized = texts
            .iter()
            .map(|text| self.tokenize(text.as_ref()))
            .collect::<Result<Vec<_>>>()?;
        if tokenized.iter().all(Vec::is_empty) {
            return Err(Error::Data(format!(
                "fit_on_texts got {} text(s) holding no tokens (empty, or only filtered characters)",
                texts.len()
            )));
        }
        // The number of the last text each token occurred in, so each text counts once.
        let mut last_text = vec![0; self.counts.len()];
        for (number, tokens) in (1..).zip(tokenized) {
            self.document_count += 1;
            for token in tokens {
                let position = match self.count_position.get(&token) {
                    Some(&position) => position,
                    None => {
                        self.count_position.insert(token.clone(), self.counts.len());
                        self.counts.push(TokenCount {
                            token,
                            count: 0,
                            documents: 0,
                        });
                        last_text.push(0);
                        self.counts.len() - 1
                    }
                };
                self.counts[position].count += 1;
                if last_text[position] != number {
                    last_text[position] = number;
                    self.counts[position].documents += 1;
                }
            }
        }
        self.renumber();
        Ok(())
    }

    /// Ids by decreasing count; the sort is stable, so ties keep their order of first appearance.
    fn renumber(&mut self) {
        let mut order: Vec<usize> = (0..self.counts.len()).collect();
        order.sort_by(|&a, &b| self.counts[b].count.cmp(&self.counts[a].count));
        self.index_word = self.oov_token.iter().cloned().collect();
        let oov = self.oov_token.as_deref();
        self.index_word.extend(
            order
                .iter()
                .map(|&i| &self.counts[i].token)
                .filter(|t| Some(t.as_str()) != oov)
                .cloned(),
        );
        self.word_index = self
            .index_word
            .iter()
            .enumerate()
            .map(|(i, token)| (token.clone(), i + 1))
            .collect();
    }

    fn check_fitted(&self) -> Result<()> {
        if self.index_word.is_empty() {
            return Err(Error::Usage(
                "the tokenizer has no vocabulary: call fit_on_texts first (or load one with from_json)".into(),
            ));
        }
        Ok(())
    }

    /// The id of the OOV token, when one is set and in the vocabulary.
    fn oov_id(&self) -> Option<usize> {
        self.oov_token
            .as_ref()
            .and_then(|token| self.word_index.get(token).copied())
    }

    /// The id `texts_to_sequences` writes for a token: its own, the OOV token's, or none.
    fn convert(&self, token: &str) -> Option<usize> {
        match self.word_index.get(token) {
            Some(&id) if self.num_words.is_none_or(|limit| id < limit) => Some(id),
            _ => self.oov_id(),
        }
    }

    /// Each text as ids (Keras's `texts_to_sequences`): unknown tokens, and with `num_words`
    /// those with an id ≥ `num_words`, become the OOV token's id, or are dropped without one.
    pub fn texts_to_sequences<S: AsRef<str>>(&self, texts: &[S]) -> Result<Vec<Vec<usize>>> {
        self.check_fitted()?;
        texts
            .iter()
            .map(|text| {
                Ok(self
                    .tokenize(text.as_ref())?
                    .iter()
                    .filter_map(|t| self.convert(t))
                    .collect())
            })
            .collect()
    }

    /// Each sequence of ids as text, tokens joined by a space at word and at character level
    /// (Keras's `sequences_to_texts`); ids outside the vocabulary (0 included), and with
    /// `num_words` ids ≥ `num_words`, become the OOV token or are dropped without one.
    pub fn sequences_to_texts<S: AsRef<[usize]>>(&self, sequences: &[S]) -> Vec<String> {
        let oov = self.oov_id().and_then(|id| self.index_word(id));
        sequences
            .iter()
            .map(|ids| {
                let words: Vec<&str> = ids
                    .as_ref()
                    .iter()
                    .filter_map(|&id| match self.index_word(id) {
                        Some(word) if self.num_words.is_none_or(|limit| id < limit) => Some(word),
                        _ => oov,
                    })
                    .collect();
                words.join(" ")
            })
            .collect()
    }

    /// One text as ids, strictly: a token outside the vocabulary (or, with `num_words`, with an
    /// id ≥ `num_words`) takes the OOV token's id, and without an OOV token is an error naming
    /// every such token.
    pub fn encode(&self, text: &str) -> Result<Vec<usize>> {
        self.check_fitted()?;
        let tokens = self.tokenize(text)?;
        let mut unknown: Vec<&str> = Vec::new();
        let ids = tokens
            .iter()
            .filter_map(|token| {
                let id = self.convert(token);
                if id.is_none() && !unknown.contains(&token.as_str()) {
                    unknown.push(token);
                }
                id
            })
            .collect();
        if unknown.is_empty() {
            return Ok(ids);
        }
        let kind = if self.char_level { "character" } else { "word" };
        let listed: Vec<String> = unknown.iter().take(20).map(|t| format!("{t:?}")).collect();
        let more = unknown.len().saturating_sub(20);
        Err(Error::Data(format!(
            "{} {kind}(s) not in the tokenizer's vocabulary and no oov_token set: {}{}",
            unknown.len(),
            listed.join(", "),
            if more > 0 {
                format!(" and {more} more")
            } else {
                String::new()
            }
        )))
    }

    /// Ids back to text, strictly: tokens joined by nothing at character level and by `split`
    /// at word level; 0 (padding) is skipped, an id outside the vocabulary (or ≥ `num_words`)
    /// becomes the OOV token, and without one is an error.
    pub fn decode(&self, ids: &[usize]) -> Result<String> {
        self.check_fitted()?;
        let oov = self.oov_id().and_then(|id| self.index_word(id));
        let mut tokens = Vec::with_capacity(ids.len());
        for &id in ids.iter().filter(|&&id| id != 0) {
            let token = match self.index_word(id) {
                Some(token) if self.num_words.is_none_or(|limit| id < limit) => Some(token),
                _ => oov,
            };
            tokens.push(token.ok_or_else(|| {
                Error::invalid(
                    "ids",
                    id,
                    format!("not in the vocabulary (ids 1 to {})", self.vocabulary_size() - 1),
                )
            })?);
        }
        Ok(tokens.join(if self.char_level { "" } else { &self.split }))
    }
}
