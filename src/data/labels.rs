//! Class names: the names of a classifier's outputs, in output order. A model trained on an
//! image folder or on a CSV table of text labels keeps them ([`set_class_names`], saved with the
//! model), so its predictions and confusion matrix can say `cat` rather than `3`; a labels file
//! ([`read_labels`]) names the outputs of any model.

use crate::error::{Error, Result};
use crate::model::Model;
use std::io::Read;
use std::path::Path;

/// The attachment key of a model's class names (a JSON list of strings).
pub const CLASS_NAMES: &str = "class_names";

/// The largest labels file read: far above ImageNet-21k's names, far below what could exhaust
/// memory.
const MAX_LABELS_FILE_BYTES: u64 = 64 << 20;

/// The class names `model` keeps, if any; an unreadable record is an error naming it.
pub fn class_names(model: &Model) -> Result<Option<Vec<String>>> {
    model
        .attachment(CLASS_NAMES)
        .map(|json| {
            serde_json::from_str(json).map_err(|e| {
                Error::Data(format!(
                    "the model's class names ('{CLASS_NAMES}') are unreadable ({e})"
                ))
            })
        })
        .transpose()
}

/// Keeps `names` (class 0 first) with `model`, saved and loaded with it.
pub fn set_class_names<S: AsRef<str>>(model: &mut Model, names: &[S]) {
    let names: Vec<&str> = names.iter().map(AsRef::as_ref).collect();
    let json = serde_json::to_string(&names).expect("a list of strings always serializes");
    model.set_attachment(CLASS_NAMES, json);
}

/// `names` for a model of `outputs` classes: as they are, or with the outputs past them named
/// by their index (a model trained on 2 folders with the 10 outputs of its model file).
pub fn names_for_outputs(names: &[String], outputs: usize) -> Vec<String> {
    let mut all = names.to_vec();
    all.extend((names.len()..outputs).map(|class| class.to_string()));
    all
}

/// The class names of a labels file, class 0 first, in any of three forms: one name per line;
/// a JSON list of names (`["cat", "dog"]`); or a JSON object from class index to name or to
/// `[id, name]`, as Keras's `imagenet_class_index.json` (`{"0": ["n01440764", "tench"], ...}`),
/// whose indices must run from 0 without a gap.
pub fn read_labels(path: impl AsRef<Path>) -> Result<Vec<String>> {
    let path = path.as_ref();
    crate::fs::refuse_special(path)?;
    let file = std::fs::File::open(path).map_err(|e| Error::file(path, format!("cannot open ({e})")))?;
    let mut text = String::new();
    file.take(MAX_LABELS_FILE_BYTES + 1)
        .read_to_string(&mut text)
        .map_err(|e| Error::file(path, format!("cannot read as UTF-8 text ({e})")))?;
    if text.len() as u64 > MAX_LABELS_FILE_BYTES {
        return Err(Error::file(
            path,
            format!("a labels file holds at most {MAX_LABELS_FILE_BYTES} bytes"),
        ));
    }
    parse_labels(&text).map_err(|reason| Error::file(path, reason))
}

/// [`read_labels`] on a text; an error says what is wrong with it.
fn parse_labels(text: &str) -> std::result::Result<Vec<String>, String> {
    let names = match text.trim_start().chars().next() {
        Some('[' | '{') => {
            let value: serde_json::Value = serde_json::from_str(text).map_err(|e| format!("not valid JSON ({e})"))?;
            json_labels(&value)?
        }
        _ => line_labels(text)?,
    };
    if names.is_empty() {
        return Err("names no class".into());
    }
    Ok(names)
}

/// One name per line; blank lines at the end are ignored, any other blank line is an error
/// (it would shift every name after it).
fn line_labels(text: &str) -> std::result::Result<Vec<String>, String> {
    let lines: Vec<&str> = text.trim_end().lines().map(str::trim).collect();
    if let Some(blank) = lines.iter().position(|line| line.is_empty()) {
        return Err(format!("line {} is blank: every class needs a name", blank + 1));
    }
    Ok(lines.into_iter().map(str::to_string).collect())
}

/// A JSON list of names, or an object from index to a name or an `[id, name]` pair.
fn json_labels(value: &serde_json::Value) -> std::result::Result<Vec<String>, String> {
    use serde_json::Value;
    let name_of = |entry: &Value, at: &str| match entry {
        Value::String(name) => Ok(name.clone()),
        Value::Array(pair) if pair.len() == 2 && pair.iter().all(Value::is_string) => {
            Ok(pair[1].as_str().unwrap_or_default().to_string())
        }
        other => Err(format!("entry {at} is {other}; expected a name or an [id, name] pair")),
    };
    match value {
        Value::Array(entries) => entries
            .iter()
            .enumerate()
            .map(|(i, entry)| name_of(entry, &i.to_string()))
            .collect(),
        Value::Object(entries) => (0..entries.len())
            .map(|i| {
                let entry = entries.get(&i.to_string()).ok_or_else(|| {
                    format!(
                        "has {} entries but no \"{i}\": class indices must run from 0 without a gap",
                        entries.len()
                    )
                })?;
                name_of(entry, &format!("\"{i}\""))
            })
            .collect(),
        _ => Err("is JSON but neither a list of names nor an object of class indices".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_lines_json_lists_and_keras_class_indices() {
        assert_eq!(parse_labels("cat\ndog\r\nbird\n\n").unwrap(), ["cat", "dog", "bird"]);
        assert_eq!(parse_labels(" [\"cat\", \"dog\"]").unwrap(), ["cat", "dog"]);
        let keras = r#"{"1": ["n01443537", "goldfish"], "0": ["n01440764", "tench"]}"#;
        assert_eq!(parse_labels(keras).unwrap(), ["tench", "goldfish"]);
        assert_eq!(parse_labels(r#"{"0": "a", "1": "b"}"#).unwrap(), ["a", "b"]);
    }

    #[test]
    fn gaps_blanks_and_odd_entries_are_errors_saying_where() {
        let gap = parse_labels(r#"{"0": "a", "2": "c"}"#).unwrap_err();
        assert!(gap.contains("no \"1\""), "{gap}");
        let blank = parse_labels("cat\n\ndog\n").unwrap_err();
        assert!(blank.contains("line 2 is blank"), "{blank}");
        let odd = parse_labels("[\"cat\", 3]").unwrap_err();
        assert!(odd.contains("entry 1 is 3"), "{odd}");
        assert!(parse_labels("\n\n").unwrap_err().contains("no class"));
        assert!(parse_labels("{\"0\": ").unwrap_err().contains("not valid JSON"));
    }
}
