"""Writes tests/fixtures/keras/wrappers/: a small Keras 3 model of the wrapper layers,
`Bidirectional(LSTM(return_sequences=True))` → `TimeDistributed(Dense)` →
`Bidirectional(GRU, merge_mode="sum")`, with random weights, saved as a `.keras` archive
(weights under `forward_layer/cell/vars`, `backward_layer/cell/vars` and `layer/vars`) and as
a legacy `.h5`, with wrappers.json beside them ({"input", "output"}: a fixed batch and what
Keras's `predict` returned for it), for tests/keras_import.rs. Run by hand with Keras 3:

    /tmp/tfvenv/bin/python tools/make_keras_wrappers.py
"""

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "wrappers"


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(7)
    model = keras.Sequential(
        [
            keras.Input((5, 3)),
            layers.Bidirectional(layers.LSTM(2, return_sequences=True)),
            layers.TimeDistributed(layers.Dense(3, activation="tanh")),
            layers.Bidirectional(layers.GRU(2), merge_mode="sum"),
        ],
        name="wrappers",
    )
    model.set_weights([rng.uniform(-0.8, 0.8, w.shape) for w in model.get_weights()])
    x = rng.normal(size=(3, 5, 3)).astype("float32")
    y = model.predict(x, verbose=0)
    fixture = {
        "input_shape": list(x.shape),
        "input": [float(v) for v in x.ravel()],
        "output_shape": list(y.shape),
        "output": [float(v) for v in y.ravel()],
    }
    (OUT / "wrappers.json").write_text(json.dumps(fixture) + "\n")
    for name in ["wrappers.keras", "wrappers.h5"]:
        model.save(OUT / name)
        print(name, (OUT / name).stat().st_size, "bytes")


if __name__ == "__main__":
    main()
