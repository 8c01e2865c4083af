"""Small helpers shared by the op definitions."""
import numpy as np

from engine.tensor import Tensor
from engine.variables import Variable

_HOLDERS = (Tensor, Variable)


def to_array(x, dtype=None):
    """A numpy array view of x (Tensors and Variables give their array; Python numbers and lists
    become arrays)."""
    if isinstance(x, _HOLDERS):
        x = x._value
    if isinstance(x, np.ndarray) and (dtype is None or x.dtype == dtype):
        return x
    return np.asarray(x, dtype=dtype)


def wrap(x):
    """The result of a non-differentiable op as a Tensor (every op hands out Tensors)."""
    if isinstance(x, Tensor):
        return x
    return Tensor(x if isinstance(x, np.ndarray) else np.asarray(x))


def contiguous(x, dtype=None):
    """C-contiguous array of the given dtype, copying only when needed (kernels require it)."""
    if dtype is None:
        dtype = x.dtype if x.dtype in (np.float32, np.float64) else np.float32
    if isinstance(x, np.ndarray) and x.dtype == dtype and x.flags.c_contiguous:
        return x
    return np.asarray(x, dtype=dtype, order="C")   # (ascontiguousarray would make a 0-d array 1-d)


def float_dtype_of(*xs):
    """The float dtype an op on these inputs computes in (float64 only if some input is float64)."""
    for x in xs:
        if isinstance(x, np.ndarray) and x.dtype == np.float64:
            return np.dtype(np.float64)
    return np.dtype(np.float32)


def unbroadcast(g, shape):
    """Sum g down to `shape`: the gradient of a broadcast."""
    if g.shape == shape:
        return g
    extra = g.ndim - len(shape)
    if extra > 0:
        g = g.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return g.reshape(shape)


def normalize_axis(axis, ndim):
    if axis is None:
        return None
    if isinstance(axis, (list, tuple)):
        return tuple(sorted(a % ndim for a in axis))
    return axis % ndim
