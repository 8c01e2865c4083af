"""Transposed convolution layers: Conv1DTranspose, Conv2DTranspose (channels_first inputs are
transposed around the channels_last kernels)."""

from engine import activations, ops
from engine.layers.convolutional import BaseConv, layer_int_tuple
from engine.ops import transposed_conv as ct_ops
from engine.saving.registry import register_builtins


class _ConvTranspose(BaseConv):
    """What the transposed convolutions add to the convolution layers: output_padding, the
    (k..., filters, in_channels) kernel and Keras's output sizes."""

    def __init__(self, filters, kernel_size, strides=1, padding="valid", output_padding=None, data_format=None,
                 dilation_rate=1, activation=None, use_bias=True, kernel_initializer="glorot_uniform",
                 bias_initializer="zeros", kernel_regularizer=None, bias_regularizer=None, activity_regularizer=None,
                 kernel_constraint=None, bias_constraint=None, **kwargs):
        super().__init__(filters, kernel_size, strides=strides, padding=padding, data_format=data_format,
                         dilation_rate=dilation_rate, activation=activation, use_bias=use_bias,
                         kernel_initializer=kernel_initializer, bias_initializer=bias_initializer,
                         kernel_regularizer=kernel_regularizer, bias_regularizer=bias_regularizer,
                         activity_regularizer=activity_regularizer, kernel_constraint=kernel_constraint,
                         bias_constraint=bias_constraint, **kwargs)
        if self.padding not in ("valid", "same"):
            raise ValueError(f"{type(self).__name__}: padding must be 'valid' or 'same', got {padding!r}")
        self.output_padding = None if output_padding is None else layer_int_tuple(output_padding, self.rank,
                                                                         "output_padding", self, minimum=0)
        for op, s, d in zip(self.output_padding or (), self.strides, self.dilation_rate):
            if op >= max(s, d):
                raise ValueError(f"{type(self).__name__}: output_padding {self.output_padding} must be smaller than "
                                 f"the strides {self.strides} (or dilation_rate {self.dilation_rate}) on each axis")

    def _check_last(self, shape):
        # The convolution's checks (rank, channels), without its "kernel larger than a valid
        # input" one: a transposed convolution grows its input, so any size is fine.
        if isinstance(shape, tuple) and len(shape) == self.rank + 2:
            shape = shape[:1] + (None,) * self.rank + shape[-1:]
        super()._check_last(shape)

    def _kernel_shape(self, in_channels):
        return self.kernel_size + (self.filters, in_channels)

    def _run(self, x, kernel, bias, activation):
        pad2 = None if self.output_padding is None else self._as_2d_pad(self.output_padding)
        if self.rank == 1:
            n, steps, channels = x.shape
            y = ct_ops.conv2d_transpose(ops.reshape(x, (n, 1, steps, channels)),
                                        ops.reshape(kernel, (1,) + tuple(kernel.shape)), bias,
                                        strides=self._as_2d(self.strides), padding=self.padding,
                                        output_padding=pad2, dilation_rate=self._as_2d(self.dilation_rate),
                                        activation=activation)
            return ops.reshape(y, (n, y.shape[2], y.shape[3]))
        return ct_ops.conv2d_transpose(x, kernel, bias, strides=self.strides, padding=self.padding,
                                       output_padding=pad2, dilation_rate=self.dilation_rate, activation=activation)

    def _as_2d_pad(self, values):
        return values if self.rank == 2 else (0,) + tuple(values)

    def _output_shape_last(self, input_shape):
        pads = self.output_padding or (None,) * self.rank
        spatial = tuple(ct_ops.transpose_output_length(s, k, st, d, self.padding, op)
                        for s, k, st, d, op in zip(input_shape[1:-1], self.kernel_size, self.strides,
                                                   self.dilation_rate, pads))
        return (input_shape[0],) + spatial + (self.filters,)

    def get_config(self):
        config = super().get_config()
        config["output_padding"] = self.output_padding
        return config


class Conv1DTranspose(_ConvTranspose):
    """1-D transposed convolution ("deconvolution") of (batch, steps, channels) inputs, as
    keras.layers.Conv1DTranspose; kernel (kernel_size, filters, channels).

    Args:
        as Conv2DTranspose.
    """

    rank = 1


class Conv2DTranspose(_ConvTranspose):
    """2-D transposed convolution ("deconvolution") of (batch, rows, cols, channels) inputs, as
    keras.layers.Conv2DTranspose; kernel (kh, kw, filters, channels).

    Args:
        filters, kernel_size, strides, padding ("valid" / "same"), output_padding, data_format,
        dilation_rate, activation, use_bias, kernel_initializer, bias_initializer,
        kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
        bias_constraint: as Keras's.
    """

    rank = 2


class Conv3DTranspose(_ConvTranspose):
    """3-D transposed convolution of (batch, depth, rows, cols, channels) inputs, as
    keras.layers.Conv3DTranspose; kernel (kd, kh, kw, filters, channels).  Each depth tap is a
    2-D transposed convolution of the depth slices (on the GEMM); the taps land on the output
    depth at stride / dilation spacing and are summed.

    Args:
        filters, kernel_size, strides, padding ("valid" / "same"), output_padding, data_format,
        dilation_rate, activation, use_bias, kernel_initializer, bias_initializer,
        kernel_regularizer, bias_regularizer, activity_regularizer, kernel_constraint,
        bias_constraint: as Keras's.
    """

    rank = 3

    def _run(self, x, kernel, bias, activation):
        n, depth = x.shape[:2]
        kd, s, d = self.kernel_size[0], self.strides[0], self.dilation_rate[0]
        op = None if self.output_padding is None else self.output_padding[0]
        before, after = ct_ops.transpose_padding(kd, s, d, self.padding, op)
        full = (depth - 1) * s + (kd - 1) * d + 1
        images = ops.reshape(x, (n * depth,) + tuple(x.shape[2:]))
        total = None
        for a in range(kd):
            y = ct_ops.conv2d_transpose(images, kernel[a], None, strides=self.strides[1:], padding=self.padding,
                                        output_padding=None if op is None else self.output_padding[1:],
                                        dilation_rate=self.dilation_rate[1:])
            y = ops.reshape(y, (n, depth) + tuple(y.shape[1:]))
            if s > 1:          # slices s apart along depth: interleave s - 1 zero slices
                y = ops.stack([y] + [ops.zeros(tuple(y.shape), y.dtype)] * (s - 1), axis=2)
                y = ops.reshape(y, (n, depth * s) + tuple(y.shape[3:]))[:, :(depth - 1) * s + 1]
            lead, tail = a * d, full - a * d - y.shape[1]
            y = ops.pad(y, ((0, 0), (lead, tail)) + ((0, 0),) * (y.ndim - 2))
            total = y if total is None else ops.add(total, y)
        # The implied convolution's padding: `before` cells cut at the front, `after` at the end
        # (a negative `after` adds cells that receive nothing).
        total = total[:, before:full - max(after, 0)]
        if after < 0:
            total = ops.pad(total, ((0, 0), (0, -after)) + ((0, 0),) * (total.ndim - 2))
        if bias is not None:
            total = ops.nn.bias_add(total, bias)
        if activation is not None:
            total = activations.get(activation)(total)
        return total


Convolution1DTranspose = Conv1DTranspose
Convolution2DTranspose = Conv2DTranspose
Convolution3DTranspose = Conv3DTranspose


register_builtins("layers", globals())  # loadable from .keras configs by class name
