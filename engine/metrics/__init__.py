"""Metrics (keras.metrics): stateful accumulators reported per epoch.

Each metric keeps its state in engine Variables (`metric.variables`), accepts tensors, arrays or
Python numbers in `update_state`, and returns an engine Tensor from `result()`.
"""
import inspect

from engine import losses as _losses
from engine.utils.naming import to_snake_case
from engine.metrics.base import Metric, Sum, Mean, MeanMetricWrapper
from engine.metrics.accuracy import (Accuracy, BinaryAccuracy, CategoricalAccuracy, SparseCategoricalAccuracy,
                                     TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, accuracy,
                                     binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                                     top_k_categorical_accuracy, sparse_top_k_categorical_accuracy)
from engine.metrics.regression import (MeanSquaredError, MeanAbsoluteError, MeanAbsolutePercentageError,
                                       MeanSquaredLogarithmicError, LogCoshError, CosineSimilarity,
                                       RootMeanSquaredError, R2Score)
from engine.metrics.probabilistic import (BinaryCrossentropy, CategoricalCrossentropy, SparseCategoricalCrossentropy,
                                          KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge)
from engine.metrics.correlation import (PearsonCorrelation, ConcordanceCorrelation, pearson_correlation,
                                        concordance_correlation)
from engine.metrics.confusion import (TruePositives, FalsePositives, TrueNegatives, FalseNegatives, Precision,
                                      Recall, AUC, SensitivityAtSpecificity, SpecificityAtSensitivity,
                                      PrecisionAtRecall, RecallAtPrecision)
from engine.metrics.fscore import FBetaScore, F1Score
from engine.metrics.iou import IoU, BinaryIoU, MeanIoU, OneHotIoU, OneHotMeanIoU
# Keras's metrics namespace re-exports the loss functions.
from engine.losses import (mean_squared_error, mean_absolute_error, mean_absolute_percentage_error,
                           mean_squared_logarithmic_error, binary_crossentropy, categorical_crossentropy,
                           sparse_categorical_crossentropy, binary_focal_crossentropy,
                           categorical_focal_crossentropy, kl_divergence, poisson, hinge, squared_hinge,
                           categorical_hinge, huber, log_cosh)

_CLASSES = [Metric, Sum, Mean, MeanMetricWrapper, Accuracy, BinaryAccuracy, CategoricalAccuracy,
            SparseCategoricalAccuracy, TopKCategoricalAccuracy, SparseTopKCategoricalAccuracy, MeanSquaredError,
            MeanAbsoluteError, MeanAbsolutePercentageError, MeanSquaredLogarithmicError, LogCoshError,
            CosineSimilarity, RootMeanSquaredError, R2Score, BinaryCrossentropy, CategoricalCrossentropy,
            SparseCategoricalCrossentropy, KLDivergence, Poisson, Hinge, SquaredHinge, CategoricalHinge,
            PearsonCorrelation, ConcordanceCorrelation, TruePositives, FalsePositives, TrueNegatives,
            FalseNegatives, Precision, Recall, AUC, SensitivityAtSpecificity, SpecificityAtSensitivity,
            PrecisionAtRecall, RecallAtPrecision, FBetaScore, F1Score, IoU, BinaryIoU, MeanIoU, OneHotIoU,
            OneHotMeanIoU]

# The metric functions, by the names Keras's configs use for them.
_FUNCTIONS = {fn.__name__: fn for fn in (
    accuracy, binary_accuracy, categorical_accuracy, sparse_categorical_accuracy, top_k_categorical_accuracy,
    sparse_top_k_categorical_accuracy, pearson_correlation, concordance_correlation)}
_LOSS_FUNCTIONS = {fn.__name__: fn for fn in _losses._FUNCTION_LIST}


# Names `get` accepts: class names, their snake_case forms and Keras's short aliases.
ALL_OBJECTS_DICT = {cls.__name__: cls for cls in _CLASSES}
ALL_OBJECTS_DICT.update({to_snake_case(cls.__name__): cls for cls in _CLASSES})
ALL_OBJECTS_DICT.update({"bce": BinaryCrossentropy, "BCE": BinaryCrossentropy, "mse": MeanSquaredError,
                         "MSE": MeanSquaredError, "mae": MeanAbsoluteError, "MAE": MeanAbsoluteError,
                         "mape": MeanAbsolutePercentageError, "MAPE": MeanAbsolutePercentageError,
                         "msle": MeanSquaredLogarithmicError, "MSLE": MeanSquaredLogarithmicError})


def function_name(fn):
    """The name a built-in metric or loss function is written under in a config (None otherwise)."""
    name = getattr(fn, "__name__", None)
    if _FUNCTIONS.get(name) is fn or _LOSS_FUNCTIONS.get(name) is fn:
        return name
    return None


def function_by_name(name):
    """A built-in metric or loss function from the name `function_name` gives it (None if unknown)."""
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
        obj = ALL_OBJECTS_DICT.get(config) or function_by_name(config)
        if obj is None:
            raise ValueError(f"Unknown metric {config!r}. Known: {', '.join(sorted(ALL_OBJECTS_DICT))}")
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
        cls = ALL_OBJECTS_DICT.get(identifier) or ALL_OBJECTS_DICT.get(identifier.lower())
        if cls is not None and cls not in (Metric, MeanMetricWrapper):
            metric = cls()
            metric.name = display_name or identifier
            return metric
        fn = function_by_name(identifier)
        if fn is None:
            raise ValueError(f"Unknown metric {identifier!r}. Known: acc, accuracy, "
                             f"{', '.join(sorted(set(ALL_OBJECTS_DICT) | set(_FUNCTIONS) | set(_LOSS_FUNCTIONS)))}")
        return MeanMetricWrapper(fn, name=display_name or identifier)
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=display_name)
    raise ValueError(f"Could not interpret metric identifier {identifier!r}")
