"""The MNIST MLP's epoch time from Python on strata, beside the same program on TensorFlow-Keras
and the `strata train` command, in one run (issue #19's speed comparison).

    python tools/python_speed.py strata [--epochs 3]          # in a venv with `pip install ./python`
    python tools/python_speed.py keras                         # in a venv with tensorflow
    python tools/python_speed.py cli --strata target/release/strata

Each prints one line: the framework and the median epoch time in seconds (epochs after the
first, which includes warm-up). The program is the README's MLP: Flatten, Dense(128, relu),
Dense(10, softmax), Adam, sparse cross-entropy, batch size 32, the 60,000 MNIST images.
"""

import argparse
import gzip
import pathlib
import re
import statistics
import subprocess
import time

import numpy as np

MNIST = pathlib.Path(__file__).resolve().parents[1] / "data" / "mnist"


def idx(name):
    """An IDX file of strata's bundled MNIST (the same images for every framework, no download)."""
    data = gzip.decompress((MNIST / name).read_bytes())
    dims = data[3]
    shape = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * dims).reshape(shape)


def python_epochs(keras, epochs):
    x_train, y_train = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    x_train = (x_train / 255.0).astype("float32")
    model = keras.Sequential([
        keras.Input(shape=(28, 28)),
        keras.layers.Flatten(),
        keras.layers.Dense(128, activation="relu"),
        keras.layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    times = []
    model.fit(x_train, y_train, epochs=epochs, batch_size=32, verbose=0, callbacks=[Timer()])
    return times


def cli_epochs(command, epochs):
    """Epoch times of `strata train` (the MLP on the same data), from its verbose=2 lines:
    steps × time per step (``1875/1875 - 841ms - 449us/step``), which keeps three digits."""
    run = subprocess.run([command, "train", "--epochs", str(epochs), "--verbose", "2"], capture_output=True,
                         text=True, check=True, cwd=MNIST.parents[1])
    unit = {"us": 1e-6, "ms": 1e-3, "s": 1.0}
    return [int(steps) * int(per_step) * unit[suffix]
            for steps, per_step, suffix in re.findall(r"(\d+)/\1 - \S+ - (\d+)(us|ms|s)/step", run.stdout)]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=["strata", "keras", "cli"])
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--strata", default="target/release/strata", help="the strata binary (cli)")
    args = parser.parse_args()
    if args.framework == "strata":
        import strata.keras as keras

        times = python_epochs(keras, args.epochs)
    elif args.framework == "keras":
        from tensorflow import keras

        times = python_epochs(keras, args.epochs)
    else:
        times = cli_epochs(args.strata, args.epochs)
    later = times[1:] or times
    print(f"{args.framework}: median epoch {statistics.median(later):.3f} s over {len(later)} epochs "
          f"({', '.join(f'{t:.3f}' for t in times)})")


if __name__ == "__main__":
    main()
