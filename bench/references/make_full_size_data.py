"""Writes full-size stand-ins for CIFAR-10 and IMDB in Keras's file formats (same sizes as the
real sets: 50,000 + 10,000 images, 25,000 + 25,000 reviews with IMDB-like lengths), learnable
but synthetic, for speed comparisons where the real files cannot be downloaded. strata reads
them with KERAS_HOME=DIR, the reference scripts with DATASETS=DIR/datasets.

    python bench/references/make_full_size_data.py DIR
"""
import io, os, pickle, struct, sys, tarfile

import numpy as np

rng = np.random.RandomState(0)


class Python2Pickler(pickle._Pickler):
    """Byte strings as Python 2's `str` opcodes, as the CIFAR files were written."""

    def save_bytes(self, obj):
        if len(obj) < 256:
            self.write(pickle.SHORT_BINSTRING + bytes([len(obj)]) + obj)
        else:
            self.write(pickle.BINSTRING + struct.pack("<i", len(obj)) + obj)
        self.memoize(obj)

    dispatch = dict(pickle._Pickler.dispatch)
    dispatch[bytes] = save_bytes


def images(count):
    """CIFAR rows (channels first), each class a colour and a bright square, plus noise."""
    labels = rng.randint(0, 10, size=count)
    palette = np.random.RandomState(10).randint(0, 256, size=(10, 3))
    x = rng.randint(0, 96, size=(count, 3, 32, 32)).astype(np.int32)
    x += (palette[labels] * 0.6).astype(np.int32)[:, :, None, None]
    for c in range(10):
        r, q = divmod(c, 5)
        x[labels == c, :, 4 + r * 14: 12 + r * 14, 2 + q * 6: 6 + q * 6] += 80
    return np.clip(x, 0, 255).astype(np.uint8).reshape(count, 3072), labels


def cifar10(folder):
    with tarfile.open(os.path.join(folder, "cifar-10-python.tar.gz"), "w:gz", compresslevel=1) as tar:
        for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
            data, labels = images(10000)
            buffer = io.BytesIO()
            Python2Pickler(buffer, protocol=2).dump({
                b"batch_label": name.encode(), b"labels": [int(v) for v in labels], b"data": data,
                b"filenames": [b"%d.png" % i for i in range(10000)]})
            info = tarfile.TarInfo(f"cifar-10-batches-py/{name}")
            info.size = buffer.tell()
            buffer.seek(0)
            tar.addfile(info, buffer)


def reviews(count):
    """Word ranks with IMDB's length spread (median about 174) from a Zipf-like vocabulary of
    88,584 words; each label shifts some words into its own range."""
    labels = rng.randint(0, 2, size=count)
    lengths = np.clip(rng.lognormal(5.2, 0.7, size=count).astype(int), 10, 2494)
    sequences = np.empty(count, dtype=object)
    for i, (label, length) in enumerate(zip(labels, lengths)):
        words = np.minimum(rng.zipf(1.3, size=length), 88584)
        own = rng.rand(length) < 0.1
        words[own] = 500 + label * 200 + rng.randint(0, 200, size=own.sum())
        sequences[i] = [int(w) for w in words]
    return sequences, labels.astype(np.int64)


def main():
    folder = os.path.join(sys.argv[1], "datasets")
    os.makedirs(folder, exist_ok=True)
    cifar10(folder)
    (xa, ya), (xb, yb) = reviews(25000), reviews(25000)
    np.savez(os.path.join(folder, "imdb.npz"), x_train=xa, y_train=ya, x_test=xb, y_test=yb)
    print(folder)


main()
