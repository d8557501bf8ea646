//! The `--head` spec: layers to put on a pre-trained base, written as Keras calls separated by
//! commas, `GlobalAveragePooling2D,Dropout(0.2),Dense(5,softmax)`. Each item becomes the Keras
//! config its arguments name (positional ones in Keras's order: `Dense(units, activation)`),
//! read by the layer registry, so every layer and key a model file accepts is accepted here.

use crate::error::{Error, Result};
use crate::layers::{self, Layer};
use serde_json::{Map, Value};

/// Per class, the Keras arguments that may be given without their name, in Keras's order.
const POSITIONAL: &[(&str, &[&str])] = &[
    ("Dense", &["units", "activation"]),
    ("Dropout", &["rate"]),
    ("SpatialDropout2D", &["rate"]),
    ("GaussianNoise", &["stddev"]),
    ("Activation", &["activation"]),
    ("Conv2D", &["filters", "kernel_size", "strides"]),
    ("Conv1D", &["filters", "kernel_size", "strides"]),
    ("MaxPooling2D", &["pool_size", "strides"]),
    ("AveragePooling2D", &["pool_size", "strides"]),
    ("Reshape", &["target_shape"]),
];

/// The layers of a `--head` spec, or an error naming the item that is wrong.
pub fn parse_head(spec: &str) -> Result<Vec<Box<dyn Layer>>> {
    let items = split_top_level(spec);
    if items.iter().all(|item| item.trim().is_empty()) {
        return Err(Error::invalid(
            "--head",
            spec,
            "give layers separated by commas, e.g. \"GlobalAveragePooling2D,Dropout(0.2),Dense(5,softmax)\"",
        ));
    }
    items
        .iter()
        .enumerate()
        .map(|(index, item)| {
            parse_item(item.trim())
                .map_err(|why| Error::invalid("--head", spec, format!("item {} '{}': {why}", index + 1, item.trim())))
        })
        .collect()
}

/// One item, `Class` or `Class(arg, key=value, ...)`, as a layer; the error says why not.
fn parse_item(item: &str) -> std::result::Result<Box<dyn Layer>, String> {
    let (class, arguments) = match item.split_once('(') {
        None => (item, ""),
        Some((class, rest)) => {
            let inner = rest
                .strip_suffix(')')
                .ok_or_else(|| "a '(' without its closing ')'".to_string())?;
            (class.trim(), inner)
        }
    };
    if class.is_empty() {
        return Err("no layer class (e.g. Dense(5,softmax))".into());
    }
    if layers::lookup(class).is_none() {
        return Err(Error::unknown("layer class", class, layers::LAYER_NAMES).to_string());
    }
    let config = config_of(class, arguments)?;
    layers::from_config(class, &config).map_err(|e| e.to_string())
}

/// The Keras config that `arguments` (the text between the parentheses) give `class`.
fn config_of(class: &str, arguments: &str) -> std::result::Result<Value, String> {
    let names = POSITIONAL
        .iter()
        .find(|(c, _)| *c == class)
        .map_or(&[][..], |(_, n)| *n);
    let mut config = Map::new();
    let mut named_seen = false;
    for (position, argument) in split_top_level(arguments).iter().enumerate() {
        let argument = argument.trim();
        if argument.is_empty() {
            continue;
        }
        let (key, value) = match argument.split_once('=') {
            Some((key, value)) => {
                named_seen = true;
                (key.trim().to_string(), value.trim())
            }
            None if named_seen => return Err(format!("'{argument}' without a name after a named argument")),
            None => {
                let key = names.get(position).ok_or_else(|| match names {
                    [] => format!("{class} takes named arguments only (KEY=VALUE)"),
                    _ => format!(
                        "{class} takes at most {} unnamed arguments ({})",
                        names.len(),
                        names.join(", ")
                    ),
                })?;
                (key.to_string(), argument)
            }
        };
        if config.insert(key.clone(), value_of(value)).is_some() {
            return Err(format!("'{key}' given twice"));
        }
    }
    Ok(Value::Object(config))
}

/// A number, a flag, a tuple `(3,3)` (a list), `None` (null) or else a string (`softmax`,
/// `'same'`, quotes optional).
fn value_of(text: &str) -> Value {
    let text = text.trim();
    if let Some(inner) = text
        .strip_prefix('(')
        .and_then(|t| t.strip_suffix(')'))
        .or_else(|| text.strip_prefix('[').and_then(|t| t.strip_suffix(']')))
    {
        let items = split_top_level(inner);
        return Value::Array(
            items
                .iter()
                .filter(|i| !i.trim().is_empty())
                .map(|i| value_of(i))
                .collect(),
        );
    }
    match text {
        "True" | "true" => return Value::Bool(true),
        "False" | "false" => return Value::Bool(false),
        "None" | "null" => return Value::Null,
        _ => {}
    }
    if let Ok(n) = text.parse::<i64>() {
        return Value::from(n);
    }
    if let Ok(x) = text.parse::<f64>() {
        return Value::from(x);
    }
    Value::String(text.trim_matches(|c| c == '\'' || c == '"').to_string())
}

/// `text` split at the commas outside parentheses and brackets.
fn split_top_level(text: &str) -> Vec<&str> {
    let (mut parts, mut depth, mut start) = (Vec::new(), 0i32, 0);
    for (i, c) in text.char_indices() {
        match c {
            '(' | '[' => depth += 1,
            ')' | ']' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    parts
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keras_calls_become_layers() {
        let layers = parse_head("GlobalAveragePooling2D, Dropout(0.2), Dense(5, softmax, name=out)").unwrap();
        let classes: Vec<&str> = layers.iter().map(|l| l.class_name()).collect();
        assert_eq!(classes, ["GlobalAveragePooling2D", "Dropout", "Dense"]);
        let dense = layers[2].config();
        assert_eq!(
            (dense["units"].clone(), dense["activation"].clone()),
            (5.into(), "softmax".into())
        );
        assert_eq!(dense["name"], "out");
        assert_eq!(
            layers[1].config()["rate"].as_f64().map(|r| (r * 10.0).round()),
            Some(2.0)
        );
    }

    #[test]
    fn tuples_and_named_arguments() {
        let layers = parse_head("Conv2D(8, (3,3), padding='same', activation=relu),Flatten").unwrap();
        let conv = layers[0].config();
        assert_eq!(conv["kernel_size"], serde_json::json!([3, 3]));
        assert_eq!(conv["padding"], "same");
    }

    #[test]
    fn errors_name_the_item() {
        let message = |spec: &str| parse_head(spec).err().map(|e| e.to_string()).unwrap_or_default();
        assert!(message("Dense(5),Dropot(0.2)").contains("item 2 'Dropot(0.2)'"));
        assert!(
            message("Dense(5),Dropot(0.2)").contains("Dropout"),
            "{}",
            message("Dense(5),Dropot(0.2)")
        );
        assert!(message("Dense(5,softmax,3)").contains("at most 2 unnamed arguments"));
        assert!(message("Dense(5").contains("closing ')'"));
        assert!(message(" , ").contains("separated by commas"));
    }
}
