"""Writes tests/fixtures/keras/operations/: small functional models written with Keras 3
operations on Keras tensors instead of layers (`x + shortcut`, `keras.ops.relu`,
`keras.ops.mean(x, axis=1)`, `keras.ops.concatenate`, `keras.ops.reshape`), and with inputs and
outputs given as dicts, as users write them, with random weights and what Keras's `predict` returned for a fixed batch, for
tests/keras_operations.rs to check `strata::io::import_keras_file` against. Two more archives
are refused by the import: an operation on a masked sequence (Keras's operations drop the mask)
and operations strata has no layer for.

Each model is NAME.keras with NAME.json beside it ({"inputs", "outputs"}: shapes and values).
Run by hand with a Python holding Keras 3 (and TensorFlow or JAX as its backend):

    /tmp/tfvenv/bin/python tools/make_keras_operations.py
"""

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402
from keras import layers, ops  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras" / "operations"


def dense_ops():
    """A residual MLP written with operators and activation functions of keras.ops."""
    i = keras.Input((6,), name="x")
    h = layers.Dense(8, name="hidden")(i)
    a = ops.relu(h)
    b = ops.sigmoid(h)
    x = a * b + h  # Multiply, then Add: two tensors each
    x = ops.maximum(x, ops.tanh(h)) - ops.minimum(a, b)
    x = -ops.gelu(x) / 2.0
    x = ops.leaky_relu(x, negative_slope=0.1) + ops.elu(x, alpha=0.5)
    x = ops.silu(ops.hard_sigmoid(x) * 3.0 - 1.0)
    outputs = ops.softmax(layers.Dense(4, name="logits")(x), axis=-1)
    return keras.Model(i, outputs, name="dense_ops"), [(5, 6)]


def sequence_ops():
    """Mean and max over a sequence's steps, concatenated: a text classifier's pooling."""
    i = keras.Input((7,), dtype="int32", name="tokens")
    e = layers.Embedding(20, 6, name="embedding")(i)
    h = layers.Dense(6, name="project")(e)
    mean = ops.mean(h, axis=1)
    peak = ops.max(h, axis=-2)
    x = ops.concatenate([mean, peak], axis=-1)
    kept = ops.max(e, axis=1, keepdims=True)  # (N, 1, 6)
    x = ops.concatenate([x, ops.squeeze(kept, axis=1)], axis=-1)
    outputs = ops.log_softmax(layers.Dense(3, name="classes")(x))
    return keras.Model(i, outputs, name="sequence_ops"), [(4, 7)]


def image_ops():
    """A residual convolution, `relu(conv(x) + conv1x1(x))`, pooled by `mean` over the
    positions, with `reshape` and `expand_dims` on the way."""
    i = keras.Input((8, 8, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(i)
    y = layers.Conv2D(4, 1, name="shortcut")(i)
    x = ops.relu6(x + y)
    pooled = ops.mean(x, axis=[1, 2], keepdims=True)  # squeeze-and-excitation's shape
    x = x * ops.sigmoid(pooled)
    peak = ops.max(x, axis=(1, 2))
    flat = ops.reshape(x, (-1, 8 * 8 * 4))
    column = ops.expand_dims(layers.Dense(5, name="squeeze")(flat), -1)  # (N, 5, 1)
    column = ops.reshape(column, (-1, 5))
    x = ops.concatenate([peak, column], axis=1)
    return keras.Model(i, layers.Dense(2, name="out")(x), name="image_ops"), [(3, 8, 8, 3)]


def permute_ops():
    """`Permute` and `keras.ops.transpose` keeping the batch first."""
    i = keras.Input((4, 6, 2), name="x")
    x = layers.Permute((3, 1, 2), name="channels_first")(i)  # (N, 2, 4, 6)
    x = ops.transpose(x, (0, 1, 3, 2))  # (N, 2, 6, 4)
    x = ops.transpose(layers.Reshape((12, 4), name="rows")(x), (0, 2, 1))  # (N, 4, 12)
    x = layers.Dense(3, name="mix")(x)  # (N, 4, 3)
    x = ops.transpose(x, (0, 2, 1))  # (N, 3, 4)
    return keras.Model(i, layers.Flatten(name="flat")(x), name="permute_ops"), [(3, 4, 6, 2)]


def dense_on_images():
    """Dense on each pixel of an image (ConvNeXt's pointwise MLP), as Keras applies it on the
    last axis of any rank."""
    i = keras.Input((5, 5, 3), name="image")
    x = layers.Conv2D(4, 3, padding="same", name="conv")(i)
    x = layers.Dense(6, activation="gelu", name="expand")(x)
    x = layers.Dense(4, name="project")(x)
    return keras.Model(i, layers.GlobalAveragePooling2D(name="pool")(x), name="dense_on_images"), [(2, 5, 5, 3)]


def dict_io():
    """Inputs and outputs given as dicts, which Keras orders by key; compiled with a loss per
    output by name."""
    late = keras.Input((2,), name="zz")
    early = keras.Input((3,), name="aa")
    h = layers.Concatenate(name="joined")([late, early])
    outputs = {"second": layers.Dense(1, name="d1")(h), "first": layers.Dense(2, name="d2")(h)}
    m = keras.Model({"zz": late, "aa": early}, outputs, name="dict_io")
    m.compile("adam", loss={"first": "mse", "second": "mae"})
    return m, [(4, 3), (4, 2)]  # in Keras's order: aa, zz


def masked_op():
    """An operation on a masked sequence: Keras drops the mask, so the LSTM reads every step."""
    i = keras.Input((5,), dtype="int32", name="tokens")
    e = layers.Embedding(10, 4, mask_zero=True, name="embedding")(i)
    x = ops.relu(e)
    return keras.Model(i, layers.LSTM(3, name="lstm")(x), name="masked_op"), [(2, 5)]


def unsupported_ops():
    """Operations no layer of strata computes: each named by the import."""
    i = keras.Input((4, 6), name="x")
    a = ops.matmul(i, ops.swapaxes(i, 1, 2))
    b = ops.sum(a, axis=1)
    return keras.Model(i, ops.sqrt(ops.abs(b)), name="unsupported_ops"), [(2, 4, 6)]


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(23)
    for make in (dense_ops, sequence_ops, image_ops, permute_ops, dense_on_images, dict_io, masked_op, unsupported_ops):
        m, shapes = make()
        m.set_weights([rng.uniform(-0.8, 0.8, w.shape).astype("float32") for w in m.get_weights()])
        inputs = []
        for shape, spec in zip(shapes, m.inputs):
            if "int" in str(spec.dtype):
                tokens = rng.integers(1, 10, shape)
                tokens[:, -2:] = 0  # padding, which a mask would hide
                inputs.append(tokens.astype("int32"))
            else:
                inputs.append(rng.normal(size=shape).astype("float32"))
        if isinstance(m.input, dict):
            y = m.predict(dict(zip(sorted(m.input), inputs)), verbose=0)
        else:
            y = m.predict(inputs[0] if len(inputs) == 1 else inputs, verbose=0)
        # A dict of outputs in Keras's order: by key.
        ys = [y[key] for key in sorted(y)] if isinstance(y, dict) else [y]
        tensor = lambda t: {"shape": list(t.shape), "values": [float(v) for v in np.ravel(t)]}  # noqa: E731
        fixture = {"inputs": [tensor(x) for x in inputs], "outputs": [tensor(y) for y in ys]}
        m.save(OUT / f"{make.__name__}.keras")
        (OUT / f"{make.__name__}.json").write_text(json.dumps(fixture) + "\n")
        print(make.__name__, (OUT / f"{make.__name__}.keras").stat().st_size, "bytes")


if __name__ == "__main__":
    main()
