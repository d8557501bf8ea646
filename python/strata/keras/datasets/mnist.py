"""``keras.datasets.mnist``."""

from ._load import load_images


def load_data(path=None):
    """``((x_train, y_train), (x_test, y_test))`` as Keras returns them (uint8 arrays)."""
    return load_images("mnist", path)
