# Process-wide kernel runtime settings: OpenMP thread count and CPU features.
#
# libgomp keeps one thread-count setting for the process, so setting it here
# applies to every kernel module.

cdef extern from "cpu_features.h":
    int engine_cpu_has_avx2_fma() nogil
    int engine_cpu_has_avx512f() nogil

IF ENGINE_OPENMP:
    cimport openmp


def openmp_enabled():
    """True when the kernels were compiled with OpenMP."""
    IF ENGINE_OPENMP:
        return True
    ELSE:
        return False


def set_num_threads(int n):
    if n < 1:
        raise ValueError(f"set_num_threads: need at least 1 thread, got {n}")
    IF ENGINE_OPENMP:
        openmp.omp_set_num_threads(n)


def get_num_threads():
    IF ENGINE_OPENMP:
        return openmp.omp_get_max_threads()
    ELSE:
        return 1


def cpu_has_avx2_fma():
    return bool(engine_cpu_has_avx2_fma())


def cpu_has_avx512f():
    return bool(engine_cpu_has_avx512f())
