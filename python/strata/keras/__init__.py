"""``strata.keras``: Keras's API on strata's engine. ``import strata.keras as keras`` in place of
``import keras`` (or ``from tensorflow import keras``)."""

from . import activations, applications, callbacks, datasets, initializers, layers, losses, metrics, models
from . import ops, optimizers
from . import preprocessing, regularizers, utils
from .layers import Input
from .models import Model, Sequential

__version__ = "3.0.0-strata"

__all__ = ["activations", "applications", "callbacks", "datasets", "initializers", "layers", "losses", "metrics", "models",
           "ops", "optimizers", "preprocessing", "regularizers", "utils", "Input", "Model", "Sequential"]


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no keras.{name}")
