"""``keras.metrics``: the metrics strata computes during fit and evaluate (accuracies)."""

_NAMES = {"accuracy", "acc", "binary_accuracy", "categorical_accuracy", "sparse_categorical_accuracy"}


class Metric:
    _name = None

    def __init__(self, name=None, dtype=None, **kwargs):
        if kwargs:
            raise NotImplementedError(f"{type(self).__name__}: {', '.join(kwargs)}")
        self.name = name or self._name

    def __call__(self, *args, **kwargs):
        raise NotImplementedError("computing a metric in Python: strata computes it during fit and evaluate")


class Accuracy(Metric):
    _name = "accuracy"


class BinaryAccuracy(Metric):
    _name = "binary_accuracy"

    def __init__(self, name=None, dtype=None, threshold=0.5):
        if threshold != 0.5:
            raise NotImplementedError("BinaryAccuracy: threshold other than 0.5")
        super().__init__(name, dtype)


class CategoricalAccuracy(Metric):
    _name = "categorical_accuracy"


class SparseCategoricalAccuracy(Metric):
    _name = "sparse_categorical_accuracy"


def resolve(metric):
    """``(strata's name, the name Keras shows)`` of a metric given as a name or object."""
    if isinstance(metric, Metric):
        if isinstance(metric, Accuracy):
            # Keras's Accuracy() compares values exactly; strata's "accuracy" follows the loss.
            raise NotImplementedError("keras.metrics.Accuracy() (exact equality); use metrics=['accuracy']")
        return metric._name, metric.name
    if isinstance(metric, str):
        if metric.lower() not in _NAMES:
            raise NotImplementedError(
                f"strata has no metric {metric!r} (it computes: {', '.join(sorted(_NAMES))})")
        return metric.lower(), metric
    raise NotImplementedError(f"metric {metric!r}: strata computes accuracy metrics only")


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no metric keras.metrics.{name}")
