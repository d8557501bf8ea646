"""Writes the Keras Applications fixtures under tests/fixtures/keras/applications/ (issue #16).

Run by hand, in a throwaway virtual environment (not part of the build or CI):

    /tmp/kerasvenv/bin/python tools/make_keras_applications.py [NAME ...]

Two kinds of fixture, both with random weights (`weights=None`: no download):

- Architecture only, for every application: NAME.json.gz holds what a `.keras` archive's
  config.json holds (the model's serialized config, no weights), the per-sample input shape,
  and for each layer Keras's `count_params()` and output shape. One with the classifier
  (`include_top=True`, default input size, `classes=10` to keep it small) and one without it at
  a small input (`include_top=False`). The full models would be hundreds of MB of weights.
- Full parity, for a few narrow or small-input variants: NAME.keras (`model.save`), and
  NAME.json with a fixed input batch and what Keras's `predict` returns for it, row-major.
  One of them is a nested model (an application used as a layer of a Sequential).

Keep the files small: all of them together stay under about 7 MB (MobileNet v1's parity
is left out for that: its layers are all in the others).
"""

import gzip
import json
import os
import pathlib
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "applications"
apps = keras.applications
layers = keras.layers

# (fixture name, constructor, smallest square input it takes without the classifier).
ARCHITECTURES = [
    ("vgg16", apps.VGG16, 32),
    ("vgg19", apps.VGG19, 32),
    ("resnet50", apps.ResNet50, 32),
    ("resnet101", apps.ResNet101, 32),
    ("resnet152", apps.ResNet152, 32),
    ("resnet50v2", apps.ResNet50V2, 32),
    ("resnet101v2", apps.ResNet101V2, 32),
    ("resnet152v2", apps.ResNet152V2, 32),
    ("mobilenet", apps.MobileNet, 32),
    ("mobilenetv2", apps.MobileNetV2, 32),
    ("mobilenetv3small", apps.MobileNetV3Small, 32),
    ("mobilenetv3large", apps.MobileNetV3Large, 32),
    ("densenet121", apps.DenseNet121, 32),
    ("densenet169", apps.DenseNet169, 32),
    ("densenet201", apps.DenseNet201, 32),
    *[(f"efficientnetb{i}", getattr(apps, f"EfficientNetB{i}"), 32) for i in range(8)],
    *[(f"efficientnetv2b{i}", getattr(apps, f"EfficientNetV2B{i}"), 32) for i in range(4)],
    ("inceptionv3", apps.InceptionV3, 75),
    ("xception", apps.Xception, 71),
    ("nasnetmobile", apps.NASNetMobile, 32),
]
# The small input of the `include_top=False` variants (at least each one's minimum).
SMALL = 96


def per_layer(model):
    """Each layer's name, class, Keras's `count_params()` and per-sample output shape."""
    rows = []
    for layer in model.layers:
        shape = layer.output.shape if not isinstance(layer.output, list) else layer.output[0].shape
        rows.append(
            {
                "name": layer.name,
                "class_name": layer.__class__.__name__,
                "params": int(layer.count_params()),
                "output_shape": [None if d is None else int(d) for d in shape[1:]],
            }
        )
    return rows


def write_config_only(name, model):
    """NAME.json.gz: the archive's config.json content, input shape and per-layer counts."""
    fixture = {
        "config": keras.saving.serialize_keras_object(model),
        "input_shape": [int(d) for d in model.input_shape[1:]],
        "output_shape": [int(d) for d in model.output_shape[1:]],
        "total_params": int(model.count_params()),
        "layers": per_layer(model),
    }
    path = OUT / f"{name}.json.gz"
    # mtime=0: the same model writes the same bytes.
    with open(path, "wb") as raw, gzip.GzipFile(fileobj=raw, mode="wb", mtime=0) as f:
        f.write(json.dumps(fixture, separators=(",", ":")).encode())
    print(name, path.stat().st_size, "bytes", fixture["total_params"], "params")


def config_only(only):
    for name, build, smallest in ARCHITECTURES:
        if only and not any(o.startswith(name) for o in only):
            continue
        model = build(weights=None, include_top=True, classes=10)
        if None in model.input_shape[1:]:
            # MobileNetV3 leaves the input size open; its default size is 224. A fresh session
            # gives the rebuilt model Keras's first names (`input_layer`, not `input_layer_1`).
            keras.backend.clear_session()
            model = build(weights=None, include_top=True, classes=10, input_shape=(224, 224, 3))
        write_config_only(f"{name}_top", model)
        keras.backend.clear_session()
        size = max(SMALL, smallest)
        write_config_only(f"{name}_notop", build(weights=None, include_top=False, input_shape=(size, size, 3)))
        keras.backend.clear_session()


def parity_models():
    """(name, model, input range) for the full-parity fixtures: narrow or small-input variants
    (the full-size ones hold millions of weights), with Keras's own builders where the named
    application has no small setting. Inputs are images in [0, 255] for the models that scale
    their input themselves, in [-1, 1] (as `preprocess_input` gives) for the others."""
    from keras.src.applications import densenet, efficientnet

    yield "mobilenetv3small_a035", apps.MobileNetV3Small(
        weights=None, alpha=0.35, input_shape=(64, 64, 3), classes=10
    ), (0, 255)
    # EfficientNet's builder at a quarter of B0's width and depth: Rescaling, Normalization
    # (mean, variance and count weights), swish, squeeze-and-excitation, drop-connect Dropout.
    yield "efficientnet_tiny", efficientnet.EfficientNet(
        0.25, 0.25, 64, weights=None, input_shape=(32, 32, 3), classes=10, name="efficientnet_tiny"
    ), (0, 255)
    # DenseNet's builder with one block per stage: Concatenate along channels, AveragePooling.
    yield "densenet_tiny", densenet.DenseNet(
        [1, 1, 1, 1], weights=None, input_shape=(32, 32, 3), classes=10, name="densenet_tiny"
    ), (-1, 1)
    base = apps.MobileNetV2(weights=None, alpha=0.35, include_top=False, input_shape=(48, 48, 3))
    yield "nested_mobilenetv2", keras.Sequential(
        [keras.Input((48, 48, 3)), base, layers.GlobalAveragePooling2D(), layers.Dense(5, activation="softmax")],
        name="nested_mobilenetv2",
    ), (-1, 1)


def randomize(model, rng):
    """Random weights: moving variances positive and near 1, the rest small enough that a deep
    network's activations stay in range."""
    weights = []
    for w in model.weights:
        if "variance" in w.path:
            weights.append(rng.uniform(0.5, 1.5, w.shape))
        elif "mean" in w.path:
            weights.append(rng.uniform(-0.1, 0.1, w.shape))
        elif len(w.shape) >= 2:
            fan_in = int(np.prod(w.shape[:-1])) if "depthwise" not in w.path else int(np.prod(w.shape[:-2]))
            weights.append(rng.normal(0.0, 1.0 / np.sqrt(max(fan_in, 1)), w.shape))
        else:
            weights.append(rng.uniform(-0.2, 0.2, w.shape) + (1.0 if "gamma" in w.path or "scale" in w.path else 0.0))
    model.set_weights(weights)


def parity(only):
    rng = np.random.default_rng(16)
    for name, model, (low, high) in parity_models():
        randomize(model, rng)
        x = rng.uniform(low, high, (2, *model.input_shape[1:])).astype("float32")
        if only and name not in only:
            continue
        y = model.predict(x, verbose=0)
        model.save(OUT / f"{name}.keras")
        fixture = {
            "input_shape": list(x.shape),
            "input": [float(v) for v in x.ravel()],
            "output_shape": list(y.shape),
            "output": [float(v) for v in y.ravel()],
            "total_params": int(model.count_params()),
        }
        (OUT / f"{name}.json").write_text(json.dumps(fixture) + "\n")
        print(name, (OUT / f"{name}.keras").stat().st_size, "bytes", fixture["total_params"], "params")
        keras.backend.clear_session()


def main(only):
    """Writes every fixture, or those whose names start with an argument (`--parity`: only
    the parity fixtures)."""
    OUT.mkdir(parents=True, exist_ok=True)
    if only != ["--parity"]:
        config_only(only)
    parity([] if only == ["--parity"] else only)


if __name__ == "__main__":
    main(sys.argv[1:])
