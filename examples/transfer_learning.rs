//! Transfer learning and fine-tuning, Keras's recipe, on data made here: a small CNN base is
//! trained on MNIST digits 0–4 and saved; loaded again, its classifier is cut off, it is frozen,
//! a new head is added and trained on digits 5–9 with only 100 images per class; then its top
//! convolution is unfrozen and fine-tuned with a smaller learning rate. The same architecture
//! trained from scratch on the same 500 images is the comparison.
//!
//! The Keras original:
//!
//! ```python
//! base = keras.models.load_model("base.keras")            # trained on digits 0-4
//! base = keras.Model(base.input, base.get_layer("features").output)
//! base.trainable = False
//! model = keras.Sequential([base, layers.Flatten(), layers.Dense(64, activation="relu"),
//!                           layers.Dropout(0.2), layers.Dense(5, activation="softmax")])
//! model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", ["accuracy"])
//! model.fit(x_new, y_new, epochs=30, batch_size=32)
//! base.trainable = True
//! for layer in base.layers[:base.layers.index(base.get_layer("top_conv"))]:
//!     layer.trainable = False
//! model.compile(keras.optimizers.Adam(1e-4), "sparse_categorical_crossentropy", ["accuracy"])
//! model.fit(x_new, y_new, epochs=10, batch_size=32)
//! model.evaluate(x_test_new, y_test_new)
//! ```
//!
//! Run with `cargo run --release --example transfer_learning` (`RAYON_NUM_THREADS=1` for one
//! thread). It also prints how long the frozen head's epochs took against the same epochs of
//! the whole model, and the whole run's time: the README's figures, rerun by
//! `tools/readme-figures transfer`.

use std::time::Instant;
use strata::data::{mnist, scale};
use strata::prelude::*;

/// Images of digits 0–4 the base is trained on.
const BASE_IMAGES: usize = 30_000;
/// Images per class of the new task (digits 5–9).
const PER_CLASS: usize = 100;
/// Epochs of the new head (and of the model trained from scratch, which gets as many more
/// as fine-tuning takes).
const HEAD_EPOCHS: usize = 30;
const FINE_TUNE_EPOCHS: usize = 10;

/// The base: two convolution blocks whose output, `features`, is what the new task reuses.
fn base_layers(model: &mut Model) {
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Conv2D::new(32, (3, 3)).activation("relu"))
        .add(MaxPooling2D::new((2, 2)))
        .add(Conv2D::new(64, (3, 3)).activation("relu").name("top_conv"))
        .add(MaxPooling2D::new((2, 2)).name("features"));
}

/// The classifier on top of a base's features (as Keras's `mnist_transfer_cnn` example's).
fn head(model: &mut Model) {
    model
        .add(Flatten::new())
        .add(Dense::new(64).activation("relu"))
        .add(Dropout::new(0.2))
        .add(Dense::new(5).activation("softmax"));
}

/// The images of `digits` in `(x, y)` (at most `per_class` of each), labels shifted to start at 0.
fn digits(
    x: &Tensor,
    y: &Tensor,
    digits: std::ops::Range<usize>,
    per_class: usize,
) -> strata::Result<(Tensor, Tensor)> {
    let mut taken = [0; 10];
    let mut rows = Vec::new();
    for (row, &label) in y.data().iter().enumerate() {
        let label = label as usize;
        if digits.contains(&label) && taken[label] < per_class {
            taken[label] += 1;
            rows.push(row);
        }
    }
    let labels: Vec<f32> = rows.iter().map(|&r| y.data()[r] - digits.start as f32).collect();
    Ok((x.gather_rows(&rows), Tensor::from_vec(vec![rows.len()], labels)?))
}

fn accuracy(model: &mut Model, x: &Tensor, y: &Tensor) -> strata::Result<f32> {
    Ok(model.evaluate(x, y, 256)?.accuracy.unwrap_or(0.0))
}

fn compile(model: &mut Model, learning_rate: f32) -> strata::Result<()> {
    model.compile(
        Adam::new(learning_rate),
        "sparse_categorical_crossentropy",
        &["accuracy"],
    )
}

fn main() -> strata::Result<()> {
    let started = Instant::now();
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let x_train = scale(&x_train, 1.0 / 255.0).reshape(&[60_000, 28, 28, 1])?;
    let x_test = scale(&x_test, 1.0 / 255.0).reshape(&[10_000, 28, 28, 1])?;
    let fit = |epochs| FitOptions::default().epochs(epochs).batch_size(32).verbose(0);

    // 1. A base trained on digits 0–4, saved as a pre-trained model would be shipped.
    let (x_old, y_old) = digits(&x_train, &y_train, 0..5, BASE_IMAGES / 5)?;
    let mut base = Sequential::new();
    base.seed(1);
    base_layers(&mut base);
    head(&mut base);
    compile(&mut base, 1e-3)?;
    base.fit(&x_old, &y_old, fit(4))?;
    let (x_old_test, y_old_test) = digits(&x_test, &y_test, 0..5, usize::MAX)?;
    println!(
        "base on digits 0-4: test accuracy {:.4}",
        accuracy(&mut base, &x_old_test, &y_old_test)?
    );
    let path = std::env::temp_dir().join(format!("strata-transfer-base-{}.safetensors", std::process::id()));
    base.save(&path)?;

    // 2. The new task: digits 5–9, 100 images each.
    let (x_new, y_new) = digits(&x_train, &y_train, 5..10, PER_CLASS)?;
    let (x_new_test, y_new_test) = digits(&x_test, &y_test, 5..10, usize::MAX)?;

    // 3. Load, cut off the old classifier, freeze, add a head, train the head.
    let mut model = strata::load_model(&path)?;
    std::fs::remove_file(&path).ok();
    model.truncate_after("features")?.set_trainable(false);
    head(&mut model);
    compile(&mut model, 1e-3)?;
    println!("{}", model.summary()?);
    let head_started = Instant::now();
    model.fit(&x_new, &y_new, fit(HEAD_EPOCHS))?;
    let frozen_seconds = head_started.elapsed().as_secs_f64();
    let frozen = accuracy(&mut model, &x_new_test, &y_new_test)?;

    // 4. Fine-tune from the top convolution with a smaller learning rate.
    model.fine_tune_from("top_conv")?;
    compile(&mut model, 1e-4)?;
    model.fit(&x_new, &y_new, fit(FINE_TUNE_EPOCHS))?;
    let tuned = accuracy(&mut model, &x_new_test, &y_new_test)?;

    // 5. The same architecture from scratch, on the same 500 images, as many epochs in all.
    let mut scratch = Sequential::new();
    scratch.seed(1);
    base_layers(&mut scratch);
    head(&mut scratch);
    compile(&mut scratch, 1e-3)?;
    // Its first HEAD_EPOCHS timed against the frozen head's; continuing with initial_epoch
    // gives the same weights as one fit of all the epochs.
    let whole_started = Instant::now();
    scratch.fit(&x_new, &y_new, fit(HEAD_EPOCHS))?;
    let trained_seconds = whole_started.elapsed().as_secs_f64();
    scratch.fit(
        &x_new,
        &y_new,
        fit(HEAD_EPOCHS + FINE_TUNE_EPOCHS).initial_epoch(HEAD_EPOCHS),
    )?;
    let from_scratch = accuracy(&mut scratch, &x_new_test, &y_new_test)?;

    println!("digits 5-9, {} training images, test accuracy:", x_new.rows());
    println!("  pre-trained base, frozen, new head: {frozen:.4}");
    println!("  + fine-tuned from top_conv:         {tuned:.4}");
    println!("  same model from scratch:            {from_scratch:.4}");
    println!(
        "{HEAD_EPOCHS} epochs on {} images, {} threads: {frozen_seconds:.2} s with the base frozen, \
         {trained_seconds:.2} s trained; the whole example {:.0} s",
        x_new.rows(),
        strata::kernels::threads(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}
