"""Metrics (keras.metrics): stateful accumulators reported per epoch."""
import numpy as np

from engine import ops


def _dtype_name(dtype):
    from engine import config
    if dtype is None:
        return config.floatx()
    if isinstance(dtype, dict):  # a Keras dtype policy config
        return dtype.get("config", {}).get("name") or config.floatx()
    return np.dtype(dtype).name


class Metric:
    def __init__(self, name=None, dtype=None):
        self.name = name or type(self).__name__.lower()
        self.dtype = _dtype_name(dtype)
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
        """The metric's value as a scalar tensor (of the metric's dtype)."""
        return ops.convert_to_tensor(np.asarray(self._total / self._count if self._count else 0.0,
                                                dtype=self.dtype))

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        return cls(**config)


class Mean(Metric):
    """The (weighted) mean of the values given to update_state."""

    def update_state(self, values, sample_weight=None):
        values = np.asarray(values, dtype=np.float64)
        weight = 1.0 if sample_weight is None else float(sample_weight)
        self._total += float(np.sum(values)) * weight
        self._count += values.size * weight


class MeanMetricWrapper(Metric):
    """The mean of fn(y_true, y_pred, **kwargs) over every sample seen."""

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        self.fn = fn
        self._fn_kwargs = kwargs
        super().__init__(name or fn.__name__, dtype)

    def values(self, y_true, y_pred):
        return self.fn(y_true, y_pred, **self._fn_kwargs)

    def get_config(self):
        # As in Keras: the function and its keyword arguments. The named metrics below are rebuilt
        # from their own arguments instead.
        from engine.saving.serialization import serialize_keras_object
        config = super().get_config()
        name = getattr(self.fn, "__name__", None)
        if _FUNCTIONS.get(name) is self.fn:  # written as Keras writes its own metric functions
            config["fn"] = {"module": "builtins", "class_name": "function", "config": name,
                            "registered_name": "function"}
        else:
            config["fn"] = serialize_keras_object(self.fn)
        config.update(serialize_keras_object(self._fn_kwargs))
        return config

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        config = dict(config)
        fn = config.get("fn")
        if isinstance(fn, dict):
            name = fn.get("config")
            is_function = fn.get("class_name") == "function" or fn.get("registered_name") == "function"
            config["fn"] = _FUNCTIONS[name] if is_function and name in _FUNCTIONS else deserialize_keras_object(fn)
        return cls(**config)


class _NamedMeanMetric(MeanMetricWrapper):
    """A metric class with a fixed function: its config is its constructor's arguments."""

    def get_config(self):
        return Metric.get_config(self)


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
    # As Keras 3: only the prediction is thresholded; a soft label (0.3) matches nothing.
    hits = _as(y_true) == (_as(y_pred) > threshold)
    return np.mean(hits, axis=-1).astype(np.float32) if hits.ndim > 1 else hits.astype(np.float32)


def mean_squared_error(y_true, y_pred):
    return np.mean(np.square(_as(y_pred) - _as(y_true)), axis=-1)


def mean_absolute_error(y_true, y_pred):
    return np.mean(np.abs(_as(y_pred) - _as(y_true)), axis=-1)


def _accuracy(y_true, y_pred):
    return (_as(y_true) == _as(y_pred)).astype(np.float32)


class Accuracy(_NamedMeanMetric):
    def __init__(self, name="accuracy", dtype=None):
        super().__init__(_accuracy, name, dtype)


class CategoricalAccuracy(_NamedMeanMetric):
    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name, dtype)


class SparseCategoricalAccuracy(_NamedMeanMetric):
    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name, dtype)


class BinaryAccuracy(_NamedMeanMetric):
    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name, dtype, threshold=threshold)
        self.threshold = threshold

    def get_config(self):
        return {**super().get_config(), "threshold": self.threshold}


class MeanSquaredError(_NamedMeanMetric):
    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(mean_squared_error, name, dtype)


class MeanAbsoluteError(_NamedMeanMetric):
    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(mean_absolute_error, name, dtype)


# The metric functions Keras also has, by the names its configs use.
_FUNCTIONS = {fn.__name__: fn for fn in (binary_accuracy, categorical_accuracy, sparse_categorical_accuracy,
                                         mean_squared_error, mean_absolute_error)}

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
