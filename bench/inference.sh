#!/usr/bin/env bash
# Inference latency side by side (issue #20 item 4): single-sample and batch-32 `predict` of the
# classic MNIST mlp and cnn, p50/p99 over many calls, for strata (examples/predict_latency.rs, a
# library user's program), ONNX Runtime (on strata's own model, written by `strata export`),
# PyTorch, TF-Keras and Keras on JAX (bench/references/inference.py), one after the other on
# this machine, printed as a markdown table with each framework's p50 over strata's.
#
# One-time setup, outside the repo (the Python frameworks are only for comparison):
#   python3 -m venv ~/anchors-venv && ~/anchors-venv/bin/pip install tensorflow-cpu jax torch numpy
#   python3 -m venv ~/ort-venv && ~/ort-venv/bin/pip install onnxruntime numpy
# Usage:
#   PY=~/anchors-venv/bin/python ORT_PY=~/ort-venv/bin/python bash bench/inference.sh [mlp cnn]
# Environment: PY (python with tensorflow, jax and torch), ORT_PY (python with onnxruntime),
# CALLS (timed calls per model and batch size, default 500), OUT (results folder, default a new
# temporary one), FRAMEWORKS (default "ort torch keras keras-jax"), ROUNDS (default 1: how many
# times the whole comparison runs, one framework after another each round; the table gives
# each framework's median p50 and p99 over the rounds, so a noisy minute on a shared host
# does not decide a ratio). Two threads everywhere.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$HOME/anchors-venv/bin/python}
ORT_PY=${ORT_PY:-$HOME/ort-venv/bin/python}
CALLS=${CALLS:-500}
ROUNDS=${ROUNDS:-1}
OUT=${OUT:-$(mktemp -d)}
read -r -a FRAMEWORKS <<< "${FRAMEWORKS:-ort torch keras keras-jax}"
MODELS=("${@:-mlp cnn}")
read -r -a MODELS <<< "${MODELS[*]}"
TARGET=${CARGO_TARGET_DIR:-target}/release
cargo build --release -q --bin strata --example predict_latency
echo "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)" >&2
: > "$OUT/results.jsonl"

for round in $(seq "$ROUNDS"); do
  echo "== round $round of $ROUNDS" >&2
  RAYON_NUM_THREADS=2 "$TARGET/examples/predict_latency" --calls "$CALLS" --save "$OUT" "${MODELS[@]}" \
    >> "$OUT/results.jsonl"
  for model in "${MODELS[@]}"; do
    echo "== $model" >&2
    [ -f "$OUT/$model.onnx" ] || "$TARGET/strata" export --model "$OUT/$model.safetensors" --output "$OUT/$model.onnx" >&2
    for framework in "${FRAMEWORKS[@]}"; do
      python=$PY
      [ "$framework" = ort ] && python=$ORT_PY
      "$python" bench/references/inference.py "$framework" "$model" "$CALLS" "$OUT/$model.onnx" 2>/dev/null \
        >> "$OUT/results.jsonl" || echo "warning: $framework $model failed" >&2
    done
  done
done
echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)" >&2

python3 - "$OUT/results.jsonl" <<'PYEOF'
import json, sys
rows = [json.loads(line) for line in open(sys.argv[1]) if line.strip()]
columns = [("strata", "compiled"), ("ort", "compiled"), ("torch", "compiled"), ("keras", "compiled"),
           ("keras-jax", "compiled"), ("keras", "predict"), ("keras-jax", "predict")]
titles = {"strata": "strata", "ort": "ONNX Runtime", "torch": "PyTorch", "keras": "TF-Keras",
          "keras-jax": "Keras on JAX"}
# Each framework's median p50 and p99 over the rounds.
runs = {}
for r in rows:
    runs.setdefault((r["model"], r["batch"], r["framework"], r.get("call", "compiled")), []).append(r)
median = lambda values: sorted(values)[len(values) // 2]
found = {key: {"p50_ms": median([r["p50_ms"] for r in rs]), "p99_ms": median([r["p99_ms"] for r in rs])}
         for key, rs in runs.items()}
columns = [c for c in columns if any(k[2:] == c for k in found)]
header = ["model", "batch"] + [titles[f] + (" `predict`" if call == "predict" else "") for f, call in columns]
print("| " + " | ".join(header) + " |")
print("|" + "---|" * len(header))
for model, batch in sorted({(k[0], k[1]) for k in found}, key=lambda k: (k[0] != "mlp", k[0], k[1])):
    base = found.get((model, batch, "strata", "compiled"))
    cells = [model, str(batch)]
    for framework, call in columns:
        r = found.get((model, batch, framework, call))
        if r is None:
            cells.append("—")
            continue
        cell = f"{r['p50_ms']:.4f} / {r['p99_ms']:.4f}"
        if base and framework != "strata":
            cell += f" ({r['p50_ms'] / base['p50_ms']:.1f}×)"
        cells.append(cell)
    print("| " + " | ".join(cells) + " |")
rounds = max(len(rs) for rs in runs.values())
print(f"\np50 / p99 ms per call (medians over {rounds} rounds); (n×): that framework's p50 over strata's.")
PYEOF
echo "raw results: $OUT/results.jsonl" >&2
