//! Sampling text from a trained character- (or word-) level language model.

use super::Tokenizer;
use crate::error::{Error, Result};
use crate::model::Model;
use crate::rng::Rng;
use crate::tensor::Tensor;

/// The most tokens one call generates: far more than a text model is useful for, and few
/// enough that a mistyped length ends in minutes rather than never.
pub const MAX_GENERATE_LENGTH: usize = 1_000_000;

/// Continues `prompt` by `length` tokens, one at a time: the model reads the last `window` ids
/// (its input length; a shorter prompt is left-padded with 0) and outputs probabilities over the
/// vocabulary, from which the next id is drawn after reweighting by `temperature` (`p^(1/T)`,
/// renormalized: below 1 sharper, above 1 more varied; 0 takes the most likely id). Returns the
/// prompt and its continuation.
///
/// Errors: a model that does not take `(window,)` ids or output one probability per id of the
/// vocabulary; an empty prompt; characters of the prompt outside the vocabulary (named); a
/// negative or non-finite temperature; see [`generate_text_streaming`] for the rest.
pub fn generate_text(
    model: &mut Model,
    tokenizer: &Tokenizer,
    prompt: &str,
    length: usize,
    temperature: f32,
    rng: &mut Rng,
) -> Result<String> {
    let mut text = prompt.to_string();
    generate_text_streaming(model, tokenizer, prompt, length, temperature, rng, |piece| {
        text.push_str(piece);
        Ok(())
    })?;
    Ok(text)
}

/// [`generate_text`], handing each new token's text to `emit` as soon as it is drawn (with
/// the separator before it, at word level), so a long continuation shows as it grows.
///
/// Only ids the tokenizer knows are drawn: a model may output more classes than the text it
/// was trained on has tokens. Errors also for a `length` above [`MAX_GENERATE_LENGTH`], a model
/// with a NaN or infinite weight (named: it could only produce noise), probabilities that are
/// not finite, and whatever `emit` returns.
pub fn generate_text_streaming(
    model: &mut Model,
    tokenizer: &Tokenizer,
    prompt: &str,
    length: usize,
    temperature: f32,
    rng: &mut Rng,
    mut emit: impl FnMut(&str) -> Result<()>,
) -> Result<()> {
    if !temperature.is_finite() || temperature < 0.0 {
        return Err(Error::invalid(
            "temperature",
            temperature,
            "must be a finite number, 0 or more",
        ));
    }
    if length > MAX_GENERATE_LENGTH {
        return Err(Error::invalid(
            "length",
            length,
            format!("at most {MAX_GENERATE_LENGTH} tokens in one call"),
        ));
    }
    let window = match model.input_shape() {
        Some(&[window]) => window,
        other => {
            return Err(Error::Usage(format!(
                "a text model takes (window,) token ids, this one takes {}",
                other.map_or("no known input shape".into(), crate::error::keras_shape)
            )));
        }
    };
    check_vocabulary(model, tokenizer)?;
    check_finite_weights(model)?;
    if prompt.is_empty() {
        return Err(Error::invalid(
            "prompt",
            "\"\"",
            "give at least one token to start from",
        ));
    }
    let mut ids = tokenizer.encode(prompt)?;
    let known = tokenizer.vocabulary_size();
    let separator = if tokenizer.char_level {
        ""
    } else {
        tokenizer.split.as_str()
    };
    let mut input = Tensor::zeros(&[1, window]);
    let mut weights = Vec::new();
    for step in 0..length {
        let context = &ids[ids.len().saturating_sub(window)..];
        let values = input.data_mut();
        values.fill(0.0);
        for (slot, &id) in values[window - context.len()..].iter_mut().zip(context) {
            *slot = id as f32;
        }
        let probabilities = model.predict(&input, 1)?;
        // Ids past the vocabulary (a model with more outputs than the text has tokens) get
        // no chance: they have no text.
        let probabilities = &probabilities.data()[..known];
        if let Some(bad) = probabilities.iter().find(|p| !p.is_finite()) {
            return Err(Error::Usage(format!(
                "the model's output holds {bad} at token {}: it cannot be sampled",
                step + 1
            )));
        }
        let id = sample(probabilities, temperature, &mut weights, rng);
        ids.push(id);
        let token = tokenizer.decode(&[id])?;
        if step > 0 && !separator.is_empty() {
            emit(separator)?;
        }
        emit(&token)?;
    }
    Ok(())
}

/// Refuses a model with a NaN or infinite weight, naming the first.
fn check_finite_weights(model: &Model) -> Result<()> {
    let params = model.params();
    for id in params.ids() {
        if let Some(value) = params.value(id).data().iter().find(|v| !v.is_finite()) {
            return Err(Error::Usage(format!(
                "the model's weight '{}' holds {value}: a model with non-finite weights generates only noise \
                 (retrain it, e.g. with a lower learning rate)",
                params.name(id)
            )));
        }
    }
    Ok(())
}

/// Checks that `model` outputs one probability per token of the tokenizer's vocabulary (padding
/// id 0 included), as a next-token model must, and that its Embeddings have a row for each.
pub fn check_vocabulary(model: &Model, tokenizer: &Tokenizer) -> Result<()> {
    let size = tokenizer.vocabulary_size();
    for layer in model.layers().iter().filter(|l| l.class_name() == "Embedding") {
        let rows = layer.config().get("input_dim").and_then(serde_json::Value::as_u64);
        if let Some(rows) = rows.filter(|&rows| rows < size as u64) {
            return Err(Error::Usage(format!(
                "the text has {size} tokens (padding included) but Embedding '{}' has input_dim {rows}: \
                 give it (and the last Dense's units) at least {size}, or \"auto\" to size them from the text",
                layer.name()
            )));
        }
    }
    match model.output_shape() {
        Some(&[classes]) if classes >= size => Ok(()),
        other => Err(Error::Usage(format!(
            "the text has {size} tokens (padding included) but the model's output has shape {}: \
             give its last Dense (and its Embedding's input_dim) at least {size} units, or \"auto\" to size \
             them from the text",
            other.map_or("no known shape".into(), crate::error::keras_shape)
        ))),
    }
}

/// Draws an index from `probabilities` reweighted by `temperature`, never the padding id 0.
fn sample(probabilities: &[f32], temperature: f32, weights: &mut Vec<f64>, rng: &mut Rng) -> usize {
    let candidates = 1..probabilities.len();
    if temperature == 0.0 {
        return candidates
            .max_by(|&a, &b| probabilities[a].total_cmp(&probabilities[b]))
            .unwrap_or(1);
    }
    // In log space, so a small temperature does not underflow every weight to 0.
    let logs: Vec<f64> = probabilities
        .iter()
        .map(|&p| (p.max(1e-30) as f64).ln() / temperature as f64)
        .collect();
    let top = logs[1..].iter().copied().fold(f64::NEG_INFINITY, f64::max);
    weights.clear();
    weights.push(0.0);
    weights.extend(logs[1..].iter().map(|l| (l - top).exp()));
    let total: f64 = weights.iter().sum();
    let mut draw = rng.uniform(0.0, 1.0) as f64 * total;
    for (id, &w) in weights.iter().enumerate().skip(1) {
        if draw < w {
            return id;
        }
        draw -= w;
    }
    weights.len() - 1
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_zero_takes_the_most_likely_and_sampling_follows_the_weights() {
        let probabilities = [0.9, 0.1, 0.6, 0.3];
        let mut rng = Rng::new(1);
        let mut weights = Vec::new();
        // Never id 0 (padding), even when it is the most likely.
        assert_eq!(sample(&probabilities, 0.0, &mut weights, &mut rng), 2);
        let mut counts = [0usize; 4];
        for _ in 0..10_000 {
            counts[sample(&probabilities, 1.0, &mut weights, &mut rng)] += 1;
        }
        assert_eq!(counts[0], 0);
        // 0.1 : 0.6 : 0.3 of 10,000.
        for (id, expected) in [(1, 1000.0), (2, 6000.0), (3, 3000.0)] {
            assert!((counts[id] as f64 - expected).abs() < 200.0, "{counts:?}");
        }
        // Temperature 0.5 squares the weights: 0.01 : 0.36 : 0.09.
        let mut counts = [0usize; 4];
        for _ in 0..10_000 {
            counts[sample(&probabilities, 0.5, &mut weights, &mut rng)] += 1;
        }
        assert!((counts[2] as f64 - 10_000.0 * 0.36 / 0.46).abs() < 200.0, "{counts:?}");
    }
}
