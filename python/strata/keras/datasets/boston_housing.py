"""``keras.datasets.boston_housing``."""

from ... import _strata


def load_data(path="boston_housing.npz", test_split=0.2, seed=113):
    """``((x_train, y_train), (x_test, y_test))``: 13 features and the median price."""
    ((x_train, y_train), (x_test, y_test)) = _strata.load_dataset(
        "boston_housing", test_split=float(test_split), seed=int(seed))
    return (x_train.astype("float64"), y_train.astype("float64")), (x_test.astype("float64"),
                                                                       y_test.astype("float64"))
