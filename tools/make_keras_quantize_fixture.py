"""A Keras Applications model trained in Keras, for issue #23's accuracy check of int8 quantization
on an imported model (tests/quantize_applications.rs).

Keras's MobileNet (v1; alpha 0.25, 32x32x3 input, 5 classes, no pre-trained weights: none can be
downloaded here) trained on MNIST digits 0-4 from strata's bundled files, each 28x28 digit placed
at the centre of a 32x32 image with its three channels equal and pixels scaled to [-1, 1] (what
MobileNet's preprocess_input does to 0-255 pixels), as the test prepares them. MobileNet's
BatchNormalization layers keep Keras's default momentum (0.99), so a few thousand steps leave
moving statistics the model predicts well with.

Writes DIR/mobilenet_digits.keras and DIR/mobilenet_digits.json (Keras's own test accuracy on
the first TEST digits 0-4 of the MNIST test set, and its softmax outputs on the first 8).

    KERAS_BACKEND=tensorflow python tools/make_keras_quantize_fixture.py tests/fixtures/keras
"""
import gzip
import json
import os
import sys
import zipfile

import keras
import numpy as np

TRAIN, TEST, EPOCHS = 20000, 2000, 4


def idx(path):
    with gzip.open(path) as f:
        data = f.read()
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i: 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * dims).reshape(shape)


def digits(images, labels, count):
    keep = labels < 5
    images, labels = images[keep][:count], labels[keep][:count]
    out = np.full((len(images), 32, 32, 3), -1.0, np.float32)
    out[:, 2:30, 2:30, :] = (images.astype(np.float32) / 127.5 - 1.0)[..., None]
    return out, labels.astype(np.int64)


def main(out_dir):
    mnist = os.path.join(os.path.dirname(__file__), "..", "data", "mnist")
    x_train, y_train = digits(idx(f"{mnist}/train-images-idx3-ubyte.gz"), idx(f"{mnist}/train-labels-idx1-ubyte.gz"), TRAIN)
    x_test, y_test = digits(idx(f"{mnist}/t10k-images-idx3-ubyte.gz"), idx(f"{mnist}/t10k-labels-idx1-ubyte.gz"), TEST)
    keras.utils.set_random_seed(0)
    model = keras.applications.MobileNet(input_shape=(32, 32, 3), alpha=0.25, weights=None, classes=5)
    model.compile(keras.optimizers.Adam(1e-3), "sparse_categorical_crossentropy", metrics=["accuracy"])
    model.fit(x_train, y_train, batch_size=32, epochs=EPOCHS, verbose=2)
    loss, accuracy = model.evaluate(x_test, y_test, verbose=0)
    outputs = model.predict(x_test[:8], verbose=0)
    # Saved from an uncompiled copy: the file then holds no optimizer state (a third of the size).
    plain = keras.models.clone_model(model)
    plain.set_weights(model.get_weights())
    path = os.path.join(out_dir, "mobilenet_digits.keras")
    plain.save(path)
    # Keras stores the archive's members uncompressed; deflated, it is a third of the size, and
    # Keras and strata read it alike.
    with zipfile.ZipFile(path) as stored:
        members = [(info.filename, stored.read(info)) for info in stored.infolist()]
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as deflated:
        for name, data in members:
            deflated.writestr(name, data)
    with open(os.path.join(out_dir, "mobilenet_digits.json"), "w") as f:
        json.dump({"keras": keras.__version__, "test_images": TEST, "test_accuracy": float(accuracy),
                   "outputs": outputs.astype(float).round(7).tolist()}, f, indent=1)
    print(f"test accuracy {accuracy:.4f}")


if __name__ == "__main__":
    main(sys.argv[1])
