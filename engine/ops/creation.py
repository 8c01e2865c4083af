"""Creating tensors (keras.ops.numpy's arange, linspace, eye, full, meshgrid, windows, ...)."""
import numpy as np

from engine import config
from engine.dtypes import result_type, standardize_dtype
from engine.ops._checks import positive_int
from engine.ops._naming import named
from engine.ops._util import to_array, wrap
from engine.ops import math as m
from engine.ops.arrays import operand_tensor, shape_arg, rearrange_with


def _dtype_arg(dtype, default):
    return np.dtype(standardize_dtype(dtype)) if dtype is not None else np.dtype(default)


def arange(start, stop=None, step=None, dtype=None):
    """Evenly spaced values in [start, stop) (or [0, start) with one argument).

    Args:
        start: first value (the end, with `stop` None).
        stop: end (exclusive).
        step: spacing (default 1).
        dtype: result dtype (default: int32 for integer arguments, floatx for floats).
    """
    args = [a for a in (start, stop, step) if a is not None]
    if dtype is None:
        dtype = result_type(*[a if type(a) in (int, float, bool) else np.asarray(to_array(a)).dtype
                              for a in args])
    values = [to_array(a).item() if hasattr(a, "dtype") else a for a in args]
    if step is not None and values[-1] == 0:
        raise ValueError("arange: step must not be zero")
    if stop is None:
        values = [0] + values
    return wrap(np.arange(*values, dtype=np.dtype(standardize_dtype(dtype))))


def _space_dtype(dtype, *args):
    if dtype is not None:
        return np.dtype(standardize_dtype(dtype))
    return np.dtype(result_type(*[a if type(a) in (int, float, bool) else to_array(a) for a in args], float))


def linspace(start, stop, num=50, endpoint=True, retstep=False, dtype=None, axis=0):
    """`num` evenly spaced values from start to stop.

    Args:
        start, stop: the ends (scalars or tensors of the same shape: a sequence per element).
        num: number of values.
        endpoint: whether stop is included.
        retstep: also return the spacing.
        dtype: result dtype (default floatx, or float64 for float64 inputs).
        axis: the axis of the result the values run along (for tensor start / stop).
    """
    num = positive_int("linspace", "num", num, allow_zero=True)
    dt = _space_dtype(dtype, start, stop)
    out, step = np.linspace(to_array(start), to_array(stop), num=num, endpoint=endpoint, retstep=True,
                            axis=axis, dtype=np.float64)
    if dt.kind in "iu":
        out = np.floor(out)
    out = wrap(out.astype(dt))
    return (out, wrap(np.asarray(step, dtype=dt if dt.kind == "f" else config.floatx()))) if retstep else out


def logspace(start, stop, num=50, endpoint=True, base=10, dtype=None, axis=0):
    """`num` values from base**start to base**stop, evenly spaced on a log scale.

    Args:
        start, stop: the exponents of the ends.
        num: number of values.
        endpoint: whether base**stop is included.
        base: the base of the exponents.
        dtype: result dtype (default floatx).
        axis: the result axis the values run along (for tensor start / stop).
    """
    num = positive_int("logspace", "num", num, allow_zero=True)
    dt = _space_dtype(dtype, start, stop)
    out = np.logspace(to_array(start), to_array(stop), num=num, endpoint=endpoint, base=base, axis=axis,
                      dtype=np.float64)
    return wrap(out.astype(dt))


def geomspace(start, stop, num=50, endpoint=True, dtype=None, axis=0):
    """`num` values from start to stop in geometric progression (neither end may be 0).

    Args:
        start, stop: the ends (of the same sign).
        num: number of values.
        endpoint: whether stop is included.
        dtype: result dtype (default floatx).
        axis: the result axis the values run along (for tensor start / stop).
    """
    num = positive_int("geomspace", "num", num, allow_zero=True)
    if np.any(to_array(start) == 0) or np.any(to_array(stop) == 0):
        raise ValueError("geomspace: start and stop must be non-zero")
    dt = _space_dtype(dtype, start, stop)
    out = np.geomspace(to_array(start), to_array(stop), num=num, endpoint=endpoint, axis=axis, dtype=np.float64)
    return wrap(out.astype(dt))


def eye(N, M=None, k=0, dtype=None):
    """An N x M matrix with ones on the k-th diagonal and zeros elsewhere.

    Args:
        N: number of rows.
        M: number of columns (default N).
        k: the diagonal (0: main, positive: above, negative: below).
        dtype: result dtype (default floatx).
    """
    N = positive_int("eye", "N", int(N), allow_zero=True)
    M = N if M is None else positive_int("eye", "M", int(M), allow_zero=True)
    return wrap(np.eye(N, M, k=int(k), dtype=_dtype_arg(dtype, config.floatx())))


def identity(n, dtype=None):
    """The n x n identity matrix (floatx unless told)."""
    return eye(n, dtype=dtype)


def tri(N, M=None, k=0, dtype=None):
    """An N x M matrix with ones at and below the k-th diagonal and zeros above it.

    Args:
        N: number of rows.
        M: number of columns (default N).
        k: the diagonal at and below which the matrix is filled.
        dtype: result dtype (default floatx).
    """
    N = positive_int("tri", "N", int(N), allow_zero=True)
    M = N if M is None else positive_int("tri", "M", int(M), allow_zero=True)
    return wrap(np.tri(N, M, k=int(k), dtype=_dtype_arg(dtype, config.floatx())))


def full(shape, fill_value, dtype=None):
    """A tensor of `shape` filled with `fill_value` (floatx unless `dtype` says otherwise)."""
    return wrap(np.full(shape_arg("full", shape), to_array(fill_value), dtype=_dtype_arg(dtype, config.floatx())))


def full_like(x, fill_value, dtype=None):
    """A tensor of x's shape (and dtype, unless told) filled with `fill_value`."""
    arr = to_array(x)
    return wrap(np.full(arr.shape, to_array(fill_value), dtype=_dtype_arg(dtype, arr.dtype)))


def empty(shape, dtype=None):
    """A tensor of `shape` (floatx unless told); engine fills it with zeros, so it is deterministic."""
    return wrap(np.zeros(shape_arg("empty", shape), dtype=_dtype_arg(dtype, config.floatx())))


def empty_like(x, dtype=None):
    """A tensor of x's shape and dtype (unless told), filled with zeros."""
    arr = to_array(x)
    return wrap(np.zeros(arr.shape, dtype=_dtype_arg(dtype, arr.dtype)))


def array(x, dtype=None):
    """A new tensor holding a copy of x's data (Python floats become floatx, ints int32)."""
    return wrap(np.array(to_array(m.convert_to_tensor(x, dtype=dtype))))


def copy(x):
    """A copy of x (recorded: the gradient passes through)."""
    x = operand_tensor(x)
    return rearrange_with(x, lambda a: a)


def meshgrid(*x, indexing="xy"):
    """Coordinate grids from 1-D coordinate vectors.

    Args:
        *x: 1-D tensors of coordinates.
        indexing: "xy" (Cartesian: the first two outputs' axes swapped) or "ij" (matrix).

    Returns:
        A list of tensors, one per input, each of the grid's shape.
    """
    if indexing not in ("xy", "ij"):
        raise ValueError(f"meshgrid: indexing must be 'xy' or 'ij', got {indexing!r}")
    xs = [operand_tensor(v) for v in x]
    for i, v in enumerate(xs):
        if v.ndim != 1:
            raise ValueError(f"meshgrid: every input must be 1-D, input {i} has shape {v.shape}")
    sizes = [v.shape[0] for v in xs]
    outs = []
    for i, v in enumerate(xs):
        def grid(a, i=i):
            return np.meshgrid(*[a if j == i else np.zeros(n, a.dtype) for j, n in enumerate(sizes)],
                               indexing=indexing)[i]
        outs.append(rearrange_with(v, grid))
    return outs


# -- windows ------------------------------------------------------------------------------------
def _window(name, fn, doc):
    @named(name, doc)
    def public(x):
        return wrap(fn(int(to_array(x))).astype(config.floatx()))
    return public


bartlett = _window("bartlett", np.bartlett, "The Bartlett (triangular) window of x points (floatx).")
blackman = _window("blackman", np.blackman, "The Blackman window of x points (floatx).")
hamming = _window("hamming", np.hamming, "The Hamming window of x points (floatx).")
hanning = _window("hanning", np.hanning, "The Hann window of x points (floatx).")


def kaiser(x, beta):
    """The Kaiser window of x points with shape parameter `beta` (floatx)."""
    return wrap(np.kaiser(int(to_array(x)), float(beta)).astype(config.floatx()))


__all__ = ["arange", "linspace", "logspace", "geomspace", "eye", "identity", "tri", "full", "full_like", "empty", "empty_like", "array", "copy", "meshgrid", "bartlett", "blackman", "hamming", "hanning", "kaiser"]
