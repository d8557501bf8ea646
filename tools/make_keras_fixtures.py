"""Writes the Keras import fixtures under tests/fixtures/keras/.

Run by hand, in a throwaway virtual environment (not part of the build or CI):

    python -m venv /tmp/kerasvenv
    /tmp/kerasvenv/bin/pip install tensorflow-cpu
    /tmp/kerasvenv/bin/python tools/make_keras_fixtures.py

For each model it writes NAME.keras (the archive `model.save` writes) and NAME.json
(`{"input": [...], "input_shape": [...], "output": [...], "output_shape": [...]}`, a fixed
batch and what Keras's `model.predict` returns for it, both row-major). Every weight, biases
included, is drawn at random so a transposed kernel or a dropped bias changes the outputs.
The files are small (a few tens of KB each): keep the models tiny.
"""

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras"
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
            keras.Input((8, 8, 2)),
            layers.Conv2D(3, 3, padding="same", activation="relu"),
            layers.MaxPooling2D(2),
            layers.Conv2D(4, (2, 2), use_bias=False),
            layers.AveragePooling2D(2, strides=1),
            layers.Flatten(),
            layers.Dense(3, activation="softmax"),
        ],
        name="cnn",
    ), dict(
        optimizer="sgd",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=False),
        metrics=["accuracy"],
    )
    yield "conv1d", keras.Sequential(
        [
            keras.Input((10, 3)),
            layers.Conv1D(4, 3, activation="relu"),
            layers.MaxPooling1D(2),
            layers.Conv1D(2, 2, strides=2, padding="same"),
            layers.Flatten(),
            layers.Dense(2),
        ],
        name="conv1d",
    ), dict(optimizer=keras.optimizers.RMSprop(0.002), loss="mse")
    yield "global", keras.Sequential(
        [
            keras.Input((12,)),
            layers.Reshape((2, 2, 3)),
            layers.Conv2D(4, 2, padding="same", dilation_rate=1),
            layers.GlobalMaxPooling2D(),
            layers.Reshape((2, 2, 1)),
            layers.Conv2D(3, 1),
            layers.GlobalAveragePooling2D(),
            layers.Activation("sigmoid"),
        ],
        name="global",
    ), None
    # Not yet supported by strata (TODO for the lead once they land): inference-mode
    # BatchNormalization (moving statistics) and Dropout (identity at inference).
    yield "batchnorm", keras.Sequential(
        [
            keras.Input((4,)),
            layers.Dense(5),
            layers.BatchNormalization(),
            layers.Dropout(0.5),
            layers.Dense(2),
        ],
        name="batchnorm",
    ), dict(optimizer="adam", loss="mse")
    # Functional: a residual block with a shared layer (called twice), Add, Concatenate and
    # BatchNormalization.
    inputs = keras.Input((6,), name="pixels")
    shared = layers.Dense(6, activation="tanh", name="shared")
    hidden = shared(inputs)
    again = shared(hidden)
    residual = layers.Add(name="skip")([inputs, again])
    normalized = layers.BatchNormalization(name="norm")(residual)
    joined = layers.Concatenate(name="join")([normalized, hidden])
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(joined)
    yield "residual", keras.Model(inputs, outputs, name="residual"), dict(
        optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"]
    )
    # Two inputs, two outputs, one loss each with loss weights.
    left = keras.Input((3,), name="left")
    right = keras.Input((2,), name="right")
    merged = layers.Concatenate()([left, right])
    hidden = layers.Dense(4, activation="relu")(merged)
    label = layers.Dense(2, activation="softmax", name="label")(hidden)
    score = layers.Dense(1, name="score")(hidden)
    yield "two_heads", keras.Model([left, right], [label, score], name="two_heads"), dict(
        optimizer="rmsprop",
        loss=["sparse_categorical_crossentropy", "mse"],
        loss_weights=[1.0, 0.5],
        metrics=[["accuracy"], []],
    )
    # Never supported: an import must name this layer in its error.
    yield "lstm", keras.Sequential(
        [keras.Input((5, 3)), layers.LSTM(2), layers.Dense(1)],
        name="lstm",
    ), None


def sequence_models():
    """Recurrent fixtures, drawn after the others so their files stay the same."""
    yield "gru", keras.Sequential(
        [
            keras.Input((6,)),
            layers.Embedding(10, 4),
            layers.GRU(3, return_sequences=True),
            layers.SimpleRNN(2),
            layers.Dense(2),
        ],
        name="gru",
    ), None


def open_length_models():
    """A sequence of any length (`keras.Input((None,))`, as keras.io's text models declare
    it), drawn after the others so their files stay the same; its fixture input has 7 steps."""
    yield "any_length", keras.Sequential(
        [keras.Input((None,)), layers.Embedding(10, 4), layers.LSTM(3), layers.Dense(2)],
        name="any_length",
    ), None


def newer_layers():
    """Keras 3's `RMSNormalization` and `ZeroPadding1D` on a short token sequence, and
    `Conv1D(padding="causal")` (dilated, strided), drawn last so the other fixtures' files stay
    the same."""
    yield "rms_padding", keras.Sequential(
        [keras.Input((6,)), layers.Embedding(10, 4), layers.ZeroPadding1D((2, 1)), layers.Conv1D(3, 3),
         layers.RMSNormalization(epsilon=1e-5), layers.GlobalAveragePooling1D(), layers.Dense(2)],
        name="rms_padding",
    ), None
    yield "causal_conv1d", keras.Sequential(
        [keras.Input((9, 3)), layers.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="relu"),
         layers.Conv1D(2, 2, padding="causal", strides=2)],
        name="causal_conv1d",
    ), None


def write_hdf5_layouts():
    """hdf5_layouts.h5: datasets in layouts and types Keras does not write, for the reader's
    tests: one it reads (compact) and ones it must refuse by name."""
    import h5py

    with h5py.File(OUT / "hdf5_layouts.h5", "w") as f:
        dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
        dcpl.set_layout(h5py.h5d.COMPACT)
        space = h5py.h5s.create_simple((2, 3))
        compact = h5py.h5d.create(f.id, b"compact", h5py.h5t.IEEE_F32LE, space, dcpl=dcpl)
        compact.write(h5py.h5s.ALL, h5py.h5s.ALL, np.arange(6, dtype="<f4").reshape(2, 3))
        f.create_dataset("chunked", data=np.ones(4, "<f4"), chunks=(2,))
        f.create_dataset("big_endian", data=np.ones(3, ">f4"))
        f.create_dataset("float64", data=np.ones(3, "<f8"))


def application_blocks():
    """The layers of the Keras Applications (issue #16): MobileNet's input scaling, padding and
    ReLU6, a depthwise convolution, squeeze-and-excitation's broadcast Multiply, a separable
    convolution, upsampling and cropping. Last in the list, so the other fixtures' random
    draws are unchanged."""
    inputs = keras.Input((8, 8, 3), name="image")
    x = layers.Rescaling(1 / 127.5, offset=-1.0)(inputs)
    x = layers.ZeroPadding2D(((0, 1), (0, 1)))(x)
    x = layers.Conv2D(4, 3, strides=2)(x)
    x = layers.ReLU(6.0)(x)
    x = layers.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="hard_swish")(x)
    gate = layers.GlobalAveragePooling2D()(x)
    gate = layers.Dense(8, activation="hard_sigmoid")(gate)
    gate = layers.Reshape((1, 1, 8))(gate)
    x = layers.Multiply()([gate, x])
    x = layers.SeparableConv2D(4, 3, padding="same", activation="silu")(x)
    x = layers.UpSampling2D(2)(x)
    x = layers.Cropping2D(((1, 0), (0, 1)))(x)
    x = layers.Flatten()(x)
    outputs = layers.Dense(3, activation="softplus")(x)
    yield "application_blocks", keras.Model(inputs, outputs, name="application_blocks"), None


def more_layers():
    """Layers the classic programs use (Softmax, LeakyReLU, ELU, PReLU, Masking, RepeatVector,
    SpatialDropout1D, AveragePooling1D, GlobalMaxPooling1D, Identity), in one model whose input
    has fully masked steps. Last in the list, so the other fixtures' random draws are unchanged."""
    yield "masked_sequence_layers", keras.Sequential(
        [
            keras.Input((7, 5)),
            layers.Masking(0.0),
            layers.GRU(4, return_sequences=True),
            layers.LeakyReLU(0.1),
            layers.PReLU(shared_axes=[1]),
            layers.SpatialDropout1D(0.3),
            layers.AveragePooling1D(2),
            layers.GlobalMaxPooling1D(),
            layers.Dense(6),
            layers.ELU(0.7),
            layers.Identity(),
            layers.RepeatVector(3),
            layers.LSTM(3),
            layers.Dense(4),
            layers.Softmax(),
        ],
        name="masked_sequence_layers",
    ), None


def shared_nested():
    """Nested models called more than once (issue #16): a Siamese network (one encoder, with a
    layer shared inside it, called on two inputs) and a Sequential block called on its own
    output twice. Last in the list, so the other fixtures' random draws are unchanged."""
    pixels = keras.Input((5,), name="pixels")
    hidden = layers.Dense(5, activation="tanh", name="inner_shared")
    x = hidden(pixels)
    x = hidden(x)
    encoder = keras.Model(pixels, layers.Dense(4, activation="relu", name="code")(x), name="encoder")
    left, right = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    distance = layers.Subtract(name="distance")([encoder(left), encoder(right)])
    score = layers.Dense(1, activation="sigmoid", name="score")(distance)
    yield "siamese", keras.Model([left, right], score, name="siamese"), None

    block = keras.Sequential([keras.Input((6,)), layers.Dense(6, activation="tanh"), layers.Dense(6)], name="block")
    inputs = keras.Input((6,), name="features")
    x = block(block(block(inputs)))
    outputs = layers.Dense(3, activation="softmax", name="probabilities")(x)
    yield "nested_thrice", keras.Model(inputs, outputs, name="nested_thrice"), None

    # A model holding a nested model (called twice inside it), itself called twice.
    block = keras.Sequential([keras.Input((5,)), layers.Dense(5, activation="tanh")], name="block")
    pixels = keras.Input((5,), name="pixels")
    encoder = keras.Model(pixels, layers.Dense(4, activation="relu", name="code")(block(block(pixels))), name="encoder")
    left, right = keras.Input((5,), name="left"), keras.Input((5,), name="right")
    distance = layers.Subtract(name="distance")([encoder(left), encoder(right)])
    score = layers.Dense(1, activation="sigmoid", name="score")(distance)
    yield "siamese_nested", keras.Model([left, right], score, name="siamese_nested"), None


def functional_masking():
    """`Masking` in a functional model, which Keras 3 writes as `not_equal` and `any` operations
    handed to each call that takes the mask as `mask=`: an LSTM over the steps and its
    mask-aware mean, and a GRU. Last in the list, so the other fixtures' random draws are
    unchanged."""
    inputs = keras.Input((7, 5))
    x = layers.Masking(0.0)(inputs)
    pooled = layers.GlobalAveragePooling1D()(layers.LSTM(4, return_sequences=True)(x))
    last = layers.GRU(3)(x)
    outputs = layers.Dense(2, activation="softmax")(layers.Concatenate()([pooled, last]))
    yield "masked_functional", keras.Model(inputs, outputs, name="masked_functional"), None

    # Embedding(mask_zero=True)'s mask through the layers Keras passes it on (Activation, ReLU,
    # BatchNormalization), read by a GRU and by self-attention with its mask-aware mean.
    ids = keras.Input((9,))
    x = layers.Embedding(6, 4, mask_zero=True)(ids)
    x = layers.BatchNormalization()(layers.ReLU()(layers.Activation("tanh")(x)))
    last = layers.GRU(3)(x)
    attended = layers.GlobalAveragePooling1D()(layers.MultiHeadAttention(2, 2)(x, x))
    outputs = layers.Dense(2)(layers.Concatenate()([last, attended]))
    yield "masked_through_layers", keras.Model(ids, outputs, name="masked_through_layers"), None

    # Merged masks, as Keras 3 joins them: Add of two masks (a step is real where either is),
    # Add of a masked and an unmasked input (no mask), Concatenate along the features with an
    # unmasked input (every step real) and along the steps (the masks side by side).
    steps = keras.Input((6, 3))
    zero = layers.Masking(0.0)(steps)
    half = layers.Masking(0.5)(steps)
    either = layers.LSTM(2)(layers.Add()([zero, half]))
    mixed = layers.GRU(2)(layers.Add()([zero, layers.Dense(3)(steps)]))
    features = layers.SimpleRNN(2)(layers.Concatenate()([zero, layers.Dense(2)(steps)]))
    joined = layers.LSTM(2)(layers.Concatenate(axis=1)([zero, half]))
    outputs = layers.Concatenate()([either, mixed, features, joined])
    yield "masked_merges", keras.Model(steps, outputs, name="masked_merges"), None


def main(only=None):
    """Writes every fixture, or only those named on the command line (the others' random
    draws are still made, in order, so each file is the same whichever are written)."""
    OUT.mkdir(parents=True, exist_ok=True)
    if not only:
        write_hdf5_layouts()
    rng = np.random.default_rng(0)
    for name, model, compile_args in [*models(), *sequence_models(), *application_blocks(), *more_layers(), *shared_nested(),
                                     *open_length_models(), *newer_layers(), *functional_masking()]:
        # Random everything, moving variances kept positive.
        model.set_weights([rng.uniform(0.1 if "variance" in w.path else -1.0, 1.0, w.shape) for w in model.weights])
        if compile_args:
            model.compile(**compile_args)
        if len(model.inputs) > 1 or len(model.outputs) > 1:
            # Several inputs or outputs: lists of {"shape", "values"}.
            xs = [rng.uniform(-1.0, 1.0, (3, *i.shape[1:])).astype("float32") for i in model.inputs]
            ys = model.predict(xs, verbose=0)
            ys = ys if len(model.outputs) > 1 else [ys]
            fixture = {
                "inputs": [{"shape": list(x.shape), "values": [float(v) for v in x.ravel()]} for x in xs],
                "outputs": [{"shape": list(y.shape), "values": [float(v) for v in y.ravel()]} for y in ys],
            }
        elif isinstance(model.layers[0], layers.Embedding) or name == "masked_through_layers":
            steps = [7 if d is None else d for d in model.input_shape[1:]]
            embedding = next(layer for layer in model.layers if isinstance(layer, layers.Embedding))
            x = rng.integers(0, embedding.input_dim, (3, *steps)).astype("float32")
            if name == "masked_through_layers":
                # Padding in front of one sample, at the end of another.
                x[0, :3] = 0.0
                x[1, -2:] = 0.0
            y = model.predict(x, verbose=0)
            fixture = {
                "input_shape": list(x.shape),
                "input": [float(v) for v in x.ravel()],
                "output_shape": list(y.shape),
                "output": [float(v) for v in y.ravel()],
            }
        else:
            x = rng.uniform(-1.0, 1.0, (3, *model.input_shape[1:])).astype("float32")
            if name.startswith("masked"):
                # Padded steps (every feature 0) at the end of one sample and inside another.
                x[0, 4:, :] = 0.0
                x[2, 1, :] = 0.0
                if name == "masked_merges":
                    # Steps Masking(0.5) masks.
                    x[1, 2, :] = 0.5
                    x[2, 4:, :] = 0.5
            y = model.predict(x, verbose=0)
            fixture = {
                "input_shape": list(x.shape),
                "input": [float(v) for v in x.ravel()],
                "output_shape": list(y.shape),
                "output": [float(v) for v in y.ravel()],
            }
        if only and name not in only:
            continue
        model.save(OUT / f"{name}.keras")
        if name == "masked_functional":
            # Keras 3's legacy writer too, which leaves the operations' module out.
            model.save(OUT / f"{name}.h5")
        (OUT / f"{name}.json").write_text(json.dumps(fixture) + "\n")
        print(name, (OUT / f"{name}.keras").stat().st_size, "bytes")


if __name__ == "__main__":
    import sys

    main(sys.argv[1:])
