"""Volumetric (3-D) layers: Conv3D, MaxPooling3D, AveragePooling3D, their global
forms, ZeroPadding3D, UpSampling3D, Cropping3D.

Conv3D and the 3-D poolings are composed from the 2-D kernels: the depth axis folds into the
batch, so each depth tap of the kernel is one 2-D convolution (on the GEMM) of the strided depth
slices, and the taps are summed; pooling pools each depth slice in 2-D, then across the depth
window.  Everything is recorded ops, so gradients come from the 2-D kernels' own.
"""
import numpy as np

from engine import activations, ops
from engine.layers.convolutional import BaseConv
from engine.layers.pooling import _GlobalPool, _Pool
from engine.layers.reshaping import _Cropping, _UpSampling, _ZeroPadding
from engine.ops import convolution as conv_ops
from engine.saving.registry import register_builtins


def _depth_windows(x, size, stride, dilation, padding, fill):
    """The depth slices each output position combines: a list (one per window tap) of
    (N, Do, ...) tensors, after padding the depth axis with `fill` as TensorFlow places it."""
    depth = x.shape[1]
    if padding == "same":
        before, after = conv_ops.same_padding(depth, size, stride, dilation)
        if before or after:
            pad = ((0, 0), (before, after)) + ((0, 0),) * (x.ndim - 2)
            x = ops.pad(x, pad, constant_values=fill)
    out = conv_ops.output_length(depth, size, stride, padding, dilation)
    if out < 1:
        raise ValueError(f"the window {size} (dilation {dilation}) is larger than the depth {depth}")
    return [x[:, a * dilation:a * dilation + (out - 1) * stride + 1:stride] for a in range(size)], out


class Conv3D(BaseConv):
    """3-D convolution of (batch, depth, rows, cols, channels) inputs by a
    (kd, kh, kw, channels, filters) kernel, as keras.layers.Conv3D.

    Args:
        filters, kernel_size, strides, padding ("valid" / "same"), dilation_rate, activation,
        use_bias, kernel_initializer, bias_initializer, kernel_regularizer, bias_regularizer,
        activity_regularizer, kernel_constraint, bias_constraint: as Keras's.
        data_format: "channels_last" (the default image data format) or "channels_first".
        groups: positive integer dividing the input channels and filters (default 1); the kernel is
            (kd, kh, kw, channels / groups, filters), as Keras's.
        lora_rank, lora_alpha: LoRA of the kernel, as Dense's (see `enable_lora`).
    """

    rank = 3
    _keras_groups_and_lora = True

    def _run(self, x, kernel, bias, activation):
        y = conv3d(x, kernel, bias, self.strides, self.padding, self.dilation_rate)
        return y if activation is None else activations.get(activation)(y)


def conv3d(x, kernel, bias, strides, padding, dilation_rate):
    """3-D convolution of (N, D, H, W, C) by (kd, kh, kw, C, F), plus bias: each depth tap is a
    2-D convolution (on the GEMM) of the strided depth slices, folded into the batch."""
    n = x.shape[0]
    taps, depth_out = _depth_windows(x, kernel.shape[0], strides[0], dilation_rate[0], padding, 0.0)
    total = None
    for a, t in enumerate(taps):
        images = ops.reshape(t, (-1,) + tuple(t.shape[2:]))
        y = conv_ops.conv2d(images, kernel[a], None, strides=strides[1:], padding=padding,
                            dilation_rate=dilation_rate[1:])
        total = y if total is None else ops.add(total, y)
    if bias is not None:
        total = ops.nn.bias_add(total, bias)
    return ops.reshape(total, (n, depth_out) + tuple(total.shape[1:]))


Convolution3D = Conv3D


class _Pool3D(_Pool):
    rank = 3

    def _pool_last(self, inputs):
        n = inputs.shape[0]
        fill = -np.inf if self.kind == "max" else 0.0
        taps, depth_out = _depth_windows(inputs, self.pool_size[0], self.strides[0], 1, self.padding, fill)
        pooled = [conv_ops.pool2d(ops.reshape(t, (-1,) + tuple(t.shape[2:])), self.kind, self.pool_size[1:],
                                  self.strides[1:], self.padding) for t in taps]
        if self.kind == "max":
            out = pooled[0]
            for p in pooled[1:]:
                out = ops.maximum(out, p)
        else:
            out = pooled[0]
            for p in pooled[1:]:
                out = ops.add(out, p)
            # Padded depth cells do not count (TensorFlow's average over the valid cells only).
            counts = self._depth_counts(inputs.shape[1], depth_out)
            out = ops.divide(ops.reshape(out, (n, depth_out) + tuple(out.shape[1:])),
                             counts.reshape((1, depth_out) + (1,) * (out.ndim - 1)).astype(out.dtype))
            return out
        return ops.reshape(out, (n, depth_out) + tuple(out.shape[1:]))

    def _depth_counts(self, depth, depth_out):
        size, stride = self.pool_size[0], self.strides[0]
        before = conv_ops.same_padding(depth, size, stride)[0] if self.padding == "same" else 0
        starts = np.arange(depth_out) * stride - before
        return (np.minimum(starts + size, depth) - np.maximum(starts, 0)).astype(np.float64)


class MaxPooling3D(_Pool3D):
    """Max pooling over (depth, rows, cols) windows, as keras.layers.MaxPooling3D.

    Args:
        pool_size, strides (default pool_size), padding ("valid" / "same"): as Keras's.
        data_format: "channels_last" (the default image data format) or "channels_first".
    """

    kind = "max"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class AveragePooling3D(_Pool3D):
    """Average pooling over (depth, rows, cols) windows (padded cells excluded), as
    keras.layers.AveragePooling3D.

    Args:
        pool_size, strides (default pool_size), padding ("valid" / "same"): as Keras's.
        data_format: "channels_last" (the default image data format) or "channels_first".
    """

    kind = "avg"

    def __init__(self, pool_size=(2, 2, 2), strides=None, padding="valid", data_format=None, **kwargs):
        super().__init__(pool_size, strides, padding, data_format, **kwargs)


class GlobalMaxPooling3D(_GlobalPool):
    """The maximum over depth, rows and cols, as keras.layers.GlobalMaxPooling3D.

    Args:
        data_format: "channels_last" (the default image data format) or "channels_first".
        keepdims: whether to keep the pooled axes, with size 1 (default False).
    """

    rank, reduce = 3, staticmethod(ops.max)


class GlobalAveragePooling3D(_GlobalPool):
    """The mean over depth, rows and cols, as keras.layers.GlobalAveragePooling3D.

    Args:
        data_format: "channels_last" (the default image data format) or "channels_first".
        keepdims: whether to keep the pooled axes, with size 1 (default False).
    """

    rank, reduce = 3, staticmethod(ops.mean)


class ZeroPadding3D(_ZeroPadding):
    """Zeros around the (depth, rows, cols) axes, as keras.layers.ZeroPadding3D.

    Args:
        padding: int, 3 ints, or 3 (before, after) pairs.
        data_format: "channels_last" (inputs (batch, depth, rows, cols, channels), the default
            image data format) or "channels_first" (inputs (batch, channels, depth, rows, cols)).
    """

    rank = 3


class UpSampling3D(_UpSampling):
    """Repeat each (depth, row, col) cell size times, as keras.layers.UpSampling3D.

    Args:
        size: int or 3 ints.
        data_format: "channels_last" (inputs (batch, depth, rows, cols, channels), the default
            image data format) or "channels_first" (inputs (batch, channels, depth, rows, cols)).
    """

    rank = 3

    def __init__(self, size=(2, 2, 2), data_format=None, **kwargs):
        super().__init__(size=size, data_format=data_format, **kwargs)


class Cropping3D(_Cropping):
    """Crop the (depth, rows, cols) axes, as keras.layers.Cropping3D.

    Args:
        cropping: int, 3 ints, or 3 (before, after) pairs.
        data_format: "channels_last" (inputs (batch, depth, rows, cols, channels), the default
            image data format) or "channels_first" (inputs (batch, channels, depth, rows, cols)).
    """

    rank = 3


MaxPool3D, AvgPool3D = MaxPooling3D, AveragePooling3D
GlobalMaxPool3D, GlobalAvgPool3D = GlobalMaxPooling3D, GlobalAveragePooling3D


register_builtins("layers", globals())  # loadable from .keras configs by class name
