"""Writes ONNX models without their weight values: the graph of a torchvision classifier in a
few tens of kilobytes instead of tens of megabytes, small enough to commit as a fixture.

    python tools/strip_onnx_weights.py OUT_DIR MODEL.onnx [MODEL.onnx ...]

Each weight initializer keeps its name, data type and dims but loses its values (the
TensorProto holds no data, and its doc_string is STRIPPED); tools/check_onnx_import_torchvision.py
puts seeded random values back. A float initializer is a weight when a convolution, Gemm,
MatMul or normalization reads it past its first input, or when it holds more than KEPT values;
the other initializers (shapes, axes, pads, the scalars of Clip and of arithmetic with
constants) keep their values, since the graph means something else without them. value_info
(intermediate shapes, which ONNX Runtime and strata infer), doc strings and the nodes'
metadata_props are dropped. Needs
only `onnx`.
"""

import os
import sys

import onnx

# Marks a stripped initializer (its doc_string).
STRIPPED = "strata: values stripped by tools/strip_onnx_weights.py"
# Float initializers of at most this many values that no weight input reads keep their values.
KEPT = 64
# Operators whose inputs after the first are weights (kernel, bias, scale, statistics).
WEIGHT_READERS = {
    "Conv",
    "ConvTranspose",
    "Gemm",
    "MatMul",
    "BatchNormalization",
    "InstanceNormalization",
    "LayerNormalization",
    "PRelu",
}
FLOAT_TYPES = {
    onnx.TensorProto.FLOAT,
    onnx.TensorProto.DOUBLE,
    onnx.TensorProto.FLOAT16,
    onnx.TensorProto.BFLOAT16,
}


def readers(graph):
    """For each tensor name, the [(node, input index)] that read it, looking through `Identity`
    nodes (the TorchScript exporter shares a weight between layers by an Identity of it)."""
    direct = {}
    for node in graph.node:
        for index, name in enumerate(node.input):
            direct.setdefault(name, []).append((node, index))
    def through(name, depth=0):
        found = []
        for node, index in direct.get(name, []):
            if node.op_type == "Identity" and depth < 16:
                found += through(node.output[0], depth + 1)
            else:
                found.append((node, index))
        return found
    return {name: through(name) for name in direct}


def weight_inputs(graph):
    """Names that some node reads as a weight (an input after the first of WEIGHT_READERS)."""
    return {name for name, uses in readers(graph).items()
            if any(node.op_type in WEIGHT_READERS and index > 0 for node, index in uses)}


def strip(model, source=""):
    """`model` with its weight initializers reduced to name, type and dims (in place); returns
    how many values were dropped."""
    graph = model.graph
    weights = weight_inputs(graph)
    dropped = 0
    for index, tensor in enumerate(graph.initializer):
        if tensor.data_location == onnx.TensorProto.EXTERNAL:
            raise ValueError(f"{tensor.name}: external data (load the model with its data first)")
        count = 1
        for d in tensor.dims:
            count *= d
        if tensor.data_type not in FLOAT_TYPES or (tensor.name not in weights and count <= KEPT):
            continue
        description = onnx.TensorProto(name=tensor.name, data_type=tensor.data_type, dims=tensor.dims,
                                       doc_string=STRIPPED)
        graph.initializer[index].CopyFrom(description)
        dropped += count
    del graph.value_info[:]
    graph.doc_string = ""
    for node in graph.node:
        node.doc_string = ""
        # The torch.export exporter's per-node provenance (module path, FX node, rewrite rules):
        # most of the graph's bytes, none of its meaning.
        del node.metadata_props[:]
    entry = model.metadata_props.add()
    entry.key = "strata.stripped"
    entry.value = f"{dropped} weight values stripped" + (f" from {source}" if source else "")
    return dropped


def is_stripped(tensor):
    """Whether `tensor` is an initializer `strip` emptied."""
    return tensor.doc_string == STRIPPED


def main():
    if len(sys.argv) < 3:
        print(__doc__)
        return 1
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    for path in sys.argv[2:]:
        model = onnx.load(path)
        dropped = strip(model, os.path.basename(path))
        out = os.path.join(folder, os.path.basename(path))
        onnx.save(model, out)
        print(f"{out}: {os.path.getsize(out)} bytes ({dropped} weight values stripped)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
