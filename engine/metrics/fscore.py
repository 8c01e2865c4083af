"""F-beta and F1 scores over classes (multi-class or multi-label predictions)."""
import numpy as np

from engine import config
from engine.metrics.base import Metric, as_array
from engine.saving.registry import register_builtins


class FBetaScore(Metric):
    """F-beta score (1 + beta**2) * P * R / (beta**2 * P + R) per class, then averaged.

    Args:
        average: None (one score per class), "micro" (counts pooled over classes), "macro" (mean
            over classes) or "weighted" (mean weighted by each class's number of true labels).
        beta: the weight of recall relative to precision (a float > 0).
        threshold: scores above it are positive (None: each row's highest score is).
        name, dtype: as for every metric.
    """

    def __init__(self, average=None, beta=1.0, threshold=None, name="fbeta_score", dtype=None):
        super().__init__(name=name, dtype=dtype)
        if average not in (None, "micro", "macro", "weighted"):
            raise ValueError(f"{type(self).__name__}: average must be None, 'micro', 'macro' or 'weighted', "
                             f"got {average!r}")
        if not isinstance(beta, float):
            raise ValueError(f"{type(self).__name__}: beta must be a Python float, got {beta!r}")
        if beta <= 0.0:
            raise ValueError(f"{type(self).__name__}: beta must be > 0, got {beta}")
        if threshold is not None:
            if not isinstance(threshold, float):
                raise ValueError(f"{type(self).__name__}: threshold must be a Python float, got {threshold!r}")
            if not 0.0 < threshold <= 1.0:
                raise ValueError(f"{type(self).__name__}: threshold must satisfy 0 < threshold <= 1, got {threshold}")
        self.average, self.beta, self.threshold = average, beta, threshold
        self.axis = None if average == "micro" else 0
        self._built = False

    def _build(self, y_true_shape, y_pred_shape):
        if len(y_pred_shape) != 2 or len(y_true_shape) != 2:
            raise ValueError(f"{type(self).__name__} expects 2-D inputs (batch_size, output_dim); got "
                             f"y_true.shape={y_true_shape}, y_pred.shape={y_pred_shape}")
        shape = () if self.average == "micro" else (y_pred_shape[-1],)
        self.true_positives = self.add_variable(shape, name="true_positives")
        self.false_positives = self.add_variable(shape, name="false_positives")
        self.false_negatives = self.add_variable(shape, name="false_negatives")
        self.intermediate_weights = self.add_variable(shape, name="intermediate_weights")
        self._built = True

    def update_state(self, y_true, y_pred, sample_weight=None):
        """Add one batch.

        Args:
            y_true: one-hot or multi-hot labels, shape (batch, classes).
            y_pred: scores, same shape.
            sample_weight: optional weights, one per sample.
        """
        y_true, y_pred = as_array(y_true, self.dtype), as_array(y_pred, self.dtype)
        if not self._built:
            self._build(y_true.shape, y_pred.shape)
        if self.threshold is None:
            top = y_pred.max(axis=-1, keepdims=True)
            predicted = (y_pred >= top) & (np.abs(y_pred) > 1e-9)
        else:
            predicted = y_pred > self.threshold
        predicted = predicted.astype(self.dtype)
        sw = None if sample_weight is None else as_array(sample_weight, self.dtype)

        def weighted_sum(values):
            if sw is not None:
                values = values * np.expand_dims(sw, 1)
            return values.sum(axis=self.axis)

        self.true_positives.assign_add(weighted_sum(predicted * y_true))
        self.false_positives.assign_add(weighted_sum(predicted * (1 - y_true)))
        self.false_negatives.assign_add(weighted_sum((1 - predicted) * y_true))
        self.intermediate_weights.assign_add(weighted_sum(y_true))

    def result(self):
        if not self._built:
            return self._tensor(0.0)
        eps = config.epsilon()
        tp, fp, fn = self.true_positives._value, self.false_positives._value, self.false_negatives._value
        precision = tp / (tp + fp + eps)
        recall = tp / (tp + fn + eps)
        b2 = self.beta ** 2
        score = precision * recall / (b2 * precision + recall + eps) * (1 + b2)
        if self.average == "weighted":
            w = self.intermediate_weights._value
            score = np.sum(score * (w / (np.sum(w) + eps)))
        elif self.average is not None:
            score = np.mean(score)
        return self._tensor(score)

    def get_config(self):
        return {"name": self.name, "dtype": self.dtype, "average": self.average, "beta": self.beta,
                "threshold": self.threshold}


class F1Score(FBetaScore):
    """F1 score: the F-beta score with beta = 1 (arguments as `FBetaScore`, without beta)."""

    def __init__(self, average=None, threshold=None, name="f1_score", dtype=None):
        super().__init__(average=average, beta=1.0, threshold=threshold, name=name, dtype=dtype)

    def get_config(self):
        config = super().get_config()
        del config["beta"]
        return config


register_builtins("metrics", globals())  # loadable from .keras configs by class name
