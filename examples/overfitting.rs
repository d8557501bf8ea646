//! Overfitting, and three cures for it, on a small slice of MNIST.
//!
//! A wide MLP trained on only 2,000 images learns them by heart: its training accuracy reaches
//! 100 % while its accuracy on images it has not seen stays far lower. The gap between the two
//! is overfitting. The same MLP with Dropout, an L2 weight penalty and early stopping (which
//! stops when the validation loss stops improving and keeps the best epoch's weights) fits the
//! training images less perfectly and closes much of that gap.
//!
//! Run with `cargo run --release --example overfitting`.

use strata::data::{mnist, scale};
use strata::prelude::*;

/// Training images: few enough that the plain model can memorise them.
const TRAIN: usize = 2_000;
/// Validation images, taken from the other end of the training set.
const VALIDATION: usize = 2_000;

fn model(regularized: bool) -> Model {
    let mut model = Sequential::new();
    model.add(Input::new(&[784]));
    for _ in 0..2 {
        let mut dense = Dense::new(512).activation("relu");
        if regularized {
            dense = dense.kernel_regularizer(l2(1e-4));
        }
        model.add(dense);
        if regularized {
            model.add(Dropout::new(0.5));
        }
    }
    model.add(Dense::new(10).activation("softmax"));
    model
}

fn main() -> strata::Result<()> {
    let ((x, y), _) = mnist::load_data()?;
    let x = scale(&x, 1.0 / 255.0).reshape(&[60_000, 784])?;
    let (x_train, y_train) = (x.slice_rows(0, TRAIN), y.slice_rows(0, TRAIN));
    let end = x.rows();
    let (x_val, y_val) = (x.slice_rows(end - VALIDATION, end), y.slice_rows(end - VALIDATION, end));

    let mut gaps = Vec::new();
    for regularized in [false, true] {
        let mut model = model(regularized);
        model.compile("adam", "sparse_categorical_crossentropy", &["accuracy"])?;
        let options = FitOptions::default()
            .epochs(40)
            .batch_size(32)
            .verbose(0)
            .validation_data(&x_val, &y_val);
        let mut early = EarlyStopping::new("val_loss").patience(5).restore_best_weights(true);
        let mut callbacks: Vec<&mut dyn Callback> = Vec::new();
        if regularized {
            callbacks.push(&mut early);
        }
        let history = model.fit_with_callbacks(&x_train, &y_train, options, &mut callbacks)?;
        // Both accuracies measured the same way, at inference (dropout off).
        let train = model.evaluate(&x_train, &y_train, 256)?.accuracy.unwrap_or(0.0);
        let validation = model.evaluate(&x_val, &y_val, 256)?.accuracy.unwrap_or(0.0);
        let label = if regularized {
            "dropout 0.5 + l2(1e-4) + early stopping"
        } else {
            "plain"
        };
        println!(
            "{label:>40}: {} epochs, train accuracy {train:.4}, validation accuracy {validation:.4}, gap {:.4}",
            history.epochs.len(),
            train - validation
        );
        gaps.push(train - validation);
    }
    if gaps[1] >= gaps[0] {
        return Err(strata::Error::Data(format!(
            "the regularized gap {:.4} is not smaller than the plain one {:.4}",
            gaps[1], gaps[0]
        )));
    }
    println!("regularization shrank the gap from {:.4} to {:.4}", gaps[0], gaps[1]);
    Ok(())
}
