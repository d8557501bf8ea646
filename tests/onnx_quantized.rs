//! ONNX export of quantized models as QDQ graphs: the int8 initializers are the quantized
//! model's int8 kernels (hand-checked on a small one) with the inverse of its scales, in ONNX's
//! layouts and along the output-channel axis; calibrated layers round their input with
//! `QuantizeLinear` → `DequantizeLinear` (uint8), take int32 biases and quantize their outputs
//! with the next layer's scale (the form ONNX Runtime fuses into `QLinearConv`, `QGemm`); a
//! layer whose int8 weights have no QDQ form is refused by name. ONNX Runtime's outputs are
//! compared with strata's by `tools/check_onnx_export.py` on the files
//! `examples/onnx_parity.rs` writes (`*_int8*`).
mod common;

use strata::autograd::{ActivationScale, QuantizedKernel, ScaleAxis};
use strata::io::config::load_model_spec;
use strata::io::onnx::proto::{ModelProto, NodeProto, TensorProto};
use strata::io::onnx::to_onnx;
use strata::model::QuantizeOptions;
use strata::prelude::*;

/// `TensorProto.DataType` of int8 and float tensors.
const INT8: i32 = 3;
const FLOAT: i32 = 1;
const UINT8: i32 = 2;
const INT32: i32 = 6;

fn op_types(proto: &ModelProto) -> Vec<&str> {
    let graph = proto.graph.as_ref().unwrap();
    graph.node.iter().map(|n| n.op_type.as_str()).collect()
}

fn initializer<'a>(proto: &'a ModelProto, name: &str) -> &'a TensorProto {
    let graph = proto.graph.as_ref().unwrap();
    graph
        .initializer
        .iter()
        .find(|t| t.name == name)
        .unwrap_or_else(|| panic!("no initializer {name}"))
}

fn int8s(tensor: &TensorProto) -> Vec<i8> {
    assert_eq!(tensor.data_type, INT8, "{} is not INT8", tensor.name);
    tensor.raw_data.iter().map(|&b| b as i8).collect()
}

fn int32s(tensor: &TensorProto) -> Vec<i32> {
    assert_eq!(tensor.data_type, INT32, "{} is not INT32", tensor.name);
    tensor
        .raw_data
        .chunks(4)
        .map(|b| i32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

fn floats(tensor: &TensorProto) -> Vec<f32> {
    assert_eq!(tensor.data_type, FLOAT, "{} is not FLOAT", tensor.name);
    tensor
        .raw_data
        .chunks(4)
        .map(|b| f32::from_le_bytes(b.try_into().unwrap()))
        .collect()
}

/// The `DequantizeLinear` node of int8 weight `weight`.
fn dequantizing<'a>(proto: &'a ModelProto, weight: &str) -> &'a NodeProto {
    let graph = proto.graph.as_ref().unwrap();
    graph
        .node
        .iter()
        .find(|n| n.op_type == "DequantizeLinear" && n.input[0] == weight)
        .unwrap_or_else(|| panic!("no DequantizeLinear of {weight}"))
}

/// The `axis` attribute of a node (ONNX's default 1 when absent).
fn axis(node: &NodeProto) -> i64 {
    node.attribute
        .iter()
        .find(|a| a.name == "axis")
        .and_then(|a| a.i)
        .unwrap_or(1)
}

/// The quantized kernel of weight `name`.
fn int8_kernel<'a>(model: &'a Model, name: &str) -> &'a QuantizedKernel {
    let params = model.params();
    let id = params.ids().find(|&id| params.name(id) == name).unwrap();
    params.quantized(id).unwrap_or_else(|| panic!("{name} is not int8"))
}

/// `Input(2) → Dense(2, relu) → Dense(3)` with a first kernel chosen so its int8 values are
/// easy to work out by hand.
fn small_mlp() -> Model {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[2]))
        .add(Dense::new(2).activation("relu"))
        .add(Dense::new(3));
    model.compile("adam", "mse", &[]).unwrap();
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        for (i, v) in model.params_mut().value_mut(id).data_mut().iter_mut().enumerate() {
            *v = ((k * 13 + i * 7) % 11) as f32 * 0.1 - 0.5;
        }
    }
    // (in, out): column 0 is [1, -0.5], column 1 is [0.25, -0.5].
    let params = model.params();
    let kernel = params.ids().find(|&id| params.name(id) == "dense/kernel").unwrap();
    model
        .params_mut()
        .value_mut(kernel)
        .data_mut()
        .copy_from_slice(&[1.0, 0.25, -0.5, -0.5]);
    model
}

/// A named model, built, with distinct weights (as `tests/onnx_export.rs`).
fn named(name: &str) -> Model {
    let mut model = load_model_spec(name).unwrap().model;
    let shape = model.layers()[0].declared_input_shape().unwrap().to_vec();
    model.build(&shape).unwrap();
    let ids: Vec<_> = model.params().ids().collect();
    for (k, id) in ids.into_iter().enumerate() {
        for (i, v) in model.params_mut().value_mut(id).data_mut().iter_mut().enumerate() {
            *v = ((k * 7919 + i) % 101) as f32 * 1e-2 - 0.5;
        }
    }
    model
}

#[test]
fn dense_kernels_are_int8_initializers_with_inverse_scales_read_by_dequantize_linear() {
    let mut model = small_mlp();
    model.quantize("int8").unwrap();
    let proto = to_onnx(&model).unwrap();
    // Dynamic (per-row) quantization has no ONNX form: weights-only QDQ, f32 activations.
    assert_eq!(
        op_types(&proto),
        [
            "DequantizeLinear",
            "Gemm",
            "Relu",
            "DequantizeLinear",
            "Gemm",
            "Identity"
        ]
    );
    // By hand: column 0's scale is 127 / 1, so 1 → 127 and -0.5 → -63.5 → -63 (just above the
    // half: the scale is 127 / (1 + 1e-7)); column 1's is 127 / 0.5, so 0.25 → 63, -0.5 → -127.
    let kernel = initializer(&proto, "dense/kernel");
    assert_eq!(kernel.dims, [2, 2]);
    assert_eq!(int8s(kernel), [127, 63, -63, -127]);
    assert_eq!(int8_kernel(&model, "dense/kernel").values(), [127, 63, -63, -127]);
    // ONNX dequantizes q · scale: the file holds 1 / strata's scale, max|w| / 127.
    let scales = floats(initializer(&proto, "dense/kernel_scale"));
    let expected: Vec<f32> = int8_kernel(&model, "dense/kernel")
        .scales()
        .iter()
        .map(|s| 1.0 / s)
        .collect();
    assert_eq!(scales, expected);
    for (scale, max) in scales.iter().zip([1.0f32, 0.5]) {
        assert!((scale * 127.0 - max).abs() < 1e-6, "{scale}");
    }
    assert_eq!(int8s(initializer(&proto, "dense/kernel_zero_point")), [0, 0]);
    // Per output unit: the last axis of the (in, out) kernel, which the Gemm reads.
    let graph = proto.graph.as_ref().unwrap();
    let dequantize = &graph.node[0];
    assert_eq!(
        dequantize.input,
        ["dense/kernel", "dense/kernel_scale", "dense/kernel_zero_point"]
    );
    assert_eq!(axis(dequantize), 1);
    assert_eq!(graph.node[1].input[1], dequantize.output[0]);
    assert_eq!(graph.node[1].input[2], "dense/bias");
    // Dequantized, the values are the quantized model's weights to a float rounding.
    let dequantized = model.weights()["dense/kernel"].data().to_vec();
    for (i, (&q, &w)) in int8s(kernel).iter().zip(&dequantized).enumerate() {
        let onnx = f32::from(q) * scales[i % 2];
        assert!((onnx - w).abs() <= 2.5e-7 * w.abs().max(1.0), "{onnx} vs {w}");
    }
}

#[test]
fn calibrated_layers_round_their_input_and_hand_on_int8_sums_as_onnx_runtime_fuses_them() {
    let mut model = small_mlp();
    let sample = Tensor::from_vec(vec![2, 2], vec![0.5, -2.0, 1.0, 0.25]).unwrap();
    let options = QuantizeOptions {
        calibration: Some(&sample),
        ..Default::default()
    };
    model.quantize_with_options("int8", options).unwrap();
    let proto = to_onnx(&model).unwrap();
    // Per layer: the kernel, the input's Q → DQ, the int32 bias, the Gemm. The second layer's
    // quantization follows the first's ReLU directly: ONNX Runtime fuses Gemm → ReLU → Q.
    assert_eq!(
        op_types(&proto),
        [
            "DequantizeLinear",
            "QuantizeLinear",
            "DequantizeLinear",
            "DequantizeLinear",
            "Gemm",
            "Relu",
            "DequantizeLinear",
            "QuantizeLinear",
            "DequantizeLinear",
            "DequantizeLinear",
            "Gemm",
            "Identity"
        ]
    );
    let graph = proto.graph.as_ref().unwrap();
    let (quantize, dequantize, bias, gemm) = (&graph.node[1], &graph.node[2], &graph.node[3], &graph.node[4]);
    assert_eq!(
        quantize.input,
        ["input_layer", "dense/input_scale", "dense/input_zero_point"]
    );
    assert_eq!(dequantize.input[0], quantize.output[0]);
    assert_eq!(dequantize.input[1..], ["dense/input_scale", "dense/input_zero_point"]);
    assert_eq!(gemm.input[0], dequantize.output[0]);
    assert_eq!(gemm.input[1], graph.node[0].output[0]);
    assert_eq!(gemm.input[2], bias.output[0]);
    // The sample's largest input is 2: strata's scale 127 / 2, ONNX's 2 / 127. The input may be
    // negative: uint8 with zero point 128 holds strata's symmetric levels.
    let input_scale = int8_kernel(&model, "dense/kernel").input_scale().unwrap();
    let onnx_scale = initializer(&proto, "dense/input_scale");
    assert!(onnx_scale.dims.is_empty());
    assert_eq!(floats(onnx_scale), [1.0 / input_scale]);
    assert!((floats(onnx_scale)[0] - 2.0 / 127.0).abs() < 1e-7);
    let zero_point = initializer(&proto, "dense/input_zero_point");
    assert!(zero_point.dims.is_empty());
    assert_eq!(
        (zero_point.data_type, zero_point.raw_data.as_slice()),
        (UINT8, &[128u8][..])
    );
    // The bias in the unit of the exact sums, input scale × kernel scale per output.
    assert_eq!(bias.input, ["dense/bias", "dense/bias_scale", "dense/bias_zero_point"]);
    assert_eq!(axis(bias), 0);
    let kernel_scales = floats(initializer(&proto, "dense/kernel_scale"));
    let units: Vec<f32> = kernel_scales.iter().map(|s| floats(onnx_scale)[0] * s).collect();
    assert_eq!(floats(initializer(&proto, "dense/bias_scale")), units);
    let float_bias = model.weights()["dense/bias"].data().to_vec();
    let expected: Vec<i32> = float_bias
        .iter()
        .zip(&units)
        .map(|(&b, &u)| (f64::from(b) / f64::from(u)).round() as i32)
        .collect();
    assert_eq!(int32s(initializer(&proto, "dense/bias")), expected);
    assert!(
        expected.iter().any(|&q| q.abs() > 100),
        "{expected:?}: the biases are not all near 0"
    );
    assert_eq!(int32s(initializer(&proto, "dense/bias_zero_point")), [0, 0]);
    // The second layer reads the ReLU's output, with its own calibrated scale; after the ReLU
    // the values are non-negative, so zero point 0, where ONNX Runtime drops the ReLU.
    assert_eq!(graph.node[7].input[0], graph.node[5].output[0]);
    let second = int8_kernel(&model, "dense_1/kernel").input_scale().unwrap();
    assert_eq!(floats(initializer(&proto, "dense_1/input_scale")), [1.0 / second]);
    assert_eq!(initializer(&proto, "dense_1/input_zero_point").raw_data, [0]);
    // beta = 1 spelled out, as ONNX Runtime's QGemm fusion reads it.
    let beta = gemm.attribute.iter().find(|a| a.name == "beta").unwrap();
    assert_eq!(beta.f, Some(1.0));
}

#[test]
fn each_calibrated_convolution_is_quantized_on_its_output_with_the_next_layers_scale() {
    let mut model = named("cnn");
    let sample = Tensor::from_vec(
        vec![4, 28, 28, 1],
        (0..4 * 784).map(|i| ((i * 37) % 255) as f32 / 255.0).collect(),
    )
    .unwrap();
    let options = QuantizeOptions {
        calibration: Some(&sample),
        ..Default::default()
    };
    model.quantize_with_options("int8", options).unwrap();
    let proto = to_onnx(&model).unwrap();
    let graph = proto.graph.as_ref().unwrap();
    let reader = |tensor: &str| only_reader(&graph.node, tensor);
    // What follows each Conv, skipping the DequantizeLinear after each QuantizeLinear: ReLU,
    // then quantized (the pair) before and after each operator on the way to the next layer.
    let mut after = Vec::new();
    for (k, conv) in graph.node.iter().filter(|n| n.op_type == "Conv").enumerate() {
        let mut ops = Vec::new();
        let mut node = reader(&conv.output[0]);
        while !["Conv", "Gemm"].contains(&node.op_type.as_str()) {
            ops.push(node.op_type.as_str());
            if node.op_type == "QuantizeLinear" {
                // Every pair on the way uses the next layer's scale and zero point 0.
                let next = ["conv2d_1", "conv2d_2", "dense"][k];
                assert_eq!(
                    node.input[1..],
                    [format!("{next}/input_scale"), format!("{next}/input_zero_point")]
                );
                node = reader(&node.output[0]);
                assert_eq!(node.op_type, "DequantizeLinear");
            }
            node = reader(&node.output[0]);
        }
        after.push(ops);
    }
    assert_eq!(
        after,
        [
            vec!["Relu", "QuantizeLinear", "MaxPool", "QuantizeLinear"],
            vec!["Relu", "QuantizeLinear", "MaxPool", "QuantizeLinear"],
            vec![
                "Relu",
                "QuantizeLinear",
                "Transpose",
                "QuantizeLinear",
                "Flatten",
                "QuantizeLinear"
            ],
        ]
    );
    for next in ["conv2d_1", "conv2d_2", "dense", "dense_1"] {
        assert_eq!(
            initializer(&proto, &format!("{next}/input_zero_point")).raw_data,
            [0],
            "{next}"
        );
    }
    // The first layer's input (the image) keeps zero point 128; every bias is int32.
    assert_eq!(initializer(&proto, "conv2d/input_zero_point").raw_data, [128]);
    for layer in ["conv2d", "conv2d_1", "conv2d_2", "dense", "dense_1"] {
        assert_eq!(
            initializer(&proto, &format!("{layer}/bias")).data_type,
            INT32,
            "{layer}"
        );
    }
}

#[test]
fn convolution_kernels_go_in_onnx_layout_scaled_along_the_output_channels() {
    let mut model = named("cnn");
    model.quantize("int8").unwrap();
    let proto = to_onnx(&model).unwrap();
    // The f32 graph's operators, each kernel read through a DequantizeLinear.
    let without_dequantize: Vec<&str> = op_types(&proto)
        .into_iter()
        .filter(|op| *op != "DequantizeLinear")
        .collect();
    assert_eq!(
        without_dequantize,
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
    assert_eq!(
        op_types(&proto).iter().filter(|op| **op == "DequantizeLinear").count(),
        5
    );
    // Keras's (kh, kw, in, out) int8 kernel becomes ONNX's (out, in, kh, kw), axis 0.
    let kernel = int8_kernel(&model, "conv2d_1/kernel");
    let (kh, kw, cin, cout) = (
        kernel.shape()[0],
        kernel.shape()[1],
        kernel.shape()[2],
        kernel.shape()[3],
    );
    let onnx = initializer(&proto, "conv2d_1/kernel");
    assert_eq!(onnx.dims, [cout as i64, cin as i64, kh as i64, kw as i64]);
    let values = int8s(onnx);
    let mut seen = std::collections::HashSet::new();
    for h in 0..kh {
        for w in 0..kw {
            for c in 0..cin {
                for o in 0..cout {
                    let keras = kernel.values()[((h * kw + w) * cin + c) * cout + o];
                    assert_eq!(values[((o * cin + c) * kh + h) * kw + w], keras);
                    seen.insert(keras);
                }
            }
        }
    }
    assert!(
        seen.len() > 50,
        "the kernel's values are distinct enough to show a transposition"
    );
    let scales = floats(initializer(&proto, "conv2d_1/kernel_scale"));
    assert_eq!(scales.len(), cout);
    for (onnx, strata) in scales.iter().zip(kernel.scales()) {
        assert_eq!(*onnx, 1.0 / strata);
    }
    let dequantize = dequantizing(&proto, "conv2d_1/kernel");
    assert_eq!(axis(dequantize), 0);
    let graph = proto.graph.as_ref().unwrap();
    let conv = graph
        .node
        .iter()
        .find(|n| n.op_type == "Conv" && n.input[1] == dequantize.output[0]);
    assert!(conv.is_some(), "no Conv reads the dequantized kernel");
    // Dense kernels (in, out) are scaled along axis 1.
    assert_eq!(axis(dequantizing(&proto, "dense/kernel")), 1);
}

#[test]
fn depthwise_conv1d_and_embedding_tables_have_their_own_axes() {
    let tokens = Input::node(&[6]);
    let embedded = Embedding::new(7, 4).call(&tokens).unwrap();
    let sequence = Conv1D::new(3, 2).activation("relu").call(&embedded).unwrap();
    let sequence = Flatten::new().call(&sequence).unwrap();
    let images = Input::node(&[5, 5, 2]);
    let maps = DepthwiseConv2D::new(3).depth_multiplier(2).call(&images).unwrap();
    let maps = Flatten::new().call(&maps).unwrap();
    let x = Concatenate::new(-1).call_many(&[&sequence, &maps]).unwrap();
    let outputs = Dense::new(2).call(&x).unwrap();
    let mut model = Model::functional_multi(&[&tokens, &images], &[&outputs]).unwrap();
    model.build_inputs(&[&[6], &[5, 5, 2]]).unwrap();
    let report = model.quantize("int8").unwrap();
    assert!(report.iter().all(|layer| layer.int8), "{report:?}");
    let proto = to_onnx(&model).unwrap();
    // An embedding table has one scale per row (axis 0), gathered after dequantizing.
    let table = int8_kernel(&model, "embedding/embeddings");
    assert_eq!(int8s(initializer(&proto, "embedding/embeddings")), table.values());
    assert_eq!(axis(dequantizing(&proto, "embedding/embeddings")), 0);
    assert_eq!(floats(initializer(&proto, "embedding/embeddings_scale")).len(), 7);
    // Conv1D (k, in, out) → (out, in, k); DepthwiseConv2D (kh, kw, in, m) → (in·m, 1, kh, kw),
    // output channel c·m + j in both.
    let conv1d = int8_kernel(&model, "conv1d/kernel");
    let onnx = int8s(initializer(&proto, "conv1d/kernel"));
    let (k, cin, cout) = (2, 4, 3);
    for (i, &q) in conv1d.values().iter().enumerate() {
        let (o, c, t) = (i % cout, (i / cout) % cin, i / (cout * cin));
        assert_eq!(onnx[(o * cin + c) * k + t], q);
    }
    assert_eq!(axis(dequantizing(&proto, "conv1d/kernel")), 0);
    let depthwise = int8_kernel(&model, "depthwise_conv2d/kernel");
    let onnx = int8s(initializer(&proto, "depthwise_conv2d/kernel"));
    assert_eq!(initializer(&proto, "depthwise_conv2d/kernel").dims, [4, 1, 3, 3]);
    let (kh, kw, cin, m) = (3, 3, 2, 2);
    for (i, &q) in depthwise.values().iter().enumerate() {
        let (j, c, w, h) = (i % m, (i / m) % cin, (i / (m * cin)) % kw, i / (m * cin * kw));
        assert_eq!(onnx[((c * m + j) * kh + h) * kw + w], q);
    }
    let scales = floats(initializer(&proto, "depthwise_conv2d/kernel_scale"));
    let expected: Vec<f32> = depthwise.scales().iter().map(|s| 1.0 / s).collect();
    assert_eq!(scales, expected);
    assert_eq!(axis(dequantizing(&proto, "depthwise_conv2d/kernel")), 0);
}

#[test]
fn a_saved_and_loaded_calibrated_model_exports_the_same_graph() {
    let mut model = named("cnn");
    let sample = Tensor::from_vec(
        vec![4, 28, 28, 1],
        (0..4 * 784).map(|i| ((i * 37) % 255) as f32 / 255.0).collect(),
    )
    .unwrap();
    let options = QuantizeOptions {
        calibration: Some(&sample),
        ..Default::default()
    };
    model.quantize_with_options("int8", options).unwrap();
    let path = std::env::temp_dir().join(format!("strata-onnx-int8-{}.safetensors", common::run_id()));
    model.save(&path).unwrap();
    let loaded = strata::load_model(&path).unwrap();
    std::fs::remove_file(&path).ok();
    let (direct, reloaded) = (to_onnx(&model).unwrap(), to_onnx(&loaded).unwrap());
    assert!(direct == reloaded, "the loaded model's graph differs");
    // Every int8 layer's input is rounded (five QuantizeLinear), and so are the outputs on the
    // way to the next one (four more); the DequantizeLinears add kernels and biases.
    let count = |op: &str| op_types(&direct).iter().filter(|o| **o == op).count();
    assert_eq!((count("QuantizeLinear"), count("DequantizeLinear")), (9, 19));
}

#[test]
fn a_layer_whose_int8_weights_have_no_qdq_form_is_refused_by_name() {
    let mut model = Sequential::new();
    model
        .add(Input::new(&[4, 4, 2]))
        .add(Conv2DTranspose::new(2, 2))
        .add(Flatten::new())
        .add(Dense::new(2));
    model.compile("adam", "mse", &[]).unwrap();
    model.quantize("int8").unwrap();
    // Quantization leaves Conv2DTranspose in f32; an int8 one (a hand-made or edited file)
    // has no QDQ form in export.
    let params = model.params();
    let id = params
        .ids()
        .find(|&id| params.name(id) == "conv2d_transpose/kernel")
        .unwrap();
    let kernel = QuantizedKernel::quantize(params.value(id), ScaleAxis::Columns, ActivationScale::PerRow).unwrap();
    model.params_mut().set_quantized(id, kernel);
    let path = std::env::temp_dir().join(format!("strata-onnx-refused-int8-{}.onnx", common::run_id()));
    let error = model.save_onnx(&path).unwrap_err().to_string();
    assert!(
        error.contains("'conv2d_transpose' (Conv2DTranspose: int8 weight 'conv2d_transpose/kernel' has no QDQ form"),
        "{error}"
    );
    assert!(!error.contains("'dense'"), "{error}");
    assert!(!path.exists());
}

/// The one node reading `tensor`.
fn only_reader<'a>(nodes: &'a [NodeProto], tensor: &str) -> &'a NodeProto {
    let readers: Vec<&NodeProto> = nodes.iter().filter(|n| n.input.iter().any(|i| i == tensor)).collect();
    assert_eq!(readers.len(), 1, "{tensor} has {} readers", readers.len());
    readers[0]
}
