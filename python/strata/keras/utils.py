"""``keras.utils``: to_categorical, normalize, pad_sequences, set_random_seed."""

import numpy as np

from . import _config


def to_categorical(x, num_classes=None):
    """Keras's ``to_categorical``: class indices → one-hot rows (float64, as Keras's for NumPy
    input; strata converts to float32 when it trains)."""
    x = np.asarray(x)
    if x.dtype.kind not in "iub" and not (x.dtype.kind == "f" and np.all(np.mod(x, 1) == 0)):
        raise TypeError(f"to_categorical needs integer class indices, got dtype {x.dtype}")
    x = x.astype("int64")
    input_shape = x.shape
    if input_shape and input_shape[-1] == 1 and len(input_shape) > 1:
        input_shape = tuple(input_shape[:-1])
    x = x.reshape(-1)
    if x.size and x.min() < 0:
        raise ValueError("to_categorical: class indices must not be negative")
    if not num_classes:
        num_classes = int(np.max(x)) + 1 if x.size else 0
    elif x.size and x.max() >= num_classes:
        raise ValueError(f"to_categorical: class index {int(x.max())} is not below num_classes={num_classes}")
    categorical = np.zeros((x.shape[0], num_classes))
    categorical[np.arange(x.shape[0]), x] = 1
    return categorical.reshape(input_shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Keras's ``normalize``: rows scaled to unit ``order``-norm."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def pad_sequences(sequences, maxlen=None, dtype="int32", padding="pre", truncating="pre", value=0.0):
    """Keras's ``pad_sequences``: a list of sequences → one ``(len(sequences), maxlen)`` array,
    padded with ``value`` and cut to ``maxlen`` at the start (``"pre"``) or the end (``"post"``)."""
    if padding not in ("pre", "post"):
        raise ValueError(f'`padding` must be "pre" or "post", got {padding!r}')
    if truncating not in ("pre", "post"):
        raise ValueError(f'`truncating` must be "pre" or "post", got {truncating!r}')
    if not hasattr(sequences, "__len__"):
        raise ValueError("`sequences` must be iterable.")
    lengths = []
    for sequence in sequences:
        if not hasattr(sequence, "__len__"):
            raise ValueError(f"`sequences` must be a list of iterables. Found non-iterable: {sequence!r}")
        lengths.append(len(sequence))
    if maxlen is None:
        maxlen = max(lengths, default=0)
    elif int(maxlen) < 0:
        raise ValueError(f"maxlen must not be negative, got {maxlen}")
    maxlen = int(maxlen)
    padded = np.full((len(lengths), maxlen), value, dtype=dtype)
    for row, sequence in enumerate(sequences):
        if not len(sequence) or not maxlen:
            continue
        kept = np.asarray(sequence, dtype=dtype)
        kept = kept[-maxlen:] if truncating == "pre" else kept[:maxlen]
        if padding == "post":
            padded[row, :len(kept)] = kept
        else:
            padded[row, -len(kept):] = kept
    return padded


def set_random_seed(seed):
    """Keras's ``set_random_seed``: models made afterwards draw weights and shuffles from
    ``seed`` (strata's runs are reproducible: the same seed gives the same model)."""
    _config.set_global_seed(int(seed))
    np.random.seed(int(seed))


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no keras.utils.{name}")
