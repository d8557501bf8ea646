//! Keras 3 operations on Keras tensors in functional models (`x + shortcut`, `keras.ops.relu`,
//! `keras.ops.mean(x, axis=1)`, `keras.ops.concatenate`, `keras.ops.reshape`), imported as the
//! layers that compute them and predicting as Keras does, with dict inputs and outputs and
//! `Dense` on images; operations on masked sequences and
//! operations without a layer refused, each by name. The fixtures under
//! tests/fixtures/keras/operations/ were written by tools/make_keras_operations.py (Keras 3.15),
//! each with Keras's predictions for a fixed batch.

mod common;

use strata::io::import_keras_file;
use strata::prelude::*;

fn fixture(name: &str) -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("tests/fixtures/keras/operations/{name}"))
}

/// The fixture's input batches and Keras's outputs.
fn keras_io(name: &str) -> (Vec<Tensor>, Vec<Tensor>) {
    common::keras_io(&fixture(name))
}

/// Imports `name`.keras and checks its predictions against Keras's, within `tolerance`.
fn predicts_as_keras(name: &str, tolerance: f32) -> Model {
    let mut model = import_keras_file(fixture(&format!("{name}.keras"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let (inputs, expected) = keras_io(&format!("{name}.json"));
    let inputs: Vec<&Tensor> = inputs.iter().collect();
    let outputs = model.predict_multi(&inputs, 32).unwrap();
    assert_eq!(outputs.len(), expected.len(), "{name}");
    for (k, (output, expected)) in outputs.iter().zip(&expected).enumerate() {
        assert_eq!(output.shape(), expected.shape(), "{name} output {k}");
        for (i, (a, e)) in output.data().iter().zip(expected.data()).enumerate() {
            assert!(
                (a - e).abs() <= tolerance,
                "{name} output {k}[{i}]: strata {a}, Keras {e}"
            );
        }
    }
    model
}

fn class_of(model: &Model, layer: &str) -> String {
    model
        .get_layer(layer)
        .unwrap_or_else(|e| panic!("{layer}: {e}"))
        .class_name()
        .to_string()
}

/// Operators on two tensors, on a tensor and a number, and keras.ops activations.
#[test]
fn operators_and_activation_functions_predict_as_keras() {
    let model = predicts_as_keras("dense_ops", 1e-5);
    assert_eq!(class_of(&model, "multiply"), "Multiply");
    assert_eq!(class_of(&model, "add"), "Add");
    assert_eq!(class_of(&model, "maximum"), "Maximum");
    assert_eq!(class_of(&model, "minimum"), "Minimum");
    assert_eq!(class_of(&model, "subtract"), "Subtract");
    assert_eq!(class_of(&model, "negative"), "Rescaling");
    assert_eq!(class_of(&model, "gelu"), "Activation");
    assert_eq!(
        model.get_layer("gelu").unwrap().config()["activation"],
        "gelu_approximate"
    );
    assert_eq!(class_of(&model, "leaky_relu"), "LeakyReLU");
    assert_eq!(class_of(&model, "elu"), "ELU");
    assert_eq!(class_of(&model, "softmax"), "Softmax");
    // The weights of the two Dense layers, found by name as Keras numbers its layers (the
    // operations are not counted).
    assert_eq!(model.count_params(), 6 * 8 + 8 + 8 * 4 + 4);
}

/// Mean and max over a sequence's steps, `keepdims` and `squeeze`, `concatenate`.
#[test]
fn reductions_over_steps_and_concatenate_predict_as_keras() {
    let model = predicts_as_keras("sequence_ops", 1e-5);
    assert_eq!(class_of(&model, "mean"), "GlobalAveragePooling1D");
    assert_eq!(class_of(&model, "max"), "GlobalMaxPooling1D");
    assert_eq!(class_of(&model, "concatenate"), "Concatenate");
    assert_eq!(class_of(&model, "squeeze"), "Reshape");
}

/// `relu6(conv + shortcut)`, squeeze-and-excitation's `x * sigmoid(mean(x, keepdims))`, the
/// max over positions, `reshape` and `expand_dims`.
#[test]
fn image_operations_predict_as_keras() {
    let model = predicts_as_keras("image_ops", 1e-5);
    // Keras numbers operations across the models one process builds.
    assert_eq!(class_of(&model, "mean_1"), "GlobalAveragePooling2D");
    assert_eq!(class_of(&model, "max_2"), "GlobalMaxPooling2D");
    assert_eq!(class_of(&model, "reshape"), "Reshape");
    assert_eq!(class_of(&model, "expand_dims"), "Reshape");
}

/// A `Permute` layer and `keras.ops.transpose` keeping the batch first (a `Permute` too).
#[test]
fn permute_and_transpose_predict_as_keras() {
    let model = predicts_as_keras("permute_ops", 1e-5);
    assert_eq!(class_of(&model, "channels_first"), "Permute");
    assert_eq!(
        model.get_layer("channels_first").unwrap().config()["dims"],
        serde_json::json!([3, 1, 2])
    );
    assert_eq!(class_of(&model, "transpose"), "Permute");
}

/// Dense on each pixel of an image, as Keras applies it on the last axis of any rank.
#[test]
fn dense_on_images_predicts_as_keras() {
    let model = predicts_as_keras("dense_on_images", 1e-5);
    let expand = model.get_layer("expand").unwrap();
    assert_eq!(expand.output_shapes(&[vec![5, 5, 4]]).unwrap()[0], [5, 5, 6]);
}

/// Inputs and outputs given as dicts take Keras's order, by key; the losses given per output
/// name follow their outputs.
#[test]
fn dict_inputs_and_outputs_follow_keras_order() {
    let model = predicts_as_keras("dict_io", 1e-5);
    assert_eq!(model.output_names(), ["d2", "d1"]);
    assert_eq!(model.input_shapes(), [vec![3], vec![2]]);
    // compile(loss={"first": "mse", "second": "mae"}): "first" is d2's.
    assert_eq!(
        model.losses().unwrap(),
        [
            strata::losses::Loss::MeanSquaredError,
            strata::losses::Loss::MeanAbsoluteError
        ]
    );
}

/// The imported operations are saved and loaded as the layers they became.
#[test]
fn imported_operations_save_and_load() {
    let model = predicts_as_keras("image_ops", 1e-5);
    let dir = std::env::temp_dir().join(format!("strata-keras-ops-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("image_ops.safetensors");
    model.save(&path).unwrap();
    let mut loaded = strata::load_model(&path).unwrap();
    let (inputs, expected) = keras_io("image_ops.json");
    let outputs = loaded.predict(&inputs[0], 32).unwrap();
    for (a, e) in outputs.data().iter().zip(expected[0].data()) {
        assert!((a - e).abs() <= 1e-5, "strata {a}, Keras {e}");
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// `relu` of `Embedding(mask_zero=True)`: Keras's operation drops the mask (its LSTM then reads
/// the padding too), strata's layer would pass it on, so the import refuses it by name.
#[test]
fn an_operation_on_a_masked_sequence_is_refused() {
    let error = import_keras_file(fixture("masked_op.keras")).unwrap_err().to_string();
    assert!(error.contains("masked") && error.contains("'relu"), "{error}");
}

/// Every operation strata has no layer for is named at once.
#[test]
fn operations_without_a_layer_are_all_named() {
    let error = import_keras_file(fixture("unsupported_ops.keras"))
        .unwrap_err()
        .to_string();
    for operation in ["Swapaxes", "Matmul", "Sum", "Absolute", "Sqrt"] {
        assert!(
            error.contains(&format!("keras.src.ops.numpy.{operation})")),
            "{operation}: {error}"
        );
    }
    assert!(error.contains("operations strata runs as layers"), "{error}");
}
