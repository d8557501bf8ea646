"""``keras.layers``: every layer strata has, with Keras's argument names and defaults.

A layer here is its Keras config: the arguments are written into ``{"class_name", "config"}``
and strata's engine builds the layer from that config through its layer registry, which checks
every argument (an argument strata does not implement is an error naming it, never ignored).
"""

import inspect

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

    @property
    def dtype(self):
        return self._layer.dtype if isinstance(self._layer, InputLayer) else "float32"

    def _reference(self):
        if getattr(self._layer, "_is_model", False):
            # A nested model's calls: Keras 3's three elements, numbered from 0 (tf.keras 2's
            # four-element references number a model's calls from 1).
            return [self._layer.name, self._node_index, self._tensor_index]
        return [self._layer.name, self._node_index, self._tensor_index, {}]

    def __repr__(self):
        return f"<KerasTensor from {self._layer.name} (call {self._node_index}, output {self._tensor_index})>"

    def _unsupported(self, *args):
        raise NotImplementedError(
            "operators on symbolic tensors are +, - and * of two tensors of one shape (Add, Subtract, "
            "Multiply) and +, -, *, / by a number (Rescaling); for others use keras.layers"
        )

    def _arithmetic(self, other, merge, scale, offset):
        """``self op other``: a merge layer for two tensors, ``Rescaling(scale, offset)`` for a
        number, the positions' layer for a table of positions (``_Positions``)."""
        if isinstance(other, KerasTensor):
            return globals()[merge]()([self, other]) if merge else self._unsupported()
        if isinstance(other, _Positions) and merge == "Add":
            return other._added_to(self)
        if isinstance(other, (int, float, np.integer, np.floating)) and not isinstance(other, bool):
            return Rescaling(scale=float(scale(other)), offset=float(offset(other)))(self)
        return self._unsupported()

    def __add__(self, other):
        return self._arithmetic(other, "Add", lambda n: 1.0, lambda n: n)

    __radd__ = __add__

    def __sub__(self, other):
        return self._arithmetic(other, "Subtract", lambda n: 1.0, lambda n: -n)

    def __rsub__(self, other):
        return self._arithmetic(other, None, lambda n: -1.0, lambda n: n)

    def __mul__(self, other):
        return self._arithmetic(other, "Multiply", lambda n: n, lambda n: 0.0)

    __rmul__ = __mul__

    def __truediv__(self, other):
        if not isinstance(other, KerasTensor) and other == 0:
            raise ZeroDivisionError("a symbolic tensor divided by 0")
        return self._arithmetic(other, None, lambda n: 1.0 / n, lambda n: 0.0)

    __rtruediv__ = __matmul__ = __getitem__ = _unsupported


class _Positions:
    """An ``Embedding`` looked up at positions ``0, 1, ..., n-1`` (``keras.ops.arange``), as
    keras.io's ``TokenAndPositionEmbedding`` writes learned positions: added to a sequence, it
    is strata's ``PositionEmbedding`` (the same table, under the Embedding's name)."""

    def __init__(self, embedding, steps):
        self._embedding = embedding
        self._steps = steps

    def _added_to(self, x):
        config = self._embedding._config
        rows = config.get("input_dim")
        if rows is None or rows < self._steps:
            raise ValueError(f"{self._embedding.name}: looked up at {self._steps} positions, "
                             f"but it has {rows} rows")
        initializer = config.get("embeddings_initializer", "random_uniform")
        positions = PositionEmbedding(sequence_length=int(rows), initializer=initializer,
                                      name=self._embedding.name)(x)
        return Add()([x, positions])

    __radd__ = _added_to

    def __add__(self, other):
        if isinstance(other, KerasTensor):
            return self._added_to(other)
        raise NotImplementedError("strata adds looked-up positions to a symbolic tensor only")


class WeightLists:
    """Keras's ``trainable_weights`` / ``non_trainable_weights`` (and ``_variables``) of a layer
    or model, from its ``_weights_where(trainable)``: what training changes, frozen layers'
    weights and BatchNormalization's moving statistics left out."""

    @property
    def trainable_weights(self):
        return self._weights_where(True)

    @property
    def non_trainable_weights(self):
        return self._weights_where(False)

    trainable_variables = trainable_weights
    non_trainable_variables = non_trainable_weights


class Layer(Serializable, WeightLists):
    """A Keras layer. ``args`` fill the class's positional parameters in Keras's order;
    ``name``, ``trainable``, ``input_shape`` / ``input_dim`` / ``batch_input_shape`` (on a
    first layer, Keras 2's spelling) and ``dtype`` are accepted by every layer."""

    #: Keras's positional parameters of the class, in order.
    _positional = ()

    #: What strata computes in (an InputLayer keeps the dtype it was declared with).
    dtype = "float32"

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
        if callable(getattr(type(self), "call", None)):
            return self._call_traced(inputs, *args, **kwargs)
        # Several tensors as separate arguments (MultiHeadAttention's query, value, key), as
        # Keras calls them: the layer's list of inputs.
        if not isinstance(inputs, (list, tuple)) and (args or "value" in kwargs):
            sequences = [inputs, *args] + [kwargs.pop(role) for role in ("value", "key") if role in kwargs]
            if all(isinstance(t, KerasTensor) for t in sequences):
                inputs, args = sequences, ()
        # training=None is how a subclassed layer's call passes its own on (the engine knows
        # whether it trains); masks are carried by the engine.
        if kwargs.get("training", None) is None and kwargs.get("mask", None) is None:
            kwargs.pop("training", None)
            kwargs.pop("mask", None)
        if args or kwargs:
            raise NotImplementedError(
                f"{self.name}: calling a layer with more than its inputs ({', '.join(kwargs) or 'extra arguments'})"
            )
        if type(self).class_name == "Embedding" and _is_positions(inputs):
            return _Positions(self, len(inputs))
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

    def _call_traced(self, inputs, *args, **kwargs):
        """A subclassed layer (``class Block(keras.layers.Layer)`` with ``call``): its ``call``
        runs once on the symbolic inputs, so the layers it calls (made in ``__init__``) and the
        arithmetic it does become the model's own layers, as if written in the functional API."""
        tensors = list(inputs) if isinstance(inputs, (list, tuple)) else [inputs]
        if not tensors or not all(isinstance(t, KerasTensor) for t in tensors):
            raise NotImplementedError(
                f"{self.name}: strata runs a subclassed layer's call on symbolic tensors (keras.Input) only")
        parameters = inspect.signature(self.call).parameters
        for optional in ("training", "mask"):
            if optional in parameters and optional not in kwargs:
                kwargs[optional] = None
        outputs = self.call(inputs, *args, **kwargs)
        flat = list(outputs) if isinstance(outputs, (list, tuple)) else [outputs]
        if not flat or not all(isinstance(t, KerasTensor) for t in flat):
            raise NotImplementedError(
                f"{self.name} ({type(self).__name__}): its call must return what strata layers give "
                "(symbolic tensors made by keras.layers)")
        return outputs

    def add_weight(self, *args, **kwargs):
        raise NotImplementedError(
            f"{self.name} ({type(self).__name__}): weights of a subclassed layer's own are not supported "
            "by strata; make them by layers in __init__ (Dense, Embedding, PositionEmbedding, ...)")

    # Weights and state, once the layer belongs to a model ---------------------------------

    def _engine(self):
        if self._model is None:
            return None
        return self._model._engine_or_none()

    def _built_engine(self):
        """The engine of the model this layer belongs to, made now if it is not yet: Keras
        builds a model whose input shapes are known at once, so its layers' weights exist
        before the model is compiled or called."""
        if self._model is None:
            return None
        return self._model._make_engine()

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
        engine = self._built_engine()
        return [] if engine is None else list(engine.get_weights(self.name))

    def set_weights(self, weights):
        engine = self._built_engine()
        if engine is None:
            raise ValueError(f"layer '{self.name}' has no weights yet: build its model first")
        engine.set_weights([_config.as_float32(w, "weights") for w in weights], self.name)

    @property
    def weights(self):
        return self.get_weights()

    def count_params(self):
        return sum(int(w.size) for w in self.get_weights())

    def _weights_where(self, trainable):
        engine = self._built_engine()
        if engine is None:
            return []
        return [w for w, t in zip(engine.get_weights(self.name), engine.weights_trainable(self.name)) if t == trainable]

    def __repr__(self):
        return f"<{type(self).class_name or type(self).__name__} name={self.name}>"

    @property
    def output(self):
        """Keras's ``layer.output``: the symbolic tensor of the layer's one call (a list for a
        layer with several outputs)."""
        if isinstance(self, InputLayer):
            return KerasTensor(self, 0, 0)
        if len(self._inbound_nodes) != 1:
            raise AttributeError(
                f"The layer {self.name} has {'never been called' if not self._inbound_nodes else 'multiple inbound nodes'}"
                " and thus has no defined output.")
        if self._config.get("return_state"):
            return [KerasTensor(self, 0, i) for i in range(3 if type(self).__name__ == "LSTM" else 2)]
        return KerasTensor(self, 0, 0)

    @property
    def input(self):
        """Keras's ``layer.input``: what the layer's one call read."""
        if isinstance(self, InputLayer):
            return KerasTensor(self, 0, 0)
        if len(self._inbound_nodes) != 1:
            raise AttributeError(f"The layer {self.name} has no defined input (called "
                                 f"{len(self._inbound_nodes)} times).")
        node = self._inbound_nodes[0]
        return node[0] if len(node) == 1 else list(node)

    def __getattr__(self, name):
        """Keras's config attributes (``layer.units``, ``layer.activation``, ``layer.filters``,
        ...): what the layer was given, else the default strata's engine filled in."""
        if name.startswith("_") or name not in _CONFIG_ATTRIBUTES:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        config = self.__dict__.get("_config", {})
        if name not in config:
            config = self._engine_config()
        if name not in config:
            raise AttributeError(f"'{type(self).__name__}' object has no attribute '{name}'")
        value = config[name]
        if name in ("activation", "recurrent_activation"):
            from . import activations

            return activations.get(value)
        return tuple(value) if isinstance(value, list) else value

    def _engine_config(self):
        engine = self._built_engine() if self.__dict__.get("_model") is not None else None
        if engine is None:
            return {}
        import json

        description = json.loads(engine.config())
        for entry in description.get("config", {}).get("layers", []):
            config = entry.get("config", {})
            if config.get("name", entry.get("name")) == self.name:
                return config
        return {}


#: Config arguments a layer answers as attributes, as Keras's layers keep them.
_CONFIG_ATTRIBUTES = {
    "units", "activation", "recurrent_activation", "use_bias", "filters", "kernel_size", "strides", "padding",
    "dilation_rate", "pool_size", "rate", "return_sequences", "return_state", "input_dim", "output_dim",
    "num_heads", "key_dim", "axis", "epsilon", "momentum", "target_shape", "mask_zero", "go_backwards",
}


class InputLayer(Layer):
    """Keras's ``InputLayer(shape=...)`` (``input_shape=`` / ``batch_shape=`` too)."""

    class_name = "InputLayer"
    _positional = ("shape",)

    def __init__(self, *args, **kwargs):
        # Keras keeps an input's dtype (int32 token ids, float64 data, uint8 images); strata
        # computes in float32 and converts the arrays it is given as Keras would convert them.
        self.dtype = _input_dtype(kwargs.pop("dtype", None))
        super().__init__(*args, **kwargs)
        config = self._config
        if "input_shape" in config:
            config["shape"] = config.pop("input_shape")
        if "batch_shape" in config:
            config["shape"] = list(config.pop("batch_shape"))[1:]
        if config.get("shape") is None:
            raise ValueError("InputLayer needs a shape")
        config["shape"] = [int(d) if d is not None else None for d in config["shape"]]


def _input_dtype(dtype):
    """The name of a numeric dtype given to an input (``"int32"``, ``np.uint8``, ``tf.float64``);
    other dtypes (strings, complex numbers) raise."""
    if dtype is None:
        return "float32"
    try:
        name = np.dtype(getattr(dtype, "name", dtype)).name
    except TypeError:
        name = None
    if name is None or np.dtype(name).kind not in "biuf":
        raise NotImplementedError(f"keras.Input: strata takes numeric inputs (computed in float32), "
                                  f"not dtype={dtype!r}")
    return name


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
        """Each channel's mean and population variance over every other axis, as Keras's ``adapt``:
        before the model is built they are the layer's settings; after (the model compiled or
        used, as Keras allows), its ``mean``, ``variance`` and ``count`` weights."""
        axis = self._config.get("axis", -1)
        data = np.asarray(data, dtype=np.float64)
        if data.ndim == 0 or axis not in (-1, data.ndim - 1, (data.ndim - 1,), [data.ndim - 1], (-1,), [-1]):
            raise NotImplementedError(f"{self.name}: adapt with axis={axis!r} (strata normalizes the last axis)")
        over = tuple(range(data.ndim - 1))
        mean = np.mean(data, axis=over).astype(np.float32)
        variance = np.var(data, axis=over).astype(np.float32)
        engine = self._engine()
        count = np.float32(data.size // max(mean.size, 1))
        if engine is None:
            # Settings until the model is made; its weights, as Keras's, if the model is built
            # at once (see `Model._make_engine`).
            self._config["mean"] = mean.tolist()
            self._config["variance"] = variance.tolist()
            self._adapted = (mean, variance, count)
            return
        current = list(engine.get_weights(self.name))
        if len(current) != 3:
            raise ValueError(f"{self.name}: its mean and variance are settings of the built model (given when "
                             "it was made, or adapted before the build); adapt it again before its model is built")
        if current[0].size != mean.size:
            raise ValueError(f"{self.name}: adapt on data with {mean.size} features, where the layer "
                             f"normalizes {current[0].size}")
        engine.set_weights([mean.reshape(current[0].shape), variance.reshape(current[1].shape),
                            np.asarray(count, np.float32).reshape(current[2].shape)], self.name)

    def _statistic(self, index, key):
        if key in self._config:
            return as_tensor(np.asarray(self._config[key], np.float32))
        weights = self.get_weights() if self._model is not None else []
        return as_tensor(weights[index]) if len(weights) == 3 else None

    @property
    def mean(self):
        return self._statistic(0, "mean")

    @property
    def variance(self):
        return self._statistic(1, "variance")


class _Traced:
    """What a ``Lambda``'s function is called on once: a stand-in for its input that records each
    step done to it (``x * 2``, ``x / 255.0``, ``keras.ops.relu(x)``), so that strata can run the
    steps as its own layers."""

    def __init__(self, steps=()):
        self._steps = tuple(steps)

    def _then(self, *steps):
        return _Traced(self._steps + steps)

    @staticmethod
    def _number(value, what):
        if isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool):
            return float(value)
        if isinstance(value, np.ndarray) and value.size == 1:
            return float(value.reshape(()))
        raise _Untraceable(f"{what} with {type(value).__name__} (strata runs arithmetic with numbers only)")

    def __mul__(self, other):
        return self._then(("scale", self._number(other, "x * y")))

    def __truediv__(self, other):
        value = self._number(other, "x / y")
        if value == 0.0:
            raise _Untraceable("x / 0")
        return self._then(("scale", 1.0 / value))

    def __add__(self, other):
        return self._then(("offset", self._number(other, "x + y")))

    def __sub__(self, other):
        return self._then(("offset", -self._number(other, "x - y")))

    def __rsub__(self, other):
        return self._then(("scale", -1.0), ("offset", self._number(other, "y - x")))

    def __neg__(self):
        return self._then(("scale", -1.0))

    def __pos__(self):
        return self

    __rmul__ = __mul__
    __radd__ = __add__

    def _unsupported(self, *args, **kwargs):
        raise _Untraceable("an operation other than +, -, *, / with a number or an activation")

    __getitem__ = __matmul__ = __rmatmul__ = __rtruediv__ = __pow__ = __rpow__ = __array__ = _unsupported
    __abs__ = __floordiv__ = __mod__ = __lt__ = __gt__ = __le__ = __ge__ = _unsupported
    __array_ufunc__ = None


class _Untraceable(Exception):
    """A step of a ``Lambda``'s function that strata cannot run as a layer."""


def _activation_step(name, x, *args, **kwargs):
    """``keras.activations.NAME(x)`` or ``keras.ops.NAME(x)`` on a traced input."""
    if args or kwargs:
        raise _Untraceable(f"{name} with arguments ({', '.join(map(repr, args)) or ', '.join(kwargs)})")
    return x._then(("activation", name))


def _as_layers(steps):
    """The traced steps as (class_name, config) pairs: runs of arithmetic folded into one
    ``Rescaling(scale, offset)`` (x * scale + offset), each activation an ``Activation``."""
    layers, affine = [], None
    for kind, value in steps:
        if kind == "activation":
            if affine is not None:
                layers.append(("Rescaling", {"scale": affine[0], "offset": affine[1]}))
                affine = None
            layers.append(("Activation", {"activation": value}))
            continue
        scale, offset = affine or (1.0, 0.0)
        affine = (scale * value, offset * value) if kind == "scale" else (scale, offset + value)
    if affine is not None or not layers:
        scale, offset = affine or (1.0, 0.0)
        layers.append(("Rescaling", {"scale": scale, "offset": offset}))
    return layers


class Lambda(Layer):
    """Keras's ``Lambda(function)``. strata has no Python in its engine: the function is called
    once on a stand-in for its input, and what it does, made of ``+ - * /`` with numbers and the
    activations of ``keras.activations`` / ``keras.ops`` (``lambda x: x / 255.0``,
    ``lambda x: keras.ops.relu(x * 2)``), runs as strata's layers: ``Rescaling`` for the
    arithmetic, ``Activation`` for each activation (the first named as the Lambda, the others
    ``NAME_rescaling``, ``NAME_activation``, ...). Any other function is an error naming the layer and what to use instead."""

    class_name = "Lambda"
    _positional = ("function", "output_shape", "mask", "arguments")

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        config = self._config
        function = config.pop("function", None)
        arguments = config.pop("arguments", None) or {}
        config.pop("output_shape", None)
        if config.pop("mask", None) is not None:
            raise NotImplementedError(f"Lambda '{self.name}': mask= is not supported by strata")
        unknown = [key for key in config if key != "input_shape"]
        if unknown:
            raise TypeError(f"Lambda '{self.name}': unexpected arguments {', '.join(unknown)}")
        if not callable(function):
            raise TypeError(f"Lambda '{self.name}': the function must be callable, got {function!r}")
        try:
            result = function(_Traced(), **arguments)
            if not isinstance(result, _Traced):
                raise _Untraceable(f"a result that is not computed from the input ({type(result).__name__})")
        except Exception as error:  # the function's own failure on the stand-in says what it tried
            raise NotImplementedError(
                f"Lambda '{self.name}': strata runs a Lambda whose function is made of +, -, * and / with "
                f"numbers and activations (keras.activations.relu, keras.ops.sigmoid, ...) of its one input; "
                f"this one uses {error}. Use built-in layers in its place: Rescaling(scale, offset) for "
                f"x * scale + offset, Activation for a function of each value, Add / Multiply / Concatenate "
                f"for several tensors, Reshape / Permute for shapes"
            ) from None
        parts = _as_layers(result._steps)
        input_shape = config.get("input_shape")
        self._parts = []
        for index, (class_name, part_config) in enumerate(parts):
            name = self.name if index == 0 else unique_name(f"{self.name}_{snake_case(class_name)}")
            part = globals()[class_name](name=name, trainable=self._trainable, **part_config)
            if index == 0 and input_shape is not None:
                part._config["input_shape"] = input_shape
            self._parts.append(part)

    def __call__(self, inputs, *args, **kwargs):
        if isinstance(inputs, (list, tuple)):
            raise NotImplementedError(
                f"Lambda '{self.name}' on several tensors is not supported by strata: "
                "use keras.layers.Add, Multiply, Concatenate, ..."
            )
        for part in self._parts:
            inputs = part(inputs, *args, **kwargs)
        return inputs

    def _entry(self):
        if len(self._parts) != 1:
            raise NotImplementedError(
                f"Lambda '{self.name}' runs as {len(self._parts)} layers; add it to a Sequential model "
                "or call it on a symbolic tensor"
            )
        return self._parts[0]._entry()


def _is_positions(values):
    """Whether ``values`` are the whole numbers ``0, 1, ..., n-1`` (``keras.ops.arange(n)``)."""
    if isinstance(values, (KerasTensor, list, tuple)) or not hasattr(values, "__len__"):
        return False
    array = np.asarray(values)
    return array.ndim == 1 and array.size > 0 and np.array_equal(array, np.arange(array.size))


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


__all__ = ["Layer", "InputLayer", "Input", "KerasTensor", "Lambda"]
for _name in _strata.layer_classes():
    if _name not in globals():
        globals()[_name] = _layer_class(_name)
        __all__.append(_name)
del _name


# Keras's functional helpers of the merge layers: ``layers.concatenate([a, b], axis=-1)`` is
# ``layers.Concatenate(axis=-1)([a, b])``.
def concatenate(inputs, axis=-1, **kwargs):
    return Concatenate(axis=axis, **kwargs)(inputs)


def _merge_function(class_name):
    def merge(inputs, **kwargs):
        return globals()[class_name](**kwargs)(inputs)

    merge.__name__ = snake_case(class_name)
    merge.__doc__ = f"Keras's ``layers.{merge.__name__}(inputs)``: ``layers.{class_name}()(inputs)``."
    return merge


for _name in ["Add", "Subtract", "Multiply", "Average", "Maximum", "Minimum"]:
    globals()[snake_case(_name)] = _merge_function(_name)
    __all__.append(snake_case(_name))
del _name
__all__.append("concatenate")


def dot(inputs, axes=-1, normalize=False, **kwargs):
    raise NotImplementedError("strata has no layer keras.layers.Dot (keras.layers.dot)")


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    if name[:1].isupper():
        raise NotImplementedError(f"strata has no layer keras.layers.{name}")
    raise AttributeError(f"module 'strata.keras.layers' has no attribute {name!r}")
