#!/usr/bin/env python3
"""Writes examples/data/model.keras (and its model.to_json(), keras_model.json), the small Keras 3 model the README's `strata import` and
`strata predict` commands use (tests/readme_commands.rs runs them): a seeded, untrained digit
classifier, Input (28, 28, 1) -> Conv2D 4 -> MaxPooling2D -> Flatten -> Dense 10 softmax, made by
Keras itself so the import reads a real Keras file.

Run from the repository root with TensorFlow 2 / Keras 3: python tools/make_readme_keras.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402

keras.utils.set_random_seed(0)
model = keras.Sequential(
    [
        keras.Input(shape=(28, 28, 1)),
        keras.layers.Conv2D(4, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10, activation="softmax"),
    ],
    name="digits",
)
model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
model.save("examples/data/model.keras")
# What Keras's model.to_json() writes, for `strata train --model keras_model.json`.
with open("examples/data/keras_model.json", "w") as f:
    f.write(model.to_json())
