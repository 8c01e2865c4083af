"""The image layout of a layer's inputs: `data_format` checking and the transposes that let the
channels_last implementations serve channels_first inputs (as Keras's backends do for layouts
their kernels lack)."""
from engine import config, ops


def standardize_data_format(data_format, layer_name):
    """'channels_last' or 'channels_first' (None is the configured image data format); ValueError
    naming the layer for anything else."""
    data_format = data_format or config.image_data_format()
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{layer_name}: data_format must be 'channels_last' or 'channels_first', "
                         f"got {data_format!r}")
    return data_format


def to_channels_last(x, data_format):
    """x (batch, channels, d1, ...) as (batch, d1, ..., channels) when data_format is channels_first."""
    if data_format != "channels_first" or x.ndim < 3:
        return x
    return ops.transpose(x, (0,) + tuple(range(2, x.ndim)) + (1,))


def from_channels_last(y, data_format):
    """The inverse of to_channels_last: y (batch, d1, ..., channels) back to (batch, channels, d1, ...)."""
    if data_format != "channels_first" or y.ndim < 3:
        return y
    return ops.transpose(y, (0, y.ndim - 1) + tuple(range(1, y.ndim - 1)))


def shape_to_channels_last(shape, data_format):
    """A shape tuple permuted as to_channels_last permutes the tensor."""
    shape = tuple(shape)
    if data_format != "channels_first" or len(shape) < 3:
        return shape
    return (shape[0],) + shape[2:] + (shape[1],)


def shape_from_channels_last(shape, data_format):
    """A shape tuple permuted as from_channels_last permutes the tensor."""
    shape = tuple(shape)
    if data_format != "channels_first" or len(shape) < 3:
        return shape
    return (shape[0], shape[-1]) + shape[1:-1]
