"""Correlation metrics: Pearson's and the concordance correlation coefficient."""
import numpy as np

from engine import config, ops
from engine.metrics.base import _FixedFunctionMetric, as_array, match_ranks
from engine.saving.registry import register_builtins


def _pair(y_true, y_pred):
    y_pred = as_array(y_pred)
    if y_pred.dtype.kind != "f":
        y_pred = y_pred.astype(config.floatx())
    return match_ranks(as_array(y_true).astype(y_pred.dtype, copy=False), y_pred)


def pearson_correlation(y_true, y_pred, axis=-1):
    """Pearson's correlation coefficient of y_true and y_pred along `axis`.

    Args:
        y_true: targets.
        y_pred: predictions.
        axis: the axis the correlation runs along.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    t = y_true - y_true.mean(axis=axis, keepdims=True)
    p = y_pred - y_pred.mean(axis=axis, keepdims=True)
    with np.errstate(divide="ignore", invalid="ignore"):
        t = t / t.std(axis=axis, keepdims=True)
        p = p / p.std(axis=axis, keepdims=True)
    return ops.convert_to_tensor(np.mean(t * p, axis=axis))


def concordance_correlation(y_true, y_pred, axis=-1):
    """Lin's concordance correlation coefficient along `axis`, computed term for term as Keras 3
    computes it (its covariance term centres y_true on the mean of y_pred).

    Args:
        y_true: targets.
        y_pred: predictions.
        axis: the axis the coefficient runs along.
    """
    y_true, y_pred = _pair(y_true, y_pred)
    t_mean = y_true.mean(axis=axis, keepdims=True)
    p_mean = y_pred.mean(axis=axis, keepdims=True)
    t_var = (y_true - t_mean).var(axis=axis, keepdims=True)
    p_var = (y_pred - p_mean).var(axis=axis, keepdims=True)
    covar = (y_true - p_mean) * (y_pred - p_mean)
    norm = t_var + p_var + np.square(t_mean - p_mean)
    return ops.convert_to_tensor(np.mean(2 * covar / (norm + config.epsilon()), axis=axis))


class _CorrelationMetric(_FixedFunctionMetric):
    _config_keys = ("axis",)
    _function = None

    def __init__(self, name=None, dtype=None, axis=-1):
        super().__init__(type(self)._function, name=name, dtype=dtype, axis=axis)
        self.axis = axis


class PearsonCorrelation(_CorrelationMetric):
    """Mean Pearson correlation.

    Args:
        name, dtype: as for every metric.
        axis: the axis the correlation runs along.
    """
    _function = staticmethod(pearson_correlation)

    def __init__(self, name="pearson_correlation", dtype=None, axis=-1):
        super().__init__(name, dtype, axis)


class ConcordanceCorrelation(_CorrelationMetric):
    """Mean concordance correlation.

    Args:
        name, dtype: as for every metric.
        axis: the axis the coefficient runs along.
    """
    _function = staticmethod(concordance_correlation)

    def __init__(self, name="concordance_correlation", dtype=None, axis=-1):
        super().__init__(name, dtype, axis)


register_builtins("metrics", globals())  # loadable from .keras configs by class name
