"""Keras-style progress display for fit / evaluate / predict."""
import sys
import time


def _format_value(v):
    return f"{v:.4f}" if abs(v) >= 1e-3 or v == 0 else f"{v:.4e}"


def _format_time(seconds):
    if seconds >= 3600:
        return f"{int(seconds // 3600)}:{int(seconds % 3600 // 60):02d}:{int(seconds % 60):02d}"
    if seconds >= 60:
        return f"{int(seconds // 60)}:{int(seconds % 60):02d}"
    return f"{int(seconds)}s"


def _format_per_step(seconds):
    if seconds >= 1:
        return f"{seconds:.0f}s/step"
    if seconds >= 1e-3:
        return f"{seconds * 1e3:.0f}ms/step"
    return f"{seconds * 1e6:.0f}us/step"


class Progbar:
    """Draws `step/target ━━━━ ETA - metric: value`; on a non-terminal, prints only the final line."""

    def __init__(self, target, width=20, verbose=1, stream=None, interval=0.05):
        self.target = target
        self.width = width
        self.verbose = verbose
        self.stream = stream or sys.stdout
        self.interval = interval
        self.dynamic = hasattr(self.stream, "isatty") and self.stream.isatty()
        self.start = time.perf_counter()
        self._last_draw = 0.0
        self._finalized = False

    def _line(self, current, values, finished):
        elapsed = time.perf_counter() - self.start
        per_step = elapsed / max(current, 1)
        metrics = "".join(f" - {k}: {_format_value(v)}" for k, v in values)
        count = f"{current}/{self.target}" if self.target else f"{current}/Unknown"   # as Keras
        if self.verbose == 2:
            return f"{count} - {_format_time(elapsed)} - {_format_per_step(per_step)}{metrics}"
        if self.target:
            filled = int(self.width * current / self.target)
            bar = "\u2501" * filled + ("\u2578" if filled < self.width else "") + " " * max(self.width - filled - 1, 0)
        else:
            bar = ""
        if finished or not self.target:      # without a total, Keras shows the time so far
            timing = f"{_format_time(elapsed)} {_format_per_step(per_step)}"
        else:
            timing = f"{_format_time(per_step * (self.target - current))}"
        return f"{count} {bar} {timing}{metrics}"

    def update(self, current, values=(), finalize=None):
        if not self.verbose or self._finalized:
            return
        finished = finalize if finalize is not None else (self.target is not None and current >= self.target)
        now = time.perf_counter()
        if finished:
            self._finalized = True
            line = self._line(current, values, True)
            self.stream.write(("\r" + line + "\x1b[K\n") if self.dynamic else line + "\n")
            self.stream.flush()
        elif self.dynamic and self.verbose == 1 and now - self._last_draw >= self.interval:
            self._last_draw = now
            self.stream.write("\r" + self._line(current, values, False) + "\x1b[K")
            self.stream.flush()
