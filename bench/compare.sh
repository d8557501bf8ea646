#!/usr/bin/env bash
# Side-by-side speed of strata and the TensorFlow-Keras / PyTorch reference scripts, one run
# after the other on this machine, printed as a markdown table of epoch seconds and ratios.
#
# One-time setup, outside the repo (the Python frameworks are only for comparison):
#   python3 -m venv ~/anchors-venv && ~/anchors-venv/bin/pip install tensorflow-cpu torch numpy
# Usage:
#   PY=~/anchors-venv/bin/python bash bench/compare.sh [mlp mlp2 linreg ...]
# Environment: PY (python with tensorflow and torch), ANCHORS (the reference scripts,
# default ../shared/bench/anchors), OUT (results folder, default a new temporary one).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$HOME/anchors-venv/bin/python}
ANCHORS=${ANCHORS:-../shared/bench/anchors}
OUT=${OUT:-$(mktemp -d)}
MODELS=("${@:-mlp mlp2 linreg}")
read -r -a MODELS <<< "${MODELS[*]}"
export MNIST_DIR=${MNIST_DIR:-$PWD/data/mnist}
cargo build --release -q
: > "$OUT/results.jsonl"

epochs_for() { case "$1" in linreg) echo 1000 ;; cnn) echo 2 ;; *) echo 3 ;; esac; }

for model in "${MODELS[@]}"; do
  epochs=$(epochs_for "$model")
  echo "== $model ($epochs epochs)" >&2
  /usr/bin/time -f '%M' -o "$OUT/strata_$model.rss" target/release/strata train --model "$model" \
    --epochs "$epochs" --verbose 0 --json | tail -n 1 > "$OUT/strata_$model.json"
  python3 - "$model" "$OUT/strata_$model.json" "$OUT/strata_$model.rss" >> "$OUT/results.jsonl" <<'PYEOF'
import json, statistics, sys
model, path, rss = sys.argv[1:]
r = json.load(open(path))
times = [e["seconds"] for e in r["epochs"]]
later = times[1:] or times
print(json.dumps({"framework": "strata", "model": model, "epoch1_s": times[0],
                  "median_later_s": statistics.median(later), "fit_s": r["train_seconds"],
                  "test_acc": r.get("test_accuracy"), "peak_rss_mb": int(open(rss).read().split()[-1]) / 1024,
                  "threads": r["threads"]}))
PYEOF
  for framework in keras torch; do
    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$ANCHORS/${framework}_$model.py" "$epochs" \
      2>/dev/null | tail -n 1 >> "$OUT/results.jsonl"
  done
done
python3 bench/table.py "$OUT/results.jsonl"
echo "raw results: $OUT/results.jsonl" >&2
