"""Writes the Keras weights-file fixtures under tests/fixtures/keras/applications/ (issue #16):
the weights of a small MobileNetV3Small in the two layouts Keras writes weights-only files in,
for the model strata's Rust builder makes (`strata::applications::mobilenet_v3_small`).

Run by hand, in throwaway virtual environments (not part of the build or CI), Keras 3 first:

    /tmp/kerasvenv/bin/python tools/make_keras_weights_files.py
    # tf.keras 2.x (the tf_keras package), whose writer made the weights="imagenet" files:
    python -m venv /tmp/tfkeras2venv
    echo /tmp/kerasvenv/lib/python3.11/site-packages > /tmp/tfkeras2venv/lib/python3.11/site-packages/k.pth
    /tmp/tfkeras2venv/bin/pip install --no-deps "tf_keras==2.21.*"
    /tmp/tfkeras2venv/bin/python tools/make_keras_weights_files.py --tf-keras

Each HDF5 file is stored gzipped (NAME.gz, about half the size). The model: MobileNetV3Small(alpha=ALPHA, minimalistic=True, include_top=False, pooling="avg",
input_shape=(32, 32, 3), weights=None), every weight drawn at random.

- mobilenetv3small_min.weights.h5: Keras 3's `model.save_weights("x.weights.h5")`, which finds
  weights by position (`layers/conv2d_3/vars/0`), not by layer name;
- mobilenetv3small_min.h5: Keras 3's `model.save("m.h5")`, the legacy whole-model file, to
  import (architecture and weights);
- mobilenetv3small_min.json: a fixed input batch (images in [0, 255]; the model rescales them
  itself) and what Keras 3's `predict` returns for it;
- mobilenetv3small_min_tf_keras2.h5 (with --tf-keras): the same weights as tf.keras 2's
  `save_weights("w.h5")` writes them, the layout of the `*_weights_tf_dim_ordering_tf_kernels*.h5`
  and `weights_mobilenet_v3_*.h5` files `weights="imagenet"` downloads. tf.keras 2 names these
  layers otherwise (`Conv`, `Conv/BatchNorm`, `expanded_conv/depthwise`) than Keras 3 (`conv`,
  `conv_bn`, `expanded_conv_depthwise`), so the file loads by layer order, as Keras 3 loads it.

The Keras 3 run leaves the weights, layer by layer, in /tmp/mobilenetv3small_min.npz for the
tf.keras 2 run.
"""

import gzip
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

TF_KERAS = "--tf-keras" in sys.argv
if TF_KERAS:
    import tf_keras as keras  # noqa: E402
else:
    import keras  # noqa: E402
import numpy as np  # noqa: E402

HERE = pathlib.Path(__file__).resolve().parent
OUT = HERE.parent / "tests" / "fixtures" / "keras" / "applications"
NAME = "mobilenetv3small_min"
SHARED = pathlib.Path("/tmp") / f"{NAME}.npz"
ALPHA = 0.35


def gzipped(path):
    """Replaces `path` by `path.gz`: the HDF5 files are more than half empty B-tree nodes and
    heaps, which gzip takes away (the tests unpack them)."""
    path.with_name(path.name + ".gz").write_bytes(gzip.compress(path.read_bytes(), 9, mtime=0))
    path.unlink()


def build():
    return keras.applications.MobileNetV3Small(
        input_shape=(32, 32, 3),
        alpha=ALPHA,
        minimalistic=True,
        include_top=False,
        pooling="avg",
        weights=None,
    )


def with_weights(model):
    """The layers that hold weights, in the model's (Keras's) layer order."""
    return [layer for layer in model.layers if layer.get_weights()]


def keras3():
    sys.path.insert(0, str(HERE))
    from make_keras_applications import randomize

    model = build()
    rng = np.random.default_rng(1616)
    randomize(model, rng)
    # Whole pixel values, as images have (and short to write down).
    x = rng.integers(0, 256, (2, 32, 32, 3)).astype("float32")
    y = model.predict(x, verbose=0)
    model.save_weights(OUT / f"{NAME}.weights.h5")
    model.save(OUT / f"{NAME}.h5")
    gzipped(OUT / f"{NAME}.weights.h5")
    gzipped(OUT / f"{NAME}.h5")
    fixture = {
        "input_shape": list(x.shape),
        "input": [float(v) for v in x.ravel()],
        "output_shape": list(y.shape),
        "output": [float(v) for v in y.ravel()],
        "total_params": int(model.count_params()),
    }
    (OUT / f"{NAME}.json").write_text(json.dumps(fixture) + "\n")
    arrays = {}
    for i, layer in enumerate(with_weights(model)):
        for j, w in enumerate(layer.get_weights()):
            arrays[f"{i:04d}_{j}"] = w
    np.savez(SHARED, **arrays)
    print(NAME, fixture["total_params"], "params,", (OUT / f"{NAME}.weights.h5.gz").stat().st_size, "bytes gzipped")


def tf_keras2():
    model = build()
    stored = np.load(SHARED)
    layers = with_weights(model)
    count = len({key.split("_")[0] for key in stored.files})
    assert count == len(layers), f"Keras 3 has {count} layers with weights, tf.keras 2 {len(layers)}"
    for i, layer in enumerate(layers):
        weights = [stored[f"{i:04d}_{j}"] for j in range(len(layer.get_weights()))]
        for mine, theirs in zip(layer.get_weights(), weights):
            assert mine.shape == theirs.shape, (layer.name, mine.shape, theirs.shape)
        layer.set_weights(weights)
    path = OUT / f"{NAME}_tf_keras2.h5"
    model.save_weights(str(path))
    gzipped(path)
    print(path.name, "first layers:", [layer.name for layer in layers[:3]])


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    tf_keras2() if TF_KERAS else keras3()
