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

Keep the files small: weights and inputs are drawn on grids and the archives deflated, so
that the parity fixtures take about a third of their raw size (MobileNet v1's parity is left
out: its layers are all in the others). ResNet, ResNetV2, Inception and
Xception have parity through narrow models of their own blocks (`narrow_families`): the full
ones hold 20-60 million weights.
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


def argument_variants():
    """(name, model) for config-only fixtures of Keras's family arguments: MobileNet's
    depth_multiplier and dropout, MobileNetV3's minimalistic, dropout_rate and
    include_preprocessing, EfficientNetV2's include_preprocessing, and input_tensor (a model
    built on the output of a layer of the caller's graph)."""
    yield "mobilenet_dm2_top", lambda: apps.MobileNet(
        weights=None, alpha=0.5, depth_multiplier=2, dropout=0.1, classes=10
    )
    yield "mobilenetv3small_minimalistic_top", lambda: apps.MobileNetV3Small(
        weights=None,
        minimalistic=True,
        dropout_rate=0.0,
        include_preprocessing=False,
        classes=10,
        input_shape=(224, 224, 3),
    )
    yield "mobilenetv3large_minimalistic_notop", lambda: apps.MobileNetV3Large(
        weights=None, minimalistic=True, include_top=False, input_shape=(96, 96, 3), pooling="max"
    )
    yield "efficientnetv2b0_nopreprocessing_notop", lambda: apps.EfficientNetV2B0(
        weights=None, include_top=False, include_preprocessing=False, input_shape=(96, 96, 3), pooling="avg"
    )

    def on_a_tensor():
        inputs = keras.Input((40, 40, 3))
        scaled = layers.Rescaling(1.0 / 127.5, offset=-1.0)(inputs)
        return apps.MobileNetV2(
            weights=None, alpha=0.35, include_top=False, pooling="avg", input_shape=(40, 40, 3), input_tensor=scaled
        )

    yield "mobilenetv2_input_tensor_notop", on_a_tensor


def argument_configs(only):
    for name, build in argument_variants():
        if only and not any(name.startswith(o) for o in only):
            continue
        keras.backend.clear_session()
        write_config_only(name, build())
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
    # Added after the ones above, so their random weights stay as they were.
    yield from narrow_families()


def narrow_families():
    """Narrow ResNet, ResNetV2, Inception and Xception (the full ones hold 20-60 million
    weights): ResNet's own builder and block functions with few filters; Inception's
    `conv2d_bn` in one block of each kind InceptionV3 has; Xception's entry, middle and exit
    blocks as xception.py writes them, with few filters."""
    from keras.src.applications import inception_v3, resnet

    def resnet_stacks(x):
        x = resnet.stack_residual_blocks_v1(x, 4, 2, stride1=1, name="conv2")
        return resnet.stack_residual_blocks_v1(x, 8, 2, name="conv3")

    yield "resnet_narrow", resnet.ResNet(
        resnet_stacks, False, True, weights=None, input_shape=(32, 32, 3), classes=10, name="resnet_narrow"
    ), (-1, 1)

    def resnet_v2_stacks(x):
        # Two blocks per stack: the second's stride makes the 1x1 max-pooling shortcut.
        x = resnet.stack_residual_blocks_v2(x, 4, 2, name="conv2")
        return resnet.stack_residual_blocks_v2(x, 8, 2, stride1=1, name="conv3")

    yield "resnetv2_narrow", resnet.ResNet(
        resnet_v2_stacks, True, True, weights=None, input_shape=(32, 32, 3), classes=10, name="resnetv2_narrow"
    ), (-1, 1)

    conv = inception_v3.conv2d_bn
    inputs = keras.Input((40, 40, 3))
    x = conv(inputs, 8, 3, 3, strides=(2, 2), padding="valid")
    x = conv(x, 8, 3, 3)
    # mixed0: 1x1, 5x5, double 3x3 and average-pooled branches.
    b1 = conv(x, 4, 1, 1)
    b5 = conv(conv(x, 4, 1, 1), 6, 5, 5)
    b3 = conv(conv(conv(x, 4, 1, 1), 6, 3, 3), 6, 3, 3)
    bp = conv(layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x), 4, 1, 1)
    x = layers.concatenate([b1, b5, b3, bp], name="mixed0")
    # mixed3: the strided reduction with max pooling.
    b3 = conv(x, 8, 3, 3, strides=(2, 2), padding="valid")
    bd = conv(conv(conv(x, 4, 1, 1), 6, 3, 3), 6, 3, 3, strides=(2, 2), padding="valid")
    bp = layers.MaxPooling2D((3, 3), strides=(2, 2))(x)
    x = layers.concatenate([b3, bd, bp], name="mixed3")
    # mixed4: the factorized 7x7 branches.
    b1 = conv(x, 8, 1, 1)
    b7 = conv(conv(conv(x, 4, 1, 1), 4, 1, 7), 8, 7, 1)
    bd = conv(conv(conv(x, 4, 1, 1), 4, 7, 1), 8, 1, 7)
    bp = conv(layers.AveragePooling2D((3, 3), strides=(1, 1), padding="same")(x), 8, 1, 1)
    x = layers.concatenate([b1, b7, bd, bp], name="mixed4")
    # mixed9: the split 1x3 / 3x1 branches.
    b3 = conv(x, 8, 1, 1)
    b3 = layers.concatenate([conv(b3, 6, 1, 3), conv(b3, 6, 3, 1)], name="mixed9_0")
    x = layers.concatenate([conv(x, 8, 1, 1), b3], name="mixed9")
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    yield "inception_narrow", keras.Model(inputs, outputs, name="inception_narrow"), (-1, 1)

    inputs = keras.Input((32, 32, 3))
    x = layers.Conv2D(8, (3, 3), strides=(2, 2), use_bias=False, name="block1_conv1")(inputs)
    x = layers.BatchNormalization(name="block1_conv1_bn")(x)
    x = layers.Activation("relu", name="block1_conv1_act")(x)
    for block, filters in [(2, 16), (3, 24)]:
        residual = layers.Conv2D(filters, (1, 1), strides=(2, 2), padding="same", use_bias=False)(x)
        residual = layers.BatchNormalization()(residual)
        if block > 2:
            x = layers.Activation("relu", name=f"block{block}_sepconv1_act")(x)
        x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=f"block{block}_sepconv1")(x)
        x = layers.BatchNormalization(name=f"block{block}_sepconv1_bn")(x)
        x = layers.Activation("relu", name=f"block{block}_sepconv2_act")(x)
        x = layers.SeparableConv2D(filters, (3, 3), padding="same", use_bias=False, name=f"block{block}_sepconv2")(x)
        x = layers.BatchNormalization(name=f"block{block}_sepconv2_bn")(x)
        x = layers.MaxPooling2D((3, 3), strides=(2, 2), padding="same", name=f"block{block}_pool")(x)
        x = layers.add([x, residual])
    residual = x
    for i in range(1, 4):
        x = layers.Activation("relu", name=f"block5_sepconv{i}_act")(x)
        x = layers.SeparableConv2D(24, (3, 3), padding="same", use_bias=False, name=f"block5_sepconv{i}")(x)
        x = layers.BatchNormalization(name=f"block5_sepconv{i}_bn")(x)
    x = layers.add([x, residual])
    x = layers.SeparableConv2D(32, (3, 3), padding="same", use_bias=False, name="block14_sepconv1")(x)
    x = layers.BatchNormalization(name="block14_sepconv1_bn")(x)
    x = layers.Activation("relu", name="block14_sepconv1_act")(x)
    x = layers.GlobalAveragePooling2D(name="avg_pool")(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    yield "xception_narrow", keras.Model(inputs, outputs, name="xception_narrow"), (-1, 1)

    # NASNet's cells as nasnet.py writes them, at a small width: a reduction cell, then two normal
    # cells, the first adjusting the previous path's size (ZeroPadding2D + Cropping2D, strided
    # 1x1 paths), the second its width (1x1 projection). NASNetMobile itself fixes its widths
    # (4.3 million weights at any input size), and NASNet's builder at its smallest still has
    # four reduction cells (a 1.4 MB archive).
    from keras.src.applications import nasnet

    inputs = keras.Input((16, 16, 3))
    x = layers.Conv2D(
        8, (3, 3), strides=(2, 2), use_bias=False, name="stem_conv1", kernel_initializer="he_normal"
    )(inputs)
    x = layers.BatchNormalization(momentum=0.9997, epsilon=1e-3, name="stem_bn1")(x)
    x, p = nasnet._reduction_a_cell(x, None, 2, block_id="stem_1")
    x, p = nasnet._normal_a_cell(x, p, 4, block_id="0")
    x, p = nasnet._normal_a_cell(x, p, 4, block_id="1")
    x = layers.Activation("relu")(x)
    x = layers.GlobalAveragePooling2D()(x)
    outputs = layers.Dense(10, activation="softmax", name="predictions")(x)
    yield "nasnet_cells", keras.Model(inputs, outputs, name="nasnet_cells"), (-1, 1)


# Weights and inputs are drawn on grids (multiples of 1/256 and 1/8): the archives, deflated,
# and the input lists then take a fraction of the space, and both sides compute on the same
# values as before.
WEIGHT_STEP = 1.0 / 256
INPUT_STEP = 1.0 / 8


def randomize(model, rng):
    """Random weights: moving variances positive and near 1, the rest small enough that a deep
    network's activations stay in range; all on a grid of WEIGHT_STEP."""
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
    model.set_weights([np.round(w / WEIGHT_STEP) * WEIGHT_STEP for w in weights])


def deflated(path):
    """Rewrites the `.keras` archive `path` with its members deflated (Keras stores its weights
    uncompressed; Keras and strata read either)."""
    import zipfile

    with zipfile.ZipFile(path) as source:
        members = [(info.filename, source.read(info)) for info in source.infolist()]
    with zipfile.ZipFile(path, "w") as target:
        for name, data in members:
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            target.writestr(info, data, compresslevel=9)


def parity(only):
    rng = np.random.default_rng(16)
    for name, model, (low, high) in parity_models():
        randomize(model, rng)
        x = (np.round(rng.uniform(low, high, (2, *model.input_shape[1:])) / INPUT_STEP) * INPUT_STEP).astype("float32")
        if only and name not in only:
            continue
        y = model.predict(x, verbose=0)
        model.save(OUT / f"{name}.keras")
        deflated(OUT / f"{name}.keras")
        if name == "nested_mobilenetv2":
            # Keras 3's save_weights of a nested model: the base's layers under its own group
            # (layers/functional/layers/...), for the same model built in Rust.
            weights = OUT / f"{name}.weights.h5"
            model.save_weights(weights)
            weights.with_name(weights.name + ".gz").write_bytes(gzip.compress(weights.read_bytes(), 9, mtime=0))
            weights.unlink()
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
        argument_configs(only)
    parity([] if only == ["--parity"] else only)


if __name__ == "__main__":
    main(sys.argv[1:])
