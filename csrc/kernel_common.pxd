# Declarations the kernel modules share: the size of an OpenMP thread team.  (The GEMM is
# gemm_api.pxd: declared here, every module cimporting this file compiled all of gemm.h.)

cdef extern from "threads.h" nogil:
    int engine_openmp_enabled()
    int engine_max_threads()
    int engine_thread_num()
    void engine_set_max_threads(int n)
    void engine_set_thread_cap(int n)
    int engine_get_thread_cap()


cdef inline int team_size(Py_ssize_t work, Py_ssize_t minimum) noexcept nogil:
    """Threads for a loop of `work` elements: one below `minimum`, where waking a team costs
    more than it saves (small Keras models call these every step)."""
    if work < minimum:
        return 1
    return engine_max_threads()
