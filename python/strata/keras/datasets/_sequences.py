"""Word-sequence data sets (IMDB, Reuters) from strata's loaders, shaped as Keras returns them:
object arrays of Python lists of word ids, and int64 labels."""

import numpy as np

from ... import _strata


def _object_array(sequences):
    array = np.empty(len(sequences), dtype=object)
    array[:] = sequences
    return array


def load_sequences(name, path, **options):
    if path is not None and path != f"{name}.npz":
        raise NotImplementedError(f"{name}.load_data(path=...): strata finds the file in its data folders")
    for key in ("num_words", "maxlen"):
        if options.get(key) is not None and int(options[key]) <= 0:
            raise ValueError(f"{name}.load_data: {key} must be positive, got {options[key]}")
    ((x_train, y_train), (x_test, y_test)) = _strata.load_sequences(name, **options)
    return ((_object_array(x_train), y_train.astype("int64")), (_object_array(x_test), y_test.astype("int64")))


def word_index(name, path):
    if path is not None and path != f"{name}_word_index.json":
        raise NotImplementedError(f"{name}.get_word_index(path=...): strata finds the file in its data folders")
    return dict(_strata.word_index(name))
