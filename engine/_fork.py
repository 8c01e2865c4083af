"""Keep kernels usable in a process made by fork().

GNU OpenMP (libgomp) starts its worker threads on the first parallel region and keeps them in
a pool.  fork() copies only the calling thread, so a child of a process that ran a kernel on
several threads inherits a pool whose threads do not exist, and its first team of more than
one thread waits for them forever (in GOMP_parallel under engine_sgemm).  A multiprocessing
pool with the 'fork' start method, the way many data loaders start workers, is such a child.

So a child caps every kernel module's teams at one thread (one process-wide cap, kept by the
runtime module: csrc/runtime_api.h and csrc/threads.h): its kernels run
serially and give the same answers, and a warning says why, once per process.  Workers that
need threaded kernels should be started with the 'spawn' or 'forkserver' method, which begin
from a fresh process.
"""
import os
import warnings

_warned = False


class ForkedOpenMPWarning(RuntimeWarning):
    """Kernels run on one thread in this process because it was made by fork()."""


def set_thread_cap(n):
    """Cap every kernel module's thread teams at n threads (0 lifts the cap)."""
    from engine._kernels import runtime
    runtime._set_thread_cap(int(n))


def _after_fork_in_child():
    """Runs in the child right after fork(): serial kernels, and say so once."""
    global _warned
    from engine._kernels import runtime
    if not runtime.openmp_enabled():
        return
    set_thread_cap(1)
    if not _warned:
        _warned = True
        warnings.warn(
            "engine: this process was made by fork(), and GNU OpenMP cannot start thread teams in "
            "a forked child (a parallel kernel would wait forever for worker threads that fork() "
            "did not copy), so engine's kernels run on 1 thread here. For multi-threaded kernels "
            "in worker processes use the 'spawn' or 'forkserver' start method, e.g. "
            "multiprocessing.get_context('spawn').",
            ForkedOpenMPWarning, stacklevel=2)


def install():
    """Register the fork hook (once; engine/__init__.py calls this)."""
    if hasattr(os, "register_at_fork") and not getattr(install, "_done", False):
        os.register_at_fork(after_in_child=_after_fork_in_child)
        install._done = True
