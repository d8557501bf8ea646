//! ONNX import (`strata::io::load_onnx`): PyTorch models exported to ONNX give ONNX Runtime's
//! outputs when strata runs them, and damaged or unsupported files are clear errors.
//!
//! The fixtures under tests/fixtures/onnx_import/ were written by
//! tools/onnx_import_fixtures.py: NAME.onnx, NAME.input.npy (NCHW, as ONNX takes it) and
//! NAME.output.npy (what ONNX Runtime gave). strata takes the images channels-last.
mod common;

use prost::Message;
use std::path::{Path, PathBuf};
use strata::io::onnx::proto::{
    Dimension, DimensionValue, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto, TensorShapeProto,
    TensorTypeProto, TypeProto, ValueInfoProto,
};
use strata::io::{load_onnx, load_onnx_bytes};
use strata::prelude::*;

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx_import")
        .join(name)
}

/// A scratch folder for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-onnx-import-{}-{name}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// An `.npy` file's shape and values of type `T`.
fn npy_values<T: npyz::Deserialize>(path: &Path) -> (Vec<usize>, Vec<T>) {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    (shape, file.into_vec().unwrap())
}

/// An `.npy` file of f32 as a tensor.
fn npy(path: &Path) -> Tensor {
    let (shape, values) = npy_values::<f32>(path);
    Tensor::from_vec(shape, values).unwrap()
}

/// NCHW images as strata takes them, NHWC.
fn channels_last(x: &Tensor) -> Tensor {
    let &[n, c, h, w] = x.shape() else {
        panic!("not images: {:?}", x.shape())
    };
    let mut out = vec![0.0; x.data().len()];
    for b in 0..n {
        for k in 0..c {
            for i in 0..h {
                for j in 0..w {
                    out[((b * h + i) * w + j) * c + k] = x.data()[((b * c + k) * h + i) * w + j];
                }
            }
        }
    }
    Tensor::from_vec(vec![n, h, w, c], out).unwrap()
}

/// An ONNX input as strata takes it: images NCHW → NHWC, sequences for 1-D convolutions
/// NCL → NLC, token ids (stored as floats) as they are.
fn strata_input(x: &Tensor) -> Tensor {
    match *x.shape() {
        [_, _, _, _] => channels_last(x),
        [n, c, l] => {
            let mut out = vec![0.0; x.data().len()];
            for b in 0..n {
                for k in 0..c {
                    for i in 0..l {
                        out[(b * l + i) * c + k] = x.data()[(b * c + k) * l + i];
                    }
                }
            }
            Tensor::from_vec(vec![n, l, c], out).unwrap()
        }
        _ => x.clone(),
    }
}

/// The largest difference between strata's output and ONNX Runtime's.
fn max_difference(actual: &Tensor, expected: &Tensor) -> f32 {
    assert_eq!(actual.shape(), expected.shape());
    actual
        .data()
        .iter()
        .zip(expected.data())
        .map(|(a, e)| (a - e).abs())
        .fold(0.0, f32::max)
}

/// Imports `folder/name.onnx`, runs it on the fixture's input and compares with ONNX Runtime.
fn check_parity(folder: &Path, name: &str, tolerance: f32) -> Model {
    let mut model = load_onnx(folder.join(format!("{name}.onnx"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = npy(&folder.join(format!("{name}.input.npy")));
    // Channels-last inputs (tf2onnx's NHWC graphs) are taken as they are.
    let x = match model.input_shape() {
        Some(shape) if shape == &x.shape()[1..] => x,
        _ => strata_input(&x),
    };
    let expected = npy(&folder.join(format!("{name}.output.npy")));
    let y = model.predict(&x, 32).unwrap();
    // Image outputs are channels-last in strata, NCHW in ONNX; so are the outputs of 1-D
    // convolutions and poolings, NCL in ONNX.
    let expected = match (expected.shape(), y.shape()) {
        ([_, _, _, _], [_, _, _, _]) | ([_, _, _], [_, _, _]) if expected.shape() != y.shape() => {
            strata_input(&expected)
        }
        _ => expected,
    };
    let difference = max_difference(&y, &expected);
    eprintln!("{name}: largest difference from ONNX Runtime {difference:e}");
    assert!(
        difference <= tolerance,
        "{name}: strata and ONNX Runtime differ by {difference}"
    );
    model
}

#[test]
fn small_cnn_matches_onnx_runtime() {
    // Conv, BatchNormalization (kept and folded), MaxPool, Flatten of a 3x3 map into Gemm.
    let model = check_parity(&fixture(""), "small_cnn", 1e-5);
    assert_eq!(model.input_shape(), Some(&[12, 12, 3][..]));
}

#[test]
fn the_torch_export_exporter_matches_onnx_runtime() {
    // PyTorch's default (torch.export) exporter: opset 18, Reshape instead of Flatten.
    check_parity(&fixture(""), "small_cnn_dynamo", 1e-5);
}

#[test]
fn weights_in_an_external_file_load() {
    check_parity(&fixture(""), "small_cnn_external", 1e-5);
}

#[test]
fn many_operators_match_onnx_runtime() {
    // Depthwise and transposed convolutions, Pad, Concat, arithmetic with constants, the
    // Shape/Gather/Concat/Reshape chain, HardSwish, HardSigmoid, LeakyRelu, Clip, AveragePool.
    check_parity(&fixture(""), "ops", 1e-5);
}

#[test]
fn a_tiny_resnet_matches_onnx_runtime() {
    check_parity(&fixture(""), "tiny_resnet", 1e-5);
}

#[test]
fn a_narrow_torchvision_mobilenet_v2_matches_onnx_runtime() {
    check_parity(&fixture(""), "tiny_mobilenet", 1e-5);
}

#[test]
fn grouped_convolutions_match_onnx_runtime() {
    // Groups of 2 input channels (4 groups) and of 6 (2 groups): one Conv2D each, its kernel
    // zero between groups.
    let model = check_parity(&fixture(""), "grouped_convs", 1e-5);
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert_eq!(classes.iter().filter(|c| **c == "Conv2D").count(), 3, "{classes:?}");
}

#[test]
fn one_dimensional_convolutions_match_onnx_runtime() {
    // (N, C, L) sequences held channels-last: Conv1D "same", grouped and strided, batch norm,
    // the flatten of a (C, L) map into a Linear.
    let model = check_parity(&fixture(""), "conv1d", 1e-5);
    assert_eq!(model.input_shape(), Some(&[16, 4][..]));
}

#[test]
fn causal_convolutions_padded_by_f_pad_match_onnx_runtime() {
    // A TCN's causal Conv1d: `F.pad(x, (k - 1, 0))` of an (N, C, L) sequence, a `Pad` of its
    // steps, is a ZeroPadding1D before a "valid" Conv1D (both exporters).
    for name in ["causal_conv1d", "causal_conv1d_dynamo"] {
        let model = check_parity(&fixture(""), name, 1e-5);
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert_eq!(
            classes.iter().filter(|c| **c == "ZeroPadding1D").count(),
            2,
            "{name}: {classes:?}"
        );
    }
}

#[test]
fn pytorchs_other_activations_match_onnx_runtime() {
    // PRelu (a slope per channel, one slope), Mish (opset 18's, or softplus-tanh-mul), Elu,
    // Selu, Softplus (with torch.export's threshold guard), Softsign (or |x| written out),
    // GELU's tanh form (opset 20's Gelu, or the pattern before), Exp, LogSoftmax: the
    // TorchScript exporter at opset 17, torch.export at 18 and 20.
    for name in ["activations", "activations_dynamo", "activations_opset20"] {
        let model = check_parity(&fixture(""), name, 2e-6);
        let activations: Vec<String> = model
            .layers()
            .iter()
            .filter_map(|l| l.config()["activation"].as_str().map(str::to_string))
            .collect();
        for expected in ["gelu_approximate", "log_softmax", "selu", "softsign"] {
            assert!(activations.iter().any(|a| a == expected), "{name}: {activations:?}");
        }
        let prelus = model.layers().iter().filter(|l| l.class_name() == "PReLU").count();
        assert_eq!(prelus, 2, "{name}");
    }
}

#[test]
fn upsampling_by_whole_factors_matches_onnx_runtime() {
    // Resize: F.interpolate by a factor and to a size ("nearest"), nn.Upsample bilinear; Max
    // and Min of two maps.
    for name in ["upsampling", "upsampling_dynamo"] {
        let model = check_parity(&fixture(""), name, 2e-6);
        let modes: Vec<String> = model
            .layers()
            .iter()
            .filter(|l| l.class_name() == "UpSampling2D")
            .map(|l| format!("{} {}", l.config()["interpolation"], l.config()["size"]))
            .collect();
        assert_eq!(
            modes,
            ["\"nearest\" [2,2]", "\"nearest\" [3,3]", "\"bilinear\" [2,2]"],
            "{name}"
        );
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert!(
            classes.contains(&"Maximum") && classes.contains(&"Minimum"),
            "{classes:?}"
        );
    }
    // align_corners=True places pixels otherwise: refused, naming the mode.
    let mut corners = ModelProto::decode(&std::fs::read(fixture("upsampling.onnx")).unwrap()[..]).unwrap();
    let graph = corners.graph.as_mut().unwrap();
    let resize = graph.node.iter_mut().rev().find(|n| n.op_type == "Resize").unwrap();
    for attribute in &mut resize.attribute {
        if attribute.name == "coordinate_transformation_mode" {
            attribute.s = Some(b"align_corners".to_vec());
        }
    }
    let error = import_error(&corners);
    assert!(error.contains("Resize") && error.contains("align_corners"), "{error}");
}

#[test]
fn pytorchs_recurrent_layers_match_onnx_runtime() {
    // nn.LSTM (two layers, batch_first, tokens in), nn.GRU (bidirectional), a two-layer
    // bidirectional LSTM's final states joined, nn.RNN (ReLU) and a GRU read time-major
    // (batch_first=False), outputs, their mean over the steps and final states; both exporters
    // (torch.export writes nn.RNN unrolled, which is not read).
    let cases = [
        ("lstm_classifier", &["LSTM", "LSTM"][..]),
        ("lstm_classifier_dynamo", &["LSTM", "LSTM"][..]),
        ("bidirectional_gru", &["Bidirectional"][..]),
        ("bidirectional_gru_dynamo", &["Bidirectional"][..]),
        ("bidirectional_lstm_states", &["Bidirectional", "Bidirectional"][..]),
        (
            "bidirectional_lstm_states_dynamo",
            &["Bidirectional", "Bidirectional"][..],
        ),
        ("recurrent_states", &["SimpleRNN", "GRU"][..]),
        // A bidirectional GRU read through its backward direction's final state alone.
        ("backward_state", &["Bidirectional"][..]),
        ("backward_state_dynamo", &["Bidirectional"][..]),
    ];
    for (name, expected) in cases {
        let model = check_parity(&fixture(""), name, 2e-6);
        let recurrent: Vec<&str> = model
            .layers()
            .iter()
            .map(|l| l.class_name())
            .filter(|c| ["LSTM", "GRU", "SimpleRNN", "Bidirectional"].contains(c))
            .collect();
        assert_eq!(recurrent, expected, "{name}");
    }
    // The imported LSTM saves, loads and fine-tunes like any model.
    assert_saved_model_fine_tunes("lstm_classifier", 2e-6);
}

/// Fixture `name` (a three-class classifier) imported within `tolerance` of ONNX Runtime,
/// saved, loaded back, and fine-tuned on its own input.
fn assert_saved_model_fine_tunes(name: &str, tolerance: f32) {
    let model = check_parity(&fixture(""), name, tolerance);
    let path = scratch(name).join(format!("{name}.safetensors"));
    model.save(&path).unwrap();
    let mut model = strata::load_model(&path).unwrap();
    let x = npy(&fixture(&format!("{name}.input.npy")));
    let y = Tensor::from_vec(vec![2, 3], vec![1., -1., 0., -1., 0., 1.]).unwrap();
    assert_fine_tunes(&mut model, &x, &y);
}

#[test]
fn recurrent_outputs_strata_does_not_give_are_refused_by_name() {
    // An LSTM whose cell state Y_c is read, and a time-major sequence read by a Relu.
    let original = ModelProto::decode(&std::fs::read(fixture("lstm_classifier.onnx")).unwrap()[..]).unwrap();
    let output_of = |op: &str, k: usize| {
        let graph = original.graph.as_ref().unwrap();
        graph.node.iter().find(|n| n.op_type == op).unwrap().output[k].clone()
    };
    let error = import_error(&with_relu_output(&original, &output_of("LSTM", 2), "reads_c"));
    assert!(error.contains("Y_c") && error.contains("LSTM"), "{error}");
    let error = import_error(&with_relu_output(&original, &output_of("Transpose", 0), "reads_steps"));
    assert!(error.contains("reads_steps") && error.contains("time-major"), "{error}");
    // One direction of a bidirectional layer's final states, joined alone.
    let bytes = std::fs::read(fixture("bidirectional_lstm_states.onnx")).unwrap();
    let mut one_direction = ModelProto::decode(&bytes[..]).unwrap();
    let graph = one_direction.graph.as_mut().unwrap();
    let concat = graph.node.iter_mut().rev().find(|n| n.op_type == "Concat").unwrap();
    concat.input.truncate(1);
    let error = import_error(&one_direction);
    assert!(error.contains("bidirectional layer's directions"), "{error}");
}

/// A graph from `(N, 3, 2)` sequences `x` to `y` of per-sample shape `output`.
fn sequence_graph(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, output: &[i64]) -> ModelProto {
    let mut model = graph_model(nodes, initializers, 17);
    let graph = model.graph.as_mut().unwrap();
    let dims = |sizes: &[i64]| {
        let batch = Dimension {
            value: Some(DimensionValue::DimParam("N".into())),
        };
        let rest = sizes.iter().map(|&d| Dimension {
            value: Some(DimensionValue::DimValue(d)),
        });
        std::iter::once(batch).chain(rest).collect::<Vec<_>>()
    };
    for (value, sizes) in [(&mut graph.input[0], &[3i64, 2][..]), (&mut graph.output[0], output)] {
        let tensor = value.r#type.as_mut().unwrap().tensor_type.as_mut().unwrap();
        tensor.shape = Some(TensorShapeProto { dim: dims(sizes) });
    }
    model
}

/// An integer attribute.
fn int_attribute(name: &str, value: i64) -> strata::io::onnx::proto::AttributeProto {
    strata::io::onnx::proto::AttributeProto {
        name: name.into(),
        r#type: 2,
        i: Some(value),
        ..Default::default()
    }
}

/// A `float` initializer.
fn floats(name: &str, dims: Vec<i64>, values: Vec<f32>) -> TensorProto {
    TensorProto {
        dims,
        data_type: 1,
        name: name.into(),
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// An integer-list attribute.
fn ints_attribute(name: &str, values: &[i64]) -> strata::io::onnx::proto::AttributeProto {
    strata::io::onnx::proto::AttributeProto {
        name: name.into(),
        r#type: 7,
        ints: values.to_vec(),
        ..Default::default()
    }
}

/// An `int64` initializer.
fn int64s(name: &str, values: &[i64]) -> TensorProto {
    TensorProto {
        dims: vec![values.len() as i64],
        data_type: 7,
        name: name.into(),
        raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    }
}

/// A `Transpose` node `name` of `from` by [1, 0, 2] into `to`: a sequence made time-major, or
/// batch-first again.
fn swap_first_axes(name: &str, from: &str, to: &str) -> NodeProto {
    let mut t = node("Transpose", name, &[from], to);
    t.attribute.push(ints_attribute("perm", &[1, 0, 2]));
    t
}

#[test]
fn time_major_means_and_recurrent_reshapes_keep_track_of_the_batch() {
    let to_time_major = || swap_first_axes("t", "x", "steps");
    let back = |from: &str| swap_first_axes("back", from, "y");
    let x = Tensor::from_vec(vec![1, 3, 2], vec![1.0, -2.0, 3.0, 0.5, -1.0, 0.0]).unwrap();
    // The mean over the steps of a time-major sequence, kept: (1, N, 2), batch-first again.
    let mut mean = node("ReduceMean", "mean", &["steps"], "mean");
    mean.attribute.push(ints_attribute("axes", &[0]));
    mean.attribute.push(int_attribute("keepdims", 1));
    let graph = sequence_graph(vec![to_time_major(), mean, back("mean")], vec![], &[1, 2]);
    let mut model = load_onnx_bytes(&graph.encode_to_vec(), "mean.onnx").unwrap();
    assert_eq!(model.predict(&x, 1).unwrap().data(), &[1.0, -0.5]);
    // An RNN whose outputs are tanh(x) (W = identity, R = 0), its (T, 1, N, 2) outputs
    // reshaped by (0, -1, 2): the 0 copies the steps, -1 is the batch. A 0 at the batch's place
    // would copy the direction axis (1) instead: refused.
    let weights = || {
        vec![
            floats("W", vec![1, 2, 2], vec![1.0, 0.0, 0.0, 1.0]),
            floats("R", vec![1, 2, 2], vec![0.0; 4]),
        ]
    };
    let mut rnn = node("RNN", "rnn", &["steps", "W", "R"], "Y");
    rnn.attribute.push(int_attribute("hidden_size", 2));
    let with_target = |target: &[i64]| {
        let mut initializers = weights();
        initializers.push(int64s("target", target));
        let nodes = vec![
            to_time_major(),
            rnn.clone(),
            node("Reshape", "merge", &["Y", "target"], "merged"),
            back("merged"),
        ];
        sequence_graph(nodes, initializers, &[3, 2])
    };
    let mut model = load_onnx_bytes(&with_target(&[0, -1, 2]).encode_to_vec(), "rnn.onnx").unwrap();
    let expected: Vec<f32> = x.data().iter().map(|v| v.tanh()).collect();
    assert!(
        max_difference(
            &model.predict(&x, 1).unwrap(),
            &Tensor::from_vec(vec![1, 3, 2], expected).unwrap()
        ) < 1e-6
    );
    let error = import_error(&with_target(&[0, 0, -1]));
    assert!(
        error.contains("merge") && error.contains("merging its directions"),
        "{error}"
    );
}

#[test]
fn time_major_sequences_go_through_per_step_operators() {
    // A tagger kept time-major after its LSTM (batch_first=False): Linear, ReLU, a residual,
    // LayerNorm, a (steps, 1, features) positional buffer added, GELU, Linear, log_softmax,
    // then transposed back; both exporters.
    for name in ["time_major_tagger", "time_major_tagger_dynamo"] {
        let model = check_parity(&fixture(""), name, 2e-6);
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert!(
            classes.contains(&"LSTM") && classes.contains(&"LayerNormalization"),
            "{name}: {classes:?}"
        );
    }
    // By hand: (N, 3, 2) sequences made time-major, then `op` on them (and `other`), back.
    let x = Tensor::from_vec(vec![1, 3, 2], vec![1.0, -2.0, 3.0, 0.5, -1.0, 0.0]).unwrap();
    let graph = |op: NodeProto, initializers: Vec<TensorProto>| {
        let nodes = vec![
            swap_first_axes("t", "x", "steps"),
            op,
            swap_first_axes("back", "z", "y"),
        ];
        sequence_graph(nodes, initializers, &[3, 2])
    };
    // A constant of (steps, 1, features) added: the same for every sample.
    let position = floats("position", vec![3, 1, 2], vec![10.0, 20.0, 30.0, 40.0, 50.0, 60.0]);
    let added = graph(node("Add", "add", &["steps", "position"], "z"), vec![position]);
    let mut model = load_onnx_bytes(&added.encode_to_vec(), "add.onnx").unwrap();
    assert_eq!(
        model.predict(&x, 1).unwrap().data(),
        &[11.0, 18.0, 33.0, 40.5, 49.0, 60.0]
    );
    // A constant that differs from sample to sample, a softmax over the steps and an `Add` of
    // a time-major sequence and a batch-first one are refused by name.
    let per_sample = floats("per_sample", vec![3, 2, 2], vec![0.0; 12]);
    let error = import_error(&graph(
        node("Add", "add", &["steps", "per_sample"], "z"),
        vec![per_sample],
    ));
    assert!(
        error.contains("per_sample") && error.contains("every sample"),
        "{error}"
    );
    let mut softmax = node("Softmax", "softmax", &["steps"], "z");
    softmax.attribute.push(int_attribute("axis", 0));
    let error = import_error(&graph(softmax, vec![]));
    assert!(error.contains("softmax") && error.contains("features"), "{error}");
    let error = import_error(&graph(node("Add", "mixed", &["steps", "x"], "z"), vec![]));
    assert!(
        error.contains("mixed") && error.contains("held the same way"),
        "{error}"
    );
    // Flattened with the batch, (steps·N, features): a bias per feature is added; a constant
    // of (steps, 1, features) would make ONNX broadcast to three axes, and is refused.
    let flattened = |constant: TensorProto| {
        let nodes = vec![
            swap_first_axes("t", "x", "steps"),
            node("Reshape", "flatten", &["steps", "rows"], "flat"),
            node("Add", "add", &["flat", "c"], "sum"),
            node("Reshape", "unflatten", &["sum", "sequence"], "unflat"),
            swap_first_axes("back", "unflat", "y"),
        ];
        let initializers = vec![int64s("rows", &[-1, 2]), int64s("sequence", &[3, -1, 2]), constant];
        sequence_graph(nodes, initializers, &[3, 2])
    };
    let bias = floats("c", vec![2], vec![10.0, 20.0]);
    let mut model = load_onnx_bytes(&flattened(bias).encode_to_vec(), "flat.onnx").unwrap();
    assert_eq!(
        model.predict(&x, 1).unwrap().data(),
        &[11.0, 18.0, 13.0, 20.5, 9.0, 20.0]
    );
    let position = floats("c", vec![3, 1, 2], vec![0.0; 6]);
    let error = import_error(&flattened(position));
    assert!(error.contains("'c'") && error.contains("every sample"), "{error}");
}

#[test]
fn pytorchs_multihead_attention_and_transformer_layers_match_onnx_runtime() {
    // nn.TransformerEncoder (two post-norm layers, batch_first, and kept time-major with the
    // tutorial's (steps, 1, features) positional encoding) and nn.MultiheadAttention called
    // directly, as torch.export writes them (and TorchScript, which computes `N·heads` and
    // `steps·N` from `Shape`): the packed in-projection split into three Dense layers (each
    // bias its own: the parameter counts are PyTorch's), the heads merged with the batch, the
    // out-projection on (steps·N, features).
    let cases = [
        ("transformer_classifier", 5331),
        ("transformer_classifier_dynamo", 5331),
        ("transformer_time_major_dynamo", 5331),
        ("attention_pooling_dynamo", 1234),
        // need_weights=True: explicit products of the heads merged with the batch.
        ("attention_weights", 1234),
        ("attention_weights_dynamo", 1234),
        // torchvision's VisionTransformer (vit_b_16's blocks), tiny.
        ("tiny_torchvision_vit", 7941),
        ("tiny_torchvision_vit_dynamo", 7941),
        // torch.onnx.export's default: the batch size fixed to the example's (2), the class
        // token expanded to one copy per image.
        ("tiny_torchvision_vit_static_batch", 7941),
        // A hand-written causal self-attention (nanoGPT's): `masked_fill` of the scores by a
        // lower-triangular buffer is the attention's causal mask.
        ("causal_self_attention", 1621),
        ("causal_self_attention_dynamo", 1621),
    ];
    for (name, params) in cases {
        let model = check_parity(&fixture(""), name, 1e-6);
        assert_eq!(model.count_params(), params, "{name}");
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert!(classes.contains(&"DotProductAttention"), "{name}: {classes:?}");
        assert!(
            model.layers().iter().all(|l| l.is_trainable()),
            "{name}: a frozen layer (a selection instead of a split projection)"
        );
    }
    // The imported Transformer saves, loads and fine-tunes like any model.
    assert_saved_model_fine_tunes("transformer_classifier_dynamo", 1e-6);
}

#[test]
fn shape_arithmetic_keeps_multiples_of_the_batch_size_and_refuses_the_rest() {
    // The batch size times a count (PyTorch's `N·heads`) stays a stand-in; the batch size
    // squared, or plus one, depends on what strata does not fix at import.
    let graph = |op: &str, other: &str| {
        let nodes = vec![
            node("Shape", "shape", &["x"], "dims"),
            node("Gather", "batch", &["dims", "first"], "n"),
            node(op, "arithmetic", &["n", other], "m"),
            node("Relu", "relu", &["x"], "y"),
        ];
        let initializers = vec![int64s("first", &[0]), int64s("four", &[4])];
        sequence_graph(nodes, initializers, &[3, 2])
    };
    if let Err(e) = load_onnx_bytes(&graph("Mul", "four").encode_to_vec(), "times.onnx") {
        panic!("{e}");
    }
    let error = import_error(&graph("Mul", "n"));
    assert!(
        error.contains("arithmetic") && error.contains("positive count"),
        "{error}"
    );
    let error = import_error(&graph("Add", "four"));
    assert!(error.contains("arithmetic") && error.contains("batch size"), "{error}");
}

/// `model` with one more output: a `Relu` node `name` reading `tensor`.
fn with_relu_output(model: &ModelProto, tensor: &str, name: &str) -> ModelProto {
    let mut model = model.clone();
    let graph = model.graph.as_mut().unwrap();
    let output = format!("{name}_output");
    graph.node.push(node("Relu", name, &[tensor], &output));
    graph.output.push(ValueInfoProto {
        name: output,
        ..graph.output[0].clone()
    });
    model
}

#[test]
fn a_tiny_hugging_face_bert_matches_onnx_runtime() {
    // Embeddings (word, position and token-type tables), LayerNormalization, attention as
    // MatMul / scale / Softmax / MatMul on split heads, GELU written with Erf.
    let model = check_parity(&fixture(""), "tiny_bert", 1e-4);
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    let count = |class: &str| classes.iter().filter(|c| **c == class).count();
    assert_eq!(count("DotProductAttention"), 2, "{classes:?}");
    assert_eq!(count("Embedding"), 1, "{classes:?}");
    assert_eq!(count("PositionEmbedding"), 1, "{classes:?}");
    assert_eq!(count("LayerNormalization"), 5, "{classes:?}");
    assert_eq!(count("Reshape"), 0, "{classes:?}");
}

#[test]
fn a_bert_classifier_with_fused_attention_matches_onnx_runtime() {
    // PyTorch's scaled_dot_product_attention as exported (the scale on queries and keys), the
    // pooler's first token and the classifier head.
    let model = check_parity(&fixture(""), "tiny_bert_classifier", 1e-4);
    // It saves and loads like any model, and fine-tunes: two sentences, two classes.
    let path = scratch("bert").join("bert.safetensors");
    model.save(&path).unwrap();
    let mut model = strata::load_model(&path).unwrap();
    let x = npy(&fixture("tiny_bert_classifier.input.npy"));
    let expected = npy(&fixture("tiny_bert_classifier.output.npy"));
    assert!(max_difference(&model.predict(&x, 2).unwrap(), &expected) <= 1e-4);
    // The head gives logits: pull them towards made-up targets.
    let y = Tensor::from_vec(vec![2, 3], vec![2., -1., 0., -1., 0., 2.]).unwrap();
    assert_fine_tunes(&mut model, &x, &y);
}

/// Ten epochs of Adam on `(x, y)` at least halve the model's mean squared error.
fn assert_fine_tunes(model: &mut Model, x: &Tensor, y: &Tensor) {
    model.compile(Adam::new(0.01), "mse", &[]).unwrap();
    let before = model.evaluate(x, y, 2).unwrap().loss;
    model
        .fit(x, y, FitOptions::default().epochs(10).batch_size(2).verbose(0))
        .unwrap();
    let after = model.evaluate(x, y, 2).unwrap().loss;
    assert!(after < before * 0.5, "loss {before} -> {after}");
}

#[test]
fn a_tiny_hugging_face_roberta_with_padding_matches_onnx_runtime() {
    // Position ids computed from the token ids (Equal, Not, CumSum, Mul, Add): padding keeps
    // position 1, the other tokens count from 2; the first row ends in padding. The token
    // types picked from a buffer of zeros at those positions (GatherElements) are zeros.
    for name in ["tiny_roberta", "tiny_roberta_dynamo"] {
        let model = check_parity(&fixture(""), name, 1e-4);
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        assert_eq!(
            classes.iter().filter(|c| **c == "PositionIds").count(),
            1,
            "{name}: {classes:?}"
        );
    }
}

#[test]
fn position_ids_count_tokens_after_the_padding_id() {
    let inputs = Input::node(&[6]);
    let outputs = strata::layers::PositionIds::new(1).call(&inputs).unwrap();
    let mut model = Model::functional(&inputs, &outputs).unwrap();
    let ids = Tensor::from_vec(vec![2, 6], vec![5., 7., 1., 9., 1., 1., 1., 3., 4., 0., 2., 8.]).unwrap();
    let positions = model.predict(&ids, 2).unwrap();
    assert_eq!(positions.data(), [2., 3., 1., 4., 1., 1., 1., 2., 3., 4., 5., 6.]);
}

#[test]
fn a_tiny_hugging_face_vit_matches_onnx_runtime() {
    // Patches by a strided Conv, the class token (a learned vector expanded over the batch and
    // concatenated in front), learned positions, attention as exported by TorchScript and by
    // torch.export (its keys transposed through a reshape with the batch, its NaN guard after
    // the softmax), the class token's output into the head.
    // DeiT puts two tokens in front (class and distillation): one ClassToken of two.
    for name in ["tiny_vit", "tiny_vit_dynamo", "tiny_deit"] {
        let model = check_parity(&fixture(""), name, 1e-4);
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        let count = |class: &str| classes.iter().filter(|c| **c == class).count();
        assert_eq!(count("ClassToken"), 1, "{name}: {classes:?}");
        assert_eq!(count("DotProductAttention"), 2, "{name}: {classes:?}");
        assert_eq!(count("PositionEmbedding"), 1, "{name}: {classes:?}");
    }
    // It saves, loads and fine-tunes, the class token with the rest.
    let model = load_onnx(fixture("tiny_vit.onnx")).unwrap();
    let path = scratch("vit").join("vit.safetensors");
    model.save(&path).unwrap();
    let mut model = strata::load_model(&path).unwrap();
    let x = strata_input(&npy(&fixture("tiny_vit.input.npy")));
    let expected = npy(&fixture("tiny_vit.output.npy"));
    assert!(max_difference(&model.predict(&x, 2).unwrap(), &expected) <= 1e-4);
    let token = |model: &Model| {
        let weights = model.weights();
        let (_, token) = weights
            .iter()
            .find(|(name, _)| name.ends_with("/cls"))
            .expect("a class token");
        token.clone()
    };
    let token_before = token(&model);
    assert_eq!(token_before.shape(), &[1, 1, 32]);
    let y = Tensor::from_vec(vec![2, 5], vec![2., -1., 0., 1., 0., -1., 0., 2., 0., 1.]).unwrap();
    assert_fine_tunes(&mut model, &x, &y);
    assert!(
        max_difference(&token(&model), &token_before) > 0.0,
        "the class token trains"
    );
}

/// Gives every weight of `model` a value of its own between `-shift` and `10 / divisor -
/// shift`, so a weight read in the wrong place shows.
fn spread_weights(model: &mut Model, divisor: f32, shift: f32) {
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        for (i, v) in model.params_mut().value_mut(id).data_mut().iter_mut().enumerate() {
            *v = ((i * 7 + k * 3) % 11) as f32 / divisor - shift;
        }
    }
}

#[test]
fn class_tokens_survive_an_onnx_round_trip() {
    // strata's own export of ClassToken (Expand to the batch read by Shape, Concat) imports
    // back as one ClassToken with the same tokens.
    let inputs = Input::node(&[4, 3]);
    let x = strata::layers::ClassToken::new().tokens(2).call(&inputs).unwrap();
    let outputs = Dense::new(2).call(&x).unwrap();
    let mut model = Model::functional(&inputs, &outputs).unwrap();
    spread_weights(&mut model, 5.0, 1.0);
    let bytes = strata::io::onnx::to_onnx(&model).unwrap().encode_to_vec();
    let mut imported = load_onnx_bytes(&bytes, "class_token.onnx").unwrap();
    let classes: Vec<&str> = imported.layers().iter().map(|l| l.class_name()).collect();
    assert!(classes.contains(&"ClassToken"), "{classes:?}");
    let values = (0..36).map(|i| ((i * 5) % 13) as f32 / 6.0 - 1.0).collect();
    let x = Tensor::from_vec(vec![3, 4, 3], values).unwrap();
    let difference = max_difference(&imported.predict(&x, 3).unwrap(), &model.predict(&x, 3).unwrap());
    assert!(difference < 1e-6, "{difference}");
}

#[test]
fn activations_survive_an_onnx_round_trip() {
    // strata's export writes GELU's tanh form and Mish out in opset 17's operators; the
    // import reads them (and the rest) back as the same activations (ELU as an ELU layer).
    let inputs = Input::node(&[6]);
    let mut x = inputs.clone();
    for activation in [
        "gelu_approximate",
        "softsign",
        "selu",
        "elu",
        "softplus",
        "mish",
        "log_softmax",
    ] {
        x = Dense::new(6).activation(activation).call(&x).unwrap();
    }
    let mut model = Model::functional(&inputs, &x).unwrap();
    spread_weights(&mut model, 4.0, 1.2);
    let bytes = strata::io::onnx::to_onnx(&model).unwrap().encode_to_vec();
    let mut imported = load_onnx_bytes(&bytes, "activations.onnx").unwrap();
    let activations: Vec<String> = imported
        .layers()
        .iter()
        .filter_map(|l| l.config()["activation"].as_str().map(str::to_string))
        .filter(|a| a != "linear")
        .collect();
    assert!(imported.layers().iter().any(|l| l.class_name() == "ELU"));
    assert_eq!(
        activations,
        [
            "gelu_approximate",
            "softsign",
            "selu",
            "softplus",
            "mish",
            "log_softmax"
        ],
        "{:?}",
        imported.layers().iter().map(|l| l.class_name()).collect::<Vec<_>>()
    );
    let values = (0..18).map(|i| ((i * 5) % 13) as f32 / 3.0 - 2.0).collect();
    let x = Tensor::from_vec(vec![3, 6], values).unwrap();
    let difference = max_difference(&imported.predict(&x, 3).unwrap(), &model.predict(&x, 3).unwrap());
    assert!(difference < 1e-5, "{difference}");
}

#[test]
fn constants_joined_other_than_in_front_of_a_sequence_are_refused_by_name() {
    let tokens = TensorProto {
        dims: vec![1, 2],
        data_type: 1,
        name: "tokens".into(),
        raw_data: [0.5f32, -0.5].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ..Default::default()
    };
    let mut concat = node("Concat", "join", &["tokens", "x"], "y");
    concat.attribute.push(strata::io::onnx::proto::AttributeProto {
        name: "axis".into(),
        r#type: 2,
        i: Some(1),
        ..Default::default()
    });
    let error = import_error(&graph_model(vec![concat.clone()], vec![tokens.clone()], 17));
    assert!(
        error.contains("'join'") && error.contains("in front of a sequence's steps"),
        "{error}"
    );
    // After the computed tensor: the constant is named.
    concat.input.reverse();
    let error = import_error(&graph_model(vec![concat], vec![tokens], 17));
    assert!(error.contains("'join'") && error.contains("'tokens'"), "{error}");
}

/// torchvision's classifiers (random weights), made by
/// `tools/onnx_import_fixtures.py --large DIR [NAME ...]` (PyTorch, 64x64) or by
/// `tools/check_onnx_import_torchvision.py` from the stripped graphs (no PyTorch, 224x224, as
/// CI does) into `STRATA_ONNX_LARGE=DIR`: every `NAME.onnx` there with its `NAME.input.npy` is
/// checked.
#[test]
#[ignore = "needs STRATA_ONNX_LARGE: see tools/onnx_import_fixtures.py --large"]
fn torchvision_classifiers_match_onnx_runtime() {
    let folder = PathBuf::from(std::env::var("STRATA_ONNX_LARGE").expect("STRATA_ONNX_LARGE names the folder"));
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".input.npy")
                .map(String::from)
        })
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no NAME.input.npy in {}", folder.display());
    let failed: Vec<String> = names
        .iter()
        .filter(|name| std::panic::catch_unwind(|| check_large_parity(&folder, name)).is_err())
        .cloned()
        .collect();
    assert!(
        failed.is_empty(),
        "{failed:?} differ from ONNX Runtime or do not import"
    );
}

/// An `.npy` file of f64 as an f32 tensor.
fn npy_f64(path: &Path) -> Tensor {
    let (shape, values) = npy_values::<f64>(path);
    Tensor::from_vec(shape, values.into_iter().map(|v| v as f32).collect()).unwrap()
}

/// A large fixture's parity, whole batch and image by image: within 1e-4 of ONNX Runtime, or,
/// where `name.exact.npy` holds the graph's float64 evaluation, within 1e-4 of that and of
/// ONNX Runtime's output widened by ONNX Runtime's own distance from it (two float32 engines
/// each 5e-5 off the exact answer may be 1e-4 apart; see tools/check_onnx_import_torchvision.py).
fn check_large_parity(folder: &Path, name: &str) {
    const TOLERANCE: f32 = 1e-4;
    let mut model = load_onnx(folder.join(format!("{name}.onnx"))).unwrap_or_else(|e| panic!("{name}: {e}"));
    let x = strata_input(&npy(&folder.join(format!("{name}.input.npy"))));
    let runtime = npy(&folder.join(format!("{name}.output.npy")));
    let exact_path = folder.join(format!("{name}.exact.npy"));
    let exact = exact_path.exists().then(|| npy_f64(&exact_path));
    let runtime_error = exact.as_ref().map_or(0.0, |e| max_difference(&runtime, e));
    for batch_size in [32, 1] {
        let y = model.predict(&x, batch_size).unwrap();
        let from_runtime = max_difference(&y, &runtime);
        let from_exact = exact.as_ref().map(|e| max_difference(&y, e));
        let exact_note = from_exact.map_or("no float64 evaluation".into(), |d| format!("{d:.2e} from float64"));
        eprintln!(
            "{name}, batches of {batch_size}: {from_runtime:.2e} from ONNX Runtime (itself {runtime_error:.2e} \
             from float64), {exact_note}"
        );
        assert!(
            from_runtime <= TOLERANCE + runtime_error && from_exact.is_none_or(|d| d <= TOLERANCE),
            "{name}, batches of {batch_size}: strata differs from ONNX Runtime by {from_runtime}, from the \
             float64 evaluation by {from_exact:?}"
        );
    }
}

/// Every fixture of tests/fixtures/onnx_general/ (`tools/onnx_general_fixtures.py`): the same
/// small models exported by PyTorch's two exporters at other opsets (the attributes that
/// became inputs, layer normalization written out before opset 17, `Split`, `ReduceMean`), and
/// Keras models converted by tf2onnx (`tools/tf2onnx_fixtures.py`, NHWC inputs).
#[test]
fn other_opsets_exporters_and_converters_match_onnx_runtime() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_general");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".input.npy")
                .map(String::from)
        })
        .collect();
    names.sort();
    assert!(names.len() >= 6, "{names:?}");
    let failed: Vec<String> = names
        .iter()
        .filter(|name| std::panic::catch_unwind(|| check_parity(&folder, name, 1e-4)).is_err())
        .cloned()
        .collect();
    assert!(
        failed.is_empty(),
        "{failed:?} differ from ONNX Runtime or do not import"
    );
}

/// Hugging Face models exported with an attention mask input (`input_ids`, `attention_mask`,
/// as they are served; tests/fixtures/onnx_general/masked, `tools/onnx_general_fixtures.py`):
/// whatever chain the exporter writes from the mask to the scores, the attention takes the
/// input as its padding mask (GPT-2's causal too). The first sample is padded in its last five
/// steps: its outputs differ from the unpadded run's, and equal ONNX Runtime's.
#[test]
fn hugging_face_attention_masks_match_onnx_runtime() {
    let folder = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/onnx_general/masked");
    let mut names: Vec<String> = std::fs::read_dir(&folder)
        .unwrap()
        .filter_map(|e| {
            e.ok()?
                .file_name()
                .to_str()?
                .strip_suffix(".mask.npy")
                .map(String::from)
        })
        .collect();
    names.sort();
    assert_eq!(names.len(), 6, "{names:?}");
    for name in names {
        let mut model = load_onnx(folder.join(format!("{name}.onnx"))).unwrap_or_else(|e| panic!("{name}: {e}"));
        let ids = npy(&folder.join(format!("{name}.input.npy")));
        let mask = npy(&folder.join(format!("{name}.mask.npy")));
        let expected = npy(&folder.join(format!("{name}.output.npy")));
        let y = model.predict_multi(&[&ids, &mask], 8).unwrap().remove(0);
        let difference = max_difference(&y, &expected);
        assert!(
            difference <= 1e-4,
            "{name}: strata and ONNX Runtime differ by {difference}"
        );
        let masked: Vec<bool> = model
            .layers()
            .iter()
            .filter(|l| l.class_name() == "DotProductAttention")
            .map(|l| l.config()["mask_input"] == true)
            .collect();
        assert!(!masked.is_empty() && masked.iter().all(|&m| m), "{name}: {masked:?}");
        // The mask is read: without it the padded sample's outputs change.
        let ones = Tensor::from_vec(mask.shape().to_vec(), vec![1.0; mask.data().len()]).unwrap();
        let unmasked = model.predict_multi(&[&ids, &ones], 8).unwrap().remove(0);
        assert!(
            max_difference(&unmasked, &expected) > 1e-3,
            "{name}: the mask changed nothing"
        );
    }
}

#[test]
fn a_second_input_that_is_not_an_attention_mask_stays_an_input() {
    // A second (N, 4) input cast and scaled, then added to computed features: its nodes are
    // looked at as a possible attention mask (they compute from it and constants alone) and,
    // meeting no attention scores, converted as usual.
    let cast = NodeProto {
        attribute: vec![strata::io::onnx::proto::AttributeProto {
            name: "to".into(),
            i: Some(1),
            r#type: 2,
            ..Default::default()
        }],
        ..node("Cast", "c", &["m"], "mf")
    };
    let mut model = graph_model(
        vec![
            node("Relu", "r", &["x"], "h"),
            cast,
            node("Mul", "twice", &["mf", "two"], "m2"),
            node("Add", "a", &["h", "m2"], "y"),
        ],
        vec![floats("two", vec![], vec![2.0])],
        17,
    );
    let graph = model.graph.as_mut().unwrap();
    let second = ValueInfoProto {
        name: "m".into(),
        ..graph.input[0].clone()
    };
    graph.input.push(second);
    let mut imported = load_onnx_bytes(&model.encode_to_vec(), "two_inputs.onnx").unwrap();
    let x = Tensor::from_vec(vec![1, 4], vec![-1.0, 2.0, -3.0, 4.0]).unwrap();
    let m = Tensor::from_vec(vec![1, 4], vec![1.0, 0.0, 1.0, 1.0]).unwrap();
    let y = imported.predict_multi(&[&x, &m], 1).unwrap().remove(0);
    assert_eq!(y.data(), &[2.0, 2.0, 2.0, 6.0]);
}

#[test]
fn an_imported_model_trains() {
    let mut model = load_onnx(fixture("small_cnn.onnx")).unwrap();
    let x = channels_last(&npy(&fixture("small_cnn.input.npy")));
    let y = Tensor::from_vec(vec![2, 5], vec![1., 0., 0., 0., 0., 0., 0., 0., 0., 1.]).unwrap();
    model.compile(Adam::new(0.01), "categorical_crossentropy", &[]).unwrap();
    let before = model.evaluate(&x, &y, 2).unwrap().loss;
    let options = FitOptions::default().epochs(20).batch_size(2).verbose(0);
    model.fit(&x, &y, options).unwrap();
    let after = model.evaluate(&x, &y, 2).unwrap().loss;
    assert!(after < before * 0.5, "loss {before} -> {after}");
}

/// A graph of `nodes` on one input `x` of `(N, 4)` with output `y`.
fn graph_model(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, opset: i64) -> ModelProto {
    let value = |name: &str, dims: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    };
    let batch = Dimension {
        value: Some(DimensionValue::DimParam("N".into())),
    };
    let four = Dimension {
        value: Some(DimensionValue::DimValue(4)),
    };
    ModelProto {
        ir_version: 8,
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: initializers,
            input: vec![value("x", vec![batch.clone(), four.clone()])],
            output: vec![value("y", vec![batch, four])],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: opset,
        }],
        ..Default::default()
    }
}

fn node(op: &str, name: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: name.into(),
        op_type: op.into(),
        ..Default::default()
    }
}

fn import_error(model: &ModelProto) -> String {
    match load_onnx_bytes(&model.encode_to_vec(), "test.onnx") {
        Ok(_) => panic!("imported"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn a_hand_made_graph_imports() {
    let model = graph_model(
        vec![node("Relu", "r", &["x"], "h"), node("Sigmoid", "s", &["h"], "y")],
        vec![],
        17,
    );
    let mut model = load_onnx_bytes(&model.encode_to_vec(), "test.onnx").unwrap();
    let x = Tensor::from_vec(vec![1, 4], vec![-1.0, 0.0, 1.0, 2.0]).unwrap();
    let y = model.predict(&x, 1).unwrap();
    let expected = [0.5, 0.5, 1.0 / (1.0 + (-1.0f32).exp()), 1.0 / (1.0 + (-2.0f32).exp())];
    for (a, e) in y.data().iter().zip(expected) {
        assert!((a - e).abs() < 1e-6);
    }
}

#[test]
fn sum_and_mean_of_computed_tensors_are_merges() {
    let graph = graph_model(
        vec![
            node("Relu", "r", &["x"], "h"),
            node("Sum", "s", &["x", "h", "h"], "sum"),
            node("Mean", "m", &["sum", "x"], "y"),
        ],
        vec![],
        17,
    );
    let mut model = load_onnx_bytes(&graph.encode_to_vec(), "test.onnx").unwrap();
    let x = Tensor::from_vec(vec![1, 4], vec![-1.0, 0.5, 2.0, -3.0]).unwrap();
    // ((x + 2 relu(x)) + x) / 2.
    assert_eq!(model.predict(&x, 1).unwrap().data(), &[-1.0, 1.0, 4.0, -3.0]);
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert!(classes.contains(&"Add") && classes.contains(&"Average"), "{classes:?}");
}

#[test]
fn a_thresholded_relu_keeps_what_is_above_its_alpha() {
    let mut thresholded = node("ThresholdedRelu", "t", &["x"], "y");
    thresholded.attribute.push(strata::io::onnx::proto::AttributeProto {
        name: "alpha".into(),
        r#type: 1,
        f: Some(0.5),
        ..Default::default()
    });
    let model = graph_model(vec![thresholded], vec![], 17);
    let mut model = load_onnx_bytes(&model.encode_to_vec(), "test.onnx").unwrap();
    let x = Tensor::from_vec(vec![1, 4], vec![-1.0, 0.25, 0.75, 2.0]).unwrap();
    assert_eq!(model.predict(&x, 1).unwrap().data(), &[0.0, 0.0, 0.75, 2.0]);
}

#[test]
fn every_unsupported_operator_is_named_at_once() {
    let nodes = vec![
        node("Erf", "first", &["x"], "a"),
        node("Relu", "fine", &["a"], "b"),
        node("NonMaxSuppression", "second", &["b"], "c"),
        NodeProto {
            domain: "com.microsoft".into(),
            ..node("FusedGemm", "third", &["c"], "d")
        },
        // An operator used by many nodes (Swin's attention masks) is named once, with a few
        // of its nodes.
        node("ScatterND", "s1", &["d"], "e"),
        node("Erf", "fourth", &["e"], "f"),
        node("ScatterND", "s2", &["f"], "g"),
        node("ScatterND", "s3", &["g"], "h"),
        node("ScatterND", "s4", &["h"], "i"),
        node("ScatterND", "s5", &["i"], "y"),
    ];
    let error = import_error(&graph_model(nodes, vec![], 17));
    for part in [
        "Erf (2 nodes: 'first', 'fourth', opset 17)",
        "NonMaxSuppression (node 'second', opset 17)",
        "FusedGemm (node 'third', com.microsoft opset 0)",
        "ScatterND (5 nodes: 's1', 's2', 's3' and 2 more, opset 17)",
    ] {
        assert!(error.contains(part), "{error}");
    }
    assert!(!error.contains("Relu"), "{error}");
}

#[test]
fn a_cycle_is_an_error() {
    let nodes = vec![
        node("Add", "one", &["x", "b"], "a"),
        node("Relu", "two", &["a"], "b"),
        node("Relu", "out", &["b"], "y"),
    ];
    let error = import_error(&graph_model(nodes, vec![], 17));
    assert!(error.contains("cycle") && error.contains("'one'"), "{error}");
    // Casts in a cycle where RoBERTa's position ids would be: the fusion's walk ends.
    let nodes = vec![
        node("Cast", "c1", &["c2_out"], "c1_out"),
        node("Cast", "c2", &["c1_out"], "c2_out"),
        node("CumSum", "sum", &["c1_out", "c2_out"], "s"),
        node("Mul", "mul", &["s", "c1_out"], "m"),
        node("Add", "add", &["m", "m"], "y"),
    ];
    let error = import_error(&graph_model(nodes, vec![], 17));
    assert!(error.contains("cycle") || error.contains("CumSum"), "{error}");
}

#[test]
fn hostile_tensors_are_errors() {
    let weight = |dims: Vec<i64>, data_type: i32, raw: Vec<u8>| TensorProto {
        dims,
        data_type,
        name: "w".into(),
        raw_data: raw,
        ..Default::default()
    };
    let matmul = || vec![node("MatMul", "m", &["x", "w"], "y")];
    // A huge declared size with a few bytes behind it.
    let error = import_error(&graph_model(
        matmul(),
        vec![weight(vec![1 << 40, 1 << 30], 1, vec![0; 16])],
        17,
    ));
    assert!(
        error.contains("'w'") && (error.contains("budget") || error.contains("memory")),
        "{error}"
    );
    // Sizes that overflow.
    let error = import_error(&graph_model(
        matmul(),
        vec![weight(vec![i64::MAX, i64::MAX], 1, vec![])],
        17,
    ));
    assert!(error.contains("'w'"), "{error}");
    // Fewer bytes than the shape needs.
    let error = import_error(&graph_model(matmul(), vec![weight(vec![4, 4], 1, vec![0; 60])], 17));
    assert!(error.contains("'w'") && error.contains("64 bytes"), "{error}");
    // A type strata does not read.
    let error = import_error(&graph_model(matmul(), vec![weight(vec![4, 4], 8, vec![])], 17));
    assert!(error.contains("'w'") && error.contains("string"), "{error}");
    // A negative size.
    let error = import_error(&graph_model(matmul(), vec![weight(vec![-4, 4], 1, vec![])], 17));
    assert!(error.contains("negative"), "{error}");
}

#[test]
fn truncated_and_foreign_files_are_errors() {
    let bytes = std::fs::read(fixture("small_cnn.onnx")).unwrap();
    for cut in [bytes.len() / 2, bytes.len() - 1, 10] {
        let error = load_onnx_bytes(&bytes[..cut], "cut.onnx").unwrap_err().to_string();
        assert!(error.contains("cut.onnx"), "{error}");
    }
    let error = load_onnx_bytes(b"\x89PNG\r\n\x1a\nnot a model", "picture.onnx")
        .unwrap_err()
        .to_string();
    assert!(error.contains("not an ONNX model"), "{error}");
}

#[test]
fn a_dynamic_size_other_than_the_batch_is_refused_by_name() {
    let mut model = graph_model(vec![node("Relu", "r", &["x"], "y")], vec![], 17);
    let input = &mut model.graph.as_mut().unwrap().input[0];
    let shape = input
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .shape
        .as_mut()
        .unwrap();
    shape.dim[1].value = Some(DimensionValue::DimParam("features".into()));
    let error = import_error(&model);
    assert!(error.contains("input 'x'") && error.contains("'features'"), "{error}");
}

#[test]
fn external_data_outside_the_model_folder_is_refused() {
    let folder = scratch("outside");
    let inner = folder.join("model");
    std::fs::create_dir_all(&inner).unwrap();
    std::fs::copy(fixture("small_cnn_external.weights"), folder.join("stolen.weights")).unwrap();
    let mut proto = ModelProto::decode(std::fs::read(fixture("small_cnn_external.onnx")).unwrap().as_slice()).unwrap();
    for location in ["../stolen.weights", "/etc/passwd"] {
        for tensor in &mut proto.graph.as_mut().unwrap().initializer {
            for entry in &mut tensor.external_data {
                if entry.key == "location" {
                    entry.value = location.into();
                }
            }
        }
        let path = inner.join("model.onnx");
        std::fs::write(&path, proto.encode_to_vec()).unwrap();
        let error = load_onnx(&path).unwrap_err().to_string();
        assert!(error.contains("outside the model's folder"), "{location}: {error}");
    }
    // From bytes there is no folder: external data is refused, not looked for.
    let bytes = std::fs::read(fixture("small_cnn_external.onnx")).unwrap();
    let error = load_onnx_bytes(&bytes, "bytes.onnx").unwrap_err().to_string();
    assert!(error.contains("not read from a file"), "{error}");
}

/// A small xorshift: the fuzz test needs no dependency and the same mutations every run.
struct Mutations(u64);

impl Mutations {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
}

#[test]
fn thousands_of_mutated_files_never_panic() {
    // Many mutations only change weights: those files still load.
    let loaded = mutations("small_cnn.onnx", 3000);
    assert!(loaded > 100, "{loaded} of 3000 loaded");
    // The transformer's paths (GELU fusion, attention, embeddings) and the 1-D convolutions'.
    let loaded = mutations("tiny_bert.onnx", 1000) + mutations("conv1d.onnx", 500);
    assert!(loaded > 50, "{loaded} of 1500 loaded");
    // The class token, torch.export's key transpose with the batch and its NaN guard.
    let loaded = mutations("tiny_vit_dynamo.onnx", 500);
    assert!(loaded > 10, "{loaded} of 500 loaded");
    // RoBERTa's position ids computed from the token ids.
    let loaded = mutations("tiny_roberta.onnx", 300);
    assert!(loaded > 5, "{loaded} of 300 loaded");
    // The activations written out (tanh GELU, softsign, Mish) and torch.export's guards.
    let loaded = mutations("activations.onnx", 300) + mutations("activations_dynamo.onnx", 300);
    assert!(loaded > 10, "{loaded} of 600 loaded");
    // Recurrent operators and the time-major sequences around them.
    let loaded = mutations("lstm_classifier_dynamo.onnx", 300) + mutations("bidirectional_gru.onnx", 300);
    assert!(loaded > 10, "{loaded} of 600 loaded");
    // Per-step operators on time-major sequences; nn.MultiheadAttention's packed projection,
    // heads merged with the batch and shape arithmetic on the batch size.
    let loaded = mutations("time_major_tagger.onnx", 300) + mutations("transformer_classifier.onnx", 300);
    assert!(loaded > 10, "{loaded} of 600 loaded");
}

/// Loads `rounds` randomly damaged copies of fixture `name`: each loads or is an error naming
/// the file, none panics. Returns how many loaded.
fn mutations(name: &str, rounds: usize) -> usize {
    let original = std::fs::read(fixture(name)).unwrap();
    let mut rng = Mutations(0x9e37_79b9_7f4a_7c15);
    let mut loaded = 0;
    for round in 0..rounds {
        let mut bytes = original.clone();
        for _ in 0..1 + rng.next() % 4 {
            let at = (rng.next() as usize) % bytes.len();
            match rng.next() % 4 {
                0 => bytes[at] = rng.next() as u8,
                1 => bytes[at] ^= 1 << (rng.next() % 8),
                2 => bytes.truncate(at.max(1)),
                _ => bytes.insert(at, rng.next() as u8),
            }
        }
        match load_onnx_bytes(&bytes, format!("mutation{round}.onnx")) {
            Ok(_) => loaded += 1,
            Err(e) => assert!(e.to_string().contains(&format!("mutation{round}.onnx")), "{e}"),
        }
    }
    loaded
}

#[test]
fn the_cli_imports_to_safetensors() {
    let out = scratch("cli").join("tiny_resnet.safetensors");
    let run = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("import")
        .arg(fixture("tiny_resnet.onnx"))
        .arg("-o")
        .arg(&out)
        .output()
        .unwrap();
    assert!(run.status.success(), "{}", String::from_utf8_lossy(&run.stderr));
    assert!(String::from_utf8_lossy(&run.stdout).contains("imported"));
    let mut model = strata::load_model(&out).unwrap();
    let x = channels_last(&npy(&fixture("tiny_resnet.input.npy")));
    let expected = npy(&fixture("tiny_resnet.output.npy"));
    assert!(max_difference(&model.predict(&x, 32).unwrap(), &expected) <= 1e-5);

    let failed = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("import")
        .arg(fixture("missing.onnx"))
        .arg("-o")
        .arg(scratch("cli").join("missing.safetensors"))
        .output()
        .unwrap();
    assert!(!failed.status.success());
    assert!(String::from_utf8_lossy(&failed.stderr).contains("missing.onnx"));

    let summary = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .arg("summary")
        .arg("--model")
        .arg(fixture("tiny_resnet.onnx"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&summary.stdout);
    assert!(
        summary.status.success() && text.contains("Conv2D") && text.contains("4,986"),
        "{text}"
    );
}

#[test]
fn the_readme_lists_exactly_the_importable_operators() {
    const START: &str = "<!-- onnx-import:start -->";
    const END: &str = "<!-- onnx-import:end -->";
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md needs the markers {START} and {END} around the ONNX operator list");
    };
    let quoted: Vec<String> = strata::io::onnx::IMPORTABLE_OPS
        .iter()
        .map(|op| format!("`{op}`"))
        .collect();
    let expected = format!(
        "\nOperators ONNX import reads (generated from `strata::io::onnx::IMPORTABLE_OPS`): {}.\n",
        quoted.join(", ")
    );
    assert_eq!(
        &readme[start + START.len()..end],
        expected,
        "README.md's ONNX import list differs from the code"
    );
}

#[test]
fn groups_that_do_not_fit_and_huge_inputs_are_refused_clearly() {
    let mut proto = ModelProto::decode(std::fs::read(fixture("small_cnn.onnx")).unwrap().as_slice()).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    // The first Conv (3 -> 6 channels, kernel of 3 input channels) said to have 3 groups.
    let conv = graph.node.iter_mut().find(|n| n.op_type == "Conv").unwrap();
    conv.attribute.retain(|a| a.name != "group");
    conv.attribute.push(strata::io::onnx::proto::AttributeProto {
        name: "group".into(),
        i: Some(3),
        r#type: 2,
        ..Default::default()
    });
    let conv_name = conv.name.clone();
    let error = import_error(&proto);
    assert!(error.contains(&conv_name) && error.contains("group 3"), "{error}");

    // An input of 2^60 values per sample is refused before anything is made for it.
    let mut proto = ModelProto::decode(std::fs::read(fixture("small_cnn.onnx")).unwrap().as_slice()).unwrap();
    let input = &mut proto.graph.as_mut().unwrap().input[0];
    let shape = input
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .shape
        .as_mut()
        .unwrap();
    for d in &mut shape.dim[1..] {
        d.value = Some(DimensionValue::DimValue(1 << 20));
    }
    let error = import_error(&proto);
    assert!(error.contains("input 'input'"), "{error}");
}

#[test]
fn matmul_then_add_becomes_one_dense_with_its_bias() {
    let w: Vec<f32> = (0..16).map(|i| i as f32 * 0.1).collect();
    let b = vec![1.0, -1.0, 0.5, 2.0];
    let nodes = vec![
        node("MatMul", "m", &["x", "w"], "h"),
        node("Add", "a", &["h", "b"], "y"),
    ];
    let proto = graph_model(
        nodes,
        vec![floats("w", vec![4, 4], w.clone()), floats("b", vec![4], b.clone())],
        17,
    );
    let mut model = load_onnx_bytes(&proto.encode_to_vec(), "dense.onnx").unwrap();
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert_eq!(classes, ["InputLayer", "Dense"]);
    let x = [1.0, 2.0, -1.0, 0.5];
    let y = model
        .predict(&Tensor::from_vec(vec![1, 4], x.to_vec()).unwrap(), 1)
        .unwrap();
    for j in 0..4 {
        let expected: f32 = (0..4).map(|i| x[i] * w[i * 4 + j]).sum::<f32>() + b[j];
        assert!(
            (y.data()[j] - expected).abs() < 1e-5,
            "{j}: {} vs {expected}",
            y.data()[j]
        );
    }
}

#[test]
fn constant_attention_masks_are_read_when_causal_and_refused_otherwise() {
    // The tiny BERT's first attention with a mask added to its scores before the Softmax.
    let with_mask = |values: Vec<f32>| {
        let mut proto = ModelProto::decode(std::fs::read(fixture("tiny_bert.onnx")).unwrap().as_slice()).unwrap();
        let graph = proto.graph.as_mut().unwrap();
        let at = graph.node.iter().position(|n| n.op_type == "Softmax").unwrap();
        let scores = graph.node[at].input[0].clone();
        graph.node[at].input[0] = "masked_scores".into();
        graph
            .node
            .insert(at, node("Add", "mask_add", &[&scores, "mask"], "masked_scores"));
        graph.initializer.push(TensorProto {
            dims: vec![1, 1, 16, 16],
            data_type: 1,
            name: "mask".into(),
            raw_data: values.iter().flat_map(|v| v.to_le_bytes()).collect(),
            ..Default::default()
        });
        proto
    };
    let causal: Vec<f32> = (0..256).map(|k| if k % 16 > k / 16 { f32::MIN } else { 0.0 }).collect();
    let model = load_onnx_bytes(&with_mask(causal).encode_to_vec(), "causal.onnx").unwrap();
    let flags: Vec<bool> = model
        .layers()
        .iter()
        .filter(|l| l.class_name() == "DotProductAttention")
        .map(|l| l.config()["use_causal_mask"].as_bool().unwrap())
        .collect();
    assert_eq!(flags, [true, false]);

    let mut padding = vec![0.0; 256];
    padding[15] = -1e9;
    let error = import_error(&with_mask(padding));
    assert!(
        error.contains("mask_add") && error.contains("neither all zeros nor causal"),
        "{error}"
    );
}

/// `torch.onnx.export(model, (x,), path)` with one example and no dynamic axes fixes the batch
/// size to 1: the MLP's Flatten is a Reshape to `[1, 36]` (a per-sample flatten, not rows of
/// the batch), and the LSTM's output is merged with its one direction by a Reshape to
/// `[steps, 1, width]` (the 1 being the batch). Both read as at any batch size.
#[test]
fn models_exported_at_a_fixed_batch_of_one_match_onnx_runtime() {
    for (name, params) in [("mlp_static_batch", 414), ("lstm_classifier_static_batch", 2647)] {
        let model = check_parity(&fixture(""), name, 1e-5);
        assert_eq!(model.count_params(), params, "{name}");
    }
}
