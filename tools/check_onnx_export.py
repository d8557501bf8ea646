"""Runs strata's exported ONNX files with ONNX Runtime and compares with strata's predictions.

    cargo run --release --example onnx_parity -- DIR
    python tools/check_onnx_export.py DIR

DIR holds NAME.onnx and NAME.json (the input and strata's output) per model, as the example
writes them. Each file is also checked with onnx.checker. Exits 1 when an output differs from
strata's by more than 1e-5 (absolute, or relative to values above 1) or a file is invalid.
Needs onnxruntime, onnx and numpy (a throwaway venv: see the README's ONNX section).
"""

import json
import pathlib
import sys

import numpy as np
import onnx
import onnxruntime

TOLERANCE = 1e-5


def check(onnx_path: pathlib.Path) -> bool:
    record = json.loads(onnx_path.with_suffix(".json").read_text())
    onnx.checker.check_model(onnx.load(str(onnx_path)), full_check=True)
    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    x = np.asarray(record["input"], dtype=np.float32).reshape(record["input_shape"])
    expected = np.asarray(record["output"], dtype=np.float32).reshape(record["output_shape"])
    (got,) = session.run(None, {session.get_inputs()[0].name: x})
    error = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
    ok = got.shape == expected.shape and error <= TOLERANCE
    print(f"{onnx_path.stem}: output {got.shape}, max error {error:.2e} {'ok' if ok else 'FAILED'}")
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
