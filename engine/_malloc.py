"""Keep freed memory in the process so large work buffers are reused, not re-faulted.

Each training step allocates and frees the same large arrays (gate buffers,
unrolled convolution inputs, gradients).  glibc hands allocations above its
mmap threshold (128 KiB, raised dynamically) straight to the kernel and
returns them on free, so every step pays for fresh zeroed pages: on an LSTM
step that is a third of the time.  Raising the mmap threshold to glibc's
maximum and the trim threshold well above it makes these buffers come from,
and go back to, the process heap.

The settings are process-wide, so importing engine does not apply them: training
does (`fit` / `train_on_batch`, or the first `GradientTape.gradient` of a custom training
loop, call `tune_for_training()` once), since a process that
only imports engine, or only predicts, should keep the allocator it had (nor does it load ctypes: the import is
made by the first fit).  Set ENGINE_MALLOC_TUNING=0 to leave the allocator alone.
"""
import os
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
_MMAP_THRESHOLD_MAX = 32 * 1024 * 1024      # the largest value glibc accepts on 64-bit
_TRIM_THRESHOLD = 1024 * 1024 * 1024


def tune():
    """Apply the settings once; returns True when glibc accepted them."""
    if os.environ.get("ENGINE_MALLOC_TUNING", "1") == "0" or not sys.platform.startswith("linux"):
        return False
    import ctypes
    import ctypes.util
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False  # not glibc (musl has no mallopt): nothing to tune
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok = mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_MAX) == 1
    ok = mallopt(_M_TRIM_THRESHOLD, _TRIM_THRESHOLD) == 1 and ok
    return ok


TUNED = None     # None until training first asks, then whether glibc took the settings


def tune_for_training():
    """Apply the settings the first time a model trains in this process."""
    global TUNED
    if TUNED is None:
        TUNED = tune()
    return TUNED
