"""``keras.utils``: to_categorical, normalize, set_random_seed."""

import numpy as np

from . import _config


def to_categorical(x, num_classes=None):
    """Keras's ``to_categorical``: class indices → one-hot rows (float32)."""
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
    categorical = np.zeros((x.shape[0], num_classes), dtype="float32")
    categorical[np.arange(x.shape[0]), x] = 1
    return categorical.reshape(input_shape + (num_classes,))


def normalize(x, axis=-1, order=2):
    """Keras's ``normalize``: rows scaled to unit ``order``-norm."""
    x = np.asarray(x)
    norm = np.atleast_1d(np.linalg.norm(x, order, axis))
    norm[norm == 0] = 1
    return x / np.expand_dims(norm, axis)


def set_random_seed(seed):
    """Keras's ``set_random_seed``: models made afterwards draw weights and shuffles from
    ``seed`` (strata's runs are reproducible: the same seed gives the same model)."""
    _config.set_global_seed(int(seed))
    np.random.seed(int(seed))


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no keras.utils.{name}")
