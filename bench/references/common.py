"""Shared helpers for the CIFAR-10 and IMDB reference scripts: the data read from the files
Keras's loaders read (under $DATASETS, default ~/.keras/datasets), argument parsing, and the one
JSON line per run that bench/table.py reads (the same fields as ../shared/bench/anchors)."""
import io, json, os, pickle, resource, statistics, sys, tarfile
from pathlib import Path

import numpy as np

DATASETS = Path(os.environ.get("DATASETS", Path.home() / ".keras" / "datasets"))


def args(default_batch):
    epochs = int(sys.argv[1]) if len(sys.argv) > 1 else 1
    batch = int(sys.argv[2]) if len(sys.argv) > 2 else default_batch
    return epochs, batch


def cifar10():
    """keras.datasets.cifar10.load_data(): uint8 (N, 32, 32, 3) images, (N, 1) labels."""
    batches = {}
    with tarfile.open(DATASETS / "cifar-10-python.tar.gz") as tar:
        for member in tar.getmembers():
            name = os.path.basename(member.name)
            if name.startswith(("data_batch_", "test_batch")):
                batches[name] = pickle.load(tar.extractfile(member), encoding="bytes")

    def join(names):
        x = np.concatenate([batches[n][b"data"] for n in names]).reshape(-1, 3, 32, 32)
        y = np.concatenate([batches[n][b"labels"] for n in names]).reshape(-1, 1)
        return x.transpose(0, 2, 3, 1), y

    return join([f"data_batch_{i}" for i in range(1, 6)]), join(["test_batch"])


def imdb(num_words, maxlen):
    """keras.datasets.imdb.load_data(num_words) with Keras's defaults (start 1, oov 2, index
    from 3), then keras.utils.pad_sequences(maxlen) (pre-padding, pre-truncating)."""
    with np.load(DATASETS / "imdb.npz", allow_pickle=True) as f:
        splits = [(f["x_train"], f["y_train"]), (f["x_test"], f["y_test"])]
    out = []
    for xs, ys in splits:
        padded = np.zeros((len(xs), maxlen), dtype=np.int64)
        for i, seq in enumerate(xs):
            seq = [1] + [w + 3 if w + 3 < num_words else 2 for w in seq]
            seq = seq[-maxlen:]
            padded[i, maxlen - len(seq):] = seq
        out.append((padded, np.asarray(ys, dtype=np.int64)))
    return out


def report(framework, model, batch, epoch_s, n_train, test_acc, **extra):
    backend = os.environ.get("KERAS_BACKEND", "tensorflow")
    if framework == "keras" and backend != "tensorflow":
        framework = "keras-" + backend
    later = epoch_s[1:]
    median = statistics.median(later) if later else None
    print(json.dumps(dict(
        framework=framework, model=model, batch=batch, epochs=len(epoch_s),
        epoch_s=[round(t, 3) for t in epoch_s], epoch1_s=round(epoch_s[0], 3),
        median_later_s=round(median, 3) if median else None,
        samples_per_s=round(n_train / (median or epoch_s[0]), 1), test_acc=round(float(test_acc), 4),
        peak_rss_mb=round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1), **extra)), flush=True)
