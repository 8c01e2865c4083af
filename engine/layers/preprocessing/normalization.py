"""The Normalization preprocessing layer: (x - mean) / sqrt(variance), with the statistics learnt by
`adapt` or given."""
import numpy as np

from engine import config, ops
from engine.layers.base import Layer
from engine.layers.preprocessing._base import adapt_batches
from engine.saving.registry import register_builtins


def combine_moments(mean, var, count, batch_mean, batch_var, batch_count):
    """Mean and (population) variance of two samples from theirs: what `adapt` does batch by batch."""
    total = count + batch_count
    batch_weight = float(batch_count) / total
    weight = 1.0 - batch_weight
    new_mean = mean * weight + batch_mean * batch_weight
    new_var = (var + (mean - new_mean) ** 2) * weight + (batch_var + (batch_mean - new_mean) ** 2) * batch_weight
    return new_mean, new_var, total


class Normalization(Layer):
    """Shift and scale inputs to zero mean and unit variance along the kept axes.

    Args:
        axis: the axis or axes that keep their own mean and variance (the feature axes; -1 by
            default); every other axis is reduced over. None: one mean and variance for all values.
        mean: the mean to use instead of adapting (broadcast to the kept axes); needs `variance`.
        variance: the variance to use instead of adapting.
        invert: undo a normalization instead: mean + x * sqrt(variance).

    The output is (x - mean) / max(sqrt(variance), epsilon), or its inverse. Adapted statistics are
    the layer's non-trainable weights mean, variance and count (saved with the model), as in Keras.
    """

    def __init__(self, axis=-1, mean=None, variance=None, invert=False, **kwargs):
        super().__init__(**kwargs)
        if axis is None:
            axis = ()
        elif isinstance(axis, (int, np.integer)):
            axis = (int(axis),)
        else:
            axis = tuple(int(a) for a in axis)
        self.axis = axis
        self.input_mean = mean
        self.input_variance = variance
        self.invert = bool(invert)
        self.supports_masking = True
        self._build_input_shape = None
        if (mean is None) != (variance is None):
            raise ValueError("Normalization: pass both mean and variance, or neither (then call adapt); "
                             f"got mean={mean!r}, variance={variance!r}")
        if mean is not None:
            if np.shape(mean) != np.shape(variance):
                raise ValueError(f"Normalization: mean and variance must have the same shape; got "
                                 f"{np.shape(mean)} and {np.shape(variance)}")
            if np.ndim(mean) > len(self.axis):
                raise ValueError(f"Normalization: mean has rank {np.ndim(mean)}, more than the {len(self.axis)} "
                                 f"kept axes (axis={self.axis})")

    def build(self, input_shape):
        input_shape = tuple(input_shape)
        ndim = len(input_shape)
        if any(a < -ndim or a >= ndim for a in self.axis):
            raise ValueError(f"Normalization ({self.name!r}): axis {self.axis} is out of range for inputs of "
                             f"shape {input_shape}")
        self._build_input_shape = input_shape
        self._keep_axis = tuple(sorted(a % ndim for a in self.axis))
        for d in self._keep_axis:
            if input_shape[d] is None:
                raise ValueError(f"Normalization ({self.name!r}): kept axis {d} of the input shape {input_shape} "
                                 "must have a known size")
        self._reduce_axis = tuple(d for d in range(ndim) if d not in self._keep_axis)
        self._broadcast_shape = tuple(input_shape[d] if d in self._keep_axis else 1 for d in range(ndim))
        stats_shape = tuple(input_shape[d] for d in self._keep_axis)
        self._stats_shape = stats_shape
        if self.input_mean is None:
            self.adapt_mean = self.add_weight(name="mean", shape=stats_shape, initializer="zeros", trainable=False)
            self.adapt_variance = self.add_weight(name="variance", shape=stats_shape, initializer="ones",
                                                  trainable=False)
            self.count = self.add_weight(name="count", shape=(), dtype="int32", initializer="zeros", trainable=False)
        else:
            self._given = tuple(self._broadcast_given(v) for v in (self.input_mean, self.input_variance))
        self.built = True

    def _broadcast_given(self, value):
        value = np.asarray(value, dtype=np.float64)
        if value.ndim:
            # The given values line up with the last kept axes.
            expanded = [1] * len(self._broadcast_shape)
            for i in range(1, value.ndim + 1):
                expanded[self._keep_axis[-i]] = value.shape[-i]
            value = value.reshape(expanded)
        return np.broadcast_to(value, self._broadcast_shape).astype(self.dtype)

    def _statistics(self):
        if self.input_mean is not None:
            return self._given
        return (ops.reshape(self.adapt_mean, self._broadcast_shape),
                ops.reshape(self.adapt_variance, self._broadcast_shape))

    def adapt(self, data):
        """Learn the mean and variance of `data` over the reduced axes.

        Args:
            data: a numpy array or tensor (its statistics, computed at once), or batches: a list of
                arrays, a generator, a PyDataset-like object (batches may be (x, y) pairs), combined
                batch by batch.
        """
        if self.input_mean is not None:
            raise ValueError("Normalization.adapt: this layer was given mean and variance; build a layer "
                             "without them to adapt")
        whole = isinstance(data, np.ndarray) or hasattr(data, "_value")
        mean = var = None
        count = 0
        for batch in adapt_batches(data, "Normalization"):
            if not self.built:
                self.build(batch.shape)
            self._check_adapt_shape(batch.shape)
            if whole:
                mean, var = np.mean(batch, axis=self._reduce_axis), np.var(batch, axis=self._reduce_axis)
                break
            batch = batch.astype(self.dtype)
            batch_count = int(np.prod([batch.shape[d] for d in self._reduce_axis])) if self._reduce_axis else 1
            b_mean, b_var = np.mean(batch, axis=self._reduce_axis), np.var(batch, axis=self._reduce_axis)
            if mean is None:
                mean, var = np.zeros(self._stats_shape, self.dtype), np.zeros(self._stats_shape, self.dtype)
            mean, var, count = combine_moments(mean, var, count, b_mean, b_var, batch_count)
        self.adapt_mean.assign(np.asarray(mean, dtype=self.dtype))
        self.adapt_variance.assign(np.asarray(var, dtype=self.dtype))

    def _check_adapt_shape(self, shape):
        if len(shape) != len(self._build_input_shape) or any(
                shape[d] != self._build_input_shape[d] for d in self._keep_axis):
            raise ValueError(f"Normalization.adapt ({self.name!r}): the layer was built for inputs of shape "
                             f"{self._build_input_shape} (kept axes {self._keep_axis}), but the data has shape "
                             f"{tuple(shape)}")

    def call(self, inputs):
        x = ops.cast(inputs, self.dtype)
        mean, variance = self._statistics()
        scale = ops.maximum(ops.sqrt(variance), config.epsilon())
        if self.invert:
            return ops.add(mean, ops.multiply(x, scale))
        return ops.divide(ops.subtract(x, mean), scale)

    def compute_output_shape(self, input_shape):
        return input_shape

    def get_config(self):
        def listed(v):
            return None if v is None else np.asarray(v).tolist()
        return {**super().get_config(), "axis": self.axis, "invert": self.invert,
                "mean": listed(self.input_mean), "variance": listed(self.input_variance)}


register_builtins("layers", globals())  # loadable from .keras configs by class name
