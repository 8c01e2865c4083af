"""Process-wide settings: kernel threads, default float type, SIMD path."""
import os

from engine._kernels import runtime as _runtime
from engine import _fork

_FLOATX = "float32"
_EPSILON = 1e-7


def set_num_threads(n):
    """Number of OpenMP threads the kernels use (default: the number of cores or OMP_NUM_THREADS)."""
    _runtime.set_num_threads(int(n))


def get_num_threads():
    """Threads a kernel may use now (1 in a fork()ed child: see engine/_fork.py)."""
    return _runtime.get_num_threads()


def floatx():
    """The default float dtype name ("float32" unless set_floatx changed it)."""
    return _FLOATX


def set_floatx(value):
    """Set the default float dtype: "float32" or "float64" (engine's kernels have no float16)."""
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"set_floatx: engine supports 'float32' and 'float64', got {value!r}")
    _FLOATX = value


def epsilon():
    """The fuzz factor numeric expressions use (default 1e-7)."""
    return _EPSILON


def set_epsilon(value):
    """Set the fuzz factor `epsilon()` returns."""
    global _EPSILON
    _EPSILON = float(value)


def image_data_format():
    """The image layout engine's layers use: always "channels_last"."""
    return "channels_last"


def set_image_data_format(data_format):
    """Set the default image layout; engine supports only "channels_last".

    Args:
        data_format: "channels_last" (or "channels_first", which is refused with a ValueError).
    """
    if data_format != "channels_last":
        raise ValueError(f"set_image_data_format: engine's layers support only 'channels_last', got "
                         f"{data_format!r}")


def enable_unsafe_deserialization():
    """Turn safe mode off for later loads (see engine.saving.serialization)."""
    from engine.saving.serialization import enable_unsafe_deserialization as enable
    enable()


def backend():
    """The name of the backend running the ops: always `"engine"`, engine's own CPU kernels."""
    return "engine"


def set_backend(backend):
    """Keras's switch between its backends. engine is its own backend, so only `"engine"` is
    accepted.

    Args:
        backend: `"engine"`.

    Raises:
        ValueError: for any other backend (to run on JAX, TensorFlow or PyTorch, use Keras).
    """
    if backend != "engine":
        raise ValueError(f"set_backend: engine runs on its own CPU kernels and cannot switch to {backend!r}; "
                         "import keras instead of engine to use that backend")


def _int_or_none(value, what):
    if value is None:
        return None
    if isinstance(value, bool) or int(value) != value or value < 1:
        raise ValueError(f"{what}: expected a positive integer or None, got {value!r}")
    return int(value)


# Debugging caps on fit / evaluate / predict, as Keras's (its environment variables too).
_MAX_EPOCHS = _int_or_none(int(os.environ["KERAS_MAX_EPOCHS"]), "KERAS_MAX_EPOCHS") \
    if os.environ.get("KERAS_MAX_EPOCHS") else None
_MAX_STEPS_PER_EPOCH = _int_or_none(int(os.environ["KERAS_MAX_STEPS_PER_EPOCH"]), "KERAS_MAX_STEPS_PER_EPOCH") \
    if os.environ.get("KERAS_MAX_STEPS_PER_EPOCH") else None


def set_max_epochs(max_epochs):
    """Caps the epochs of every `fit` call (a debugging aid; also set by the `KERAS_MAX_EPOCHS`
    environment variable).

    Args:
        max_epochs: the most epochs any `fit` runs, or None for no cap.
    """
    global _MAX_EPOCHS
    _MAX_EPOCHS = _int_or_none(max_epochs, "set_max_epochs")


def max_epochs():
    """The cap `set_max_epochs` set on `fit`'s epochs, or None."""
    return _MAX_EPOCHS


def set_max_steps_per_epoch(max_steps_per_epoch):
    """Caps the steps of each epoch of `fit` and of each `evaluate` and `predict` call (a
    debugging aid; also set by the `KERAS_MAX_STEPS_PER_EPOCH` environment variable).

    Args:
        max_steps_per_epoch: the most batches an epoch runs, or None for no cap.
    """
    global _MAX_STEPS_PER_EPOCH
    _MAX_STEPS_PER_EPOCH = _int_or_none(max_steps_per_epoch, "set_max_steps_per_epoch")


def max_steps_per_epoch():
    """The cap `set_max_steps_per_epoch` set on the steps of an epoch, or None."""
    return _MAX_STEPS_PER_EPOCH


def capped_epochs(epochs):
    """`epochs` under the `set_max_epochs` cap (warning when it cuts them, as Keras)."""
    if _MAX_EPOCHS and _MAX_EPOCHS < epochs:
        from engine.utils.traceback_utils import warn_user     # (it imports this module)
        warn_user(f"Limiting epochs to {_MAX_EPOCHS}")
        return _MAX_EPOCHS
    return epochs


def capped_steps(steps):
    """A steps argument (None: the whole data) under the `set_max_steps_per_epoch` cap."""
    if _MAX_STEPS_PER_EPOCH and (not steps or _MAX_STEPS_PER_EPOCH < steps):
        from engine.utils.traceback_utils import warn_user     # (it imports this module)
        warn_user(f"Limiting steps_per_epoch to {_MAX_STEPS_PER_EPOCH}")
        return _MAX_STEPS_PER_EPOCH
    return steps


def dtype_policy():
    """The global dtype policy (see `engine.dtype_policies`): `set_dtype_policy`'s, else floatx's."""
    from engine import dtype_policies
    return dtype_policies.dtype_policy()


def set_dtype_policy(policy):
    """Sets the dtype policy of layers made from now on (see `engine.dtype_policies.set_dtype_policy`).

    Args:
        policy: a policy name ("float32", "float64") or a `DTypePolicy`.
    """
    from engine import dtype_policies
    dtype_policies.set_dtype_policy(policy)


# Where messages go (engine.utils.io_utils reads it) and whether tracebacks are shortened
# (engine.utils.traceback_utils reads it), kept here with the other settings, as Keras keeps them.
_INTERACTIVE_LOGGING = True
_TRACEBACK_FILTERING = True


def enable_interactive_logging():
    """Progress bars and messages are written to standard output (the default)."""
    global _INTERACTIVE_LOGGING
    _INTERACTIVE_LOGGING = True


def disable_interactive_logging():
    """Progress bars and messages go to Python's `logging` (logger "engine", INFO) instead of
    standard output: for jobs whose output is collected by a logging setup."""
    global _INTERACTIVE_LOGGING
    _INTERACTIVE_LOGGING = False


def is_interactive_logging_enabled():
    """Whether messages are written to standard output (True) or to `logging` (False)."""
    return _INTERACTIVE_LOGGING


def enable_traceback_filtering():
    """Take engine's internal frames out of the tracebacks of errors raised in fit / evaluate /
    predict (the default, as Keras's)."""
    global _TRACEBACK_FILTERING
    _TRACEBACK_FILTERING = True


def disable_traceback_filtering():
    """Show full tracebacks, engine's internal frames included."""
    global _TRACEBACK_FILTERING
    _TRACEBACK_FILTERING = False


def is_traceback_filtering_enabled():
    """Whether engine's internal frames are taken out of tracebacks."""
    return _TRACEBACK_FILTERING


_FLASH_ATTENTION = None


def enable_flash_attention():
    """Keras's switch back to automatic flash attention (`is_flash_attention_enabled()` gives
    None again, Keras's default). engine's attention kernel is always the blocked, flash-style
    one, so results do not change; `MultiHeadAttention(flash_attention=True)` is what refuses
    attention scores and dropout."""
    global _FLASH_ATTENTION
    _FLASH_ATTENTION = None


def disable_flash_attention():
    """Keras's switch away from flash attention (`is_flash_attention_enabled()` gives False).
    engine's blocked kernel computes the same attention either way."""
    global _FLASH_ATTENTION
    _FLASH_ATTENTION = False


def is_flash_attention_enabled():
    """None (automatic, the default) or False after `disable_flash_attention()`, as Keras's."""
    return _FLASH_ATTENTION


def is_nnx_enabled():
    """False: engine has no Flax NNX integration (a JAX-backend option of Keras)."""
    return False


def openmp_enabled():
    """Whether the kernels were built with OpenMP."""
    return _runtime.openmp_enabled()


_SIMD_PATHS = ("auto", "portable", "avx2", "avx512")


def set_simd_path(path):
    """Cap the instruction set of every kernel family (one process-wide switch).

    Args:
        path: "auto" (the best the CPU has), "portable" (plain C: what a machine without AVX2
            runs; for tests), "avx2" (AVX2+FMA) or "avx512" (AVX-512F). A level above what the
            CPU supports gives the best it has. The ENGINE_SIMD environment variable takes the
            same values and is read at import.

    Returns:
        The level now in effect: "portable", "avx2" or "avx512".
    """
    if path not in _SIMD_PATHS:
        raise ValueError(f"set_simd_path: expected one of {_SIMD_PATHS}, got {path!r}")
    return _runtime.set_simd_cap("avx512" if path == "auto" else path)


def get_simd_path():
    """The instruction set every kernel family runs now: "portable", "avx2" or "avx512"."""
    return _runtime.simd_level()


_ENV_SIMD = os.environ.get("ENGINE_SIMD", "").strip().lower()
if _ENV_SIMD:
    if _ENV_SIMD not in _SIMD_PATHS:
        raise ValueError(f"engine: the ENGINE_SIMD environment variable is {_ENV_SIMD!r}; set it to "
                         f"one of {_SIMD_PATHS} or unset it")
    set_simd_path(_ENV_SIMD)

# A fork()ed child runs the kernels on one thread (GNU OpenMP cannot start teams there).
_fork.install()
