"""Runs strata's exported ONNX files with ONNX Runtime and compares with strata's predictions.

    cargo run --release --example onnx_parity -- DIR
    python tools/check_onnx_export.py DIR

DIR holds NAME.onnx and NAME.json (the input and strata's output) per model, as the example
writes them. Each file is also checked with onnx.checker. Exits 1 when an output differs from
strata's by more than the record's "tolerance" (1e-5 when it gives none; absolute, or relative
to values above 1) or a file is invalid. A quantized (QDQ) file's record gives its own
"tolerance" for the graph as written (ONNX Runtime without graph optimizations) against
"output", and "optimized_tolerance" for ONNX Runtime's default run, which fuses the graph into
its own int8 kernels, against strata's int8 predict ("int8_output" for a weights-only file of a
per-row model, whose "output" is the f32 model holding the dequantized weights; reported but
not enforced on an AVX2 CPU without VNNI, where ONNX Runtime's int8 sums saturate). A record with
"fused" (calibrated files) also has ONNX Runtime's optimized graph checked: no float `Conv`,
`Gemm` or `MatMul` left, each fused into an int8 operator (`QLinearConv`, `QGemm`, ...). Needs
onnxruntime, onnx and numpy (a throwaway venv: see the README's ONNX section).
"""

import json
import pathlib
import sys
import tempfile

import numpy as np
import onnx
import onnxruntime

TOLERANCE = 1e-5

# Operators that multiply in float: none may remain where the export is meant to be fused.
FLOAT_PRODUCTS = {"Conv", "Gemm", "MatMul", "FusedConv", "FusedGemm", "FusedMatMul", "MatMulNBits"}


def optimized_ops(onnx_path: pathlib.Path) -> list[str]:
    """The operators of ONNX Runtime's optimized graph (its default level), as it saves it."""
    with tempfile.TemporaryDirectory() as folder:
        options = onnxruntime.SessionOptions()
        options.optimized_model_filepath = str(pathlib.Path(folder) / "optimized.onnx")
        onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        return [node.op_type for node in onnx.load(options.optimized_model_filepath).graph.node]


def fused(onnx_path: pathlib.Path) -> bool:
    """Whether ONNX Runtime runs every product of the file on its int8 kernels."""
    ops = optimized_ops(onnx_path)
    left = sorted(op for op in ops if op in FLOAT_PRODUCTS)
    int8 = sorted(op for op in ops if op.startswith("Q") and op not in ("QuantizeLinear",))
    ok = not left and bool(int8)
    print(f"{onnx_path.stem}: ONNX Runtime's optimized graph: int8 {int8}, float products {left} {'ok' if ok else 'FAILED'}")
    return ok


def saturating_int8_products() -> bool:
    """Whether ONNX Runtime's fused int8 kernels round differently on this CPU: x86 with AVX2
    and no VNNI, where its u8 x s8 products are summed in pairs into saturating 16-bit lanes
    (`vpmaddubsw`), so a pair above 32767 is clipped (why onnxruntime.quantization offers
    `reduce_range`). strata's int8 predict sums exactly; the file as written is still checked."""
    try:
        flags = pathlib.Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return "avx2" in flags and not any(vnni in flags for vnni in ("avx512_vnni", "avx_vnni"))


SATURATING = saturating_int8_products()


def error(got: np.ndarray, expected: np.ndarray) -> float:
    """The largest difference, relative to values above 1."""
    return float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))


def run(onnx_path: pathlib.Path, x: np.ndarray, optimized: bool) -> np.ndarray:
    """ONNX Runtime's output, with its default graph optimizations or with none."""
    options = onnxruntime.SessionOptions()
    if not optimized:
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_DISABLE_ALL
    session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    return got


def check(onnx_path: pathlib.Path) -> bool:
    record = json.loads(onnx_path.with_suffix(".json").read_text())
    onnx.checker.check_model(onnx.load(str(onnx_path)), full_check=True)
    x = np.asarray(record["input"], dtype=np.float32).reshape(record["input_shape"])
    shape = record["output_shape"]
    expected = np.asarray(record["output"], dtype=np.float32).reshape(shape)
    got = run(onnx_path, x, optimized=True)
    if "optimized_tolerance" not in record:
        ok = got.shape == expected.shape and error(got, expected) <= TOLERANCE
        print(f"{onnx_path.stem}: output {got.shape}, max error {error(got, expected):.2e} {'ok' if ok else 'FAILED'}")
        return ok
    # A QDQ file: as written (no optimizations) against "output", fused against strata's int8.
    written = run(onnx_path, x, optimized=False)
    int8 = np.asarray(record.get("int8_output", record["output"]), dtype=np.float32).reshape(shape)
    fused_close = error(got, int8) <= record["optimized_tolerance"]
    ok = got.shape == expected.shape and error(written, expected) <= record["tolerance"] and (fused_close or SATURATING)
    not_enforced = " not enforced: this CPU has AVX2 without VNNI" if SATURATING and not fused_close else ""
    print(
        f"{onnx_path.stem}: output {got.shape}, as written {error(written, expected):.2e} "
        f"(tolerance {record['tolerance']:.0e}), fused by ONNX Runtime vs strata's int8 predict "
        f"{error(got, int8):.2e} (tolerance {record['optimized_tolerance']:.0e}{not_enforced}), as written vs "
        f"int8 {error(written, int8):.2e} [{record.get('note', '')}] {'ok' if ok else 'FAILED'}"
    )
    # A calibrated file is meant to run on ONNX Runtime's int8 kernels: no float product left.
    return fused(onnx_path) and ok if record.get("fused") else ok


def main() -> int:
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "onnx-parity")
    files = sorted(folder.glob("*.onnx"))
    if not files:
        print(f"no .onnx files in {folder}")
        return 1
    results = [check(path) for path in files]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
