"""Metrics (keras.metrics): stateful accumulators reported per epoch.

Each metric keeps its state in engine Variables (`metric.variables`), accepts tensors, arrays or
Python numbers in `update_state`, and returns an engine Tensor from `result()`.
"""
import inspect

from engine._lazy import lazy_attributes, lazy_table
from engine.saving.registry import register_lazy
from engine import losses as _losses
from engine.utils.naming import to_snake_case
from engine.metrics.base import Metric, Sum, Mean, MeanMetricWrapper
from engine.metrics.accuracy import (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                     TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, accuracy,
                                     binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                                     top_k_categorical_accuracy, sparse_top_k_categorical_accuracy)
# Keras's metrics namespace re-exports the loss functions.
from engine.losses import (mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
                           mean_squared_logarithmic_error, binary_crossentropy, categorical_crossentropy,
                           sparse_categorical_crossentropy, binary_focal_crossentropy,
                           categorical_focal_crossentropy, kl_divergence, poisson, hinge, squared_hinge,
                           categorical_hinge, huber, log_cosh)

# The other families load on first use (a model compiled with "acc" never compiles the
# confusion-matrix metrics); they register for configs as lazy entries.
_LAZY = lazy_table(__name__, {
    "engine.metrics.regression": ("MeanSquaredError MeanAbsoluteError MeanAbsolutePercentageError "
                                  "MeanSquaredLogarithmicError LogCoshError CosineSimilarity RootMeanSquaredError "
                                  "R2Score"),
    "engine.metrics.probabilistic": ("BinaryCrossentropy CategoricalCrossentropy SparseCategoricalCrossentropy "
                                     "KLDivergence Poisson Hinge SquaredHinge CategoricalHinge"),
    "engine.metrics.correlation": "PearsonCorrelation ConcordanceCorrelation pearson_correlation concordance_correlation",
    "engine.metrics.confusion": ("TruePositives FalsePositives TrueNegatives FalseNegatives Precision Recall AUC "
                                 "SensitivityAtSpecificity SpecificityAtSensitivity PrecisionAtRecall "
                                 "RecallAtPrecision"),
    "engine.metrics.fscore": "FBetaScore F1Score",
    "engine.metrics.iou": "IoU BinaryIoU MeanIoU OneHotIoU OneHotMeanIoU",
    "": "confusion correlation fscore iou probabilistic regression",
})
__getattr__, __dir__ = lazy_attributes(globals(), _LAZY)
register_lazy("metrics", {name: target for name, target in _LAZY.items() if name[:1].isupper()})

_EAGER_CLASSES = [Metric, Sum, Mean, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy,
                  SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy]
_CLASS_NAMES = [cls.__name__ for cls in _EAGER_CLASSES] + [n for n in _LAZY if n[:1].isupper()]

# The metric functions, by the names Keras's configs use for them.
_FUNCTIONS = {fn.__name__: fn for fn in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
    sparse_top_k_categorical_accuracy)}
_LAZY_FUNCTIONS = ("pearson_correlation", "concordance_correlation")
_LOSS_FUNCTIONS = {fn.__name__: fn for fn in _losses._FUNCTION_LIST}

# Names `get` accepts: class names, their snake_case forms and Keras's short aliases (each to the
# class's name, looked up in this module when asked for, so lazy families load only then).
_NAMES = {name: name for name in _CLASS_NAMES}
_NAMES.update({to_snake_case(name): name for name in _CLASS_NAMES})
_NAMES.update({"bce": "BinaryCrossentropy", "BCE": "BinaryCrossentropy", "mse": "MeanSquaredError",
               "MSE": "MeanSquaredError", "mae": "MeanAbsoluteError", "MAE": "MeanAbsoluteError",
               "mape": "MeanAbsolutePercentageError", "MAPE": "MeanAbsolutePercentageError",
               "msle": "MeanSquaredLogarithmicError", "MSLE": "MeanSquaredLogarithmicError"})


def _class_named(name):
    """The metric class a name, snake_case name or alias stands for (None if none)."""
    public = _NAMES.get(name)
    return globals().get(public) or __getattr__(public) if public else None


def function_name(fn):
    """The name a built-in metric or loss function is written under in a config (None otherwise)."""
    name = getattr(fn, "__name__", None)
    if name is not None and function_by_name(name) is fn:
        return name
    return None


def function_by_name(name):
    """A built-in metric or loss function from the name `function_name` gives it (None if unknown)."""
    if name in _LAZY_FUNCTIONS:
        return __getattr__(name) if name not in globals() else globals()[name]
    return _FUNCTIONS.get(name) or _LOSS_FUNCTIONS.get(name)


def resolve_accuracy(loss_name, y_true_shape, y_pred_shape):
    """Which accuracy "acc"/"accuracy" means for this output, decided as Keras does.

    Args:
        loss_name: the output's loss name ("" if none).
        y_true_shape: the targets' shape.
        y_pred_shape: the predictions' shape.

    Returns:
        binary_accuracy, sparse_categorical_accuracy or categorical_accuracy.
    """
    if loss_name and "sparse_categorical" in loss_name:
        return sparse_categorical_accuracy
    if loss_name and "binary" in loss_name:
        return binary_accuracy
    if y_pred_shape[-1] == 1:
        return binary_accuracy
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1):
        return sparse_categorical_accuracy
    return categorical_accuracy


def serialize(metric):
    """A metric (or metric function) as Keras 3's config dictionary.

    Args:
        metric: a Metric instance or a metric function.
    """
    from engine.saving.serialization import serialize_keras_object
    return serialize_keras_object(metric)


def deserialize(config, custom_objects=None):
    """A metric from its config dictionary or name.

    Args:
        config: a config dictionary (from `serialize`) or a metric name.
        custom_objects: optional {name: class or function} for custom metrics.
    """
    from engine.saving.serialization import deserialize_keras_object
    if isinstance(config, str):
        if custom_objects and config in custom_objects:
            return custom_objects[config]
        obj = _class_named(config) or function_by_name(config)
        if obj is None:
            raise ValueError(f"Unknown metric {config!r}. Known: {', '.join(sorted(_NAMES))}")
        return obj
    return deserialize_keras_object(config, custom_objects=custom_objects)


def get(identifier, display_name=None):
    """A Metric from a name, a config dictionary, a Metric, a Metric class or a function.

    Unlike Keras's `get`, a metric function comes back wrapped in a `MeanMetricWrapper` (a metric
    the training loop can update and reset); a name gives a metric named by that name, as
    Keras's compile names it.

    Args:
        identifier: a name ("mse", "auc", "Precision", "top_k_categorical_accuracy", ...), a
            config dictionary, a Metric instance or class, or a function fn(y_true, y_pred).
        display_name: the name to give the metric (default: the identifier string, or the
            function's name).

    Returns:
        A Metric instance (None for None).
    """
    if identifier is None:
        return None
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, dict):
        identifier = deserialize(identifier)
        if isinstance(identifier, Metric):
            return identifier
    if inspect.isclass(identifier) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        cls = _class_named(identifier) or _class_named(identifier.lower())
        if cls is not None and cls not in (Metric, MeanMetricWrapper):
            metric = cls()
            metric.name = display_name or identifier
            return metric
        fn = function_by_name(identifier)
        if fn is None:
            raise ValueError(f"Unknown metric {identifier!r}. Known: acc, accuracy, "
                             f"{', '.join(sorted(set(_NAMES) | set(_FUNCTIONS) | set(_LAZY_FUNCTIONS) | set(_LOSS_FUNCTIONS)))}")
        return MeanMetricWrapper(fn, name=display_name or identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=display_name)
    raise ValueError(f"Could not interpret metric identifier {identifier!r}")
