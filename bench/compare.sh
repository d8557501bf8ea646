#!/usr/bin/env bash
# Side-by-side speed of strata and the TensorFlow-Keras, Keras-on-JAX and PyTorch reference
# scripts, one run after the other on this machine, printed as a markdown table of epoch
# seconds and ratios.
#
# One-time setup, outside the repo (the Python frameworks are only for comparison):
#   python3 -m venv ~/anchors-venv && ~/anchors-venv/bin/pip install tensorflow-cpu jax torch numpy
# Usage:
#   PY=~/anchors-venv/bin/python bash bench/compare.sh [mlp mlp2 linreg cnn cifar10_cnn imdb_transformer]
# mlp, mlp2, linreg and cnn run ../shared/bench/anchors on MNIST; cifar10_cnn and
# imdb_transformer run bench/references on full-size synthetic stand-ins for CIFAR-10 and IMDB
# in Keras's file formats (bench/references/make_full_size_data.py, written once to $FAKE_DATA),
# since the real files cannot be downloaded on every machine; their accuracies are on that data.
# Environment: PY (python with tensorflow, jax and torch), ANCHORS (the MNIST reference scripts,
# default ../shared/bench/anchors), OUT (results folder, default a new temporary one),
# FRAMEWORKS (default "keras keras-jax torch"), FAKE_DATA (default /tmp/strata-bench-data).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-$HOME/anchors-venv/bin/python}
ANCHORS=${ANCHORS:-../shared/bench/anchors}
OUT=${OUT:-$(mktemp -d)}
FAKE_DATA=${FAKE_DATA:-/tmp/strata-bench-data}
read -r -a FRAMEWORKS <<< "${FRAMEWORKS:-keras keras-jax torch}"
MODELS=("${@:-mlp mlp2 linreg}")
read -r -a MODELS <<< "${MODELS[*]}"
export MNIST_DIR=${MNIST_DIR:-$PWD/data/mnist}
cargo build --release -q
: > "$OUT/results.jsonl"

epochs_for() { case "$1" in linreg) echo 1000 ;; cnn | cifar10_cnn | imdb_transformer) echo 2 ;; *) echo 3 ;; esac; }
script_for() {  # the reference script of framework $1 for model $2
  local prefix=${1%-jax}
  case "$2" in
    cifar10_cnn | imdb_transformer) echo "bench/references/${prefix}_$2.py" ;;
    *) echo "$ANCHORS/${prefix}_$2.py" ;;
  esac
}

for model in "${MODELS[@]}"; do
  epochs=$(epochs_for "$model")
  echo "== $model ($epochs epochs)" >&2
  case "$model" in
    cifar10_cnn | imdb_transformer)
      [ -f "$FAKE_DATA/datasets/imdb.npz" ] || "$PY" bench/references/make_full_size_data.py "$FAKE_DATA" >&2
      export KERAS_HOME="$FAKE_DATA" DATASETS="$FAKE_DATA/datasets" ;;
  esac
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
  for framework in "${FRAMEWORKS[@]}"; do
    backend=tensorflow
    [ "$framework" = keras-jax ] && backend=jax
    KERAS_BACKEND=$backend env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE "$PY" "$(script_for "$framework" "$model")" \
      "$epochs" 2>/dev/null | tail -n 1 >> "$OUT/results.jsonl"
  done
  unset KERAS_HOME DATASETS
done
python3 bench/table.py "$OUT/results.jsonl"
echo "raw results: $OUT/results.jsonl" >&2
