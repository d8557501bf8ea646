//! A small ResNet on MNIST with the functional API: a stride-2 stem convolution (28×28 → 14×14),
//! three stages of two residual blocks with BatchNormalization (16, 32, 64 filters; stages 2
//! and 3 start with a stride-2 block and a 1×1 projection shortcut), global average pooling and
//! Dense(10), trained with Adam from 0.003 decayed to 0 by a cosine over the run. The same
//! model as `strata train --model resnet` (models/resnet.toml): 0.99 after one epoch.
//!
//! Run with `cargo run --release --example resnet`.

use strata::data::{mnist, scale};
use strata::initializers::Initializer;
use strata::optimizers::CosineDecay;
use strata::prelude::*;

/// Conv2D (no bias: BatchNormalization adds its own offset) → BatchNormalization → optional relu.
fn conv_bn(x: &Node, filters: usize, kernel: usize, strides: usize, relu: bool) -> strata::Result<Node> {
    let conv = Conv2D::new(filters, kernel)
        .strides(strides)
        .padding("same")
        .use_bias(false)
        .kernel_initializer(Initializer::HeNormal)
        .call(x)?;
    let normalized = BatchNormalization::new().call(&conv)?;
    if relu {
        Activation::new("relu").call(&normalized)
    } else {
        Ok(normalized)
    }
}

fn main() -> strata::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let x_train = scale(&x_train, 1.0 / 255.0).reshape(&[60_000, 28, 28, 1])?;
    let x_test = scale(&x_test, 1.0 / 255.0).reshape(&[10_000, 28, 28, 1])?;

    let inputs = Input::node(&[28, 28, 1]);
    let mut x = conv_bn(&inputs, 16, 3, 2, true)?;
    for (stage, filters) in [16, 32, 64].into_iter().enumerate() {
        for block in 0..2 {
            let strides = if stage > 0 && block == 0 { 2 } else { 1 };
            let y = conv_bn(&x, filters, 3, strides, true)?;
            let y = conv_bn(&y, filters, 3, 1, false)?;
            let shortcut = if strides == 2 {
                conv_bn(&x, filters, 1, strides, false)?
            } else {
                x.clone()
            };
            let sum = Add::new().call_many(&[&shortcut, &y])?;
            x = Activation::new("relu").call(&sum)?;
        }
    }
    let pooled = GlobalAveragePooling2D::new().call(&x)?;
    let outputs = Dense::new(10).activation("softmax").call(&pooled)?;
    let mut model = Model::functional(&inputs, &outputs)?;
    model.set_name("resnet");
    let epochs: usize = std::env::args().nth(1).and_then(|e| e.parse().ok()).unwrap_or(1);
    let steps = epochs * 60_000usize.div_ceil(64);
    let schedule = CosineDecay::new(0.003, steps as u64)?;
    model.compile(Adam::new(schedule), "sparse_categorical_crossentropy", &["accuracy"])?;
    println!("{}", model.summary()?);

    model.fit(&x_train, &y_train, FitOptions::default().epochs(epochs).batch_size(64))?;
    let scores = model.evaluate(&x_test, &y_test, 256)?;
    println!("test accuracy: {:.4}", scores.accuracy.unwrap_or(0.0));
    Ok(())
}
