"""Adaptive pooling layers (AdaptiveAveragePooling1D/2D/3D, AdaptiveMaxPooling1D/2D/3D), as
keras.layers': pooling to a fixed output size whatever the input's spatial size."""
import numpy as np

from engine import ops
from engine.layers._layout import standardize_data_format
from engine.layers.base import Layer


class _AdaptivePool(Layer):
    rank = 2
    reduce = None

    def __init__(self, output_size, data_format=None, **kwargs):
        super().__init__(**kwargs)
        name = type(self).__name__
        sizes = (output_size,) * self.rank if isinstance(output_size, (int, np.integer)) else output_size
        if not isinstance(sizes, (tuple, list)) or len(sizes) != self.rank or any(
                isinstance(s, bool) or not isinstance(s, (int, np.integer)) or s < 1 for s in sizes):
            raise ValueError(f"{name}: output_size must be a positive integer or {self.rank} of them, "
                             f"got {output_size!r}")
        self.output_size = tuple(int(s) for s in sizes)
        self.data_format = standardize_data_format(data_format, name)

    def call(self, inputs):
        if inputs.ndim != self.rank + 2:
            raise ValueError(f"Layer \"{self.name}\" ({type(self).__name__}) expects inputs of rank {self.rank + 2}, "
                             f"got shape {tuple(inputs.shape)}")
        return type(self).reduce(inputs, self.output_size, data_format=self.data_format)

    def compute_output_shape(self, input_shape):
        if self.data_format == "channels_first":
            return (input_shape[0], input_shape[1]) + self.output_size
        return (input_shape[0],) + self.output_size + (input_shape[-1],)

    def get_config(self):
        return {**super().get_config(), "output_size": self.output_size, "data_format": self.data_format}


_DOC = """{kind} pooling of {what} to a fixed output size, as keras.layers.{name}.

    Output cell i of an axis of size n {verb} the input window [floor(i*n/out), ceil((i+1)*n/out)).

    Args:
        output_size: {size_doc}
        data_format: "channels_last" (inputs {last}, the default image data format) or
            "channels_first" (inputs {first}).
        **kwargs: base layer keyword arguments, such as `name` and `dtype`.
    """
_SHAPES = {1: ("(batch, steps, channels)", "(batch, channels, steps)", "sequences"),
           2: ("(batch, rows, cols, channels)", "(batch, channels, rows, cols)", "images"),
           3: ("(batch, depth, rows, cols, channels)", "(batch, channels, depth, rows, cols)", "volumes")}


def _make(name, rank, reduce, kind, verb):
    last, first, what = _SHAPES[rank]
    size_doc = "a positive integer" if rank == 1 else f"a positive integer (every axis) or {rank} of them"
    doc = _DOC.format(kind=kind, what=what, name=name, verb=verb, size_doc=size_doc, last=last, first=first)
    return type(name, (_AdaptivePool,), {"rank": rank, "reduce": staticmethod(reduce), "__doc__": doc,
                                          "__module__": __name__})


AdaptiveAveragePooling1D = _make("AdaptiveAveragePooling1D", 1, ops.adaptive_average_pool, "Average", "averages")
AdaptiveAveragePooling2D = _make("AdaptiveAveragePooling2D", 2, ops.adaptive_average_pool, "Average", "averages")
AdaptiveAveragePooling3D = _make("AdaptiveAveragePooling3D", 3, ops.adaptive_average_pool, "Average", "averages")
AdaptiveMaxPooling1D = _make("AdaptiveMaxPooling1D", 1, ops.adaptive_max_pool, "Max", "is the maximum of")
AdaptiveMaxPooling2D = _make("AdaptiveMaxPooling2D", 2, ops.adaptive_max_pool, "Max", "is the maximum of")
AdaptiveMaxPooling3D = _make("AdaptiveMaxPooling3D", 3, ops.adaptive_max_pool, "Max", "is the maximum of")
