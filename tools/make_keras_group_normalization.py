"""Writes tests/fixtures/keras/group_normalization/: `GroupNormalization` as Keras 3 computes it
on random inputs with random scales and offsets: groups of several channels over images,
sequences and plain features, one group, one group per channel (`groups=-1`, instance
normalization) and without offset or scale; and a small functional model (a convolution, the
normalization, a ReLU and a classifier). Each case is NAME.keras with NAME.json beside it
({"inputs", "outputs"}: shapes and values), for tests/group_normalization.rs. Run by hand with
a Python holding Keras 3 and TensorFlow:

    /tmp/tfvenv/bin/python tools/make_keras_group_normalization.py
"""

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "group_normalization"

CASES = {
    "images": ((5, 6, 8), lambda: layers.GroupNormalization(4)),
    "sequences": ((7, 6), lambda: layers.GroupNormalization(3, epsilon=1e-5)),
    "features": ((12,), lambda: layers.GroupNormalization(4)),
    "instance": ((4, 3, 6), lambda: layers.GroupNormalization(-1)),
    "one_group_no_offset": ((4, 4, 6), lambda: layers.GroupNormalization(1, center=False)),
    "no_scale": ((3, 5, 4), lambda: layers.GroupNormalization(2, scale=False)),
}


def classifier():
    inputs = keras.Input((8, 8, 3))
    x = layers.Conv2D(8, 3, padding="same")(inputs)
    x = layers.GroupNormalization(2)(x)
    x = layers.ReLU()(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(3, activation="softmax")(x)
    return keras.Model(inputs, outputs, name="classifier")


def randomize(model, rng):
    for layer in model.layers:
        layer.set_weights([rng.normal(0, 0.5, w.shape).astype("float32") + 1.0 * (w.ndim == 1) for w in layer.get_weights()])


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(9)
    tensor = lambda t: {"shape": list(t.shape), "values": [float(v) for v in np.ravel(t)]}  # noqa: E731
    models = {name: (shape, keras.Sequential([keras.Input(shape), make()], name=name)) for name, (shape, make) in CASES.items()}
    models["classifier"] = ((8, 8, 3), classifier())
    for name, (shape, model) in models.items():
        randomize(model, rng)
        x = rng.normal(0.5, 2.0, (3, *shape)).astype("float32")
        y = model.predict(x, verbose=0)
        model.save(OUT / f"{name}.keras")
        (OUT / f"{name}.json").write_text(json.dumps({"inputs": [tensor(x)], "outputs": [tensor(y)]}) + "\n")
        print(name, y.shape)


if __name__ == "__main__":
    main()
