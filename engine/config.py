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


def openmp_enabled():
    """Whether the kernels were built with OpenMP."""
    return _runtime.openmp_enabled()


def _kernel_modules_with_simd():
    import importlib
    mods = []
    for name in ("gemm", "conv", "recurrent", "elementwise", "pool", "normalization", "embedding"):
        try:
            mod = importlib.import_module(f"engine._kernels.{name}")
        except ImportError:
            continue
        if hasattr(mod, "set_portable"):
            mods.append(mod)
    return mods


def set_simd_path(path):
    """'auto' picks the fastest SIMD code the CPU supports; 'portable' forces plain C (for tests)."""
    if path not in ("auto", "portable"):
        raise ValueError(f"set_simd_path: expected 'auto' or 'portable', got {path!r}")
    for mod in _kernel_modules_with_simd():
        mod.set_portable(path == "portable")


if os.environ.get("ENGINE_SIMD") == "portable":
    set_simd_path("portable")

# A fork()ed child runs the kernels on one thread (GNU OpenMP cannot start teams there).
_fork.install()
