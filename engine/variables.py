"""Variables: the persistent, mutable arrays that hold weights and optimizer state.

A Variable owns one C-contiguous numpy array for its whole life; assignments
copy into it, so the array's identity is stable and the autodiff tape can
recognise the variable by the array it hands to ops.
"""
import numpy as np

from engine import config

_name_counts = {}


def _unique_name(base):
    n = _name_counts.get(base, 0)
    _name_counts[base] = n + 1
    return base if n == 0 else f"{base}_{n}"


class Variable:
    def __init__(self, initializer=None, shape=None, dtype=None, trainable=True, name=None,
                 aggregation="none", synchronization="auto"):
        if dtype is None and isinstance(initializer, np.ndarray) and initializer.dtype.kind == "f":
            dtype = initializer.dtype  # a float array keeps its precision
        dtype = np.dtype(dtype or config.floatx())
        if callable(initializer):
            if shape is None:
                raise ValueError("Variable: an initializer needs a shape")
            value = initializer(tuple(shape), dtype=dtype)
        else:
            value = np.asarray(initializer if initializer is not None else np.zeros(shape), dtype=dtype)
            if shape is not None and tuple(value.shape) != tuple(shape):
                raise ValueError(f"Variable {name!r}: value has shape {value.shape}, expected {tuple(shape)}")
        self._value = np.array(value, dtype=dtype, copy=True, order="C")
        self.trainable = bool(trainable)
        self.name = name or "variable"
        self.path = self.name

    # -- value access ------------------------------------------------------------
    @property
    def value(self):
        return self._value

    def numpy(self):
        return self._value.copy()

    def __array__(self, dtype=None, copy=None):
        return self._value if dtype is None else self._value.astype(dtype)

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

    def assign(self, value):
        value = np.asarray(value)
        if value.shape != self._value.shape:
            raise ValueError(f"Variable {self.path!r}: cannot assign a value of shape {value.shape} "
                             f"to a variable of shape {self._value.shape}")
        np.copyto(self._value, value, casting="unsafe")
        return self

    def assign_add(self, value):
        self._value += np.asarray(value, dtype=self._value.dtype)
        return self

    def assign_sub(self, value):
        self._value -= np.asarray(value, dtype=self._value.dtype)
        return self

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype.name}>"

    # -- arithmetic records on the tape through engine.ops -------------------------
    def __add__(self, other):
        from engine import ops
        return ops.add(self, other)

    def __radd__(self, other):
        from engine import ops
        return ops.add(other, self)

    def __sub__(self, other):
        from engine import ops
        return ops.subtract(self, other)

    def __rsub__(self, other):
        from engine import ops
        return ops.subtract(other, self)

    def __mul__(self, other):
        from engine import ops
        return ops.multiply(self, other)

    def __rmul__(self, other):
        from engine import ops
        return ops.multiply(other, self)

    def __truediv__(self, other):
        from engine import ops
        return ops.divide(self, other)

    def __neg__(self):
        from engine import ops
        return ops.negative(self)

    def __matmul__(self, other):
        from engine import ops
        return ops.matmul(self, other)

    def __rmatmul__(self, other):
        from engine import ops
        return ops.matmul(other, self)

    def __pow__(self, other):
        from engine import ops
        return ops.power(self, other)

    def __getitem__(self, idx):
        return self._value[idx]

    def __float__(self):
        return float(self._value)

    def __len__(self):
        return len(self._value)
