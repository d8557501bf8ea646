#!/usr/bin/env python3
"""Writes the small files the README's commands use, under examples/data/ (tests/readme_commands.rs
runs those commands against them):

- mnist-small/: the first 512 training and 128 test images of the bundled MNIST, as IDX .gz files
  (a `--data` folder that trains in a second, so a command can run in a test);
- digit.png: the first test image (a 7), 28x28 grayscale, for `strata predict`;
- my_table.csv, my_test.csv: a small three-class table with a text label column `species`;
- my_model.toml: a model for that table;
- (model.keras, for `strata import`, is made by Keras: tools/make_readme_keras.py).

Needs only the standard library. Run from the repository root: python3 tools/make_readme_data.py
"""
import gzip
import random
import struct
import zlib
from pathlib import Path

OUT = Path("examples/data")
MNIST = Path("data/mnist")


def read_idx(name):
    data = gzip.open(MNIST / name).read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4 : 4 + 4 * ndim])
    return dims, data[4 + 4 * ndim :]


def write_idx(name, magic, dims, body):
    header = struct.pack(">I", magic) + struct.pack(">" + "I" * len(dims), *dims)
    # mtime=0: the same bytes on every run
    with open(OUT / "mnist-small" / name, "wb") as f:
        with gzip.GzipFile(fileobj=f, mode="wb", mtime=0) as g:
            g.write(header + body)


def mnist_small(train=512, test=128):
    (OUT / "mnist-small").mkdir(parents=True, exist_ok=True)
    for prefix, n in (("train", train), ("t10k", test)):
        _, images = read_idx(f"{prefix}-images-idx3-ubyte.gz")
        _, labels = read_idx(f"{prefix}-labels-idx1-ubyte.gz")
        write_idx(f"{prefix}-images-idx3-ubyte.gz", 0x803, (n, 28, 28), images[: n * 784])
        write_idx(f"{prefix}-labels-idx1-ubyte.gz", 0x801, (n,), labels[:n])


def png_gray(path, width, height, pixels):
    """An 8-bit grayscale PNG (no filter), written by hand to need no imaging library."""
    rows = b"".join(b"\x00" + pixels[r * width : (r + 1) * width] for r in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(rows, 9)) + chunk(b"IEND", b""))


def digit_png():
    _, images = read_idx("t10k-images-idx3-ubyte.gz")
    png_gray(OUT / "digit.png", 28, 28, images[:784])


def table(path, rows, seed):
    """Three classes around different centres in four measurements, as iris's columns."""
    rng = random.Random(seed)
    centres = {"setosa": (5.0, 3.4, 1.5, 0.2), "versicolor": (5.9, 2.8, 4.3, 1.3), "virginica": (6.6, 3.0, 5.6, 2.0)}
    lines = ["sepal_length,sepal_width,petal_length,petal_width,species"]
    for i in range(rows):
        name = list(centres)[i % 3]
        values = [c + rng.gauss(0, 0.3) for c in centres[name]]
        lines.append(",".join(f"{v:.2f}" for v in values) + "," + name)
    path.write_text("\n".join(lines) + "\n")


MODEL = """# A small classifier for examples/data/my_table.csv (four measurements, three species).
name = "my_model"

[compile]
optimizer = "adam"
loss = "sparse_categorical_crossentropy"
metrics = ["accuracy"]

[fit]
epochs = 20
batch_size = 16

[[layers]]
class_name = "InputLayer"
config = { shape = [4] }

[[layers]]
class_name = "Dense"
config = { units = 16, activation = "relu" }

[[layers]]
class_name = "Dense"
config = { units = 3, activation = "softmax" }
"""


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    mnist_small()
    digit_png()
    table(OUT / "my_table.csv", 120, 1)
    table(OUT / "my_test.csv", 30, 2)
    (OUT / "my_model.toml").write_text(MODEL)


if __name__ == "__main__":
    main()
