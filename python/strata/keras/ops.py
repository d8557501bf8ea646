"""``keras.ops``: the activations, for ``Lambda`` functions (``lambda x: keras.ops.relu(x)``) and
on arrays (computed in NumPy). Other operations are not in strata's Python package: they are
errors naming the operation. ``shape`` and ``arange`` serve the learned positions of keras.io's
``TokenAndPositionEmbedding`` (``Embedding(maxlen, d)(keras.ops.arange(0, maxlen))``)."""

from . import activations as _activations

_OPS = {"relu": "relu", "relu6": "relu6", "sigmoid": "sigmoid", "tanh": "tanh", "elu": "elu", "selu": "selu",
        "softplus": "softplus", "softsign": "softsign", "silu": "silu", "swish": "swish", "gelu": "gelu",
        "hard_sigmoid": "hard_sigmoid", "hard_silu": "hard_silu", "hard_swish": "hard_swish",
        "leaky_relu": "leaky_relu", "log_softmax": "log_softmax", "softmax": "softmax", "exp": "exponential",
        "mish": "mish"}


def _op(name, activation):
    function = getattr(_activations, activation)

    def op(x, *args, **kwargs):
        return function(x, *args, **kwargs)

    op.__name__ = name
    op._keras_name = activation  # as a layer's activation, by its name
    return op


for _name, _activation in _OPS.items():
    globals()[_name] = _op(_name, _activation)
del _name, _activation


def shape(x):
    """The shape of an array, or of a model's symbolic input (``(None, steps, ...)``)."""
    from .layers import KerasTensor
    import numpy as np

    if isinstance(x, KerasTensor):
        if x.shape is None:
            raise NotImplementedError("keras.ops.shape: strata knows the shapes of a model's inputs only")
        return x.shape
    return np.shape(x)


def arange(start, stop=None, step=1, dtype=None):
    """``0, 1, ...`` as an array: looked up in an ``Embedding`` (positions), strata's
    ``PositionEmbedding``."""
    import numpy as np

    return np.arange(start, stop, step) if stop is not None else np.arange(start)


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no keras.ops.{name} (keras.ops has the activations: "
                              f"{', '.join(sorted(_OPS))})")
