"""Writes tests/fixtures/keras/resizing/: `Resizing` (bilinear up and down, nearest,
`crop_to_aspect_ratio`), `CenterCrop` (a plain crop, and an image smaller than the target,
which Keras resizes up) and `UpSampling1D` as Keras 3 computes them on random inputs, for tests/resizing.rs to
check strata against. Each case is NAME.keras with NAME.json beside it ({"inputs", "outputs"}:
shapes and values). Run by hand with a Python holding Keras 3 and TensorFlow:

    /tmp/tfvenv/bin/python tools/make_keras_resizing.py
"""

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("KERAS_BACKEND", "tensorflow")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "resizing"

CASES = {
    "resize_bilinear_up": ((5, 7, 2), layers.Resizing(8, 11)),
    "resize_bilinear_down": ((9, 13, 3), layers.Resizing(4, 6)),
    "resize_nearest": ((5, 7, 2), layers.Resizing(8, 3, interpolation="nearest")),
    "resize_crop_to_aspect_ratio": ((10, 6, 2), layers.Resizing(4, 5, crop_to_aspect_ratio=True)),
    "center_crop": ((9, 8, 2), layers.CenterCrop(4, 5)),
    "center_crop_smaller_image": ((5, 8, 2), layers.CenterCrop(7, 6)),
    "upsampling1d": ((6, 2), layers.UpSampling1D(3)),
}


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    tensor = lambda t: {"shape": list(t.shape), "values": [float(v) for v in np.ravel(t)]}  # noqa: E731
    for name, (shape, layer) in CASES.items():
        model = keras.Sequential([keras.Input(shape), layer], name=name)
        x = rng.uniform(0, 255, (2, *shape)).astype("float32")
        y = model.predict(x, verbose=0)
        model.save(OUT / f"{name}.keras")
        (OUT / f"{name}.json").write_text(json.dumps({"inputs": [tensor(x)], "outputs": [tensor(y)]}) + "\n")
        print(name, y.shape)


if __name__ == "__main__":
    main()
