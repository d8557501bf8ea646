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
per-row model, whose "output" is the f32 model holding the dequantized weights). Needs
onnxruntime, onnx and numpy (a throwaway venv: see the README's ONNX section).
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime

TOLERANCE = 1e-5


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
    ok = (
        got.shape == expected.shape
        and error(written, expected) <= record["tolerance"]
        and error(got, int8) <= record["optimized_tolerance"]
    )
    print(
        f"{onnx_path.stem}: output {got.shape}, as written {error(written, expected):.2e} "
        f"(tolerance {record['tolerance']:.0e}), fused by ONNX Runtime vs strata's int8 predict "
        f"{error(got, int8):.2e} (tolerance {record['optimized_tolerance']:.0e}), as written vs "
        f"int8 {error(written, int8):.2e} [{record.get('note', '')}] {'ok' if ok else 'FAILED'}"
    )
    return ok


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
