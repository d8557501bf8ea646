//! `strata predict`: the top classes of images, by a saved model.

use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use strata::Result;
use strata::data::images::{image_geometry, load_image};

#[derive(Args)]
pub(crate) struct PredictArgs {
    /// A model file saved by `strata train --save`.
    #[arg(long)]
    model: PathBuf,
    /// Images to classify (PNG or JPEG), converted to the model's channels and resized to its
    /// input; pixels are scaled to [0, 1] as in training (MNIST digits are white on black).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Print one JSON array instead of text.
    #[arg(long)]
    json: bool,
}

pub(crate) fn run(args: &PredictArgs) -> Result<()> {
    let mut model = crate::load_saved_model(&args.model)?;
    let input = model.input_shape().map(<[usize]>::to_vec).unwrap_or_default();
    let (height, width, channels) = image_geometry(&input)?;
    let mut results = Vec::new();
    for path in &args.images {
        let image = load_image(path, height, width, channels)?;
        let mut shape = vec![1];
        shape.extend(&input);
        let output = model.predict(&image.reshape(&shape)?, 1)?;
        let mut ranked: Vec<(usize, f32)> = output.data().iter().copied().enumerate().collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        ranked.truncate(3);
        if !args.json {
            let top: Vec<String> = ranked.iter().map(|(class, p)| format!("{class} ({p:.4})")).collect();
            println!("{}: {}", path.display(), top.join(", "));
        }
        let top: Vec<_> = ranked
            .iter()
            .map(|(class, p)| json!({"class": class, "probability": p}))
            .collect();
        results.push(json!({"image": path.display().to_string(), "top": top}));
    }
    if args.json {
        println!("{}", serde_json::Value::Array(results));
    }
    Ok(())
}
