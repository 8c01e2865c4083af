"""Ops that cut tensors into patches or blocks and put them back: unfold / fold (im2col and
its transpose), depth_to_space / space_to_depth, extract_sequences, and adaptive pooling.

unfold is a pure gather (one `_rearrange` op); fold, its transpose, is the scatter-add of
the same index map, with unfold as its gradient.
"""
import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.ops._checks import positive_int
from engine.ops import math as m
from engine.ops.arrays import operand_tensor, rearrange_with


def _pair(op, name, v, allow_zero=False):
    vals = (v, v) if isinstance(v, (int, np.integer)) else tuple(v)
    if len(vals) != 2:
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {v!r}")
    return tuple(positive_int(op, name, int(a), allow_zero=allow_zero) for a in vals)


def _unfold_index(channels, size, kernel, dilation, padding, stride, op):
    """For an (C, H, W) image, the flat indices into its zero-padded (C, H+2pH, W+2pW) copy of
    every (C, kH, kW) block, arranged (C*kH*kW, L); and the padded size."""
    (h, w), (kh, kw), (dh, dw), (ph, pw), (sh, sw) = size, kernel, dilation, padding, stride
    hp, wp = h + 2 * ph, w + 2 * pw
    nh = (hp - dh * (kh - 1) - 1) // sh + 1
    nw = (wp - dw * (kw - 1) - 1) // sw + 1
    if nh <= 0 or nw <= 0:
        raise ValueError(f"{op}: a {kh}x{kw} kernel with dilation {(dh, dw)} does not fit an image of "
                         f"size {(h, w)} padded by {(ph, pw)}")
    rows = (np.arange(kh) * dh)[:, None, None, None] + (np.arange(nh) * sh)[None, None, :, None]
    cols = (np.arange(kw) * dw)[None, :, None, None] + (np.arange(nw) * sw)[None, None, None, :]
    spatial = rows * wp + cols                                   # (kh, kw, nh, nw)
    index = np.arange(channels)[:, None, None, None, None] * (hp * wp) + spatial[None]
    return index.reshape(channels * kh * kw, nh * nw), (hp, wp)


def unfold(x, kernel_size, dilation=1, padding=0, stride=1):
    """The sliding (kH, kW) blocks of the (N, C, H, W) images, as columns (im2col).

    Args:
        x: (N, C, H, W) tensor.
        kernel_size, dilation, padding, stride: ints or pairs (padding: zeros on both sides).

    Returns:
        (N, C*kH*kW, L), L the number of block positions, channel-major as in PyTorch.
    """
    x = operand_tensor(x)
    if x.ndim != 4:
        raise ValueError(f"unfold: x must be 4-D (N, C, H, W), got shape {x.shape}")
    kernel = _pair("unfold", "kernel_size", kernel_size)
    dil = _pair("unfold", "dilation", dilation)
    pad = _pair("unfold", "padding", padding, allow_zero=True)
    st = _pair("unfold", "stride", stride)
    index, _ = _unfold_index(x.shape[1], x.shape[2:], kernel, dil, pad, st, "unfold")

    def gather(a):
        padded = np.pad(a, ((0, 0), (0, 0), (pad[0], pad[0]), (pad[1], pad[1])))
        return padded.reshape(a.shape[0], -1)[:, index]
    return rearrange_with(x, gather)


@differentiable
def _fold(x, index=None, padded=None, channels=None, crop=None):
    n = x.shape[0]
    out = np.zeros((n, channels * padded[0] * padded[1]), dtype=x.dtype)
    for b in range(n):
        np.add.at(out[b], index, x[b])
    out = out.reshape(n, channels, padded[0], padded[1])
    (ph, pw) = crop
    out = np.ascontiguousarray(out[:, :, ph:padded[0] - ph, pw:padded[1] - pw])

    def vjp(g, needs):
        gp = np.pad(g, ((0, 0), (0, 0), (ph, ph), (pw, pw))).reshape(n, -1)
        return (gp[:, index].astype(x.dtype),)
    return out, vjp


def fold(x, output_size, kernel_size, dilation=1, padding=0, stride=1):
    """The blocks (columns) of unfold summed back into (N, C, oH, oW) images (overlaps add up).

    Args:
        x: (N, C*kH*kW, L) tensor.
        output_size: (oH, oW), the image size.
        kernel_size, dilation, padding, stride: as given to unfold.
    """
    x = operand_tensor(x)
    if x.ndim != 3:
        raise ValueError(f"fold: x must be 3-D (N, C*kH*kW, L), got shape {x.shape}")
    size = _pair("fold", "output_size", output_size)
    kernel = _pair("fold", "kernel_size", kernel_size)
    dil = _pair("fold", "dilation", dilation)
    pad = _pair("fold", "padding", padding, allow_zero=True)
    st = _pair("fold", "stride", stride)
    if x.shape[1] % (kernel[0] * kernel[1]):
        raise ValueError(f"fold: axis 1 of shape {x.shape} must be a multiple of kH*kW = {kernel[0] * kernel[1]}")
    channels = x.shape[1] // (kernel[0] * kernel[1])
    index, padded = _unfold_index(channels, size, kernel, dil, pad, st, "fold")
    if index.shape[1] != x.shape[2]:
        raise ValueError(f"fold: {x.shape[2]} blocks given, but output_size {size} with these settings has "
                         f"{index.shape[1]}")
    if x.dtype.kind != "f":
        x = m.cast(x, config.floatx())
    return _fold(x, index=index, padded=padded, channels=channels, crop=pad)


def _data_format(data_format):
    data_format = config.image_data_format() if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    return data_format


def _block_args(op, x, block_size, data_format):
    """The checked arguments of depth_to_space / space_to_depth: the tensor, the block size,
    whether channels come last, and (N, H, W, C)."""
    x = operand_tensor(x)
    b = positive_int(op, "block_size", block_size)
    if x.ndim != 4:
        raise ValueError(f"{op}: x must be 4-D, got shape {x.shape}")
    last = _data_format(data_format) == "channels_last"
    return x, b, last, (x.shape if last else (x.shape[0], x.shape[2], x.shape[3], x.shape[1]))


def depth_to_space(x, block_size, data_format="channels_last"):
    """Channels moved into (block_size x block_size) spatial blocks (pixel shuffle): (N, H, W, C)
    becomes (N, H*b, W*b, C / b**2)."""
    x, b, last, (n, h, w, c) = _block_args("depth_to_space", x, block_size, data_format)
    if c % (b * b):
        raise ValueError(f"depth_to_space: {c} channels are not divisible by block_size**2 = {b * b}")
    nc = c // (b * b)
    if last:
        y = m.transpose(m.reshape(x, (n, h, w, b, b, nc)), (0, 1, 3, 2, 4, 5))
        return m.reshape(y, (n, h * b, w * b, nc))
    y = m.transpose(m.reshape(x, (n, nc, b, b, h, w)), (0, 1, 4, 2, 5, 3))
    return m.reshape(y, (n, nc, h * b, w * b))


def space_to_depth(x, block_size, data_format="channels_last"):
    """(block_size x block_size) spatial blocks moved into channels (the inverse of
    depth_to_space): (N, H, W, C) becomes (N, H/b, W/b, C*b**2)."""
    x, b, last, (n, h, w, c) = _block_args("space_to_depth", x, block_size, data_format)
    if h % b or w % b:
        raise ValueError(f"space_to_depth: height {h} and width {w} must be divisible by block_size {b}")
    if last:
        y = m.transpose(m.reshape(x, (n, h // b, b, w // b, b, c)), (0, 1, 3, 2, 4, 5))
        return m.reshape(y, (n, h // b, w // b, c * b * b))
    y = m.transpose(m.reshape(x, (n, c, h // b, b, w // b, b)), (0, 1, 3, 5, 2, 4))
    return m.reshape(y, (n, c * b * b, h // b, w // b))


def extract_sequences(x, sequence_length, sequence_stride):
    """Frames of `sequence_length` samples every `sequence_stride` samples along the last axis:
    (..., L) becomes (..., frames, sequence_length)."""
    x = operand_tensor(x)
    length = positive_int("extract_sequences", "sequence_length", sequence_length)
    stride = positive_int("extract_sequences", "sequence_stride", sequence_stride)
    if x.ndim == 0 or x.shape[-1] < length:
        raise ValueError(f"extract_sequences: the last axis of shape {x.shape} is shorter than "
                         f"sequence_length {length}")
    frames = (x.shape[-1] - length) // stride + 1
    index = np.arange(frames)[:, None] * stride + np.arange(length)[None, :]
    return rearrange_with(x, lambda a: a[..., index])


def _adaptive_windows(size, out):
    """PyTorch's adaptive windows: [floor(i*size/out), ceil((i+1)*size/out)) for each output i."""
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive_pool(op, inputs, output_size, data_format, reduce):
    x = operand_tensor(inputs)
    spatial = x.ndim - 2
    if spatial not in (1, 2, 3):
        raise ValueError(f"{op}: inputs must be 3-D, 4-D or 5-D (batch, spatial..., channels), got shape {x.shape}")
    sizes = (output_size,) * spatial if isinstance(output_size, (int, np.integer)) else tuple(output_size)
    if len(sizes) != spatial:
        raise ValueError(f"{op}: output_size {output_size!r} must give {spatial} sizes for inputs of shape {x.shape}")
    sizes = tuple(positive_int(op, "output_size", int(s)) for s in sizes)
    first = _data_format(data_format) == "channels_first"
    axes = list(range(2, x.ndim)) if first else list(range(1, x.ndim - 1))
    # One spatial axis at a time: a rectangle's mean (or max) is the mean (max) of its rows' means.
    for axis, out in zip(axes, sizes):
        lead = (slice(None),) * axis
        pieces = [reduce(m.getitem(x, lead + (slice(lo, hi),)), axis=axis, keepdims=True)
                  for lo, hi in _adaptive_windows(x.shape[axis], out)]
        x = m.concatenate(pieces, axis=axis)
    return x


def adaptive_average_pool(inputs, output_size, data_format=None):
    """Average pooling to a fixed output size: each output averages its window
    [floor(i*n/out), ceil((i+1)*n/out)) along each spatial axis.

    Args:
        inputs: (batch, spatial..., channels) (or channels first) with 1 to 3 spatial axes.
        output_size: an int or one size per spatial axis.
        data_format: "channels_last" or "channels_first" (default config.image_data_format()).
    """
    return _adaptive_pool("adaptive_average_pool", inputs, output_size, data_format, m.mean)


def adaptive_max_pool(inputs, output_size, data_format=None):
    """Max pooling to a fixed output size (windows as adaptive_average_pool)."""
    return _adaptive_pool("adaptive_max_pool", inputs, output_size, data_format, m.max)


__all__ = ["unfold", "fold", "depth_to_space", "space_to_depth", "extract_sequences", "adaptive_average_pool",
           "adaptive_max_pool"]
