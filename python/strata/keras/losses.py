"""``keras.losses``: the losses strata computes, by name, function or class. Given to ``compile``
they run in Rust; called on arrays (``loss_fn(y_true, y_pred)``) they are computed in NumPy with
the same definitions."""

import numpy as np

from .._functions import LOSSES
from ..tensor import as_tensor

_NAMES = {
    "mse": "mean_squared_error", "mean_squared_error": "mean_squared_error",
    "mae": "mean_absolute_error", "mean_absolute_error": "mean_absolute_error",
    "binary_crossentropy": "binary_crossentropy",
    "categorical_crossentropy": "categorical_crossentropy",
    "sparse_categorical_crossentropy": "sparse_categorical_crossentropy",
}


class Loss:
    """A loss object, as Keras's ``keras.losses.Loss`` classes."""

    _name = None
    _smooths = False

    def __init__(self, from_logits=False, reduction="sum_over_batch_size", name=None, **kwargs):
        if reduction not in ("sum_over_batch_size", "auto", None):
            raise NotImplementedError(f"{type(self).__name__}: reduction={reduction!r}")
        self.label_smoothing = 0.0
        for key, value in kwargs.items():
            if key == "label_smoothing" and (value == 0 or self._smooths):
                if not 0 <= value <= 1:
                    raise ValueError(f"{type(self).__name__}: label_smoothing must lie in [0, 1], got {value!r}")
                self.label_smoothing = float(value)
                continue
            if key == "axis" and value == -1:
                continue
            raise NotImplementedError(f"{type(self).__name__}: {key}={value!r}")
        self.from_logits = bool(from_logits)

    def __call__(self, y_true, y_pred, sample_weight=None):
        """The loss averaged over the batch (Keras's ``sum_over_batch_size``), as a scalar tensor."""
        function = LOSSES[self._name]
        if self._name in ("mean_squared_error", "mean_absolute_error"):
            losses = np.asarray(function(y_true, y_pred))
        else:
            smoothing = {"label_smoothing": self.label_smoothing} if self._smooths else {}
            losses = np.asarray(function(y_true, y_pred, from_logits=self.from_logits, **smoothing))
        if sample_weight is not None:
            losses = losses * np.broadcast_to(np.asarray(sample_weight, losses.dtype).reshape(
                np.shape(sample_weight) + (1,) * (losses.ndim - np.ndim(sample_weight))), losses.shape)
        return as_tensor(np.sum(losses) / max(losses.size, 1), losses.dtype)


def _loss_class(class_name, name, takes_logits, smooths=False):
    def __init__(self, *args, **kwargs):
        if not takes_logits and kwargs.get("from_logits"):
            raise NotImplementedError(f"{class_name}: from_logits")
        Loss.__init__(self, *args, **kwargs)

    return type(class_name, (Loss,), {"_name": name, "_smooths": smooths, "__init__": __init__,
                                      "__module__": __name__})


MeanSquaredError = _loss_class("MeanSquaredError", "mean_squared_error", False)
MeanAbsoluteError = _loss_class("MeanAbsoluteError", "mean_absolute_error", False)
BinaryCrossentropy = _loss_class("BinaryCrossentropy", "binary_crossentropy", True, smooths=True)
CategoricalCrossentropy = _loss_class("CategoricalCrossentropy", "categorical_crossentropy", True, smooths=True)
SparseCategoricalCrossentropy = _loss_class("SparseCategoricalCrossentropy", "sparse_categorical_crossentropy",
                                            True)


def _loss_function(name):
    def loss(y_true, y_pred, **kwargs):
        return LOSSES[name](y_true, y_pred, **kwargs)

    loss.__name__ = name
    loss._keras_name = name
    return loss


mean_squared_error = mse = MSE = _loss_function("mean_squared_error")
mean_absolute_error = mae = MAE = _loss_function("mean_absolute_error")
binary_crossentropy = _loss_function("binary_crossentropy")
categorical_crossentropy = _loss_function("categorical_crossentropy")
sparse_categorical_crossentropy = _loss_function("sparse_categorical_crossentropy")


def resolve(loss):
    """``(strata's name, from_logits, label_smoothing)`` of a loss given as a name, function or
    object."""
    if isinstance(loss, Loss):
        return loss._name, loss.from_logits, loss.label_smoothing
    if isinstance(loss, str):
        name = _NAMES.get(loss.lower())
        if name is None:
            raise NotImplementedError(f"strata has no loss {loss!r} (it has: {', '.join(sorted(set(_NAMES)))})")
        return name, False, 0.0
    keras_name = getattr(loss, "_keras_name", None)
    if keras_name is not None:
        return keras_name, False, 0.0
    if callable(loss):
        raise NotImplementedError(f"custom loss functions ({getattr(loss, '__name__', loss)!r}): strata computes "
                                  "its losses in Rust; use one of " + ", ".join(sorted(set(_NAMES.values()))))
    raise TypeError(f"Could not interpret loss identifier: {loss!r}")


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no loss keras.losses.{name}")
