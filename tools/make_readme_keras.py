#!/usr/bin/env python3
"""Writes the small Keras 3 files the README's commands use (tests/readme_commands.rs runs them),
made by Keras itself so strata reads real Keras output:

- examples/data/model.keras: a seeded, untrained RGB image classifier, Input (32, 32, 3) ->
  Conv2D 4 -> MaxPooling2D -> Flatten -> Dense 10 softmax, for `strata import` and then
  `strata predict --preprocess caffe` (which needs 3 channels);
- examples/data/keras_model.json: what `model.to_json()` writes for a compiled MNIST classifier,
  Input (28, 28, 1) -> Conv2D 4 -> MaxPooling2D -> Flatten -> Dense 10 softmax, for
  `strata train --model keras_model.json`.

Run from the repository root with TensorFlow 2 / Keras 3: python tools/make_readme_keras.py
"""
import os

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
import keras  # noqa: E402


def classifier(shape, name):
    model = keras.Sequential(
        [
            keras.Input(shape=shape),
            keras.layers.Conv2D(4, 3, activation="relu"),
            keras.layers.MaxPooling2D(2),
            keras.layers.Flatten(),
            keras.layers.Dense(10, activation="softmax"),
        ],
        name=name,
    )
    model.compile("adam", "sparse_categorical_crossentropy", metrics=["accuracy"])
    return model


keras.utils.set_random_seed(0)
classifier((32, 32, 3), "tiny_rgb").save("examples/data/model.keras")
with open("examples/data/keras_model.json", "w") as f:
    f.write(classifier((28, 28, 1), "digits").to_json())
