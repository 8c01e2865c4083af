"""The eager tensor: what every op and every layer call returns outside symbolic construction.

A Tensor is a thin, immutable handle on a numpy array (a wrapper, not an ndarray subclass).
Why a wrapper: numpy calls on an ndarray subclass silently return results the tape never
sees, while a wrapper makes the split explicit. Python operators on a Tensor (`+`, `-x`, `@`,
`x[i]`, comparisons) are engine ops, recorded on every active GradientTape; numpy functions
applied to it (`np.tanh(t)`) see a plain array through `__array__` and give plain, unrecorded
numpy results, as TensorFlow's eager tensors do. Kernels never see a Tensor: the op layer
unwraps it.

The operators themselves are defined in engine/ops/operators.py (the op layer installs them
on Tensor and Variable), so this module depends on nothing above it.

The tape tells values apart by the identity of their arrays, so a Tensor never changes its
array and ops always return a fresh array object.
"""
import numpy as np


# Set by engine.autodiff: called with what is happening whenever a value leaves the tensor world
# for Python or numpy (so that a step plan being traced knows the layer computing it must run as
# usual on every replay: what Python does with the value is invisible to the trace).
_on_value_read = None


def _value_read(what):
    if _on_value_read is not None:
        _on_value_read(what)


class ArrayHolder:
    """What Tensor and Variable share: a numpy array in `_value`, seen through numpy's array
    protocol and the array attributes."""

    __slots__ = ()

    def __array__(self, dtype=None, copy=None):
        _value_read("converted to a numpy array")
        value = self._value
        if dtype is not None and value.dtype != dtype:
            return value.astype(dtype)
        if copy:
            return value.copy()
        return value

    def numpy(self):
        """A numpy copy of the value."""
        _value_read("read with .numpy()")
        return self._value.copy()

    @property
    def shape(self):
        return self._value.shape

    @property
    def dtype(self):
        return self._value.dtype

    @property
    def ndim(self):
        return self._value.ndim

    @property
    def size(self):
        return self._value.size

    def __float__(self):
        _value_read("converted to a Python float")
        return float(self._value)

    def __int__(self):
        _value_read("converted to a Python int")
        return int(self._value)

    def __bool__(self):
        _value_read("used as a Python bool (an `if` on a tensor)")
        return bool(self._value)


class Tensor(ArrayHolder):
    """An eager value: a numpy array with engine's operators and Keras's tensor protocol.

    Args:
        value: the numpy array it holds (not copied; ops own their outputs).

    Attributes:
        shape: tuple of ints.
        dtype: numpy dtype (compares equal to its name: `t.dtype == "float32"`).
        ndim: number of axes.
    """

    __slots__ = ("_value", "_keras_mask", "_variable", "__weakref__")
    # Higher than ndarray's, so `ndarray + tensor` defers to Tensor.__radd__ (and is recorded)
    # instead of numpy converting the tensor and returning an unrecorded array.
    __array_priority__ = 100

    def __init__(self, value, variable=None):
        self._value = value
        self._keras_mask = None
        self._variable = variable   # set when the tensor is a Variable's `.value`

    # -- the array protocol (ArrayHolder's), and more -------------------------------------
    def item(self):
        """The value of a one-element tensor as a Python number."""
        _value_read("read with .item()")
        return self._value.item()

    def tolist(self):
        """The value as nested Python lists."""
        _value_read("read with .tolist()")
        return self._value.tolist()

    # -- Python protocols -----------------------------------------------------------------
    def __len__(self):
        if self._value.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return len(self._value)

    def __index__(self):
        if self._value.dtype.kind not in "iub":
            raise TypeError(f"only integer tensors can be used as an index, got dtype {self._value.dtype}")
        _value_read("used as a Python index")
        return int(self._value)

    def __complex__(self):
        _value_read("converted to a Python complex")
        return complex(self._value)

    def __format__(self, spec):
        if self._value.ndim == 0:
            return format(self._value.item(), spec)
        return format(str(self), spec)

    def __iter__(self):
        if self._value.ndim == 0:
            raise TypeError("iteration over a 0-d tensor")
        for i in range(len(self._value)):
            yield self[i]          # recorded: iterating is indexing

    # Elementwise `==` makes a tensor unhashable, as numpy arrays and TensorFlow tensors are.
    __hash__ = None

    def __repr__(self):
        body = np.array2string(self._value, separator=", ", prefix="       ")
        return f"<Tensor shape={self.shape}, dtype={self.dtype.name}, numpy=\n{body}>" \
            if self._value.ndim > 1 else \
            f"<Tensor shape={self.shape}, dtype={self.dtype.name}, numpy={body}>"

    def __str__(self):
        return str(self._value)

    def __setitem__(self, key, value):
        raise TypeError("engine tensors are immutable, like Keras's: build a new one instead "
                        "(engine.ops.where(mask, new, x), or engine.ops.concatenate of pieces)")

    # Pickling keeps the value only (masks and Variable links are per-process state).
    def __reduce__(self):
        return (Tensor, (self._value,))


def is_tensor(x):
    """True for engine tensors (numpy arrays and Variables are not tensors)."""
    return isinstance(x, Tensor)
