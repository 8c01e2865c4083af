"""Metrics (keras.metrics): stateful accumulators reported per epoch."""
import numpy as np


class Metric:
    def __init__(self, name=None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.reset_state()

    def reset_state(self):
        self._total = 0.0
        self._count = 0.0

    def update_state(self, y_true, y_pred, sample_weight=None):
        values = np.asarray(self.values(y_true, y_pred), dtype=np.float64)
        if sample_weight is not None:
            sw = np.broadcast_to(np.asarray(sample_weight, dtype=np.float64).reshape(
                np.shape(sample_weight) + (1,) * (values.ndim - np.ndim(sample_weight))), values.shape)
            self._total += float(np.sum(values * sw))
            self._count += float(np.sum(sw))
        else:
            self._total += float(np.sum(values))
            self._count += values.size

    def values(self, y_true, y_pred):
        raise NotImplementedError

    def result(self):
        return self._total / self._count if self._count else 0.0

    def get_config(self):
        return {"name": self.name}


class Mean(Metric):
    """The (weighted) mean of the values given to update_state."""

    def update_state(self, values, sample_weight=None):
        values = np.asarray(values, dtype=np.float64)
        weight = 1.0 if sample_weight is None else float(sample_weight)
        self._total += float(np.sum(values)) * weight
        self._count += values.size * weight


class MeanMetricWrapper(Metric):
    def __init__(self, fn, name=None, dtype=None):
        self.fn = fn
        super().__init__(name or fn.__name__)

    def values(self, y_true, y_pred):
        return self.fn(y_true, y_pred)


def _as(y):
    return np.asarray(y)


def categorical_accuracy(y_true, y_pred):
    return (np.argmax(_as(y_true), axis=-1) == np.argmax(_as(y_pred), axis=-1)).astype(np.float32)


def sparse_categorical_accuracy(y_true, y_pred):
    y_true, y_pred = _as(y_true), _as(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true[..., 0]
    return (y_true.astype(np.int64) == np.argmax(y_pred, axis=-1)).astype(np.float32)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    return np.mean((_as(y_true) > threshold) == (_as(y_pred) > threshold), axis=-1).astype(np.float32) \
        if _as(y_pred).ndim > 1 else ((_as(y_true) > threshold) == (_as(y_pred) > threshold)).astype(np.float32)


def mean_squared_error(y_true, y_pred):
    return np.mean(np.square(_as(y_pred) - _as(y_true)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return np.mean(np.abs(_as(y_pred) - _as(y_true)), axis=-1)


class Accuracy(MeanMetricWrapper):
    def __init__(self, name="accuracy", dtype=None):
        super().__init__(lambda t, p: (_as(t) == _as(p)).astype(np.float32), name)


class CategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name)


class SparseCategoricalAccuracy(MeanMetricWrapper):
    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name)


class BinaryAccuracy(MeanMetricWrapper):
    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(lambda t, p: binary_accuracy(t, p, threshold), name)


class MeanSquaredError(MeanMetricWrapper):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name)


class MeanAbsoluteError(MeanMetricWrapper):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name)


_BY_NAME = {
    "categorical_accuracy": CategoricalAccuracy, "sparse_categorical_accuracy": SparseCategoricalAccuracy,
    "binary_accuracy": BinaryAccuracy,
    "mse": MeanSquaredError, "mean_squared_error": MeanSquaredError,
    "mae": MeanAbsoluteError, "mean_absolute_error": MeanAbsoluteError,
}


def resolve_accuracy(loss_name, y_true_shape, y_pred_shape):
    """Which accuracy "acc"/"accuracy" means for this output, decided as Keras does."""
    if loss_name and "sparse_categorical" in loss_name:
        return sparse_categorical_accuracy
    if loss_name and "binary" in loss_name:
        return binary_accuracy
    if y_pred_shape[-1] == 1:
        return binary_accuracy
    if len(y_true_shape) < len(y_pred_shape) or (y_true_shape[-1] == 1 and y_pred_shape[-1] > 1):
        return sparse_categorical_accuracy
    return categorical_accuracy


def get(identifier, display_name=None):
    """A Metric from a name, a Metric, a Metric class or a function of (y_true, y_pred)."""
    if isinstance(identifier, Metric):
        return identifier
    if isinstance(identifier, type) and issubclass(identifier, Metric):
        return identifier()
    if isinstance(identifier, str):
        cls = _BY_NAME.get(identifier.lower())
        if cls is None:
            raise ValueError(f"Unknown metric {identifier!r}. Known: acc, accuracy, "
                             f"{', '.join(sorted(_BY_NAME))}")
        metric = cls()
        metric.name = display_name or identifier
        return metric
    if callable(identifier):
        return MeanMetricWrapper(identifier, name=display_name)
    raise ValueError(f"Could not interpret metric {identifier!r}")
