//! `strata predict`: the most probable classes of images, by a saved model, with the class
//! names it knows.

use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use strata::applications::{IMAGENET_CLASSES, ImageInput, Mode, imagenet_classes, preprocess_input};
use strata::data::images::{image_geometry, load_image_pixels};
use strata::data::labels::{class_names, names_for_outputs, read_labels};
use strata::{Error, Result};

#[derive(Args)]
pub(crate) struct PredictArgs {
    /// A model file saved by `strata train --save` (or `strata import`).
    #[arg(long)]
    model: PathBuf,
    /// Images to classify (PNG or JPEG), converted to the model's channels, resized to its input
    /// and prepared as the model records (see --preprocess).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// How many of the most probable classes to print, as Keras's decode_predictions(preds, top).
    #[arg(long, default_value_t = 3, value_name = "K")]
    top: usize,
    /// Class names, one per line, a JSON list, or Keras's imagenet_class_index.json
    /// ({"0": ["n01440764", "tench"], ...}), instead of the model's own [default: the names the
    /// model was trained with; ImageNet's for a 1000-class model without names].
    #[arg(long, value_name = "FILE")]
    labels: Option<PathBuf>,
    /// How pixels (0-255) are prepared: tf (x/127.5 - 1), torch (/255, ImageNet mean/std),
    /// caffe (RGB to BGR, ImageNet means subtracted), unit (/255) or none [default: what the
    /// model records (an image-folder run, an imported Keras application), else unit].
    #[arg(long, value_name = "MODE")]
    preprocess: Option<String>,
    /// Quantize the model before running it, as Keras's model.quantize(MODE): int8.
    #[arg(long, value_name = "MODE")]
    quantize: Option<String>,
    /// Print one JSON array instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &PredictArgs) -> Result<()> {
    if args.top == 0 {
        return Err(Error::invalid("--top", 0, "must be at least 1"));
    }
    let mut model = crate::load_saved_model(&args.model)?;
    if let Some(mode) = &args.quantize {
        crate::quantize::quantize(&mut model, mode, "per_row")?;
    }
    let mode = preprocessing(args, &model)?;
    let outputs = model.output_shape().map_or(1, |shape| shape.iter().product());
    let names = names(args, &model, outputs)?;
    // ImageNet's names come with WordNet ids, which Keras's decode_predictions shows too.
    let wnids = args.labels.is_none() && class_names(&model)?.is_none() && outputs == IMAGENET_CLASSES;
    let name = |class: usize| names.as_ref().map_or(class.to_string(), |names| names[class].clone());
    let mut results = Vec::new();
    for path in &args.images {
        let ranked = classify(&mut model, path, mode, names.as_deref(), args.top)?;
        if !args.json {
            let top: Vec<String> = ranked
                .iter()
                .map(|&(class, p)| format!("{} ({p:.4})", name(class)))
                .collect();
            println!("{}: {}", path.display(), top.join(", "));
        }
        let top: Vec<_> = ranked
            .iter()
            .map(|&(class, p)| {
                let mut entry = json!({"class": class, "probability": p});
                if names.is_some() {
                    entry["name"] = json!(name(class));
                }
                if wnids {
                    entry["wnid"] = json!(imagenet_classes()[class].0);
                }
                entry
            })
            .collect();
        results.push(json!({"image": path.display().to_string(), "top": top}));
    }
    if args.json {
        println!("{}", serde_json::Value::Array(results));
    }
    Ok(())
}

/// The `top` most probable classes of the image at `path` and their probabilities, most
/// probable first: the image converted to the model's channels, resized to its input and its
/// pixels prepared as `mode` says.
fn classify(
    model: &mut strata::model::Model,
    path: &std::path::Path,
    mode: Mode,
    names: Option<&[String]>,
    top: usize,
) -> Result<Vec<(usize, f32)>> {
    let input = model.input_shape().map(<[usize]>::to_vec).unwrap_or_default();
    let (height, width, channels) = image_geometry(&input)?;
    let pixels = load_image_pixels(path, height, width, channels)?;
    let mut shape = vec![1];
    shape.extend(&input);
    let output = model.predict(&preprocess_input(&pixels, mode)?.reshape(&shape)?, 1)?;
    let mut ranked: Vec<(usize, f32)> = class_probabilities(output.data(), names)
        .into_iter()
        .enumerate()
        .collect();
    ranked.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    ranked.truncate(top);
    Ok(ranked)
}

/// The pixel preparation: `--preprocess`, else the model's record, else [0, 1] scaling (how
/// MNIST models and models saved before records existed were trained).
fn preprocessing(args: &PredictArgs, model: &strata::model::Model) -> Result<Mode> {
    match &args.preprocess {
        Some(name) => Mode::parse(name).map_err(|e| Error::Usage(format!("--preprocess: {e}"))),
        None => Ok(ImageInput::of(model)?.map_or(Mode::Unit, |record| record.mode)),
    }
}

/// The names of the model's `outputs` classes: `--labels`, else the model's own (outputs past
/// them by number), else ImageNet's for 1000 outputs, else none (classes print as numbers). A
/// count that differs from the outputs is an error naming both.
fn names(args: &PredictArgs, model: &strata::model::Model, outputs: usize) -> Result<Option<Vec<String>>> {
    let (names, from) = match &args.labels {
        Some(path) => (Some(read_labels(path)?), format!("--labels {}", path.display())),
        None => match class_names(model)? {
            Some(names) => (
                Some(names_for_outputs(&names, outputs)),
                "the model's class names".to_string(),
            ),
            None if outputs == IMAGENET_CLASSES => {
                let names = imagenet_classes().iter().map(|(_, name)| name.to_string()).collect();
                (Some(names), "ImageNet's classes".to_string())
            }
            None => (None, String::new()),
        },
    };
    match names {
        // One sigmoid output is the probability of class 1 of 2 (Keras's binary labels).
        Some(names) if names.len() != outputs && !(outputs == 1 && names.len() == 2) => Err(Error::Usage(format!(
            "{from} name {} classes, but model '{}' has {outputs} outputs",
            names.len(),
            model.name()
        ))),
        names => Ok(names),
    }
}

/// A sample's output as one probability per class: a binary model's single sigmoid output `p`
/// becomes `[1 − p, p]` when two classes are named, any other output stays as it is.
fn class_probabilities(output: &[f32], names: Option<&[String]>) -> Vec<f32> {
    match (output, names) {
        (&[p], Some(names)) if names.len() == 2 => vec![1.0 - p, p],
        _ => output.to_vec(),
    }
}
