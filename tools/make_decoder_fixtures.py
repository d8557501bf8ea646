"""Writes the Keras fixtures of the decoder layers (issue #16) under tests/fixtures/keras/:
Conv2DTranspose over several stride, padding and output_padding combinations, and
UpSampling2D with bilinear interpolation.

Run by hand, in a throwaway virtual environment with Keras 3 on TensorFlow (not part of the
build or CI):

    /tmp/kerasvenv/bin/python tools/make_decoder_fixtures.py

For each model it writes NAME.keras and NAME.json (`{"input": [...], "input_shape": [...],
"output": [...], "output_shape": [...]}`: a fixed batch and what Keras's `model.predict`
returns for it), as tools/make_keras_fixtures.py does. Each model runs its branches side by
side on one input, flattened and concatenated, so one fixture checks every combination on its
own. Weights (biases too) are random; the files stay small.
"""

import json
import os
import pathlib

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

import keras  # noqa: E402
import numpy as np  # noqa: E402

OUT = pathlib.Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "keras"
layers = keras.layers


def side_by_side(name, input_shape, branches):
    """A functional model applying each layer of `branches` to one input, outputs flattened
    and concatenated."""
    inputs = keras.Input(input_shape, name="image")
    outputs = [layers.Flatten()(layer(inputs)) for layer in branches]
    return keras.Model(inputs, layers.Concatenate()(outputs), name=name)


def conv_transpose():
    """Conv2DTranspose: valid and same, strides below, equal to and above the kernel, with and
    without output_padding (both paddings), an even kernel, a dilated one, no bias. (An even
    kernel with "same" and output_padding 0 is left out: TensorFlow cannot run it.)"""
    T = layers.Conv2DTranspose
    return side_by_side(
        "conv_transpose",
        (4, 3, 2),
        [
            T(3, 3),
            T(3, 3, strides=2, padding="same"),
            T(2, (3, 2), strides=(2, 3), activation="relu"),
            T(3, 3, strides=2, output_padding=1),
            T(2, 4, strides=2, padding="same"),
            T(2, 3, strides=3, padding="same", output_padding=(2, 1), use_bias=False, activation="tanh"),
            T(2, 5, padding="same"),
            T(2, (2, 3), dilation_rate=2),
        ],
    )


def upsampling_bilinear():
    """UpSampling2D(interpolation="bilinear"): unequal factors and a factor of 4."""
    return side_by_side(
        "upsampling_bilinear",
        (3, 4, 2),
        [
            layers.UpSampling2D((2, 3), interpolation="bilinear"),
            layers.UpSampling2D(4, interpolation="bilinear"),
            layers.UpSampling2D((1, 2), interpolation="bilinear"),
        ],
    )


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(16)
    for model in [conv_transpose(), upsampling_bilinear()]:
        model.set_weights([rng.uniform(-1.0, 1.0, w.shape) for w in model.weights])
        x = rng.uniform(-1.0, 1.0, (3, *model.input_shape[1:])).astype("float32")
        y = model.predict(x, verbose=0)
        fixture = {
            "input_shape": list(x.shape),
            "input": [float(v) for v in x.ravel()],
            "output_shape": list(y.shape),
            "output": [float(v) for v in y.ravel()],
        }
        model.save(OUT / f"{model.name}.keras")
        (OUT / f"{model.name}.json").write_text(json.dumps(fixture) + "\n")
        print(model.name, (OUT / f"{model.name}.keras").stat().st_size, "bytes", y.shape)


if __name__ == "__main__":
    main()
