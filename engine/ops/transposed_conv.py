"""Transposed convolution (keras.ops.conv_transpose), channels_last, 1-D and 2-D.

A transposed convolution is the input-gradient of a convolution: its output y is the x a
convolution of y would consume.  So the forward runs the convolution kernels' input-gradient
pass (col2im on the GEMM), and its gradients are a forward convolution (for x) and the
convolution's kernel gradient (for the kernel).  The kernel is (kh, kw, filters, channels),
Keras's layout, which is exactly the implied convolution's (kh, kw, C_in=filters, F=channels).

Output sizes follow Keras / TensorFlow: with output_padding None, "valid" gives
(n - 1) * stride + max(k, stride) and "same" gives n * stride (k the dilated kernel size);
otherwise (n - 1) * stride + k - 2 * (k // 2 if "same" else 0) + output_padding.
"""
import numpy as np

from engine.autodiff import differentiable
from engine.ops._util import contiguous, to_array
from engine.ops.convolution import int_tuple
from engine.ops.nn import apply_activation, activation_gradient, OUTPUT_DERIVED
from engine._kernels import conv as C
from engine._kernels import bias as K


def transpose_padding(kernel, stride, dilation, padding, output_padding):
    """(pad before, pad after) of the implied forward convolution along one axis, as Keras's
    JAX backend places the output (negative: that many output cells the convolution skips,
    which receive nothing)."""
    k = (kernel - 1) * dilation + 1
    if padding == "valid":
        extra = max(k, stride) - k if output_padding is None else output_padding
        before, after = k - 1, k - 1 + extra
    else:
        total = stride + k - 2 if output_padding is None else k + k % 2 - 2 + output_padding
        before = min(total // 2 + total % 2, k - 1)
        after = total - before
    # The transposed op's padding of its (dilated) input is k - 1 minus the convolution's.
    return k - 1 - before, k - 1 - after


def transpose_output_length(size, kernel, stride, dilation, padding, output_padding):
    """Keras's output length of a transposed convolution along one axis (None stays None)."""
    if size is None:
        return None
    before, after = transpose_padding(kernel, stride, dilation, padding, output_padding)
    k = (kernel - 1) * dilation + 1
    return (size - 1) * stride + k - before - after


@differentiable
def _conv2d_transpose(x, w, bias, strides=(1, 1), dilations=(1, 1), pads=(0, 0, 0, 0), crop=(0, 0, 0, 0),
                      activation=None):
    """pads: the implied convolution's (clamped to >= 0); crop: output cells past them (the
    convolution's negative pads), zero before the bias."""
    dtype = w.dtype
    xc = contiguous(x, dtype)
    n, h, wd, _ = xc.shape
    kh, kw, filters, _ = w.shape
    core_h = (h - 1) * strides[0] + (kh - 1) * dilations[0] + 1 - pads[0] - pads[1]
    core_w = (wd - 1) * strides[1] + (kw - 1) * dilations[1] + 1 - pads[2] - pads[3]
    core = np.empty((n, core_h, core_w, filters), dtype)
    C.conv2d_backward_input(xc, w, core, strides, dilations, pads)
    top, bottom, left, right = crop
    out = core if not any(crop) else np.pad(core, ((0, 0), (top, bottom), (left, right), (0, 0)))
    if bias is not None:
        K.bias_add(out, bias, out)
    if activation is not None:
        apply_activation(activation, out, out, {})

    def vjp(g, needs):
        g = contiguous(g, dtype)
        if activation is not None:
            g = activation_gradient(activation, None, out, g, {})
        gc = g if not any(crop) else np.ascontiguousarray(g[:, top:top + core_h, left:left + core_w])
        dx = dw = db = None
        if needs[0]:
            dx = C.conv2d_forward(gc, w, np.empty_like(xc), strides, dilations, pads).astype(x.dtype, copy=False)
        if needs[1]:
            dw = C.conv2d_backward_weight(gc, xc, np.empty_like(w), strides, dilations, pads)
        if needs[2]:
            db = K.bias_grad(g, np.empty_like(bias))
        return dx, dw, db
    return out, vjp


def conv2d_transpose(x, kernel, bias=None, strides=1, padding="valid", output_padding=None, dilation_rate=1,
                     activation=None):
    """2-D transposed convolution of (N, H, W, C) by a (kh, kw, filters, C) kernel, plus bias
    and an output-derived activation (engine.ops.nn.OUTPUT_DERIVED)."""
    x_arr, w_arr = to_array(x), to_array(kernel)
    if x_arr.ndim != 4 or w_arr.ndim != 4 or x_arr.shape[-1] != w_arr.shape[-1]:
        raise ValueError(f"conv_transpose: expected inputs (N, H, W, C) and a kernel (kh, kw, filters, C), got "
                         f"{x_arr.shape} and {w_arr.shape}")
    strides = int_tuple(strides, 2, "strides")
    dilations = int_tuple(dilation_rate, 2, "dilation_rate")
    padding = padding.lower()
    if padding not in ("valid", "same"):
        raise ValueError(f"conv_transpose: padding must be 'valid' or 'same', got {padding!r}")
    out_pad = (None, None) if output_padding is None else int_tuple(output_padding, 2, "output_padding")
    for op, s, d in zip(out_pad, strides, dilations):
        if op is not None and op >= max(s, d):
            raise ValueError(f"conv_transpose: output_padding {output_padding} must be smaller than the stride "
                             f"{strides} (or the dilation {dilations}) along each axis")
    (pt, pb), (pl, pr) = (transpose_padding(k, s, d, padding, op)
                          for k, s, d, op in zip(w_arr.shape[:2], strides, dilations, out_pad))
    pads = (max(pt, 0), max(pb, 0), max(pl, 0), max(pr, 0))
    crop = (max(-pt, 0), max(-pb, 0), max(-pl, 0), max(-pr, 0))
    if activation is not None and activation not in OUTPUT_DERIVED:
        raise ValueError(f"conv_transpose: activation {activation!r} cannot be fused; apply it separately")
    return _conv2d_transpose(x, kernel, bias, strides=strides, dilations=dilations, pads=pads, crop=crop,
                             activation=activation)


def conv_transpose(inputs, kernel, strides=1, padding="valid", output_padding=None, data_format=None,
                   dilation_rate=1):
    """Transposed convolution, as keras.ops.conv_transpose.

    1-D and 2-D channels_last inputs run the col2im kernel path here; 3-D inputs and
    channels_first go to engine.ops.convolution's general definition (the same op composed of
    scatter-adds, which the tests also check this path against).

    Args:
        inputs: (N, L, C) or (N, H, W, C) tensor.
        kernel: (k, filters, C) or (kh, kw, filters, C) tensor.
        strides: int or tuple: the upsampling factor.
        padding: "valid" or "same".
        output_padding: None or int / tuple: extra cells at the end of each axis (< stride).
        data_format: None, "channels_last" or "channels_first".
        dilation_rate: int or tuple.

    Returns:
        (N, L', filters) or (N, H', W', filters) tensor.
    """
    from engine.ops.math import reshape
    x = to_array(inputs)
    if data_format not in (None, "channels_last") or x.ndim not in (3, 4):
        from engine.ops.convolution import conv_transpose as general
        return general(inputs, kernel, strides=strides, padding=padding, output_padding=output_padding,
                       data_format=data_format, dilation_rate=dilation_rate)
    if x.ndim != 3:
        return conv2d_transpose(inputs, kernel, strides=strides, padding=padding, output_padding=output_padding,
                                dilation_rate=dilation_rate)
    w = to_array(kernel)
    one = lambda v: (1, int_tuple(v, 1, "value")[0])  # noqa: E731  (1-D as an image of height 1)
    y = conv2d_transpose(reshape(inputs, (x.shape[0], 1) + x.shape[1:]), reshape(kernel, (1,) + w.shape),
                         strides=one(strides), padding=padding,
                         output_padding=None if output_padding is None else (0, int_tuple(output_padding, 1, "x")[0]),
                         dilation_rate=one(dilation_rate))
    return reshape(y, (x.shape[0], y.shape[2], y.shape[3]))
