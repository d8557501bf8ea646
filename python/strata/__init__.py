"""strata: Keras programs on strata's Rust engine.

``import strata.keras as keras`` in place of ``import keras``, or ``import strata as tf`` in place
of ``import tensorflow as tf`` (``tf.keras.Sequential``, ``tf.keras.layers.Dense``, ...).
"""

from . import keras, nn
from .tensor import Tensor, constant, convert_to_tensor

__version__ = "0.1.0"

__all__ = ["keras", "nn", "Tensor", "constant", "convert_to_tensor", "__version__"]
