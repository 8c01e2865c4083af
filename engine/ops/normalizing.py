"""Statistics-based ops of keras.ops.nn: moments, batch / layer / RMS normalization, L_p
normalization and PSNR, composed of recorded ops (their gradients follow from those)."""
import numpy as np

from engine import config
from engine.dtypes import result_type
from engine.ops._checks import axis_arg
from engine.ops._util import to_array
from engine.ops import math as m
from engine.ops.arrays import operand_tensor


def _compute_tensor(x):
    """x in at least float32, as Keras computes normalizations."""
    x = operand_tensor(x)
    dtype = result_type(x.dtype, "float32")
    return m.cast(x, dtype) if x.dtype != dtype else x


def _axes(op, axes, ndim):
    axes = axis_arg(op, axes, ndim, allow_none=False)
    return axes if isinstance(axes, tuple) else (axes,)


def moments(x, axes, keepdims=False, synchronized=False):
    """The mean and variance of x over `axes`.

    Args:
        x: input tensor (integers give floatx statistics).
        axes: an int or a sequence of ints.
        keepdims: keep the reduced axes with size 1.
        synchronized: whether the statistics are reduced across the processes of a distributed
            run.  That cross-process reduction belongs to engine.distribution (the MPI work,
            not done here); within one process, the only place engine runs today, the
            synchronized and the local statistics are the same numbers.

    Returns:
        (mean, variance).
    """
    x = operand_tensor(x)
    if x.dtype.kind != "f":
        x = m.cast(x, result_type(x.dtype, float))
    axes = _axes("moments", axes, x.ndim)
    mean = m.mean(x, axis=axes, keepdims=True)
    variance = m.mean(m.square(m.subtract(x, mean)), axis=axes, keepdims=keepdims)
    return (mean if keepdims else m.squeeze(mean, axis=axes)), variance


def batch_normalization(x, mean, variance, axis, offset=None, scale=None, epsilon=1e-3):
    """(x - mean) / sqrt(variance + epsilon) * scale + offset, the statistics given per channel.

    Args:
        x: input tensor.
        mean, variance: 1-D tensors with one value per entry of `axis`.
        axis: the channel axis.
        offset: optional 1-D shift (beta).
        scale: optional 1-D scale (gamma).
        epsilon: added to the variance.
    """
    x = operand_tensor(x)
    axis = axis_arg("batch_normalization", axis, x.ndim, allow_none=False, allow_tuple=False)
    shape = [1] * x.ndim
    shape[axis] = x.shape[axis]

    def per_channel(name, v):
        v = operand_tensor(v)
        if v.shape not in ((x.shape[axis],), tuple(shape)):
            raise ValueError(f"batch_normalization: {name} of shape {v.shape} must have one value per "
                             f"entry of axis {axis} of x (shape {x.shape})")
        return m.reshape(v, shape)

    inv = m.divide(1.0, m.sqrt(m.add(per_channel("variance", variance), epsilon)))
    if scale is not None:
        inv = m.multiply(inv, per_channel("scale", scale))
    shift = m.negative(m.multiply(per_channel("mean", mean), inv))
    if offset is not None:
        shift = m.add(shift, per_channel("offset", offset))
    return m.add(m.multiply(x, inv), shift)




def normalize(x, axis=-1, order=2, epsilon=None):
    """x divided by its L_order norm over `axis` (the norm floored at epsilon).

    Args:
        x: input tensor.
        axis: the axis (or axes) of the norm.
        order: the norm's order, an int >= 1.
        epsilon: the smallest norm divided by (default config.epsilon()).
    """
    if isinstance(order, bool) or not isinstance(order, int) or order < 1:
        raise ValueError(f"normalize: order must be an int >= 1, got {order!r}")
    epsilon = config.epsilon() if epsilon is None else epsilon
    x = operand_tensor(x)
    if x.dtype.kind != "f":
        x = m.cast(x, result_type(x.dtype, float))
    if x.ndim == 0:
        x = m.reshape(x, (1,))
    axis = axis_arg("normalize", axis, x.ndim)
    if order == 2:
        square_sum = m.sum(m.square(x), axis=axis, keepdims=True)
        with np.errstate(divide="ignore"):
            inv_norm = m.minimum(m.divide(1.0, m.sqrt(square_sum)), 1.0 / epsilon)
        return m.multiply(x, inv_norm)
    from engine.ops.linalg import norm
    return m.divide(x, m.maximum(norm(x, ord=order, axis=axis, keepdims=True), epsilon))


def psnr(x1, x2, max_val):
    """The peak signal-to-noise ratio of x2 against x1 in dB: 20 log10(max_val) - 10 log10(mse).

    Args:
        x1, x2: tensors of the same shape.
        max_val: the largest possible value (e.g. 1.0 or 255).
    """
    x1, x2 = operand_tensor(x1), operand_tensor(x2)
    if x1.shape != x2.shape:
        raise ValueError(f"psnr: x1 of shape {x1.shape} and x2 of shape {x2.shape} must have the same shape")
    from engine.ops.elementwise import log10
    mse = m.mean(m.square(m.subtract(x1, x2)))
    peak = np.asarray(to_array(max_val), dtype=mse.dtype)
    return m.subtract(m.multiply(20.0, log10(peak)), m.multiply(10.0, log10(mse)))


# layer_normalization and rms_normalization are engine/ops/layernorm.py's (one fused kernel each).
from engine.ops.layernorm import layer_normalization, rms_normalization  # noqa: E402,F401

__all__ = ["moments", "batch_normalization", "layer_normalization", "rms_normalization", "normalize", "psnr"]
