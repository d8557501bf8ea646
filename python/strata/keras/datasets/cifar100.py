"""``keras.datasets.cifar100``."""

from ._load import load_images


def load_data(label_mode="fine"):
    """``((x_train, y_train), (x_test, y_test))`` as Keras returns them (uint8 arrays)."""
    if label_mode not in ("fine", "coarse"):
        raise ValueError(f'`label_mode` must be one of "fine", "coarse". Received: label_mode={label_mode}.')
    return load_images("cifar100", None, label_mode=label_mode)
