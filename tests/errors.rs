//! Every user mistake comes back as the typed error that names it (never a panic), with a
//! message that says what was expected and what was received.
mod common;

use std::io::Write;
use std::path::PathBuf;
use strata::data::mnist;
use strata::prelude::*;

fn mlp() -> Model {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[784]))
        .add(Dense::new(16).activation("relu"))
        .add(Dense::new(10).activation("softmax"));
    model
}

fn compiled_mlp() -> Model {
    let mut model = mlp();
    model
        .compile("adam", "sparse_categorical_crossentropy", &["accuracy"])
        .unwrap();
    model
}

fn zeros(shape: &[usize]) -> Tensor {
    Tensor::zeros(shape)
}

fn labels(values: &[f32]) -> Tensor {
    Tensor::from_slice(values)
}

fn quiet() -> FitOptions<'static> {
    FitOptions::default().verbose(0)
}

/// A fresh, empty directory under the system's temp directory.
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-errors-{}-{name}", common::run_id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}

/// An IDX file of unsigned bytes: magic `0x0000_08_<rank>`, the dimensions, then the values.
fn idx(shape: &[u32], values: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, shape.len() as u8];
    for dim in shape {
        bytes.extend_from_slice(&dim.to_be_bytes());
    }
    bytes.extend_from_slice(values);
    bytes
}

#[test]
fn dense_fed_the_wrong_width_names_the_layer_and_both_shapes() {
    let x = zeros(&[4, 28]);
    let y = labels(&[0., 1., 2., 3.]);
    let mut model = compiled_mlp();
    let predict = model.predict(&x, 32).unwrap_err();
    let fit = model.fit(&x, &y, quiet()).unwrap_err();
    let evaluate = model.evaluate(&x, &y, 32).unwrap_err();
    for error in [predict, fit, evaluate] {
        let message = error.to_string();
        match &error {
            Error::LayerShape {
                layer,
                expected,
                received,
            } => {
                assert_eq!(layer, "dense");
                assert_eq!(expected, "(None, 784)");
                assert_eq!(received, "(None, 28)");
            }
            other => panic!("expected LayerShape, got {other:?}"),
        }
        assert!(
            message.contains("'dense'") && message.contains("784") && message.contains("28"),
            "{message}"
        );
    }
}

#[test]
fn dense_acts_on_the_last_axis_and_a_classifier_on_images_is_told_to_flatten() {
    // As in Keras, Dense on (28, 28) maps each row: (None, 28, 10), which a per-sample label
    // does not fit; the loss says so, naming both shapes.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28]))
        .add(Dense::new(10).activation("softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
    assert_eq!(model.output_shape().unwrap(), vec![28, 10]);
    let error = model
        .fit(&zeros(&[2, 28, 28]), &labels(&[0., 1.]), quiet())
        .unwrap_err();
    assert!(error.to_string().contains("28"), "{error}");

    // On a channels-last image Dense maps each pixel, as Keras's does (ConvNeXt's pointwise
    // layers): (None, 28, 28, 10), which a per-sample label does not fit either; the loss says
    // so, naming both shapes and the Flatten layer a classifier needs.
    let mut model = Sequential::new();
    model
        .add(Input::new(&[28, 28, 1]))
        .add(Dense::new(10).activation("softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
    assert_eq!(model.output_shape().unwrap(), vec![28, 28, 10]);
    let error = model
        .fit(&zeros(&[2, 28, 28, 1]), &labels(&[0., 1.]), quiet())
        .unwrap_err()
        .to_string();
    assert!(error.contains("28") && error.contains("Flatten"), "{error}");

    // A sample whose last axis is not the one the layer was built for is a layer shape error.
    let mut model = Sequential::new();
    model.add(Dense::new(10).activation("softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
    model.predict(&zeros(&[2, 4]), 32).unwrap();
    let x = zeros(&[2, 28, 28, 1]);
    assert!(matches!(model.predict(&x, 32), Err(Error::LayerShape { .. })));
}

#[test]
fn x_and_y_of_different_lengths_are_a_data_error() {
    let mut model = compiled_mlp();
    let error = model
        .fit(&zeros(&[5, 784]), &labels(&[0., 1., 2.]), quiet())
        .unwrap_err();
    let message = error.to_string();
    assert!(matches!(error, Error::Data(_)), "{error:?}");
    assert!(message.contains('5') && message.contains('3'), "{message}");
    assert!(matches!(
        model.evaluate(&zeros(&[2, 784]), &labels(&[0.]), 32),
        Err(Error::Data(_))
    ));
}

#[test]
fn a_label_outside_the_classes_is_a_data_error_naming_it() {
    let mut model = compiled_mlp();
    let x = zeros(&[3, 784]);
    for bad in [10.0, 12.0, -1.0, 2.5] {
        let error = model.fit(&x, &labels(&[0., bad, 1.]), quiet()).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::Data(_)), "{bad}: {error:?}");
        assert!(message.contains(&format!("label {bad}")), "{message}");
        assert!(matches!(
            model.evaluate(&x, &labels(&[bad, 0., 1.]), 32),
            Err(Error::Data(_))
        ));
    }
    // One-hot labels with a sparse loss, and integer labels with a one-hot loss.
    let onehot = strata::data::to_categorical(&labels(&[0., 1., 2.]), 10).unwrap();
    let message = model.fit(&x, &onehot, quiet()).unwrap_err().to_string();
    assert!(message.contains("categorical_crossentropy"), "{message}");
    let mut one_hot_model = mlp();
    one_hot_model
        .compile("adam", "categorical_crossentropy", &["accuracy"])
        .unwrap();
    let message = one_hot_model
        .fit(&x, &labels(&[0., 1., 2.]), quiet())
        .unwrap_err()
        .to_string();
    assert!(message.contains("to_categorical"), "{message}");
    // And to_categorical refuses a label past num_classes.
    assert!(matches!(
        strata::data::to_categorical(&labels(&[0., 10.]), 10),
        Err(Error::Data(m)) if m.contains("label 10")
    ));
}

#[test]
fn a_batch_size_of_zero_is_an_invalid_argument() {
    let mut model = compiled_mlp();
    let (x, y) = (zeros(&[4, 784]), labels(&[0., 1., 2., 3.]));
    let errors = [
        model.fit(&x, &y, quiet().batch_size(0)).unwrap_err(),
        model.evaluate(&x, &y, 0).unwrap_err(),
        model.predict(&x, 0).unwrap_err(),
    ];
    for error in errors {
        match &error {
            Error::InvalidArgument { name, value, .. } => {
                assert_eq!(name, "batch_size");
                assert_eq!(value, "0");
            }
            other => panic!("expected InvalidArgument, got {other:?}"),
        }
        assert!(error.to_string().contains("batch_size=0"), "{error}");
    }
    // A validation split outside [0, 1) too.
    assert!(matches!(
        model.fit(&x, &y, quiet().validation_split(1.5)),
        Err(Error::InvalidArgument { name, .. }) if name == "validation_split"
    ));
}

#[test]
fn a_negative_or_non_finite_learning_rate_is_an_invalid_argument() {
    let cases: Vec<(&str, Box<dyn Optimizer>)> = vec![
        ("adam", Box::new(Adam::new(-0.1))),
        ("sgd", Box::new(Sgd::new(-1.0))),
        ("rmsprop", Box::new(RMSprop::new(f32::NAN))),
        ("adagrad", Box::new(Adagrad::new(f32::INFINITY))),
        ("adamw", Box::new(AdamW::new(-0.001))),
    ];
    for (what, optimizer) in cases {
        let mut model = mlp();
        let error = model.compile(optimizer, "mse", &[]).unwrap_err();
        match &error {
            Error::InvalidArgument { name, .. } => assert_eq!(name, "learning_rate", "{what}"),
            other => panic!("{what}: expected InvalidArgument, got {other:?}"),
        }
        // The model stays uncompiled.
        assert!(model.optimizer().is_none(), "{what}");
    }
    assert!(mlp().compile(Adam::new(-0.1), "mse", &[]).is_err());
    assert!(mlp().compile(Adam::new(0.0), "mse", &[]).is_ok());
}

#[test]
fn unknown_names_are_reported_with_the_valid_ones() {
    let mut model = mlp();
    let error = model
        .compile("adamm", "sparse_categorical_crossentropy", &[])
        .unwrap_err();
    let message = error.to_string();
    assert!(
        matches!(&error, Error::UnknownName { kind: "optimizer", name, .. } if name == "adamm"),
        "{error:?}"
    );
    for valid in ["sgd", "adam", "adamw", "rmsprop", "adagrad"] {
        assert!(message.contains(valid), "{message}");
    }

    let error = model.compile("adam", "cross_entropy", &[]).unwrap_err();
    let message = error.to_string();
    assert!(matches!(&error, Error::UnknownName { kind: "loss", .. }), "{error:?}");
    assert!(
        message.contains("'cross_entropy'")
            && message.contains("sparse_categorical_crossentropy")
            && message.contains("mse"),
        "{message}"
    );

    let error = model
        .compile("adam", "sparse_categorical_crossentropy", &["f1_score"])
        .unwrap_err();
    assert!(matches!(&error, Error::UnknownName { kind: "metric", .. }), "{error:?}");
    assert!(error.to_string().contains("accuracy"), "{error}");

    let mut model = Sequential::new();
    model.add(Input::new(&[4])).add(Dense::new(3).activation("relu7"));
    let error = model.compile("adam", "mse", &[]).unwrap_err();
    let message = error.to_string();
    // The unknown name, inside the layer that has it.
    let Error::InLayer { layer, source, .. } = &error else {
        panic!("{error:?}")
    };
    assert_eq!(layer, "dense");
    assert!(
        matches!(&**source, Error::UnknownName { kind: "activation", name, .. } if name == "relu7"),
        "{error:?}"
    );
    for valid in ["relu", "sigmoid", "softmax", "tanh", "gelu"] {
        assert!(message.contains(valid), "{message}");
    }
    let mut model = Sequential::new();
    model.add(Input::new(&[4])).add(Activation::new("swishy"));
    let error = model.summary().unwrap_err();
    assert!(
        matches!(&error, Error::InLayer { layer, source, .. }
            if layer == "activation" && matches!(**source, Error::UnknownName { kind: "activation", .. })),
        "{error:?}"
    );
}

#[test]
fn fit_or_evaluate_before_compile_is_a_usage_error() {
    let mut model = mlp();
    let (x, y) = (zeros(&[2, 784]), labels(&[0., 1.]));
    let error = model.fit(&x, &y, quiet()).unwrap_err();
    assert!(matches!(error, Error::Usage(_)), "{error:?}");
    assert!(error.to_string().contains("compile"), "{error}");
    assert!(matches!(model.evaluate(&x, &y, 32), Err(Error::Usage(_))));
    // predict needs no compile.
    assert_eq!(model.predict(&x, 32).unwrap().shape(), &[2, 10]);
    // A model with no layers at all.
    let mut empty = Sequential::new();
    assert!(matches!(empty.predict(&x, 32), Err(Error::Usage(_))));
}

#[test]
fn a_missing_mnist_directory_is_a_file_error_naming_the_file() {
    let error = mnist::load_data_from("/nonexistent/strata-mnist").unwrap_err();
    let message = error.to_string();
    match &error {
        Error::File { path, .. } => {
            assert!(path.starts_with("/nonexistent/strata-mnist"), "{path}");
            assert!(path.ends_with("train-images-idx3-ubyte.gz"), "{path}");
        }
        other => panic!("expected File, got {other:?}"),
    }
    assert!(message.contains("cannot open"), "{message}");
}

#[test]
fn a_truncated_gzip_file_is_a_file_error() {
    let dir = temp_dir("truncated-gzip");
    let images = gzip(&idx(&[50, 28, 28], &vec![7u8; 50 * 28 * 28]));
    let path = dir.join("train-images-idx3-ubyte.gz");
    // Cut the compressed stream in the middle (the labels are whole: their header is read
    // first, to compare the counts before decoding).
    std::fs::write(&path, &images[..images.len() / 2]).unwrap();
    std::fs::write(dir.join("train-labels-idx1-ubyte.gz"), gzip(&idx(&[50], &[1; 50]))).unwrap();
    let error = mnist::load_data_from(&dir).unwrap_err();
    let message = error.to_string();
    match &error {
        Error::File { path: reported, .. } => {
            assert!(reported.ends_with("train-images-idx3-ubyte.gz"), "{reported}")
        }
        other => panic!("expected File, got {other:?}"),
    }
    assert!(
        message.contains("truncated") || message.contains("corrupt"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_idx_file_shorter_than_its_header_promises_is_a_file_error() {
    let dir = temp_dir("truncated-idx");
    // A complete gzip stream whose IDX header promises 10 images but holds 3.
    let path = dir.join("images.gz");
    std::fs::write(&path, gzip(&idx(&[10, 28, 28], &vec![0u8; 3 * 28 * 28]))).unwrap();
    let error = mnist::read_idx(&path, 0x0803).unwrap_err();
    assert!(matches!(error, Error::File { .. }), "{error:?}");
    assert!(error.to_string().contains("truncated"), "{error}");
    // A header cut short.
    std::fs::write(&path, gzip(&[0, 0, 8, 3, 0, 0])).unwrap();
    let error = mnist::read_idx(&path, 0x0803).unwrap_err();
    assert!(error.to_string().contains("truncated"), "{error}");
    // A labels file where images were expected.
    std::fs::write(&path, gzip(&idx(&[2], &[1, 2]))).unwrap();
    let error = mnist::read_idx(&path, 0x0803).unwrap_err();
    assert!(error.to_string().contains("magic"), "{error}");
    // Not gzip at all.
    std::fs::write(&path, b"this is not a gzip file").unwrap();
    assert!(matches!(mnist::read_idx(&path, 0x0803), Err(Error::File { .. })));
    // And a well-formed file reads back its shape and values.
    std::fs::write(&path, gzip(&idx(&[2, 2, 3], &[0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 255]))).unwrap();
    let t = mnist::read_idx(&path, 0x0803).unwrap();
    assert_eq!(t.shape(), &[2, 2, 3]);
    assert_eq!(t.data()[11], 255.0);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn mismatched_image_and_label_counts_are_a_file_error() {
    let dir = temp_dir("counts");
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), gzip(&bytes)).unwrap();
    write("train-images-idx3-ubyte.gz", idx(&[3, 2, 2], &[0; 12]));
    write("train-labels-idx1-ubyte.gz", idx(&[2], &[0, 1]));
    let error = mnist::load_data_from(&dir).unwrap_err();
    assert!(matches!(error, Error::File { .. }), "{error:?}");
    assert!(error.to_string().contains("differ"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_nan_in_the_inputs_stops_fit_with_the_epoch_and_batch() {
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Dense::new(1));
    model.compile("sgd", "mse", &[]).unwrap();
    let mut x = Tensor::zeros(&[20, 3]);
    x.data_mut()
        .iter_mut()
        .enumerate()
        .for_each(|(i, v)| *v = (i % 7) as f32 / 7.0);
    // Sample 9 sits in the third batch of 4 when the order is not shuffled.
    x.data_mut()[9 * 3 + 1] = f32::NAN;
    let y = Tensor::zeros(&[20, 1]);
    let error = model.fit(&x, &y, quiet().batch_size(4).shuffle(false)).unwrap_err();
    match error {
        Error::NonFiniteLoss { epoch, batch, value } => {
            assert_eq!((epoch, batch), (1, 3));
            assert!(value.is_nan());
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
}

#[test]
fn a_diverging_learning_rate_stops_fit_with_non_finite_loss() {
    let mut model = Sequential::new();
    model.add(Input::new(&[2])).add(Dense::new(1));
    model.compile(Sgd::new(1e6), "mse", &[]).unwrap();
    let x = Tensor::from_vec(vec![8, 2], (0..16).map(|v| 100.0 * v as f32).collect()).unwrap();
    let y = Tensor::from_vec(vec![8, 1], (0..8).map(|v| v as f32).collect()).unwrap();
    let error = model.fit(&x, &y, quiet().batch_size(2).epochs(5)).unwrap_err();
    match &error {
        Error::NonFiniteLoss { epoch, batch, value } => {
            assert_eq!(*epoch, 1);
            // The first batch sees the initial, finite weights.
            assert!((2..=4).contains(batch), "batch {batch}");
            assert!(!value.is_finite());
        }
        other => panic!("expected NonFiniteLoss, got {other:?}"),
    }
    let message = error.to_string();
    assert!(
        message.contains("epoch 1") && message.contains("learning rate"),
        "{message}"
    );
}

#[test]
fn nan_targets_are_a_data_error() {
    let mut model = Sequential::new();
    model.add(Input::new(&[2])).add(Dense::new(1));
    model.compile("sgd", "mse", &[]).unwrap();
    let y = Tensor::from_vec(vec![2, 1], vec![0.0, f32::NAN]).unwrap();
    assert!(matches!(
        model.fit(&zeros(&[2, 2]), &y, quiet()),
        Err(Error::Data(m)) if m.contains("NaN")
    ));
}

#[test]
fn a_tensor_of_the_wrong_length_is_an_error_not_a_panic() {
    assert!(matches!(
        Tensor::from_vec(vec![2, 3], vec![0.0; 5]),
        Err(Error::DataLength {
            expected: 6,
            received: 5,
            ..
        })
    ));
    assert!(matches!(
        Tensor::zeros(&[2, 3]).reshape(&[4, 2]),
        Err(Error::DataLength { .. })
    ));
    assert!(matches!(
        Tensor::from_rows(&[vec![1.0, 2.0], vec![3.0]]),
        Err(Error::Data(_))
    ));
}

#[test]
fn a_layer_asking_for_billions_of_weights_is_refused_before_allocating() {
    let mut model = Sequential::new();
    model.add(Input::new(&[1 << 20])).add(Dense::new(1 << 20));
    let error = model.compile("adam", "mse", &[]).unwrap_err();
    assert!(matches!(error, strata::Error::InvalidArgument { .. }), "{error}");
    assert!(error.to_string().contains("dense"), "{error}");
}

#[test]
fn binary_crossentropy_targets_outside_zero_one_are_a_data_error_naming_loss_row_and_value() {
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(Dense::new(1).activation("sigmoid"));
    model.compile("adam", "binary_crossentropy", &[]).unwrap();
    let x = zeros(&[3, 3]);
    // Before: trained with a loss of -1.4e28.
    for bad in [-1.0, 3.0, 1e9] {
        let error = model.fit(&x, &labels(&[0., 1., bad]), quiet()).unwrap_err();
        let message = error.to_string();
        assert!(matches!(error, Error::Data(_)), "{bad}: {error:?}");
        assert!(
            message.contains("binary_crossentropy") && message.contains("row 2") && message.contains(&bad.to_string()),
            "{message}"
        );
    }
    // Soft labels (label smoothing, probabilities) stay legitimate.
    model.fit(&x, &labels(&[0., 0.3, 1.]), quiet()).unwrap();
}

#[test]
fn a_sparse_label_out_of_range_names_its_row_and_the_loss() {
    let mut model = compiled_mlp();
    let message = model
        .fit(&zeros(&[3, 784]), &labels(&[0., 1., 10.]), quiet())
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("row 2") && message.contains("sparse_categorical_crossentropy"),
        "{message}"
    );
}

#[test]
fn a_flipped_byte_in_an_idx_gz_file_is_a_checksum_error() {
    let dir = temp_dir("idx-crc");
    let path = dir.join("images.gz");
    // Stored (uncompressed) deflate blocks: a flipped pixel leaves the stream well-formed, so
    // only the CRC-32 in the gzip trailer can tell. Before: read as a changed pixel.
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::none());
    encoder.write_all(&idx(&[2, 2, 3], &[7; 12])).unwrap();
    let good = encoder.finish().unwrap();
    let pixel = good.windows(12).position(|w| w == [7; 12]).unwrap();
    for at in [pixel + 5, good.len() - 8, good.len() - 3] {
        let mut bad = good.clone();
        bad[at] ^= 0x10;
        std::fs::write(&path, &bad).unwrap();
        let error = mnist::read_idx(&path, 0x0803).unwrap_err();
        assert!(matches!(error, Error::File { .. }), "{error:?}");
        assert!(error.to_string().contains("images.gz"), "{error}");
    }
    std::fs::write(&path, &good).unwrap();
    assert_eq!(mnist::read_idx(&path, 0x0803).unwrap().data(), &[7.0; 12]);
    // Data past what the header declares is refused too.
    std::fs::write(&path, gzip(&idx(&[1, 2, 3], &[7; 12]))).unwrap();
    let message = mnist::read_idx(&path, 0x0803).unwrap_err().to_string();
    assert!(message.contains("more data"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_idx_header_claiming_more_images_than_the_file_can_hold_fails_before_decoding() {
    let dir = temp_dir("idx-claim");
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(dir.join(name), gzip(&bytes)).unwrap();
    // The issue's file: a header claiming 1.3 M images (under the 2³⁰-value limit), a few
    // bytes of data.
    write("train-images-idx3-ubyte.gz", idx(&[1_300_000, 28, 28], &[0; 784]));
    let message = mnist::read_idx(&dir.join("train-images-idx3-ubyte.gz"), 0x0803)
        .unwrap_err()
        .to_string();
    assert!(message.contains("1300000") && message.contains("can hold"), "{message}");
    // Within what the file could hold, the label file's count is compared before decoding.
    write("train-images-idx3-ubyte.gz", idx(&[1000, 28, 28], &vec![0; 1000 * 784]));
    write("train-labels-idx1-ubyte.gz", idx(&[2], &[0, 1]));
    let message = mnist::load_data_from(&dir).unwrap_err().to_string();
    assert!(message.contains("(1000)") && message.contains("(2)"), "{message}");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_corrupted_key_in_a_saved_models_config_is_an_error_not_a_linear_layer() {
    let dir = temp_dir("corrupt-key");
    let path = dir.join("model.safetensors");
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4, 4, 1]))
        .add(Conv2D::new(2, (3, 3)).activation("relu"))
        .add(Flatten::new())
        .add(Dense::new(2).activation("softmax"));
    model.compile("adam", "sparse_categorical_crossentropy", &[]).unwrap();
    model.save(&path).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    // The flipped byte of the issue: "activation" becomes an unknown key of the same length.
    let at = bytes.windows(11).position(|w| w == b"\"activation").unwrap();
    let mut bad = bytes.clone();
    bad[at + 10] = b'm';
    std::fs::write(&path, &bad).unwrap();
    let message = strata::load_model(&path).err().unwrap().to_string();
    assert!(
        message.contains("\"activatiom\"") && message.contains("activation"),
        "{message}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn a_keras_archive_member_with_a_wrong_crc_is_an_error_naming_archive_and_member() {
    let fixture = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/keras/mlp.keras");
    let mut bytes = std::fs::read(fixture).unwrap();
    // Change the CRC-32 the central directory records for the weights (offset 16 of its entry).
    let name = b"model.weights.h5";
    let entry = (0..bytes.len() - 46)
        .find(|&i| bytes[i..i + 4] == [0x50, 0x4b, 0x01, 0x02] && bytes[i + 46..].starts_with(name))
        .unwrap();
    bytes[entry + 16] ^= 0x01;
    let error = strata::io::import_keras_from(std::io::Cursor::new(bytes), "mlp.keras").unwrap_err();
    let message = error.to_string();
    assert!(
        message.contains("mlp.keras") && message.contains("model.weights.h5") && message.contains("CRC"),
        "{message}"
    );
}

#[test]
fn a_layer_setting_error_names_the_layer_and_a_file_error_says_invalid_data_once() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4]))
        .add(Dense::new(3).activation("relu7").name("hidden"));
    let message = model.build(&[4]).unwrap_err().to_string();
    assert!(
        message.starts_with("layer 'hidden' (Dense): unknown activation 'relu7'"),
        "{message}"
    );
    let text = r#"{"layers": [{"class_name": "InputLayer", "config": {"shape": [4]}},
                              {"class_name": "Dense", "config": {"activation": "relu"}}]}"#;
    let message = strata::io::config::parse(text, strata::io::config::Format::Json, "m.json")
        .err()
        .unwrap()
        .to_string();
    assert_eq!(
        message,
        "m.json: layers[1] (Dense): Dense needs a positive integer \"units\""
    );
}

#[test]
fn settings_no_run_could_use_are_refused_when_the_shapes_are_planned() {
    // `summary` plans the shapes without building: it refuses what training would.
    let mut batch_norm = Sequential::new();
    batch_norm
        .add(Input::new(&[4]))
        .add(BatchNormalization::new().epsilon(-1.0));
    let message = batch_norm.summary().unwrap_err().to_string();
    assert!(message.contains("epsilon"), "{message}");
    for (mean, variance, named) in [
        (vec![0.0, 1.0], vec![1.0, -1.0], "variance=-1"),
        (vec![f32::NAN, 0.0], vec![1.0, 1.0], "mean=NaN"),
        (vec![0.0], vec![1.0, 1.0], "1 means but 2 variances"),
    ] {
        let mut model = Sequential::new();
        model
            .add(Input::new(&[2]))
            .add(Normalization::with_statistics(mean, variance));
        let message = model.compile("sgd", "mse", &[]).unwrap_err().to_string();
        assert!(message.contains(named), "{message}");
    }
}

#[test]
fn every_layer_a_file_describes_wrongly_is_named_at_once() {
    use strata::io::config::{Format, parse};
    let description = r#"{"class_name": "Sequential", "config": {"layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [null, 4]}},
        {"class_name": "Dense", "config": {"units": 3, "activation": "celu"}},
        {"class_name": "LayerNormalization", "config": {"rms_scaling": true}},
        {"class_name": "Dense", "config": {"units": 2, "activation": "squareplus"}}]}}"#;
    let message = parse(description, Format::Json, "model.json")
        .err()
        .unwrap()
        .to_string();
    for named in [
        "3 layers",
        "layers[1] (Dense)",
        "'celu'",
        "layers[2]",
        "rms_scaling",
        "'squareplus'",
    ] {
        assert!(message.contains(named), "{named}: {message}");
    }
}

/// `loss = []` in a description's compile section: an error naming compile.loss and the file,
/// where the first loss was taken from the empty list and panicked.
#[test]
fn an_empty_list_of_losses_is_named() {
    use strata::io::config::{Format, parse};
    let text = "[compile]\nloss = []\n[[layers]]\nclass_name = \"InputLayer\"\nconfig = { shape = [4] }\n\
                [[layers]]\nclass_name = \"Dense\"\nconfig = { units = 2 }\n";
    let message = parse(text, Format::Toml, "m.toml").err().unwrap().to_string();
    assert!(
        message.contains("m.toml") && message.contains("compile.loss is an empty list"),
        "{message}"
    );
}
