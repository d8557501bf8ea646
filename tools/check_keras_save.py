"""Loads the Keras files strata writes with Keras's own `keras.models.load_model` and compares
Keras's predictions with strata's.

    cargo run --release --example keras_parity -- DIR
    KERAS_BACKEND=numpy python tools/check_keras_save.py DIR

DIR holds NAME.keras, NAME.h5 and NAME.json (the input and strata's output) per model, as the
example writes them. Each file must load (compiled, as it was saved) and predict within 1e-5 of
strata (absolute, or relative to values above 1), and a .keras file must hold the nested models
the JSON names as Keras models (`model.get_layer("base")`, at any depth); exits 1 otherwise. Needs keras, h5py and
numpy, and for Keras 3's numpy backend (inference without TensorFlow) jax, which it imports
(a throwaway venv: `pip install keras h5py jax`); any other backend works too.
"""

import json
import os
import pathlib
import sys
import warnings

os.environ.setdefault("KERAS_BACKEND", "numpy")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

TOLERANCE = 1e-5


def check(path: pathlib.Path) -> bool:
    record = json.loads(path.with_suffix(".json").read_text())
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        model = keras.models.load_model(path)
    # The optimizer's state is not saved: Keras says it starts afresh. Anything else is news.
    news = [str(w.message) for w in caught if "optimizer" not in str(w.message)]
    x = np.asarray(record["input"], dtype=np.float32).reshape(record["input_shape"])
    expected = np.asarray(record["output"], dtype=np.float32).reshape(record["output_shape"])
    got = np.asarray(model.predict(x, verbose=0))
    error = float(np.max(np.abs(got - expected) / np.maximum(1.0, np.abs(expected))))
    compiled = model.compiled and model.optimizer is not None
    found = set()

    def walk(layers):
        for layer in layers:
            if isinstance(layer, keras.Model):
                found.add(layer.name)
                walk(layer.layers)

    walk(model.layers)
    missing = [n for n in record.get("nested", []) if n not in found] if path.suffix == ".keras" else []
    news += [f"nested model '{n}' not found" for n in missing]
    ok = got.shape == expected.shape and error <= TOLERANCE and compiled and not news
    print(f"{path.name}: output {got.shape}, max error {error:.2e}, compiled {compiled}"
          f"{', warnings: ' + '; '.join(news) if news else ''} {'ok' if ok else 'FAILED'}")
    return ok


def main() -> int:
    folder = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "keras-parity")
    files = sorted(folder.glob("*.keras")) + sorted(folder.glob("*.h5"))
    if not files:
        print(f"no .keras or .h5 files in {folder}")
        return 1
    print(f"Keras {keras.__version__}, backend {keras.backend.backend()}")
    results = [check(path) for path in files]
    return 0 if all(results) else 1


if __name__ == "__main__":
    sys.exit(main())
