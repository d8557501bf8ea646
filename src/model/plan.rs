//! A model's pure shape inference: every call's output shapes and every layer's weight shapes,
//! from the layers' [`Layer::output_shapes`] and [`Layer::param_shapes`], without making a
//! weight.
//!
//! Building checks the plan against the memory budget ([`crate::limits`]) before it allocates
//! anything, and `summary` prints it: the summary of a 4 GB model costs no weight memory. All
//! sizes are computed with checked arithmetic, so a shape whose size wraps around 2⁶⁴ is an
//! error naming its layer, never a small number.

use super::{Footprint, Model, Source};
use crate::error::{Error, Result, keras_shape};
use crate::layers::Layer;
use crate::limits;
use crate::tensor::checked_numel;

/// The input shapes and output shapes of a layer's first call.
type FirstUse = (Vec<Vec<usize>>, Vec<Vec<usize>>);

/// What building a model for some input shapes would make.
pub(crate) struct Plan {
    /// Per-sample shape of every call output, indexed as the calls' outputs are.
    pub(crate) output_shapes: Vec<Vec<usize>>,
    /// Per layer: the input shapes of its first call (`None` for a layer never called).
    pub(crate) first_inputs: Vec<Option<Vec<Vec<usize>>>>,
    /// Per layer: its number of weights, and how many of them are trainable.
    pub(crate) layer_params: Vec<(usize, usize)>,
    /// Per call: the bytes it adds when built for one sample (its weights twice, value and
    /// gradient, on its layer's first call; its outputs' activations).
    call_bytes: Vec<u64>,
    /// The activations of one sample, all calls' outputs together (`None` beyond 2⁶⁴ bytes).
    sample_bytes: Option<u64>,
    /// The weights' values (`None` beyond 2⁶⁴ bytes).
    weight_bytes: Option<u64>,
}

impl Plan {
    /// The model's weights in all, and how many are trainable.
    pub(crate) fn param_counts(&self) -> (usize, usize) {
        self.layer_params.iter().fold((0, 0), |(t, k), &(total, trainable)| {
            (t.saturating_add(total), k.saturating_add(trainable))
        })
    }

    /// Checks that building `model` (this plan's) fits in the memory budget; else an error
    /// naming the layer at which the running total goes over, and that total.
    pub(crate) fn check_budget(&self, model: &Model) -> Result<()> {
        let mut total: Option<u64> = Some(0);
        for (c, call) in model.network.calls.iter().enumerate() {
            total = total.and_then(|t| t.checked_add(self.call_bytes[c]));
            let layer = model.network.layers[call.layer].as_ref();
            let (weights, _) = self.layer_params[call.layer];
            let shape = &self.output_shapes[call.first_output];
            let what = || {
                format!(
                    "model '{}' up to layer '{}' ({}: {weights} weights, output {}), counting each weight twice (value and gradient) and the activations of one sample,",
                    model.name,
                    layer.name(),
                    layer.class_name(),
                    keras_shape(shape)
                )
            };
            limits::check_memory(what, total)?;
        }
        Ok(())
    }
}

impl Plan {
    /// The plan's [`Footprint`].
    pub(super) fn footprint(&self) -> Footprint {
        let built_bytes = self.call_bytes.iter().try_fold(0u64, |total, &b| total.checked_add(b));
        Footprint {
            sample_bytes: self.sample_bytes,
            weight_bytes: self.weight_bytes,
            built_bytes,
        }
    }
}

impl Model {
    /// Checks that running batches of `batch` samples fits in the memory budget, before the
    /// first one runs: the activations of every layer for the batch (in training also their
    /// gradients) beside the weights (in training also their gradients and two optimizer
    /// slots). An estimate from below (a layer's saved state is not counted), so a batch that
    /// passes may still be large; one that fails surely is. `what` names the work in the error.
    /// No more than building checked needs no look at the budget (nor an allocation).
    pub(crate) fn check_batch_memory(&self, batch: usize, training: bool, what: &str) -> Result<()> {
        let Some(footprint) = self.network.memory else {
            return Ok(());
        };
        let (activation_copies, weight_copies) = if training { (2, 4) } else { (1, 1) };
        let bytes = footprint
            .sample_bytes
            .and_then(|b| {
                b.checked_mul(u64::try_from(batch).ok()?)?
                    .checked_mul(activation_copies)
            })
            .zip(footprint.weight_bytes.and_then(|w| w.checked_mul(weight_copies)))
            .and_then(|(a, w)| a.checked_add(w));
        if bytes.zip(footprint.built_bytes).is_some_and(|(b, built)| b <= built) {
            return Ok(());
        }
        let describe = || {
            let per_sample = limits::format_bytes(footprint.sample_bytes);
            format!(
                "{what} of model '{}' in batches of {batch} ({per_sample} of activations a sample)",
                self.name
            )
        };
        limits::check_memory(describe, bytes)
    }
}

/// One layer of a model as building it would make it, found without making a weight: a
/// summary's row as data.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PlannedLayer {
    /// The layer's name.
    pub name: String,
    /// Its Keras class name.
    pub class_name: &'static str,
    /// How many weights it would have (all of them, as Keras's `count_params()`).
    pub params: usize,
    /// The per-sample output shapes of its first call.
    pub output_shapes: Vec<Vec<usize>>,
}

impl Model {
    /// Every layer, in the model's layer order, as building the model for per-sample
    /// `input_shapes` would make it: its weight count and first call's output shapes. What an
    /// importer compares with the original's per-layer counts, without the weights' memory.
    pub fn planned_layers(&self, input_shapes: &[&[usize]]) -> Result<Vec<PlannedLayer>> {
        self.check_buildable(input_shapes)?;
        let plan = self.plan(input_shapes)?;
        let mut rows: Vec<PlannedLayer> = self
            .network
            .layers
            .iter()
            .zip(&plan.layer_params)
            .map(|(layer, &(params, _))| PlannedLayer {
                name: layer.name().to_string(),
                class_name: layer.class_name(),
                params,
                output_shapes: Vec::new(),
            })
            .collect();
        for call in &self.network.calls {
            let row = &mut rows[call.layer];
            if row.output_shapes.is_empty() {
                let count = self.network.layers[call.layer].output_count();
                row.output_shapes = plan.output_shapes[call.first_output..call.first_output + count].to_vec();
            }
        }
        Ok(rows)
    }

    /// The number of weights building the model for per-sample `input_shapes` would make,
    /// found without making them (a reader compares it with what a file holds).
    pub(crate) fn planned_param_count(&self, input_shapes: &[&[usize]]) -> Result<usize> {
        self.check_buildable(input_shapes)?;
        Ok(self.plan(input_shapes)?.param_counts().0)
    }

    /// Infers every shape of the model for per-sample `input_shapes` without building it (the
    /// model's input count is the caller's to check). Errors name the layer.
    pub(crate) fn plan(&self, input_shapes: &[&[usize]]) -> Result<Plan> {
        let (layers, calls) = (&self.network.layers, &self.network.calls);
        let mut first_use: Vec<Option<FirstUse>> = vec![None; layers.len()];
        let mut plan = Plan {
            output_shapes: Vec::with_capacity(self.output_count()),
            first_inputs: vec![None; layers.len()],
            layer_params: vec![(0, 0); layers.len()],
            call_bytes: Vec::with_capacity(calls.len()),
            sample_bytes: Some(0),
            weight_bytes: Some(0),
        };
        for call in calls {
            let inputs: Vec<Vec<usize>> = call
                .inputs
                .iter()
                .map(|source| match *source {
                    Source::ModelInput(i) => input_shapes[i].to_vec(),
                    Source::Output(o) => plan.output_shapes[o].clone(),
                })
                .collect();
            let layer = layers[call.layer].as_ref();
            let first = first_use[call.layer].is_none();
            let outputs = call_shapes(layer, &inputs, &mut first_use[call.layer])?;
            let mut bytes = Some(0u64);
            for shape in &outputs {
                let what = format!("layer '{}' ({}) output", layer.name(), layer.class_name());
                bytes = add_bytes(bytes, &what, shape)?;
            }
            plan.sample_bytes = plan.sample_bytes.zip(bytes).and_then(|(a, b)| a.checked_add(b));
            if first {
                let (counts, weight_bytes) = param_counts(layer, &inputs)?;
                plan.layer_params[call.layer] = counts;
                plan.weight_bytes = plan.weight_bytes.and_then(|w| w.checked_add(weight_bytes));
                bytes = bytes.and_then(|b| weight_bytes.checked_mul(2)?.checked_add(b));
                plan.first_inputs[call.layer] = Some(inputs);
            }
            plan.call_bytes.push(bytes.unwrap_or(u64::MAX));
            plan.output_shapes.extend(outputs);
        }
        Ok(plan)
    }
}

/// `bytes` plus the f32 values of `shape`; an error naming `what` and the shape when its size
/// does not fit in 64 bits.
fn add_bytes(bytes: Option<u64>, what: &str, shape: &[usize]) -> Result<Option<u64>> {
    let own = checked_numel(shape).and_then(limits::f32_bytes);
    if own.is_none() {
        return Err(Error::OverBudget {
            what: format!("{what} of shape {}", keras_shape(shape)),
            needed: limits::format_bytes(None),
            budget: limits::format_bytes(Some(limits::memory_budget()?)),
        });
    }
    Ok(bytes.zip(own).and_then(|(a, b)| a.checked_add(b)))
}

/// A layer's weight counts (all, trainable) and their bytes for `inputs`.
fn param_counts(layer: &dyn Layer, inputs: &[Vec<usize>]) -> Result<((usize, usize), u64)> {
    let (mut total, mut trainable, mut bytes) = (0usize, 0usize, Some(0u64));
    for param in layer.param_shapes(inputs)? {
        let what = format!("layer '{}' ({}) weight", layer.name(), layer.class_name());
        bytes = add_bytes(bytes, &what, &param.shape)?;
        let count = checked_numel(&param.shape).unwrap_or(usize::MAX);
        total = total.saturating_add(count);
        if param.trainable {
            trainable = trainable.saturating_add(count);
        }
    }
    Ok(((total, trainable), bytes.unwrap_or(u64::MAX)))
}

/// The output shapes of one call of `layer` on `inputs`: checks them against the layer's
/// declared shape and, for a shared layer's later calls, its first call's (`first_use`,
/// recorded on the first call).
fn call_shapes(layer: &dyn Layer, inputs: &[Vec<usize>], first_use: &mut Option<FirstUse>) -> Result<Vec<Vec<usize>>> {
    if let (Some(declared), [only]) = (layer.declared_input_shape(), inputs)
        && declared != only.as_slice()
    {
        return Err(Error::LayerShape {
            layer: layer.name().to_string(),
            expected: keras_shape(declared),
            received: keras_shape(only),
        });
    }
    match first_use {
        Some((seen, outputs)) if seen == inputs => Ok(outputs.clone()),
        Some((seen, _)) => {
            let show = |shapes: &[Vec<usize>]| shapes.iter().map(|s| keras_shape(s)).collect::<Vec<_>>().join(", ");
            Err(Error::LayerShape {
                layer: layer.name().to_string(),
                expected: format!(
                    "{} (the shapes of its first call: a shared layer keeps them)",
                    show(seen)
                ),
                received: show(inputs),
            })
        }
        None => {
            let outputs = layer
                .output_shapes(inputs)
                .map_err(|e| e.in_layer(layer.name(), layer.class_name()))?;
            if outputs.len() != layer.output_count() {
                return Err(Error::Usage(format!(
                    "layer '{}' states {} output shapes for {} outputs",
                    layer.name(),
                    outputs.len(),
                    layer.output_count()
                )));
            }
            *first_use = Some((inputs.to_vec(), outputs.clone()));
            Ok(outputs)
        }
    }
}
