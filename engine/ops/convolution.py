"""Convolution and pooling ops (channels_last), each defined once with its gradient.

1-D inputs (N, L, C) run through the 2-D kernels as images of height 1.  Padding
strings are resolved here into explicit (top, bottom, left, right) amounts,
following TensorFlow: "same" gives ceil(n / stride) outputs and puts the odd
padding cell at the end; "causal" (1-D only) pads (k - 1) * dilation on the left.
"""
import numpy as np

from engine.autodiff import differentiable, is_recording
from engine.ops._util import contiguous, float_dtype_of, to_array
from engine.ops.nn import _apply_activation, _activation_grad, OUTPUT_DERIVED
from engine._kernels import conv as C
from engine._kernels import elementwise as K
from engine._kernels import pool as P


def _tuple(v, n, name):
    if isinstance(v, (int, np.integer)):
        return (int(v),) * n
    v = tuple(int(a) for a in v)
    if len(v) != n:
        raise ValueError(f"{name} must be an int or a tuple of {n} ints, got {v}")
    return v


def same_padding(size, kernel, stride, dilation=1):
    """TensorFlow's "same" split of the padding along one axis: (before, after)."""
    if size is None:
        return None
    out = -(-size // stride)
    total = max((out - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    return total // 2, total - total // 2


def output_length(size, kernel, stride, padding, dilation=1):
    """Output size along one axis for a padding mode (None stays None)."""
    if size is None:
        return None
    if padding in ("same",):
        return -(-size // stride)
    if padding == "causal":
        return -(-size // stride)
    return (size - ((kernel - 1) * dilation + 1)) // stride + 1


def resolve_pads(spatial, kernel, strides, dilations, padding):
    """(top, bottom, left, right) for the spatial size (h, w) of a 2-D op."""
    padding = padding.lower()
    if padding == "valid":
        return (0, 0, 0, 0)
    if padding == "same":
        top, bottom = same_padding(spatial[0], kernel[0], strides[0], dilations[0])
        left, right = same_padding(spatial[1], kernel[1], strides[1], dilations[1])
        return (top, bottom, left, right)
    if padding == "causal":
        return (0, 0, (kernel[1] - 1) * dilations[1], 0)
    raise ValueError(f"padding must be 'valid', 'same' or 'causal', got {padding!r}")


def _out_shape(x_shape, kernel, strides, dilations, pads, channels):
    n, h, w = x_shape[:3]
    ho = (h + pads[0] + pads[1] - ((kernel[0] - 1) * dilations[0] + 1)) // strides[0] + 1
    wo = (w + pads[2] + pads[3] - ((kernel[1] - 1) * dilations[1] + 1)) // strides[1] + 1
    if ho < 1 or wo < 1:
        raise ValueError(f"the window {kernel} (dilation {dilations}) is larger than the padded input {x_shape}")
    return (n, ho, wo, channels)


@differentiable
def _conv2d(x, w, bias, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), activation=None, depthwise=False):
    dtype = w.dtype
    xc = contiguous(x, dtype)
    channels = w.shape[2] * w.shape[3] if depthwise else w.shape[3]
    out = np.empty(_out_shape(xc.shape, w.shape[:2], strides, dilations, pads, channels), dtype)
    forward = C.depthwise_conv2d_forward if depthwise else C.conv2d_forward
    forward(xc, w, out, strides, dilations, pads)
    if bias is not None:
        K.bias_add(out, bias, out)
    if activation is not None:
        _apply_activation(activation, out, out, {})

    def vjp(g, needs):
        g = contiguous(g, dtype)
        if activation is not None:
            g = _activation_grad(activation, None, out, g, {})
        dx = dw = db = None
        if needs[0]:
            back = C.depthwise_conv2d_backward_input if depthwise else C.conv2d_backward_input
            dx = back(g, w, np.empty_like(xc), strides, dilations, pads).astype(x.dtype, copy=False)
        if needs[1]:
            back = C.depthwise_conv2d_backward_weight if depthwise else C.conv2d_backward_weight
            dw = back(xc, g, np.empty_like(w), strides, dilations, pads)
        if needs[2]:
            db = K.bias_grad(g, np.empty_like(bias))
        return dx, dw, db
    return out, vjp


def conv2d(x, kernel, bias=None, strides=1, padding="valid", dilation_rate=1, activation=None, depthwise=False):
    """2-D convolution of (N, H, W, C) by a (kh, kw, C, F) kernel, plus bias and an output-derived activation."""
    x_arr = to_array(x)
    w_arr = to_array(kernel)
    strides = _tuple(strides, 2, "strides")
    dilations = _tuple(dilation_rate, 2, "dilation_rate")
    pads = resolve_pads(x_arr.shape[1:3], w_arr.shape[:2], strides, dilations, padding)
    if activation is not None and activation not in OUTPUT_DERIVED:
        raise ValueError(f"conv2d: activation {activation!r} cannot be fused; apply it separately")
    return _conv2d(x, kernel, bias, strides=strides, dilations=dilations, pads=pads, activation=activation,
                   depthwise=depthwise)


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """keras.ops.conv for 1-D and 2-D channels_last inputs."""
    from engine.ops.math import reshape
    x = to_array(inputs)
    if x.ndim == 3:
        w = to_array(kernel)
        pads_mode = padding
        y = conv2d(reshape(inputs, (x.shape[0], 1) + x.shape[1:]), reshape(kernel, (1,) + w.shape),
                   strides=(1, _tuple(strides, 1, "strides")[0]), padding=pads_mode,
                   dilation_rate=(1, _tuple(dilation_rate, 1, "dilation_rate")[0]))
        return reshape(y, (x.shape[0], -1, w.shape[-1]))
    return conv2d(inputs, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate)


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    return conv2d(inputs, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate, depthwise=True)


# -- pooling ------------------------------------------------------------------------------------
@differentiable
def _max_pool2d(x, pool=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0)):
    xc = contiguous(x, float_dtype_of(x))
    out = np.empty(_out_shape(xc.shape, pool, strides, (1, 1), pads, xc.shape[3]), xc.dtype)
    # Where each maximum came from is needed only to train.
    argmax = np.empty(out.shape, np.int32) if is_recording() else None
    P.max_pool2d_forward(xc, out, argmax, pool, strides, pads)

    def vjp(g, needs):
        return (P.max_pool2d_backward(contiguous(g, xc.dtype), argmax, np.empty_like(xc), pool, strides, pads),)
    return out, vjp


@differentiable
def _avg_pool2d(x, pool=(2, 2), strides=(2, 2), pads=(0, 0, 0, 0)):
    xc = contiguous(x, float_dtype_of(x))
    out = np.empty(_out_shape(xc.shape, pool, strides, (1, 1), pads, xc.shape[3]), xc.dtype)
    P.avg_pool2d_forward(xc, out, pool, strides, pads)

    def vjp(g, needs):
        return (P.avg_pool2d_backward(contiguous(g, xc.dtype), np.empty_like(xc), pool, strides, pads),)
    return out, vjp


def pool2d(x, kind, pool_size, strides=None, padding="valid"):
    x_arr = to_array(x)
    pool = _tuple(pool_size, 2, "pool_size")
    strides = pool if strides is None else _tuple(strides, 2, "strides")
    pads = resolve_pads(x_arr.shape[1:3], pool, strides, (1, 1), padding)
    op = _max_pool2d if kind == "max" else _avg_pool2d
    return op(x, pool=pool, strides=strides, pads=pads)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool_nd(inputs, "max", pool_size, strides, padding)


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    return _pool_nd(inputs, "avg", pool_size, strides, padding)


def _pool_nd(inputs, kind, pool_size, strides, padding):
    from engine.ops.math import reshape
    x = to_array(inputs)
    if x.ndim == 3:
        pool = _tuple(pool_size, 1, "pool_size")[0]
        stride = pool if strides is None else _tuple(strides, 1, "strides")[0]
        y = pool2d(reshape(inputs, (x.shape[0], 1) + x.shape[1:]), kind, (1, pool), (1, stride), padding)
        return reshape(y, (x.shape[0], -1, x.shape[2]))
    return pool2d(inputs, kind, pool_size, strides, padding)
