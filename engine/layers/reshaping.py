"""Reshaping layers for images and sequences: ZeroPadding1D/2D, UpSampling1D/2D, Cropping1D/2D."""
from engine import ops
from engine.layers.base import Layer
from engine.saving.registry import register_builtins


def _pairs(padding, rank, name):
    """padding (an int, a pair, or one int/pair per axis) as one (before, after) pair per axis;
    ValueError naming the layer when an amount is negative or the axes do not match."""
    pairs = _as_pairs(padding, rank)
    if len(pairs) != rank:
        raise ValueError(f"{name}: expected padding for {rank} axes, got {padding}")
    if any(len(p) != 2 or min(p) < 0 for p in pairs):
        raise ValueError(f"{name}: every amount must be a pair of integers >= 0, got {padding}")
    return pairs


def _as_pairs(padding, rank):
    if isinstance(padding, int):
        return ((padding, padding),) * rank
    padding = tuple(padding)
    if rank == 1 and len(padding) == 2 and all(isinstance(p, int) for p in padding):
        return (tuple(padding),)
    return tuple((p, p) if isinstance(p, int) else tuple(p) for p in padding)


class _ZeroPadding(Layer):
    rank = 2

    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.padding = _pairs(padding, self.rank, type(self).__name__)

    def call(self, inputs):
        return ops.pad(inputs, ((0, 0),) + self.padding + ((0, 0),))

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}

    def compute_output_shape(self, input_shape):
        spatial = tuple(None if s is None else s + a + b for s, (a, b) in zip(input_shape[1:-1], self.padding))
        return (input_shape[0],) + spatial + (input_shape[-1],)


class ZeroPadding1D(_ZeroPadding):
    """Pads a 3-D input `(batch, steps, channels)` with zeros at the start and end of the steps axis.

    Args:
        padding: an integer (the same amount at both ends) or a pair `(before, after)` (default 1).
        data_format: accepted for Keras compatibility; inputs are read as `"channels_last"`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 1


class ZeroPadding2D(_ZeroPadding):
    """Pads a 4-D input `(batch, rows, cols, channels)` with zeros around its spatial axes.

    Args:
        padding: an integer (the same amount on every side), a pair of integers
            `(rows, cols)` (symmetric per axis), or a pair of pairs
            `((top, bottom), (left, right))` (default 1).
        data_format: accepted for Keras compatibility; inputs are read as `"channels_last"`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 2


class _UpSampling(Layer):
    rank = 2

    def __init__(self, size=2, data_format=None, interpolation="nearest", **kwargs):
        super().__init__(**kwargs)
        if interpolation != "nearest":
            raise ValueError(f"{type(self).__name__}: only interpolation='nearest' is supported")
        self.size = (size,) * self.rank if isinstance(size, int) else tuple(size)
        if len(self.size) != self.rank or any(not isinstance(v, int) or v < 1 for v in self.size):
            raise ValueError(f"{type(self).__name__}: size must be a positive integer or {self.rank} of them, "
                             f"got {size!r}")

    def get_config(self):
        return {**super().get_config(), "size": self.size if self.rank > 1 else self.size[0],
                "interpolation": "nearest"}

    def call(self, inputs):
        y = inputs
        for axis, s in enumerate(self.size, start=1):
            if s != 1:
                y = ops.repeat(y, s, axis=axis)
        return y

    def compute_output_shape(self, input_shape):
        spatial = tuple(None if d is None else d * s for d, s in zip(input_shape[1:-1], self.size))
        return (input_shape[0],) + spatial + (input_shape[-1],)


class UpSampling1D(_UpSampling):
    """Upsamples a 3-D input `(batch, steps, channels)` by repeating each step `size` times.

    Args:
        size: a positive integer, the upsampling factor (default 2).
        data_format: accepted for Keras compatibility; inputs are read as `"channels_last"`.
        interpolation: only `"nearest"` (the default) is supported.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 1


class UpSampling2D(_UpSampling):
    """Upsamples a 4-D input `(batch, rows, cols, channels)` by repeating rows and columns.

    Args:
        size: a positive integer (used for both axes) or a pair of positive integers
            `(rows, cols)`, the upsampling factors (default 2).
        data_format: accepted for Keras compatibility; inputs are read as `"channels_last"`.
        interpolation: only `"nearest"` (the default) is supported.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 2


class _Cropping(Layer):
    rank = 2

    def __init__(self, cropping=1, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.cropping = _pairs(cropping, self.rank, type(self).__name__)

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}

    def call(self, inputs):
        index = (slice(None),) + tuple(slice(a, inputs.shape[i + 1] - b) for i, (a, b) in enumerate(self.cropping))
        return ops.math.slice_along(inputs, index)

    def compute_output_shape(self, input_shape):
        spatial = tuple(None if s is None else s - a - b for s, (a, b) in zip(input_shape[1:-1], self.cropping))
        return (input_shape[0],) + spatial + (input_shape[-1],)


class Cropping1D(_Cropping):
    """Crops a 3-D input `(batch, steps, channels)` along the steps axis.

    Args:
        cropping: an integer (the number of steps removed at both ends) or a pair
            `(before, after)` (default 1).
        data_format: accepted for Keras compatibility; inputs are read as `"channels_last"`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 1


class Cropping2D(_Cropping):
    """Crops a 4-D input `(batch, rows, cols, channels)` along its spatial axes.

    Args:
        cropping: an integer (the same amount from every side), a pair of integers
            `(rows, cols)` (symmetric per axis), or a pair of pairs
            `((top, bottom), (left, right))` (default 1).
        data_format: accepted for Keras compatibility; inputs are read as `"channels_last"`.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 2


register_builtins("layers", globals())  # loadable from .keras configs by class name
