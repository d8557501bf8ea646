"""``keras.datasets``: the Keras data sets strata reads (MNIST is bundled with strata's sources;
the others are read from strata's data folder, ``$STRATA_DATA`` or ``~/.strata/datasets``)."""

from . import boston_housing, cifar10, cifar100, fashion_mnist, imdb, mnist, reuters

__all__ = ["mnist", "fashion_mnist", "cifar10", "cifar100", "imdb", "reuters", "boston_housing"]


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no data set keras.datasets.{name}")
