//! The torchvision classifiers whose import CI checks against ONNX Runtime are well-formed for
//! strata without their weights: tests/fixtures/onnx_torchvision/ holds their graphs as
//! PyTorch exports them at 224x224 (`tools/onnx_import_fixtures.py --torchvision`, and
//! `--torchvision-dynamo` for the exporter `torch.onnx.export` now uses by default), each weight
//! reduced to its name, type and dims (`tools/strip_onnx_weights.py`). Filled with zeros, every
//! graph imports (each operator read, each shape inferred) into one convolution layer per
//! `Conv` and one `Dense` per `Gemm`, and predicts 1000 classes. The values themselves are
//! checked by `tools/check_onnx_import_torchvision.py` with the ignored test of onnx_import.rs.

use prost::Message;
use std::path::Path;
use strata::io::load_onnx_bytes;
use strata::io::onnx::proto::{DOUBLE, EXTERNAL, FLOAT, ModelProto, TensorProto};
use strata::prelude::*;

/// The classifiers of issue 17's import parity, one fixture each, and the architectures people
/// export whose every convolution is a `Conv` node (ShuffleNet's channel selections and
/// ConvNeXt's per-pixel `Linear` layers add 1×1 convolutions: CI's parity run checks those,
/// with VGG-11 and a Keras MobileNetV2 converted by tf2onnx).
const CLASSIFIERS: [&str; 18] = [
    "resnet18",
    "mobilenet_v2",
    "mobilenet_v3_small",
    "efficientnet_b0",
    "squeezenet1_1",
    "densenet121",
    "resnext50_32x4d",
    "googlenet",
    "mnasnet0_5",
    "regnet_y_400mf",
    "mobilenet_v3_large",
    // The same seven as `torch.onnx.export` writes them by default since PyTorch 2.9 (the
    // torch.export exporter, opset 18, batch normalizations folded into the convolutions).
    "resnet18_dynamo",
    "mobilenet_v2_dynamo",
    "mobilenet_v3_small_dynamo",
    "efficientnet_b0_dynamo",
    "squeezenet1_1_dynamo",
    "densenet121_dynamo",
    "resnext50_32x4d_dynamo",
];

/// Whether `tensor` is a weight the fixture left without values.
fn is_stripped(tensor: &TensorProto) -> bool {
    matches!(tensor.data_type, FLOAT | DOUBLE)
        && tensor.data_location != EXTERNAL
        && tensor.raw_data.is_empty()
        && tensor.float_data.is_empty()
        && tensor.double_data.is_empty()
        && tensor.dims.iter().all(|&d| d > 0)
}

/// Fixture `name` with zeros for its stripped weights, and how many values they hold.
fn zero_filled(name: &str) -> (ModelProto, usize) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/onnx_torchvision")
        .join(format!("{name}.onnx"));
    let bytes = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut proto = ModelProto::decode(bytes.as_slice()).unwrap();
    let mut filled = 0;
    for tensor in &mut proto.graph.as_mut().unwrap().initializer {
        if is_stripped(tensor) {
            let count: usize = tensor.dims.iter().map(|&d| d as usize).product();
            let width = if tensor.data_type == FLOAT { 4 } else { 8 };
            tensor.raw_data = vec![0; count * width];
            filled += count;
        }
    }
    (proto, filled)
}

#[test]
fn the_stripped_torchvision_graphs_import_with_zero_weights() {
    for name in CLASSIFIERS {
        let (proto, filled) = zero_filled(name);
        assert!(filled > 1_000_000, "{name}: only {filled} stripped weight values");
        let graph = proto.graph.as_ref().unwrap();
        let nodes = |op: &str| graph.node.iter().filter(|n| n.op_type == op).count();
        let (convolutions, gemms) = (nodes("Conv"), nodes("Gemm"));

        let mut model =
            load_onnx_bytes(&proto.encode_to_vec(), format!("{name}.onnx")).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(model.input_shape(), Some(&[224, 224, 3][..]), "{name}");
        assert_eq!(model.output_shape(), Some(&[1000][..]), "{name}");
        let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
        let layers = |wanted: &[&str]| classes.iter().filter(|c| wanted.contains(c)).count();
        assert_eq!(
            layers(&["Conv2D", "DepthwiseConv2D"]),
            convolutions,
            "{name}: {classes:?}"
        );
        assert_eq!(layers(&["Dense"]), gemms, "{name}: {classes:?}");

        // One image through it: every inferred shape holds at run time too.
        let x = Tensor::from_vec(vec![1, 224, 224, 3], vec![0.5; 224 * 224 * 3]).unwrap();
        let y = model.predict(&x, 1).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(y.shape(), [1, 1000], "{name}");
        assert!(y.data().iter().all(|v| v.is_finite()), "{name}");
    }
}
