//! ONNX import of what the exporters write besides plain operators (issue 17's survey of
//! torchvision's zoo): torch.export's `as_strided` — a computed tensor flattened together
//! with its batch axis (`Reshape` to `[-1]`), then gathered back by indices computed from the
//! batch size (`Range(0, N) · size + offsets`), as ConvNeXt's pooled map is written — with a
//! dynamic and with a fixed batch size, and what strata refuses of it, by name. The real
//! ConvNeXt graph (a narrow one, torch.export at opset 18) is a fixture of
//! tests/fixtures/onnx_general, checked against ONNX Runtime by tests/onnx_import.rs.

use prost::Message;
use strata::io::load_onnx_bytes;
use strata::io::onnx::proto::{
    AttributeProto, Dimension, DimensionValue, GraphProto, ModelProto, NodeProto, OperatorSetIdProto, TensorProto,
    TensorShapeProto, TensorTypeProto, TypeProto, ValueInfoProto,
};
use strata::prelude::*;

/// ONNX's INT64 data type.
const INT64: i32 = 7;

/// A graph on input `x` of `(batch, 6)` (`batch` `None`: dynamic) with output `y` of
/// `(batch, 2, 3)`.
fn graph(nodes: Vec<NodeProto>, initializers: Vec<TensorProto>, batch: Option<i64>) -> ModelProto {
    graph_of(nodes, initializers, batch, &[6], &[2, 3])
}

/// A graph on input `x` of `(batch, input…)` with output `y` of `(batch, output…)`.
fn graph_of(
    nodes: Vec<NodeProto>,
    initializers: Vec<TensorProto>,
    batch: Option<i64>,
    input: &[i64],
    output: &[i64],
) -> ModelProto {
    let dim = |d: Option<i64>| Dimension {
        value: Some(match d {
            Some(d) => DimensionValue::DimValue(d),
            None => DimensionValue::DimParam("N".into()),
        }),
    };
    let value = |name: &str, dims: Vec<Dimension>| ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            tensor_type: Some(TensorTypeProto {
                elem_type: 1,
                shape: Some(TensorShapeProto { dim: dims }),
            }),
        }),
    };
    ModelProto {
        ir_version: 8,
        graph: Some(GraphProto {
            node: nodes,
            name: "g".into(),
            initializer: initializers,
            input: vec![value(
                "x",
                std::iter::once(batch)
                    .chain(input.iter().map(|&d| Some(d)))
                    .map(dim)
                    .collect(),
            )],
            output: vec![value(
                "y",
                std::iter::once(batch)
                    .chain(output.iter().map(|&d| Some(d)))
                    .map(dim)
                    .collect(),
            )],
        }),
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 18,
        }],
        ..Default::default()
    }
}

fn node(op: &str, inputs: &[&str], output: &str) -> NodeProto {
    NodeProto {
        input: inputs.iter().map(|s| s.to_string()).collect(),
        output: vec![output.into()],
        name: format!("node_{output}"),
        op_type: op.into(),
        ..Default::default()
    }
}

fn ints(name: &str, dims: &[i64], values: &[i64]) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type: INT64,
        int64_data: values.to_vec(),
        name: name.into(),
        ..Default::default()
    }
}

/// `y = sigmoid(as_strided(relu(x), (N, 2, 3)))` as torch.export writes it, the per-sample
/// offsets `offsets` (0 to 5 in order: a reshape).
fn as_strided(offsets: &[i64], batch: Option<i64>) -> ModelProto {
    let shape_to_batch = NodeProto {
        attribute: vec![AttributeProto {
            name: "end".into(),
            i: Some(1),
            r#type: 2,
            ..Default::default()
        }],
        ..node("Shape", &["x"], "shape")
    };
    let nodes = vec![
        node("Relu", &["x"], "h"),
        shape_to_batch,
        node("Squeeze", &["shape"], "batch"),
        node("Reshape", &["h", "minus_one"], "flat"),
        node("Range", &["zero", "batch", "one"], "n"),
        node("Mul", &["n", "six"], "starts"),
        node("Unsqueeze", &["starts", "axes"], "starts_3d"),
        node("Add", &["starts_3d", "offsets"], "indices"),
        node("Gather", &["flat", "indices"], "strided"),
        node("Sigmoid", &["strided"], "y"),
    ];
    let constants = vec![
        ints("minus_one", &[1], &[-1]),
        ints("zero", &[], &[0]),
        ints("one", &[], &[1]),
        ints("six", &[], &[6]),
        ints("axes", &[2], &[1, 2]),
        ints("offsets", &[1, 2, 3], offsets),
    ];
    graph(nodes, constants, batch)
}

fn import(model: &ModelProto) -> strata::Result<Model> {
    load_onnx_bytes(&model.encode_to_vec(), "strided.onnx")
}

fn sigmoid(v: f32) -> f32 {
    1.0 / (1.0 + (-v).exp())
}

#[test]
fn as_strided_by_the_batch_size_is_a_reshape() {
    for batch in [None, Some(3)] {
        let mut model = import(&as_strided(&[0, 1, 2, 3, 4, 5], batch)).unwrap_or_else(|e| panic!("{batch:?}: {e}"));
        assert_eq!(model.output_shape(), Some(&[2, 3][..]), "{batch:?}");
        let values: Vec<f32> = (0..18).map(|k| k as f32 * 0.25 - 2.0).collect();
        let x = Tensor::from_vec(vec![3, 6], values.clone()).unwrap();
        let y = model.predict(&x, 2).unwrap();
        assert_eq!(y.shape(), [3, 2, 3]);
        for (got, v) in y.data().iter().zip(&values) {
            assert!((got - sigmoid(v.max(0.0))).abs() < 1e-6, "{batch:?}: {got} for {v}");
        }
    }
}

#[test]
fn as_strided_in_another_order_is_refused_by_name() {
    for batch in [None, Some(3)] {
        let error = import(&as_strided(&[5, 4, 3, 2, 1, 0], batch)).unwrap_err().to_string();
        assert!(
            error.contains("node_strided") && error.contains("another order"),
            "{error}"
        );
    }
}

#[test]
fn a_flattened_batch_read_otherwise_is_refused_by_name() {
    let model = graph(
        vec![
            node("Reshape", &["x", "minus_one"], "flat"),
            node("Relu", &["flat"], "y"),
        ],
        vec![ints("minus_one", &[1], &[-1])],
        None,
    );
    let error = import(&model).unwrap_err().to_string();
    assert!(
        error.contains("node 'node_y' (Relu)") && error.contains("'flat'") && error.contains("batch axis"),
        "{error}"
    );
}

#[test]
fn a_flattened_batch_reshaped_back_is_a_reshape() {
    let model = graph(
        vec![
            node("Relu", &["x"], "h"),
            node("Reshape", &["h", "minus_one"], "flat"),
            node("Reshape", &["flat", "target"], "y"),
        ],
        vec![ints("minus_one", &[1], &[-1]), ints("target", &[3], &[-1, 2, 3])],
        None,
    );
    let mut model = import(&model).unwrap();
    let values: Vec<f32> = (0..12).map(|k| k as f32 - 6.0).collect();
    let y = model
        .predict(&Tensor::from_vec(vec![2, 6], values.clone()).unwrap(), 2)
        .unwrap();
    assert_eq!(y.shape(), [2, 2, 3]);
    let expected: Vec<f32> = values.iter().map(|v| v.max(0.0)).collect();
    assert_eq!(y.data(), &expected[..]);
}

/// `AveragePool` 3×3, stride 1, pads 1 on a 3×3 image of ones: PyTorch's default
/// (`count_include_pad = 1`, Inception's pooling branches) counts the pads as zeros, so a
/// corner is 4/9 and an edge 6/9; with `count_include_pad = 0` every window's mean is 1.
#[test]
fn average_pooling_counts_the_pads_when_told_to() {
    for (include, corner, edge) in [(1, 4.0 / 9.0, 6.0 / 9.0), (0, 1.0, 1.0)] {
        let int = |name: &str, i: i64| AttributeProto {
            name: name.into(),
            i: Some(i),
            r#type: 2,
            ..Default::default()
        };
        let list = |name: &str, ints: &[i64]| AttributeProto {
            name: name.into(),
            ints: ints.to_vec(),
            r#type: 7,
            ..Default::default()
        };
        let pool = NodeProto {
            attribute: vec![
                list("kernel_shape", &[3, 3]),
                list("pads", &[1, 1, 1, 1]),
                int("count_include_pad", include),
            ],
            ..node("AveragePool", &["h"], "y")
        };
        let model = graph_of(
            vec![node("Relu", &["x"], "h"), pool],
            vec![],
            None,
            &[1, 3, 3],
            &[1, 3, 3],
        );
        let mut model = import(&model).unwrap();
        let y = model
            .predict(&Tensor::from_vec(vec![1, 3, 3, 1], vec![1.0; 9]).unwrap(), 1)
            .unwrap();
        let expected = [corner, edge, corner, edge, 1.0, edge, corner, edge, corner];
        for (got, want) in y.data().iter().zip(expected) {
            assert!((got - want).abs() < 1e-6, "count_include_pad {include}: {:?}", y.data());
        }
    }
}

/// An `.npy` file of f32 as a tensor.
fn npy(path: &std::path::Path) -> Tensor {
    let bytes = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let file = npyz::NpyFile::new(&bytes[..]).unwrap();
    let shape: Vec<usize> = file.shape().iter().map(|&d| d as usize).collect();
    Tensor::from_vec(shape, file.into_vec().unwrap()).unwrap()
}

/// NCHW images as strata takes them, NHWC; other inputs as they are.
fn strata_input(x: &Tensor) -> Tensor {
    let &[n, c, h, w] = x.shape() else {
        return x.clone();
    };
    let mut out = vec![0.0; x.data().len()];
    for b in 0..n {
        for k in 0..c {
            for i in 0..h * w {
                out[(b * h * w + i) * c + k] = x.data()[(b * c + k) * h * w + i];
            }
        }
    }
    Tensor::from_vec(vec![n, h, w, c], out).unwrap()
}

/// One survey line for `folder/NAME.onnx`: imported and within 1e-4 of ONNX Runtime relative
/// to the outputs' standard deviation (random weights give some models logits in the
/// hundreds), or what strata says.
fn survey_line(folder: &std::path::Path, name: &str) -> String {
    let mut model = match strata::io::load_onnx(folder.join(format!("{name}.onnx"))) {
        Ok(model) => model,
        Err(e) => return format!("{name}: refused: {e}"),
    };
    let x = strata_input(&npy(&folder.join(format!("{name}.input.npy"))));
    let expected = npy(&folder.join(format!("{name}.output.npy")));
    let y = match model.predict(&x, 32) {
        Ok(y) if y.shape() == expected.shape() => y,
        Ok(y) => {
            return format!(
                "{name}: gives shape {:?}, ONNX Runtime {:?}",
                y.shape(),
                expected.shape()
            );
        }
        Err(e) => return format!("{name}: does not run: {e}"),
    };
    let difference = y
        .data()
        .iter()
        .zip(expected.data())
        .map(|(a, e)| (a - e).abs())
        .fold(0.0f32, f32::max);
    let count = expected.data().len() as f32;
    let mean = expected.data().iter().sum::<f32>() / count;
    let deviation = (expected.data().iter().map(|v| (v - mean).powi(2)).sum::<f32>() / count).sqrt();
    let relative = difference / deviation.max(1.0);
    let verdict = if relative <= 1e-4 { "matches" } else { "differs" };
    format!(
        "{name}: {verdict}: largest difference {difference:.2e}, {relative:.2e} relative to the outputs' deviation {deviation:.3}"
    )
}

/// The survey of `tools/onnx_general_fixtures.py --survey DIR [zoo]`: every `NAME.onnx` there
/// imported and run on its input, one line each in DIR/strata.txt (`--table DIR` then joins
/// them with the exporters' lines).
#[test]
#[ignore = "needs STRATA_ONNX_SURVEY=DIR: see tools/onnx_general_fixtures.py --survey"]
fn survey_the_exported_zoo() {
    let folder =
        std::path::PathBuf::from(std::env::var("STRATA_ONNX_SURVEY").expect("STRATA_ONNX_SURVEY names the folder"));
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
    let lines: Vec<String> = names
        .iter()
        .map(|name| {
            let line = survey_line(&folder, name);
            eprintln!("{line}");
            line
        })
        .collect();
    std::fs::write(folder.join("strata.txt"), lines.join("\n") + "\n").unwrap();
}

/// A vision transformer's patches: a `(C, H, W)` map reshaped to `(C, H·W)` and transposed to
/// `(H·W, C)` steps. Strata holds the map channels-last, `(H, W, C)`, whose values are those
/// steps already: the output is the input's values (after the ReLU) in strata's order.
#[test]
fn a_map_reshaped_to_patches_keeps_strata_layout() {
    let transpose = NodeProto {
        attribute: vec![AttributeProto {
            name: "perm".into(),
            ints: vec![0, 2, 1],
            r#type: 7,
            ..Default::default()
        }],
        ..node("Transpose", &["patches"], "y")
    };
    let model = graph_of(
        vec![
            node("Relu", &["x"], "h"),
            node("Reshape", &["h", "target"], "patches"),
            transpose,
        ],
        vec![ints("target", &[3], &[0, 2, 6])],
        None,
        &[2, 2, 3],
        &[6, 2],
    );
    let mut model = import(&model).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(model.output_shape(), Some(&[6, 2][..]));
    let values: Vec<f32> = (0..24).map(|k| k as f32 - 5.0).collect();
    let y = model
        .predict(&Tensor::from_vec(vec![2, 2, 3, 2], values.clone()).unwrap(), 2)
        .unwrap();
    let expected: Vec<f32> = values.iter().map(|v| v.max(0.0)).collect();
    assert_eq!(y.data(), &expected[..]);
}

/// A scalar `FLOAT` tensor named `name`.
fn float_scalar(name: &str, value: f32) -> TensorProto {
    TensorProto {
        data_type: 1,
        float_data: vec![value],
        name: name.into(),
        ..Default::default()
    }
}

/// `x / x.shape[0]` (a per-batch mean written by hand) would fold the batch size as a number
/// for one batch size; and `x.shape[0] == 2` is unknown until a batch runs: both refused by
/// the node's name, where they used to fold the batch size's stand-in as a garbage number.
/// A size compared with -1 (torch's `expand`) is known: never.
#[test]
fn a_number_computed_from_the_batch_size_is_refused_by_name() {
    let shape_part = || vec![node("Shape", &["x"], "shape"), node("Gather", &["shape", "zero"], "n")];
    let mut cast = node("Cast", &["n"], "n_float");
    cast.attribute = vec![AttributeProto {
        name: "to".into(),
        i: Some(1),
        r#type: 2,
        ..Default::default()
    }];
    let divided = graph_of(
        [shape_part(), vec![cast, node("Div", &["x", "n_float"], "y")]].concat(),
        vec![ints("zero", &[], &[0])],
        None,
        &[6],
        &[6],
    );
    let error = import(&divided).unwrap_err().to_string();
    assert!(
        error.contains("node_n_float") && error.contains("number from the batch size"),
        "{error}"
    );
    let compared = |literal: i64| {
        let nodes = [
            shape_part(),
            vec![
                node("Equal", &["n", "literal"], "same"),
                node("Where", &["same", "half", "one"], "factor"),
                node("Mul", &["x", "factor"], "y"),
            ],
        ]
        .concat();
        let constants = vec![
            ints("zero", &[], &[0]),
            ints("literal", &[], &[literal]),
            float_scalar("half", 0.5),
            float_scalar("one", 1.0),
        ];
        import(&graph_of(nodes, constants, None, &[6], &[6]))
    };
    let error = compared(2).unwrap_err().to_string();
    assert!(
        error.contains("node_same") && error.contains("compares the batch size"),
        "{error}"
    );
    let mut never = compared(-1).unwrap();
    let x = Tensor::from_vec(vec![2, 6], (0..12).map(|k| k as f32).collect()).unwrap();
    assert_eq!(never.predict(&x, 2).unwrap().data(), x.data());
}

/// Gather and GatherND of constants by a million repeated indices would fold to 2⁴⁰ values
/// (8 TB): refused by the node's name before anything of that size is allocated.
#[test]
fn constant_gathers_that_fold_to_terabytes_are_refused_by_name() {
    let data = TensorProto {
        dims: vec![1, 1 << 20],
        data_type: 1,
        float_data: vec![0.5; 1 << 20],
        name: "data".into(),
        ..Default::default()
    };
    let cases = [
        ("Gather", ints("idx", &[1 << 20], &vec![0; 1 << 20])),
        ("GatherND", ints("idx", &[1 << 20, 1], &vec![0; 1 << 20])),
    ];
    for (op, indices) in cases {
        let nodes = vec![node(op, &["data", "idx"], "picked"), node("Add", &["x", "picked"], "y")];
        let model = graph_of(nodes, vec![data.clone(), indices], None, &[6], &[6]);
        let error = import(&model).unwrap_err().to_string();
        assert!(
            error.contains("node_picked") && error.contains("1048576 × 1048576"),
            "{op}: {error}"
        );
    }
}

/// A backward Slice (step -1) of an empty constant picks nothing: its start used to be clamped
/// to `[0, -1]`, a panic. Here the empty slice is joined to six weights and added to `x`.
#[test]
fn a_backward_slice_of_an_empty_constant_is_empty() {
    let floats = |name: &str, values: Vec<f32>| TensorProto {
        dims: vec![values.len() as i64],
        data_type: 1,
        float_data: values,
        name: name.into(),
        ..Default::default()
    };
    let mut concat = node("Concat", &["picked", "w"], "joined");
    concat.attribute = vec![AttributeProto {
        name: "axis".into(),
        i: Some(0),
        r#type: 2,
        ..Default::default()
    }];
    let nodes = vec![
        node("Slice", &["empty", "start", "end", "axis", "step"], "picked"),
        concat,
        node("Add", &["x", "joined"], "y"),
    ];
    let constants = vec![
        floats("empty", vec![]),
        floats("w", vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]),
        ints("start", &[1], &[-1]),
        ints("end", &[1], &[-10]),
        ints("axis", &[1], &[0]),
        ints("step", &[1], &[-1]),
    ];
    let model = graph_of(nodes, constants, None, &[6], &[6]);
    let mut model = import(&model).unwrap();
    let y = model.predict(&Tensor::zeros(&[1, 6]), 1).unwrap();
    assert_eq!(y.data(), &[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
}

/// A float vector initializer.
fn floats(name: &str, values: &[f32]) -> TensorProto {
    TensorProto {
        dims: vec![values.len() as i64],
        data_type: 1,
        float_data: values.to_vec(),
        name: name.into(),
        ..Default::default()
    }
}

/// RMS normalization as exporters write it before opset 23, over `(N, 3, 4)` sequences:
/// torch's Llama form (`Pow`, `ReduceMean`, `Add`, `Sqrt`, `Reciprocal`, `Mul`, a `Cast` to
/// float, `Mul` by the weight first), the `Div(1, ·)` form of `rsqrt`, the plain division, and
/// opset 23's own operator: each imports as one RMSNormalization and gives
/// `x / √(mean(x²) + ε) · γ`, computed here by hand.
#[test]
fn rms_normalization_written_out_imports_as_one_layer() {
    let gamma = [0.5f32, 1.0, 1.5, 2.0];
    let epsilon = 1e-5f32;
    let mean = |input: &str, output: &str| NodeProto {
        attribute: vec![strata::io::onnx::proto::AttributeProto {
            name: "axes".into(),
            r#type: 7,
            ints: vec![-1],
            ..Default::default()
        }],
        ..node("ReduceMean", &[input], output)
    };
    let cast = NodeProto {
        attribute: vec![strata::io::onnx::proto::AttributeProto {
            name: "to".into(),
            r#type: 2,
            i: Some(1),
            ..Default::default()
        }],
        ..node("Cast", &["n"], "c")
    };
    let root = |tail: Vec<NodeProto>| {
        let mut nodes = vec![
            node("Pow", &["x", "two"], "sq"),
            mean("sq", "ms"),
            node("Add", &["ms", "eps"], "shifted"),
            node("Sqrt", &["shifted"], "root"),
        ];
        nodes.extend(tail);
        nodes
    };
    let forms: Vec<(&str, Vec<NodeProto>)> = vec![
        (
            "llama",
            root(vec![
                node("Reciprocal", &["root"], "r"),
                node("Mul", &["x", "r"], "n"),
                cast,
                node("Mul", &["gamma", "c"], "y"),
            ]),
        ),
        (
            "div_one",
            root(vec![
                node("Div", &["one", "root"], "r"),
                node("Mul", &["r", "x"], "n"),
                node("Mul", &["n", "gamma"], "y"),
            ]),
        ),
        (
            "divide",
            root(vec![
                node("Div", &["x", "root"], "n"),
                node("Mul", &["n", "gamma"], "y"),
            ]),
        ),
    ];
    let x: Vec<f32> = (0..2 * 12).map(|i| ((i * 7) % 11) as f32 / 3.0 - 1.5).collect();
    let want: Vec<f32> = x
        .chunks(4)
        .flat_map(|row| {
            let ms = row.iter().map(|v| v * v).sum::<f32>() / 4.0;
            let inv = 1.0 / (ms + epsilon).sqrt();
            row.iter()
                .zip(&gamma)
                .map(move |(v, g)| v * inv * g)
                .collect::<Vec<_>>()
        })
        .collect();
    let constants = || {
        vec![
            float_scalar("two", 2.0),
            float_scalar("eps", epsilon),
            float_scalar("one", 1.0),
            floats("gamma", &gamma),
        ]
    };
    let mut models: Vec<(&str, ModelProto)> = forms
        .into_iter()
        .map(|(name, nodes)| (name, graph_of(nodes, constants(), None, &[3, 4], &[3, 4])))
        .collect();
    let native = NodeProto {
        attribute: vec![strata::io::onnx::proto::AttributeProto {
            name: "epsilon".into(),
            r#type: 1,
            f: Some(epsilon),
            ..Default::default()
        }],
        ..node("RMSNormalization", &["x", "gamma"], "y")
    };
    let mut opset_23 = graph_of(vec![native], constants(), None, &[3, 4], &[3, 4]);
    opset_23.opset_import[0].version = 23;
    models.push(("opset 23", opset_23));
    for (name, model) in models {
        let mut imported = import(&model).unwrap_or_else(|e| panic!("{name}: {e}"));
        let classes: Vec<&str> = imported.layers().iter().map(|l| l.class_name()).collect();
        assert_eq!(classes, ["InputLayer", "RMSNormalization"], "{name}");
        let y = imported
            .predict(&Tensor::from_vec(vec![2, 3, 4], x.clone()).unwrap(), 2)
            .unwrap();
        let worst = y
            .data()
            .iter()
            .zip(&want)
            .map(|(a, b)| (a - b).abs())
            .fold(0f32, f32::max);
        assert!(worst < 1e-5, "{name}: {worst}");
    }
}

/// A tensor of `data_type` from its little-endian `raw` bytes.
fn raw_tensor(name: &str, data_type: i32, dims: &[i64], raw: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.to_vec(),
        data_type,
        raw_data: raw,
        name: name.into(),
        ..Default::default()
    }
}

/// `y = x · dequantize(w) + b` with `w` int8 (one scale and zero point per output column,
/// along axis 1) or uint8 (one for all), and the bias in float16 raw bytes or as int32
/// quantized by one scale: the weights as ONNX Runtime's `quantize_static` and `model.half()`
/// exports store them, dequantized at import (exactly: `(q − zero point) · scale` in f32).
#[test]
fn weights_stored_as_int8_uint8_or_float16_are_read() {
    use strata::io::onnx::proto::{FLOAT16, INT8, INT32, UINT8};
    let quantized: Vec<i8> = (0..18).map(|k| (k * 37 % 255 - 127) as i8).collect();
    let scales = [0.02f32, 0.5, 0.125];
    let zero_points = [3i8, -7, 0];
    let bias = [0.5f32, -1.25, 2.0];
    let x: Vec<f32> = (0..12).map(|k| k as f32 * 0.3 - 1.7).collect();
    let expected = |weights: &dyn Fn(usize, usize) -> f32| -> Vec<f32> {
        (0..2)
            .flat_map(|n| {
                let x = &x;
                (0..3).map(move |j| (0..6).map(|i| x[n * 6 + i] * weights(i, j)).sum::<f32>() + bias[j])
            })
            .collect()
    };
    let per_axis = |i: usize, j: usize| (quantized[i * 3 + j] as i64 - zero_points[j] as i64) as f32 * scales[j];
    let per_tensor = |i: usize, j: usize| (quantized[i * 3 + j] as u8 as i64 - 128) as f32 * 0.03;
    let f16_bias: Vec<u8> = bias
        .iter()
        .flat_map(|&b| half::f16::from_f32(b).to_bits().to_le_bytes())
        .collect();
    let int32_bias: Vec<u8> = bias.iter().flat_map(|&b| ((b / 0.25) as i32).to_le_bytes()).collect();
    type Weights<'a> = &'a dyn Fn(usize, usize) -> f32;
    let cases: [(&str, Vec<TensorProto>, bool, Weights); 2] = [
        (
            "int8 per axis, float16 bias",
            vec![
                raw_tensor("q", INT8, &[6, 3], quantized.iter().map(|&q| q as u8).collect()),
                TensorProto {
                    dims: vec![3],
                    data_type: 1,
                    float_data: scales.to_vec(),
                    name: "scale".into(),
                    ..Default::default()
                },
                raw_tensor("zero_point", INT8, &[3], zero_points.iter().map(|&z| z as u8).collect()),
                raw_tensor("b", FLOAT16, &[3], f16_bias),
            ],
            false,
            &per_axis,
        ),
        (
            "uint8 per tensor, int32 bias",
            vec![
                raw_tensor("q", UINT8, &[6, 3], quantized.iter().map(|&q| q as u8).collect()),
                float_scalar("scale", 0.03),
                raw_tensor("zero_point", UINT8, &[], vec![128]),
                raw_tensor("b_q", INT32, &[3], int32_bias),
                float_scalar("b_scale", 0.25),
            ],
            true,
            &per_tensor,
        ),
    ];
    for (what, initializers, quantized_bias, weights) in cases {
        let mut nodes = vec![
            node("DequantizeLinear", &["q", "scale", "zero_point"], "w"),
            node("MatMul", &["x", "w"], "xw"),
            node("Add", &["xw", "b"], "y"),
        ];
        if quantized_bias {
            nodes.insert(0, node("DequantizeLinear", &["b_q", "b_scale"], "b"));
        }
        let proto = graph_of(nodes, initializers, None, &[6], &[3]);
        let mut model = import(&proto).unwrap_or_else(|e| panic!("{what}: {e}"));
        let y = model
            .predict(&Tensor::from_vec(vec![2, 6], x.clone()).unwrap(), 2)
            .unwrap();
        for (got, want) in y.data().iter().zip(expected(weights)) {
            assert!(
                (got - want).abs() <= 1e-5 * want.abs().max(1.0),
                "{what}: {got} against {want}"
            );
        }
    }
}

/// What strata cannot dequantize is named: scales by blocks, and scales that fit no axis.
#[test]
fn dequantizing_by_blocks_or_mismatched_scales_is_refused_by_name() {
    let weights = raw_tensor("q", 3, &[6, 3], vec![1; 18]);
    let blocked = NodeProto {
        attribute: vec![AttributeProto {
            name: "block_size".into(),
            i: Some(2),
            r#type: 2,
            ..Default::default()
        }],
        ..node("DequantizeLinear", &["q", "scale"], "w")
    };
    let scales = |count: usize| TensorProto {
        dims: vec![count as i64],
        data_type: 1,
        float_data: vec![0.5; count],
        name: "scale".into(),
        ..Default::default()
    };
    let cases = [
        (blocked, scales(3), "block_size"),
        (
            node("DequantizeLinear", &["q", "scale"], "w"),
            scales(4),
            "4 scales for axis 1",
        ),
    ];
    for (dequantize, scale, expected) in cases {
        let nodes = vec![dequantize, node("MatMul", &["x", "w"], "y")];
        let proto = graph_of(nodes, vec![weights.clone(), scale], None, &[6], &[3]);
        let Err(error) = import(&proto) else {
            panic!("{expected}: imported")
        };
        let error = error.to_string();
        assert!(
            error.contains("DequantizeLinear") && error.contains(expected),
            "{error}"
        );
    }
}

/// A graph in float16 throughout (as `model.half()` exports it: inputs, weights and a `Cast`
/// back to float at the end) is computed in f32: the float16 weights' values exactly.
#[test]
fn a_float16_graph_is_computed_in_f32() {
    use strata::io::onnx::proto::FLOAT16;
    let weights: Vec<f32> = (0..18).map(|k| k as f32 * 0.125 - 1.0).collect();
    let bits: Vec<u8> = weights
        .iter()
        .flat_map(|&w| half::f16::from_f32(w).to_bits().to_le_bytes())
        .collect();
    let cast = NodeProto {
        attribute: vec![AttributeProto {
            name: "to".into(),
            i: Some(1),
            r#type: 2,
            ..Default::default()
        }],
        ..node("Cast", &["xw"], "y")
    };
    let nodes = vec![node("MatMul", &["x", "w"], "xw"), cast];
    let mut proto = graph_of(nodes, vec![raw_tensor("w", FLOAT16, &[6, 3], bits)], None, &[6], &[3]);
    let graph = proto.graph.as_mut().unwrap();
    graph.input[0]
        .r#type
        .as_mut()
        .unwrap()
        .tensor_type
        .as_mut()
        .unwrap()
        .elem_type = FLOAT16;
    let mut model = import(&proto).unwrap_or_else(|e| panic!("{e}"));
    let x: Vec<f32> = (0..6).map(|k| k as f32 - 2.5).collect();
    let y = model
        .predict(&Tensor::from_vec(vec![1, 6], x.clone()).unwrap(), 1)
        .unwrap();
    for (j, got) in y.data().iter().enumerate() {
        let want: f32 = (0..6).map(|i| x[i] * weights[i * 3 + j]).sum();
        assert!((got - want).abs() < 1e-5, "{got} against {want}");
    }
}

/// `Expand` of a computed tensor (`x.unsqueeze(1).expand(-1, 4, -1)`, strata's `RepeatVector`
/// export) repeats its axes of size 1: a sequence of one step made four, and an image's row
/// made five (held channels-last), the batch axis left alone; an axis of another size than 1
/// is refused by name.
#[test]
fn expanding_computed_axes_of_one_repeats_them() {
    // (N, 6) → (N, 1, 6) → (N, 4, 6).
    let nodes = vec![
        node("Unsqueeze", &["x", "axes"], "step"),
        node("Expand", &["step", "shape"], "y"),
    ];
    let constants = vec![ints("axes", &[1], &[1]), ints("shape", &[3], &[1, 4, 1])];
    let mut model = import(&graph_of(nodes, constants, None, &[6], &[4, 6])).unwrap_or_else(|e| panic!("{e}"));
    let x: Vec<f32> = (0..12).map(|k| k as f32 - 5.5).collect();
    let y = model
        .predict(&Tensor::from_vec(vec![2, 6], x.clone()).unwrap(), 2)
        .unwrap();
    assert_eq!(y.shape(), [2, 4, 6]);
    for (k, got) in y.data().iter().enumerate() {
        assert_eq!(*got, x[(k / 24) * 6 + k % 6], "value {k}");
    }
    // An image (N, 2, 1, 3) (strata: (N, 1, 3, 2)) expanded to (N, 2, 5, 3): strata's (5, 3, 2).
    let nodes = vec![node("Relu", &["x"], "r"), node("Expand", &["r", "shape"], "y")];
    let constants = vec![ints("shape", &[4], &[1, 2, 5, 3])];
    let mut model = import(&graph_of(nodes, constants, None, &[2, 1, 3], &[2, 5, 3])).unwrap_or_else(|e| panic!("{e}"));
    let x: Vec<f32> = (0..6).map(|k| k as f32 * 0.5).collect();
    let y = model
        .predict(&Tensor::from_vec(vec![1, 1, 3, 2], x.clone()).unwrap(), 1)
        .unwrap();
    assert_eq!(y.shape(), [1, 5, 3, 2]);
    for (k, got) in y.data().iter().enumerate() {
        assert_eq!(*got, x[k % 6], "image value {k}");
    }
    // Axis 2 has 6 values: it cannot become 3.
    let nodes = vec![
        node("Unsqueeze", &["x", "axes"], "step"),
        node("Expand", &["step", "shape"], "y"),
    ];
    let constants = vec![ints("axes", &[1], &[1]), ints("shape", &[3], &[1, 4, 3])];
    let Err(error) = import(&graph_of(nodes, constants, None, &[6], &[4, 3])) else {
        panic!("an Expand of 6 values to 3 imported")
    };
    let error = error.to_string();
    assert!(
        error.contains("Expand") && error.contains("size 6 cannot become 3"),
        "{error}"
    );
    // A sample of 6 · 2⁴⁰ values is refused before anything that size is made.
    let nodes = vec![
        node("Unsqueeze", &["x", "axes"], "step"),
        node("Expand", &["step", "shape"], "y"),
    ];
    let constants = vec![ints("axes", &[1], &[1]), ints("shape", &[3], &[1, 1 << 40, 1])];
    let Err(error) = import(&graph_of(nodes, constants, None, &[6], &[1 << 40, 6])) else {
        panic!("an Expand to 2⁴⁰ steps imported")
    };
    assert!(error.to_string().contains("budget"), "{error}");
}

/// A model of strata's sequence layers exported to ONNX imports back and predicts the same:
/// `RepeatVector` (exported as `Expand`), `UpSampling1D`, the 1-D poolings on `(N, C, L)` as
/// PyTorch's `MaxPool1d` / `AvgPool1d` write them ("valid" and Keras's "same"), and the global
/// ones.
#[test]
fn sequence_pooling_and_repeats_make_the_round_trip_through_onnx() {
    use strata::layers::{AveragePooling1D, GlobalAveragePooling1D, GlobalMaxPooling1D, MaxPooling1D, RepeatVector};
    let inputs = Input::node(&[6]);
    let x = Dense::new(5).activation("tanh").call(&inputs).unwrap();
    let steps = RepeatVector::new(7).call(&x).unwrap();
    let steps = Dense::new(4).activation("relu").call(&steps).unwrap();
    let steps = strata::layers::UpSampling1D::new(2).call(&steps).unwrap();
    let averaged = AveragePooling1D::new(3).padding("same").call(&steps).unwrap();
    let largest = MaxPooling1D::new(2).call(&steps).unwrap();
    let averaged = GlobalMaxPooling1D::new().call(&averaged).unwrap();
    let largest = GlobalAveragePooling1D::new().call(&largest).unwrap();
    let outputs = Concatenate::new(-1).call_many(&[&averaged, &largest]).unwrap();
    let mut model = Model::functional(&inputs, &outputs).unwrap();
    model.compile("sgd", "mse", &[]).unwrap();
    let folder = std::env::temp_dir().join(format!("strata-sequence-round-trip-{}", std::process::id()));
    std::fs::create_dir_all(&folder).unwrap();
    let path = folder.join("sequence.onnx");
    model.save_onnx(&path).unwrap();
    let mut imported = strata::io::load_onnx(&path).unwrap_or_else(|e| panic!("{e}"));
    let x = Tensor::from_vec(vec![3, 6], (0..18).map(|k| (k as f32 * 0.7).sin()).collect()).unwrap();
    let (want, got) = (model.predict(&x, 3).unwrap(), imported.predict(&x, 3).unwrap());
    assert_eq!(got.shape(), want.shape());
    for (g, w) in got.data().iter().zip(want.data()) {
        assert!((g - w).abs() < 1e-5, "{g} against {w}");
    }
    let classes: Vec<&str> = imported.layers().iter().map(|l| l.class_name()).collect();
    for class in ["MaxPooling1D", "AveragePooling1D", "UpSampling2D"] {
        assert!(classes.contains(&class), "{class} in {classes:?}");
    }
    std::fs::remove_dir_all(&folder).ok();
}

/// `InstanceNormalization` (`nn.InstanceNorm2d(affine=True)` as exported) on an image held
/// channels-last: each channel of each sample normalized over its positions, then scaled and
/// shifted (`GroupNormalization(groups=-1)`).
#[test]
fn instance_normalization_imports_as_one_group_per_channel() {
    let floats = |name: &str, values: &[f32]| TensorProto {
        dims: vec![values.len() as i64],
        data_type: 1,
        float_data: values.to_vec(),
        name: name.into(),
        ..Default::default()
    };
    let norm = NodeProto {
        attribute: vec![AttributeProto {
            name: "epsilon".into(),
            f: Some(1e-5),
            r#type: 1,
            ..Default::default()
        }],
        ..node("InstanceNormalization", &["x", "scale", "bias"], "y")
    };
    let (scale, bias) = ([2.0f32, -0.5], [0.25f32, 1.0]);
    let constants = vec![floats("scale", &scale), floats("bias", &bias)];
    let proto = graph_of(vec![norm], constants, None, &[2, 3, 2], &[2, 3, 2]);
    let mut model = import(&proto).unwrap_or_else(|e| panic!("{e}"));
    let classes: Vec<&str> = model.layers().iter().map(|l| l.class_name()).collect();
    assert!(classes.contains(&"GroupNormalization"), "{classes:?}");
    // Strata's (N, 3, 2, 2): channel c of sample n at positions p is x[n, p, c].
    let x: Vec<f32> = (0..24).map(|k| ((k * 7 % 11) as f32).powf(1.3)).collect();
    let y = model
        .predict(&Tensor::from_vec(vec![2, 3, 2, 2], x.clone()).unwrap(), 2)
        .unwrap();
    for n in 0..2 {
        for c in 0..2 {
            let values: Vec<f32> = (0..6).map(|p| x[n * 12 + p * 2 + c]).collect();
            let mean = values.iter().sum::<f32>() / 6.0;
            let variance = values.iter().map(|v| (v - mean).powi(2)).sum::<f32>() / 6.0;
            for (p, v) in values.iter().enumerate() {
                let want = (v - mean) / (variance + 1e-5).sqrt() * scale[c] + bias[c];
                let got = y.data()[n * 12 + p * 2 + c];
                assert!(
                    (got - want).abs() < 1e-4,
                    "sample {n}, channel {c}, position {p}: {got} against {want}"
                );
            }
        }
    }
}
