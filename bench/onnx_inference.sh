#!/usr/bin/env bash
# Inference speed of torchvision classifiers (random weights, 224x224) exported to ONNX with
# torch.onnx and run by strata (imported with load_onnx), ONNX Runtime and PyTorch, one after
# the other in the same run: batch-1 latency (p50, p99) and batch-32 throughput, printed as a
# markdown table with ratios (the other framework's time over strata's: above 1, strata is
# faster).
#
# Usage:
#   [ROUNDS=N] PY=/path/to/python-with-torch-torchvision-onnxruntime bash bench/onnx_inference.sh [THREADS] [RUNS] [MODEL ...]
# Defaults: 2 threads, 30 batch-1 runs (a tenth as many batch-32 runs, at least 3),
# resnet18 mobilenet_v2. ONNX Runtime runs with THREADS intra-op threads and one inter-op
# thread, all graph optimizations on; PyTorch with torch.set_num_threads(THREADS) under
# torch.inference_mode(). The ONNX files are written to $ONNX_DIR (default: a fresh temporary
# folder). ROUNDS (default 1) repeats the strata run and the Python run that many times, one
# after the other, and prints a row per round and the median ratios: on a shared, noisy host
# one round's ratio can swing by 1.5x either way.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/tmp/venv-onnximport/bin/python}
THREADS=${1:-2}
RUNS=${2:-30}
shift $(( $# > 2 ? 2 : $# ))
MODELS=("${@:-resnet18 mobilenet_v2}")
read -r -a MODELS <<< "${MODELS[*]}"
DIR=${ONNX_DIR:-$(mktemp -d)}
OUT=$(mktemp)
"$PY" - "$DIR" "${MODELS[@]}" <<'PYEOF'
import os, sys
import torch, torchvision
folder, names = sys.argv[1], sys.argv[2:]
torch.manual_seed(0)
for name in names:
    path = os.path.join(folder, name + ".onnx")
    if os.path.exists(path):
        continue
    model = getattr(torchvision.models, name)(num_classes=1000).eval()
    x = torch.rand(1, 3, 224, 224)
    torch.onnx.export(model, (x,), path, dynamo=False, opset_version=17, input_names=["input"],
                      output_names=["output"], dynamic_axes={"input": {0: "N"}, "output": {0: "N"}})
PYEOF
FILES=()
for model in "${MODELS[@]}"; do FILES+=("$DIR/$model.onnx"); done
cargo build --release -q --example onnx_speed
cat > "$OUT.py" <<'PYEOF'
import json, os, sys, time
import numpy as np
import onnxruntime
import torch, torchvision
threads, runs, folder, names = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4:]
torch.set_num_threads(threads)


def rank(seconds, q):
    return seconds[min(len(seconds), max(1, int(np.ceil(q * len(seconds))))) - 1]


def timed(framework, name, call):
    """Batch-1 latency quantiles and batch-32 throughput of `call` on NCHW float32 arrays."""
    one = np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype("float32")
    for _ in range(3):
        call(one)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter(); call(one); seconds.append(time.perf_counter() - start)
    seconds.sort()
    batch = np.random.default_rng(1).uniform(-1, 1, (32, 3, 224, 224)).astype("float32")
    call(batch)
    batch_runs = max(3, runs // 10)
    start = time.perf_counter()
    for _ in range(batch_runs):
        call(batch)
    print(json.dumps({"framework": framework, "model": name, "threads": threads,
                      "batch1_p50_ms": 1e3 * rank(seconds, 0.5), "batch1_p99_ms": 1e3 * rank(seconds, 0.99),
                      "batch32_images_per_s": 32 * batch_runs / (time.perf_counter() - start)}), flush=True)


for name in names:
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    session = onnxruntime.InferenceSession(os.path.join(folder, name + ".onnx"), options,
                                           providers=["CPUExecutionProvider"])
    timed("onnxruntime", name, lambda x: session.run(None, {"input": x}))
    torch.manual_seed(0)
    model = getattr(torchvision.models, name)(num_classes=1000).eval()

    def forward(x):
        with torch.inference_mode():
            return model(torch.from_numpy(x)).numpy()

    timed("pytorch", name, forward)
PYEOF
for round in $(seq "${ROUNDS:-1}"); do
    echo "# round $round" >> "$OUT"
    "${CARGO_TARGET_DIR:-target}"/release/examples/onnx_speed "$THREADS" "$RUNS" "${FILES[@]}" >> "$OUT"
    "$PY" "$OUT.py" "$THREADS" "$RUNS" "$DIR" "${MODELS[@]}" >> "$OUT"
done
python3 - "$OUT" <<'PYEOF'
import json, sys
import statistics
rows, round_number = [], 0
for line in open(sys.argv[1]):
    if line.startswith("# round"):
        round_number = int(line.split()[2])
    elif line.startswith("{"):
        rows.append(dict(json.loads(line), round=round_number))
by = {(r["framework"], r["model"], r["round"]): r for r in rows}
print("| model | round | threads | strata p50 / p99 ms (batch 1) | ONNX Runtime p50 / p99 ms | PyTorch p50 / p99 ms "
      "| p50 ratio vs ORT / PyTorch | strata img/s (batch 32) | ORT img/s | PyTorch img/s "
      "| throughput ratio vs ORT / PyTorch |")
print("|---|---|---|---|---|---|---|---|---|---|---|")
ratios = {}
for (framework, model, round_number), s in by.items():
    o, p = by.get(("onnxruntime", model, round_number)), by.get(("pytorch", model, round_number))
    if framework != "strata" or o is None or p is None:
        continue
    latency = lambda r: f"{r['batch1_p50_ms']:.1f} / {r['batch1_p99_ms']:.1f}"
    four = (o["batch1_p50_ms"] / s["batch1_p50_ms"], p["batch1_p50_ms"] / s["batch1_p50_ms"],
            s["batch32_images_per_s"] / o["batch32_images_per_s"], s["batch32_images_per_s"] / p["batch32_images_per_s"])
    ratios.setdefault(model, []).append(four)
    print(f"| {model} | {round_number} | {s['threads']} | {latency(s)} | {latency(o)} | {latency(p)} | "
          f"{four[0]:.2f}x / {four[1]:.2f}x | "
          f"{s['batch32_images_per_s']:.1f} | {o['batch32_images_per_s']:.1f} | {p['batch32_images_per_s']:.1f} | "
          f"{four[2]:.2f}x / {four[3]:.2f}x |")
for model, rounds in ratios.items():
    median = [statistics.median(r[i] for r in rounds) for i in range(4)]
    print(f"| {model} | median of {len(rounds)} | | | | | {median[0]:.2f}x / {median[1]:.2f}x | | | | "
          f"{median[2]:.2f}x / {median[3]:.2f}x |")
PYEOF
echo "raw results: $OUT, ONNX files: $DIR" >&2
