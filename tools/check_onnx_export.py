"""Runs strata's exported ONNX files with ONNX Runtime and compares with strata's predictions.

    cargo run --release --example onnx_parity -- DIR
    python tools/check_onnx_export.py DIR

DIR holds NAME.onnx and NAME.json (the input and strata's output) per model, as the example
writes them. Each file is also checked with onnx.checker. Exits 1 when an output differs from
strata's by more than the record's "tolerance" (1e-5 when it gives none; absolute, or relative
to values above 1) or a file is invalid. A quantized model exported weights-only (per-row int8:
ONNX has no per-row dynamic quantization) also carries strata's int8 output, "int8_output",
which ONNX Runtime must be within "int8_tolerance" of: the figure is how far the exported graph
is from strata's int8 predict. Needs onnxruntime, onnx and numpy (a throwaway venv: see the
README's ONNX section).
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


def check(onnx_path: pathlib.Path) -> bool:
    record = json.loads(onnx_path.with_suffix(".json").read_text())
    onnx.checker.check_model(onnx.load(str(onnx_path)), full_check=True)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.asarray(record["input"], dtype=np.float32).reshape(record["input_shape"])
    expected = np.asarray(record["output"], dtype=np.float32).reshape(record["output_shape"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    tolerance = record.get("tolerance", TOLERANCE)
    ok = got.shape == expected.shape and error(got, expected) <= tolerance
    line = f"{onnx_path.stem}: output {got.shape}, max error {error(got, expected):.2e} (tolerance {tolerance:.0e})"
    if "int8_output" in record:
        int8 = np.asarray(record["int8_output"], dtype=np.float32).reshape(record["output_shape"])
        int8_ok = error(got, int8) <= record["int8_tolerance"]
        ok = ok and int8_ok
        line += f", vs strata's int8 predict {error(got, int8):.2e} (tolerance {record['int8_tolerance']:.0e})"
    if "note" in record:
        line += f" [{record['note']}]"
    print(f"{line} {'ok' if ok else 'FAILED'}")
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
