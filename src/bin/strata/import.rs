//! `strata import`: a Keras model (a `.keras` archive or a legacy `.h5` file) or an ONNX model
//! (`.onnx`, see `strata::io::load_onnx`) converted to a strata model file, with how its images
//! are prepared (a Keras application's mode, or `--preprocess`) and its class names
//! (`--labels`) recorded in it.

use clap::Args;
use std::path::PathBuf;
use strata::applications::{ImageInput, Mode};
use strata::data::labels::{read_labels, set_class_names};
use strata::model::Model;
use strata::{Error, Result};

#[derive(Args)]
pub(crate) struct ImportArgs {
    /// The Keras file, as `model.save("model.keras")` or `model.save("model.h5")` (Keras 3 or
    /// tf.keras 2) writes it: a Sequential or functional model; or an ONNX file (`.onnx`, from
    /// `torch.onnx.export` for example), whose images become channels-last `(N, H, W, C)`.
    file: PathBuf,
    /// The strata model file to write (safetensors).
    #[arg(short, long)]
    output: PathBuf,
    /// Class names to keep with the model (one per line, a JSON list, or Keras's
    /// imagenet_class_index.json), one per output.
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// How the model's images are prepared (tf, torch, caffe, unit or none), recorded for
    /// `strata predict` [default: the mode of the Keras application the model's name says, if
    /// any].
    #[arg(long, value_name = "MODE")]
    preprocess: Option<String>,
}

pub(crate) fn run(args: &ImportArgs) -> Result<()> {
    crate::check_output("--output", &args.output, &args.file)?;
    let onnx = args.file.extension().is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
    let mut model = match onnx {
        true => strata::io::load_onnx(&args.file)?,
        false => strata::io::import_keras_file(&args.file)?,
    };
    if let Some(path) = &args.labels {
        keep_labels(&mut model, path)?;
    }
    // A Keras application's images need its family's preparation: recorded, `predict` applies it.
    let image_input = match &args.preprocess {
        Some(name) => {
            let mode = Mode::parse(name).map_err(|e| Error::Usage(format!("--preprocess: {e}")))?;
            let image_size = match model.input_shape() {
                Some(&[height, width, _]) => Some((height, width)),
                _ => None,
            };
            Some(ImageInput { image_size, mode })
        }
        None => ImageInput::of_keras_application(&model),
    };
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
            "images for '{}' are prepared in \"{}\" mode (recorded for strata predict)",
            model.name(),
            record.mode.name()
        );
    }
    Ok(())
}

/// Keeps the names of `path` with the model; a count other than its outputs is an error naming
/// both.
fn keep_labels(model: &mut Model, path: &std::path::Path) -> Result<()> {
    let names = read_labels(path)?;
    let outputs: usize = model.output_shape().map_or(1, |shape| shape.iter().product());
    if names.len() != outputs {
        return Err(Error::Usage(format!(
            "--labels {} names {} classes, but model '{}' has {outputs} outputs",
            path.display(),
            names.len(),
            model.name()
        )));
    }
    set_class_names(model, &names);
    Ok(())
}
