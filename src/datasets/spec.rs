//! A data set named in text, as the command line's `--data` takes it:
//! `cifar10`, `cifar100:label_mode=coarse`, `imdb:num_words=10000,maxlen=200`.

use super::{SequenceOptions, SequenceSplit, Split};
use super::{boston_housing, cifar10, cifar100, fashion_mnist, imdb, mnist, reuters};
use crate::error::{Error, Result};

/// The data sets, and the arguments each takes (Keras's names).
const DATASETS: &[(&str, &[&str])] = &[
    ("mnist", &[]),
    ("fashion_mnist", &[]),
    ("cifar10", &[]),
    ("cifar100", &["label_mode"]),
    ("imdb", SEQUENCE_ARGS),
    ("reuters", REUTERS_ARGS),
    ("boston_housing", &["test_split", "seed"]),
];
const SEQUENCE_ARGS: &[&str] = &[
    "num_words",
    "skip_top",
    "maxlen",
    "seed",
    "start_char",
    "oov_char",
    "index_from",
];
const REUTERS_ARGS: &[&str] = &[
    "num_words",
    "skip_top",
    "maxlen",
    "seed",
    "start_char",
    "oov_char",
    "index_from",
    "test_split",
];

/// A data set and its arguments, checked: `name:key=value,key=value`.
#[derive(Clone, Debug, PartialEq)]
pub struct DatasetSpec {
    name: &'static str,
    args: Vec<(String, String)>,
}

/// What a data set holds.
pub enum Loaded {
    /// Images or table rows, with labels or targets.
    Tensors(Split),
    /// Sequences of word ids, with labels.
    Sequences(SequenceSplit),
}

impl DatasetSpec {
    /// The names [`DatasetSpec::parse`] knows, comma-separated.
    pub fn names() -> String {
        DATASETS.iter().map(|(n, _)| *n).collect::<Vec<_>>().join(", ")
    }

    /// Whether `text` names a data set (`cifar10`, `imdb:...`), rather than a file or folder.
    pub fn names_a_dataset(text: &str) -> bool {
        let name = text.split(':').next().unwrap_or_default();
        DATASETS.iter().any(|(n, _)| *n == name)
    }

    /// Parses `name[:key=value,...]`; an unknown name or argument, or a value its argument
    /// cannot take, is an error listing what exists.
    pub fn parse(text: &str) -> Result<Self> {
        let (name, rest) = text.split_once(':').unwrap_or((text, ""));
        let &(name, known) = DATASETS
            .iter()
            .find(|(n, _)| *n == name)
            .ok_or_else(|| Error::UnknownName {
                kind: "data set",
                name: name.to_string(),
                valid: Self::names(),
            })?;
        let mut args = Vec::new();
        for item in rest.split(',').filter(|s| !s.trim().is_empty()) {
            let (key, value) = item.split_once('=').ok_or_else(|| {
                Error::invalid(
                    "--data",
                    text,
                    format!("'{item}' is not KEY=VALUE ({name} takes {})", list(known)),
                )
            })?;
            let key = key.trim();
            if !known.contains(&key) {
                return Err(Error::invalid(
                    "--data",
                    text,
                    format!("{name} takes no argument '{key}'; it takes {}", list(known)),
                ));
            }
            args.push((key.to_string(), value.trim().to_string()));
        }
        let spec = DatasetSpec { name, args };
        spec.check()?;
        Ok(spec)
    }

    /// The data set's name.
    pub fn name(&self) -> &'static str {
        self.name
    }

    /// The spec as text, as [`DatasetSpec::parse`] reads it back.
    pub fn to_text(&self) -> String {
        let args: Vec<String> = self.args.iter().map(|(k, v)| format!("{k}={v}")).collect();
        match args.is_empty() {
            true => self.name.to_string(),
            false => format!("{}:{}", self.name, args.join(",")),
        }
    }

    /// Loads the data set with its arguments (Keras's defaults for the others).
    pub fn load(&self) -> Result<Loaded> {
        Ok(match self.name {
            "mnist" => Loaded::Tensors(mnist::load_data()?),
            "fashion_mnist" => Loaded::Tensors(fashion_mnist::load_data()?),
            "cifar10" => Loaded::Tensors(cifar10::load_data()?),
            "cifar100" => Loaded::Tensors(cifar100::load_data(self.get("label_mode").unwrap_or("fine"))?),
            "imdb" => Loaded::Sequences(imdb::load_data(&self.sequence_options()?)?),
            "reuters" => Loaded::Sequences(reuters::load_data(&self.sequence_options()?, self.test_split()?)?),
            _ => Loaded::Tensors(boston_housing::load_data(
                self.test_split()?,
                self.number("seed")?.unwrap_or(113),
            )?),
        })
    }

    /// Checks every value without loading anything.
    fn check(&self) -> Result<()> {
        match self.name {
            "cifar100" => match self.get("label_mode") {
                None | Some("fine" | "coarse") => Ok(()),
                Some(other) => Err(Error::invalid(
                    "label_mode",
                    other,
                    "must be one of \"fine\", \"coarse\"",
                )),
            },
            "imdb" => self.sequence_options()?.check(),
            "reuters" => self.sequence_options()?.check().and(self.test_split().map(drop)),
            "boston_housing" => self.test_split().and(self.number::<u32>("seed")).map(drop),
            _ => Ok(()),
        }
    }

    fn get(&self, key: &str) -> Option<&str> {
        self.args.iter().rev().find(|(k, _)| k == key).map(|(_, v)| v.as_str())
    }

    fn number<T: std::str::FromStr>(&self, key: &str) -> Result<Option<T>> {
        self.get(key)
            .map(|v| {
                v.parse()
                    .map_err(|_| Error::invalid(key, v, format!("must be a non-negative integer ({})", self.name)))
            })
            .transpose()
    }

    /// A value that may be `None` (Keras's `start_char=None`, `oov_char=None`).
    fn optional(&self, key: &str, default: Option<usize>) -> Result<Option<usize>> {
        match self.get(key) {
            Some(v) if v.eq_ignore_ascii_case("none") => Ok(None),
            Some(_) => self.number(key),
            None => Ok(default),
        }
    }

    fn test_split(&self) -> Result<f64> {
        let split = match self.get("test_split") {
            Some(v) => v
                .parse::<f64>()
                .map_err(|_| Error::invalid("test_split", v, "must be a number in [0, 1)"))?,
            None => 0.2,
        };
        reuters::check_test_split(split)?;
        Ok(split)
    }

    fn sequence_options(&self) -> Result<SequenceOptions> {
        let defaults = SequenceOptions::default();
        Ok(SequenceOptions {
            num_words: self.optional("num_words", None)?,
            skip_top: self.number("skip_top")?.unwrap_or(defaults.skip_top),
            maxlen: self.optional("maxlen", None)?,
            seed: self.number("seed")?.unwrap_or(defaults.seed),
            start_char: self.optional("start_char", defaults.start_char)?,
            oov_char: self.optional("oov_char", defaults.oov_char)?,
            index_from: self.number("index_from")?.unwrap_or(defaults.index_from),
        })
    }
}

fn list(known: &[&str]) -> String {
    match known.is_empty() {
        true => "no arguments".into(),
        false => known.join(", "),
    }
}
