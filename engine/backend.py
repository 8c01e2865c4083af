"""keras.backend: the backend's name, the session's global state (automatic names), dtype helpers.

Automatic names ("dense", "dense_1", ...) are counted here, below the layers and variables that
take them, so that `clear_session()` can start them over as Keras's does.
"""
import gc
import threading
from collections import defaultdict

from engine import config
from engine.config import backend, epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format  # noqa: F401
from engine.dtypes import result_type, standardize_dtype  # noqa: F401

_uids = defaultdict(int)       # prefix -> how many names (or uids) it has handed out
_scopes = threading.local()    # .stack: the open name scopes of this thread, outermost first


def get_uid(prefix=""):
    """Returns 1 the first time it is called with `prefix`, then 2, 3, ...

    Args:
        prefix: the name the count is kept for (the same counters give layers their
            automatic names).
    """
    _uids[prefix] += 1
    return _uids[prefix]


def unique_name(prefix):
    """Keras's automatic names: `prefix`, then `prefix_1`, `prefix_2`, ... (restarted by
    `clear_session`)."""
    n = _uids[prefix]
    _uids[prefix] = n + 1
    return prefix if n == 0 else f"{prefix}_{n}"


class name_scope:
    """A context in which new variables' paths start with `name/` (nested scopes join with "/").

    Layers open one named after themselves while they build and first run, so a sublayer's
    weights read "block/dense/kernel" as in Keras.

    Args:
        name: the scope's name (no "/").
        caller: the object opening it; a scope opened again by the same caller under the same
            name, directly inside its own, is not opened twice.
        deduplicate: apply that rule (default True).
        override_parent: a path used instead of the enclosing scopes' (the path a layer was
            first scoped under, so it keeps its path wherever it is called later).
    """

    def __init__(self, name, caller=None, deduplicate=True, override_parent=None):
        if not isinstance(name, str) or "/" in name:
            raise ValueError(f"name_scope: name must be a string without '/', got {name!r}")
        self.name, self.caller, self.deduplicate = name, caller, deduplicate
        if override_parent is None and deduplicate:
            override_parent = getattr(caller, "_parent_path", None)
        self.override_parent = override_parent
        self._pushed = False

    def __enter__(self):
        stack = _scope_stack()
        if self.deduplicate and stack and self.caller is not None and stack[-1].caller is self.caller \
                and stack[-1].name == self.name:
            return self
        stack.append(self)
        self._pushed = True
        return self

    def __exit__(self, *exc):
        if self._pushed:
            _scope_stack().pop()
            self._pushed = False
        return False


def _scope_stack():
    stack = getattr(_scopes, "stack", None)
    if stack is None:
        stack = _scopes.stack = []
    return stack


def current_path():
    """The path of the open name scopes ("" outside any)."""
    parts = []
    for scope in getattr(_scopes, "stack", ()):
        if scope.override_parent is not None:
            parts = [p for p in scope.override_parent.split("/") if p]
        parts.append(scope.name)
    return "/".join(parts)


class device:
    """A context in which ops run on a given device. engine runs on the CPU only, so `"cpu"` and
    `"cpu:0"` are accepted (the ops inside run as they would anyway) and any other device is an
    error.

    Args:
        device_name: `"cpu"` or `"cpu:0"` (case-insensitive).
    """

    def __init__(self, device_name):
        name = str(device_name).strip().lower()
        if name.startswith("/device:"):
            name = name[len("/device:"):]
        if name not in ("cpu", "cpu:0"):
            raise ValueError(f"device: engine runs on the CPU only; {device_name!r} is not available. "
                             "Use device('cpu') or no device scope.")
        self.name = "cpu:0"

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def clear_session(free_memory=True):
    """Resets the state engine keeps between models: automatic names start over ("dense" again),
    as in a new process.

    Models and layers already made keep their names and weights.

    Args:
        free_memory: also run Python's garbage collector, so the arrays of models no longer
            referenced are freed now (default True).
    """
    _uids.clear()
    _scope_stack().clear()
    if free_memory:
        gc.collect()


def is_float_dtype(dtype):
    """Whether `dtype` (a name, numpy dtype or Python type) is a floating-point type."""
    return standardize_dtype(dtype).startswith(("float", "bfloat"))


def is_int_dtype(dtype):
    """Whether `dtype` (a name, numpy dtype or Python type) is a signed or unsigned integer type."""
    return standardize_dtype(dtype).startswith(("int", "uint"))


def is_keras_tensor(x):
    """Whether `x` is a symbolic tensor (from `Input` or a layer called on one), not a value."""
    from engine.layers.keras_tensor import KerasTensor
    return isinstance(x, KerasTensor)


# The rest of keras.backend's settings live in engine.config; `engine.backend.X` finds them there.
def __getattr__(name):
    if not name.startswith("_") and hasattr(config, name):
        return getattr(config, name)
    raise AttributeError(f"module 'engine.backend' has no attribute {name!r}")
