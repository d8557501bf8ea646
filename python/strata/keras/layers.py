"""``keras.layers``: every layer strata has, with Keras's argument names and defaults.

A layer here is its Keras config: the arguments are written into ``{"class_name", "config"}``
and strata's engine builds the layer from that config through its layer registry, which checks
every argument (an argument strata does not implement is an error naming it, never ignored).
"""

import numpy as np

from . import _config
from ..tensor import as_tensor
from ._config import Serializable, serialize, snake_case, unique_name
from .. import _strata


class KerasTensor:
    """The symbolic output of a layer call in a functional model: which call of which layer
    made it (Keras's node index) and which of that call's outputs it is."""

    def __init__(self, layer, node_index=0, tensor_index=0):
        self._layer = layer
        self._node_index = node_index
        self._tensor_index = tensor_index

    @property
    def shape(self):
        shape = self._layer._config.get("shape") if isinstance(self._layer, InputLayer) else None
        return (None, *shape) if shape is not None else None

    def _reference(self):
        return [self._layer.name, self._node_index, self._tensor_index, {}]

    def __repr__(self):
        return f"<KerasTensor from {self._layer.name} (call {self._node_index}, output {self._tensor_index})>"

    def _unsupported(self, *args):
        raise NotImplementedError(
            "operators on symbolic tensors (x + y, x * y, ...) are not supported by strata: "
            "use keras.layers.Add, Subtract, Multiply, ..."
        )

    __add__ = __radd__ = __sub__ = __rsub__ = __mul__ = __rmul__ = __truediv__ = __matmul__ = _unsupported
    __getitem__ = _unsupported


class Layer(Serializable):
    """A Keras layer. ``args`` fill the class's positional parameters in Keras's order;
    ``name``, ``trainable``, ``input_shape`` / ``input_dim`` / ``batch_input_shape`` (on a
    first layer, Keras 2's spelling) and ``dtype`` are accepted by every layer."""

    #: Keras's positional parameters of the class, in order.
    _positional = ()

    def __init__(self, *args, **kwargs):
        class_name = type(self).class_name or type(self).__name__
        if len(args) > len(self._positional):
            raise TypeError(
                f"{class_name} takes at most {len(self._positional)} positional arguments "
                f"({', '.join(self._positional) or 'none'}), got {len(args)}"
            )
        config = dict(zip(self._positional, args))
        for key in kwargs:
            if key in config:
                raise TypeError(f"{class_name} got multiple values for argument '{key}'")
        config.update(kwargs)
        dtype = config.pop("dtype", None)
        if dtype not in (None, "float32") and getattr(dtype, "__name__", None) != "float32":
            raise NotImplementedError(f"{class_name}: strata computes in float32, not dtype={dtype!r}")
        if "input_dim" in config and class_name != "Embedding":
            config["input_shape"] = [config.pop("input_dim")]
        if "batch_input_shape" in config:
            config["input_shape"] = list(config.pop("batch_input_shape"))[1:]
        self.name = config.pop("name", None) or unique_name(snake_case(class_name))
        self._trainable = bool(config.pop("trainable", True))
        self._config = config
        self._model = None
        self._inbound_nodes = []

    # Configs -----------------------------------------------------------------------------

    def get_config(self):
        return {"name": self.name, "trainable": self.trainable, **self._config}

    @classmethod
    def from_config(cls, config):
        return cls(**config)

    # Functional API ----------------------------------------------------------------------

    def __call__(self, inputs, *args, **kwargs):
        if args or kwargs:
            raise NotImplementedError(
                f"{self.name}: calling a layer with more than its inputs ({', '.join(kwargs) or 'extra arguments'})"
            )
        many = isinstance(inputs, (list, tuple))
        tensors = list(inputs) if many else [inputs]
        if not tensors or not all(isinstance(t, KerasTensor) for t in tensors):
            raise NotImplementedError(
                f"{self.name}: strata layers are called on symbolic tensors (keras.Input) only; "
                "to run a model on arrays, use model.predict"
            )
        self._inbound_nodes.append(tensors)
        node = len(self._inbound_nodes) - 1
        if self._config.get("return_state"):
            count = 3 if type(self).__name__ == "LSTM" else 2
            return [KerasTensor(self, node, i) for i in range(count)]
        return KerasTensor(self, node, 0)

    # Weights and state, once the layer belongs to a model ---------------------------------

    def _engine(self):
        if self._model is None:
            return None
        return self._model._engine_or_none()

    @property
    def trainable(self):
        engine = self._engine()
        if engine is not None:
            return engine.layer_trainable(self.name)
        return self._trainable

    @trainable.setter
    def trainable(self, value):
        self._trainable = bool(value)
        engine = self._engine()
        if engine is not None:
            engine.set_layer_trainable(self.name, self._trainable)

    def get_weights(self):
        engine = self._engine()
        return [] if engine is None else list(engine.get_weights(self.name))

    def set_weights(self, weights):
        engine = self._engine()
        if engine is None:
            raise ValueError(f"layer '{self.name}' has no weights yet: build its model first")
        engine.set_weights([_config.as_float32(w, "weights") for w in weights], self.name)

    @property
    def weights(self):
        return self.get_weights()

    def count_params(self):
        return sum(int(w.size) for w in self.get_weights())

    def __repr__(self):
        return f"<{type(self).class_name or type(self).__name__} name={self.name}>"


class InputLayer(Layer):
    """Keras's ``InputLayer(shape=...)`` (``input_shape=`` / ``batch_shape=`` too)."""

    class_name = "InputLayer"
    _positional = ("shape",)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self._config
        if "input_shape" in config:
            config["shape"] = config.pop("input_shape")
        if "batch_shape" in config:
            config["shape"] = list(config.pop("batch_shape"))[1:]
        if config.get("shape") is None:
            raise ValueError("InputLayer needs a shape")
        config["shape"] = [int(d) if d is not None else None for d in config["shape"]]


def Input(shape=None, batch_size=None, dtype=None, sparse=None, batch_shape=None, name=None, tensor=None):
    """Keras's ``keras.Input``: the symbolic input of a functional model (or the first element
    of a ``Sequential`` list)."""
    if sparse or tensor is not None:
        raise NotImplementedError("keras.Input: sparse inputs and tensor= are not supported by strata")
    if batch_shape is not None:
        shape = list(batch_shape)[1:]
    if shape is None:
        raise ValueError("keras.Input needs a shape")
    kwargs = {"shape": list(shape)}
    if name is not None:
        kwargs["name"] = name
    if dtype is not None:
        kwargs["dtype"] = dtype
    return KerasTensor(InputLayer(**kwargs), 0, 0)


class Normalization(Layer):
    """Keras's ``Normalization(axis=-1, mean=None, variance=None, invert=False)``, with ``adapt``:
    the statistics of the data become the layer's ``mean`` and ``variance`` (strata normalizes
    the last axis)."""

    class_name = "Normalization"
    _positional = ("axis", "mean", "variance")

    def adapt(self, data, batch_size=None, steps=None):
        """Each channel's mean and population variance over every other axis, as Keras's ``adapt``."""
        if self._engine() is not None:
            raise ValueError(f"{self.name}: adapt the layer before its model is built (compiled or used)")
        axis = self._config.get("axis", -1)
        data = np.asarray(data, dtype=np.float64)
        if data.ndim == 0 or axis not in (-1, data.ndim - 1, (data.ndim - 1,), [data.ndim - 1], (-1,), [-1]):
            raise NotImplementedError(f"{self.name}: adapt with axis={axis!r} (strata normalizes the last axis)")
        over = tuple(range(data.ndim - 1))
        self._config["mean"] = np.mean(data, axis=over).astype(np.float32).tolist()
        self._config["variance"] = np.var(data, axis=over).astype(np.float32).tolist()

    @property
    def mean(self):
        return None if "mean" not in self._config else as_tensor(np.asarray(self._config["mean"], np.float32))

    @property
    def variance(self):
        return None if "variance" not in self._config else as_tensor(
            np.asarray(self._config["variance"], np.float32))


# Positional parameters of the layers, in Keras 3's order, from strata's layer registry (the
# list the command line's `--head` reads too).
_POSITIONAL = dict(_strata.layer_positional())


def _layer_class(class_name):
    return type(class_name, (Layer,), {
        "class_name": class_name,
        "_positional": _POSITIONAL.get(class_name, ()),
        "__doc__": f"Keras's ``layers.{class_name}``, built by strata's engine from its config.",
        "__module__": __name__,
    })


__all__ = ["Layer", "InputLayer", "Input", "KerasTensor"]
for _name in _strata.layer_classes():
    if _name not in globals():
        globals()[_name] = _layer_class(_name)
        __all__.append(_name)
del _name


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    if name[:1].isupper():
        raise NotImplementedError(f"strata has no layer keras.layers.{name}")
    raise AttributeError(f"module 'strata.keras.layers' has no attribute {name!r}")
