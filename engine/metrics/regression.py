"""Regression metrics: error means, root mean squared error, cosine similarity, R^2."""

import numpy as np

from engine import losses
from engine.metrics.base import Metric, Mean, _FixedFunctionMetric, as_array, match_ranks
from engine.ops import convert_to_tensor
from engine.saving.registry import register_builtins
from engine.utils.traceback_utils import warn_user


def cosine_similarity(y_true, y_pred, axis=-1):
    """The cosine similarity of y_true and y_pred along `axis` (1 is best).

    Args:
        y_true: targets.
        y_pred: predictions.
        axis: the axis the vectors lie along.
    """
    return -losses.cosine_similarity(y_true, y_pred, axis=axis)


class MeanSquaredError(_FixedFunctionMetric):
    """Mean of the squared error. Args: name, dtype."""

    def __init__(self, name="mean_squared_error", dtype=None):
        super().__init__(losses.mean_squared_error, name=name, dtype=dtype)


class MeanAbsoluteError(_FixedFunctionMetric):
    """Mean of the absolute error. Args: name, dtype."""

    def __init__(self, name="mean_absolute_error", dtype=None):
        super().__init__(losses.mean_absolute_error, name=name, dtype=dtype)


class MeanAbsolutePercentageError(_FixedFunctionMetric):
    """Mean absolute percentage error. Args: name, dtype."""

    def __init__(self, name="mean_absolute_percentage_error", dtype=None):
        super().__init__(losses.mean_absolute_percentage_error, name=name, dtype=dtype)


class MeanSquaredLogarithmicError(_FixedFunctionMetric):
    """Mean squared logarithmic error. Args: name, dtype."""

    def __init__(self, name="mean_squared_logarithmic_error", dtype=None):
        super().__init__(losses.mean_squared_logarithmic_error, name=name, dtype=dtype)


class LogCoshError(_FixedFunctionMetric):
    """Mean of log(cosh(error)). Args: name, dtype."""

    def __init__(self, name="logcosh", dtype=None):
        super().__init__(losses.log_cosh, name=name, dtype=dtype)


class CosineSimilarity(_FixedFunctionMetric):
    """Mean cosine similarity of predictions and targets.

    Args:
        name, dtype: as for every metric.
        axis: the axis the vectors lie along (Keras 3 leaves it out of the config).
    """

    def __init__(self, name="cosine_similarity", dtype=None, axis=-1):
        super().__init__(cosine_similarity, name=name, dtype=dtype, axis=axis)


class RootMeanSquaredError(Mean):
    """Square root of the (weighted) mean squared error over all elements. Args: name, dtype."""

    def __init__(self, name="root_mean_squared_error", dtype=None):
        super().__init__(name=name, dtype=dtype)

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch's squared errors.

        Args:
            y_true: targets.
            y_pred: predictions.
            sample_weight: optional weights.
        """
        y_true, y_pred = match_ranks(as_array(y_true, self.dtype), as_array(y_pred, self.dtype))
        super().update_state(np.square(y_pred - y_true), sample_weight=sample_weight)

    def result(self):
        return convert_to_tensor(np.sqrt(np.asarray(super().result())))


class R2Score(Metric):
    """Coefficient of determination 1 - SS_res / SS_tot, per output column, then aggregated.

    Args:
        class_aggregation: "uniform_average" (mean over columns), "variance_weighted_average"
            (weighted by each column's variance) or None (one score per column).
        num_regressors: for the adjusted R^2 (0: plain R^2).
        name, dtype: as for every metric.
    """

    def __init__(self, class_aggregation="uniform_average", num_regressors=0, name="r2_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if class_aggregation not in (None, "uniform_average", "variance_weighted_average"):
            raise ValueError(f"R2Score: class_aggregation must be None, 'uniform_average' or "
                             f"'variance_weighted_average', got {class_aggregation!r}")
        if num_regressors < 0:
            raise ValueError(f"R2Score: num_regressors must be >= 0, got {num_regressors}")
        self.class_aggregation, self.num_regressors = class_aggregation, num_regressors
        self.num_samples = self.add_variable((), name="num_samples")
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(f"R2Score expects 2-D inputs (batch_size, output_dim); got y_true.shape="
                             f"{y_true_shape} and y_pred.shape={y_pred_shape}")
        n = y_pred_shape[-1]
        self.squared_sum = self.add_variable((n,), name="squared_sum")
        self.sum = self.add_variable((n,), name="sum")
        self.total_mse = self.add_variable((n,), name="residual")
        self.count = self.add_variable((n,), name="count")
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch.

        Args:
            y_true: targets, shape (batch, outputs).
            y_pred: predictions, same shape.
            sample_weight: optional weights, one per sample or per element.
        """
        y_true, y_pred = match_ranks(as_array(y_true, self.dtype), as_array(y_pred, self.dtype))
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        sw = np.asarray(1.0 if sample_weight is None else as_array(sample_weight), dtype=self.dtype)
        if sw.ndim == 1:
            sw = sw[:, None]
        sw = np.broadcast_to(sw, y_true.shape)
        weighted = y_true * sw
        self.sum.assign_add(weighted.sum(axis=0))
        self.squared_sum.assign_add((y_true * weighted).sum(axis=0))
        self.total_mse.assign_add((np.square(y_true - y_pred) * sw).sum(axis=0))
        self.count.assign_add(sw.sum(axis=0))
        self.num_samples.assign_add(y_true.size)

    def result(self):
        with np.errstate(divide="ignore", invalid="ignore"):
            mean = self.sum._value / self.count._value
            total = self.squared_sum._value - self.sum._value * mean
            raw = 1 - self.total_mse._value / total
        raw = np.where(np.isinf(raw), 0.0, raw)
        if self.class_aggregation == "uniform_average":
            score = np.mean(raw)
        elif self.class_aggregation == "variance_weighted_average":
            score = np.sum(total * raw) / np.sum(total)
        else:
            score = raw
        n = float(self.num_samples._value)
        if self.num_regressors:
            if self.num_regressors > n - 1:
                warn_user("R2Score: more regressors than data points; giving the plain R^2")
            elif self.num_regressors == n - 1:
                warn_user("R2Score: the adjusted R^2 would divide by zero; giving the plain R^2")
            else:
                score = 1 - (1 - score) * (n - 1) / (n - self.num_regressors - 1)
        return self._tensor(score)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "class_aggregation": self.class_aggregation,
                "num_regressors": self.num_regressors}


register_builtins("metrics", globals())  # loadable from .keras configs by class name
