"""Differentiable array ops with Keras 3 names and semantics (engine.ops.*)."""
import numpy as np

from engine.autodiff import differentiable
from engine.ops._util import to_array, unbroadcast, normalize_axis, contiguous
from engine._kernels import gemm as _gemm


def _grad_shape_safe(g, x):
    """The gradient for input x (which may be a Python scalar: then none is needed)."""
    if isinstance(x, np.ndarray):
        return unbroadcast(g, x.shape).astype(x.dtype, copy=False)
    return None


# -- arithmetic ------------------------------------------------------------------------
@differentiable
def _add(a, b):
    out = np.add(a, b)

    def vjp(g, needs):
        return (_grad_shape_safe(g, a) if needs[0] else None,
                _grad_shape_safe(g, b) if needs[1] else None)
    return out, vjp


@differentiable
def _subtract(a, b):
    out = np.subtract(a, b)

    def vjp(g, needs):
        return (_grad_shape_safe(g, a) if needs[0] else None,
                _grad_shape_safe(-g, b) if needs[1] else None)
    return out, vjp


@differentiable
def _multiply(a, b):
    out = np.multiply(a, b)

    def vjp(g, needs):
        return (_grad_shape_safe(g * b, a) if needs[0] else None,
                _grad_shape_safe(g * a, b) if needs[1] else None)
    return out, vjp


@differentiable
def _divide(a, b):
    out = np.divide(a, b)

    def vjp(g, needs):
        return (_grad_shape_safe(g / b, a) if needs[0] else None,
                _grad_shape_safe(-g * out / b, b) if needs[1] else None)
    return out, vjp


@differentiable
def _power(a, b):
    out = np.power(a, b)

    def vjp(g, needs):
        ga = _grad_shape_safe(g * b * np.power(a, b - 1), a) if needs[0] else None
        gb = None
        if needs[1]:
            with np.errstate(divide="ignore", invalid="ignore"):
                logs = np.where(a > 0, np.log(np.where(a > 0, a, 1)), 0)
            gb = _grad_shape_safe(g * out * logs, b)
        return ga, gb
    return out, vjp


def add(x1, x2):
    return _add(x1, x2)


def subtract(x1, x2):
    return _subtract(x1, x2)


def multiply(x1, x2):
    return _multiply(x1, x2)


def divide(x1, x2):
    return _divide(x1, x2)


true_divide = divide


def power(x1, x2):
    return _power(x1, x2)


@differentiable
def _maximum(a, b):
    out = np.maximum(a, b)

    def vjp(g, needs):
        pick_a = np.greater_equal(a, b)
        return (_grad_shape_safe(g * pick_a, a) if needs[0] else None,
                _grad_shape_safe(g * ~pick_a, b) if needs[1] else None)
    return out, vjp


@differentiable
def _minimum(a, b):
    out = np.minimum(a, b)

    def vjp(g, needs):
        pick_a = np.less_equal(a, b)
        return (_grad_shape_safe(g * pick_a, a) if needs[0] else None,
                _grad_shape_safe(g * ~pick_a, b) if needs[1] else None)
    return out, vjp


def maximum(x1, x2):
    return _maximum(x1, x2)


def minimum(x1, x2):
    return _minimum(x1, x2)


def _unary(name, forward, derivative):
    """An elementwise op from its forward and its derivative d(out)/d(x) = derivative(x, out)."""
    @differentiable
    def op(x):
        out = forward(x)

        def vjp(g, needs):
            return (g * derivative(x, out),)
        return out, vjp
    op.__name__ = name
    return op


negative = _unary("negative", np.negative, lambda x, y: -1.0)
square = _unary("square", np.square, lambda x, y: 2.0 * x)
sqrt = _unary("sqrt", np.sqrt, lambda x, y: 0.5 / y)
exp = _unary("exp", np.exp, lambda x, y: y)
log = _unary("log", np.log, lambda x, y: 1.0 / x)
log1p = _unary("log1p", np.log1p, lambda x, y: 1.0 / (1.0 + x))
abs = _unary("abs", np.abs, lambda x, y: np.sign(x))
absolute = abs
sin = _unary("sin", np.sin, lambda x, y: np.cos(x))
cos = _unary("cos", np.cos, lambda x, y: -np.sin(x))
reciprocal = _unary("reciprocal", np.reciprocal, lambda x, y: -y * y)


def sign(x):
    return np.sign(to_array(x))


@differentiable
def _clip(x, lo=None, hi=None):
    out = np.clip(x, lo, hi)

    def vjp(g, needs):
        inside = np.ones(x.shape, dtype=bool)
        if lo is not None:
            inside &= x >= lo
        if hi is not None:
            inside &= x <= hi
        return (g * inside,)
    return out, vjp


def clip(x, x_min, x_max):
    return _clip(x, lo=x_min, hi=x_max)


# -- reductions ------------------------------------------------------------------------
def _expand_reduced(g, x_shape, axis, keepdims):
    if axis is None:
        return np.broadcast_to(np.reshape(g, (1,) * len(x_shape)), x_shape)
    if not keepdims:
        axes = axis if isinstance(axis, tuple) else (axis,)
        for a in sorted(axes):
            g = np.expand_dims(g, a)
    return np.broadcast_to(g, x_shape)


@differentiable
def _sum(x, axis=None, keepdims=False):
    out = np.asarray(np.sum(x, axis=axis, keepdims=keepdims))

    def vjp(g, needs):
        return (np.ascontiguousarray(_expand_reduced(g, x.shape, axis, keepdims)),)
    return out, vjp


@differentiable
def _mean(x, axis=None, keepdims=False):
    out = np.asarray(np.mean(x, axis=axis, keepdims=keepdims))
    count = x.size // out.size if out.size else 1

    def vjp(g, needs):
        return (np.ascontiguousarray(_expand_reduced(g / count, x.shape, axis, keepdims)).astype(x.dtype, copy=False),)
    return out, vjp


def _extreme(reducer):
    @differentiable
    def op(x, axis=None, keepdims=False):
        out = np.asarray(reducer(x, axis=axis, keepdims=keepdims))

        def vjp(g, needs):
            full = _expand_reduced(out, x.shape, axis, keepdims)
            hit = (x == full)
            # Ties share the gradient equally, so the total stays right.
            count = _expand_reduced(np.sum(hit, axis=axis, keepdims=keepdims), x.shape, axis, keepdims)
            return ((_expand_reduced(g, x.shape, axis, keepdims) * hit / count).astype(x.dtype, copy=False),)
        return out, vjp
    return op


_max = _extreme(np.max)
_min = _extreme(np.min)


def sum(x, axis=None, keepdims=False):
    return _sum(x, axis=normalize_axis(axis, np.ndim(to_array(x))), keepdims=keepdims)


def mean(x, axis=None, keepdims=False):
    return _mean(x, axis=normalize_axis(axis, np.ndim(to_array(x))), keepdims=keepdims)


def max(x, axis=None, keepdims=False):
    return _max(x, axis=normalize_axis(axis, np.ndim(to_array(x))), keepdims=keepdims)


def min(x, axis=None, keepdims=False):
    return _min(x, axis=normalize_axis(axis, np.ndim(to_array(x))), keepdims=keepdims)


amax = max
amin = min


def argmax(x, axis=-1, keepdims=False):
    return np.argmax(to_array(x), axis=axis, keepdims=keepdims)


def argmin(x, axis=-1, keepdims=False):
    return np.argmin(to_array(x), axis=axis, keepdims=keepdims)


# -- linear algebra --------------------------------------------------------------------
def _gemm_2d(a, b, trans_a=False, trans_b=False):
    """op(a) @ op(b) for 2-D float arrays through the engine's GEMM kernel."""
    dtype = a.dtype if a.dtype == b.dtype and a.dtype in (np.float32, np.float64) else np.float32
    a = contiguous(a, dtype)
    b = contiguous(b, dtype)
    return _gemm.matmul(a, b, trans_a, trans_b)


@differentiable
def _matmul(a, b):
    if a.ndim >= 2 and b.ndim == 2 and a.dtype == b.dtype and a.dtype in (np.float32, np.float64):
        # (..., k) @ (k, n): fold the leading axes into one GEMM.
        lead = a.shape[:-1]
        a2 = a.reshape(-1, a.shape[-1])
        out = _gemm_2d(a2, b).reshape(lead + (b.shape[1],))

        def vjp(g, needs):
            g2 = g.reshape(-1, b.shape[1])
            ga = _gemm_2d(g2, b, trans_b=True).reshape(a.shape) if needs[0] else None
            gb = _gemm_2d(a2, g2, trans_a=True) if needs[1] else None
            return ga, gb
        return out, vjp

    out = np.matmul(a, b)

    def vjp(g, needs):
        ga = gb = None
        if needs[0]:
            ga = np.matmul(g, np.swapaxes(b, -1, -2)) if b.ndim > 1 else np.multiply.outer(g, b)
            ga = unbroadcast(ga, a.shape)
        if needs[1]:
            gb = np.matmul(np.swapaxes(a, -1, -2), g) if a.ndim > 1 else np.multiply.outer(a, g)
            gb = unbroadcast(gb, b.shape)
        return ga, gb
    return out, vjp


def matmul(x1, x2):
    return _matmul(x1, x2)


dot = matmul


# -- shape manipulation ----------------------------------------------------------------
@differentiable
def _reshape(x, shape=None):
    out = np.reshape(x, shape)

    def vjp(g, needs):
        return (np.reshape(g, x.shape),)
    return out, vjp


def reshape(x, newshape):
    return _reshape(x, shape=tuple(newshape) if not isinstance(newshape, int) else newshape)


@differentiable
def _transpose(x, axes=None):
    out = np.transpose(x, axes)

    def vjp(g, needs):
        inv = None if axes is None else np.argsort(axes)
        return (np.transpose(g, inv),)
    return out, vjp


def transpose(x, axes=None):
    return _transpose(x, axes=None if axes is None else tuple(axes))


@differentiable
def _expand_dims(x, axis=0):
    out = np.expand_dims(x, axis)

    def vjp(g, needs):
        return (np.reshape(g, x.shape),)
    return out, vjp


def expand_dims(x, axis):
    return _expand_dims(x, axis=axis)


@differentiable
def _squeeze(x, axis=None):
    out = np.squeeze(x, axis)

    def vjp(g, needs):
        return (np.reshape(g, x.shape),)
    return out, vjp


def squeeze(x, axis=None):
    return _squeeze(x, axis=axis)


@differentiable
def _concatenate(*xs, axis=-1):
    out = np.concatenate(xs, axis=axis)

    def vjp(g, needs):
        bounds = np.cumsum([x.shape[axis] for x in xs])[:-1]
        parts = np.split(g, bounds, axis=axis)
        return tuple(np.ascontiguousarray(p) if n else None for p, n in zip(parts, needs))
    return out, vjp


def concatenate(xs, axis=0):
    return _concatenate(*xs, axis=axis)


@differentiable
def _stack(*xs, axis=0):
    out = np.stack(xs, axis=axis)

    def vjp(g, needs):
        return tuple(np.take(g, i, axis=axis) if n else None for i, n in enumerate(needs))
    return out, vjp


def stack(xs, axis=0):
    return _stack(*xs, axis=axis)


@differentiable
def _getitem(x, key=None):
    out = np.array(x[key])

    def vjp(g, needs):
        gx = np.zeros_like(x)
        np.add.at(gx, key, g)
        return (gx,)
    return out, vjp


def slice_along(x, key):
    """x[key] as a recorded op (key: anything numpy indexing accepts)."""
    return _getitem(x, key=key)


@differentiable
def _take(x, indices, axis=None):
    out = np.take(x, indices, axis=axis)

    def vjp(g, needs):
        gx = np.zeros_like(x)
        if axis is None:
            np.add.at(gx.reshape(-1), indices, g)
        else:
            moved = np.moveaxis(gx, axis, 0)
            np.add.at(moved, indices, np.moveaxis(g, axis, 0) if np.ndim(indices) == 1 else g)
        return (gx, None)
    return out, vjp


def take(x, indices, axis=None):
    return _take(x, np.asarray(indices), axis=axis)


@differentiable
def _where(condition, x1, x2):
    out = np.where(condition, x1, x2)

    def vjp(g, needs):
        return (None,
                _grad_shape_safe(np.where(condition, g, 0), x1) if needs[1] else None,
                _grad_shape_safe(np.where(condition, 0, g), x2) if needs[2] else None)
    return out, vjp


def where(condition, x1, x2):
    return _where(np.asarray(condition, dtype=bool), x1, x2)


@differentiable
def _cast(x, dtype=None):
    out = x.astype(dtype, copy=True)

    def vjp(g, needs):
        return (g.astype(x.dtype),)
    return out, vjp


def cast(x, dtype):
    dtype = np.dtype(dtype)
    arr = to_array(x)
    if not np.issubdtype(arr.dtype, np.floating) or not np.issubdtype(dtype, np.floating):
        return arr.astype(dtype)
    return _cast(x, dtype=dtype)


def stop_gradient(x):
    return np.array(to_array(x), copy=True)


def convert_to_tensor(x, dtype=None):
    return np.asarray(to_array(x), dtype=dtype)


def convert_to_numpy(x):
    return np.array(to_array(x))


def shape(x):
    return tuple(np.shape(to_array(x)))


def zeros(shape, dtype="float32"):
    return np.zeros(shape, dtype=dtype)


def ones(shape, dtype="float32"):
    return np.ones(shape, dtype=dtype)


def zeros_like(x, dtype=None):
    return np.zeros_like(to_array(x), dtype=dtype)


def ones_like(x, dtype=None):
    return np.ones_like(to_array(x), dtype=dtype)


def one_hot(x, num_classes, axis=-1, dtype="float32"):
    x = np.asarray(x, dtype=np.int64)
    out = np.zeros(x.shape + (num_classes,), dtype=dtype)
    valid = (x >= 0) & (x < num_classes)
    np.put_along_axis(out, np.where(valid, x, 0)[..., None], valid[..., None].astype(dtype), axis=-1)
    return np.moveaxis(out, -1, axis) if axis != -1 else out


@differentiable
def _pad(x, pad_width=None, constant_values=0):
    out = np.pad(x, pad_width, constant_values=constant_values)

    def vjp(g, needs):
        index = tuple(slice(lo, g.shape[i] - hi) for i, (lo, hi) in enumerate(pad_width))
        return (np.ascontiguousarray(g[index]),)
    return out, vjp


def pad(x, pad_width, mode="constant", constant_values=None):
    if mode != "constant":
        raise ValueError(f"pad: only mode='constant' is supported, got {mode!r}")
    nd = np.ndim(to_array(x))
    width = np.broadcast_to(np.asarray(pad_width, dtype=np.int64), (nd, 2))
    return _pad(x, pad_width=tuple((int(a), int(b)) for a, b in width), constant_values=constant_values or 0)


@differentiable
def _repeat(x, repeats=1, axis=0):
    out = np.repeat(x, repeats, axis=axis)

    def vjp(g, needs):
        shape = list(x.shape)
        shape.insert(axis + 1, repeats)
        return (g.reshape(shape).sum(axis=axis + 1),)
    return out, vjp


def repeat(x, repeats, axis=None):
    if axis is None or not isinstance(repeats, (int, np.integer)):
        raise ValueError("repeat: engine supports an integer `repeats` along a given axis")
    return _repeat(x, repeats=int(repeats), axis=axis % np.ndim(to_array(x)))
