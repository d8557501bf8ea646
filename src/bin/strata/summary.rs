//! `strata summary`: Keras's `model.summary()` table of a named model, model file, saved model,
//! Keras file or ONNX file.

use clap::Args;
use strata::applications::load_description;
use strata::run::{DataSource, sized_for_data};
use strata::{Error, Result};

#[derive(Args)]
pub(crate) struct SummaryArgs {
    /// A named model or a model file (.toml or .json), a saved model (.safetensors), a Keras
    /// model (.keras, or a legacy .h5), or an ONNX model (.onnx, as `strata import` reads it).
    #[arg(long, default_value = "mlp")]
    model: String,
}

pub(crate) fn run(args: &SummaryArgs) -> Result<()> {
    if args.model.ends_with(".safetensors") {
        // From the architecture alone: no weight is read or made, whatever the model's size.
        print!("{}", strata::io::weights::saved_model_summary(&args.model)?);
        return Ok(());
    }
    if args.model.ends_with(".keras") || args.model.ends_with(".h5") {
        // Imported whole (weights too): Keras files keep their architecture beside the weights.
        print!("{}", strata::io::import_keras_file(&args.model)?.summary()?);
        return Ok(());
    }
    if args.model.ends_with(".onnx") {
        // Imported whole, as `strata import` would: the layers strata runs it with.
        print!("{}", strata::io::load_onnx(&args.model)?.summary()?);
        return Ok(());
    }
    let spec = load_description(&args.model)?;
    // Sizes left to the text ("auto") are shown for the text the model file names (the bundled
    // Hamlet for char_rnn), as `strata train` would size them.
    let source = DataSource::from_flag(None, spec.data.as_deref(), None, 0)?;
    let (mut spec, _) = sized_for_data(spec, &source)?;
    let declared = spec.model.input_shape().is_some()
        || spec
            .model
            .layers()
            .first()
            .and_then(|l| l.declared_input_shape())
            .is_some();
    if !declared {
        return Err(Error::Usage(format!(
            "model '{}' declares no input shape: add an InputLayer (or input_shape on its first layer)",
            spec.name
        )));
    }
    print!("{}", spec.model.summary()?);
    Ok(())
}
