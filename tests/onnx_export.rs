//! ONNX export without Python: the written file decoded with the same prost messages, its
//! structure checked against the model (opset, named inputs and outputs with a dynamic batch
//! axis, operators in order, weights in ONNX's layouts, "same" padding split as Keras splits
//! it), and the refusal of unsupported layers. Numerical parity with ONNX Runtime is checked by
//! `tools/check_onnx_export.py` (see the README's ONNX section).
mod common;

use prost::Message;
use std::path::PathBuf;
use strata::io::config::load_model_spec;
use strata::io::onnx::proto::{AttributeProto, DimensionValue, ModelProto, NodeProto, TensorProto, ValueInfoProto};
use strata::prelude::*;

/// A scratch folder for this test process.
fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("strata-onnx-{}-{name}", common::run_id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A named model, built, with its weights set to distinct values (so a transposition shows).
fn named(name: &str) -> Model {
    let mut model = load_model_spec(name).unwrap().model;
    let shape = model.layers()[0].declared_input_shape().unwrap().to_vec();
    model.build(&shape).unwrap();
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        for (i, v) in model.params_mut().value_mut(id).data_mut().iter_mut().enumerate() {
            *v = (k * 7919 + i) as f32 * 1e-4;
        }
    }
    model
}

/// Saves `model` with `save_onnx` and decodes the file.
fn exported(model: &Model, name: &str) -> ModelProto {
    let path = scratch(name).join(format!("{name}.onnx"));
    model.save_onnx(&path).unwrap();
    ModelProto::decode(std::fs::read(&path).unwrap().as_slice()).unwrap()
}

/// A value's dimensions: `"N"` for the dynamic one, numbers for the others.
fn dims(value: &ValueInfoProto) -> Vec<String> {
    let shape = value
        .r#type
        .as_ref()
        .unwrap()
        .tensor_type
        .as_ref()
        .unwrap()
        .shape
        .as_ref()
        .unwrap();
    shape
        .dim
        .iter()
        .map(|d| match d.value.as_ref().unwrap() {
            DimensionValue::DimValue(v) => v.to_string(),
            DimensionValue::DimParam(p) => p.clone(),
        })
        .collect()
}

fn op_types(proto: &ModelProto) -> Vec<&str> {
    proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .map(|n| n.op_type.as_str())
        .collect()
}

fn initializer<'a>(proto: &'a ModelProto, name: &str) -> &'a TensorProto {
    let graph = proto.graph.as_ref().unwrap();
    graph
        .initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
}

fn floats(tensor: &TensorProto) -> Vec<f32> {
    assert_eq!(tensor.data_type, 1, "{} is not FLOAT", tensor.name);
    tensor
        .raw_data
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn attribute<'a>(node: &'a NodeProto, name: &str) -> &'a AttributeProto {
    node.attribute.iter().find(|a| a.name == name).unwrap()
}

#[test]
fn mlp_exports_opset_17_named_io_dynamic_batch_and_its_weights() {
    let model = named("mlp");
    let proto = exported(&model, "mlp");
    assert_eq!(proto.ir_version, 8);
    assert_eq!(proto.opset_import.len(), 1);
    assert_eq!(
        (proto.opset_import[0].domain.as_str(), proto.opset_import[0].version),
        ("", 17)
    );
    let graph = proto.graph.as_ref().unwrap();
    assert_eq!(graph.input.len(), 1);
    assert_eq!(graph.input[0].name, "input_layer");
    assert_eq!(dims(&graph.input[0]), ["N", "28", "28"]);
    assert_eq!(graph.output.len(), 1);
    assert_eq!(graph.output[0].name, "dense_1");
    assert_eq!(dims(&graph.output[0]), ["N", "10"]);
    assert_eq!(
        op_types(&proto),
        ["Flatten", "Gemm", "Relu", "Gemm", "Softmax", "Identity"]
    );
    let weights = model.weights();
    for name in ["dense/kernel", "dense/bias", "dense_1/kernel", "dense_1/bias"] {
        let tensor = initializer(&proto, name);
        let expected = &weights[name];
        let shape: Vec<i64> = expected.shape().iter().map(|&d| d as i64).collect();
        assert_eq!(tensor.dims, shape, "{name}");
        assert_eq!(floats(tensor), expected.data(), "{name}");
    }
    // The Gemm reads the flattened input and the first Dense's weights, in that order.
    let gemm = &graph.node[1];
    assert_eq!(gemm.input[0], graph.node[0].output[0]);
    assert_eq!(gemm.input[1..], ["dense/kernel", "dense/bias"]);
}

#[test]
fn cnn_convolutions_run_in_nchw_with_kernels_in_onnx_layout() {
    let model = named("cnn");
    let proto = exported(&model, "cnn");
    // The chain stays channels-first: the Transposes back and forth between its layers (and
    // around the ReLUs between them) are dropped; the input is still NHWC.
    assert_eq!(
        op_types(&proto),
        [
            "Transpose",
            "Conv",
            "Relu",
            "MaxPool",
            "Conv",
            "Relu",
            "MaxPool",
            "Conv",
            "Transpose",
            "Relu",
            "Flatten",
            "Gemm",
            "Relu",
            "Gemm",
            "Softmax",
            "Identity"
        ]
    );
    let graph = proto.graph.as_ref().unwrap();
    assert_eq!(dims(&graph.input[0]), ["N", "28", "28", "1"]);
    assert_eq!(attribute(&graph.node[0], "perm").ints, [0, 3, 1, 2]);
    assert_eq!(attribute(&graph.node[8], "perm").ints, [0, 2, 3, 1]);
    // Keras's (kh, kw, in, out) kernel becomes ONNX's (out, in, kh, kw).
    let keras = &model.weights()["conv2d_1/kernel"];
    let (kh, kw, cin, cout) = (keras.shape()[0], keras.shape()[1], keras.shape()[2], keras.shape()[3]);
    let onnx = initializer(&proto, "conv2d_1/kernel");
    assert_eq!(onnx.dims, [cout as i64, cin as i64, kh as i64, kw as i64]);
    let values = floats(onnx);
    for (h, w, c, o) in [(0, 0, 0, 0), (2, 1, 5, 17), (1, 2, 31, 63)] {
        let keras_value = keras.data()[((h * kw + w) * cin + c) * cout + o];
        assert_eq!(
            values[((o * cin + c) * kh + h) * kw + w],
            keras_value,
            "({h}, {w}, {c}, {o})"
        );
    }
}

#[test]
fn resnet_same_padding_is_split_as_keras_splits_it() {
    let model = named("resnet");
    let proto = exported(&model, "resnet");
    let graph = proto.graph.as_ref().unwrap();
    let conv = graph.node.iter().find(|n| n.op_type == "Conv").unwrap();
    // 28 rows, a 3×3 window, stride 2, "same": 14 outputs need 13·2 + 3 = 29 rows, one more
    // than there are; Keras puts it at the bottom (and right).
    assert_eq!(attribute(conv, "pads").ints, [0, 0, 1, 1]);
    assert_eq!(attribute(conv, "strides").ints, [2, 2]);
    assert_eq!(conv.input.len(), 2, "use_bias = false: no bias input");
    // The residual connections (six blocks) are Adds of two computed tensors, not of weights.
    let weights: Vec<&str> = graph.initializer.iter().map(|t| t.name.as_str()).collect();
    let adds = graph
        .node
        .iter()
        .filter(|n| n.op_type == "Add" && n.input.iter().all(|i| !weights.contains(&i.as_str())))
        .count();
    assert_eq!(adds, 6, "residual adds");
    // Between convolutions, BatchNormalization's per-channel Mul and Add run channels-first
    // too: their weights are reshaped to (C, 1, 1) and the Transposes around them dropped.
    let relaid: Vec<&TensorProto> = graph
        .initializer
        .iter()
        .filter(|t| t.name.ends_with("/axis_1"))
        .collect();
    assert!(!relaid.is_empty());
    assert!(relaid.iter().all(|t| t.dims.len() == 3 && t.dims[1..] == [1, 1]));
    let transposes = graph.node.iter().filter(|n| n.op_type == "Transpose").count();
    let convolutions = graph.node.iter().filter(|n| n.op_type == "Conv").count();
    assert!(
        transposes < 2 * convolutions,
        "{transposes} Transposes for {convolutions} Convs"
    );
    assert_eq!(op_types(&proto).last(), Some(&"Identity"));
    assert_eq!(graph.output[0].name, model.output_names()[0]);
}

#[test]
fn unsupported_layers_are_listed_all_at_once() {
    let tokens = Input::node(&[5]);
    let x = Embedding::new(10, 3).mask_zero(true).call(&tokens).unwrap();
    let x = LSTM::new(4).return_sequences(true).call(&x).unwrap();
    let x = TimeDistributed::new(Dense::new(2)).call(&x).unwrap();
    let x = LayerNormalization::new().call(&x).unwrap();
    let attended = MultiHeadAttention::new(2, 3).call_many(&[&x, &x]).unwrap();
    let dot = strata::layers::Attention::new().call_many(&[&x, &x]).unwrap();
    let x = Concatenate::new(-1).call_many(&[&attended, &dot]).unwrap();
    let x = ReLU::new().threshold(0.5).call(&x).unwrap();
    let x = ReLU::new().max_value(6.0).negative_slope(0.1).call(&x).unwrap();
    let x = Flatten::new().call(&x).unwrap();
    let steps = Input::node(&[6, 3]);
    let masked = strata::layers::Masking::new(0.0).call(&steps).unwrap();
    let masked = GRU::new(2).call(&masked).unwrap();
    let x = Concatenate::new(-1).call_many(&[&x, &masked]).unwrap();
    let outputs = Dense::new(2).call(&x).unwrap();
    let mut model = Model::functional_multi(&[&tokens, &steps], &[&outputs]).unwrap();
    model.build_inputs(&[&[5], &[6, 3]]).unwrap();
    let error = model
        .save_onnx(scratch("refused").join("m.onnx"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("'re_lu' (ReLU: threshold)"), "{error}");
    assert!(
        error.contains("'re_lu_1' (ReLU: max_value with negative_slope)"),
        "{error}"
    );
    let exportable = [
        "'embedding'",
        "'masking'",
        "'lstm'",
        "'gru'",
        "'time_distributed'",
        "'multi_head_attention'",
        "'attention'",
        "'dense'",
    ];
    for exportable in exportable {
        assert!(!error.contains(exportable), "{error}");
    }
    assert!(!scratch("refused").join("m.onnx").exists());
}

/// A masked recurrent layer is one operator per step, each step's state kept where the mask
/// is 0 (ONNX Runtime checks the numbers in CI: `tools/check_onnx_export.py` on
/// `examples/onnx_parity`'s `masked`); an unmasked one stays one operator.
#[test]
fn masked_sequences_are_written_step_by_step() {
    // The ops of Embedding → LSTM over the steps → GlobalAveragePooling1D, with or without the
    // mask, and how many of each.
    let ops_of = |mask_zero: bool| {
        let tokens = Input::node(&[7]);
        let x = Embedding::new(10, 3).mask_zero(mask_zero).call(&tokens).unwrap();
        let x = LSTM::new(4).return_sequences(true).call(&x).unwrap();
        let outputs = GlobalAveragePooling1D::new().call(&x).unwrap();
        let mut model = Model::functional(&tokens, &outputs).unwrap();
        model.build(&[7]).unwrap();
        let proto = strata::io::onnx::to_onnx(&model).unwrap();
        let ops: Vec<String> = op_types(&proto).iter().map(|o| o.to_string()).collect();
        move |op: &str| (ops.iter().filter(|o| *o == op).count(), format!("{ops:?}"))
    };
    let masked = ops_of(true);
    for (op, count) in [
        ("LSTM", 7),
        ("Where", 14),
        ("Split", 2),
        ("ReduceMean", 0),
        ("Reciprocal", 1),
    ] {
        let (found, ops) = masked(op);
        assert_eq!(found, count, "{op}: {ops}");
    }
    // Without the mask: one LSTM over the sequence, a plain mean.
    let plain = ops_of(false);
    for (op, count) in [("LSTM", 1), ("Where", 0), ("ReduceMean", 1)] {
        let (found, ops) = plain(op);
        assert_eq!(found, count, "{op}: {ops}");
    }
}

#[test]
fn lstm_gates_go_in_onnx_order_i_o_f_c() {
    let model = named("rnn_mnist");
    let proto = exported(&model, "rnn_mnist");
    assert_eq!(
        op_types(&proto),
        ["Transpose", "LSTM", "Squeeze", "Gemm", "Softmax", "Identity"]
    );
    let graph = proto.graph.as_ref().unwrap();
    let lstm = &graph.node[1];
    assert_eq!(attribute(lstm, "hidden_size").i, Some(128));
    assert_eq!(lstm.output.len(), 2, "Y and Y_h");
    assert_eq!(graph.node[2].input[0], lstm.output[1], "the last state, Y_h");
    let keras = &model.weights()["lstm/kernel"];
    let (features, units) = (keras.shape()[0], keras.shape()[1] / 4);
    let w = initializer(&proto, "lstm/W");
    assert_eq!(w.dims, [1, 4 * units as i64, features as i64]);
    let w = floats(w);
    // ONNX block b holds Keras gate keras_of[b] (Keras: i, f, c, o), transposed.
    for (block, keras_gate) in [0, 3, 1, 2].into_iter().enumerate() {
        for (u, f) in [(0, 0), (5, 17), (127, 27)] {
            assert_eq!(
                w[(block * units + u) * features + f],
                keras.data()[f * 4 * units + keras_gate * units + u],
                "block {block}, unit {u}, feature {f}"
            );
        }
    }
    let bias = floats(initializer(&proto, "lstm/B"));
    let keras_bias = &model.weights()["lstm/bias"];
    assert_eq!(bias.len(), 8 * units);
    assert_eq!(bias[units..2 * units], keras_bias.data()[3 * units..4 * units], "o");
    assert!(
        bias[4 * units..].iter().all(|&b| b == 0.0),
        "no recurrent bias in Keras's LSTM"
    );
}

#[test]
fn gru_is_linear_before_reset_with_both_biases_and_sequences_batch_major() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[5, 3]))
        .add(GRU::new(4).return_sequences(true).go_backwards(true));
    model.build(&[5, 3]).unwrap();
    let proto = exported(&model, "gru");
    assert_eq!(
        op_types(&proto),
        ["Slice", "Transpose", "GRU", "Squeeze", "Transpose", "Identity"]
    );
    let graph = proto.graph.as_ref().unwrap();
    let gru = &graph.node[2];
    assert_eq!(attribute(gru, "linear_before_reset").i, Some(1));
    let names: Vec<&[u8]> = attribute(gru, "activations")
        .strings
        .iter()
        .map(Vec::as_slice)
        .collect();
    assert_eq!(names, [b"Sigmoid".as_slice(), b"Tanh"]);
    let keras_bias = &model.weights()["gru/bias"];
    assert_eq!(
        floats(initializer(&proto, "gru/B")),
        keras_bias.data(),
        "z, r, h in both orders"
    );
    // go_backwards: the steps reversed (Slice with step -1 along the time axis) first.
    let steps = initializer(&proto, &graph.node[0].input[4]);
    assert_eq!(steps.raw_data, (-1i64).to_le_bytes());
}

#[test]
fn an_unbuilt_model_is_an_error() {
    let mut model = Sequential::new();
    model.add(Dense::new(2));
    let error = model
        .save_onnx(scratch("unbuilt").join("m.onnx"))
        .unwrap_err()
        .to_string();
    assert!(error.contains("not built"), "{error}");
}

#[test]
fn the_cli_exports_a_saved_model() {
    let dir = scratch("cli");
    let model = named("mlp2");
    model.save(dir.join("m.safetensors")).unwrap();
    let status = std::process::Command::new(env!("CARGO_BIN_EXE_strata"))
        .args(["export", "--model"])
        .arg(dir.join("m.safetensors"))
        .arg("-o")
        .arg(dir.join("m.onnx"))
        .output()
        .unwrap();
    assert!(status.status.success(), "{}", String::from_utf8_lossy(&status.stderr));
    let proto = ModelProto::decode(std::fs::read(dir.join("m.onnx")).unwrap().as_slice()).unwrap();
    assert_eq!(proto, strata::io::onnx::to_onnx(&model).unwrap());
}

/// The README's list of exportable layers and activations, as the code has them.
fn rendered_lists() -> String {
    let quoted = |names: &[&str]| names.iter().map(|n| format!("`{n}`")).collect::<Vec<_>>().join(", ");
    format!(
        "\nLayers ONNX export writes (generated from `strata::io::onnx::EXPORTABLE_LAYERS`): {}.\n\n\
         Activations (`EXPORTABLE_ACTIVATIONS`): {}.\n",
        quoted(strata::io::onnx::EXPORTABLE_LAYERS),
        quoted(strata::io::onnx::EXPORTABLE_ACTIVATIONS)
    )
}

#[test]
fn the_readme_lists_exactly_the_exportable_layers() {
    const START: &str = "<!-- onnx-export:start -->";
    const END: &str = "<!-- onnx-export:end -->";
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
    let readme = std::fs::read_to_string(path).unwrap();
    let (Some(start), Some(end)) = (readme.find(START), readme.find(END)) else {
        panic!("README.md needs the markers {START} and {END} around the ONNX layer list");
    };
    let current = &readme[start + START.len()..end];
    if current != rendered_lists() && std::env::var_os("STRATA_UPDATE_README").is_some() {
        let updated = format!(
            "{}{}{}",
            &readme[..start + START.len()],
            rendered_lists(),
            &readme[end..]
        );
        std::fs::write(path, updated).unwrap();
        return;
    }
    assert_eq!(
        current,
        rendered_lists(),
        "README.md's ONNX list differs from the code (STRATA_UPDATE_README=1 rewrites it)"
    );
}

#[test]
fn a_shared_layer_giving_two_outputs_gets_two_output_names() {
    let inputs = Input::node(&[2]);
    let shared = SharedLayer::new(Dense::new(2));
    let first = shared.call(&inputs).unwrap();
    let second = shared.call(&first).unwrap();
    let mut model = Model::functional_multi(&[&inputs], &[&first, &second]).unwrap();
    model.build(&[2]).unwrap();
    let proto = exported(&model, "shared");
    let graph = proto.graph.as_ref().unwrap();
    let names: Vec<&str> = graph.output.iter().map(|o| o.name.as_str()).collect();
    assert_eq!(names, ["dense", "dense_1"]);
    assert_eq!(op_types(&proto), ["Gemm", "Gemm", "Identity", "Identity"]);
    // Both calls read the one set of weights.
    assert_eq!(graph.initializer.len(), 2);
}

#[test]
fn a_causal_conv1d_pads_before_the_sequence_only() {
    // Keras's Conv1D(padding="causal"): (kernel - 1) · dilation zeros before each sequence.
    let mut model = strata::load_model(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/keras/causal_conv1d.keras"
    ))
    .unwrap();
    let proto = exported(&model, "causal");
    let convs: Vec<&NodeProto> = proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .filter(|n| n.op_type == "Conv")
        .collect();
    assert_eq!(attribute(convs[0], "pads").ints, [4, 0], "kernel 3, dilation 2");
    assert_eq!(attribute(convs[1], "pads").ints, [1, 0], "kernel 2");
    let y = assert_imported_back_agrees(&mut model, "causal", &[2, 9, 3]);
    assert_eq!(y.shape(), &[2, 5, 2]);
}

/// The file [`exported`] wrote for `model` under `name`, imported back by strata, predicts what
/// `model` predicts on inputs of `shape`; returns the model's prediction.
fn assert_imported_back_agrees(model: &mut Model, name: &str, shape: &[usize]) -> Tensor {
    let mut again = strata::io::load_onnx(scratch(name).join(format!("{name}.onnx"))).unwrap();
    let count: usize = shape.iter().product();
    let values = (0..count).map(|i| ((i * 37) % 11) as f32 / 5.0 - 1.0).collect();
    let x = Tensor::from_vec(shape.to_vec(), values).unwrap();
    let (a, b) = (model.predict(&x, 2).unwrap(), again.predict(&x, 2).unwrap());
    assert_eq!(a.shape(), b.shape(), "{name}");
    let difference = a
        .data()
        .iter()
        .zip(b.data())
        .map(|(p, q)| (p - q).abs())
        .fold(0f32, f32::max);
    assert!(difference < 1e-5, "{name}: {difference}");
    a
}

#[test]
fn zero_padding_1d_is_a_pad_of_the_steps() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[7, 3]))
        .add(strata::layers::ZeroPadding1D::new(2, 1))
        .add(Conv1D::new(2, 3));
    model.build(&[7, 3]).unwrap();
    let proto = exported(&model, "padding1d");
    let pad = proto
        .graph
        .as_ref()
        .unwrap()
        .node
        .iter()
        .find(|n| n.op_type == "Pad")
        .unwrap();
    let pads = initializer(&proto, &pad.input[1]);
    let pads: Vec<i64> = match pads.int64_data.is_empty() {
        true => pads
            .raw_data
            .chunks(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()))
            .collect(),
        false => pads.int64_data.clone(),
    };
    assert_eq!(pads, [0, 2, 0, 0, 1, 0]);
    // Imported back by strata, the file computes what the model does.
    let y = assert_imported_back_agrees(&mut model, "padding1d", &[2, 7, 3]);
    assert_eq!(y.shape(), &[2, 8, 2], "7 steps + 2 + 1, a window of 3");
}

/// Sets every weight of `model` to distinct small values.
fn vary_weights(model: &mut Model) {
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        for (i, v) in model.params_mut().value_mut(id).data_mut().iter_mut().enumerate() {
            *v = ((k * 7919 + i * 31) % 17) as f32 / 17.0 + 0.2;
        }
    }
}

#[test]
fn rms_normalization_is_written_out() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[5, 4]))
        .add(strata::layers::RMSNormalization::new().epsilon(1e-3));
    model.build(&[5, 4]).unwrap();
    vary_weights(&mut model);
    let ops = op_types(&exported(&model, "rms")).join(" ");
    assert_eq!(ops, "Mul ReduceMean Add Sqrt Div Mul Identity");
    let proto = exported(&model, "rms");
    let graph = proto.graph.as_ref().unwrap();
    assert_eq!(
        attribute(&graph.node[1], "axes").ints,
        [-1],
        "the mean square of the last axis"
    );
    assert_eq!(floats(initializer(&proto, &graph.node[2].input[1])), [1e-3], "epsilon");
    // Its numbers against ONNX Runtime: tools/check_onnx_export.py, on onnx_parity's `sequence`
    // model. Imported back by strata (the pattern read as one RMSNormalization), the file
    // computes what the model does.
    let y = assert_imported_back_agrees(&mut model, "rms", &[2, 5, 4]);
    assert_eq!(y.shape(), &[2, 5, 4]);
}

/// Additive attention's scores written out: the pairs' `tanh`, their product with the scale,
/// the causal mask where asked; its numbers are checked against ONNX Runtime by
/// tools/check_onnx_export.py (onnx_parity's `sequence` model: learned scale, and causal
/// without one).
#[test]
fn additive_attention_is_written_out() {
    let inputs = Input::node(&[5, 4]);
    let attended = strata::layers::AdditiveAttention::new()
        .use_causal_mask(true)
        .call_many(&[&inputs, &inputs])
        .unwrap();
    let mut model = Model::functional(&inputs, &attended).unwrap();
    vary_weights(&mut model);
    let proto = exported(&model, "additive");
    let ops = op_types(&proto).join(" ");
    assert_eq!(
        ops,
        "Reshape Reshape Add Tanh MatMul Reshape Add Softmax MatMul Identity"
    );
    let scale = proto.graph.as_ref().unwrap().node[4].input[1].clone();
    let expected: Vec<f32> = (0..4).map(|i| ((i * 31) % 17) as f32 / 17.0 + 0.2).collect();
    assert_eq!(
        floats(initializer(&proto, &scale)),
        expected,
        "the learned scale, as a column"
    );
}

#[test]
fn random_crop_exports_its_inference_crop() {
    // 9×8 images: a 6×8 target is a centred slice of rows 1..7; 5×7 a window of rows 2..7,
    // resized to 7 columns (bilinear, half-pixel centres, as strata resizes it).
    for (height, width, ops) in [
        (6, 8, "Slice Identity"),
        (5, 7, "Slice Transpose Shape Concat Resize Transpose Identity"),
    ] {
        let mut model = Sequential::new();
        model
            .add(Input::new(&[9, 8, 2]))
            .add(strata::layers::RandomCrop::new(height, width));
        model.build(&[9, 8, 2]).unwrap();
        let proto = exported(&model, &format!("crop{height}x{width}"));
        assert_eq!(op_types(&proto).join(" "), ops);
        let slice = &proto.graph.as_ref().unwrap().node[0];
        let ints = |k: usize| initializer(&proto, &slice.input[k]).raw_data.len() / 8;
        assert_eq!((ints(1), ints(2), ints(3)), (2, 2, 2), "rows and columns sliced");
    }
}

/// strata's named text models take token ids as floats, which their ONNX files cast to
/// integers for the `Gather`: import reads that back as an `Embedding` of the model's input, so
/// each file comes back as a model predicting what the original does.
#[test]
fn text_models_come_back_from_their_onnx_files() {
    for name in ["char_rnn", "imdb_lstm", "char_transformer", "imdb_transformer"] {
        let mut model = load_model_spec(name).unwrap().with_vocabulary(40).unwrap().model;
        let steps = model.layers()[0].declared_input_shape().unwrap().to_vec();
        model.build(&steps).unwrap();
        exported(&model, name);
        let mut again = strata::io::load_onnx(scratch(name).join(format!("{name}.onnx"))).unwrap();
        let shape: Vec<usize> = std::iter::once(2).chain(steps).collect();
        let count: usize = shape.iter().product();
        let ids = (0..count).map(|i| ((i * 7) % 40) as f32).collect();
        let x = Tensor::from_vec(shape, ids).unwrap();
        let (a, b) = (model.predict(&x, 2).unwrap(), again.predict(&x, 2).unwrap());
        assert_eq!(a.shape(), b.shape(), "{name}");
        for (p, q) in a.data().iter().zip(b.data()) {
            assert!((p - q).abs() < 1e-5, "{name}: {p} vs {q}");
        }
    }
    // A computed tensor cast to integers is still refused, naming the node.
    let error = strata::io::load_onnx_bytes(&cast_of_computed().encode_to_vec(), "cast.onnx")
        .err()
        .unwrap()
        .to_string();
    assert!(
        error.contains("(Cast)") && error.contains("only a model input"),
        "{error}"
    );
}

/// `Relu(x)` cast to int64, then back to float: a cast import refuses.
fn cast_of_computed() -> ModelProto {
    let mut model = Sequential::new();
    model.add(Input::new(&[3])).add(ReLU::new());
    model.build(&[3]).unwrap();
    let mut proto = strata::io::onnx::to_onnx(&model).unwrap();
    let graph = proto.graph.as_mut().unwrap();
    let at = graph.node.iter().position(|n| n.op_type == "Relu").unwrap();
    let relu = graph.node[at].output[0].clone();
    let cast = |input: &str, output: &str, to: i64| NodeProto {
        input: vec![input.into()],
        output: vec![output.into()],
        name: output.into(),
        op_type: "Cast".into(),
        attribute: vec![AttributeProto {
            name: "to".into(),
            i: Some(to),
            r#type: 2,
            ..Default::default()
        }],
        ..Default::default()
    };
    for node in &mut graph.node {
        for input in &mut node.input {
            if *input == relu {
                *input = "back".into();
            }
        }
    }
    graph.node.insert(at + 1, cast(&relu, "ids", 7));
    graph.node.insert(at + 2, cast("ids", "back", 1));
    proto
}

/// An image model's file holds its input channels-last, as strata takes it, and the
/// preprocessing before the first convolution (Rescaling, Normalization, ZeroPadding2D) works
/// on it there, before the `Transpose` to channels-first, as tf2onnx writes Keras models: import
/// reads such an input as channels-last and the model comes back predicting the same.
#[test]
fn preprocessing_before_the_first_transpose_comes_back() {
    let inputs = Input::node(&[9, 7, 3]);
    let x = Rescaling::new(0.5).offset(vec![0.1, -0.2, 0.3]).call(&inputs).unwrap();
    let x = strata::layers::Normalization::with_statistics(vec![0.2, 0.1, -0.1], vec![2.0, 0.5, 1.5])
        .call(&x)
        .unwrap();
    let x = ZeroPadding2D::new(((1, 0), (2, 1))).call(&x).unwrap();
    let x = Conv2D::new(4, 3).activation("relu").call(&x).unwrap();
    let x = Flatten::new().call(&x).unwrap();
    let outputs = Dense::new(3).call(&x).unwrap();
    let mut model = Model::functional(&inputs, &outputs).unwrap();
    model.build(&[9, 7, 3]).unwrap();
    let proto = exported(&model, "channels_last_preprocessing");
    let ops = op_types(&proto);
    let first_transpose = ops.iter().position(|&o| o == "Transpose").unwrap();
    assert!(ops[..first_transpose].contains(&"Pad"), "{ops:?}");
    let y = assert_imported_back_agrees(&mut model, "channels_last_preprocessing", &[2, 9, 7, 3]);
    assert_eq!(y.shape(), &[2, 3]);
}
