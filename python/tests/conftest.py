"""Shared data for the tests: MNIST as a Keras program loads it, once per session."""

import numpy as np
import pytest

import strata.keras as keras


@pytest.fixture(scope="session")
def mnist():
    """``((x_train, y_train), (x_test, y_test))`` scaled to [0, 1], as float32."""
    (x_train, y_train), (x_test, y_test) = keras.datasets.mnist.load_data()
    return (x_train.astype("float32") / 255.0, y_train), (x_test.astype("float32") / 255.0, y_test)


@pytest.fixture(scope="session")
def mnist_small(mnist):
    """12,000 training and 2,000 test images: about 0.91 in a couple of epochs, as in Keras."""
    (x_train, y_train), (x_test, y_test) = mnist
    return (x_train[:12000], y_train[:12000]), (x_test[:2000], y_test[:2000])


@pytest.fixture(autouse=True)
def seeded():
    keras.utils.set_random_seed(0)
    np.random.seed(0)
