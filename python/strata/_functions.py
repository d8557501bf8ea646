"""The activation and loss functions, computed in NumPy for code that calls them directly
(``tf.nn.softmax(logits)``, ``loss_fn(y_true, y_pred)``). Inside a model strata computes them in
Rust; these follow the same definitions and Keras's constants (epsilon 1e-7, Keras 3's
``hard_sigmoid``, ``leaky_relu`` slope 0.2)."""

import math

import numpy as np

from .tensor import as_tensor

EPSILON = 1e-7


def _array(x):
    array = np.asarray(x)
    return array.astype(np.float32) if array.dtype.kind in "iub" else array


def softmax(x, axis=-1):
    x = _array(x)
    shifted = np.exp(x - np.max(x, axis=axis, keepdims=True))
    return as_tensor(shifted / np.sum(shifted, axis=axis, keepdims=True))


def log_softmax(x, axis=-1):
    x = _array(x)
    shifted = x - np.max(x, axis=axis, keepdims=True)
    return as_tensor(shifted - np.log(np.sum(np.exp(shifted), axis=axis, keepdims=True)))


def sigmoid(x):
    x = _array(x)
    return as_tensor(np.where(x >= 0, 1 / (1 + np.exp(-np.abs(x))), np.exp(-np.abs(x)) / (1 + np.exp(-np.abs(x)))))


def relu(x, negative_slope=0.0, max_value=None, threshold=0.0):
    x = _array(x)
    out = np.where(x >= threshold, x, negative_slope * (x - threshold))
    return as_tensor(out if max_value is None else np.minimum(out, max_value))


def _erf(x):
    return np.vectorize(math.erf, otypes=[np.float64])(x)


ACTIVATIONS = {
    "linear": lambda x: as_tensor(_array(x)),
    "relu": relu,
    "relu6": lambda x: relu(x, max_value=6.0),
    "leaky_relu": lambda x, negative_slope=0.2: relu(x, negative_slope=negative_slope),
    "sigmoid": sigmoid,
    "tanh": lambda x: as_tensor(np.tanh(_array(x))),
    "softmax": softmax,
    "log_softmax": log_softmax,
    "elu": lambda x, alpha=1.0: as_tensor(np.where(_array(x) > 0, _array(x), alpha * np.expm1(np.minimum(_array(x), 0)))),
    "selu": lambda x: as_tensor(1.0507009873554805 * np.where(
        _array(x) > 0, _array(x), 1.6732632423543772 * np.expm1(np.minimum(_array(x), 0)))),
    "softplus": lambda x: as_tensor(np.logaddexp(0, _array(x))),
    "softsign": lambda x: as_tensor(_array(x) / (1 + np.abs(_array(x)))),
    "silu": lambda x: as_tensor(_array(x) * sigmoid(x)),
    "swish": lambda x: as_tensor(_array(x) * sigmoid(x)),
    "gelu": lambda x: as_tensor((0.5 * _array(x) * (1 + _erf(_array(x) / math.sqrt(2)))).astype(_array(x).dtype)),
    "exponential": lambda x: as_tensor(np.exp(_array(x))),
    "hard_sigmoid": lambda x: as_tensor(np.clip(_array(x) + 3, 0, 6) / 6),
    "hard_silu": lambda x: as_tensor(_array(x) * np.clip(_array(x) + 3, 0, 6) / 6),
    "hard_swish": lambda x: as_tensor(_array(x) * np.clip(_array(x) + 3, 0, 6) / 6),
    "mish": lambda x: as_tensor(_array(x) * np.tanh(np.logaddexp(0, _array(x)))),
}

# A function of this package given as a layer's activation (``Dense(3, activation=tf.nn.relu)``)
# is written into the model by its name, which strata computes in Rust.
for _name, _function in ACTIVATIONS.items():
    if not hasattr(_function, "_keras_name"):
        _function._keras_name = _name
del _name, _function


def _pair(y_true, y_pred):
    y_pred = _array(y_pred)
    return np.asarray(y_true, dtype=y_pred.dtype), y_pred


def mean_squared_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return as_tensor(np.mean(np.square(y_pred - y_true.reshape(y_pred.shape)), axis=-1))


def mean_absolute_error(y_true, y_pred):
    y_true, y_pred = _pair(y_true, y_pred)
    return as_tensor(np.mean(np.abs(y_pred - y_true.reshape(y_pred.shape)), axis=-1))


def binary_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    y_true, y_pred = _pair(y_true, y_pred)
    y_true = y_true.reshape(y_pred.shape)
    if label_smoothing:
        y_true = y_true * (1.0 - label_smoothing) + 0.5 * label_smoothing
    if from_logits:
        # log(1 + e^x) - x·y, written to stay finite for large |x|.
        losses = np.maximum(y_pred, 0) - y_pred * y_true + np.log1p(np.exp(-np.abs(y_pred)))
    else:
        p = np.clip(y_pred, EPSILON, 1 - EPSILON)
        losses = -(y_true * np.log(p) + (1 - y_true) * np.log(1 - p))
    return as_tensor(np.mean(losses, axis=-1))


def categorical_crossentropy(y_true, y_pred, from_logits=False, label_smoothing=0.0):
    y_true, y_pred = _pair(y_true, y_pred)
    if label_smoothing:
        y_true = y_true.reshape(y_pred.shape)
        y_true = y_true * (1.0 - label_smoothing) + label_smoothing / y_pred.shape[-1]
    if from_logits:
        log_p = np.asarray(log_softmax(y_pred))
    else:
        p = y_pred / np.sum(y_pred, axis=-1, keepdims=True)
        log_p = np.log(np.clip(p, EPSILON, 1 - EPSILON))
    return as_tensor(-np.sum(y_true.reshape(y_pred.shape) * log_p, axis=-1))


def sparse_categorical_crossentropy(y_true, y_pred, from_logits=False):
    y_pred = _array(y_pred)
    labels = np.asarray(y_true).reshape(y_pred.shape[:-1]).astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= y_pred.shape[-1]):
        raise ValueError(f"sparse_categorical_crossentropy: labels must lie in [0, {y_pred.shape[-1]}), "
                         f"got {int(labels.min())}..{int(labels.max())}")
    one_hot = np.eye(y_pred.shape[-1], dtype=y_pred.dtype)[labels]
    return categorical_crossentropy(one_hot, y_pred, from_logits)


LOSSES = {
    "mean_squared_error": mean_squared_error,
    "mean_absolute_error": mean_absolute_error,
    "binary_crossentropy": binary_crossentropy,
    "categorical_crossentropy": categorical_crossentropy,
    "sparse_categorical_crossentropy": sparse_categorical_crossentropy,
}
