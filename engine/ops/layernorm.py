"""Layer normalization as one op with its gradient (keras.ops.layer_normalization).

The normalized axes are moved last and flattened into rows, so one kernel
(engine._kernels.layernorm: one sweep per row forward and backward, OpenMP over
rows) serves any axis list.
"""
import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.ops._util import contiguous, float_dtype_of, to_array
from engine._kernels import layernorm as K


def _row_layout(ndim, axes):
    """The permutation that puts `axes` last (None when they already are)."""
    rest = [a for a in range(ndim) if a not in axes]
    perm = rest + list(axes)
    return None if perm == list(range(ndim)) else perm


def _shared_row(g, n_normalized, dtype):
    """g (..., normalized axes) as the kernel's (1, width) row when every row of g is one row in
    memory (stride 0 along the leading axes, as the tape's seed of ones for a non-scalar target),
    else None: the kernel then reads that row for every row instead of a materialised copy."""
    lead = g.ndim - n_normalized
    if lead == 0 or g.size == 0 or any(st != 0 and n != 1 for st, n in zip(g.strides[:lead], g.shape)):
        return None
    return contiguous(g[(0,) * lead], dtype).reshape(1, -1)


@differentiable
def _layer_norm(x, gamma, beta, axes=None, epsilon=1e-3):
    dtype = float_dtype_of(x)
    perm = _row_layout(x.ndim, axes)
    xt = x if perm is None else np.transpose(x, perm)
    moved_shape = xt.shape
    width = int(np.prod([x.shape[a] for a in axes], dtype=np.int64))
    x2 = contiguous(xt, dtype).reshape(-1, width)
    g1 = None if gamma is None else contiguous(gamma, dtype).reshape(width)
    b1 = None if beta is None else contiguous(beta, dtype).reshape(width)
    rows = x2.shape[0]
    y2 = np.empty_like(x2)
    mean = np.empty(rows, dtype)
    rstd = np.empty(rows, dtype)
    K.layer_norm_forward(x2, g1, b1, float(epsilon), y2, mean, rstd)
    y = y2.reshape(moved_shape)
    if perm is not None:
        y = np.ascontiguousarray(np.transpose(y, np.argsort(perm)))

    def vjp(g, needs):
        gt = g if perm is None else np.transpose(g, perm)
        g2 = _shared_row(gt, len(axes), dtype)
        if g2 is None:
            g2 = contiguous(gt, dtype).reshape(-1, width)
        dx2 = np.empty_like(x2) if needs[0] else None
        dgamma, dbeta = K.layer_norm_backward(x2, g1, mean, rstd, g2, dx2)
        dx = None
        if needs[0]:
            dx = dx2.reshape(moved_shape)
            if perm is not None:
                dx = np.transpose(dx, np.argsort(perm))
            dx = dx.astype(x.dtype, copy=False)
        dg = dgamma.reshape(gamma.shape).astype(gamma.dtype, copy=False) if needs[1] else None
        db = dbeta.reshape(beta.shape).astype(beta.dtype, copy=False) if needs[2] else None
        return dx, dg, db
    return y, vjp


def _axes(axis, ndim, fn):
    axes = axis if isinstance(axis, (list, tuple)) else [axis]
    out = []
    for a in axes:
        if not isinstance(a, (int, np.integer)) or not -ndim <= a < ndim:
            raise ValueError(f"{fn}: axis {a!r} is out of range for an input of rank {ndim}")
        out.append(int(a) % ndim)
    if len(set(out)) != len(out):
        raise ValueError(f"{fn}: axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def _rms_scaled(x, gamma, axes, epsilon):
    """Keras's deprecated rms_scaling=True: x * rsqrt(var(x) + epsilon) * gamma (not centred)."""
    from engine.ops import math as m
    mean = m.mean(x, axis=axes, keepdims=True)
    var = m.mean(m.square(x - mean), axis=axes, keepdims=True)
    out = x / m.sqrt(var + epsilon)
    return out if gamma is None else out * gamma


def layer_normalization(x, gamma=None, beta=None, axis=-1, epsilon=None, **kwargs):
    """Normalize x to zero mean and unit variance over `axis`, then scale and shift.

    Args:
        x: input tensor.
        gamma: optional scale, shaped like the normalized axes of x (broadcastable in order).
        beta: optional offset, same shape as gamma.
        axis: an int or a list of ints: the axes to normalize over.
        epsilon: added to the variance; defaults to `engine.config.epsilon()`.
        **kwargs: `rms_scaling=True`, Keras's deprecated variant: scale by
            1 / sqrt(var + epsilon) without centring and without beta.

    Returns:
        A tensor of x's shape.
    """
    from engine.ops.math import convert_to_tensor
    rms_scaling = kwargs.pop("rms_scaling", False)
    if kwargs:
        raise ValueError(f"layer_normalization: unexpected arguments {sorted(kwargs)}")
    xa = to_array(x)
    if xa.dtype.kind != "f":
        x = convert_to_tensor(x, config.floatx())
        xa = to_array(x)
    axes = _axes(axis, xa.ndim, "layer_normalization")
    if epsilon is None:
        epsilon = config.epsilon()
    norm_shape = tuple(xa.shape[a] for a in axes)
    for name, p in (("gamma", gamma), ("beta", beta)):
        if p is not None and int(np.prod(np.shape(to_array(p)))) != int(np.prod(norm_shape)):
            raise ValueError(f"layer_normalization: {name} of shape {np.shape(to_array(p))} does not fit "
                             f"the normalized axes {axes} of an input of shape {xa.shape} (expected "
                             f"{norm_shape})")
    if rms_scaling:
        bshape = [1] * xa.ndim
        for a in axes:
            bshape[a] = xa.shape[a]
        from engine.ops.math import reshape
        return _rms_scaled(x, None if gamma is None else reshape(gamma, bshape), axes, float(epsilon))
    return _layer_norm(x, gamma, beta, axes=axes, epsilon=float(epsilon))


def rms_normalization(x, scale=None, axis=-1, epsilon=None):
    """x / sqrt(mean(x ** 2 over `axis`) + epsilon) * scale (keras.ops.rms_normalization).

    Args:
        x: input tensor.
        scale: optional scale, shaped like the normalized axes of x.
        axis: an int or a list of ints.
        epsilon: added to the mean square; defaults to `engine.config.epsilon()`.

    Returns:
        A tensor of x's shape.
    """
    from engine.ops import math as m
    xa = to_array(x)
    if xa.dtype.kind != "f":
        x = m.convert_to_tensor(x, config.floatx())
        xa = to_array(x)
    axes = _axes(axis, xa.ndim, "rms_normalization")
    epsilon = config.epsilon() if epsilon is None else float(epsilon)
    inv = m.reciprocal(m.sqrt(m.add(m.mean(m.square(x), axis=axes, keepdims=True), epsilon)))
    out = m.multiply(x, inv)
    if scale is None:
        return out
    shape = [xa.shape[a] if a in axes else 1 for a in range(xa.ndim)]
    if int(np.prod(np.shape(to_array(scale)))) != int(np.prod([xa.shape[a] for a in axes])):
        raise ValueError(f"rms_normalization: scale of shape {np.shape(to_array(scale))} does not fit the normalized "
                         f"axes {axes} of an input of shape {xa.shape}")
    return m.multiply(out, m.reshape(scale, shape))
