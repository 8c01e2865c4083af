# Process-wide kernel runtime settings: OpenMP thread count, the thread cap and the SIMD level
# every kernel family dispatches on, and CPU features.
#
# This module owns the one copy of the settings (csrc/runtime_api.h) and publishes it in a
# capsule; the other kernel modules read it through engine_runtime_import().  libgomp keeps one
# thread-count setting for the process, so set_num_threads here applies to every module.
from cpython.pycapsule cimport PyCapsule_New

# This module defines the one copy of the state (before anything includes runtime_api.h).
cdef extern from *:
    """
    #define ENGINE_RUNTIME_PROVIDER
    """

cdef extern from "runtime_api.h":
    ctypedef struct engine_runtime:
        int thread_cap
        int isa_level
        int isa_max
    engine_runtime *engine_rt
    const char *ENGINE_RUNTIME_CAPSULE
    void engine_runtime_init()
    int engine_cpu_has_avx2_fma() nogil
    int engine_cpu_has_avx512f() nogil

cdef extern from "threads.h" nogil:
    int engine_openmp_enabled()
    int engine_max_threads()
    void engine_set_max_threads(int n)

engine_runtime_init()
_c_api = PyCapsule_New(<void *>engine_rt, ENGINE_RUNTIME_CAPSULE, NULL)

# Level numbers of runtime_api.h, by the names engine.config and ENGINE_SIMD use.
SIMD_LEVELS = {"portable": 0, "avx2": 1, "avx512": 2}
_SIMD_NAMES = ("portable", "avx2", "avx512")


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(engine_openmp_enabled())


def set_num_threads(int n):
    """Set the OpenMP thread count every kernel module uses (n >= 1)."""
    if n < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    engine_set_max_threads(n)


def get_num_threads():
    """Threads a kernel may use now (the OpenMP count, under the thread cap)."""
    return engine_max_threads()


def cpu_has_avx2_fma():
    """True when the CPU runs AVX2 and FMA instructions."""
    return bool(engine_cpu_has_avx2_fma())


def cpu_has_avx512f():
    """True when the CPU runs AVX-512F instructions."""
    return bool(engine_cpu_has_avx512f())


def set_simd_cap(str name):
    """Cap the instruction set of every kernel family: 'portable', 'avx2' or 'avx512' (the
    best the CPU has, if lower).  Returns the level now in effect."""
    if name not in SIMD_LEVELS:
        raise ValueError(f"set_simd_cap: expected one of {sorted(SIMD_LEVELS)}, got {name!r}")
    cdef int cap = SIMD_LEVELS[name]
    engine_rt.isa_level = cap if cap < engine_rt.isa_max else engine_rt.isa_max
    return simd_level()


def simd_level():
    """The instruction set every kernel family runs now: 'portable', 'avx2' or 'avx512'."""
    return _SIMD_NAMES[engine_rt.isa_level]


def simd_max():
    """The best instruction set this CPU runs: 'portable', 'avx2' or 'avx512'."""
    return _SIMD_NAMES[engine_rt.isa_max]


def _set_thread_cap(int n):
    """Cap every kernel module's thread teams at n threads (0: no cap).  engine/_fork.py sets 1
    in a forked child, where GNU OpenMP's thread pool is gone (csrc/threads.h)."""
    engine_rt.thread_cap = n if n > 0 else 0


def _thread_cap():
    """The cap _set_thread_cap set (0: none)."""
    return engine_rt.thread_cap
