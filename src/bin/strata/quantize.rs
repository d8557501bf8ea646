//! `strata quantize`: a saved model's kernels made int8 (Keras's `model.quantize("int8")`),
//! written as a new, about four times smaller model file; and the `--quantize` flag
//! `evaluate` and `predict` share.

use clap::Args;
use std::path::{Path, PathBuf};
use strata::model::{ActivationScale, Model, QuantizeOptions};
use strata::run::{DataSource, RunRecord};
use strata::{Error, Result, Tensor};

#[derive(Args)]
pub(crate) struct QuantizeArgs {
    /// The saved strata model (.safetensors, as `strata train --save` or `model.save` write it).
    #[arg(long)]
    model: PathBuf,
    /// The quantized model file to write.
    #[arg(short, long)]
    output: PathBuf,
    /// The quantization mode, as Keras's `model.quantize(mode)`: int8.
    #[arg(long, default_value = "int8")]
    mode: String,
    /// How activations are scaled on the fly: per_row (one scale per sample, Keras's) or
    /// per_tensor (one per batch).
    #[arg(long, default_value = "per_row", value_name = "SCALING")]
    activations: String,
    /// Calibrated (static) quantization: run the f32 model on the first N training samples and
    /// fix each int8 layer's input scale from their range (no scale measured per batch).
    #[arg(long, value_name = "N")]
    calibrate: Option<usize>,
    /// The data whose training samples calibrate (as `strata train --data`) [default: the data
    /// the model was trained on, or MNIST].
    #[arg(long, requires = "calibrate")]
    data: Option<PathBuf>,
    /// Name of the CSV label column of --data [default: the last column].
    #[arg(long, requires = "data")]
    label: Option<String>,
}

pub(crate) fn run(args: &QuantizeArgs) -> Result<()> {
    crate::check_output("--output", &args.output, &args.model)?;
    let mut model = crate::load_saved_model(&args.model)?;
    let sample = match args.calibrate {
        Some(samples) => Some(calibration_sample(
            &mut model,
            samples,
            args.data.as_deref(),
            args.label.as_deref(),
        )?),
        None => None,
    };
    quantize_calibrated(&mut model, &args.mode, &args.activations, sample.as_ref())?;
    model.save(&args.output)?;
    let size = |path: &PathBuf| std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
    println!(
        "quantized {} ({} bytes) to {} ({} bytes)",
        args.model.display(),
        size(&args.model),
        args.output.display(),
        size(&args.output)
    );
    Ok(())
}

/// Quantizes `model` with `mode` and `activations` scaling, printing each layer that stays
/// f32 and why (to stderr, so `--json` output stays one object).
pub(crate) fn quantize(model: &mut Model, mode: &str, activations: &str) -> Result<()> {
    quantize_calibrated(model, mode, activations, None)
}

/// [`quantize`] with an optional calibration sample (calibrated, static quantization).
fn quantize_calibrated(model: &mut Model, mode: &str, activations: &str, sample: Option<&Tensor>) -> Result<()> {
    let options = QuantizeOptions {
        activations: ActivationScale::from_name(activations)?,
        calibration: sample,
        ..Default::default()
    };
    let report = model.quantize_with_options(mode, options)?;
    for layer in report.iter().filter(|layer| !layer.int8) {
        eprintln!(
            "note: layer '{}' ({}) stays f32: {}",
            layer.name, layer.class_name, layer.reason
        );
    }
    Ok(())
}

/// The first `samples` training samples of `data` (or of the data the model records, or MNIST),
/// as the model takes them.
fn calibration_sample(model: &mut Model, samples: usize, data: Option<&Path>, label: Option<&str>) -> Result<Tensor> {
    if samples == 0 {
        return Err(Error::invalid("--calibrate", 0, "calibrate on at least one sample"));
    }
    let loss = model
        .loss()
        .ok_or_else(|| Error::Usage("the saved model has no compile settings".into()))?;
    let source = match (data, RunRecord::of(model)?) {
        (None, Some(record)) => record.data,
        (data, _) => DataSource::from_flag(data, None, label, model.seed_value())?,
    };
    let x = source.load_for(model, loss)?.x_train;
    Ok(x.slice_rows(0, samples.min(x.rows())))
}
