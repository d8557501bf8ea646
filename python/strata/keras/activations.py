"""``keras.activations``: the activation functions, usable as ``activation=keras.activations.relu``
(inside a model strata computes them in Rust) or called on arrays (computed in NumPy)."""

from .._functions import ACTIVATIONS
from .layers import _Traced, _activation_step

_NAMES = ["relu", "sigmoid", "softmax", "tanh", "elu", "selu", "softplus", "softsign", "swish", "silu", "gelu",
          "linear", "exponential", "leaky_relu", "relu6", "hard_sigmoid", "hard_swish", "hard_silu", "mish",
          "log_softmax"]


def _activation(name):
    def activation(x, *args, **kwargs):
        if isinstance(x, _Traced):
            # Inside a Lambda's function: a step strata runs as an Activation layer.
            return _activation_step(name, x, *args, **kwargs)
        if name not in ACTIVATIONS:
            raise NotImplementedError(f"keras.activations.{name} in Python")
        return ACTIVATIONS[name](x, *args, **kwargs)

    activation.__name__ = name
    activation._keras_name = name
    return activation


for _name in _NAMES:
    globals()[_name] = _activation(_name)
del _name


def get(identifier):
    if identifier is None:
        return globals()["linear"]
    if isinstance(identifier, str):
        return globals()[identifier] if identifier in _NAMES else _activation(identifier)
    return identifier


def serialize(activation):
    return getattr(activation, "_keras_name", activation)


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no activation keras.activations.{name}")
