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
    return _FLOATX


def set_floatx(value):
    global _FLOATX
    if value not in ("float32", "float64"):
        raise ValueError(f"set_floatx: engine supports 'float32' and 'float64', got {value!r}")
    _FLOATX = value


def epsilon():
    return _EPSILON


def set_epsilon(value):
    global _EPSILON
    _EPSILON = float(value)


def image_data_format():
    return "channels_last"


def openmp_enabled():
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
