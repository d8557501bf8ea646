"""``tf.nn`` under ``import strata as tf``: the activation functions programs call directly
(``tf.nn.softmax(predictions)``), computed in NumPy."""

from ._functions import ACTIVATIONS, log_softmax, relu, sigmoid, softmax

tanh = ACTIVATIONS["tanh"]
relu6 = ACTIVATIONS["relu6"]
elu = ACTIVATIONS["elu"]
selu = ACTIVATIONS["selu"]
softplus = ACTIVATIONS["softplus"]
softsign = ACTIVATIONS["softsign"]
silu = swish = ACTIVATIONS["silu"]
gelu = ACTIVATIONS["gelu"]


def leaky_relu(features, alpha=0.2):
    """``tf.nn.leaky_relu`` (TensorFlow's default slope is 0.2, as Keras's)."""
    return relu(features, negative_slope=alpha)


leaky_relu._keras_name = "leaky_relu"


__all__ = ["softmax", "log_softmax", "relu", "relu6", "sigmoid", "tanh", "elu", "selu", "softplus", "softsign",
           "silu", "swish", "gelu", "leaky_relu"]


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no tf.nn.{name}")
