"""Python operators on Tensors and Variables, each one the engine.ops function of the same meaning.

One table, installed on both classes when engine.ops is imported, so `a + b`, `-x`, `x @ w`,
`x[i]` and `x < y` record on the tape exactly as ops.add, ops.negative, ops.matmul, the
differentiable gather and ops.less do. Augmented assignment (`x -= m`) is deliberately left
undefined: Python then computes `x - m` and rebinds the name, so no array another op or layer
still holds is ever written.
"""
import numpy as np

from engine.ops import math as m
from engine.tensor import Tensor
from engine.variables import Variable


def _is_bool(x):
    return getattr(x, "dtype", None) == np.bool_ or type(x) is bool


def _and(a, b):
    return m.logical_and(a, b) if _is_bool(a) and _is_bool(b) else m.wrap(np.bitwise_and(m.to_array(a), m.to_array(b)))


def _or(a, b):
    return m.logical_or(a, b) if _is_bool(a) and _is_bool(b) else m.wrap(np.bitwise_or(m.to_array(a), m.to_array(b)))


def _xor(a, b):
    return m.logical_xor(a, b) if _is_bool(a) and _is_bool(b) else m.wrap(np.bitwise_xor(m.to_array(a), m.to_array(b)))


def _invert(a):
    return m.logical_not(a) if _is_bool(a) else m.wrap(np.invert(m.to_array(a)))


def _positive(a):
    return m.convert_to_tensor(a)


def _round(a, ndigits=None):
    if ndigits is None and np.ndim(m.to_array(a)) == 0:
        return round(float(m.to_array(a)))
    return m.wrap(np.round(m.to_array(a), ndigits or 0))


def _takes(other):
    """Whether an operator can take `other` as its second operand; for anything else it returns
    NotImplemented, so Python asks the other object (pytest.approx, a KerasTensor, ...)."""
    return isinstance(other, (Tensor, Variable, np.ndarray, np.generic, int, float, bool, list, tuple)) \
        or hasattr(other, "__array__")


def _binary_operator(fn):
    def operator(a, b):
        if not _takes(b):
            return NotImplemented
        return fn(a, b)
    operator.__name__ = fn.__name__
    operator.__doc__ = fn.__doc__
    return operator


def _swap(fn):
    def reflected(a, b):
        if not _takes(b):
            return NotImplemented
        return fn(b, a)
    return reflected


getitem = m.getitem


# Array methods that code written for Keras's JAX and numpy backends calls on tensors, each
# the recorded op of the same name.
def _reshape(self, *shape):
    return m.reshape(self, shape[0] if len(shape) == 1 and not isinstance(shape[0], int) else shape)


def _transpose(self, *axes):
    return m.transpose(self, axes[0] if len(axes) == 1 and not isinstance(axes[0], int) else (axes or None))


_METHODS = {
    "reshape": _reshape,
    "transpose": _transpose,
    "T": property(lambda self: m.transpose(self)),
    "astype": lambda self, dtype: m.cast(self, dtype),
    "squeeze": lambda self, axis=None: m.squeeze(self, axis),
    "sum": lambda self, axis=None, keepdims=False: m.sum(self, axis, keepdims),
    "mean": lambda self, axis=None, keepdims=False: m.mean(self, axis, keepdims),
    "max": lambda self, axis=None, keepdims=False: m.max(self, axis, keepdims),
    "min": lambda self, axis=None, keepdims=False: m.min(self, axis, keepdims),
}

_OPERATORS = {
    "__add__": _binary_operator(m.add), "__radd__": _swap(m.add),
    "__sub__": _binary_operator(m.subtract), "__rsub__": _swap(m.subtract),
    "__mul__": _binary_operator(m.multiply), "__rmul__": _swap(m.multiply),
    "__truediv__": _binary_operator(m.divide), "__rtruediv__": _swap(m.divide),
    "__floordiv__": _binary_operator(m.floor_divide), "__rfloordiv__": _swap(m.floor_divide),
    "__mod__": _binary_operator(m.mod), "__rmod__": _swap(m.mod),
    "__pow__": _binary_operator(m.power), "__rpow__": _swap(m.power),
    "__matmul__": _binary_operator(m.matmul), "__rmatmul__": _swap(m.matmul),
    "__neg__": m.negative, "__pos__": _positive, "__abs__": m.abs,
    "__lt__": _binary_operator(m.less), "__le__": _binary_operator(m.less_equal),
    "__gt__": _binary_operator(m.greater), "__ge__": _binary_operator(m.greater_equal),
    "__eq__": _binary_operator(m.equal), "__ne__": _binary_operator(m.not_equal),
    "__and__": _binary_operator(_and), "__rand__": _swap(_and),
    "__or__": _binary_operator(_or), "__ror__": _swap(_or),
    "__xor__": _binary_operator(_xor), "__rxor__": _swap(_xor), "__invert__": _invert,
    "__round__": _round,
    "__getitem__": getitem,
}


def _install():
    for cls in (Tensor, Variable):
        for name, fn in _OPERATORS.items():
            setattr(cls, name, fn)
    for name, fn in _METHODS.items():
        setattr(Tensor, name, fn)
    Variable.__hash__ = object.__hash__   # defining __eq__ would otherwise make it unhashable


_install()
