//! `strata evaluate`: a saved model's loss, accuracy and confusion matrix on test data (its
//! classes by name when the model keeps their names).

use clap::Args;
use serde_json::json;
use std::path::PathBuf;
use strata::Result;
use strata::data::labels::{class_names, names_for_outputs};
use strata::losses::Loss;
use strata::metrics::ConfusionMatrix;

#[derive(Args)]
pub(crate) struct EvaluateArgs {
    /// A model file saved by `strata train --save` (or `model.save`).
    #[arg(long)]
    model: PathBuf,
    /// Test data: one of Keras's data sets by name (cifar10, imdb:num_words=10000, ...; its test
    /// split), a directory of MNIST IDX .gz files (its t10k files are used), a CSV file, a
    /// folder of class folders or a .txt text [default: the test part of the data the model was
    /// trained on, or the bundled MNIST test set].
    #[arg(long)]
    data: Option<PathBuf>,
    /// Name of the CSV label column [default: the last column].
    #[arg(long)]
    label: Option<String>,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
    /// Quantize the model before running it, as Keras's model.quantize(MODE): int8.
    #[arg(long, value_name = "MODE")]
    quantize: Option<String>,
    /// Also write the confusion matrix as a PNG heat map to this file.
    #[arg(long, value_name = "FILE.png")]
    confusion_matrix: Option<PathBuf>,
}

pub(crate) fn run(args: &EvaluateArgs) -> Result<()> {
    let mut model = crate::load_saved_model(&args.model)?;
    if let Some(mode) = &args.quantize {
        crate::quantize::quantize(&mut model, mode, "per_row")?;
    }
    let (x, y) = strata::run::evaluation_data(&mut model, args.data.as_deref(), args.label.as_deref())?;
    let loss = model.loss().expect("evaluation_data checked the compile settings");
    let scores = model.evaluate(&x, &y, 256)?;
    // A confusion matrix only means something for classifiers.
    let classifier = matches!(
        loss,
        Loss::SparseCategoricalCrossentropy { .. }
            | Loss::CategoricalCrossentropy { .. }
            | Loss::BinaryCrossentropy { .. }
    );
    let matrix = if classifier {
        let outputs = model.predict(&x, 256)?;
        let threshold = if loss.from_logits() { 0.0 } else { 0.5 };
        let matrix = ConfusionMatrix::from_outputs_with_threshold(&outputs, &y, threshold)?;
        Some(match class_names(&model)? {
            Some(names) if names.len() <= matrix.num_classes() => {
                let classes = matrix.num_classes();
                matrix.with_class_names(&names_for_outputs(&names, classes))?
            }
            _ => matrix,
        })
    } else {
        None
    };
    if let (Some(path), Some(matrix)) = (&args.confusion_matrix, &matrix) {
        strata::plot::plot_confusion_matrix(matrix, path)?;
    }
    if args.json {
        let mut report = json!({
            "model": args.model.display().to_string(),
            "test_loss": scores.loss,
            "test_accuracy": scores.accuracy,
            "samples": x.rows(),
        });
        for (key, value) in &scores.metrics {
            report[format!("test_{key}")] = json!(value);
        }
        if let Some(matrix) = &matrix {
            report["confusion_matrix"] = json!(matrix);
        }
        println!("{report}");
    } else {
        print!("test loss: {:.4}", scores.loss);
        if let Some(accuracy) = scores.accuracy {
            print!(" - test accuracy: {accuracy:.4}");
        }
        for (key, value) in &scores.metrics {
            print!(" - test {key}: {value:.4}");
        }
        println!(" ({} samples)", x.rows());
        if let Some(matrix) = &matrix {
            println!("\n{}", matrix.report(4));
        }
    }
    Ok(())
}
