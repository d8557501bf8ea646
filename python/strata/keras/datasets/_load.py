"""Image data sets from strata's loaders, given Keras's dtypes."""

from ... import _strata


def load_images(name, path, **options):
    if path is not None and path != f"{name}.npz":
        raise NotImplementedError(f"{name}.load_data(path=...): strata finds the file in its data folders")
    ((x_train, y_train), (x_test, y_test)) = _strata.load_dataset(name, **options)
    return (x_train.astype("uint8"), y_train.astype("uint8")), (x_test.astype("uint8"), y_test.astype("uint8"))
