//! The `--head` spec: layers to put on a pre-trained base, written as Keras calls separated by
//! commas, `GlobalAveragePooling2D,Dropout(0.2),Dense(5,softmax)`. Each item becomes the Keras
//! config its arguments name (positional ones in Keras's order: `Dense(units, activation)`, as
//! the layer registry lists them), read by the layer registry, so every single-input layer and
//! every key a model file accepts is accepted here.

use crate::error::{Error, Result};
use crate::layers::{self, Layer};
use serde_json::{Map, Value};

/// The layer classes a `--head` item may name: every registered layer that reads one input
/// (from the registry, so a new layer is accepted here as soon as it is registered).
pub fn head_layer_names() -> Vec<&'static str> {
    layers::REGISTRY
        .iter()
        .filter(|entry| entry.not_in_head.is_none())
        .map(|entry| entry.class_name)
        .collect()
}

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
    let accepted = head_layer_names();
    let entry = layers::lookup(class).ok_or_else(|| Error::unknown("layer class", class, &accepted).to_string())?;
    if let Some(why) = entry.not_in_head {
        return Err(format!(
            "{class} {why}, so it cannot be in --head, a chain of layers each on the last one's output; \
             accepted: {}",
            accepted.join(", ")
        ));
    }
    let config = config_of(entry.class_name, entry.positional, arguments)?;
    layers::from_config(entry.class_name, &config).map_err(|e| e.to_string())
}

/// The Keras config that `arguments` (the text between the parentheses) give `class`, whose
/// unnamed arguments are `names` in order.
fn config_of(class: &str, names: &[&str], arguments: &str) -> std::result::Result<Value, String> {
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

    #[test]
    fn every_single_input_layer_of_the_registry_is_known() {
        // Conv2DTranspose, say, with Keras's unnamed arguments (filters, kernel_size, strides,
        // padding), as a decoder head would use it.
        let layers = parse_head("Reshape((2,2,4)),Conv2DTranspose(3, 3, 2, same),UpSampling2D((2,2))").unwrap();
        let transpose = layers[1].config();
        assert_eq!(transpose["filters"], 3);
        assert_eq!(transpose["strides"], serde_json::json!([2, 2]));
        assert_eq!(transpose["padding"], "same");
        // Every class the registry lets into a head is known to the parser: naming one without
        // arguments builds it or says which argument it needs, never "unknown".
        for class in head_layer_names() {
            if let Err(e) = parse_head(class) {
                assert!(!e.to_string().contains("unknown layer class"), "{class}: {e}");
            }
        }
        assert!(head_layer_names().contains(&"Conv2DTranspose"));
    }

    #[test]
    fn layers_that_cannot_chain_say_why_and_unknown_ones_list_the_accepted() {
        let message = |spec: &str| parse_head(spec).err().map(|e| e.to_string()).unwrap_or_default();
        let add = message("Dense(4),Add");
        assert!(
            add.contains("item 2 'Add'") && add.contains("merges several inputs"),
            "{add}"
        );
        assert!(add.contains("Conv2DTranspose"), "{add}");
        let unknown = message("Conv2DTranspos(3,3)");
        assert!(
            unknown.contains("Conv2DTranspose") && !unknown.contains("InputLayer"),
            "{unknown}"
        );
    }
}
