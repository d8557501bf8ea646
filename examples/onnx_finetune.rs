//! Fine-tuning an imported ONNX classifier on an image folder: the model is imported
//! (`strata::io::load_onnx`, its images channels-last), its classifier is cut off, the rest is
//! frozen, a new softmax head is added for the folder's classes and trained.
//!
//! ```sh
//! cargo run --release --example onnx_finetune                      # the tiny ResNet fixture, made-up images
//! cargo run --release --example onnx_finetune -- resnet18.onnx photos/
//! ```
//!
//! With no arguments it imports `tests/fixtures/onnx_import/tiny_resnet.onnx` (a small ResNet
//! exported from PyTorch by tools/onnx_import_fixtures.py) and writes a folder of 80 noisy
//! reddish and bluish 32x32 images, two classes, so it runs from a fresh clone. A folder given
//! has one sub-folder per class, as Keras's `image_dataset_from_directory` reads it.

use strata::data::{ImageDatasetOptions, image_dataset_from_directory, scale};
use strata::prelude::*;

fn main() -> strata::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let onnx = args.first().cloned().unwrap_or_else(|| {
        concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/tests/fixtures/onnx_import/tiny_resnet.onnx"
        )
        .into()
    });
    let mut model = strata::io::load_onnx(&onnx)?;
    let Some(&[height, width, _]) = model.input_shape() else {
        return Err(strata::Error::Usage(format!("{onnx} does not take images")));
    };
    println!(
        "imported {onnx}: {} layers, {} parameters, images {height}x{width} channels-last",
        model.layers().len(),
        model.count_params()
    );

    let folder = match args.get(1) {
        Some(folder) => std::path::PathBuf::from(folder),
        None => made_up_images(height, width)?,
    };
    let options = ImageDatasetOptions {
        image_size: (height, width),
        seed: 7,
        ..Default::default()
    };
    let (x, y, classes) = image_dataset_from_directory(&folder, &options)?;
    let x = scale(&x, 1.0 / 255.0);
    println!(
        "{} images of {} classes: {}",
        x.shape()[0],
        classes.len(),
        classes.join(", ")
    );

    // The layer that feeds the classifier (the import's last layer) is where the cut goes.
    let layers = model.layers();
    let cut = layers[layers.len().saturating_sub(2)].name().to_string();
    model.truncate_after(&cut)?.set_trainable(false);
    model.add(Dense::new(classes.len()).activation("softmax"));
    model.compile(Adam::new(1e-2), "sparse_categorical_crossentropy", &["accuracy"])?;
    let (total, trainable) = model.params().counts();
    println!("cut after '{cut}', frozen; a new head: {trainable} of {total} parameters train");

    let before = model.evaluate(&x, &y, 32)?.accuracy.unwrap_or(0.0);
    model.fit(&x, &y, FitOptions::default().epochs(30).batch_size(16).verbose(0))?;
    let after = model.evaluate(&x, &y, 32)?.accuracy.unwrap_or(0.0);
    println!("accuracy on the folder: {before:.3} before training the head, {after:.3} after");
    Ok(())
}

/// Writes 40 reddish and 40 bluish noisy images of `height` x `width` under a temporary folder.
fn made_up_images(height: usize, width: usize) -> strata::Result<std::path::PathBuf> {
    let folder = std::env::temp_dir().join(format!("strata-onnx-finetune-{}", std::process::id()));
    let mut state = 0x2545_f491_u32;
    let mut noise = move || {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        (state % 96) as u8
    };
    for (class, tint) in [("blue", [0u8, 40, 150]), ("red", [150, 40, 0])] {
        let dir = folder.join(class);
        std::fs::create_dir_all(&dir).map_err(|e| strata::Error::file(&dir, e.to_string()))?;
        for k in 0..40 {
            let mut image = image::RgbImage::new(width as u32, height as u32);
            for pixel in image.pixels_mut() {
                *pixel = image::Rgb([tint[0] + noise(), tint[1] + noise(), tint[2] + noise()]);
            }
            let path = dir.join(format!("{k}.png"));
            image
                .save(&path)
                .map_err(|e| strata::Error::file(&path, e.to_string()))?;
        }
    }
    Ok(folder)
}
