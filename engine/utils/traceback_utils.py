"""Short tracebacks, as Keras's: an exception raised inside engine during `fit`, `evaluate`,
`predict` and the `*_on_batch` methods reaches the user with engine's own frames taken out, so
the traceback shows the user's code and the message (which names the layer, argument and shapes).
`config.disable_traceback_filtering()` gives the full traceback back, for debugging engine."""
import functools
import os
import sys
import traceback
import types
import warnings

from engine import config

_ENGINE_DIR = os.path.dirname(os.path.dirname(os.path.abspath(__file__))) + os.sep


def _without_engine_frames(tb):
    kept = None
    for frame, line in reversed(list(traceback.walk_tb(tb))):
        if not frame.f_code.co_filename.startswith(_ENGINE_DIR):
            kept = types.TracebackType(kept, frame, frame.f_lasti, line)
    return kept     # (None when every frame was engine's: the traceback is the caller's alone)


def warn_user(message, category=UserWarning):
    """warnings.warn(message, category), pointed at the first frame outside engine (the user's
    line that called fit, say), however many engine frames (the training loop, data adapters,
    callbacks, wrappers, overridden methods calling super()) lie in between."""
    frame, level = sys._getframe(1), 2          # stacklevel 2: this function's caller
    while frame is not None and frame.f_code.co_filename.startswith(_ENGINE_DIR):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)


def filter_traceback(fn):
    """`fn` with engine's frames taken out of the tracebacks of the exceptions it raises (while
    filtering is enabled); the exception itself, its message and its cause are unchanged."""
    @functools.wraps(fn)
    def filtered(*args, **kwargs):
        if not config.is_traceback_filtering_enabled():
            return fn(*args, **kwargs)
        try:
            return fn(*args, **kwargs)
        except Exception as e:
            cause = e.__cause__
            raise e.with_traceback(_without_engine_frames(e.__traceback__)) from cause
    return filtered
