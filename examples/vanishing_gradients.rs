//! Vanishing gradients, and the two cures: ReLU and residual connections.
//!
//! Three 20-layer MLPs (64 units per layer) train for 2 epochs on MNIST with SGD:
//! - sigmoid everywhere: each sigmoid scales the gradient by at most 0.25, so after 20 layers
//!   the first layer's gradient is tiny and the network barely learns;
//! - ReLU: slope 1 where active, so the gradient keeps its size much better;
//! - ReLU with residual connections `x → x + relu(Dense(x))` (branches initialized small, so
//!   the network starts near the identity): the identity path carries the gradient to the
//!   first layer unchanged, whatever the depth.
//!
//! For each, it prints the norm of the first layer's kernel gradient at the first step and the
//! test accuracy. Run with `cargo run --release --example vanishing_gradients`.

use strata::data::{mnist, scale};
use strata::initializers::Initializer;
use strata::model::EpochLogs;
use strata::prelude::*;

const DEPTH: usize = 20;
const WIDTH: usize = 64;

/// Records the first layer's gradient norm after the first batch.
struct FirstGradient(Option<f32>);

impl Callback for FirstGradient {
    fn on_batch_end(&mut self, model: &mut Model, epoch: usize, batch: usize, _: f32) -> strata::Result<Control> {
        if epoch == 1 && batch == 1 {
            let id = model.params().ids().next().expect("the model has weights");
            let norm = model.params().grad(id).data().iter().map(|g| g * g).sum::<f32>().sqrt();
            self.0 = Some(norm);
        }
        Ok(Control::Continue)
    }

    fn on_epoch_end(&mut self, _: &mut Model, _: &EpochLogs) -> strata::Result<Control> {
        Ok(Control::Continue)
    }
}

fn deep_model(activation: &str, residual: bool) -> strata::Result<Model> {
    let inputs = Input::node(&[784]);
    let mut x = Dense::new(WIDTH).activation(activation).call(&inputs)?;
    for _ in 1..DEPTH {
        x = if residual {
            // Each block adds its branch to x; small branch weights keep the sum of 19 blocks
            // from growing (the usual trick: deep residual nets start close to the identity).
            let small = Initializer::RandomNormal {
                mean: 0.0,
                stddev: 0.01,
            };
            let branch = Dense::new(WIDTH)
                .activation(activation)
                .kernel_initializer(small)
                .call(&x)?;
            Add::new().call_many(&[&x, &branch])?
        } else {
            Dense::new(WIDTH).activation(activation).call(&x)?
        };
    }
    let outputs = Dense::new(10).activation("softmax").call(&x)?;
    Model::functional(&inputs, &outputs)
}

fn main() -> strata::Result<()> {
    let ((x_train, y_train), (x_test, y_test)) = mnist::load_data()?;
    let x_train = scale(&x_train, 1.0 / 255.0).reshape(&[60_000, 784])?;
    let x_test = scale(&x_test, 1.0 / 255.0).reshape(&[10_000, 784])?;
    println!("{DEPTH} Dense layers of {WIDTH} units, SGD(0.01), batch 32, 2 epochs");
    for (label, activation, residual) in [
        ("sigmoid", "sigmoid", false),
        ("relu", "relu", false),
        ("relu + residual", "relu", true),
    ] {
        let mut model = deep_model(activation, residual)?;
        model.compile(Sgd::new(0.01), "sparse_categorical_crossentropy", &["accuracy"])?;
        let mut first = FirstGradient(None);
        let options = FitOptions::default().epochs(2).batch_size(32).verbose(0);
        model.fit_with_callbacks(&x_train, &y_train, options, &mut [&mut first])?;
        let accuracy = model.evaluate(&x_test, &y_test, 256)?.accuracy.unwrap_or(0.0);
        println!(
            "{label:>16}: first-layer gradient norm at step 1 = {:.2e}, test accuracy = {accuracy:.4}",
            first.0.unwrap_or(0.0)
        );
    }
    Ok(())
}
