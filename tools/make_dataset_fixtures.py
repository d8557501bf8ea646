"""Writes small data sets in the real formats of Keras's data set files, and what Keras's own
loaders return for them, for tests/datasets*.rs.

    /tmp/kerasvenv/bin/python tools/make_dataset_fixtures.py

Output: tests/fixtures/datasets/ laid out as ~/.keras/datasets is (mnist.npz, fashion-mnist/,
cifar-10-python.tar.gz, cifar-100-python.tar.gz, imdb.npz, imdb_word_index.json, reuters.npz,
reuters_word_index.json, boston_housing.npz) plus keras_expected.json: the arrays
keras.datasets.X.load_data() returns for these files (its get_file pointed at them, since the
files' checksums are not the real ones). The images and sequences are learnable (each class
has its own bright square, colour or words) so the named models can train on them in tests.
"""

import gzip
import io
import json
import os
import pickle
import shutil
import struct
import tarfile
import tempfile

import numpy as np

OUT = os.path.join(os.path.dirname(__file__), "..", "tests", "fixtures", "datasets")
rng = np.random.RandomState(7)


def digits(count, side=28):
    """Grayscale images, each class a bright 6x6 square at its own place, with sparse noise."""
    labels = rng.randint(0, 10, size=count).astype(np.uint8)
    images = np.zeros((count, side, side), dtype=np.uint8)
    for i, c in enumerate(labels):
        r, q = divmod(int(c), 5)
        y, x = 4 + r * 12, 1 + q * 5
        images[i, y : y + 6, x : x + 4] = 200 + rng.randint(0, 56)
        noise = rng.randint(0, side, size=(8, 2))
        images[i, noise[:, 0], noise[:, 1]] = rng.randint(0, 256, size=8)
    return images, labels


def colour_images(count, classes):
    """(count, 3072) CIFAR rows (channels first: all red, then green, then blue), each class its
    own colour and square, with one brightness per image."""
    labels = rng.randint(0, classes, size=count)
    palette = np.random.RandomState(classes).randint(0, 256, size=(classes, 3))
    images = np.zeros((count, 3, 32, 32), dtype=np.uint8)
    for i, c in enumerate(labels):
        images[i] = (palette[c][:, None, None] * rng.uniform(0.7, 1.0)).astype(np.uint8)
        r, q = divmod(int(c) % 10, 5)
        images[i, :, 4 + r * 14 : 12 + r * 14, 2 + q * 6 : 6 + q * 6] = 255
    return images.reshape(count, 3072), labels


def write_idx(path, array):
    magic = 0x0800 | array.ndim
    header = struct.pack(">I", magic) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.tobytes())


class Python2Pickler(pickle._Pickler):
    """Protocol 2 with byte strings as Python 2's `str` opcodes (SHORT_BINSTRING, BINSTRING), as
    the CIFAR files were written (Python 3 would write `_codecs.encode` calls instead)."""

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def add_pickle(tar, name, obj):
    buffer = io.BytesIO()
    Python2Pickler(buffer, protocol=2).dump(obj)
    data = buffer.getvalue()
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def cifar10():
    with tarfile.open(os.path.join(OUT, "cifar-10-python.tar.gz"), "w:gz") as tar:
        for name, count in [(f"data_batch_{i}", 60) for i in range(1, 6)] + [("test_batch", 100)]:
            data, labels = colour_images(count, 10)
            add_pickle(tar, f"cifar-10-batches-py/{name}", {
                b"batch_label": name.encode(), b"labels": [int(l) for l in labels],
                b"data": data, b"filenames": [f"{i}.png".encode() for i in range(count)]})
        add_pickle(tar, "cifar-10-batches-py/batches.meta", {b"label_names": [b"c%d" % i for i in range(10)]})


def cifar100():
    with tarfile.open(os.path.join(OUT, "cifar-100-python.tar.gz"), "w:gz") as tar:
        for name, count in [("train", 40), ("test", 20)]:
            data, fine = colour_images(count, 100)
            add_pickle(tar, f"cifar-100-python/{name}", {
                b"filenames": [b"x.png"] * count, b"batch_label": name.encode(),
                b"fine_labels": [int(l) for l in fine], b"coarse_labels": [int(l) // 5 for l in fine],
                b"data": data})
        add_pickle(tar, "cifar-100-python/meta", {b"fine_label_names": [], b"coarse_label_names": []})


def reviews(count, classes, words_per_class=40):
    """Sequences of raw word ranks (1 = most frequent): common words 1-9 and words of the class."""
    labels = rng.randint(0, classes, size=count)
    sequences = []
    for c in labels:
        length = rng.randint(8, 40)
        own = 10 + c * words_per_class + rng.randint(0, words_per_class, size=length)
        common = rng.randint(1, 10, size=length)
        sequences.append([int(w) for w in np.where(rng.rand(length) < 0.6, own, common)])
    array = np.empty(count, dtype=object)
    array[:] = sequences
    return array, labels.astype(np.int64)


def word_index(size):
    return {("the" if i == 1 else f"w{i}"): i for i in range(1, size + 1)}


def main():
    if os.path.isdir(OUT):
        shutil.rmtree(OUT)
    os.makedirs(os.path.join(OUT, "fashion-mnist"))
    (xa, ya), (xb, yb) = digits(300), digits(100)
    np.savez_compressed(os.path.join(OUT, "mnist.npz"), x_train=xa, y_train=ya, x_test=xb, y_test=yb)
    (xa, ya), (xb, yb) = digits(300), digits(100)
    for prefix, x, y in [("train", xa, ya), ("t10k", xb, yb)]:
        write_idx(os.path.join(OUT, "fashion-mnist", f"{prefix}-images-idx3-ubyte.gz"), x)
        write_idx(os.path.join(OUT, "fashion-mnist", f"{prefix}-labels-idx1-ubyte.gz"), y)
    cifar10()
    cifar100()
    xa, ya = reviews(300, 2)
    xb, yb = reviews(100, 2)
    np.savez(os.path.join(OUT, "imdb.npz"), x_train=xa, y_train=ya, x_test=xb, y_test=yb)
    with open(os.path.join(OUT, "imdb_word_index.json"), "w") as f:
        json.dump(word_index(90), f)
    x, y = reviews(200, 5, words_per_class=20)
    np.savez(os.path.join(OUT, "reuters.npz"), x=x, y=y)
    with open(os.path.join(OUT, "reuters_word_index.json"), "w") as f:
        json.dump(word_index(110), f)
    bx = rng.uniform(0, 10, size=(50, 13))
    by = bx @ np.linspace(-1, 1, 13) + 20
    np.savez(os.path.join(OUT, "boston_housing.npz"), x=bx, y=by)
    expected()


def expected():
    """What Keras's loaders return for the files above."""
    from keras.src.datasets import boston_housing, cifar100, fashion_mnist, imdb, mnist, reuters

    def at(name):
        return lambda *args, **kwargs: os.path.join(OUT, name)

    tmp = tempfile.mkdtemp()
    for archive in ["cifar-10-python.tar.gz", "cifar-100-python.tar.gz"]:
        with tarfile.open(os.path.join(OUT, archive)) as tar:
            tar.extractall(tmp)

    def images(split):
        (xa, ya), (xb, yb) = split
        summary = lambda x: {"shape": list(x.shape), "sums": [int(v) for v in x.reshape(len(x), -1).sum(1)],
                             "first": [int(v) for v in x.reshape(-1)[:64]]}
        return {"x_train": summary(xa), "y_train": ya.reshape(-1).tolist(), "y_shape": list(ya.shape),
                "x_test": summary(xb), "y_test": yb.reshape(-1).tolist()}

    def sequences(split):
        (xa, ya), (xb, yb) = split
        return {"x_train": [list(map(int, s)) for s in xa], "y_train": [int(v) for v in ya],
                "x_test": [list(map(int, s)) for s in xb], "y_test": [int(v) for v in yb]}

    out = {}
    mnist.get_file = at("mnist.npz")
    out["mnist"] = images(mnist.load_data())
    fashion_mnist.get_file = lambda fname, **kwargs: os.path.join(OUT, "fashion-mnist", fname)
    out["fashion_mnist"] = images(fashion_mnist.load_data())
    # Keras's cifar10 sizes its arrays for 10,000 images per batch; these batches are smaller, so
    # its own batch reader is called and the batches joined as load_data does.
    from keras.src.datasets.cifar import load_batch

    batches = [load_batch(os.path.join(tmp, "cifar-10-batches-py", f"data_batch_{i}")) for i in range(1, 6)]
    xa, ya = np.concatenate([b[0] for b in batches]), np.concatenate([b[1] for b in batches])
    xb, yb = load_batch(os.path.join(tmp, "cifar-10-batches-py", "test_batch"))
    out["cifar10"] = images(((xa.transpose(0, 2, 3, 1), ya.reshape(-1, 1)),
                             (xb.transpose(0, 2, 3, 1), np.reshape(yb, (-1, 1)))))
    cifar100.get_file = lambda *args, **kwargs: tmp
    out["cifar100_fine"] = images(cifar100.load_data())
    out["cifar100_coarse"] = images(cifar100.load_data(label_mode="coarse"))
    imdb.get_file = at("imdb.npz")
    out["imdb"] = sequences(imdb.load_data())
    out["imdb_args"] = sequences(imdb.load_data(num_words=60, skip_top=3, maxlen=30, start_char=2,
                                                oov_char=5, index_from=4))
    out["imdb_no_oov"] = sequences(imdb.load_data(num_words=40, oov_char=None, seed=5))
    reuters.get_file = at("reuters.npz")
    out["reuters"] = sequences(reuters.load_data())
    out["reuters_args"] = sequences(reuters.load_data(num_words=50, maxlen=25, test_split=0.3, seed=1,
                                                      start_char=None, index_from=0))
    boston_housing.get_file = at("boston_housing.npz")
    (xa, ya), (xb, yb) = boston_housing.load_data()
    out["boston_housing"] = {"x_train": xa.tolist(), "y_train": ya.tolist(), "x_test": xb.tolist(),
                             "y_test": yb.tolist()}
    (xa, ya), (xb, yb) = boston_housing.load_data(test_split=0.5, seed=3)
    out["boston_housing_args"] = {"x_train": xa.tolist(), "y_train": ya.tolist(), "x_test": xb.tolist(),
                                  "y_test": yb.tolist()}
    shutil.rmtree(tmp)
    with open(os.path.join(OUT, "keras_expected.json"), "w") as f:
        json.dump(out, f, separators=(",", ":"))


if __name__ == "__main__":
    main()
