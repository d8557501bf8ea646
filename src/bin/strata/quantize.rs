//! `strata quantize`: a saved model's kernels made int8 (Keras's `model.quantize("int8")`),
//! written as a new, about four times smaller model file; and the `--quantize` flag
//! `evaluate` and `predict` share.

use clap::Args;
use std::path::PathBuf;
use strata::Result;
use strata::model::{ActivationScale, Model};

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
}

pub(crate) fn run(args: &QuantizeArgs) -> Result<()> {
    let mut model = crate::load_saved_model(&args.model)?;
    quantize(&mut model, &args.mode, &args.activations)?;
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
    let report = model.quantize_with(mode, ActivationScale::from_name(activations)?)?;
    for layer in report.iter().filter(|layer| !layer.int8) {
        eprintln!(
            "note: layer '{}' ({}) stays f32: {}",
            layer.name, layer.class_name, layer.reason
        );
    }
    Ok(())
}
