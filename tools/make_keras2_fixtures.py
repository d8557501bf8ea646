"""Writes the tf.keras 2 fixtures under tests/fixtures/keras/applications/ (issue #16): whole
models saved by tf.keras 2 (the `tf_keras` package, Keras 2.x for TensorFlow 2.16+, the same
code as `tf.keras` of TensorFlow <= 2.15), in its two whole-model formats: the legacy
`model.save("m.h5")` and the `.keras` archive of Keras 2.13+ (`model.save("m.keras")`).

Run by hand, in a throwaway virtual environment (not part of the build or CI):

    python -m venv /tmp/venv-apps16
    echo /tmp/kerasvenv/lib/python3.11/site-packages > /tmp/venv-apps16/lib/python3.11/site-packages/k.pth
    /tmp/venv-apps16/bin/pip install --no-deps "tf_keras==2.21.*"   # matches TensorFlow 2.21
    /tmp/venv-apps16/bin/python tools/make_keras2_fixtures.py

tf.keras 2 saves arithmetic written in a model's code (`x + 3.0`, `tf.math.multiply(x, c)`) as
`TFOpLambda` layers whose calls carry the constants; MobileNetV3's hard_sigmoid is written so.
The models, every weight drawn at random (rounded to multiples of 1/256 so that the files
compress well; the values are what both sides compute with):

- k2_nested_mobilenetv3small: Sequential([MobileNetV3Small(alpha=0.35, include_top=False,
  pooling="avg", input_shape=(32, 32, 3)), Dense(5, softmax)]): TFOpLambda in a nested model
  that keeps its Keras name (`MobileNetV3Small`);
- k2_ops: a small functional model with each form of operation strata maps (a tensor and a
  number either way round, per-channel constants, two tensors, activation functions);
- k2_efficientnet_tiny: EfficientNet's builder at a tenth of B0's width and depth, made as
  `weights="imagenet"` makes it (the download skipped): Rescaling, Normalization (whose
  `count` tf.keras 2 stores as int64) and the `tf.math.multiply` by 1/sqrt(stddev) per channel.

Each is NAME.h5.gz (gzipped; the tests unpack it), NAME.keras (its members deflated) and
NAME.json: a fixed input batch and what tf.keras 2's `predict` returns for it.
"""

import gzip
import json
import os
import pathlib
import zipfile

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "applications"
layers = keras.layers
STEP = 1.0 / 256


def randomize(model, rng):
    """Random weights on a grid of 1/256: moving variances near 1, kernels scaled by their
    fan-in, the rest small, so that deep activations stay in range."""
    weights = []
    for w in model.weights:
        shape, name = tuple(w.shape), w.name
        if "count" in name:
            weights.append(np.array(7, dtype=w.dtype.as_numpy_dtype))
            continue
        if "variance" in name:
            value = rng.uniform(0.5, 1.5, shape)
        elif "mean" in name:
            value = rng.uniform(-0.1, 0.1, shape)
        elif len(shape) >= 2:
            fan_in = int(np.prod(shape[:-2] if "depthwise" in name else shape[:-1]))
            value = rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), shape)
        else:
            value = rng.uniform(-0.2, 0.2, shape) + (1.0 if "gamma" in name else 0.0)
        weights.append((np.round(value / STEP) * STEP).astype("float32"))
    model.set_weights(weights)


def nested_mobilenetv3small():
    base = keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3), alpha=0.35, include_top=False, pooling="avg", weights=None
    )
    model = keras.Sequential([base, layers.Dense(5, activation="softmax")], name="k2_nested_mobilenetv3small")
    return model, (0, 255)


def ops():
    inputs = keras.Input((4, 4, 3))
    x = layers.Conv2D(3, 1, name="conv")(inputs)
    a = tf.nn.relu6(x + 3.0) * (1.0 / 6.0)  # __operators__.add, nn.relu6, math.multiply
    b = 2.0 - a  # the constant first: math.subtract of _CONSTANT_VALUE
    c = b / 4.0 - 0.5  # math.truediv, math.subtract
    d = tf.math.multiply(c, tf.reshape([0.5, 2.0, -1.0], [1, 1, 1, 3]))  # per channel
    e = d * tf.math.sigmoid(x) + x  # two tensors: math.multiply, __operators__.add
    f = 1.5 + tf.nn.silu(e) - tf.math.tanh(x)  # __operators__.add with the constant first
    x = layers.GlobalAveragePooling2D()(f)
    outputs = layers.Dense(4, activation="softmax", name="predictions")(x)
    return keras.Model(inputs, outputs, name="k2_ops"), (-1, 1)


def efficientnet_tiny():
    from tf_keras.src.applications import efficientnet

    # weights="imagenet" adds the per-channel multiply; the download and the loading are skipped.
    get_file, load_weights = efficientnet.data_utils.get_file, keras.Model.load_weights
    efficientnet.data_utils.get_file = lambda *args, **kwargs: "/nonexistent"
    keras.Model.load_weights = lambda *args, **kwargs: None
    try:
        model = efficientnet.EfficientNet(
            0.1,
            0.1,
            32,
            model_name="efficientnetb0",  # the weights' file name is looked up by its end
            include_top=False,
            weights="imagenet",
            input_shape=(32, 32, 3),
            pooling="avg",
        )
    finally:
        efficientnet.data_utils.get_file, keras.Model.load_weights = get_file, load_weights
    model._name = "k2_efficientnet_tiny"
    return model, (0, 255)


def deflated(path):
    """Rewrites the zip archive `path` with its members deflated (Keras stores them)."""
    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as target:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data)


def main():
    rng = np.random.default_rng(216)
    for build in (nested_mobilenetv3small, ops, efficientnet_tiny):
        keras.backend.clear_session()
        model, (low, high) = build()
        name = model.name
        randomize(model, rng)
        # Inputs on a grid too: short to write down, exact in float32.
        x = np.round(rng.uniform(low, high, (2, *model.input_shape[1:])) * 8) / 8
        x = x.astype("float32")
        y = model.predict(x, verbose=0)
        h5 = OUT / f"{name}.h5"
        model.save(h5)
        h5.with_name(h5.name + ".gz").write_bytes(gzip.compress(h5.read_bytes(), 9, mtime=0))
        h5.unlink()
        archive = OUT / f"{name}.keras"
        model.save(archive)
        deflated(archive)
        fixture = {
            "input_shape": list(x.shape),
            "input": [float(v) for v in x.ravel()],
            "output_shape": list(y.shape),
            "output": [float(v) for v in y.ravel()],
            "total_params": int(model.count_params()),
            "nested": [layer.name for layer in model.layers if isinstance(layer, keras.Model)],
        }
        (OUT / f"{name}.json").write_text(json.dumps(fixture) + "\n")
        sizes = [(OUT / f).stat().st_size for f in (f"{name}.h5.gz", f"{name}.keras", f"{name}.json")]
        print(name, fixture["total_params"], "params, bytes:", sizes)


if __name__ == "__main__":
    main()
