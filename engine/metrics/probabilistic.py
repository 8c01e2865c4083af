"""Metrics that average a loss function: crossentropies, KL divergence, Poisson, hinge losses."""
from engine import losses
from engine.metrics.base import _FixedFunctionMetric
from engine.saving.registry import register_builtins


class BinaryCrossentropy(_FixedFunctionMetric):
    """Mean binary crossentropy.

    Args:
        name, dtype: as for every metric.
        from_logits: whether predictions are logits.
        label_smoothing: in [0, 1].
    """
    _config_keys = ("from_logits", "label_smoothing")

    def __init__(self, name="binary_crossentropy", dtype=None, from_logits=False, label_smoothing=0):
        super().__init__(losses.binary_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing)


class CategoricalCrossentropy(_FixedFunctionMetric):
    """Mean categorical crossentropy.

    Args:
        name, dtype: as for every metric.
        from_logits: whether predictions are logits.
        label_smoothing: in [0, 1].
        axis: the class axis.
    """
    _config_keys = ("from_logits", "label_smoothing", "axis")

    def __init__(self, name="categorical_crossentropy", dtype=None, from_logits=False, label_smoothing=0, axis=-1):
        super().__init__(losses.categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         label_smoothing=label_smoothing, axis=axis)


class SparseCategoricalCrossentropy(_FixedFunctionMetric):
    """Mean crossentropy with integer labels.

    Args:
        name, dtype: as for every metric.
        from_logits: whether predictions are logits.
        ignore_class: a label left out of the mean.
        axis: the class axis.
    """
    _config_keys = ("from_logits", "ignore_class", "axis")

    def __init__(self, name="sparse_categorical_crossentropy", dtype=None, from_logits=False, ignore_class=None,
                 axis=-1):
        super().__init__(losses.sparse_categorical_crossentropy, name=name, dtype=dtype, from_logits=from_logits,
                         ignore_class=ignore_class, axis=axis)


class KLDivergence(_FixedFunctionMetric):
    """Mean Kullback-Leibler divergence. Args: name, dtype."""

    def __init__(self, name="kl_divergence", dtype=None):
        super().__init__(losses.kl_divergence, name=name, dtype=dtype)


class Poisson(_FixedFunctionMetric):
    """Mean Poisson loss. Args: name, dtype."""

    def __init__(self, name="poisson", dtype=None):
        super().__init__(losses.poisson, name=name, dtype=dtype)


class Hinge(_FixedFunctionMetric):
    """Mean hinge loss. Args: name, dtype."""

    def __init__(self, name="hinge", dtype=None):
        super().__init__(losses.hinge, name=name, dtype=dtype)


class SquaredHinge(_FixedFunctionMetric):
    """Mean squared hinge loss. Args: name, dtype."""

    def __init__(self, name="squared_hinge", dtype=None):
        super().__init__(losses.squared_hinge, name=name, dtype=dtype)


class CategoricalHinge(_FixedFunctionMetric):
    """Mean categorical hinge loss. Args: name, dtype."""

    def __init__(self, name="categorical_hinge", dtype=None):
        super().__init__(losses.categorical_hinge, name=name, dtype=dtype)


register_builtins("metrics", globals())  # loadable from .keras configs by class name
