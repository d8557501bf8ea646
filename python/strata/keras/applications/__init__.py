"""``keras.applications``: the pre-trained image architectures, built by strata in Rust with
Keras's layer names and arguments (``MobileNetV2(input_shape=(96, 96, 3), include_top=False,
weights=None)``), and each family's module with its ``preprocess_input`` and
``decode_predictions`` (``keras.applications.mobilenet_v2.preprocess_input``).

``weights="imagenet"`` (Keras's default) reads the file Keras keeps under ``~/.keras/models/``
(``$KERAS_HOME/models/``): strata downloads nothing, and a missing file is an error naming it.
``weights`` may also be the path of a weights file (Keras's ``.h5``, a ``.keras`` archive of the
same architecture, a strata ``.safetensors`` file); ``weights=None`` gives random weights.
``input_tensor`` is not supported: call the model on a tensor instead
(``x = base(inputs, training=False)``)."""

import json
import sys
import types

import numpy as np

from ... import _strata
from ..layers import KerasTensor
from ..models import _Loaded

# Keras's positional order of each family's builder arguments (the rest take Keras's common
# order: include_top, weights, input_tensor, input_shape, pooling, classes, ...).
_COMMON = ("include_top", "weights", "input_tensor", "input_shape", "pooling", "classes", "classifier_activation",
           "include_preprocessing")
_POSITIONAL = {
    "mobilenet": ("input_shape", "alpha", "depth_multiplier", "dropout", "include_top", "weights", "input_tensor",
                  "pooling", "classes", "classifier_activation"),
    "mobilenet_v2": ("input_shape", "alpha", "include_top", "weights", "input_tensor", "pooling", "classes",
                     "classifier_activation"),
    "mobilenet_v3": ("input_shape", "alpha", "minimalistic", "include_top", "weights", "input_tensor", "classes",
                     "pooling", "dropout_rate", "classifier_activation", "include_preprocessing"),
    "nasnet": ("input_shape", "include_top", "weights", "input_tensor", "pooling", "classes",
               "classifier_activation"),
}

# The ImageNet statistics of Keras's preprocessing modes.
_CAFFE_BGR_MEAN = np.array([103.939, 116.779, 123.68], dtype="float32")
_TORCH_MEAN = np.array([0.485, 0.456, 0.406], dtype="float32")
_TORCH_STD = np.array([0.229, 0.224, 0.225], dtype="float32")


def _module_of(name):
    """Keras's module of the application strata calls `name` (``resnet101`` -> ``resnet``)."""
    if name.startswith("resnet") and name.endswith("_v2"):
        return "resnet_v2"
    if name in ("resnet101", "resnet152"):
        return "resnet"
    for family in ("mobilenet_v3", "densenet", "efficientnet_v2", "efficientnet", "nasnet"):
        if name.startswith(family):
            return family
    return name


def _preprocess_symbolic(x, mode):
    """``preprocess_input`` on a symbolic tensor (``x = preprocess_input(inputs)`` in a functional
    model, as TensorFlow's transfer-learning tutorial writes it): the layers that compute it."""
    from .. import layers

    if mode == "tf":
        return layers.Rescaling(1 / 127.5, offset=-1.0)(x)
    if mode == "torch":
        scaled = layers.Rescaling(1 / 255.0)(x)
        return layers.Normalization(mean=_TORCH_MEAN.tolist(), variance=(_TORCH_STD ** 2).tolist())(scaled)
    if mode == "unit":
        return layers.Rescaling(1 / 255.0)(x)
    if mode == "caffe":
        raise NotImplementedError(
            "preprocess_input (caffe mode: RGB to BGR) on a symbolic tensor is not supported by strata: "
            "prepare the arrays with preprocess_input before fit and predict")
    return x


def _preprocess(x, mode, data_format=None):
    """Keras's ``imagenet_utils.preprocess_input`` of channels-last images of 0-255 pixels."""
    if data_format not in (None, "channels_last"):
        raise NotImplementedError("preprocess_input: strata's images are channels_last")
    if isinstance(x, KerasTensor):
        return _preprocess_symbolic(x, mode)
    x = np.asarray(x, dtype="float32")
    if mode == "tf":
        return x / 127.5 - 1.0
    if mode == "torch":
        return (x / 255.0 - _TORCH_MEAN) / _TORCH_STD
    if mode == "caffe":
        return x[..., ::-1] - _CAFFE_BGR_MEAN
    if mode == "unit":
        return x / 255.0
    return x


def preprocess_input(x, data_format=None, mode="caffe"):
    """Keras's ``imagenet_utils.preprocess_input(x, mode=...)``: "caffe", "tf" or "torch"."""
    if mode not in ("caffe", "tf", "torch"):
        raise ValueError(f"preprocess_input: mode must be caffe, tf or torch, not {mode!r}")
    return _preprocess(x, mode, data_format)


def decode_predictions(preds, top=5):
    """Keras's ``decode_predictions``: per sample, ``(wnid, name, score)`` of the ``top`` most
    probable ImageNet classes, most probable first."""
    preds = np.asarray(preds, dtype="float32")
    if preds.ndim != 2:
        raise ValueError(f"decode_predictions expects a batch of predictions of shape (samples, 1000), got {preds.shape}")
    return [[tuple(item) for item in sample] for sample in _strata.decode_predictions(preds.tolist(), int(top))]


def _builder(name, keras_name, family):
    order = _POSITIONAL.get(family, _COMMON)

    def build(*args, **kwargs):
        if len(args) > len(order):
            raise TypeError(f"{keras_name} takes at most {len(order)} positional arguments")
        for key, value in zip(order, args):
            if key in kwargs:
                raise TypeError(f"{keras_name} got multiple values for argument '{key}'")
            kwargs[key] = value
        model_name = kwargs.pop("name", None)
        if kwargs.pop("input_tensor", None) is not None:
            raise NotImplementedError(
                f"{keras_name}: input_tensor is not supported by strata; call the model on the tensor instead "
                "(x = base(inputs, training=False))")
        if "dropout_rate" in kwargs:
            kwargs["dropout"] = kwargs.pop("dropout_rate")
        weights = kwargs.pop("weights", "imagenet")
        arguments = {"name": name}
        if weights is not None:
            arguments["weights"] = str(weights)
        shape = kwargs.pop("input_shape", None)
        if shape is not None:
            if len(shape) != 3 or any(d is None for d in shape):
                raise NotImplementedError(
                    f"{keras_name}: input_shape {tuple(shape)}: strata builds for one (height, width, channels) size")
            arguments["input_shape"] = [int(d) for d in shape]
        if "classifier_activation" in kwargs:
            activation = kwargs.pop("classifier_activation")
            arguments["classifier_activation"] = getattr(activation, "__name__", activation)
        for key, value in kwargs.items():
            arguments[key] = value.item() if isinstance(value, np.generic) else value
        return _Loaded(_strata.Engine.application(json.dumps(arguments), model_name))

    build.__name__ = build.__qualname__ = keras_name
    build.__doc__ = (f"Keras's ``keras.applications.{keras_name}``, built by strata (weights: \"imagenet\" "
                     "from Keras's cache, a file path, or None).")
    return build


def _families():
    """The builders, and the family modules (``mobilenet_v2``: its builders, ``preprocess_input``,
    ``decode_predictions``)."""
    modules = {}
    for name, keras_name, mode in _strata.applications():
        family = _module_of(name)
        build = _builder(name, keras_name, family)
        globals()[keras_name] = build
        for module_name in {family, "resnet"} if name == "resnet50" else {family}:
            module = modules.get(module_name)
            if module is None:
                module = types.ModuleType(f"{__name__}.{module_name}")
                module.decode_predictions = decode_predictions
                module.preprocess_input = (
                    lambda x, data_format=None, _mode=mode: _preprocess(x, _mode, data_format))
                modules[module_name] = module
                sys.modules[module.__name__] = module
                globals()[module_name] = module
            setattr(module, keras_name, build)
    utils = types.ModuleType(f"{__name__}.imagenet_utils")
    utils.preprocess_input = preprocess_input
    utils.decode_predictions = decode_predictions
    sys.modules[utils.__name__] = utils
    globals()["imagenet_utils"] = utils


_families()


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    available = ", ".join(keras_name for _, keras_name, _ in _strata.applications())
    raise NotImplementedError(f"strata has no keras.applications.{name}; it has {available}")
