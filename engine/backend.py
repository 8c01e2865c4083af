"""keras.backend: the backend's name, the session's global state (automatic names), dtype helpers.

Automatic names ("dense", "dense_1", ...) are counted here, below the layers and variables that
take them, so that `clear_session()` can start them over as Keras's does.
"""
import gc
from collections import defaultdict

from engine import config
from engine.config import backend, epsilon, floatx, image_data_format, set_epsilon, set_floatx, set_image_data_format  # noqa: F401
from engine.dtypes import result_type, standardize_dtype  # noqa: F401

_uids = defaultdict(int)       # prefix -> how many names (or uids) it has handed out


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


def clear_session(free_memory=True):
    """Resets the state engine keeps between models: automatic names start over ("dense" again),
    as in a new process.

    Models and layers already made keep their names and weights.

    Args:
        free_memory: also run Python's garbage collector, so the arrays of models no longer
            referenced are freed now (default True).
    """
    _uids.clear()
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
