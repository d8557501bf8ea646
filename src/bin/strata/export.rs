//! `strata export`: a saved strata model written as an ONNX file (opset 17) for ONNX Runtime
//! and the other runtimes that read ONNX, or, for an output ending in `.keras` or `.h5`, as the
//! Keras file `keras.models.load_model` reads (`Model::save` writes it).

use clap::Args;
use std::path::PathBuf;
use strata::{Error, Result};

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The saved strata model (.safetensors, as `strata train --save` or `model.save` write it).
    #[arg(long)]
    model: PathBuf,
    /// The file to write: ONNX, or Keras's format for a name ending in .keras (Keras 3's
    /// archive) or .h5 (the legacy HDF5 file).
    #[arg(short, long)]
    output: PathBuf,
}

pub(crate) fn run(args: &ExportArgs) -> Result<()> {
    crate::check_output("--output", &args.output, &args.model)?;
    let extension = args
        .output
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    if extension.as_deref() == Some("safetensors") {
        return Err(Error::invalid(
            "--output",
            args.output.display(),
            "export writes ONNX (name the file .onnx) or Keras (.keras, .h5); a .safetensors file is \
             what --model already is",
        ));
    }
    let model = strata::load_model(&args.model)?;
    if let Some("keras" | "h5" | "hdf5") = extension.as_deref() {
        model.save(&args.output)?;
        println!(
            "exported {} ({} layers) to {} for keras.models.load_model",
            args.model.display(),
            model.layers().iter().filter(|l| !l.is_input()).count(),
            args.output.display()
        );
        return Ok(());
    }
    model.save_onnx(&args.output)?;
    println!(
        "exported {} ({} layers) to {} (ONNX opset {}, batch axis \"{}\")",
        args.model.display(),
        model.layers().iter().filter(|l| !l.is_input()).count(),
        args.output.display(),
        strata::io::onnx::OPSET,
        strata::io::onnx::BATCH_DIM
    );
    Ok(())
}
