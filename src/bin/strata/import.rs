//! `strata import`: a Keras model (a `.keras` archive or a legacy `.h5` file) converted to a
//! strata model file.

use clap::Args;
use std::path::PathBuf;
use strata::Result;

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// The Keras file, as `model.save("model.keras")` or `model.save("model.h5")` (Keras 3 or
    /// tf.keras 2) writes it: a Sequential or functional model.
    file: PathBuf,
    /// The strata model file to write (safetensors).
    #[arg(short, long)]
    output: PathBuf,
}

pub(crate) fn run(args: &ImportArgs) -> Result<()> {
    let model = strata::io::import_keras_file(&args.file)?;
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
