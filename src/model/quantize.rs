//! `model.quantize("int8")`: Keras 3's post-training int8 quantization.
//!
//! As Keras: `Dense` kernels get one symmetric abs-max scale per output unit and multiply
//! activations quantized per row on the fly; `Embedding` tables get one scale per row. Beyond
//! Keras (which keeps them in float): `Conv1D` and `Conv2D` kernels get one scale per filter and
//! convolve images quantized with one scale each. Every other layer stays `f32`, and the summary
//! says which. A quantized model is for inference: `fit` refuses it, as Keras does.

use super::Model;
use crate::autograd::{ActivationScale, QuantizedKernel, ScaleAxis};
use crate::error::{Error, Result};

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
        let mut report = Vec::new();
        for layer in &self.network.layers {
            let params = layer.params();
            let Some(&kernel) = params.first() else { continue };
            let class_name = layer.class_name();
            let axis = match class_name {
                "Dense" | "Conv1D" | "Conv2D" => Some(ScaleAxis::Columns),
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
                Some(axis) => match QuantizedKernel::quantize(self.params.value(kernel), axis, activations) {
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
