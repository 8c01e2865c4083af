"""Accuracy metrics: exact, binary, categorical, sparse and top-k."""
import numpy as np

from engine import config, ops
from engine.metrics.base import _FixedFunctionMetric, as_array, match_ranks
from engine.saving.registry import register_builtins


def _floats(hits):
    return ops.convert_to_tensor(np.asarray(hits, dtype=config.floatx()))


def accuracy(y_true, y_pred):
    """1.0 where y_true equals y_pred, else 0.0 (elementwise).

    Args:
        y_true: targets.
        y_pred: predictions of the same shape.
    """
    y_pred = as_array(y_pred)
    y_true, y_pred = match_ranks(as_array(y_true).astype(y_pred.dtype, copy=False), y_pred)
    return _floats(y_true == y_pred)


def binary_accuracy(y_true, y_pred, threshold=0.5):
    """1.0 where y_true equals (y_pred > threshold), elementwise (a soft label matches nothing).

    Args:
        y_true: 0/1 targets.
        y_pred: probabilities.
        threshold: the decision threshold.
    """
    y_true, y_pred = match_ranks(as_array(y_true), as_array(y_pred))
    return _floats(y_true == (y_pred > threshold).astype(y_true.dtype))


def categorical_accuracy(y_true, y_pred):
    """1.0 where the argmax of y_pred is the argmax of the one-hot y_true.

    Args:
        y_true: one-hot targets, shape (..., classes).
        y_pred: scores, same shape.
    """
    return _floats(np.argmax(as_array(y_true), axis=-1) == np.argmax(as_array(y_pred), axis=-1))


def sparse_categorical_accuracy(y_true, y_pred):
    """1.0 where the argmax of y_pred is the integer label y_true.

    Args:
        y_true: labels, shape (...) or (..., 1).
        y_pred: scores, shape (..., classes).
    """
    y_true, y_pred = as_array(y_true), as_array(y_pred)
    if y_true.ndim == y_pred.ndim and y_true.shape[-1] == 1:
        y_true = y_true.reshape(y_true.shape[:-1])
    matches = y_true.astype(np.float64) == np.argmax(y_pred, axis=-1)
    return _floats(matches)


def _in_top_k(labels, scores, k):
    """Whether each label's score is among the k largest (ties with the k-th count as in; NaN as
    the lowest), as Keras's in_top_k."""
    scores = scores.reshape(-1, scores.shape[-1])
    labels = labels.reshape(-1).astype(np.int64)
    at_label = scores[np.arange(len(labels)), labels]
    at_label = np.where(np.isnan(at_label), -np.inf, at_label)
    rank = 1 + np.sum(scores > at_label[:, None], axis=-1)
    return rank <= k


def top_k_categorical_accuracy(y_true, y_pred, k=5):
    """1.0 where the one-hot target's class is among the k highest scores.

    Args:
        y_true: one-hot targets.
        y_pred: scores.
        k: how many top scores count.
    """
    labels = np.argmax(as_array(y_true), axis=-1)
    return _floats(_in_top_k(labels, as_array(y_pred), k).reshape(labels.shape))


def sparse_top_k_categorical_accuracy(y_true, y_pred, k=5, from_sorted_ids=False):
    """1.0 where the integer label is among the k highest scores.

    Args:
        y_true: labels.
        y_pred: scores (or, with from_sorted_ids=True, class ids sorted by score, best first).
        k: how many top scores count.
        from_sorted_ids: whether y_pred holds sorted class ids instead of scores.
    """
    labels, y_pred = as_array(y_true), as_array(y_pred)
    shape = labels.shape
    if from_sorted_ids:
        ids = y_pred.reshape(-1, y_pred.shape[-1])[:, :k]
        hits = np.any(ids == labels.reshape(-1, 1), axis=1)
    else:
        hits = _in_top_k(labels, y_pred, k)
    return _floats(hits.reshape(shape) if len(shape) > 1 else hits)


class Accuracy(_FixedFunctionMetric):
    """How often predictions equal labels. Args: name, dtype."""

    def __init__(self, name="accuracy", dtype=None):
        super().__init__(accuracy, name=name, dtype=dtype)


class BinaryAccuracy(_FixedFunctionMetric):
    """How often (y_pred > threshold) equals the 0/1 label.

    Args:
        name, dtype: as for every metric.
        threshold: the decision threshold.
    """
    _config_keys = ("threshold",)

    def __init__(self, name="binary_accuracy", dtype=None, threshold=0.5):
        super().__init__(binary_accuracy, name=name, dtype=dtype, threshold=threshold)
        self.threshold = threshold


class CategoricalAccuracy(_FixedFunctionMetric):
    """How often the predicted class is the one-hot label's class. Args: name, dtype."""

    def __init__(self, name="categorical_accuracy", dtype=None):
        super().__init__(categorical_accuracy, name=name, dtype=dtype)


class SparseCategoricalAccuracy(_FixedFunctionMetric):
    """How often the predicted class is the integer label. Args: name, dtype."""

    def __init__(self, name="sparse_categorical_accuracy", dtype=None):
        super().__init__(sparse_categorical_accuracy, name=name, dtype=dtype)


class TopKCategoricalAccuracy(_FixedFunctionMetric):
    """How often the one-hot label's class is among the k highest scores.

    Args:
        k: how many top scores count.
        name, dtype: as for every metric.
    """
    _config_keys = ("k",)

    def __init__(self, k=5, name="top_k_categorical_accuracy", dtype=None):
        super().__init__(top_k_categorical_accuracy, name=name, dtype=dtype, k=k)
        self.k = k


class SparseTopKCategoricalAccuracy(_FixedFunctionMetric):
    """How often the integer label is among the k highest scores.

    Args:
        k: how many top scores count.
        name, dtype: as for every metric.
        from_sorted_ids: whether predictions are class ids sorted by score.
    """
    _config_keys = ("k",)

    def __init__(self, k=5, name="sparse_top_k_categorical_accuracy", dtype=None, from_sorted_ids=False):
        super().__init__(sparse_top_k_categorical_accuracy, name=name, dtype=dtype, k=k,
                         from_sorted_ids=from_sorted_ids)
        self.k, self.from_sorted_ids = k, from_sorted_ids

    def get_config(self):
        config = super().get_config()
        if self.from_sorted_ids:   # written only when set, as Keras does
            config["from_sorted_ids"] = True
        return config


register_builtins("metrics", globals())  # loadable from .keras configs by class name
