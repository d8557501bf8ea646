"""``keras.optimizers``: SGD, Adam, AdamW, RMSprop, Adagrad with Keras's defaults; the learning
rate may be a number or a ``keras.optimizers.schedules`` schedule."""

from .._config import Serializable
from . import schedules


class Optimizer(Serializable):
    """An optimizer: its Keras config, and once compiled into a model, its learning rate live."""

    _defaults = {}

    def __init__(self, learning_rate=0.001, name=None, **kwargs):
        for key in ("global_clipnorm",):
            if kwargs.get(key) is not None:
                raise NotImplementedError(f"{type(self).__name__}: {key}")
        config = {"learning_rate": learning_rate}
        config.update({k: v for k, v in kwargs.items() if v is not None})
        self._config = config
        self._model = None

    @property
    def learning_rate(self):
        if self._model is not None and self._model._engine is not None:
            return self._model._engine.learning_rate()
        rate = self._config["learning_rate"]
        return rate if isinstance(rate, (int, float)) else rate

    @learning_rate.setter
    def learning_rate(self, value):
        value = float(value)
        if self._model is not None and self._model._engine is not None:
            self._model._engine.set_learning_rate(value)
        self._config["learning_rate"] = value

    # Keras 2's name.
    lr = learning_rate

    def get_config(self):
        config = dict(self._config)
        if not isinstance(config["learning_rate"], Serializable):
            config["learning_rate"] = float(config["learning_rate"])
        return config


class SGD(Optimizer):
    def __init__(self, learning_rate=0.01, momentum=0.0, nesterov=False, **kwargs):
        super().__init__(learning_rate, momentum=momentum, nesterov=nesterov, **kwargs)


class Adam(Optimizer):
    def __init__(self, learning_rate=0.001, beta_1=0.9, beta_2=0.999, epsilon=1e-7, amsgrad=False, **kwargs):
        super().__init__(learning_rate, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon, amsgrad=amsgrad, **kwargs)


class AdamW(Optimizer):
    def __init__(self, learning_rate=0.001, weight_decay=0.004, beta_1=0.9, beta_2=0.999, epsilon=1e-7,
                 amsgrad=False, **kwargs):
        super().__init__(learning_rate, weight_decay=weight_decay, beta_1=beta_1, beta_2=beta_2, epsilon=epsilon,
                         amsgrad=amsgrad, **kwargs)


class RMSprop(Optimizer):
    def __init__(self, learning_rate=0.001, rho=0.9, momentum=0.0, epsilon=1e-7, centered=False, **kwargs):
        super().__init__(learning_rate, rho=rho, momentum=momentum, epsilon=epsilon, centered=centered, **kwargs)


class Adagrad(Optimizer):
    def __init__(self, learning_rate=0.001, initial_accumulator_value=0.1, epsilon=1e-7, **kwargs):
        super().__init__(learning_rate, initial_accumulator_value=initial_accumulator_value, epsilon=epsilon,
                         **kwargs)


_BY_NAME = {"sgd": SGD, "adam": Adam, "adamw": AdamW, "rmsprop": RMSprop, "adagrad": Adagrad}


def get(identifier):
    """An optimizer from a name (``"adam"``), a config dict, or an optimizer."""
    if isinstance(identifier, Optimizer):
        return identifier
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise NotImplementedError(f"strata has no optimizer {identifier!r} (it has: {', '.join(_BY_NAME)})")
        return cls()
    if isinstance(identifier, dict) and "class_name" in identifier:
        cls = _BY_NAME.get(identifier["class_name"].lower())
        if cls is None:
            raise NotImplementedError(f"strata has no optimizer {identifier['class_name']!r}")
        config = dict(identifier.get("config", {}))
        config.pop("name", None)
        rate = config.get("learning_rate")
        if isinstance(rate, dict):
            config["learning_rate"] = schedules.deserialize(rate)
        optimizer = cls.__new__(cls)
        Optimizer.__init__(optimizer, **config)
        return optimizer
    raise TypeError(f"Could not interpret optimizer identifier: {identifier!r}")


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    if name[:1].isupper():
        raise NotImplementedError(f"strata has no optimizer keras.optimizers.{name}")
    raise AttributeError(name)
