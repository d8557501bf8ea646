"""Turning Keras objects and arguments into the JSON configs strata's engine reads."""

import numbers
import re

import numpy as np


class Serializable:
    """An object written as Keras writes it: ``{"class_name": ..., "config": {...}}``."""

    #: Keras's class name (defaults to the Python class's).
    class_name = None

    def get_config(self):
        return dict(self._config)

    def _entry(self):
        return {"class_name": self.class_name or type(self).__name__, "config": serialize(self.get_config())}


def serialize(value):
    """A JSON-ready copy of an argument: tuples as lists, NumPy numbers as Python numbers,
    Keras objects as their ``{"class_name", "config"}`` entries, functions of
    ``keras.activations`` (and friends) by name."""
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, Serializable):
        return value._entry()
    if isinstance(value, (np.bool_,)):
        return bool(value)
    if isinstance(value, numbers.Integral):
        return int(value)
    if isinstance(value, numbers.Real):
        return float(value)
    if isinstance(value, np.ndarray):
        return serialize(value.tolist())
    if isinstance(value, (list, tuple)):
        return [serialize(v) for v in value]
    if isinstance(value, dict):
        return {str(k): serialize(v) for k, v in value.items()}
    keras_name = getattr(value, "_keras_name", None)
    if keras_name is not None:
        return keras_name
    if callable(value):
        raise NotImplementedError(
            f"strata cannot run Python functions inside a model ({getattr(value, '__name__', value)!r}); "
            "use a name such as 'relu' or a keras.activations function"
        )
    raise TypeError(f"cannot use {value!r} ({type(value).__name__}) as a Keras argument")


def snake_case(name):
    """Keras's ``to_snake_case``: ``Conv2D`` → ``conv2d``, ``MaxPooling2D`` → ``max_pooling2d``."""
    intermediate = re.sub("(.)([A-Z][a-z0-9]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", intermediate).lower()


_used_names = {}


def unique_name(base):
    """Keras's automatic names: ``dense``, ``dense_1``, ``dense_2``, ... per base name."""
    count = _used_names.get(base, 0)
    _used_names[base] = count + 1
    return base if count == 0 else f"{base}_{count}"


def as_float32(value, what):
    """An array for strata: numbers as float32, as Keras converts integer and boolean inputs;
    strings and objects refused with ``TypeError``. Memory layout is left alone: the engine
    reads any strides."""
    array = np.asarray(value)
    if array.dtype.kind not in "fiub":
        raise TypeError(
            f"{what} must hold numbers, got an array of dtype {array.dtype} "
            "(convert it with np.asarray(..., dtype='float32'))"
        )
    if array.dtype != np.float32:
        array = array.astype(np.float32)
    return array


_seed = [None]


def set_global_seed(seed):
    """The seed models made from now on start from (``keras.utils.set_random_seed``)."""
    _seed[0] = seed


def global_seed():
    return _seed[0]
