"""Reshaping layers for images and sequences: ZeroPadding1D/2D, UpSampling1D/2D, Cropping1D/2D."""
from engine import ops
from engine.layers._layout import standardize_data_format
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


def _refuse_data_format(name, kwargs):
    if "data_format" in kwargs:
        raise TypeError(f"{name}: unexpected keyword argument 'data_format' (as in Keras, its inputs are always "
                        "(batch, steps, channels); transpose channels_first inputs before it)")


class _Spatial(Layer):
    """A layer acting on the spatial axes of (batch, spatial..., channels) inputs, or of
    (batch, channels, spatial...) ones when data_format is "channels_first"."""

    rank = 2

    def __init__(self, data_format=None, **kwargs):
        super().__init__(**kwargs)
        self.data_format = standardize_data_format(data_format, type(self).__name__)

    def _spatial_axes(self):
        first = 2 if self.data_format == "channels_first" else 1
        return tuple(range(first, first + self.rank))

    def _check_rank(self, inputs):
        if inputs.ndim != self.rank + 2:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of rank {self.rank + 2}, "
                             f"got shape {tuple(inputs.shape)}")

    def _per_axis(self, amounts, neutral):
        """One entry per input axis: `amounts` on the spatial axes, `neutral` on the others."""
        spatial = self._spatial_axes()
        return tuple(amounts[spatial.index(i)] if i in spatial else neutral for i in range(self.rank + 2))

    def _output_shape(self, input_shape, resize):
        """input_shape with each known spatial size s replaced by resize(s, that axis's amount)."""
        spatial = self._spatial_axes()
        return tuple(d if i not in spatial or d is None else resize(d, spatial.index(i))
                     for i, d in enumerate(input_shape))

    def get_config(self):
        return {**super().get_config(), "data_format": self.data_format}


class _ZeroPadding(_Spatial):
    def __init__(self, padding=1, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.padding = _pairs(padding, self.rank, type(self).__name__)

    def call(self, inputs):
        self._check_rank(inputs)
        return ops.pad(inputs, self._per_axis(self.padding, (0, 0)))

    def get_config(self):
        return {**super().get_config(), "padding": self.padding}

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape, lambda s, i: s + sum(self.padding[i]))


class ZeroPadding1D(_ZeroPadding):
    """Pads a 3-D input `(batch, steps, channels)` with zeros at the start and end of the steps axis.

    Args:
        padding: an integer (the same amount at both ends) or a pair `(before, after)` (default 1).
        data_format: `"channels_last"` (inputs `(batch, steps, channels)`) or `"channels_first"`
            (inputs `(batch, channels, steps)`); `None` (default) means the configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 1

    def get_config(self):
        return {**super().get_config(), "padding": self.padding[0]}   # Keras's form: (before, after)


class ZeroPadding2D(_ZeroPadding):
    """Pads a 4-D input `(batch, rows, cols, channels)` with zeros around its spatial axes.

    Args:
        padding: an integer (the same amount on every side), a pair of integers
            `(rows, cols)` (symmetric per axis), or a pair of pairs
            `((top, bottom), (left, right))` (default `(1, 1)`).
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`); `None` (default) means
            the configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 2


class _UpSampling(_Spatial):
    def __init__(self, size=2, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.size = (size,) * self.rank if isinstance(size, int) else tuple(size)
        if len(self.size) != self.rank or any(not isinstance(v, int) or v < 1 for v in self.size):
            raise ValueError(f"{type(self).__name__}: size must be a positive integer or {self.rank} of them, "
                             f"got {size!r}")

    def get_config(self):
        return {**super().get_config(), "size": self.size}

    def call(self, inputs):
        self._check_rank(inputs)
        y = inputs
        for axis, s in zip(self._spatial_axes(), self.size):
            if s != 1:
                y = ops.repeat(y, s, axis=axis)
        return y

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape, lambda d, i: d * self.size[i])


class UpSampling1D(_UpSampling):
    """Upsamples a 3-D input `(batch, steps, channels)` by repeating each step `size` times.

    Args:
        size: a positive integer, the upsampling factor (default 2).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 1

    def __init__(self, size=2, **kwargs):
        # Keras's UpSampling1D has no data_format: its inputs are always (batch, steps, channels).
        _refuse_data_format("UpSampling1D", kwargs)
        super().__init__(size=size, data_format="channels_last", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        config["size"] = self.size[0]
        return config


class UpSampling2D(_UpSampling):
    """Upsamples a 4-D input `(batch, rows, cols, channels)` by repeating rows and columns.

    Args:
        size: a positive integer (used for both axes) or a pair of positive integers
            `(rows, cols)`, the upsampling factors (default `(2, 2)`).
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`); `None` (default) means
            the configured image data format.
        interpolation: only `"nearest"` (the default) is supported; other values raise a ValueError.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 2

    def __init__(self, size=(2, 2), data_format=None, interpolation="nearest", **kwargs):
        if interpolation != "nearest":
            raise ValueError(f"UpSampling2D: engine supports interpolation='nearest' only, got {interpolation!r}")
        super().__init__(size=size, data_format=data_format, **kwargs)

    def get_config(self):
        return {**super().get_config(), "interpolation": "nearest"}


class _Cropping(_Spatial):
    def __init__(self, cropping=1, data_format=None, **kwargs):
        super().__init__(data_format=data_format, **kwargs)
        self.cropping = _pairs(cropping, self.rank, type(self).__name__)

    def get_config(self):
        return {**super().get_config(), "cropping": self.cropping}

    def call(self, inputs):
        self._check_rank(inputs)
        spatial = self._spatial_axes()
        for axis, (a, b) in zip(spatial, self.cropping):
            if a + b >= inputs.shape[axis]:
                raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}): cropping {self.cropping} "
                                 f"removes every cell of axis {axis} of the input {tuple(inputs.shape)}")
        index = tuple(slice(a, inputs.shape[i] - b) for i, (a, b) in enumerate(self._per_axis(self.cropping, (0, 0))))
        return ops.math.slice_along(inputs, index)

    def compute_output_shape(self, input_shape):
        return self._output_shape(input_shape, lambda s, i: s - sum(self.cropping[i]))


class Cropping1D(_Cropping):
    """Crops a 3-D input `(batch, steps, channels)` along the steps axis.

    Args:
        cropping: an integer (the number of steps removed at both ends) or a pair
            `(before, after)` (default `(1, 1)`).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 1

    def __init__(self, cropping=(1, 1), **kwargs):
        # Keras's Cropping1D has no data_format: its inputs are always (batch, steps, channels).
        _refuse_data_format("Cropping1D", kwargs)
        super().__init__(cropping=cropping, data_format="channels_last", **kwargs)

    def get_config(self):
        config = super().get_config()
        del config["data_format"]
        config["cropping"] = self.cropping[0]
        return config


class Cropping2D(_Cropping):
    """Crops a 4-D input `(batch, rows, cols, channels)` along its spatial axes.

    Args:
        cropping: an integer (the same amount from every side), a pair of integers
            `(rows, cols)` (symmetric per axis), or a pair of pairs
            `((top, bottom), (left, right))` (default `((0, 0), (0, 0))`).
        data_format: `"channels_last"` (inputs `(batch, rows, cols, channels)`) or
            `"channels_first"` (inputs `(batch, channels, rows, cols)`); `None` (default) means
            the configured image data format.
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """

    rank = 2

    def __init__(self, cropping=((0, 0), (0, 0)), data_format=None, **kwargs):
        super().__init__(cropping=cropping, data_format=data_format, **kwargs)

register_builtins("layers", globals())  # loadable from .keras configs by class name
