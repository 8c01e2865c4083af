"""Reductions, scans, order statistics and counting (keras.ops.numpy's prod, var, cumsum,
logsumexp, median / quantile, sort / argsort / top_k, unique, bincount, the nan* family, ...).

Differentiable ones are either defined here with their gradient (prod, cumsum, cumprod) or
composed of recorded ops (var, logsumexp, quantile through the gather of a sort).
"""
import builtins

import numpy as np

from engine import config
from engine.autodiff import differentiable
from engine.dtypes import result_type, standardize_dtype
from engine.ops._checks import axis_arg, positive_int
from engine.ops._naming import named
from engine.ops._util import to_array, wrap
from engine.ops import math as m
from engine.ops.arrays import operand_tensor, take_along_axis, moveaxis


def accumulate_dtype(dtype):
    """The dtype sums and products of `dtype` accumulate in (Keras / JAX: small ints widen to 32 bits)."""
    name = standardize_dtype(dtype)
    if name in ("bool", "int8", "int16"):
        return np.dtype("int32")
    if name in ("uint8", "uint16"):
        return np.dtype("uint32")
    return np.dtype(name)


def _as_float(x):
    """x (a tensor) in the float dtype statistics are computed in: floatx for integers and bools."""
    return x if x.dtype.kind == "f" else m.cast(x, result_type(x.dtype, float))


def _reduced_last(x, axis):
    """x with the reduced axes moved last and merged into one (axis None: all axes), and a
    function putting the result of a last-axis reduction back into x's reduced shape."""
    axes = tuple(range(x.ndim)) if axis is None else (axis if isinstance(axis, tuple) else (axis,))
    kept = [a for a in range(x.ndim) if a not in axes]
    moved = m.transpose(x, kept + list(axes)) if kept + list(axes) != list(range(x.ndim)) else x
    kept_shape = tuple(x.shape[a] for a in kept)
    flat = m.reshape(moved, kept_shape + (-1,))

    def restore(r, keepdims, extra_lead=0):
        """r has `extra_lead` leading axes (quantile's q) and then kept_shape."""
        if not keepdims:
            return r
        shape = tuple(r.shape[:extra_lead]) + tuple(1 if a in axes else x.shape[a] for a in range(x.ndim))
        return m.reshape(r, shape)
    return flat, restore


# -- products and scans ------------------------------------------------------------------------
def _exclusive_products(v):
    """For each position of the last axis, the product of all the other entries (exact with zeros)."""
    ones = np.ones(v.shape[:-1] + (1,), dtype=v.dtype)
    left = np.cumprod(np.concatenate([ones, v[..., :-1]], axis=-1), axis=-1)
    right = np.flip(np.cumprod(np.concatenate([ones, np.flip(v[..., 1:], -1)], axis=-1), axis=-1), -1)
    return left * right


@differentiable
def _prod_last(v, keepdims_shape=None):
    out = np.prod(v, axis=-1)

    def vjp(g, needs):
        return ((g[..., None] * _exclusive_products(v)).astype(v.dtype),)
    return out if keepdims_shape is None else out.reshape(keepdims_shape), vjp


def prod(x, axis=None, keepdims=False, dtype=None):
    """The product of the elements over `axis`.

    Args:
        x: input tensor.
        axis: an int, a tuple of ints, or None (all axes).
        keepdims: keep the reduced axes with size 1.
        dtype: the result dtype (default: x's, with bools and small integers widened to 32 bits).
    """
    x = operand_tensor(x)
    axis = axis_arg("prod", axis, x.ndim)
    target = np.dtype(standardize_dtype(dtype)) if dtype is not None else accumulate_dtype(x.dtype)
    if x.dtype != target:
        x = m.cast(x, target)
    flat, restore = _reduced_last(x, axis)
    if x.dtype.kind != "f":
        return restore(wrap(np.prod(to_array(flat), axis=-1, dtype=x.dtype)), keepdims)
    return restore(_prod_last(flat), keepdims)


def _scan_input(op, x, axis, dtype):
    x = operand_tensor(x)
    if axis is None:
        x, axis = m.reshape(x, (-1,)), 0
    axis = axis_arg(op, axis, x.ndim, allow_none=False, allow_tuple=False)
    target = np.dtype(standardize_dtype(dtype)) if dtype is not None else (
        np.dtype("int32") if x.dtype == np.bool_ else x.dtype)
    return (m.cast(x, target) if x.dtype != target else x), axis


@differentiable
def _cumsum(x, axis=0):
    out = np.cumsum(x, axis=axis, dtype=x.dtype)

    def vjp(g, needs):
        return (np.flip(np.cumsum(np.flip(g, axis), axis=axis), axis).astype(x.dtype),)
    return out, vjp


@differentiable
def _cumprod(x, axis=0):
    out = np.cumprod(x, axis=axis, dtype=x.dtype)

    def vjp(g, needs):
        xl = np.moveaxis(x, axis, -1)
        gl = np.moveaxis(g, axis, -1)
        n = xl.shape[-1]
        if np.all(xl != 0):
            ol = np.moveaxis(out, axis, -1)
            gx = np.flip(np.cumsum(np.flip(gl * ol, -1), -1), -1) / xl
        else:
            # With zeros: d out_j / d x_i = prod of x_k for k <= j, k != i (i <= j), one i at a time.
            gx = np.empty_like(xl)
            for i in range(n):
                without = xl.copy()
                without[..., i] = 1
                partial = np.cumprod(without, axis=-1)
                gx[..., i] = np.sum(gl[..., i:] * partial[..., i:], axis=-1)
        return (np.moveaxis(gx, -1, axis).astype(x.dtype),)
    return out, vjp


def _scan(name, op, numpy_fn, what):
    @named(name, f"""The running {what} along `axis` (axis=None: of the flattened x).

    Args:
        x: input tensor.
        axis: the axis to accumulate along.
        dtype: the result dtype (default x's; bools give int32).
    """)
    def public(x, axis=None, dtype=None):
        x, axis = _scan_input(name, x, axis, dtype)
        return op(x, axis=axis) if x.dtype.kind == "f" else wrap(numpy_fn(to_array(x), axis=axis, dtype=x.dtype))
    return public


cumsum = _scan("cumsum", _cumsum, np.cumsum, "sum")
cumprod = _scan("cumprod", _cumprod, np.cumprod, "product")


# -- moments ---------------------------------------------------------------------------------------
def var(x, axis=None, keepdims=False):
    """The variance (mean squared deviation from the mean, no Bessel correction) over `axis`;
    integer inputs give floatx."""
    x = _as_float(operand_tensor(x))
    axis = axis_arg("var", axis, x.ndim)
    centred = m.subtract(x, m.mean(x, axis=axis, keepdims=True))
    return m.mean(m.square(centred), axis=axis, keepdims=keepdims)


def std(x, axis=None, keepdims=False):
    """The standard deviation (square root of var) over `axis`; integer inputs give floatx."""
    return m.sqrt(var(x, axis=axis, keepdims=keepdims))


def average(x, axis=None, weights=None):
    """The weighted mean over `axis` (an int or None).

    Args:
        x: input tensor.
        axis: the axis to average over (None: all).
        weights: None (the plain mean), a tensor of x's shape, or a 1-D tensor of the length of
            x along `axis`.
    """
    x = operand_tensor(x)
    axis = axis_arg("average", axis, x.ndim, allow_tuple=False)
    if weights is None:
        return m.mean(_as_float(x), axis=axis)
    w = operand_tensor(weights)
    dtype = result_type(x.dtype, w.dtype, float)
    x, w = m.cast(x, dtype), m.cast(w, dtype)
    if w.shape != x.shape:
        if axis is None or w.ndim != 1 or w.shape[0] != x.shape[axis]:
            raise ValueError(f"average: weights of shape {w.shape} must have x's shape {x.shape} or be "
                             f"1-D with the length of axis {axis}")
        shape = [1] * x.ndim
        shape[axis] = w.shape[0]
        w = m.reshape(w, shape)
    return m.divide(m.sum(m.multiply(x, w), axis=axis), m.sum(m.multiply(m.ones_like(x), w), axis=axis))


def logsumexp(x, axis=None, keepdims=False):
    """log(sum(exp(x))) over `axis`, computed stably (shifted by the maximum)."""
    x = _as_float(operand_tensor(x))
    axis = axis_arg("logsumexp", axis, x.ndim)
    top = to_array(m.max(x, axis=axis, keepdims=True))
    top = np.where(np.isfinite(top), top, 0).astype(x.dtype)   # a constant shift: no gradient
    total = m.sum(m.exp(m.subtract(x, top)), axis=axis, keepdims=True)
    with np.errstate(divide="ignore"):       # an all -inf slice sums to 0: its logsumexp is -inf
        out = m.add(m.log(total), top)
    return out if keepdims else m.squeeze(out, axis=axis)


def ptp(x, axis=None, keepdims=False):
    """max - min over `axis` (the range of the values)."""
    x = operand_tensor(x)
    axis = axis_arg("ptp", axis, x.ndim)
    return m.subtract(m.max(x, axis=axis, keepdims=keepdims), m.min(x, axis=axis, keepdims=keepdims))


# -- truth values and counts (not differentiable) ---------------------------------------------------
def any(x, axis=None, keepdims=False):
    """True (bool) where any element over `axis` is non-zero."""
    arr = to_array(operand_tensor(x))
    return wrap(np.any(arr, axis=axis_arg("any", axis, arr.ndim), keepdims=keepdims))


def all(x, axis=None, keepdims=False):
    """True (bool) where every element over `axis` is non-zero."""
    arr = to_array(operand_tensor(x))
    return wrap(np.all(arr, axis=axis_arg("all", axis, arr.ndim), keepdims=keepdims))


def count_nonzero(x, axis=None):
    """The number of non-zero elements over `axis` (int32)."""
    arr = to_array(operand_tensor(x))
    return wrap(np.asarray(np.count_nonzero(arr, axis=axis_arg("count_nonzero", axis, arr.ndim)), dtype=np.int32))


def nonzero(x):
    """The indices of the non-zero elements: a tuple of int32 tensors, one per axis."""
    return tuple(wrap(i.astype(np.int32)) for i in np.nonzero(to_array(operand_tensor(x))))


# -- sorting and order statistics --------------------------------------------------------------------
def argsort(x, axis=-1):
    """The indices that sort x along `axis` (int32, stable; axis=None sorts the flattened x)."""
    arr = to_array(operand_tensor(x))
    if arr.ndim == 0:
        return wrap(np.zeros((1,), np.int32))
    if axis is not None:
        axis = axis_arg("argsort", axis, arr.ndim)
    return wrap(np.argsort(arr, axis=axis, kind="stable").astype(np.int32))


def sort(x, axis=-1):
    """x sorted in ascending order along `axis` (NaNs last; the gradient follows the elements)."""
    x = operand_tensor(x)
    if axis is None:
        x, axis = m.reshape(x, (-1,)), 0
    axis = axis_arg("sort", axis, x.ndim, allow_tuple=False)
    if x.ndim == 0:
        return m.reshape(x, ())
    order = np.argsort(to_array(x), axis=axis, kind="stable")
    return take_along_axis(x, order, axis=axis)


def argpartition(x, kth, axis=-1):
    """Indices that partition x along `axis` so the element at position kth is in its sorted
    place, smaller ones before it and larger ones after (int32)."""
    arr = to_array(operand_tensor(x))
    axis = axis_arg("argpartition", axis, arr.ndim, allow_none=False, allow_tuple=False)
    if not -arr.shape[axis] <= int(kth) < arr.shape[axis]:
        raise ValueError(f"argpartition: kth={kth} is out of range for axis {axis} of shape {arr.shape}")
    return wrap(np.argpartition(arr, int(kth), axis=axis).astype(np.int32))


def top_k(x, k, sorted=True):
    """The k largest entries along the last axis and their indices.

    Args:
        x: input tensor (at least 1-D).
        k: how many entries to keep.
        sorted: return them in descending order (otherwise in the order of x, as engine chooses).

    Returns:
        (values, indices): values of x's dtype and int32 indices, each of shape x.shape[:-1] + (k,).
    """
    x = operand_tensor(x)
    if x.ndim == 0:
        raise ValueError("top_k: x must have at least one axis, got a scalar")
    k = positive_int("top_k", "k", k, allow_zero=True)
    if k > x.shape[-1]:
        raise ValueError(f"top_k: k={k} is larger than the last axis of shape {x.shape}")
    arr = to_array(x)
    # Stable sort of -x keeps the lower index first among equal values, as TensorFlow and JAX do.
    order = np.argsort(-arr if arr.dtype.kind != "b" else ~arr, axis=-1, kind="stable")[..., :k]
    if not sorted:
        order = np.sort(order, axis=-1)
    return take_along_axis(x, order, axis=-1), wrap(order.astype(np.int32))


def in_top_k(targets, predictions, k):
    """True (bool, per sample) where the target class is among the k highest predictions; ties
    with the k-th value count as in."""
    t = to_array(operand_tensor(targets)).astype(np.int64)
    p = to_array(operand_tensor(predictions))
    if p.ndim != 2 or t.shape != p.shape[:1]:
        raise ValueError(f"in_top_k: predictions must be (batch, classes) and targets (batch,), got "
                         f"{p.shape} and {t.shape}")
    target_scores = np.take_along_axis(p, t[:, None], axis=1)
    above = np.sum(p > target_scores, axis=1)
    return wrap(above < int(k))


_QUANTILE_METHODS = ("linear", "lower", "higher", "midpoint", "nearest")


def _quantile(op, x, q, axis, method, keepdims, ignore_nan):
    if method not in _QUANTILE_METHODS:
        raise ValueError(f"{op}: method must be one of {_QUANTILE_METHODS}, got {method!r}")
    x = _as_float(operand_tensor(x))
    axis = axis_arg(op, axis, x.ndim)
    qa = np.asarray(to_array(q), dtype=np.float64)
    if np.any((qa < 0) | (qa > 1)):
        raise ValueError(f"{op}: quantiles must lie in [0, 1] (percentiles in [0, 100]), got {to_array(q)}")
    flat, restore = _reduced_last(x, axis)
    values = to_array(flat)
    order = np.argsort(values, axis=-1, kind="stable")     # NaNs sort last
    ordered = take_along_axis(flat, order, axis=-1)
    n = np.sum(~np.isnan(values), axis=-1) if ignore_nan else np.full(values.shape[:-1], values.shape[-1])
    pos = qa.reshape(qa.shape + (1,) * (values.ndim - 1)) * (np.maximum(n, 1) - 1)
    lo = np.floor(pos)
    hi = np.ceil(pos)
    if method == "lower":
        hi = lo
    elif method == "higher":
        lo = hi
    elif method == "nearest":
        lo = hi = np.round(pos)          # halves to even, as numpy
    frac = pos - lo
    if method == "midpoint":
        frac = np.where(hi > lo, 0.5, 0.0)
    elif method != "linear":
        frac = np.zeros_like(pos)

    def gather(idx):
        # ordered: kept_shape + (N,); idx: q.shape + kept_shape -> values of the same shape.
        idx = np.broadcast_to(idx, qa.shape + values.shape[:-1]).astype(np.int64)
        moved = np.moveaxis(idx, list(range(qa.ndim)), list(range(-qa.ndim, 0))) if qa.ndim else idx
        picked = take_along_axis(ordered, moved.reshape(values.shape[:-1] + (-1,)), axis=-1)
        picked = m.reshape(picked, values.shape[:-1] + qa.shape)
        return moveaxis(picked, list(range(-qa.ndim, 0)), list(range(qa.ndim))) if qa.ndim else picked

    low, high = gather(lo), gather(hi)
    frac = np.broadcast_to(frac, qa.shape + values.shape[:-1]).astype(x.dtype)
    out = m.add(low, m.multiply(m.subtract(high, low), frac))
    if ignore_nan:
        empty = np.broadcast_to(n == 0, out.shape)
        if empty.any():
            out = m.where(empty, np.array(np.nan, x.dtype), out)
    return restore(out, keepdims, extra_lead=qa.ndim)


def quantile(x, q, axis=None, method="linear", keepdims=False):
    """The q-th quantiles of x over `axis` (q in [0, 1]; a tensor of q gives leading axes).

    Args:
        x: input tensor (integers compute in floatx).
        q: a quantile or tensor of quantiles in [0, 1].
        axis: an int, tuple of ints or None (all axes).
        method: "linear" (interpolate), "lower", "higher", "midpoint" or "nearest".
        keepdims: keep the reduced axes with size 1.
    """
    return _quantile("quantile", x, q, axis, method, keepdims, ignore_nan=False)


def percentile(x, q, axis=None, method="linear", keepdims=False):
    """The q-th percentiles (q in [0, 100]) of x over `axis`; see quantile."""
    return _quantile("percentile", x, np.asarray(to_array(q), np.float64) / 100.0, axis, method, keepdims, False)


def median(x, axis=None, keepdims=False):
    """The median over `axis` (the mean of the two middle values for an even count)."""
    return _quantile("median", x, 0.5, axis, "linear", keepdims, ignore_nan=False)


def nanquantile(x, q, axis=None, method="linear", keepdims=False):
    """quantile ignoring NaNs (NaN where a slice is all NaN)."""
    return _quantile("nanquantile", x, q, axis, method, keepdims, ignore_nan=True)


def nanpercentile(x, q, axis=None, method="linear", keepdims=False):
    """percentile ignoring NaNs (NaN where a slice is all NaN)."""
    return _quantile("nanpercentile", x, np.asarray(to_array(q), np.float64) / 100.0, axis, method, keepdims, True)


def nanmedian(x, axis=None, keepdims=False):
    """median ignoring NaNs (NaN where a slice is all NaN)."""
    return _quantile("nanmedian", x, 0.5, axis, "linear", keepdims, ignore_nan=True)


# -- the nan* family: NaNs replaced by the identity of the reduction ---------------------------------
def _without_nan(x, fill):
    x = operand_tensor(x)
    if x.dtype.kind != "f":
        return x, None
    nan = np.isnan(to_array(x))
    return (m.where(nan, np.array(fill, x.dtype), x) if nan.any() else x), nan


def nansum(x, axis=None, keepdims=False):
    """sum treating NaNs as zero (bools and small integers sum in 32 bits)."""
    x, _ = _without_nan(x, 0)
    if x.dtype != accumulate_dtype(x.dtype):
        x = m.cast(x, accumulate_dtype(x.dtype))
    return m.sum(x, axis=axis_arg("nansum", axis, x.ndim), keepdims=keepdims)


def nanprod(x, axis=None, keepdims=False):
    """prod treating NaNs as one."""
    x, _ = _without_nan(x, 1)
    return prod(x, axis=axis, keepdims=keepdims)


def nanmean(x, axis=None, keepdims=False):
    """mean over the non-NaN elements (NaN where a slice is all NaN)."""
    x = _as_float(operand_tensor(x))
    axis = axis_arg("nanmean", axis, x.ndim)
    filled, nan = _without_nan(x, 0)
    count = np.sum(~nan, axis=axis, keepdims=keepdims) if nan is not None else None
    if count is None:
        return m.mean(x, axis=axis, keepdims=keepdims)
    with np.errstate(invalid="ignore", divide="ignore"):
        return m.divide(m.sum(filled, axis=axis, keepdims=keepdims), count.astype(x.dtype))


def nanvar(x, axis=None, keepdims=False):
    """var over the non-NaN elements."""
    x = _as_float(operand_tensor(x))
    axis = axis_arg("nanvar", axis, x.ndim)
    centred = m.subtract(x, nanmean(x, axis=axis, keepdims=True))
    return nanmean(m.square(centred), axis=axis, keepdims=keepdims)


def nanstd(x, axis=None, keepdims=False):
    """std over the non-NaN elements."""
    return m.sqrt(nanvar(x, axis=axis, keepdims=keepdims))


def _nan_extreme(op, reducer, fill, x, axis, keepdims):
    x = operand_tensor(x)
    axis = axis_arg(op, axis, x.ndim)
    filled, nan = _without_nan(x, fill)
    out = reducer(filled, axis=axis, keepdims=keepdims)
    if nan is not None:
        all_nan = np.all(nan, axis=axis, keepdims=keepdims)
        if all_nan.any():
            out = m.where(all_nan, np.array(np.nan, x.dtype), out)
    return out


def nanmax(x, axis=None, keepdims=False):
    """max ignoring NaNs (NaN where a slice is all NaN)."""
    return _nan_extreme("nanmax", m.max, -np.inf, x, axis, keepdims)


def nanmin(x, axis=None, keepdims=False):
    """min ignoring NaNs (NaN where a slice is all NaN)."""
    return _nan_extreme("nanmin", m.min, np.inf, x, axis, keepdims)


def nanargmax(x, axis=None, keepdims=False):
    """argmax ignoring NaNs (int32; -1 where a slice is all NaN, as JAX)."""
    return _nan_arg("nanargmax", np.argmax, -np.inf, x, axis, keepdims)


def nanargmin(x, axis=None, keepdims=False):
    """argmin ignoring NaNs (int32; -1 where a slice is all NaN, as JAX)."""
    return _nan_arg("nanargmin", np.argmin, np.inf, x, axis, keepdims)


def _nan_arg(op, fn, fill, x, axis, keepdims):
    arr = to_array(operand_tensor(x))
    axis = axis_arg(op, axis, arr.ndim, allow_tuple=False)
    nan = np.isnan(arr) if arr.dtype.kind == "f" else np.zeros(arr.shape, bool)
    out = fn(np.where(nan, fill, arr), axis=axis, keepdims=keepdims)
    out = np.where(np.all(nan, axis=axis, keepdims=keepdims), -1, out)
    return wrap(np.asarray(out, dtype=np.int32))


def nancumsum(x, axis=None, dtype=None):
    """cumsum treating NaNs as zero."""
    x, _ = _without_nan(x, 0)
    return cumsum(x, axis=axis, dtype=dtype)


def nancumprod(x, axis=None, dtype=None):
    """cumprod treating NaNs as one."""
    x, _ = _without_nan(x, 1)
    return cumprod(x, axis=axis, dtype=dtype)


# -- differences and integrals ------------------------------------------------------------------------
def diff(a, n=1, axis=-1):
    """The n-th discrete difference along `axis` (a[i+1] - a[i], applied n times)."""
    x = operand_tensor(a)
    axis = axis_arg("diff", axis, x.ndim, allow_none=False, allow_tuple=False)
    n = positive_int("diff", "n", n, allow_zero=True)
    lead = (slice(None),) * axis
    for _ in range(n):
        if x.shape[axis] == 0:
            break
        x = m.subtract(m.getitem(x, lead + (slice(1, None),)), m.getitem(x, lead + (slice(None, -1),)))
    return x


def trapezoid(y, x=None, dx=1.0, axis=-1):
    """The integral of y along `axis` by the trapezoidal rule.

    Args:
        y: the values to integrate.
        x: sample points (1-D of y's length along axis, or y's shape); None: spacing `dx`.
        dx: the spacing when x is None.
        axis: the axis to integrate along.
    """
    y = _as_float(operand_tensor(y))
    axis = axis_arg("trapezoid", axis, y.ndim, allow_none=False, allow_tuple=False)
    lead = (slice(None),) * axis
    pair_sum = m.add(m.getitem(y, lead + (slice(1, None),)), m.getitem(y, lead + (slice(None, -1),)))
    if x is None:
        return m.multiply(m.sum(pair_sum, axis=axis), np.asarray(float(dx) / 2, dtype=y.dtype))
    xs = m.cast(operand_tensor(x), y.dtype)
    if xs.ndim == 1:
        shape = [1] * y.ndim
        shape[axis] = xs.shape[0]
        xs = m.reshape(xs, shape)
    widths = diff(xs, axis=axis)
    return m.multiply(m.sum(m.multiply(pair_sum, widths), axis=axis), np.asarray(0.5, dtype=y.dtype))


# -- counting and searching (not differentiable) ------------------------------------------------------
def bincount(x, weights=None, minlength=0, sparse=False):
    """How often each non-negative integer occurs in the 1-D (or 2-D: per row) x.

    Args:
        x: non-negative integers.
        weights: per-element weights to add instead of counting ones.
        minlength: the least length of the result.
        sparse: not supported (engine tensors are dense): passing True is an error.
    """
    if sparse:
        raise ValueError("bincount: engine has no sparse tensors; call it with sparse=False")
    arr = to_array(operand_tensor(x))
    if arr.dtype.kind not in "iub":
        raise ValueError(f"bincount: x must be integers, got dtype {arr.dtype}")
    if arr.size and arr.min() < 0:
        raise ValueError("bincount: x must be non-negative")
    w = None if weights is None else to_array(operand_tensor(weights))
    length = builtins.max(int(minlength), int(arr.max()) + 1 if arr.size else 0)
    dtype = np.dtype("int32") if w is None else np.dtype(result_type(w.dtype, "int32") if w.dtype.kind != "f" else w.dtype)
    if arr.ndim == 1:
        return wrap(np.bincount(arr, weights=w, minlength=length).astype(dtype))
    if arr.ndim != 2:
        raise ValueError(f"bincount: x must be 1-D or 2-D, got shape {arr.shape}")
    rows = [np.bincount(r, weights=None if w is None else w[i], minlength=length) for i, r in enumerate(arr)]
    return wrap(np.stack(rows).astype(dtype) if rows else np.zeros((0, length), dtype))


def histogram(x, bins=10, range=None):
    """Counts of the 1-D x in `bins` equal-width bins over `range` (default: x's min to max).

    Returns:
        (counts, bin_edges): the counts and the bins+1 edges, both in x's float dtype (floatx
        for integer x), as Keras returns them.
    """
    arr = to_array(operand_tensor(x))
    if arr.ndim != 1:
        raise ValueError(f"histogram: x must be 1-D, got shape {arr.shape}")
    bins = positive_int("histogram", "bins", bins)
    counts, edges = np.histogram(arr, bins=bins, range=range)
    dtype = arr.dtype if arr.dtype.kind == "f" else np.dtype(config.floatx())
    return wrap(counts.astype(dtype)), wrap(edges.astype(dtype))


def searchsorted(sorted_sequence, values, side="left"):
    """Indices (int32) at which `values` would be inserted into the 1-D sorted_sequence to keep
    it sorted; side "left" puts them before equal entries, "right" after."""
    seq = to_array(operand_tensor(sorted_sequence))
    if seq.ndim != 1:
        raise ValueError(f"searchsorted: sorted_sequence must be 1-D, got shape {seq.shape}")
    if side not in ("left", "right"):
        raise ValueError(f"searchsorted: side must be 'left' or 'right', got {side!r}")
    return wrap(np.asarray(np.searchsorted(seq, to_array(operand_tensor(values)), side=side), dtype=np.int32))


def digitize(x, bins):
    """The index (int32) of the bin of each element of x, for the increasing 1-D `bins`
    (i such that bins[i-1] <= x < bins[i])."""
    b = to_array(operand_tensor(bins))
    if b.ndim != 1:
        raise ValueError(f"digitize: bins must be 1-D, got shape {b.shape}")
    return wrap(np.digitize(to_array(operand_tensor(x)), b).astype(np.int32))


def unique(x, sorted=True, return_index=False, return_inverse=False, return_counts=False, axis=None,
           size=None, fill_value=None):
    """The distinct elements of x (axis=None: of the flattened x; else the distinct slices along axis).

    Args:
        x: input tensor.
        sorted: return them sorted ascending (default), or, with False, in the order of their
            first occurrence in x (as Keras's TensorFlow backend orders them); the index, inverse
            and counts follow the same order.
        return_index: also return the index of each one's first occurrence (int32).
        return_inverse: also return, for each element of x, the index of its value (int32).
        return_counts: also return how often each occurs (int32).
        axis: None, or the axis along which to find distinct slices.
        size: pad (with fill_value) or truncate the result to this length.
        fill_value: the padding value (default: the smallest distinct value).

    Returns:
        The distinct values, or a tuple with the requested extras in the order above.
    """
    arr = to_array(operand_tensor(x))
    if axis is not None:
        axis = axis_arg("unique", axis, arr.ndim, allow_tuple=False)
    res = np.unique(arr, return_index=True, return_inverse=True, return_counts=True, axis=axis)
    values, index, inverse, counts = res
    if not sorted:
        order = np.argsort(index, kind="stable")        # by first occurrence
        values = np.take(values, order, axis=0 if axis is None else axis)
        index, counts = index[order], counts[order]
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        inverse = rank[inverse]
    if size is not None:
        size = positive_int("unique", "size", size, allow_zero=True)
        n = values.shape[0 if axis is None else axis]
        if size < n:
            take = np.arange(size)
            values = np.take(values, take, axis=0 if axis is None else axis)
            index, counts = index[:size], counts[:size]
        elif size > n:
            pad_n = size - n
            fill = np.take(values, [0], axis=0 if axis is None else axis) if fill_value is None else fill_value
            ax = 0 if axis is None else axis
            pad_shape = list(values.shape)
            pad_shape[ax] = pad_n
            values = np.concatenate([values, np.broadcast_to(np.asarray(fill, values.dtype), pad_shape)], axis=ax)
            index = np.concatenate([index, np.zeros(pad_n, index.dtype)])
            counts = np.concatenate([counts, np.zeros(pad_n, counts.dtype)])
    outs = [wrap(values)]
    if return_index:
        outs.append(wrap(index.astype(np.int32)))
    if return_inverse:
        outs.append(wrap(inverse.reshape(arr.shape if axis is None else -1).astype(np.int32)))
    if return_counts:
        outs.append(wrap(counts.astype(np.int32)))
    return outs[0] if len(outs) == 1 else tuple(outs)


__all__ = [
    "prod", "cumsum", "cumprod", "var", "std", "average", "logsumexp", "ptp", "any", "all", "count_nonzero",
    "nonzero", "argsort", "sort", "argpartition", "top_k", "in_top_k", "quantile", "percentile", "median",
    "nanquantile", "nanpercentile", "nanmedian", "nansum", "nanprod", "nanmean", "nanvar", "nanstd", "nanmax",
    "nanmin", "nanargmax", "nanargmin", "nancumsum", "nancumprod", "diff", "trapezoid", "bincount",
    "histogram", "searchsorted", "digitize", "unique",
]


def corrcoef(x):
    """The Pearson correlation coefficients between the rows of x (each row a variable, each
    column an observation); a 1-D x is one variable."""
    x = _as_float(operand_tensor(x))
    if x.ndim > 2:
        raise ValueError(f"corrcoef: x must be 1-D or 2-D, got shape {x.shape}")
    if x.ndim < 2:
        x = m.reshape(x, (1, -1))
    centred = m.subtract(x, m.mean(x, axis=1, keepdims=True))
    cov = m.matmul(centred, m.transpose(centred))
    d = m.sqrt(m.getitem(cov, (np.arange(cov.shape[0]), np.arange(cov.shape[0]))))
    out = m.divide(m.divide(cov, m.reshape(d, (-1, 1))), m.reshape(d, (1, -1)))
    out = m.clip(out, -1.0, 1.0)
    return m.reshape(out, ()) if out.shape == (1, 1) else out


__all__ += ["corrcoef"]
