"""``keras.initializers``: the weight initializers, by class (strata draws the values)."""

from ._config import Serializable


class Initializer(Serializable):
    def __init__(self, **config):
        self._config = config

    def __call__(self, shape, dtype=None):
        raise NotImplementedError("drawing initial values in Python: strata draws them when it builds the model")


def _initializer(class_name, **defaults):
    names = list(defaults)

    def __init__(self, *args, **kwargs):
        config = dict(defaults)
        config.update(dict(zip(names, args)))
        config.update(kwargs)
        Initializer.__init__(self, **config)

    return type(class_name, (Initializer,), {"__init__": __init__, "__module__": __name__})


GlorotUniform = _initializer("GlorotUniform", seed=None)
GlorotNormal = _initializer("GlorotNormal", seed=None)
HeUniform = _initializer("HeUniform", seed=None)
HeNormal = _initializer("HeNormal", seed=None)
LecunUniform = _initializer("LecunUniform", seed=None)
LecunNormal = _initializer("LecunNormal", seed=None)
Orthogonal = _initializer("Orthogonal", gain=1.0, seed=None)
RandomNormal = _initializer("RandomNormal", mean=0.0, stddev=0.05, seed=None)
RandomUniform = _initializer("RandomUniform", minval=-0.05, maxval=0.05, seed=None)
TruncatedNormal = _initializer("TruncatedNormal", mean=0.0, stddev=0.05, seed=None)
VarianceScaling = _initializer("VarianceScaling", scale=1.0, mode="fan_in", distribution="truncated_normal",
                               seed=None)
Zeros = _initializer("Zeros")
Ones = _initializer("Ones")
Constant = _initializer("Constant", value=0.0)
Identity = _initializer("Identity", gain=1.0)

glorot_uniform, glorot_normal, he_uniform, he_normal = GlorotUniform, GlorotNormal, HeUniform, HeNormal
lecun_uniform, lecun_normal, zeros, ones, constant = LecunUniform, LecunNormal, Zeros, Ones, Constant
random_normal, random_uniform, truncated_normal, orthogonal = RandomNormal, RandomUniform, TruncatedNormal, Orthogonal


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no initializer keras.initializers.{name}")
