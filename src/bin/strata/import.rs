//! `strata import`: a Keras 3 `.keras` archive converted to a strata model file; a Keras
//! application's preprocessing mode is recorded in it.

use clap::Args;
use std::path::PathBuf;
use strata::Result;
use strata::applications::ImageInput;

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
    let mut model = strata::io::import_keras(&args.file)?;
    // A Keras application's images need its family's preparation: recorded, `predict` applies it.
    let image_input = ImageInput::of_keras_application(&model);
    if let Some(record) = &image_input {
        record.attach_to(&mut model);
    }
    model.save(&args.output)?;
    println!(
        "imported {} ({} layers, {} parameters) to {}",
        args.file.display(),
        model.layers().iter().filter(|l| !l.is_input()).count(),
        model.count_params(),
        args.output.display()
    );
    if let Some(record) = image_input {
        println!(
            "images for '{}' are prepared in Keras's \"{}\" mode (recorded for strata predict)",
            model.name(),
            record.mode.name()
        );
    }
    Ok(())
}
