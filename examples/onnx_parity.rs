//! Writes ONNX files and strata's predictions for `tools/check_onnx_export.py`, which runs the
//! files with ONNX Runtime and compares: `cargo run --release --example onnx_parity -- DIR`.
//!
//! For each named model (`mlp`, `mlp2`, `cnn`, `resnet`), `layers` (a functional model using
//! every exportable layer kind) and `activations` (every exportable activation), with random weights (BatchNormalization's statistics too, so
//! its inference form is not the identity): `DIR/NAME.onnx` and `DIR/NAME.json` holding the
//! input's shape and values and strata's output.

use strata::Result;
use strata::io::config::load_model_spec;
use strata::prelude::*;
use strata::rng::Rng;

fn main() -> Result<()> {
    let folder = std::env::args().nth(1).unwrap_or_else(|| "onnx-parity".into());
    std::fs::create_dir_all(&folder).map_err(|e| strata::Error::file(&folder, e.to_string()))?;
    for name in ["mlp", "mlp2", "cnn", "resnet", "layers", "activations"] {
        let mut model = match name {
            "layers" => every_layer()?,
            "activations" => every_activation()?,
            _ => load_model_spec(name)?.model,
        };
        let input_shape = model.layers()[0]
            .declared_input_shape()
            .map(<[usize]>::to_vec)
            .unwrap_or_default();
        model.build(&input_shape)?;
        randomize(&mut model, 1);
        let mut rng = Rng::new(2);
        let mut shape = vec![3];
        shape.extend(&input_shape);
        let count: usize = shape.iter().product();
        let x = Tensor::from_vec(shape.clone(), (0..count).map(|_| rng.uniform(0.0, 1.0)).collect())?;
        let y = model.predict(&x, 32)?;
        model.save_onnx(format!("{folder}/{name}.onnx"))?;
        let record = serde_json::json!({
            "input_shape": shape, "input": x.data(),
            "output_shape": y.shape(), "output": y.data(),
        });
        strata::io::write_atomic(format!("{folder}/{name}.json"), record.to_string().as_bytes())?;
        println!("{name}: {folder}/{name}.onnx");
    }
    Ok(())
}

/// Sets every weight to small random values; variances stay positive.
fn randomize(model: &mut Model, seed: u64) {
    let mut rng = Rng::new(seed);
    let ids: Vec<_> = model.params().ids().collect();
    for id in ids {
        let variance = model.params().name(id).ends_with("moving_variance");
        for v in model.params_mut().value_mut(id).data_mut() {
            *v = if variance {
                rng.uniform(0.5, 1.5)
            } else {
                rng.uniform(-0.5, 0.5)
            };
        }
    }
}

/// A functional model with the layer kinds and activations export supports beyond the named
/// models': padding, "same" average pooling, rescaling, merges, reshapes, Dense on (batch, steps, features) and without bias.
fn every_layer() -> Result<Model> {
    let inputs = Input::node(&[9, 7, 3]);
    let x = Rescaling::new(1.0 / 2.0).offset(vec![0.1, -0.2, 0.3]).call(&inputs)?;
    let x = ZeroPadding2D::new(((1, 0), (2, 1))).call(&x)?;
    let a = Conv2D::new(4, 3)
        .strides(2)
        .padding("same")
        .activation("gelu")
        .call(&x)?;
    let b = Conv2D::new(4, (2, 3))
        .strides((2, 2))
        .padding("same")
        .activation("silu")
        .call(&x)?;
    let sum = Add::new().call_many(&[&a, &b])?;
    let difference = Subtract::new().call_many(&[&a, &b])?;
    let product = Multiply::new().call_many(&[&sum, &difference])?;
    let x = Concatenate::new(-1).call_many(&[&product, &a])?;
    let x = BatchNormalization::new().call(&x)?;
    let x = ReLU::new().max_value(6.0).call(&x)?;
    let x = AveragePooling2D::new(2).padding("same").call(&x)?;
    let pooled = GlobalMaxPooling2D::new().call(&x)?;
    let x = MaxPooling2D::new(2).padding("same").call(&x)?;
    let x = Reshape::new(&[4, 8]).call(&x)?;
    let x = Dense::new(3).activation("sigmoid").call(&x)?; // on (batch, steps, features): MatMul + Add
    let x = Activation::new("tanh").call(&x)?;
    let x = Flatten::new().call(&x)?;
    let x = Dense::new(5).activation("elu").use_bias(false).call(&x)?;
    let x = Concatenate::new(-1).call_many(&[&x, &pooled])?;
    let x = Dropout::new(0.5).call(&x)?;
    let x = Dense::new(6).activation("leaky_relu").call(&x)?;
    // Linear: a softmax would hide differences in the layers before it.
    let outputs = Dense::new(4).call(&x)?;
    Model::functional(&inputs, &outputs)
}

/// Every exportable activation on one input, side by side, with the merges the other models
/// leave out (`Average`, `Maximum`) and a leaky `ReLU` layer. Inputs span [-4, 4] (see `main`'s
/// scaling) so each function's curved parts are exercised.
fn every_activation() -> Result<Model> {
    let inputs = Input::node(&[6]);
    let x = Rescaling::new(8.0).offset(-4.0).call(&inputs)?;
    let mut branches = Vec::new();
    for name in strata::io::onnx::EXPORTABLE_ACTIVATIONS {
        branches.push(Activation::new(name).call(&x)?);
    }
    branches.push(ReLU::new().negative_slope(0.1).call(&x)?);
    let average = Average::new().call_many(&[&branches[1], &branches[2]])?;
    let maximum = Maximum::new().call_many(&[&branches[3], &branches[4], &branches[5]])?;
    branches.extend([average, maximum]);
    let all: Vec<&Node> = branches.iter().collect();
    Concatenate::new(-1)
        .call_many(&all)
        .and_then(|outputs| Model::functional(&inputs, &outputs))
}
