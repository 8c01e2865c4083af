"""Variables: the persistent, mutable arrays that hold weights and optimizer state.

A Variable owns one C-contiguous numpy array for its whole life; assignments
copy into it, so the array's identity is stable and the autodiff tape can
recognise the variable by the array it hands to ops.
"""
import numpy as np

from engine import config
from engine.backend import current_path
from engine.tensor import ArrayHolder, Tensor


# Keras's accepted values (None is kept as "none", as Keras keeps it); engine keeps them as attributes only, since its
# data-parallel training reduces gradients itself rather than through variable aggregation.
_AGGREGATIONS = ("none", "mean", "sum", "only_first_replica")
_SYNCHRONIZATIONS = ("auto", "none", "on_read", "on_write")

# Writes to variables' arrays and to optimizer state since the process started: through assign*,
# and those made elsewhere that say so (`note_state_write`: an optimizer step, a loaded optimizer
# state, a seed generator's draw). engine.distribution compares the count with its value when the
# ranks' states were last made identical, so a fit after a fit does not re-send state nothing has
# touched. Writes through a numpy view of a variable's array (np.asarray(v)[...] = x) are not seen.
_state_writes = 0


def note_state_write():
    """Count one write to variable or optimizer-state arrays made outside Variable.assign*."""
    global _state_writes
    _state_writes += 1


def state_writes():
    """The number of writes to variable and optimizer-state arrays counted so far."""
    return _state_writes


def _one_of(argument, value, allowed):
    if value is None:
        return "none"
    if value not in allowed:
        raise ValueError(f"Variable: {argument} must be None or one of {', '.join(map(repr, allowed))}; "
                         f"got {argument}={value!r}")
    return value


class Variable(ArrayHolder):
    """A mutable, persistent array: a layer's weight or an optimizer's state.

    Args:
        initializer: an initializer (called with `shape` and `dtype`) or an initial value.
        shape: the shape; required with a callable initializer.
        dtype: the dtype (floatx by default; a float array initial value keeps its own).
        trainable: whether optimizers update it and tapes watch it by default.
        autocast: whether a layer may cast it to its compute dtype when reading it (Keras's
            mixed precision). engine's layers compute in their variables' dtype, so reading a
            variable never casts it either way; the flag is kept as `autocast`.
        aggregation, synchronization: Keras's cross-replica settings; engine's data-parallel
            training keeps every rank's variables identical itself (see engine.distribution).
        name: the variable's name (its `path` adds the enclosing name scopes: the owning layer's).
        layout: a tensor layout for model-parallel sharding, which engine does not do: None.
    """

    def __init__(self, initializer=None, shape=None, dtype=None, trainable=True, autocast=True,
                 aggregation="none", synchronization="auto", name=None, layout=None):
        if layout is not None:
            raise ValueError(f"Variable {name!r}: engine has no tensor layouts (model-parallel sharding); "
                             "pass layout=None (data-parallel training needs none)")
        self.autocast = bool(autocast)
        self.aggregation = _one_of("aggregation", aggregation, _AGGREGATIONS)
        self.synchronization = _one_of("synchronization", synchronization, _SYNCHRONIZATIONS)
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
        scope = current_path()      # inside name scopes (a layer building), the path says where
        self.path = f"{scope}/{self.name}" if scope else self.name

    # -- value access ------------------------------------------------------------
    @property
    def value(self):
        """The current value as an engine Tensor (ops on it are recorded as reads of this variable).

        It shares the variable's memory: a later `assign` shows through it."""
        return Tensor(self._value, variable=self)

    def storage(self):
        """The array that holds this variable for its whole life (never replaced), as it is: a
        value with work deferred (RMSprop's velocity, engine/optimizers/deferred_decay.py) is
        not brought up to date. For identity checks; read values through `value` / `numpy()`."""
        return self._value

    def assign(self, value):
        """Copy `value` (same shape) into the variable; returns the variable."""
        value = np.asarray(value)
        if value.shape != self._value.shape:
            raise ValueError(f"Variable {self.path!r}: cannot assign a value of shape {value.shape} "
                             f"to a variable of shape {self._value.shape}")
        np.copyto(self._value, value, casting="unsafe")
        note_state_write()
        return self

    def assign_add(self, value):
        """Add `value` (broadcast to the variable's shape) in place; returns the variable."""
        self._value += self._checked(value, "assign_add")
        note_state_write()
        return self

    def assign_sub(self, value):
        """Subtract `value` (broadcast to the variable's shape) in place; returns the variable."""
        self._value -= self._checked(value, "assign_sub")
        note_state_write()
        return self

    def _checked(self, value, what):
        value = np.asarray(value, dtype=self._value.dtype)
        if value.shape == self._value.shape or value.ndim == 0:
            return value          # the common cases, without numpy's Python-level shape arithmetic
        try:
            fits = np.broadcast_shapes(value.shape, self._value.shape) == self._value.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"Variable {self.path!r}: {what} of a value of shape {value.shape} to a "
                             f"variable of shape {self._value.shape}")
        return value

    def __repr__(self):
        return f"<Variable path={self.path}, shape={self.shape}, dtype={self.dtype.name}>"

    # The Python operators (+, -, @, comparisons, ...) are installed by engine/ops/operators.py,
    # one definition shared with Tensor; they record on the tape through engine.ops.
    __array_priority__ = 100      # `ndarray + variable` defers to the variable's operator
    __hash__ = object.__hash__    # its elementwise `==` leaves variables hashable by identity

    def __len__(self):
        return len(self._value)
