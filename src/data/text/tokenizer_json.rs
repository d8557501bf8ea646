//! A [`Tokenizer`] as JSON, in the shape Keras's `Tokenizer.to_json()` writes and
//! `keras.preprocessing.text.tokenizer_from_json` reads: `{"class_name": "Tokenizer",
//! "config": {...}}`, the five tables (`word_counts`, `word_docs`, `index_docs`, `index_word`,
//! `word_index`) each a JSON object encoded as a string.

use super::tokenizer::{DEFAULT_FILTERS, TokenCount, Tokenizer};
use crate::error::{Error, Result};
use serde::de::{Deserialize, Deserializer, MapAccess, Visitor};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::fmt;

impl Tokenizer {
    /// The settings and vocabulary as Keras's `Tokenizer.to_json()` writes them, so
    /// `tokenizer_from_json` in Python reads it too.
    pub fn to_json(&self) -> String {
        let counts = self.counts.iter();
        let ids = (1..=self.index_word.len()).zip(&self.index_word);
        let id_of = |token: &str| self.word_index.get(token).copied();
        let config = json!({
            "num_words": self.num_words,
            "filters": self.filters,
            "lower": self.lower,
            "split": self.split,
            "char_level": self.char_level,
            "oov_token": self.oov_token,
            "document_count": self.document_count,
            "word_counts": python_dict(counts.clone().map(|c| (c.token.clone(), json!(c.count)))),
            "word_docs": python_dict(counts.clone().map(|c| (c.token.clone(), json!(c.documents)))),
            "index_docs": python_dict(
                counts.filter_map(|c| Some((id_of(&c.token)?.to_string(), json!(c.documents))))
            ),
            "index_word": python_dict(ids.clone().map(|(id, token)| (id.to_string(), json!(token)))),
            "word_index": python_dict(ids.map(|(id, token)| (token.clone(), json!(id)))),
        });
        json!({"class_name": "Tokenizer", "config": config}).to_string()
    }

    /// A tokenizer from [`Tokenizer::to_json`]'s output or Keras's `Tokenizer.to_json()`. The
    /// ids come from `word_index`, which must number its tokens 1 to n, each once.
    pub fn from_json(text: &str) -> Result<Tokenizer> {
        let value: Value =
            serde_json::from_str(text).map_err(|e| Error::Data(format!("tokenizer JSON does not parse: {e}")))?;
        if let Some(class_name) = value.get("class_name").filter(|c| c.as_str() != Some("Tokenizer")) {
            return Err(Error::Data(format!(
                "tokenizer JSON has class_name {class_name}, expected \"Tokenizer\""
            )));
        }
        let config = value.get("config").unwrap_or(&value);
        let mut tokenizer = read_settings(config)?;
        tokenizer.document_count = read_count(config, "document_count")?.unwrap_or(0);

        let word_index =
            entries(config, "word_index")?.ok_or_else(|| Error::Data("tokenizer JSON has no word_index".into()))?;
        let mut index_word: Vec<Option<String>> = vec![None; word_index.len()];
        for (token, id) in word_index {
            let id = count_value("word_index", &token, &id)?;
            match index_word.get_mut(id.wrapping_sub(1)) {
                Some(slot @ None) => *slot = Some(token),
                _ => {
                    return Err(Error::Data(format!(
                        "tokenizer JSON: word_index gives {token:?} id {id}; ids must run from 1 to {}, each once",
                        index_word.len()
                    )));
                }
            }
        }
        tokenizer.index_word = index_word.into_iter().flatten().collect();
        tokenizer.word_index = (1..)
            .zip(&tokenizer.index_word)
            .map(|(id, t)| (t.clone(), id))
            .collect();
        if let Some(oov) = tokenizer
            .oov_token
            .as_ref()
            .filter(|t| !tokenizer.word_index.contains_key(*t))
        {
            return Err(Error::Data(format!(
                "tokenizer JSON: oov_token {oov:?} is not in word_index"
            )));
        }

        let documents: HashMap<String, Value> = entries(config, "word_docs")?.unwrap_or_default().into_iter().collect();
        for (token, count) in entries(config, "word_counts")?.unwrap_or_default() {
            let count = count_value("word_counts", &token, &count)?;
            let documents = match documents.get(&token) {
                Some(value) => count_value("word_docs", &token, value)?,
                None => 0,
            };
            tokenizer.count_position.insert(token.clone(), tokenizer.counts.len());
            tokenizer.counts.push(TokenCount {
                token,
                count,
                documents,
            });
        }
        Ok(tokenizer)
    }
}

/// The settings, with Keras's defaults for those missing.
fn read_settings(config: &Value) -> Result<Tokenizer> {
    let text = |key: &str, default: &str| -> Result<String> {
        match config.get(key) {
            None | Some(Value::Null) => Ok(default.to_string()),
            Some(Value::String(text)) => Ok(text.clone()),
            Some(other) => Err(Error::invalid(key, other, "must be a string")),
        }
    };
    let flag = |key: &str, default: bool| -> Result<bool> {
        match config.get(key) {
            None | Some(Value::Null) => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| Error::invalid(key, value, "must be true or false")),
        }
    };
    let oov_token = match config.get("oov_token") {
        None | Some(Value::Null) => None,
        Some(Value::String(token)) => Some(token.clone()),
        Some(other) => return Err(Error::invalid("oov_token", other, "must be a string or null")),
    };
    Ok(Tokenizer {
        num_words: read_count(config, "num_words")?,
        filters: text("filters", DEFAULT_FILTERS)?,
        lower: flag("lower", true)?,
        split: text("split", " ")?,
        char_level: flag("char_level", false)?,
        oov_token,
        ..Tokenizer::new()
    })
}

/// A non-negative integer setting; missing or null is `None`.
fn read_count(config: &Value, key: &str) -> Result<Option<usize>> {
    match config.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(value) => value
            .as_u64()
            .map(|n| Some(n as usize))
            .ok_or_else(|| Error::invalid(key, value, "must be a whole number ≥ 0 or null")),
    }
}

/// A table's value for one token: a whole number ≥ 0.
fn count_value(table: &str, token: &str, value: &Value) -> Result<usize> {
    value.as_u64().map(|n| n as usize).ok_or_else(|| {
        Error::Data(format!(
            "tokenizer JSON: {table}[{token:?}] is {value}, not a whole number"
        ))
    })
}

/// A table in file order: a JSON object, or (as Keras writes it) a string holding one.
fn entries(config: &Value, key: &str) -> Result<Option<Vec<(String, Value)>>> {
    let text = match config.get(key) {
        None | Some(Value::Null) => return Ok(None),
        Some(Value::String(text)) => text.clone(),
        Some(object @ Value::Object(_)) => object.to_string(),
        Some(other) => {
            return Err(Error::invalid(
                key,
                other,
                "must be a JSON object or a string holding one",
            ));
        }
    };
    serde_json::from_str::<Entries>(&text)
        .map(|entries| Some(entries.0))
        .map_err(|e| Error::Data(format!("tokenizer JSON: {key} is not a JSON object: {e}")))
}

/// A JSON object's entries in the order they are written (serde_json's own map sorts them, and
/// `word_counts`' order decides ties when the tokenizer is fitted again).
struct Entries(Vec<(String, Value)>);

impl<'de> Deserialize<'de> for Entries {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        struct EntriesVisitor;
        impl<'de> Visitor<'de> for EntriesVisitor {
            type Value = Entries;

            fn expecting(&self, formatter: &mut fmt::Formatter) -> fmt::Result {
                formatter.write_str("a JSON object")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<Entries, A::Error> {
                let mut entries = Vec::new();
                while let Some(entry) = map.next_entry::<String, Value>()? {
                    entries.push(entry);
                }
                Ok(Entries(entries))
            }
        }
        deserializer.deserialize_map(EntriesVisitor)
    }
}

/// An object as Python's `json.dumps` writes it (`{"a": 1, "b": 2}`), keeping the given order.
fn python_dict(entries: impl Iterator<Item = (String, Value)>) -> String {
    let body: Vec<String> = entries
        .map(|(key, value)| format!("{}: {value}", Value::String(key)))
        .collect();
    format!("{{{}}}", body.join(", "))
}
