"""Rebuilds the stripped torchvision graphs with seeded random weights, for the import parity
check in CI (no PyTorch: `onnx`, `onnxruntime` and `numpy` only).

    python tools/check_onnx_import_torchvision.py tests/fixtures/onnx_torchvision OUT [NAME ...]
    STRATA_ONNX_LARGE=OUT cargo test --release --test onnx_import -- --ignored --nocapture

FIXTURES holds graphs written by `tools/onnx_import_fixtures.py --torchvision` (weights
stripped by tools/strip_onnx_weights.py). For each (or each NAME) this writes OUT/NAME.onnx
with random weights, OUT/NAME.input.npy (two random NCHW images) and OUT/NAME.output.npy (ONNX
Runtime's output for them) and, where onnx's reference evaluator can run the graph,
OUT/NAME.exact.npy (the same graph evaluated in float64): the layout the ignored test of
tests/onnx_import.rs reads, which then runs strata on them and compares within 1e-4.

The float64 evaluation is there because a float32 answer is only known to within its own
rounding: with these random weights mobilenet_v3_large's logits from ONNX Runtime are 5e-5 off
the float64 ones (the others about 1e-6), so two correct float32 engines can differ by more
than 1e-4 there. The test holds strata to 1e-4 of the float64 answer, and to 1e-4 of ONNX
Runtime's plus ONNX Runtime's own distance from it.

The weights are drawn so that the outputs say something: kernels He-uniform (bound
sqrt(6 / fan_in), which keeps the scale of activations through ReLU networks), biases within
+-0.1, BatchNormalization scales in [0.5, 1.5], shifts and means of deviation 0.2 and 0.3,
variances in [0.5, 1.5] (positive). The last Conv or Gemm (reached from the output through
ReLU, pooling and flattening, which scale with it) is then scaled so the logits have a standard
deviation of 1, so the 1e-4 tolerance is one of about 1e-4 relative. Exits 1 when a graph does
not check or its outputs are not finite, constant or the same for both images.
"""

import os
import sys
import time
import zlib

import numpy as np
import onnx
import onnxruntime
from onnx import TensorProto, numpy_helper
from onnx.reference import ReferenceEvaluator

from strip_onnx_weights import is_stripped, readers

# Operators through which an output scales exactly with the last Conv or Gemm before it.
SCALING = {"Relu", "GlobalAveragePool", "AveragePool", "MaxPool", "Flatten", "Reshape", "Identity", "Dropout"}


def fan_in(op, index, dims, node):
    """The number of inputs each output of weight `index` of `node` sums, or None when that
    input is not a kernel."""
    if index != 1 or len(dims) < 2:
        return None
    if op == "Conv":
        return int(np.prod(dims[1:]))
    if op == "ConvTranspose":
        return int(dims[0] * np.prod(dims[2:]))
    if op == "Gemm":
        trans_b = next((a.i for a in node.attribute if a.name == "transB"), 0)
        return int(dims[1] if trans_b else dims[0])
    if op == "MatMul":
        return int(dims[-2])
    return None


def draw(rng, tensor, uses):
    """Random values for stripped `tensor`, by what reads it: [(node, input index)]."""
    dims = list(tensor.dims)
    dtype = onnx.helper.tensor_dtype_to_np_dtype(tensor.data_type)
    for node, index in uses:
        op = node.op_type
        fan = fan_in(op, index, dims, node)
        if fan:
            bound = np.sqrt(6.0 / fan)
            return rng.uniform(-bound, bound, dims).astype(dtype)
        if op in ("Conv", "ConvTranspose", "Gemm") and index == 2:
            return rng.uniform(-0.1, 0.1, dims).astype(dtype)
        if op == "BatchNormalization" and index in (1, 4):  # scale, variance: positive
            return rng.uniform(0.5, 1.5, dims).astype(dtype)
        if op == "BatchNormalization" and index in (2, 3):  # shift, mean
            return (rng.standard_normal(dims) * (0.2 if index == 2 else 0.3)).astype(dtype)
    print(f"  {tensor.name}: read by {[n.op_type for n, _ in uses]}, drawn with deviation 0.1")
    return (rng.standard_normal(dims) * 0.1).astype(dtype)


def rebuild(model, rng):
    """Gives every stripped initializer of `model` random values (in place); returns their count."""
    graph = model.graph
    uses = readers(graph)
    count = 0
    for position, tensor in enumerate(graph.initializer):
        if is_stripped(tensor):
            values = draw(rng, tensor, uses.get(tensor.name, []))
            graph.initializer[position].CopyFrom(numpy_helper.from_array(values, tensor.name))
            count += values.size
    return count


def last_linear(graph):
    """The Conv or Gemm whose weights scale the (first) output exactly, and its weight and bias
    initializer names; None when something else comes between."""
    producers = {output: node for node in graph.node for output in node.output}
    initializers = {t.name for t in graph.initializer}
    node = producers.get(graph.output[0].name)
    while node is not None and node.op_type in SCALING:
        node = producers.get(node.input[0])
    if node is None or node.op_type not in ("Conv", "Gemm"):
        return None
    if node.op_type == "Gemm" and any(a.name == "beta" and a.f != 1.0 for a in node.attribute):
        return None
    names = [name for name in node.input[1:3] if name in initializers]
    return node if len(names) == len(node.input[1:]) else None


def scale_initializers(graph, names, factor):
    """Multiplies the initializers `names` of `graph` by `factor`."""
    for position, tensor in enumerate(graph.initializer):
        if tensor.name in names:
            values = numpy_helper.to_array(tensor) * factor
            graph.initializer[position].CopyFrom(numpy_helper.from_array(values, tensor.name))


def run(path, x):
    """ONNX Runtime's output for `x`."""
    session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
    (output,) = session.run(None, {session.get_inputs()[0].name: x})
    return output


def widen_to_float64(model):
    """Makes `model` compute in float64, in place (no copy: VGG's weights alone are 530 MB):
    initializers, constants, casts and declared types."""
    graph = model.graph

    def widen(tensor):
        return numpy_helper.from_array(numpy_helper.to_array(tensor).astype(np.float64), tensor.name)

    for i, tensor in enumerate(graph.initializer):
        if tensor.data_type == TensorProto.FLOAT:
            graph.initializer[i].CopyFrom(widen(tensor))
    for value in list(graph.input) + list(graph.output) + list(graph.value_info):
        if value.type.tensor_type.elem_type == TensorProto.FLOAT:
            value.type.tensor_type.elem_type = TensorProto.DOUBLE
    for node in graph.node:
        for attribute in node.attribute:
            if attribute.name == "value" and attribute.t.data_type == TensorProto.FLOAT:
                attribute.t.CopyFrom(widen(attribute.t))
            if node.op_type == "Cast" and attribute.name == "to" and attribute.i == TensorProto.FLOAT:
                attribute.i = TensorProto.DOUBLE


def exact(model, x):
    """`model`'s output for `x` evaluated in float64 by onnx's reference evaluator, or None
    (with the reason printed) where it cannot run the graph. Widens `model` in place."""
    try:
        widen_to_float64(model)
        (output,) = ReferenceEvaluator(model).run(None, {model.graph.input[0].name: x.astype(np.float64)})
        return output
    except Exception as error:  # the reference evaluator's gaps are many and untyped
        print(f"  no float64 evaluation: {type(error).__name__}: {str(error).splitlines()[0][:200]}")
        return None


def check(fixtures, out, name):
    """Rebuilds fixture `name` into `out`; returns whether its outputs are usable."""
    start = time.perf_counter()
    model = onnx.load(os.path.join(fixtures, name + ".onnx"))
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    weights = rebuild(model, rng)
    onnx.checker.check_model(model)
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    x = rng.standard_normal([2] + dims[1:]).astype(np.float32)
    path = os.path.join(out, name + ".onnx")
    onnx.save(model, path)
    output = run(path, x)
    node = last_linear(model.graph)
    raw_deviation = float(np.std(output))
    if node is not None and np.isfinite(raw_deviation) and raw_deviation > 0:
        scale_initializers(model.graph, set(node.input[1:3]), 1.0 / raw_deviation)
        onnx.save(model, path)
        output = run(path, x)
    finite = bool(np.all(np.isfinite(output)))
    varied = finite and float(np.std(output)) > 1e-3 and float(np.max(np.abs(output[0] - output[1]))) > 1e-3
    np.save(os.path.join(out, name + ".input.npy"), x)
    np.save(os.path.join(out, name + ".output.npy"), output.astype(np.float32))
    ok = finite and varied
    print(f"{name}: {weights} random weights, input {x.shape}, output {output.shape} of deviation "
          f"{np.std(output):.3g} (before scaling {raw_deviation:.3g}), {time.perf_counter() - start:.1f} s"
          f"{'' if ok else ': FAILED (outputs not finite, constant or equal for both images)'}")
    reference = exact(model, x) if ok else None  # last: it widens `model` to float64
    exact_path = os.path.join(out, name + ".exact.npy")
    if reference is None and os.path.exists(exact_path):
        os.remove(exact_path)  # a stale one from an earlier run
    if reference is not None:
        np.save(exact_path, np.ascontiguousarray(reference))
        print(f"  ONNX Runtime's output is {np.max(np.abs(output - reference)):.3g} from the float64 one")
    return ok


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 1
    fixtures, out = sys.argv[1], sys.argv[2]
    names = sys.argv[3:] or sorted(f[: -len(".onnx")] for f in os.listdir(fixtures) if f.endswith(".onnx"))
    if not names:
        print(f"no .onnx files in {fixtures}")
        return 1
    os.makedirs(out, exist_ok=True)
    results = [check(fixtures, out, name) for name in names]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
