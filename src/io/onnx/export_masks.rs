//! Sequence masks in exported graphs. ONNX has no masks, so the graph computes each one as a
//! float tensor `(N, T)` of ones and zeros, where strata does: `Masking` (a step whose features
//! all equal `mask_value`) and `Embedding(mask_zero=True)` (`min(|id|, 1)`). The layers that
//! read one take it as an input: a recurrent layer keeps its state over masked steps (unrolled,
//! one operator per step, as ONNX's `sequence_lens` only skips trailing steps), and
//! `GlobalAveragePooling1D` averages the unmasked steps. Which outputs carry which mask is
//! what a recorded pass says (`Model::call_output_masks`); this file refuses what it cannot
//! write, naming the layer.

use super::builder::{int, ints};
use super::layers::Emitter;
use super::proto::{BOOL, FLOAT};
use crate::layers::Layer;
use serde_json::Value;

/// The layers whose output may carry a new mask that the graph computes (besides the merging
/// layers, which join their inputs' masks: [`is_merge`]).
const MASK_SOURCES: &[&str] = &["Masking", "Embedding"];

/// Whether `class` is a merging layer (the layer registry's "Merging" family), which reads its
/// inputs' masks to join them.
fn is_merge(class: &str) -> bool {
    crate::layers::lookup(class).is_some_and(|entry| entry.group == "Merging")
}

/// The layers of one input that read its mask.
const SEQUENCE_READERS: &[&str] = &["SimpleRNN", "LSTM", "GRU", "Bidirectional", "GlobalAveragePooling1D"];

/// The attention layers, which read the masks of their query, value and key.
const ATTENTION_READERS: &[&str] = &["MultiHeadAttention", "Attention", "AdditiveAttention"];

/// Why a call of `layer` cannot be exported given the masks of its inputs and of its output
/// (indices among a pass's distinct masks), or `None` when it can.
pub(super) fn mask_refusal(layer: &dyn Layer, inputs: &[Option<usize>], output: Option<usize>) -> Option<String> {
    let class = layer.class_name();
    let made = output.is_some_and(|mask| !inputs.contains(&Some(mask)));
    if made && !MASK_SOURCES.contains(&class) && !is_merge(class) {
        return Some(": computes a sequence mask that ONNX export cannot write".into());
    }
    let masked = inputs.iter().any(Option::is_some);
    if masked && SEQUENCE_READERS.contains(&class) && inputs.len() != 1 {
        return Some(": a masked sequence with more than one input".into());
    }
    None
}

/// Whether `class` reads its inputs' masks.
pub(super) fn reads_mask(class: &str) -> bool {
    SEQUENCE_READERS.contains(&class) || ATTENTION_READERS.contains(&class) || is_merge(class)
}

impl Emitter<'_> {
    /// The mask of input `index` of the call, if it has one.
    pub(super) fn input_mask(&self, index: usize) -> Option<String> {
        self.input_masks.get(index).cloned().flatten()
    }

    /// Where attention may look, `(N, Tq or 1, Tk)` ones and zeros: the product of the query's
    /// mask over rows (`rows`), the value's and key's over columns (`columns`) and, when
    /// `causal` gives `(Tq, Tk)`, the keys up to each query step. `None` without any mask
    /// (causality alone stays the exporters' added penalty).
    pub(super) fn attention_allowed(
        &mut self,
        name: &str,
        rows: Option<&str>,
        columns: &[String],
        causal: Option<(usize, usize)>,
    ) -> Option<String> {
        if rows.is_none() && columns.is_empty() {
            return None;
        }
        let column_axis = self.builder.int64s(format!("{name}/column_axis"), &[1]);
        let mut parts: Vec<String> = columns
            .iter()
            .map(|mask| self.builder.op(name, "Unsqueeze", &[mask, &column_axis], vec![]))
            .collect();
        if let Some(rows) = rows {
            let row_axis = self.builder.int64s(format!("{name}/row_axis"), &[-1]);
            parts.push(self.builder.op(name, "Unsqueeze", &[rows, &row_axis], vec![]));
        }
        if let Some((tq, tk)) = causal {
            let seen: Vec<f32> = (0..tq * tk).map(|p| f32::from(p % tk <= p / tk)).collect();
            parts.push(self.builder.floats(format!("{name}/causal_allowed"), &[tq, tk], &seen));
        }
        let mut allowed = parts[0].clone();
        for part in &parts[1..] {
            allowed = self.builder.op(name, "Mul", &[&allowed, part], vec![]);
        }
        Some(allowed)
    }

    /// `scores` where `allowed` (broadcast to them) is 1, `masked` elsewhere: strata's masked
    /// scores are replaced, so a row with nothing allowed is uniform, as in Keras.
    pub(super) fn replace_masked(&mut self, name: &str, scores: &str, allowed: &str, masked: f32) -> String {
        let allowed = self.builder.op(name, "Cast", &[allowed], vec![int("to", BOOL as i64)]);
        let masked = self.builder.floats(format!("{name}/masked_score"), &[], &[masked]);
        self.builder.op(name, "Where", &[&allowed, scores, &masked], vec![])
    }

    /// `y (N, Tq, C)` with the rows of the query's masked steps zeroed (`Attention`,
    /// `AdditiveAttention`), or `y` itself when the query has no mask.
    pub(super) fn zero_masked_rows(&mut self, name: &str, y: String) -> String {
        let Some(rows) = self.input_mask(0) else { return y };
        let axis = self.builder.int64s(format!("{name}/row_axis"), &[-1]);
        let rows = self.builder.op(name, "Unsqueeze", &[&rows, &axis], vec![]);
        self.builder.op(name, "Mul", &[&y, &rows], vec![])
    }

    /// A merge's mask when it makes a new one (its inputs' masks differ, or a `Concatenate`
    /// joins masked and unmasked sequences, whose steps count as real): side by side for a
    /// `Concatenate` along the steps (`axis` 1 of `(N, T, C)`), else their union (masks are
    /// ones and zeros, so the largest). `steps`: each input's number of steps.
    pub(super) fn merged_mask(&mut self, name: &str, config: &Value, rank: usize, steps: &[usize]) -> Option<String> {
        let known: Vec<Option<String>> = (0..steps.len()).map(|k| self.input_mask(k)).collect();
        let reference = known.iter().flatten().next()?.clone();
        let mut masks = Vec::with_capacity(known.len());
        for (k, mask) in known.into_iter().enumerate() {
            masks.push(match mask {
                Some(mask) => mask,
                None => self.real_steps(name, &reference, steps[k]),
            });
        }
        let parts: Vec<&str> = masks.iter().map(String::as_str).collect();
        let axis = config["axis"].as_i64().unwrap_or(-1);
        let along_steps = config.get("axis").is_some() && (axis == 1 || axis == 1 - rank as i64);
        Some(match along_steps {
            true => self.builder.op(name, "Concat", &parts, vec![int("axis", 1)]),
            false => self.builder.op(name, "Max", &parts, vec![]),
        })
    }

    /// Ones `(N, steps)`: every step real, the batch size taken from the mask `reference`.
    fn real_steps(&mut self, name: &str, reference: &str, steps: usize) -> String {
        let shape = self.builder.op(name, "Shape", &[reference], vec![]);
        let start = self.builder.int64s(format!("{name}/batch_start"), &[0]);
        let end = self.builder.int64s(format!("{name}/batch_end"), &[1]);
        let batch = self.builder.op(name, "Slice", &[&shape, &start, &end], vec![]);
        let steps = self.builder.int64s(format!("{name}/steps_{steps}"), &[steps as i64]);
        let target = self.builder.op(name, "Concat", &[&batch, &steps], vec![int("axis", 0)]);
        let one = self.builder.floats(format!("{name}/real_step"), &[], &[1.0]);
        self.builder.op(name, "Expand", &[&one, &target], vec![])
    }

    /// Masking: the mask `(N, T)` (1 where any feature differs from `mask_value`) and the input
    /// times it; the mask goes to `made_mask`.
    pub(super) fn masking(&mut self, name: &str, config: &Value, x: &str) -> String {
        let value = config["mask_value"].as_f64().unwrap_or(0.0) as f32;
        let value = self.builder.floats(format!("{name}/mask_value"), &[], &[value]);
        let equal = self.builder.op(name, "Equal", &[x, &value], vec![]);
        let differs = self.builder.op(name, "Not", &[&equal], vec![]);
        let differs = self
            .builder
            .op(name, "Cast", &[&differs], vec![int("to", FLOAT as i64)]);
        let kept = self.builder.op(
            name,
            "ReduceMax",
            &[&differs],
            vec![ints("axes", &[-1]), int("keepdims", 1)],
        );
        let last = self.builder.int64s(format!("{name}/feature_axis"), &[-1]);
        self.made_mask = Some(self.builder.op(name, "Squeeze", &[&kept, &last], vec![]));
        self.builder.op(name, "Mul", &[x, &kept], vec![])
    }

    /// Embedding with `mask_zero`: the mask `min(|id|, 1)` of the ids `x`, one row per sample
    /// `(N, steps)`, into `made_mask`.
    pub(super) fn zero_mask(&mut self, name: &str, x: &str) {
        let magnitude = self.builder.op(name, "Abs", &[x], vec![]);
        let low = self.builder.floats(format!("{name}/mask_low"), &[], &[0.0]);
        let high = self.builder.floats(format!("{name}/mask_high"), &[], &[1.0]);
        let clipped = self.builder.op(name, "Clip", &[&magnitude, &low, &high], vec![]);
        let rows = self.builder.int64s(format!("{name}/mask_shape"), &[0, -1]);
        self.made_mask = Some(self.builder.op(name, "Reshape", &[&clipped, &rows], vec![]));
    }

    /// GlobalAveragePooling1D over the unmasked steps of `x (N, T, C)`: each step weighted by
    /// its mask over the sample's count of them (all zeros for a sample with none).
    pub(super) fn masked_mean(&mut self, name: &str, x: &str, mask: &str) -> String {
        let steps_axis = self.builder.int64s(format!("{name}/steps_axis"), &[1]);
        let count = self
            .builder
            .op(name, "ReduceSum", &[mask, &steps_axis], vec![int("keepdims", 1)]);
        let one = self.builder.floats(format!("{name}/one"), &[], &[1.0]);
        let count = self.builder.op(name, "Max", &[&count, &one], vec![]);
        let scale = self.builder.op(name, "Reciprocal", &[&count], vec![]);
        let weights = self.builder.op(name, "Mul", &[mask, &scale], vec![]);
        let feature_axis = self.builder.int64s(format!("{name}/weights_axis"), &[-1]);
        let weights = self.builder.op(name, "Unsqueeze", &[&weights, &feature_axis], vec![]);
        let weighted = self.builder.op(name, "Mul", &[x, &weights], vec![]);
        self.builder
            .op(name, "ReduceSum", &[&weighted, &steps_axis], vec![int("keepdims", 0)])
    }

    /// The steps of `x (N, T, F)` time-major and apart, `T` tensors `(1, N, F)`, and the mask
    /// `(N, T)` likewise as booleans `(1, N, 1)`.
    pub(super) fn split_steps(&mut self, name: &str, x: &str, mask: &str, steps: usize) -> (Vec<String>, Vec<String>) {
        let time_major = self.builder.transpose(name, x, &[1, 0, 2]);
        let xs = self.split(name, &time_major, steps);
        let feature_axis = self.builder.int64s(format!("{name}/mask_axis"), &[-1]);
        let mask = self.builder.op(name, "Unsqueeze", &[mask, &feature_axis], vec![]);
        let mask = self.builder.transpose(name, &mask, &[1, 0, 2]);
        let mask = self.builder.op(name, "Cast", &[&mask], vec![int("to", BOOL as i64)]);
        let masks = self.split(name, &mask, steps);
        (xs, masks)
    }

    /// `Split` of `x` along its first axis into `parts` tensors of one row each.
    fn split(&mut self, name: &str, x: &str, parts: usize) -> Vec<String> {
        let first = self.builder.op(name, "Split", &[x], vec![int("axis", 0)]);
        let mut names = vec![first];
        for part in 1..parts {
            names.push(super::export_layers::add_output(self.builder, &format!("_{part}")));
        }
        names
    }
}
