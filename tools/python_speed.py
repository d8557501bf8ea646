"""The MNIST MLP's and CNN's epoch times from Python on strata, beside the same programs on
TensorFlow-Keras, Keras on JAX, PyTorch and the `strata train` command (issue #19's speed
comparison). Run them one after the other on a quiet machine:

    python tools/python_speed.py strata [--model cnn] [--epochs 3]  # venv with `pip install ./python`
    python tools/python_speed.py keras                               # venv with tensorflow
    python tools/python_speed.py keras-jax                           # venv with keras and jax
    python tools/python_speed.py torch                               # venv with torch
    python tools/python_speed.py cli --strata target/release/strata

Each prints one line: the framework and the median epoch time in seconds (epochs after the
first, which includes warm-up). The programs are `strata train`'s: the mlp is Flatten,
Dense(128, relu), Dense(10, softmax), Adam, sparse cross-entropy, batch size 32; the cnn is
Conv2D(32, 3)-MaxPool-Conv2D(64, 3)-MaxPool-Conv2D(64, 3)-Flatten-Dense(64)-Dense(10), RMSprop,
categorical cross-entropy, batch size 64 (../shared/bench/anchors' seed C); the 60,000 MNIST
images. Every framework gets 2 threads (strata's default on this machine; set as each one sets it).
"""

import argparse
import gzip
import json
import os
import pathlib
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


THREADS = 2


def mnist():
    """The training images scaled to [0, 1] as float32, and their labels."""
    x_train, y_train = idx("train-images-idx3-ubyte.gz"), idx("train-labels-idx1-ubyte.gz")
    return (x_train / 255.0).astype("float32"), y_train


def keras_model(keras, model_name):
    """The named program written as a Keras user writes it: the model, compiled, and its batch size."""
    layers = keras.layers
    if model_name == "mlp":
        model = keras.Sequential([
            keras.Input(shape=(28, 28)),
            layers.Flatten(),
            layers.Dense(128, activation="relu"),
            layers.Dense(10, activation="softmax"),
        ])
        model.compile(optimizer="adam", loss="sparse_categorical_crossentropy", metrics=["accuracy"])
        return model, 32
    model = keras.Sequential([
        keras.Input(shape=(28, 28, 1)),
        layers.Conv2D(32, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"), layers.MaxPooling2D((2, 2)),
        layers.Conv2D(64, (3, 3), activation="relu"),
        layers.Flatten(), layers.Dense(64, activation="relu"), layers.Dense(10, activation="softmax"),
    ])
    model.compile(optimizer=keras.optimizers.RMSprop(learning_rate=0.001),
                  loss="categorical_crossentropy", metrics=["accuracy"])
    return model, 64


def python_epochs(keras, model_name, epochs):
    """Epoch times of `model.fit` on one of the Keras implementations."""
    x_train, y_train = mnist()
    model, batch = keras_model(keras, model_name)
    if model_name == "cnn":
        x_train, y_train = x_train.reshape(-1, 28, 28, 1), keras.utils.to_categorical(y_train, 10)

    class Timer(keras.callbacks.Callback):
        def on_epoch_begin(self, epoch, logs=None):
            self.started = time.perf_counter()

        def on_epoch_end(self, epoch, logs=None):
            times.append(time.perf_counter() - self.started)

    times = []
    model.fit(x_train, y_train, epochs=epochs, batch_size=batch, verbose=0, callbacks=[Timer()])
    return times


def torch_epochs(model_name, epochs):
    """Epoch times of the same program in PyTorch, written as its users write it (logits and
    CrossEntropyLoss in place of the softmax layer; Keras's epsilons)."""
    import torch
    from torch import nn

    torch.set_num_threads(THREADS)
    x_train, y_train = mnist()
    x_train, y_train = torch.from_numpy(x_train), torch.from_numpy(y_train.astype("int64"))
    if model_name == "mlp":
        model = nn.Sequential(nn.Flatten(), nn.Linear(784, 128), nn.ReLU(), nn.Linear(128, 10))
        optimizer, batch = torch.optim.Adam(model.parameters(), lr=1e-3, eps=1e-7), 32
    else:
        x_train = x_train.reshape(-1, 1, 28, 28)
        model = nn.Sequential(
            nn.Conv2d(1, 32, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(32, 64, 3), nn.ReLU(), nn.MaxPool2d(2),
            nn.Conv2d(64, 64, 3), nn.ReLU(),
            nn.Flatten(), nn.Linear(64 * 3 * 3, 64), nn.ReLU(), nn.Linear(64, 10))
        optimizer, batch = torch.optim.RMSprop(model.parameters(), lr=1e-3, alpha=0.9, eps=1e-7), 64
    loss_fn = nn.CrossEntropyLoss()
    times = []
    for _ in range(epochs):
        started = time.perf_counter()
        order = torch.randperm(len(x_train))
        for start in range(0, len(x_train), batch):
            rows = order[start:start + batch]
            optimizer.zero_grad()
            loss_fn(model(x_train[rows]), y_train[rows]).backward()
            optimizer.step()
        times.append(time.perf_counter() - started)
    return times


def cli_epochs(command, model_name, epochs):
    """Epoch times of `strata train` (the same model on the same data), from the JSON line
    `--json` ends with (each epoch's seconds, unrounded; the progress line rounds a cnn step to
    whole milliseconds)."""
    run = subprocess.run([command, "train", "--model", model_name, "--epochs", str(epochs), "--verbose", "0",
                          "--json"], capture_output=True, text=True, check=True, cwd=MNIST.parents[1])
    results = json.loads(run.stdout.strip().splitlines()[-1])
    return [epoch["seconds"] for epoch in results["epochs"]]


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("framework", choices=["strata", "keras", "keras-jax", "torch", "cli"])
    parser.add_argument("--model", choices=["mlp", "cnn"], default="mlp")
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--strata", default="target/release/strata", help="the strata binary (cli)")
    args = parser.parse_args()
    if args.framework == "strata":
        import strata.keras as keras

        times = python_epochs(keras, args.model, args.epochs)
    elif args.framework == "keras":
        import tensorflow as tf

        tf.config.threading.set_intra_op_parallelism_threads(THREADS)
        times = python_epochs(tf.keras, args.model, args.epochs)
    elif args.framework == "keras-jax":
        os.environ["KERAS_BACKEND"] = "jax"
        import keras

        times = python_epochs(keras, args.model, args.epochs)
    elif args.framework == "torch":
        times = torch_epochs(args.model, args.epochs)
    else:
        times = cli_epochs(args.strata, args.model, args.epochs)
    later = times[1:] or times
    print(f"{args.framework} {args.model}: median epoch {statistics.median(later):.3f} s over {len(later)} epochs "
          f"({', '.join(f'{t:.3f}' for t in times)})")


if __name__ == "__main__":
    main()
