# Declarations every kernel module shares: the process-wide runtime state (thread cap, SIMD
# level: csrc/runtime_api.h) and the thread-team helpers (csrc/threads.h).  A module that
# cimports these calls engine_runtime_import() once at import, before any kernel runs.  (The
# GEMM is gemm_api.pxd: declared here, every module cimporting this file compiled all of gemm.h.)

cdef extern from "threads.h" nogil:
    int engine_openmp_enabled()
    int engine_max_threads()
    int engine_thread_num()
    void engine_set_max_threads(int n)
    # Threads for `work` units in at most `max_parts` pieces: 1 below `minimum`.
    int engine_team_size(Py_ssize_t work, Py_ssize_t minimum, Py_ssize_t max_parts)
    Py_ssize_t engine_span_len(Py_ssize_t n, int parts, Py_ssize_t align)
    # The span driver: fn(job, lo, hi) over [0, n) on nt threads, one span each.
    ctypedef void (*engine_span_fn)(const void *job, Py_ssize_t lo, Py_ssize_t hi) noexcept nogil
    void engine_run_spans(engine_span_fn fn, const void *job, Py_ssize_t n, int nt, Py_ssize_t align)

cdef extern from "threads.h":
    int engine_runtime_import() except -1
