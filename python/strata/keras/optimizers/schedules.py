"""``keras.optimizers.schedules``: learning-rate schedules strata computes per step."""

from .._config import Serializable


class LearningRateSchedule(Serializable):
    def __init__(self, **config):
        self._config = config

    def __call__(self, step):
        raise NotImplementedError("evaluating a schedule in Python: strata computes it during fit")


class ExponentialDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        super().__init__(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps,
                         decay_rate=decay_rate, staircase=staircase)


class InverseTimeDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, decay_rate, staircase=False, name=None):
        super().__init__(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps,
                         decay_rate=decay_rate, staircase=staircase)


class PiecewiseConstantDecay(LearningRateSchedule):
    def __init__(self, boundaries, values, name=None):
        super().__init__(boundaries=list(boundaries), values=list(values))


class CosineDecay(LearningRateSchedule):
    def __init__(self, initial_learning_rate, decay_steps, alpha=0.0, name=None, warmup_target=None,
                 warmup_steps=0):
        config = dict(initial_learning_rate=initial_learning_rate, decay_steps=decay_steps, alpha=alpha)
        if warmup_target is not None:
            config.update(warmup_target=warmup_target, warmup_steps=warmup_steps)
        super().__init__(**config)


def deserialize(entry):
    cls = globals().get(entry.get("class_name"))
    if not (isinstance(cls, type) and issubclass(cls, LearningRateSchedule)):
        raise NotImplementedError(f"strata has no learning-rate schedule {entry.get('class_name')!r}")
    return cls(**{k: v for k, v in entry.get("config", {}).items() if k != "name"})


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    if name[:1].isupper():
        raise NotImplementedError(f"strata has no schedule keras.optimizers.schedules.{name}")
    raise AttributeError(name)
