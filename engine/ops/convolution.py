"""Convolution and pooling ops (channels_last), each defined once with its gradient.

1-D inputs (N, L, C) run through the 2-D kernels as images of height 1.  Padding
strings are resolved here into explicit (top, bottom, left, right) amounts,
following TensorFlow: "same" gives ceil(n / stride) outputs and puts the odd
padding cell at the end; "causal" (1-D only) pads (k - 1) * dilation on the left.
"""
import numpy as np

from engine.autodiff import differentiable, is_recording
from engine.ops._util import contiguous, float_dtype_of, to_array
from engine.ops.nn import _activation, apply_activation, activation_gradient, OUTPUT_DERIVED
from engine._kernels import conv as C
from engine._kernels import bias as K
from engine._kernels import pool as P


def int_tuple(v, n, name):
    """v (an int or n ints) as a tuple of n Python ints.

    Args:
        v: an int or a sequence of n ints.
        n: the tuple's length.
        name: the argument's name, for the error.

    Returns:
        The tuple; ValueError if v has another length.
    """
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
        apply_activation(activation, out, out, {})

    def vjp(g, needs):
        g = contiguous(g, dtype)
        if activation is not None:
            g = activation_gradient(activation, None, out, g, {})
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
    """2-D convolution of (N, H, W, C) by a (kh, kw, C / groups, F) kernel, plus bias and an
    output-derived activation.

    A kernel with fewer input channels than x makes a grouped convolution (as Keras infers
    groups = C / kernel.shape[2]): input channels [g*C/groups, (g+1)*C/groups) are convolved with
    filters [g*F/groups, (g+1)*F/groups), which are output channels of the same indices.
    """
    x_arr = to_array(x)
    w_arr = to_array(kernel)
    strides = int_tuple(strides, 2, "strides")
    dilations = int_tuple(dilation_rate, 2, "dilation_rate")
    pads = resolve_pads(x_arr.shape[1:3], w_arr.shape[:2], strides, dilations, padding)
    if activation is not None and activation not in OUTPUT_DERIVED:
        raise ValueError(f"conv2d: activation {activation!r} cannot be fused; apply it separately")
    if not depthwise and x_arr.ndim == 4 and w_arr.ndim == 4 and w_arr.shape[2] != x_arr.shape[3]:
        return _grouped_conv2d(x, kernel, bias, x_arr.shape, w_arr.shape, strides, dilations, pads, activation)
    return _conv2d(x, kernel, bias, strides=strides, dilations=dilations, pads=pads, activation=activation,
                   depthwise=depthwise)


def _grouped_conv2d(x, kernel, bias, x_shape, w_shape, strides, dilations, pads, activation):
    """conv2d's grouped case (see conv2d), composed of recorded ops so the gradients are theirs."""
    from engine.ops.math import concatenate, getitem, reshape
    channels, per_group, filters = x_shape[3], w_shape[2], w_shape[3]
    if per_group < 1 or channels % per_group or filters % (channels // per_group):
        raise ValueError(f"conv: the kernel {tuple(w_shape)} takes {per_group} input channels per group, which "
                         f"must divide the input's {channels} channels (input shape {tuple(x_shape)}) into groups "
                         f"that also divide its {filters} filters; use a kernel of shape "
                         f"(kh, kw, channels / groups, filters)")
    groups = channels // per_group
    step = filters // groups
    if per_group == 1:
        # One input channel per group is a depthwise convolution with F / C filters per channel, and
        # the depthwise kernel's output order (channel-major) is the grouped one.
        depthwise = reshape(kernel, tuple(w_shape[:2]) + (channels, step))
        return _conv2d(x, depthwise, bias, strides=strides, dilations=dilations, pads=pads, activation=activation,
                       depthwise=True)
    # getitem, not x[...]: the inputs may be plain arrays a tape watches, whose views it cannot see.
    parts = [_conv2d(getitem(x, (Ellipsis, slice(g * per_group, (g + 1) * per_group))),
                     getitem(kernel, (Ellipsis, slice(g * step, (g + 1) * step))), None,
                     strides=strides, dilations=dilations, pads=pads) for g in range(groups)]
    y = concatenate(parts, axis=-1)
    if bias is not None:
        from engine.ops.nn import bias_add
        y = bias_add(y, bias)
    return y if activation is None else _activation(y, name=activation)


def _channels_last(op, inputs, data_format, ranks=(3, 4)):
    """inputs as channels_last (transposed if data_format says channels_first) and a function
    bringing a channels_last result back to the caller's layout."""
    from engine import config
    from engine.ops.math import transpose, convert_to_tensor
    data_format = config.image_data_format() if data_format is None else data_format
    if data_format not in ("channels_last", "channels_first"):
        raise ValueError(f"{op}: data_format must be 'channels_last' or 'channels_first', got {data_format!r}")
    x = inputs if hasattr(inputs, "ndim") else convert_to_tensor(inputs)
    if x.ndim not in ranks:
        spatial = ", ".join(str(r - 2) for r in ranks)
        raise ValueError(f"{op}: engine supports inputs with {spatial} spatial axes (rank {ranks}), got shape "
                         f"{tuple(x.shape)}")
    if data_format == "channels_last":
        return x, lambda y: y
    n = x.ndim
    to_last = (0,) + tuple(range(2, n)) + (1,)
    to_first = (0, n - 1) + tuple(range(1, n - 1))
    return transpose(x, to_last), lambda y: transpose(y, to_first)


def _as_2d(x, kernel):
    """A 1-D input (N, L, C) and kernel (k, C, F) as an image of height 1 and a (1, k, C, F) kernel."""
    from engine.ops.math import reshape
    x_arr, w_arr = to_array(x), to_array(kernel)
    return reshape(x, (x_arr.shape[0], 1) + x_arr.shape[1:]), reshape(kernel, (1,) + w_arr.shape)


def _one_spatial(v, name):
    return (1, int_tuple(v, 1, name)[0])


def conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """N-D convolution (1-D and 2-D here) of inputs by kernel.

    Args:
        inputs: (N, L, C) or (N, H, W, C) (channels first with data_format="channels_first").
        kernel: (k, C / groups, F) or (kh, kw, C / groups, F): a kernel with fewer input channels
            than the input makes a grouped convolution, as in Keras (groups = C / kernel.shape[-2]).
        strides, dilation_rate: ints or one per spatial axis.
        padding: "valid" or "same" ("causal" for 1-D).
        data_format: "channels_last" or "channels_first" (default config.image_data_format()).
    """
    from engine.ops.math import reshape
    x, back = _channels_last("conv", inputs, data_format)
    if x.ndim == 3:
        x2, w2 = _as_2d(x, kernel)
        y = conv2d(x2, w2, strides=_one_spatial(strides, "strides"), padding=padding,
                   dilation_rate=_one_spatial(dilation_rate, "dilation_rate"))
        return back(reshape(y, (x.shape[0], -1, to_array(kernel).shape[-1])))
    return back(conv2d(x, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate))


def depthwise_conv(inputs, kernel, strides=1, padding="valid", data_format=None, dilation_rate=1):
    """Depthwise convolution: each input channel convolved with its own filters.

    Args:
        inputs: (N, L, C) or (N, H, W, C) (channels first with data_format="channels_first").
        kernel: (k, C, M) or (kh, kw, C, M): M filters per channel, C*M output channels.
        strides, dilation_rate: ints or one per spatial axis.
        padding: "valid" or "same".
        data_format: "channels_last" or "channels_first".
    """
    from engine.ops.math import reshape
    x, back = _channels_last("depthwise_conv", inputs, data_format)
    if x.ndim == 3:
        x2, w2 = _as_2d(x, kernel)
        w = to_array(kernel)
        y = conv2d(x2, w2, strides=_one_spatial(strides, "strides"), padding=padding,
                   dilation_rate=_one_spatial(dilation_rate, "dilation_rate"), depthwise=True)
        return back(reshape(y, (x.shape[0], -1, w.shape[-2] * w.shape[-1])))
    return back(conv2d(x, kernel, strides=strides, padding=padding, dilation_rate=dilation_rate, depthwise=True))


def separable_conv(inputs, depthwise_kernel, pointwise_kernel, strides=1, padding="valid", data_format=None,
                   dilation_rate=1):
    """A depthwise convolution followed by a 1x1 (pointwise) convolution mixing the channels.

    Args:
        inputs: (N, L, C) or (N, H, W, C) (channels first with data_format="channels_first").
        depthwise_kernel: (k, C, M) or (kh, kw, C, M).
        pointwise_kernel: (1, C*M, F) or (1, 1, C*M, F).
        strides, padding, dilation_rate: of the depthwise step.
        data_format: "channels_last" or "channels_first".
    """
    x, back = _channels_last("separable_conv", inputs, data_format)
    y = depthwise_conv(x, depthwise_kernel, strides=strides, padding=padding, data_format="channels_last",
                       dilation_rate=dilation_rate)
    return back(conv(y, pointwise_kernel, strides=1, padding="valid", data_format="channels_last"))


def _transpose_pads(size, kernel, stride, dilation, padding, output_padding):
    """(before, after) padding of the stride-dilated input for a transposed convolution, and the
    output length: Keras's conventions ("valid": (n-1)*s + max(k, s), "same": n*s, or the
    explicit output_padding)."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        lo, hi = k - 1, k - 1 + extra
    elif padding == "same":
        total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
        lo = min(total // 2 + total % 2, k - 1)
        hi = total - lo
    else:
        raise ValueError(f"conv_transpose: padding must be 'valid' or 'same', got {padding!r}")
    return lo, hi


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None,
                   dilation_rate=1):
    """The transposed convolution (the gradient of conv with respect to its input), as Keras.

    Args:
        inputs: (N, L, C) or (N, H, W, C) (channels first with data_format="channels_first").
        kernel: (k, F, C) or (kh, kw, F, C): F output channels from C input channels.
        strides, dilation_rate: ints or one per spatial axis.
        padding: "valid" or "same".
        output_padding: None, or extra cells per spatial axis added after the output (less than
            the stride).
        data_format: "channels_last" or "channels_first".
    """
    from engine.ops.arrays import rearrange_with, pad
    from engine.ops.math import getitem
    x, back = _channels_last("conv_transpose", inputs, data_format)
    spatial = x.ndim - 2
    w = kernel if hasattr(kernel, "ndim") else np.asarray(kernel)
    if np.ndim(w) != spatial + 2:
        raise ValueError(f"conv_transpose: a kernel of rank {spatial + 2} is needed for inputs of shape "
                         f"{tuple(x.shape)}, got shape {np.shape(w)}")
    if np.shape(w)[-1] != x.shape[-1]:
        raise ValueError(f"conv_transpose: the kernel's last axis ({np.shape(w)[-1]}) must equal the input "
                         f"channels ({x.shape[-1]})")
    strides = int_tuple(strides, spatial, "strides")
    dilations = int_tuple(dilation_rate, spatial, "dilation_rate")
    out_pad = (None,) * spatial if output_padding is None else int_tuple(output_padding, spatial, "output_padding")
    pads = [_transpose_pads(x.shape[1 + i], np.shape(w)[i], strides[i], dilations[i], padding.lower(), out_pad[i])
            for i in range(spatial)]
    if any(s > 1 for s in strides):
        def dilate(a):
            shape = (a.shape[0],) + tuple((n - 1) * s + 1 for n, s in zip(a.shape[1:-1], strides)) + (a.shape[-1],)
            z = np.zeros(shape, a.dtype)
            z[(slice(None),) + tuple(slice(None, None, s) for s in strides)] = a
            return z
        x = rearrange_with(x, dilate)
    # Negative pads crop: pad the positive parts, then slice off the rest.
    x = pad(x, ((0, 0),) + tuple((max(lo, 0), max(hi, 0)) for lo, hi in pads) + ((0, 0),))
    crop = tuple(slice(max(-lo, 0), x.shape[1 + i] - max(-hi, 0)) for i, (lo, hi) in enumerate(pads))
    if any(lo < 0 or hi < 0 for lo, hi in pads):
        x = getitem(x, (slice(None),) + crop)
    # The kernel flipped in space with its channel axes swapped: (k..., C, F).
    space = tuple(range(spatial))
    flipped = rearrange_with(w, lambda a: np.ascontiguousarray(np.swapaxes(np.flip(a, space), -1, -2)))
    return back(conv(x, flipped, strides=1, padding="valid", data_format="channels_last",
                     dilation_rate=dilations if spatial > 1 else dilations[0]))


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
    pool = int_tuple(pool_size, 2, "pool_size")
    strides = pool if strides is None else int_tuple(strides, 2, "strides")
    pads = resolve_pads(x_arr.shape[1:3], pool, strides, (1, 1), padding)
    op = _max_pool2d if kind == "max" else _avg_pool2d
    return op(x, pool=pool, strides=strides, pads=pads)


def max_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Max pooling of 1-D or 2-D inputs.

    Args:
        inputs: (N, L, C) or (N, H, W, C) (channels first with data_format="channels_first").
        pool_size: an int or one size per spatial axis.
        strides: default pool_size.
        padding: "valid" or "same".
        data_format: "channels_last" or "channels_first".
    """
    x, back = _channels_last("max_pool", inputs, data_format)
    return back(pool_nd(x, "max", pool_size, strides, padding))


def average_pool(inputs, pool_size, strides=None, padding="valid", data_format=None):
    """Average pooling of 1-D or 2-D inputs (arguments as max_pool)."""
    x, back = _channels_last("average_pool", inputs, data_format)
    return back(pool_nd(x, "avg", pool_size, strides, padding))


def pool_nd(inputs, kind, pool_size, strides, padding):
    """Max or average pooling of channels-last 1-D (batch, steps, channels) or 2-D inputs.

    Args:
        inputs: the input tensor or array.
        kind: "max" or "avg".
        pool_size, strides: ints or tuples (strides None: the pool size).
        padding: "valid" or "same".

    Returns:
        The pooled tensor (1-D inputs go through the 2-D kernel as height 1).
    """
    from engine.ops.math import reshape
    x = to_array(inputs)
    if x.ndim == 3:
        pool = int_tuple(pool_size, 1, "pool_size")[0]
        stride = pool if strides is None else int_tuple(strides, 1, "strides")[0]
        y = pool2d(reshape(inputs, (x.shape[0], 1) + x.shape[1:]), kind, (1, pool), (1, stride), padding)
        return reshape(y, (x.shape[0], -1, x.shape[2]))
    return pool2d(inputs, kind, pool_size, strides, padding)
