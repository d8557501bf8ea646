"""strata: Keras programs on strata's Rust engine.

``import strata.keras as keras`` in place of ``import keras``, or ``import strata as tf`` in place
of ``import tensorflow as tf`` (``tf.keras.Sequential``, ``tf.keras.layers.Dense``, ...).
"""

from . import keras, nn
from .keras import initializers, losses, metrics, optimizers
from .tensor import Tensor, constant, convert_to_tensor

__version__ = "0.1.0"

# TensorFlow's own names for Keras's modules (`tf.metrics.BinaryAccuracy`, `tf.losses`,
# `tf.optimizers.Adam`, `tf.initializers`), as TensorFlow's tutorials use them.
__all__ = [
    "keras",
    "nn",
    "initializers",
    "losses",
    "metrics",
    "optimizers",
    "Tensor",
    "constant",
    "convert_to_tensor",
    "__version__",
]
