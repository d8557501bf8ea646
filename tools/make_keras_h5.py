"""Writes the legacy HDF5 (`.h5`) Keras fixtures under tests/fixtures/keras/h5/.

Run by hand, in throwaway virtual environments (not part of the build or CI):

    # Keras 3's legacy writer (model.save("m.h5")):
    /tmp/kerasvenv/bin/python tools/make_keras_h5.py
    # tf.keras 2.x's writer, from the tf_keras package (Keras 2 for TensorFlow 2.16+), which is
    # what most .h5 files in the wild were written by:
    python -m venv /tmp/tfkeras2venv
    echo /tmp/kerasvenv/lib/python3.11/site-packages > /tmp/tfkeras2venv/lib/python3.11/site-packages/k.pth
    /tmp/tfkeras2venv/bin/pip install --no-deps "tf_keras==2.21.*"
    /tmp/tfkeras2venv/bin/python tools/make_keras_h5.py --tf-keras

Each model is written as PREFIX_NAME.h5 (PREFIX is k3 for Keras 3, k2 for tf.keras 2) with
PREFIX_NAME.json beside it ({"input", "input_shape", "output", "output_shape"}: a fixed batch
and what Keras's `predict` returns for it). With --tf-keras it also writes:

- k2_cnn_weights.h5: `save_weights("w.h5")`, the weights-only legacy file (layer groups at the
  root), which Keras 3 can no longer write (a name ending in `.weights.h5` would get Keras 3's
  layout instead);
- k2_mlp_fixed.h5: k2_mlp.h5 with its string attributes rewritten as fixed-length strings and
  `layer_names` split into `layer_names0`, `layer_names1`, as h5py 2.x and Keras write them
  (Keras splits attributes over 64 KB this way; here the list is split by hand to stay small).

Every weight, biases and batch-norm statistics included, is drawn at random.
"""

import json
import os
import pathlib
import shutil
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TF_KERAS = "--tf-keras" in sys.argv
if TF_KERAS:
    import tf_keras as keras  # noqa: E402
else:
    import keras  # noqa: E402
import h5py  # noqa: E402
import numpy as np  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "h5"
PREFIX = "k2" if TF_KERAS else "k3"
layers = keras.layers


def models():
    """(name, model, compile arguments or None) for each fixture."""
    yield "mlp", keras.Sequential(
        [
            keras.Input((6,)),
            layers.Dense(5, activation="relu"),
            layers.Dense(4, activation="tanh", use_bias=False),
            layers.Dense(3, activation="softmax"),
        ],
        name="mlp",
    ), dict(optimizer=keras.optimizers.Adam(0.01), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    yield "cnn", keras.Sequential(
        [
            keras.Input((6, 6, 2)),
            layers.Conv2D(3, 3, padding="same"),
            layers.BatchNormalization(),
            layers.Activation("relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(4, 2, use_bias=False),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ],
        name="cnn",
    ), dict(optimizer="sgd", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    # Functional: a shared layer, Add and Concatenate.
    inputs = keras.Input((6,), name="pixels")
    shared = layers.Dense(6, activation="tanh", name="shared")
    hidden = shared(inputs)
    again = shared(hidden)
    joined = layers.Concatenate(name="join")([layers.Add(name="skip")([inputs, again]), hidden])
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(joined)
    yield "merge", keras.Model(inputs, outputs, name="merge"), None
    # Nested: a Sequential with BatchNormalization inside a functional model.
    inner = keras.Sequential(
        [keras.Input((5,)), layers.Dense(4, name="inner_dense"), layers.BatchNormalization(name="inner_norm")],
        name="inner",
    )
    inputs = keras.Input((5,), name="features")
    merged = layers.Add(name="sum")([inner(inputs), layers.Dense(4, name="side")(inputs)])
    outputs = layers.Dense(2, name="head")(merged)
    yield "nested", keras.Model(inputs, outputs, name="nested"), dict(optimizer="adam", loss="mse")
    # Nested models called more than once (last, so the draws above stay as they were): an
    # encoder with a layer shared inside it on two inputs, and a block on its own output.
    pixels = keras.Input((5,), name="pixels")
    hidden = layers.Dense(5, activation="tanh", name="inner_shared")
    encoder = keras.Model(pixels, layers.Dense(4, activation="relu", name="code")(hidden(hidden(pixels))), name="encoder")
    left, right = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    distance = layers.Subtract(name="distance")([encoder(left), encoder(right)])
    yield "siamese", keras.Model([left, right], layers.Dense(1, activation="sigmoid", name="score")(distance)), None
    block = keras.Sequential([keras.Input((6,)), layers.Dense(6, activation="tanh"), layers.Dense(6)], name="block")
    inputs = keras.Input((6,), name="features")
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(block(block(block(inputs))))
    yield "nested_thrice", keras.Model(inputs, outputs, name="nested_thrice"), None
    # A model holding a nested model (called twice inside it) and itself called twice.
    yield "siamese_nested", siamese_nested(), None


def siamese_nested():
    """An encoder that calls a nested Sequential block on its own output, used on two inputs."""
    block = keras.Sequential([keras.Input((5,)), layers.Dense(5, activation="tanh")], name="block")
    pixels = keras.Input((5,), name="pixels")
    encoder = keras.Model(pixels, layers.Dense(4, activation="relu", name="code")(block(block(pixels))), name="encoder")
    left, right = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    distance = layers.Subtract(name="distance")([encoder(left), encoder(right)])
    return keras.Model([left, right], layers.Dense(1, activation="sigmoid", name="score")(distance), name="siamese_nested")


def with_fixed_length_strings(source, target):
    """A copy of `source` whose string attributes are fixed-length, as h5py 2.x wrote them, and
    whose `layer_names` is split in two, as Keras splits an attribute too large for HDF5's
    64 KB object header."""
    shutil.copy(source, target)
    with h5py.File(target, "r+") as f:
        for key in list(f.attrs):
            f.attrs[key] = np.bytes_(f.attrs[key].encode("utf8"))
        group = f["model_weights"]
        names = [n.encode("utf8") for n in group.attrs["layer_names"]]
        del group.attrs["layer_names"]
        group.attrs["layer_names0"] = np.array(names[:1])
        group.attrs["layer_names1"] = np.array(names[1:])

        def fixed(_, obj):
            if "weight_names" in obj.attrs and len(obj.attrs["weight_names"]):
                obj.attrs["weight_names"] = np.array([n.encode("utf8") for n in obj.attrs["weight_names"]])

        group.visititems(fixed)


def main(only):
    """Writes every fixture, or only those named on the command line (the others' random draws
    are still made, in order, so each file is the same whichever are written)."""
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(3 if TF_KERAS else 0)
    for name, model, compile_args in models():
        weights = model.weights
        model.set_weights(
            [rng.uniform(0.1 if "variance" in w.name else -1.0, 1.0, w.shape).astype("float32") for w in weights]
        )
        if compile_args:
            model.compile(**compile_args)
        if len(model.inputs) > 1:
            # Several inputs: lists of {"shape", "values"}.
            xs = [rng.uniform(-1.0, 1.0, (3, *i.shape[1:])).astype("float32") for i in model.inputs]
            y = model.predict(xs, verbose=0)
            fixture = {
                "inputs": [{"shape": list(x.shape), "values": [float(v) for v in x.ravel()]} for x in xs],
                "outputs": [{"shape": list(y.shape), "values": [float(v) for v in y.ravel()]}],
            }
        else:
            x = rng.uniform(-1.0, 1.0, (3, *model.input_shape[1:])).astype("float32")
            y = model.predict(x, verbose=0)
            fixture = {
                "input_shape": list(x.shape),
                "input": [float(v) for v in x.ravel()],
                "output_shape": list(y.shape),
                "output": [float(v) for v in y.ravel()],
            }
        if only and name not in only:
            continue
        path = OUT / f"{PREFIX}_{name}.h5"
        model.save(path)
        (OUT / f"{PREFIX}_{name}.json").write_text(json.dumps(fixture) + "\n")
        print(path.name, path.stat().st_size, "bytes")
        if TF_KERAS and name == "cnn":
            model.save_weights(OUT / "k2_cnn_weights.h5")
        if TF_KERAS and name == "mlp":
            with_fixed_length_strings(path, OUT / "k2_mlp_fixed.h5")


if __name__ == "__main__":
    main([a for a in sys.argv[1:] if not a.startswith("--")])
