"""The Metric base class and the reduction metrics (Sum, Mean, MeanMetricWrapper).

A metric's state lives in engine Variables (`metric.variables`, in creation order, as Keras
keeps them); `update_state` accepts tensors, arrays or Python numbers and accumulates with numpy
(metrics are never differentiated); `result()` returns an engine Tensor.
"""
import numpy as np

from engine import ops
from engine.losses.loss import dtype_name
from engine.ops._util import to_array
from engine.utils.naming import to_snake_case
from engine.variables import Variable
from engine.saving.registry import register_builtins


def as_array(x, dtype=None):
    """A tensor, Variable, array or Python number as a numpy array (of `dtype` if given)."""
    arr = to_array(x)
    return arr if dtype is None or arr.dtype == dtype else arr.astype(dtype)


def divide_no_nan(a, b):
    """a / b, with 0 where b is 0."""
    a, b = np.asarray(a), np.asarray(b)
    if a.ndim == 0 and b.ndim == 0:       # a metric's result every step: without np.where's cost
        dtype = np.result_type(a, b)
        return np.zeros((), dtype) if b == 0 else np.asarray(a / b, dtype)
    safe = np.where(b == 0, 1, b)
    return np.where(b == 0, np.zeros((), dtype=np.result_type(a, b)), a / safe)


def match_ranks(x1, x2, expand_rank_1=True):
    """numpy version of Keras's squeeze_or_expand_to_same_rank (see engine.losses.loss)."""
    r1, r2 = x1.ndim, x2.ndim
    if r1 == r2 + 1 and x1.shape[-1] == 1:
        if r2 == 1 and expand_rank_1:
            x2 = x2[..., None]
        else:
            x1 = x1.reshape(x1.shape[:-1])
    elif r2 == r1 + 1 and x2.shape[-1] == 1:
        if r1 == 1 and expand_rank_1:
            x1 = x1[..., None]
        else:
            x2 = x2.reshape(x2.shape[:-1])
    return x1, x2


class Metric:
    """Base class of metrics: state in Variables, `update_state` per batch, `result()` at any time.

    Subclasses create their state with `add_variable` in `__init__` (or on their first update) and
    define `update_state(...)` and `result()`.

    Args:
        dtype: the dtype of the state and result (default `engine.config.floatx()`).
        name: the metric's name (default: the class name in snake case).
    """

    def __init__(self, dtype=None, name=None):
        self.name = name or to_snake_case(type(self).__name__)
        self._dtype = dtype_name(dtype)
        self._variables = []
        self._metrics = []

    @property
    def dtype(self):
        """The dtype of the metric's state and result."""
        return self._dtype

    def add_variable(self, shape, initializer="zeros", dtype=None, aggregation="sum", name=None):
        """Create a state Variable (not trainable) and track it in `variables`.

        Args:
            shape: the variable's shape.
            initializer: an initializer or its name (default zeros).
            dtype: the variable's dtype (default: the metric's).
            aggregation: accepted for Keras compatibility; state is summed across batches.
            name: the variable's name.
        """
        from engine import initializers
        if not hasattr(self, "_variables"):
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before add_variable")
        init = initializers.get(initializer)
        variable = Variable(init, shape=tuple(shape), dtype=dtype or self.dtype, trainable=False, name=name)
        variable.path = f"{self.name}/{variable.name}"
        self._variables.append(variable)
        return variable

    def add_weight(self, shape=(), initializer=None, dtype=None, name=None):
        """Same as `add_variable` (Keras keeps both names)."""
        return self.add_variable(shape, initializer or "zeros", dtype=dtype, name=name)

    @property
    def variables(self):
        """The state Variables, this metric's first, then those of metrics it holds."""
        out = list(self._variables)
        for m in self._metrics:
            out.extend(m.variables)
        return out

    def reset_state(self):
        """Set every state variable back to zeros."""
        for v in self.variables:
            v.assign(np.zeros(v.shape, dtype=v.dtype))

    def update_state(self, *args, **kwargs):
        """Accumulate one batch into the state; subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define update_state")

    def result(self):
        """The metric's value from the state accumulated so far (a Tensor); subclasses define it."""
        raise NotImplementedError(f"{type(self).__name__} must define result")

    def _tensor(self, value, dtype=None):
        return ops.convert_to_tensor(np.asarray(value, dtype=dtype or self.dtype))

    def __call__(self, *args, **kwargs):
        """Update the state with one batch and return the result."""
        self.update_state(*args, **kwargs)
        return self.result()

    def get_config(self):
        """The constructor arguments, as Keras writes them."""
        return {"name": self.name, "dtype": self.dtype}

    @classmethod
    def from_config(cls, config):
        """Rebuild a metric from `get_config()`'s dictionary."""
        return cls(**config)

    def __repr__(self):
        return f"<{type(self).__name__} name={self.name}>"


def reduce_to_samplewise(values, sample_weight, reduce_fn, dtype):
    """One value per sample (non-batch axes reduced with reduce_fn), weighted, and the per-sample
    weights, as Keras's reduction metrics compute them."""
    values = np.asarray(values, dtype=dtype)
    if sample_weight is not None:
        sample_weight = np.asarray(as_array(sample_weight), dtype=dtype)
        values, sample_weight = match_ranks(values, sample_weight)
        if values.ndim > sample_weight.ndim:
            values = reduce_fn(values, axis=tuple(range(sample_weight.ndim, values.ndim)))
        sample_weight = np.broadcast_to(sample_weight, values.shape)
        values = values * sample_weight
        if sample_weight.ndim > 1:
            sample_weight = reduce_fn(sample_weight, axis=tuple(range(1, sample_weight.ndim)))
    if values.ndim > 1:
        values = reduce_fn(values, axis=tuple(range(1, values.ndim)))
    return values, sample_weight


def _mask_weights(sample_weight, mask, dtype):
    """Fold a mask on the predictions into the sample weights (masked entries weigh 0)."""
    if mask is None:
        return sample_weight
    mask = np.asarray(as_array(mask), dtype=dtype)
    if sample_weight is None:
        return mask
    sw = np.asarray(as_array(sample_weight), dtype=dtype)
    mask, sw = match_ranks(mask, sw)
    return sw * mask


class Sum(Metric):
    """The (weighted) sum of the values given.

    Args:
        name: the metric's name.
        dtype: the dtype of the state.
    """

    def __init__(self, name="sum", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), name="total")

    def update_state(self, values, sample_weight=None):
        """Add the (weighted) values of one batch.

        Args:
            values: tensor, array or number.
            sample_weight: optional weights broadcastable to values.
        """
        if sample_weight is not None:   # as in Keras, a mask on the values counts only with weights
            sample_weight = _mask_weights(sample_weight, getattr(values, "_keras_mask", None), self.dtype)
        values, _ = reduce_to_samplewise(as_array(values), sample_weight, np.sum, self.dtype)
        self.total.assign_add(np.sum(values))

    def result(self):
        return self._tensor(self.total._value)


class Mean(Metric):
    """The (weighted) mean of the values given: each sample (first axis) counts once, its other
    axes averaged.

    Args:
        name: the metric's name.
        dtype: the dtype of the state.
    """

    def __init__(self, name="mean", dtype=None):
        super().__init__(name=name, dtype=dtype)
        self.total = self.add_variable((), name="total")
        self.count = self.add_variable((), name="count")

    def update_state(self, values, sample_weight=None):
        """Add one batch of values.

        Args:
            values: tensor, array or number.
            sample_weight: optional weights (one per sample, or broadcastable to values).
        """
        if sample_weight is not None:   # as in Keras, a mask on the values counts only with weights
            sample_weight = _mask_weights(sample_weight, getattr(values, "_keras_mask", None), self.dtype)
        if type(values) is float and (sample_weight is None or type(sample_weight) in (int, float)):
            # One Python number (a batch's loss, weighted by the batch size, every step of fit):
            # the arithmetic of the general path below, in the state's dtype, in place.
            total, count = self.total._value, self.count._value
            weight = total.dtype.type(1.0 if sample_weight is None else sample_weight)
            total += total.dtype.type(values) * weight
            count += weight
            return
        values, sample_weight = reduce_to_samplewise(as_array(values), sample_weight, np.mean, self.dtype)
        self.total.assign_add(np.sum(values))
        if sample_weight is not None:
            count = np.sum(sample_weight)
        else:
            count = values.shape[0] if values.ndim >= 1 else 1
        self.count.assign_add(count)

    def result(self):
        total, count = self.total._value, self.count._value
        if count.ndim == 0:       # every step of fit: without divide_no_nan's broadcasting
            return ops.convert_to_tensor(np.asarray(total / count if count else 0, dtype=total.dtype))
        return self._tensor(divide_no_nan(total, count))


class MeanMetricWrapper(Mean):
    """The mean of fn(y_true, y_pred, **kwargs) over every sample seen.

    Args:
        fn: the function (per-sample values from y_true and y_pred).
        name: the metric's name (default: the function's name).
        dtype: the dtype of the state.
        **kwargs: keyword arguments passed to fn.
    """

    def __init__(self, fn, name=None, dtype=None, **kwargs):
        super().__init__(name=name or getattr(fn, "__name__", None) or "mean_metric_wrapper", dtype=dtype)
        self._fn = fn
        self._fn_kwargs = kwargs

    @property
    def fn(self):
        """The wrapped function."""
        return self._fn

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add fn's values for one batch (a mask on y_pred weighs masked entries 0).

        Args:
            y_true: targets.
            y_pred: predictions.
            sample_weight: optional weights.
        """
        mask = getattr(y_pred, "_keras_mask", None)
        values = self._fn(y_true, y_pred, **self._fn_kwargs)
        mask = getattr(values, "_keras_mask", None) if mask is None else mask
        super().update_state(as_array(values), sample_weight=_mask_weights(sample_weight, mask, self.dtype))

    def get_config(self):
        """name, dtype, the function and its keyword arguments (as Keras writes them)."""
        from engine.saving.serialization import serialize_keras_object
        from engine.metrics import function_name
        config = {"name": self.name, "dtype": self.dtype}
        name = function_name(self._fn)
        if name is not None:   # written as Keras writes its own metric functions
            config["fn"] = {"module": "builtins", "class_name": "function", "config": name,
                            "registered_name": "function"}
        else:
            config["fn"] = serialize_keras_object(self._fn)
        config.update(serialize_keras_object(self._fn_kwargs))
        return config

    @classmethod
    def from_config(cls, config):
        from engine.saving.serialization import deserialize_keras_object
        from engine.metrics import function_by_name
        config = dict(config)
        fn = config.get("fn")
        if isinstance(fn, dict):
            name = fn.get("config")
            is_function = fn.get("class_name") == "function" or fn.get("registered_name") == "function"
            known = function_by_name(name) if is_function and isinstance(name, str) else None
            config["fn"] = known if known is not None else deserialize_keras_object(fn)
        elif isinstance(fn, str):
            config["fn"] = function_by_name(fn) or deserialize_keras_object(fn)
        return cls(**config)


class _FixedFunctionMetric(MeanMetricWrapper):
    """A Keras metric class over a fixed function: its config is its constructor's arguments
    (name, dtype and the keys in `_config_keys`), not the function."""

    _config_keys = ()

    def get_config(self):
        config = {"name": self.name, "dtype": self.dtype}
        config.update({k: self._fn_kwargs[k] for k in self._config_keys})
        return config

    @classmethod
    def from_config(cls, config):
        return cls(**config)


register_builtins("metrics", globals())  # loadable from .keras configs by class name
