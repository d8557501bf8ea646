"""Keras models converted to ONNX by tf2onnx (NHWC graphs), with an input and ONNX Runtime's
output, for ONNX import's parity test (tests/onnx_import.rs reads tests/fixtures/onnx_general).

    python3 -m venv /tmp/venv-tf2onnx && /tmp/venv-tf2onnx/bin/pip install tensorflow-cpu tf2onnx onnxruntime
    /tmp/venv-tf2onnx/bin/python tools/tf2onnx_fixtures.py tests/fixtures/onnx_general [NAME ...]

Each NAME gives NAME.onnx, NAME.input.npy (NHWC, as Keras and the ONNX file take it) and
NAME.output.npy. `tf2onnx.convert.from_keras` needs an input signature with Keras 3 (without
one it looks for Keras 2's `_get_save_spec`); when it fails anyway the model is converted as
a `tf.function` (`from_function`). Weights are Keras's random initial ones (no download), with
batch normalization statistics other than 0 and 1 and biases other than 0.
"""

import os
import sys

import numpy as np
import onnxruntime
import tensorflow as tf
import tf2onnx

OPSET = 17


def small_cnn():
    """Conv / batch norm / ReLU / pooling / Flatten / Dense: Keras's Flatten of an NHWC map."""
    keras = tf.keras
    inputs = keras.Input((12, 12, 3), name="image")
    x = keras.layers.Conv2D(6, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.BatchNormalization()(x)
    x = keras.layers.MaxPooling2D()(x)
    x = keras.layers.DepthwiseConv2D(3, padding="same")(x)
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(x)
    x = keras.layers.Flatten()(x)
    x = keras.layers.Dense(16, activation="relu")(x)
    outputs = keras.layers.Dense(5, activation="softmax")(x)
    return keras.Model(inputs, outputs), (2, 12, 12, 3)


def mobilenet_v2():
    """Keras Applications' MobileNetV2, alpha 0.35, 96x96, random weights."""
    model = tf.keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10)
    return model, (2, 96, 96, 3)


MODELS = {"keras_small_cnn": small_cnn, "keras_mobilenet_v2": mobilenet_v2}


def randomize(model, rng):
    """Batch normalization statistics other than 0 and 1 and biases other than 0, so that
    folding them is checked (tf2onnx drops zero biases)."""
    for layer in model.layers:
        if isinstance(layer, tf.keras.layers.BatchNormalization):
            gamma, beta, mean, variance = layer.get_weights()
            n = gamma.shape
            layer.set_weights([rng.uniform(0.5, 1.5, n), rng.normal(0, 0.2, n), rng.normal(0, 0.3, n),
                               rng.uniform(0.5, 1.5, n)])
        elif layer.get_weights():
            layer.set_weights([w if np.any(w) else rng.normal(0, 0.1, w.shape).astype(w.dtype)
                               for w in layer.get_weights()])


def convert(model, shape, path):
    """Writes `model` to `path` with tf2onnx (a dynamic batch axis)."""
    signature = (tf.TensorSpec((None,) + tuple(shape[1:]), tf.float32, name="input"),)
    try:
        tf2onnx.convert.from_keras(model, input_signature=signature, opset=OPSET, output_path=path)
        return "from_keras"
    except Exception as e:  # noqa: BLE001 - Keras 3 breaks from_keras in several ways
        print(f"  from_keras failed ({type(e).__name__}: {str(e).splitlines()[0][:120]}), using from_function")
    function = tf.function(lambda x: model(x, training=False))
    tf2onnx.convert.from_function(function, input_signature=signature, opset=OPSET, output_path=path)
    return "from_function"


def main():
    if len(sys.argv) < 2:
        print(__doc__)
        return 1
    folder = sys.argv[1]
    os.makedirs(folder, exist_ok=True)
    for name in sys.argv[2:] or list(MODELS):
        tf.keras.utils.set_random_seed(sum(map(ord, name)))
        rng = np.random.default_rng(sum(map(ord, name)))
        model, shape = MODELS[name]()
        randomize(model, rng)
        path = os.path.join(folder, name + ".onnx")
        how = convert(model, shape, path)
        x = rng.random(shape, dtype=np.float32)
        session = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        (output,) = session.run(None, {session.get_inputs()[0].name: x})
        reference = model(x, training=False).numpy()
        agree = float(np.max(np.abs(output - reference)))
        np.save(os.path.join(folder, name + ".input.npy"), x)
        np.save(os.path.join(folder, name + ".output.npy"), output.astype(np.float32))
        print(f"{name}: {how}, {os.path.getsize(path)} bytes, output {output.shape} deviation {np.std(output):.3g}, "
              f"Keras vs ONNX Runtime {agree:.2g}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
