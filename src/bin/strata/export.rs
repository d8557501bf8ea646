//! `strata export`: a saved strata model written as an ONNX file (opset 17) for ONNX Runtime
//! and the other runtimes that read ONNX.

use clap::Args;
use std::path::PathBuf;
use strata::Result;

#[derive(Args)]
pub(crate) struct ExportArgs {
    /// The saved strata model (.safetensors, as `strata train --save` or `model.save` write it).
    #[arg(long)]
    model: PathBuf,
    /// The ONNX file to write.
    #[arg(short, long)]
    output: PathBuf,
}

pub(crate) fn run(args: &ExportArgs) -> Result<()> {
    let model = strata::load_model(&args.model)?;
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
