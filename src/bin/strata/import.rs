//! `strata import`: a Keras 3 `.keras` archive converted to a strata model file.

use clap::Args;
use std::path::PathBuf;
use strata::Result;

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// The `.keras` file, as Keras's `model.save("model.keras")` writes it (a Sequential or
    /// functional model).
    file: PathBuf,
    /// The strata model file to write (safetensors).
    #[arg(short, long)]
    output: PathBuf,
}

pub(crate) fn run(args: &ImportArgs) -> Result<()> {
    let model = strata::io::import_keras(&args.file)?;
    model.save(&args.output)?;
    println!(
        "imported {} ({} layers, {} parameters) to {}",
        args.file.display(),
        model.layers().iter().filter(|l| !l.is_input()).count(),
        model.count_params(),
        args.output.display()
    );
    Ok(())
}
