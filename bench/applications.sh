#!/usr/bin/env bash
# Inference speed of Keras Applications (random weights, 224x224) in strata, TF-Keras and
# PyTorch (torchvision's equivalent model), one after the other in the same run: batch-1
# latency (p50, p99) and batch-32 throughput, printed as a markdown table with ratios
# (strata's speed over the other's: above 1, strata is faster).
#
# Usage:
#   PY=/path/to/python-with-tensorflow TORCHPY=/path/to/python-with-torchvision \
#     bash bench/applications.sh [THREADS] [RUNS] [MODEL ...]
# ROUNDS (default 1) repeats the three runs, one after the other, that many times: on a shared
# host whose speed drifts within minutes, each round's ratios compare runs minutes apart, and
# the last rows give the median over the rounds of each figure and of each round's ratio.
# Defaults: 2 threads, 30 batch-1 runs (a tenth as many batch-32 runs, at least 3),
# mobilenet_v2 resnet50. TF-Keras runs each model as a tf.function (`model(x, training=False)`),
# its fastest single-call path, with the same thread count (intra-op; one inter-op thread).
# PyTorch runs under torch.inference_mode() with torch.set_num_threads(THREADS), in
# channels_last memory format (its faster one for these convolutions on CPU); its column is
# left out when TORCHPY has no torchvision.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-/tmp/kerasvenv/bin/python}
TORCHPY=${TORCHPY:-/tmp/venv-onnximport/bin/python}
THREADS=${1:-2}
RUNS=${2:-30}
shift $(( $# > 2 ? 2 : $# ))
MODELS=("${@:-mobilenet_v2 resnet50}")
read -r -a MODELS <<< "${MODELS[*]}"
OUT=$(mktemp -d)
cargo build --release -q --example applications_speed
for round in $(seq "${ROUNDS:-1}"); do
ROUND_OUT="$OUT/round-$round.jsonl"
"${CARGO_TARGET_DIR:-target}"/release/examples/applications_speed "$THREADS" "$RUNS" "${MODELS[@]}" >> "$ROUND_OUT"
TF_CPP_MIN_LOG_LEVEL=3 "$PY" - "$THREADS" "$RUNS" "${MODELS[@]}" >> "$ROUND_OUT" 2>/dev/null <<'PYEOF'
import json, sys, time
import numpy as np
import tensorflow as tf
threads, runs, names = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
tf.config.threading.set_intra_op_parallelism_threads(threads)
tf.config.threading.set_inter_op_parallelism_threads(1)
import keras
builders = {"mobilenet_v2": keras.applications.MobileNetV2, "resnet50": keras.applications.ResNet50,
            "mobilenet": keras.applications.MobileNet, "efficientnet_b0": keras.applications.EfficientNetB0,
            "inception_v3": keras.applications.InceptionV3, "xception": keras.applications.Xception,
            "vgg16": keras.applications.VGG16, "densenet121": keras.applications.DenseNet121}
for name in names:
    model = builders[name](weights=None)
    call = tf.function(lambda x: model(x, training=False))
    one = np.random.default_rng(0).uniform(-1, 1, (1, 224, 224, 3)).astype("float32")
    for _ in range(3):
        call(one).numpy()
    seconds = []
    for _ in range(runs):
        start = time.perf_counter(); call(one).numpy(); seconds.append(time.perf_counter() - start)
    seconds.sort()
    rank = lambda q: seconds[min(len(seconds), max(1, int(np.ceil(q * len(seconds))))) - 1]
    batch = np.random.default_rng(1).uniform(-1, 1, (32, 224, 224, 3)).astype("float32")
    call(batch).numpy()
    batch_runs = max(3, runs // 10)
    start = time.perf_counter()
    for _ in range(batch_runs):
        call(batch).numpy()
    print(json.dumps({"framework": "tf-keras", "model": name, "threads": threads,
                      "batch1_p50_ms": 1e3 * rank(0.5), "batch1_p99_ms": 1e3 * rank(0.99),
                      "batch32_images_per_s": 32 * batch_runs / (time.perf_counter() - start)}))
PYEOF
"$TORCHPY" - "$THREADS" "$RUNS" "${MODELS[@]}" >> "$ROUND_OUT" 2>/dev/null <<'PYEOF' || echo "no PyTorch column: $TORCHPY lacks torch or torchvision" >&2
import json, sys, time
import numpy as np
import torch, torchvision
threads, runs, names = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3:]
torch.set_num_threads(threads)
builders = {"mobilenet_v2": torchvision.models.mobilenet_v2, "resnet50": torchvision.models.resnet50,
            "efficientnet_b0": torchvision.models.efficientnet_b0, "inception_v3": torchvision.models.inception_v3,
            "vgg16": torchvision.models.vgg16, "densenet121": torchvision.models.densenet121}
for name in names:
    if name not in builders:
        continue
    model = builders[name](weights=None).eval().to(memory_format=torch.channels_last)
    def call(x):
        with torch.inference_mode():
            return model(x).numpy()
    to_input = lambda a: torch.from_numpy(a).to(memory_format=torch.channels_last)
    one = to_input(np.random.default_rng(0).uniform(-1, 1, (1, 3, 224, 224)).astype("float32"))
    for _ in range(3):
        call(one)
    seconds = []
    for _ in range(runs):
        start = time.perf_counter(); call(one); seconds.append(time.perf_counter() - start)
    seconds.sort()
    rank = lambda q: seconds[min(len(seconds), max(1, int(np.ceil(q * len(seconds))))) - 1]
    batch = to_input(np.random.default_rng(1).uniform(-1, 1, (32, 3, 224, 224)).astype("float32"))
    call(batch)
    batch_runs = max(3, runs // 10)
    start = time.perf_counter()
    for _ in range(batch_runs):
        call(batch)
    print(json.dumps({"framework": "pytorch", "model": name, "threads": threads,
                      "batch1_p50_ms": 1e3 * rank(0.5), "batch1_p99_ms": 1e3 * rank(0.99),
                      "batch32_images_per_s": 32 * batch_runs / (time.perf_counter() - start)}))
PYEOF
done
python3 - "$OUT" "${ROUNDS:-1}" <<'PYEOF'
import json, statistics, sys
folder, rounds = sys.argv[1], int(sys.argv[2])
others = [("tf-keras", "TF-Keras"), ("pytorch", "PyTorch")]
runs = []
for r in range(1, rounds + 1):
    lines = open(f"{folder}/round-{r}.jsonl").read().splitlines()
    runs.append({(d["framework"], d["model"]): d for d in map(json.loads, filter(lambda l: l.startswith("{"), lines))})
print("| model | round | framework | p50 / p99 ms (batch 1) | strata's p50 speed-up | img/s (batch 32) | strata's throughput ratio |")
print("|---|---|---|---|---|---|---|")
models = [m for (f, m) in runs[0] if f == "strata"]
for model in models:
    for r, by in enumerate(runs, 1):
        s = by[("strata", model)]
        print(f"| {model} | {r} | strata | {s['batch1_p50_ms']:.1f} / {s['batch1_p99_ms']:.1f} | | "
              f"{s['batch32_images_per_s']:.1f} | |")
        for key, label in others:
            if (key, model) in by:
                k = by[(key, model)]
                print(f"| {model} | {r} | {label} | {k['batch1_p50_ms']:.1f} / {k['batch1_p99_ms']:.1f} | "
                      f"{k['batch1_p50_ms'] / s['batch1_p50_ms']:.2f}x | {k['batch32_images_per_s']:.1f} | "
                      f"{s['batch32_images_per_s'] / k['batch32_images_per_s']:.2f}x |")
    if rounds < 2:
        continue
    median = lambda key, field: statistics.median(by[(key, model)][field] for by in runs)
    ratio = lambda key, f: statistics.median(f(by[(key, model)], by[("strata", model)]) for by in runs)
    print(f"| {model} | median | strata | {median('strata', 'batch1_p50_ms'):.1f} | | "
          f"{median('strata', 'batch32_images_per_s'):.1f} | |")
    for key, label in others:
        if all((key, model) in by for by in runs):
            speedup = ratio(key, lambda k, s: k["batch1_p50_ms"] / s["batch1_p50_ms"])
            throughput = ratio(key, lambda k, s: s["batch32_images_per_s"] / k["batch32_images_per_s"])
            print(f"| {model} | median | {label} | {median(key, 'batch1_p50_ms'):.1f} | {speedup:.2f}x | "
                  f"{median(key, 'batch32_images_per_s'):.1f} | {throughput:.2f}x |")
PYEOF
echo "raw results: $OUT" >&2
