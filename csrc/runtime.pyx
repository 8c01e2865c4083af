# Process-wide kernel runtime settings: OpenMP thread count and CPU features.
#
# libgomp keeps one thread-count setting for the process, so setting it here
# applies to every kernel module.
from kernel_common cimport (engine_openmp_enabled, engine_max_threads, engine_set_max_threads,
                            engine_set_thread_cap, engine_get_thread_cap)

cdef extern from "cpu_features.h":
    int engine_cpu_has_avx2_fma() nogil
    int engine_cpu_has_avx512f() nogil


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    return bool(engine_openmp_enabled())


def set_num_threads(int n):
    if n < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    engine_set_max_threads(n)


def get_num_threads():
    return engine_max_threads()


def cpu_has_avx2_fma():
    return bool(engine_cpu_has_avx2_fma())


def cpu_has_avx512f():
    return bool(engine_cpu_has_avx512f())


def _set_thread_cap(int n):
    """Limit this module's thread teams to n threads (0: no limit).  engine/_fork.py sets 1 in a
    forked child, where GNU OpenMP's thread pool is gone (csrc/threads.h)."""
    engine_set_thread_cap(n)


def _thread_cap():
    """The cap _set_thread_cap set (0: none)."""
    return engine_get_thread_cap()
