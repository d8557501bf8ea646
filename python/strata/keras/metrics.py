"""``keras.metrics``: the metrics strata computes during fit and evaluate (accuracies, regression errors,
top-k accuracy, precision, recall, AUC)."""

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


class MeanAbsoluteError(Metric):
    _name = "mean_absolute_error"


class MeanSquaredError(Metric):
    _name = "mean_squared_error"


class RootMeanSquaredError(Metric):
    _name = "root_mean_squared_error"


class MeanAbsolutePercentageError(Metric):
    _name = "mean_absolute_percentage_error"


class TopKCategoricalAccuracy(Metric):
    _name = "top_k_categorical_accuracy"

    def __init__(self, k=5, name=None, dtype=None):
        if k != 5:
            raise NotImplementedError(f"{type(self).__name__}: k other than 5")
        super().__init__(name, dtype)


class SparseTopKCategoricalAccuracy(TopKCategoricalAccuracy):
    _name = "sparse_top_k_categorical_accuracy"


class Precision(Metric):
    _name = "precision"

    def __init__(self, thresholds=None, top_k=None, class_id=None, name=None, dtype=None):
        if thresholds not in (None, 0.5) or top_k is not None or class_id is not None:
            raise NotImplementedError(f"{type(self).__name__}: thresholds, top_k or class_id")
        super().__init__(name, dtype)


class Recall(Precision):
    _name = "recall"


class AUC(Metric):
    _name = "auc"

    def __init__(self, num_thresholds=200, curve="ROC", summation_method="interpolation", name=None, dtype=None,
                 thresholds=None, multi_label=False, num_labels=None, label_weights=None, from_logits=False):
        if (num_thresholds, curve, summation_method, thresholds, multi_label, label_weights, from_logits) != (
                200, "ROC", "interpolation", None, False, None, False):
            raise NotImplementedError("AUC: arguments other than Keras's defaults")
        super().__init__(name, dtype)


# Keras's class names given as strings (metrics=["AUC"]) log under the class's default name.
_CLASS_NAMES = {cls.__name__: cls._name for cls in [
    MeanAbsoluteError, MeanSquaredError, RootMeanSquaredError, MeanAbsolutePercentageError, TopKCategoricalAccuracy,
    SparseTopKCategoricalAccuracy, Precision, Recall, AUC]}
# Function names, logged under the name given.
_FUNCTIONS = {"mae", "mse", "mape", "mean_absolute_error", "mean_squared_error", "mean_absolute_percentage_error",
              "root_mean_squared_error", "top_k_categorical_accuracy", "sparse_top_k_categorical_accuracy",
              "precision", "recall", "auc"}


def logged_key(name):
    """The key strata logs a metric resolved to ``name`` under (every accuracy as ``accuracy``)."""
    return "accuracy" if name in _NAMES else name


# The accuracy Keras's "accuracy" is for each crossentropy loss.
_ACCURACY_OF_LOSS = {"binary_crossentropy": "binary_accuracy", "categorical_crossentropy": "categorical_accuracy",
                     "sparse_categorical_crossentropy": "sparse_categorical_accuracy"}


def check_accuracies(names, loss):
    """strata computes one accuracy per output: several accuracies requested together must be
    the same one (``"accuracy"`` is the loss's), else ``NotImplementedError``."""
    kinds = {name for name in names if name in _NAMES and name not in ("accuracy", "acc")}
    generic = any(name in ("accuracy", "acc") for name in names)
    if generic and kinds and isinstance(loss, str):
        kinds.add(_ACCURACY_OF_LOSS.get(loss, f"the accuracy Keras picks for {loss}"))
    elif generic and kinds:
        kinds.add("the accuracy Keras picks for each output")
    if len(kinds) > 1:
        raise NotImplementedError(
            f"compile: metrics {', '.join(sorted(kinds))} together (strata computes one accuracy per output)")


def resolve(metric):
    """``(strata's name, the name Keras shows)`` of a metric given as a name or object."""
    if isinstance(metric, Metric):
        if isinstance(metric, Accuracy):
            # Keras's Accuracy() compares values exactly; strata's "accuracy" follows the loss.
            raise NotImplementedError("keras.metrics.Accuracy() (exact equality); use metrics=['accuracy']")
        return metric._name, metric.name
    if isinstance(metric, str):
        if metric in _CLASS_NAMES:
            return _CLASS_NAMES[metric], _CLASS_NAMES[metric]
        if metric in _FUNCTIONS:
            return metric, metric
        if metric.lower() not in _NAMES:
            known = sorted(_NAMES | _FUNCTIONS | set(_CLASS_NAMES))
            raise NotImplementedError(f"strata has no metric {metric!r} (it computes: {', '.join(known)})")
        return metric.lower(), metric
    raise NotImplementedError(f"metric {metric!r}: give a name or one of strata.keras.metrics' classes")


def __getattr__(name):
    if name.startswith("_"):
        raise AttributeError(name)
    raise NotImplementedError(f"strata has no metric keras.metrics.{name}")
