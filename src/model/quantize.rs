//! `model.quantize("int8")`: Keras 3's post-training int8 quantization.
//!
//! As Keras: `Dense` kernels get one symmetric abs-max scale per output unit and multiply
//! activations quantized per row on the fly; `Embedding` tables get one scale per row. Beyond
//! Keras (which keeps them in float): `Conv1D`, `Conv2D` and `DepthwiseConv2D` kernels get one
//! scale per output channel and convolve images quantized with one scale each. Every other
//! layer stays `f32`, and the summary says which. A quantized model is for inference: `fit`
//! refuses it, as Keras does.
//!
//! Calibrated (static) quantization, as PyTorch's and ONNX Runtime's: with
//! [`QuantizeOptions::calibration`], the model first runs in `f32` on a sample, each int8
//! layer's input range (its largest magnitude) is recorded, and the layer then quantizes its
//! input with that fixed scale: no pass over each batch to measure it, and the sums scaled back
//! by one factor per output channel. Where a `Conv2D` with a ReLU feeds only another `Conv2D`
//! (directly or through one `MaxPooling2D`), the first writes its output as int8 with the
//! second's input scale and the pooling runs on int8: no `f32` round trip between them, and the
//! same bits as the round trip (quantizing is monotone, so it commutes with the maximum).

use super::Model;
use super::graph::Source;
use crate::autograd::{ActivationScale, Graph, QuantizedKernel, ScaleAxis};
use crate::error::{Error, Result};
use crate::tensor::Tensor;
use std::collections::HashMap;

/// How [`Model::quantize_with_options`] quantizes.
#[derive(Clone, Copy, Debug, Default)]
pub struct QuantizeOptions<'a> {
    /// How activations are scaled when no calibration sample is given: per row (Keras's) or
    /// per batch.
    pub activations: ActivationScale,
    /// A sample of inputs (a few hundred training images) to fix each int8 layer's input scale
    /// from (Keras's `model.quantize("int8")` has no such option; PyTorch's static quantization
    /// and ONNX Runtime's `quantize_static` do). `None`: scales measured on each batch.
    pub calibration: Option<&'a Tensor>,
    /// With a calibration sample: keep every layer's output in `f32` (for comparing), rather
    /// than int8 between two convolutions.
    pub f32_between_layers: bool,
}

/// Calibration samples run through the model this many at a time.
const CALIBRATION_BATCH: usize = 64;

/// Keras 3's quantization modes; strata implements the first.
const KERAS_MODES: [&str; 5] = ["int8", "float8", "int4", "gptq", "awq"];

/// What [`Model::quantize`] did to one layer.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QuantizedLayer {
    /// The layer's name.
    pub name: String,
    /// Its class (`Dense`).
    pub class_name: String,
    /// True when its kernel is now int8; false when it stays `f32`.
    pub int8: bool,
    /// Why it stays `f32` (empty when `int8`).
    pub reason: String,
}

impl Model {
    /// Quantizes the model's weights as Keras's `model.quantize(mode)`: `"int8"` is the mode
    /// strata has (activations scaled per row, as Keras; see [`Model::quantize_with`]).
    /// Returns, per layer with weights, whether it became int8 or why it stays `f32`.
    ///
    /// The model must be built (trained or loaded); afterwards `predict` and `evaluate` run the
    /// int8 products, `save` writes int8 tensors, and `fit` is an error.
    pub fn quantize(&mut self, mode: &str) -> Result<Vec<QuantizedLayer>> {
        self.quantize_with(mode, ActivationScale::PerRow)
    }

    /// [`Model::quantize`] with a choice of activation scaling: one scale per row (Keras's) or
    /// one per batch.
    pub fn quantize_with(&mut self, mode: &str, activations: ActivationScale) -> Result<Vec<QuantizedLayer>> {
        self.quantize_with_options(
            mode,
            QuantizeOptions {
                activations,
                calibration: None,
                f32_between_layers: false,
            },
        )
    }

    /// [`Model::quantize`] with [`QuantizeOptions`]: the activation scaling, and a calibration
    /// sample that fixes each int8 layer's input scale (calibrated, static quantization).
    ///
    /// ```
    /// use strata::model::QuantizeOptions;
    /// use strata::prelude::*;
    /// let mut model = Sequential::new();
    /// model.add(Input::new(&[4])).add(Dense::new(3).activation("relu")).add(Dense::new(2));
    /// model.compile("adam", "mse", &[]).unwrap();
    /// let sample = Tensor::from_vec(vec![2, 4], vec![0.5, -1.0, 2.0, 0.0, 1.5, 0.25, -0.5, 1.0]).unwrap();
    /// let options = QuantizeOptions { calibration: Some(&sample), ..Default::default() };
    /// model.quantize_with_options("int8", options).unwrap();
    /// assert_eq!(model.predict(&sample, 2).unwrap().shape(), &[2, 2]);
    /// ```
    pub fn quantize_with_options(&mut self, mode: &str, options: QuantizeOptions) -> Result<Vec<QuantizedLayer>> {
        let activations = options.activations;
        match mode {
            "int8" => {}
            other if KERAS_MODES.contains(&other) => {
                return Err(Error::invalid(
                    "mode",
                    other,
                    "strata quantizes to \"int8\" only (Keras 3 also has float8, int4, gptq and awq)",
                ));
            }
            other => {
                return Err(Error::invalid(
                    "mode",
                    other,
                    format!("quantization modes are Keras's: {}", KERAS_MODES.join(", ")),
                ));
            }
        }
        if self.network.input_shapes.is_empty() {
            return Err(Error::Usage(
                "the model has no weights yet: build, train or load it before quantizing".into(),
            ));
        }
        if self.params.is_quantized() {
            return Err(Error::Usage("the model is already quantized".into()));
        }
        let ranges = match options.calibration {
            Some(sample) => Some(self.calibration_ranges(sample)?),
            None => None,
        };
        let links = match (&ranges, options.f32_between_layers) {
            (Some(_), false) => self.int8_links(),
            _ => HashMap::new(),
        };
        // Each linked layer's output scale: the input scale of the layer it feeds.
        let output_scale = |index: usize| {
            let next = links.get(&index)?;
            ranges.as_ref()?.get(next).map(|&max| crate::kernels::scale_of(max))
        };
        let mut report = Vec::new();
        for (index, layer) in self.network.layers.iter().enumerate() {
            let params = layer.params();
            let Some(&kernel) = params.first() else { continue };
            let class_name = layer.class_name();
            let axis = match class_name {
                "Dense" | "Conv1D" | "Conv2D" => Some(ScaleAxis::Columns),
                "DepthwiseConv2D" => Some(ScaleAxis::Depthwise),
                "Embedding" => Some(ScaleAxis::Rows),
                _ => None,
            };
            let mut entry = QuantizedLayer {
                name: layer.name().to_string(),
                class_name: class_name.to_string(),
                int8: false,
                reason: String::new(),
            };
            match axis {
                Some(axis) => match QuantizedKernel::quantize(self.params.value(kernel), axis, activations).and_then(
                    |quantized| match ranges.as_ref().and_then(|ranges| ranges.get(&index)) {
                        Some(&max) if axis != ScaleAxis::Rows => quantized
                            .with_input_scale(crate::kernels::scale_of(max))
                            .and_then(|quantized| match output_scale(index) {
                                Some(scale) => quantized.with_output_scale(scale),
                                None => Ok(quantized),
                            }),
                        _ => Ok(quantized),
                    },
                ) {
                    Ok(quantized) => {
                        self.params.set_quantized(kernel, quantized);
                        entry.int8 = true;
                    }
                    Err(error) => entry.reason = error.to_string(),
                },
                None => entry.reason = format!("{class_name} has no int8 path; it stays f32"),
            }
            report.push(entry);
        }
        Ok(report)
    }

    /// The largest input magnitude of each layer that can become int8 (by index), over the
    /// model's `f32` forward passes on `sample` (a layer called twice: over both calls).
    fn calibration_ranges(&mut self, sample: &Tensor) -> Result<HashMap<usize, f32>> {
        if self.network.inputs != 1 {
            return Err(Error::Usage(format!(
                "calibration takes one input tensor, but the model has {} inputs",
                self.network.inputs
            )));
        }
        self.check_inputs(&[sample])?;
        let rows = sample.rows();
        if rows == 0 {
            return Err(Error::invalid("calibration", "0 samples", "give at least one sample"));
        }
        let calibrated = |class: &str| matches!(class, "Dense" | "Conv1D" | "Conv2D" | "DepthwiseConv2D");
        let mut ranges = HashMap::new();
        let mut start = 0;
        while start < rows {
            let end = (start + CALIBRATION_BATCH).min(rows);
            let mut graph = Graph::new(&mut self.workspace.tape, &self.params, false);
            let input = graph.constant_with(|buffer| sample.slice_rows_into(start, end, buffer));
            self.network
                .forward(&mut graph, &[input], &mut self.workspace.call_outputs)?;
            for call in &self.network.calls {
                if !calibrated(self.network.layers[call.layer].class_name()) {
                    continue;
                }
                let Some(source) = call.inputs.first() else { continue };
                let var = match *source {
                    Source::ModelInput(_) => input,
                    Source::Output(o) => self.workspace.call_outputs[o],
                };
                // The largest magnitude (a NaN is skipped, as `f32::max` does).
                let max = graph.value(var).data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
                let range = ranges.entry(call.layer).or_insert(0.0f32);
                *range = range.max(max);
            }
            start = end;
        }
        Ok(ranges)
    }

    /// The pairs of layers (by index) a calibrated model keeps int8 between: a `Conv2D` with a
    /// ReLU whose output only another `Conv2D` reads, directly or through one `MaxPooling2D`
    /// (each layer called once, no value in between a model output). Any other reader of the
    /// values in between would meet an unwritten `f32`, so nothing else qualifies.
    fn int8_links(&self) -> HashMap<usize, usize> {
        let network = &self.network;
        let mut calls_of = vec![0usize; network.layers.len()];
        let mut readers: HashMap<usize, Vec<usize>> = HashMap::new();
        for (index, call) in network.calls.iter().enumerate() {
            calls_of[call.layer] += 1;
            for source in &call.inputs {
                if let Source::Output(output) = *source {
                    readers.entry(output).or_default().push(index);
                }
            }
        }
        // The one call reading `output` (not a model output), if there is exactly one.
        let only_reader = |output: usize| match readers.get(&output).map(Vec::as_slice) {
            Some(&[reader]) if !network.outputs.contains(&output) => Some(&network.calls[reader]),
            _ => None,
        };
        let once = |layer: usize, class: &str| {
            let layer_ref = &network.layers[layer];
            calls_of[layer] == 1 && layer_ref.class_name() == class && layer_ref.output_count() == 1
        };
        let relu = |layer: usize| {
            let config = network.layers[layer].config();
            let activation = config
                .get("activation")
                .or_else(|| config.get("config").and_then(|c| c.get("activation")));
            activation.and_then(|a| a.as_str()) == Some("relu")
        };
        let mut links = HashMap::new();
        for call in &network.calls {
            if !once(call.layer, "Conv2D") || !relu(call.layer) {
                continue;
            }
            let Some(mut next) = only_reader(call.first_output) else {
                continue;
            };
            if once(next.layer, "MaxPooling2D") {
                let Some(after) = only_reader(next.first_output) else {
                    continue;
                };
                next = after;
            }
            if once(next.layer, "Conv2D") && next.inputs.len() == 1 {
                links.insert(call.layer, next.layer);
            }
        }
        links
    }

    /// True when [`Model::quantize`] made any weight int8 (or an int8 model was loaded).
    pub fn is_quantized(&self) -> bool {
        self.params.is_quantized()
    }

    /// The error `fit` and the training steps give a quantized model.
    pub(crate) fn refuse_quantized_training(&self) -> Result<()> {
        if self.is_quantized() {
            return Err(Error::Usage(
                "the model is quantized to int8, which is for inference only: train it in float32 \
                 and quantize after (as Keras)"
                    .into(),
            ));
        }
        Ok(())
    }
}
