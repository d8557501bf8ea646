//! Model configs written before a call could have several outputs: there a recurrent layer's
//! `return_state` was a `RecurrentState` layer of its own, reading the sequence and the
//! recurrent layer's output. Loading one turns the recurrent layer's `return_state` on and
//! sends every reference to a state layer to that output of the recurrent layer's call.

use serde_json::Value;

/// A `RecurrentState` layer's name and the output of the recurrent call it stands for:
/// (layer name, node index, tensor index).
pub(super) type Alias = (String, (String, usize, usize));

/// The config's layer entries without `RecurrentState` layers (their recurrent layers set to
/// `return_state`), and what each removed layer's name now refers to.
pub(super) fn without_state_layers(entries: &[Value]) -> (Vec<Value>, Vec<Alias>) {
    let mut kept: Vec<Value> = Vec::with_capacity(entries.len());
    let mut aliases = Vec::new();
    let mut stateful: Vec<String> = Vec::new();
    for entry in entries {
        match state_alias(entry) {
            Some(alias) => {
                stateful.push(alias.1.0.clone());
                aliases.push(alias);
            }
            None => kept.push(entry.clone()),
        }
    }
    for entry in &mut kept {
        let name = entry.get("name").and_then(Value::as_str).map(str::to_string);
        if let (Some(name), Some(config)) = (name, entry.get_mut("config"))
            && stateful.contains(&name)
            && config.is_object()
        {
            config["return_state"] = true.into();
        }
    }
    (kept, aliases)
}

/// `["lstm_state", 0, 0]` of a removed state layer → the recurrent call's output it gave.
pub(super) fn resolve(aliases: &[Alias], reference: &(String, usize, usize)) -> (String, usize, usize) {
    match aliases.iter().find(|(name, _)| *name == reference.0) {
        Some((_, target)) => target.clone(),
        None => reference.clone(),
    }
}

/// A `RecurrentState` entry's alias: its second inbound reference is the recurrent layer's
/// call; `"state": "c"` is output 2 (an LSTM's cell state), otherwise `h`, output 1.
fn state_alias(entry: &Value) -> Option<Alias> {
    if entry.get("class_name").and_then(Value::as_str) != Some("RecurrentState") {
        return None;
    }
    let name = entry
        .get("name")
        .or_else(|| entry.get("config")?.get("name"))?
        .as_str()?
        .to_string();
    let source = entry.get("inbound_nodes")?.get(0)?.get(1)?;
    let layer = source.get(0)?.as_str()?.to_string();
    let node = source.get(1)?.as_u64()? as usize;
    let state = entry.get("config").and_then(|c| c.get("state")).and_then(Value::as_str);
    let tensor = if state == Some("c") { 2 } else { 1 };
    Some((name, (layer, node, tensor)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn state_layers_become_outputs_of_the_recurrent_call() {
        let entries: Vec<Value> = serde_json::from_str(
            r#"[
            {"class_name": "InputLayer", "name": "x", "config": {"shape": [5, 3]}, "inbound_nodes": []},
            {"class_name": "LSTM", "name": "lstm", "config": {"units": 4}, "inbound_nodes": [[["x", 0, 0, {}]]]},
            {"class_name": "RecurrentState", "name": "c", "config": {"name": "c", "state": "c"},
             "inbound_nodes": [[["x", 0, 0, {}], ["lstm", 0, 0, {}]]]}
        ]"#,
        )
        .expect("valid JSON");
        let (kept, aliases) = without_state_layers(&entries);
        assert_eq!(kept.len(), 2);
        assert_eq!(kept[1]["config"]["return_state"], true);
        let target = resolve(&aliases, &("c".into(), 0, 0));
        assert_eq!(target, ("lstm".to_string(), 0, 2));
        assert_eq!(resolve(&aliases, &("lstm".into(), 0, 0)), ("lstm".to_string(), 0, 0));
    }
}
