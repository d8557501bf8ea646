"""``keras.regularizers``: L1, L2 and L1L2 weight penalties, added to the loss by strata."""

from ._config import Serializable


class Regularizer(Serializable):
    def __call__(self, x):
        raise NotImplementedError("computing a penalty in Python: strata adds it to the loss during fit")


class L1(Regularizer):
    def __init__(self, l1=0.01):
        self._config = {"l1": float(l1)}


class L2(Regularizer):
    def __init__(self, l2=0.01):
        self._config = {"l2": float(l2)}


class L1L2(Regularizer):
    def __init__(self, l1=0.0, l2=0.0):
        self._config = {"l1": float(l1), "l2": float(l2)}


def l1(l1=0.01):
    return L1(l1)


def l2(l2=0.01):
    return L2(l2)


def l1_l2(l1=0.01, l2=0.01):
    return L1L2(l1, l2)


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no regularizer keras.regularizers.{name}")
