"""ONNX Runtime's f32 and dynamic-int8 inference of strata's exported models, for the int8
comparison in docs/PERFORMANCE.md.

    cargo run --release --example int8_speed -- 50 /tmp/int8-bench     # saves mlp, cnn
    strata export --model /tmp/int8-bench/mlp.safetensors -o /tmp/int8-bench/mlp.onnx
    strata export --model /tmp/int8-bench/cnn.safetensors -o /tmp/int8-bench/cnn.onnx
    /tmp/onnxvenv/bin/python tools/int8_onnx_bench.py /tmp/int8-bench [THREADS] [ROUNDS]

strata's own QDQ exports of the quantized models are timed too when the folder holds them
(`NAME-qdq.onnx`, per-row int8, weights-only; `NAME-qdq-static.onnx`, calibrated):

    strata quantize --model /tmp/int8-bench/cnn.safetensors -o /tmp/int8-bench/cnn-int8.safetensors
    strata export --model /tmp/int8-bench/cnn-int8.safetensors -o /tmp/int8-bench/cnn-qdq.onnx
    strata quantize --model /tmp/int8-bench/cnn.safetensors --calibrate 200 -o /tmp/int8-bench/cnn-static.safetensors
    strata export --model /tmp/int8-bench/cnn-static.safetensors -o /tmp/int8-bench/cnn-qdq-static.onnx

Each model is quantized with `onnxruntime.quantization.quantize_dynamic` (int8 weights,
activations quantized per tensor on the fly, as ORT's dynamic quantization does) and timed
at batch 32 and batch 1 beside the f32 graph: the median of ROUNDS runs after two warm-ups.
"""

import statistics
import sys
import time
from pathlib import Path

import numpy as np
import onnxruntime as ort
from onnxruntime.quantization import QuantType, quantize_dynamic


def median_ms(session, x, rounds):
    name = session.get_inputs()[0].name
    for _ in range(2):
        session.run(None, {name: x})
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        session.run(None, {name: x})
        times.append((time.perf_counter() - start) * 1e3)
    return statistics.median(times)


def main():
    folder = Path(sys.argv[1])
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    rounds = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    for name, shape in [("mlp", (784,)), ("cnn", (28, 28, 1))]:
        f32_path = folder / f"{name}.onnx"
        int8_path = folder / f"{name}-int8.onnx"
        quantize_dynamic(str(f32_path), str(int8_path), weight_type=QuantType.QInt8)
        sessions = [
            ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            for path in (f32_path, int8_path)
        ]
        for batch in (32, 1):
            x = (np.arange(batch * np.prod(shape)) * 7919 % 256 / 255.0).astype(np.float32)
            x = x.reshape((batch, *shape))
            f32_ms, int8_ms = (median_ms(s, x, rounds) for s in sessions)
            print(
                f"onnxruntime {name} batch {batch:>2}: f32 {f32_ms:.3f} ms, "
                f"int8 (quantize_dynamic) {int8_ms:.3f} ms ({f32_ms / int8_ms:.2f}x)"
            )
            for variant in ("qdq", "qdq-static"):
                path = folder / f"{name}-{variant}.onnx"
                if path.exists():
                    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
                    ms = median_ms(session, x, rounds)
                    print(f"onnxruntime {name} batch {batch:>2}: strata's {variant} export {ms:.3f} ms ({f32_ms / ms:.2f}x)")
        print(f"onnx files: f32 {f32_path.stat().st_size} bytes, int8 {int8_path.stat().st_size} bytes")


if __name__ == "__main__":
    main()
