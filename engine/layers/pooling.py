"""Pooling layers: max and average pooling (1-D, 2-D) and their global forms."""
from engine import ops
from engine.layers._layout import (from_channels_last, shape_from_channels_last, shape_to_channels_last,
                                   standardize_data_format, to_channels_last)
from engine.layers.base import Layer
from engine.layers.convolutional import layer_int_tuple
from engine.ops import convolution as conv_ops
from engine.saving.registry import register_builtins


class _Pool(Layer):
    rank = 2
    kind = "max"

    def __init__(self, pool_size=2, strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, type(self).__name__)
        self.pool_size = layer_int_tuple(pool_size, self.rank, "pool_size", self)
        self.strides = self.pool_size if strides is None else layer_int_tuple(strides, self.rank, "strides", self)
        self.padding = padding.lower()
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{type(self).__name__}: padding must be 'valid' or 'same', got {padding!r}")

    def _check_input(self, shape):
        # Called with the input's own shape (also by the base Layer, before building).
        if isinstance(shape, tuple) and len(shape) == self.rank + 2:
            shape = shape_to_channels_last(shape, self.data_format)
        if not isinstance(shape, tuple) or len(shape) != self.rank + 2:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of rank {self.rank + 2}, "
                             f"got {shape}")
        if self.padding == "valid":
            for size, p in zip(shape[1:-1], self.pool_size):
                if size is not None and size < p:
                    raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): pool {self.pool_size} is "
                                     f"larger than the input {shape}")

    def call(self, inputs):
        self._check_input(tuple(inputs.shape))
        x = to_channels_last(inputs, self.data_format)
        return from_channels_last(self._pool_last(x), self.data_format)

    def _pool_last(self, x):
        """The pooling of a channels_last input."""
        if self.rank == 1:
            return conv_ops.pool_nd(x, self.kind, self.pool_size, self.strides, self.padding)
        return conv_ops.pool2d(x, self.kind, self.pool_size, self.strides, self.padding)

    def compute_output_shape(self, input_shape):
        shape = shape_to_channels_last(input_shape, self.data_format)
        spatial = tuple(conv_ops.output_length(s, p, st, self.padding)
                        for s, p, st in zip(shape[1:-1], self.pool_size, self.strides))
        return shape_from_channels_last((shape[0],) + spatial + (shape[-1],), self.data_format)

    def get_config(self):
        config = super().get_config()
        config.update({"pool_size": self.pool_size, "strides": self.strides, "padding": self.padding,
                       "data_format": self.data_format})
        return config


class MaxPooling1D(_Pool):
    """Max pooling over a temporal window, for 1-D data of shape `(batch, steps, channels)`.

    Args:
        pool_size: an integer, the size of the pooling window (default 2).
        strides: an integer, the step between windows; `None` (default) means `pool_size`.
        padding: `"valid"` (default; no padding, windows must fit inside the input) or `"same"`
            (pads so that the output size is `ceil(input_size / strides)`).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, kind = 1, "max"


class MaxPooling2D(_Pool):
    """Max pooling over a spatial window, for 2-D data of shape `(batch, rows, cols, channels)`.

    Args:
        pool_size: an integer or a pair of integers, the window size along rows and columns
            (default `(2, 2)`); an integer is used for both.
        strides: an integer or a pair of integers, the step between windows; `None` (default)
            means `pool_size`.
        padding: `"valid"` (default; no padding, windows must fit inside the input) or `"same"`
            (pads so that the output size is `ceil(input_size / strides)`).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, kind = 2, "max"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling1D(_Pool):
    """Average pooling over a temporal window, for 1-D data of shape `(batch, steps, channels)`.

    Args:
        pool_size: an integer, the size of the pooling window (default 2).
        strides: an integer, the step between windows; `None` (default) means `pool_size`.
        padding: `"valid"` (default; no padding, windows must fit inside the input) or `"same"`
            (pads so that the output size is `ceil(input_size / strides)`).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, kind = 1, "avg"


class AveragePooling2D(_Pool):
    """Average pooling over a spatial window, for 2-D data of shape `(batch, rows, cols, channels)`.

    Args:
        pool_size: an integer or a pair of integers, the window size along rows and columns
            (default `(2, 2)`); an integer is used for both.
        strides: an integer or a pair of integers, the step between windows; `None` (default)
            means `pool_size`.
        padding: `"valid"` (default; no padding, windows must fit inside the input) or `"same"`
            (pads so that the output size is `ceil(input_size / strides)`).
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, kind = 2, "avg"

    def __init__(self, pool_size=(2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class _GlobalPool(Layer):
    rank = 2
    reduce = None

    def __init__(self, data_format=None, keepdims=False, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, type(self).__name__)
        self.keepdims = keepdims

    def _spatial_axes(self):
        return tuple(range(2, self.rank + 2)) if self.data_format == "channels_first" else tuple(range(1, self.rank + 1))

    def call(self, inputs):
        if inputs.ndim != self.rank + 2:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of rank {self.rank + 2}, "
                             f"got shape {inputs.shape}")
        return type(self).reduce(inputs, axis=self._spatial_axes(), keepdims=self.keepdims)

    def compute_output_shape(self, input_shape):
        spatial = self._spatial_axes()
        if self.keepdims:
            return tuple(1 if i in spatial else d for i, d in enumerate(input_shape))
        return tuple(d for i, d in enumerate(input_shape) if i not in spatial)

    def get_config(self):
        config = super().get_config()
        config.update({"data_format": self.data_format, "keepdims": self.keepdims})
        return config


class GlobalMaxPooling1D(_GlobalPool):
    """Global max pooling over the steps axis of 1-D data of shape `(batch, steps, channels)`.

    The output has shape `(batch, channels)`, or keeps the reduced axes with size 1 if `keepdims`.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        keepdims: whether to keep the pooled axes, with size 1 (default `False`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, reduce = 1, staticmethod(ops.max)


class GlobalMaxPooling2D(_GlobalPool):
    """Global max pooling over the two spatial axes of 2-D data.

    Inputs have shape `(batch, rows, cols, channels)`.

    The output has shape `(batch, channels)`, or keeps the reduced axes with size 1 if `keepdims`.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        keepdims: whether to keep the pooled axes, with size 1 (default `False`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, reduce = 2, staticmethod(ops.max)


class GlobalAveragePooling1D(_GlobalPool):
    """Global average pooling over the steps axis of 1-D data of shape `(batch, steps, channels)`.

    The output has shape `(batch, channels)`, or keeps the reduced axes with size 1 if `keepdims`.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        keepdims: whether to keep the pooled axes, with size 1 (default `False`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, reduce = 1, staticmethod(ops.mean)


class GlobalAveragePooling2D(_GlobalPool):
    """Global average pooling over the two spatial axes of 2-D data.

    Inputs have shape `(batch, rows, cols, channels)`.

    The output has shape `(batch, channels)`, or keeps the reduced axes with size 1 if `keepdims`.

    Args:
        data_format: `"channels_last"` (inputs `(batch, ..., channels)`) or `"channels_first"`
            (inputs `(batch, channels, ...)`); `None` (default) means the configured image data format.
        keepdims: whether to keep the pooled axes, with size 1 (default `False`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
    _plan_traceable = True   # audited for step plans (models/plan.py): differentiable ops only

    rank, reduce = 2, staticmethod(ops.mean)


MaxPool1D, MaxPool2D, AvgPool1D, AvgPool2D = MaxPooling1D, MaxPooling2D, AveragePooling1D, AveragePooling2D
GlobalMaxPool1D, GlobalMaxPool2D = GlobalMaxPooling1D, GlobalMaxPooling2D
GlobalAvgPool1D, GlobalAvgPool2D = GlobalAveragePooling1D, GlobalAveragePooling2D


register_builtins("layers", globals())  # loadable from .keras configs by class name
